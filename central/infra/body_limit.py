"""Request body limits per route, enforced while the body is read, before any parsing.

A declared ``Content-Length`` over the limit is answered 413 at once, without reading a
byte; a body without one (chunked) is counted as it arrives and the request is cut off
with 413 as soon as it passes the limit, so at most one chunk beyond the limit is ever
held. A gzip body is limited again once inflated (:mod:`central.infra.gzip_body`).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import structlog
from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("central.limits")


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")
        self.limit = limit


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = [v for k, v in scope["headers"] if k == b"content-length"]
        if declared:
            try:
                length = int(declared[0])
            except ValueError:
                await json_answer(send, 400, "invalid Content-Length")
                return
            if length > limit or len(declared) > 1:
                log.warning("http.body.too_large", path=scope["path"], declared=length)
                await json_answer(send, 413, BodyTooLarge(limit).detail)
                return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watch)
        except BodyTooLarge as err:
            # raised through a layer that reads the body itself (the gateway's proxy,
            # gzip); routes answer it themselves as an HTTPException
            log.warning("http.body.too_large", path=scope["path"], read=seen)
            if not started:
                await json_answer(send, 413, err.detail)


async def json_answer(send: Send, status: int, detail: str, *, close: bool = True) -> None:
    """An error answered before the app ran, as FastAPI words one; ``close`` ends the
    connection (a body left unread must not be taken for the next request)."""
    payload = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body (already bounded by :class:`BodyLimitMiddleware`), or None
    if the client went away first."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if not message.get("more_body"):
            return bytes(body)
