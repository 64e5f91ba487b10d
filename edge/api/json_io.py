"""JSON in and out of the local API that never turns odd input into a 500.

* :class:`StrictJsonBodies` (ASGI): a JSON request body is parsed with orjson before
  FastAPI sees it. FastAPI's ``json.loads`` accepts ``NaN``, ``Infinity``, ``1e400`` and
  lone surrogates (``"\\ud800"``), and then fails to render its own validation error
  (which echoes the input) as JSON: a 500. orjson refuses them: a 400 that says where.
* :class:`SafeJSONResponse`: answers are rendered by orjson (``NaN`` becomes ``null``);
  a string that is not valid Unicode (a lone surrogate a charger sent) is rendered with
  U+FFFD in its place rather than failing the whole answer.
"""

from __future__ import annotations

from typing import Any

import orjson
import structlog
from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge.api.limits import send_json_error
from edge.core.logs import UPLOAD_PREFIX

log = structlog.get_logger(__name__)


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            kind: bytes = value.split(b";", 1)[0].strip().lower()
            return kind == b"application/json" or (
                kind.startswith(b"application/") and kind.endswith(b"+json")
            )
    return False


class StrictJsonBodies:
    """ASGI middleware: 400 for a JSON body that is not strict JSON (RFC 8259, UTF-8)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # an upload is a file, whatever type a charger says it is: never parsed or held
        if (
            scope["type"] != "http"
            or not _is_json(scope)
            or scope["path"].startswith(UPLOAD_PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        try:
            while True:  # bounded: the body limit is enforced by the receive() we wrap
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client went away
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
        except HTTPException as err:  # the body is too large
            await send_json_error(send, err.status_code, err.detail, err.headers)
            return
        body = b"".join(chunks)
        if body:
            try:
                orjson.loads(body)
            except orjson.JSONDecodeError as err:
                log.info("http.json.refused", path=scope["path"], error=str(err))
                await send_json_error(send, 400, f"the body is not valid JSON: {err}")
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def scrub(value: Any) -> Any:
    """``value`` with every string made valid Unicode (lone surrogates become U+FFFD)."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def dumps(content: Any) -> bytes:
    try:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        return orjson.dumps(scrub(content), option=orjson.OPT_NON_STR_KEYS)


class SafeJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return dumps(content)


async def validation_error(request: Request, exc: Exception) -> Response:
    """FastAPI's 422, rendered safely (the errors echo the input)."""
    assert isinstance(exc, RequestValidationError)
    return SafeJSONResponse({"detail": jsonable_encoder(exc.errors())}, 422)
