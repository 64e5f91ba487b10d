"""Accept request bodies sent with ``Content-Encoding: gzip`` (edges compress batches)."""

from __future__ import annotations

import zlib
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from central.infra.body_limit import json_answer, read_body

MAX_INFLATED = 64 * 1024 * 1024


class GzipRequestMiddleware:
    def __init__(
        self, app: ASGIApp, limit_for: Callable[[str], int] = lambda _path: MAX_INFLATED
    ) -> None:
        """``limit_for(path)``: the most bytes a body may inflate to on that route."""
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        encoding = next(
            (v.decode("latin-1").lower() for k, v in scope["headers"] if k == b"content-encoding"),
            None,
        )
        if encoding is None or encoding == "identity":
            await self.app(scope, receive, send)
            return
        if encoding != "gzip":
            await json_answer(
                send, 415, f"unsupported Content-Encoding {encoding!r}, use gzip", close=False
            )
            return
        body = await read_body(receive)
        if body is None:
            return
        inflater = zlib.decompressobj(wbits=31)
        try:
            inflated = inflater.decompress(body, self.limit_for(scope["path"]))
        except zlib.error:
            await json_answer(send, 400, "the body is not valid gzip", close=False)
            return
        if inflater.unconsumed_tail:
            await json_answer(send, 413, "the inflated body is too large", close=False)
            return
        headers = [
            (k, v) for k, v in scope["headers"] if k not in (b"content-encoding", b"content-length")
        ]
        headers.append((b"content-length", str(len(inflated)).encode()))
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": inflated, "more_body": False}

        await self.app({**scope, "headers": headers}, replay, send)
