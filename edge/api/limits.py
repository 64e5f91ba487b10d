"""Limits of the local HTTP server, so that no client can exhaust it before logging in.

* :class:`BodyLimit` (ASGI): a request body larger than its route's limit gets a 413 as
  soon as that is known: from ``Content-Length`` before the app runs, or while the body
  is read, counting the bytes of each ``receive()``; the answer closes the connection,
  so the rest of the body is never read.
* :func:`limited_protocol` (uvicorn's h11 protocol with two additions): at most
  ``max_connections`` connections, ``max_connections_per_client`` from one address (more
  get a 503 and are closed at once, so HTTP cannot take the file descriptors the OCPP
  server needs), and a request deadline: a request's headers and body must arrive within
  ``request_timeout`` of the connection opening or the previous answer (slowloris).
  uvicorn itself only closes connections idle after an answer (``timeout_keep_alive``).
  A charger's log upload (``/ocpp-uploads/``) has the deadline per chunk instead: a
  large file on a slow link keeps going while it moves, a stalled one is still cut off.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from edge.core.logs import UPLOAD_PREFIX

log = structlog.get_logger(__name__)

LOGIN_PATHS: Final = frozenset({"/login", "/logout"})


class BodyTooLarge(HTTPException):
    """Raised by the limited ``receive()``; FastAPI answers it like any HTTPException."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413, f"the request body is larger than {limit} bytes", headers={"Connection": "close"}
        )


def route_limits(
    max_body: int, max_login_body: int, max_upload: int | None = None
) -> Callable[[str], int]:
    """The body limit of a path: the login form is tiny, everything else small but the
    chargers' log uploads (:mod:`edge.api.uploads`: ``max_upload``, when the daemon
    serves them)."""

    def limit(path: str) -> int:
        if max_upload is not None and path.startswith(UPLOAD_PREFIX):
            return max_upload
        return max_login_body if path in LOGIN_PATHS else max_body

    return limit


async def send_json_error(
    send: Send, status: int, detail: Any, headers: Mapping[str, str] | None = None
) -> None:
    body = orjson.dumps({"detail": detail})
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """ASGI middleware: 413 (and the connection closed) for a body over its route's limit."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for
        self.refused = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        lengths = [v for k, v in scope["headers"] if k == b"content-length"]
        if lengths:
            if len(lengths) > 1 or not lengths[0].isdigit():
                await send_json_error(send, 400, "a bad Content-Length", {"Connection": "close"})
                return
            if int(lengths[0]) > limit:
                self.refused += 1
                log.info("http.body.too_large", path=scope["path"], length=int(lengths[0]))
                err = BodyTooLarge(limit)
                await send_json_error(send, 413, err.detail, err.headers)
                return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    self.refused += 1
                    log.info("http.body.too_large", path=scope["path"], received=received)
                    raise BodyTooLarge(limit)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except BodyTooLarge as err:  # read outside FastAPI's handlers
            if started:
                raise
            await send_json_error(send, 413, err.detail, err.headers)


# --- connections -------------------------------------------------------------------------

_BUSY: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: %d\r\nretry-after: 5\r\n\r\n%s"
)


@dataclass
class ConnectionLimits:
    """Shared by every connection of one server; the counters are for tests and logs."""

    max_connections: int
    max_per_client: int
    request_timeout: float
    open: int = 0
    by_client: dict[str, int] = field(default_factory=dict)
    refused: int = 0
    timed_out: int = 0
    _last_log: float = 0.0

    def admit(self, client: str) -> str | None:
        """Count a new connection in, or say why it is refused."""
        if self.open >= self.max_connections:
            return "too many connections"
        if self.by_client.get(client, 0) >= self.max_per_client:
            return "too many connections from your address"
        self.open += 1
        self.by_client[client] = self.by_client.get(client, 0) + 1
        return None

    def release(self, client: str) -> None:
        self.open -= 1
        left = self.by_client.get(client, 1) - 1
        if left:
            self.by_client[client] = left
        else:
            self.by_client.pop(client, None)

    def note(self, event: str, **context: Any) -> None:
        """A refusal or a timeout: at most one log line in 10 s (an attack is thousands)."""
        now = time.monotonic()
        if now - self._last_log >= 10.0:
            self._last_log = now
            log.warning(event, refused=self.refused, timed_out=self.timed_out, **context)


def limited_protocol(limits: ConnectionLimits) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a connection cap and a request deadline."""

    class LimitedH11Protocol(H11Protocol):
        _client_key: str | None = None
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            client = self.client[0] if self.client else "unknown"
            refused = limits.admit(client)
            if refused is not None:
                limits.refused += 1
                limits.note("http.connection.refused", client=client, reason=refused)
                transport.write(_BUSY % (len(refused), refused.encode()))
                transport.close()
                return
            self._client_key = client
            self._update_deadline()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._client_key is not None:
                limits.release(self._client_key)
                self._client_key = None
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._client_key is None:
                return  # refused: whatever it sends is not read
            super().data_received(data)
            cycle = self.cycle
            if cycle is not None and str(cycle.scope["path"]).startswith(UPLOAD_PREFIX):
                self._disarm()  # an upload has request_timeout per chunk, not in all
            self._update_deadline()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._update_deadline()

        def _update_deadline(self) -> None:
            """Armed while a request is being read, off while the app works on it."""
            cycle = self.cycle
            reading = (
                cycle is None
                or cycle.response_complete
                or (cycle.more_body and not cycle.response_started)
            )
            if not reading or self.transport.is_closing():
                self._disarm()
            elif self._deadline is None:
                self._deadline = self.loop.call_later(limits.request_timeout, self._timed_out)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _timed_out(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                limits.timed_out += 1
                limits.note("http.connection.timed_out", client=self._client_key)
                self.transport.close()

    return LimitedH11Protocol


class HttpLimitsCollector(Collector):
    """The limits' counters for Prometheus, read at each scrape."""

    def __init__(self, limits: ConnectionLimits, bodies: BodyLimit) -> None:
        self.limits = limits
        self.bodies = bodies

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "evpark_http_connections_open", "Open HTTP connections", value=self.limits.open
        )
        yield CounterMetricFamily(
            "evpark_http_connections_refused",
            "HTTP connections refused at once: over max_connections(_per_client)",
            value=self.limits.refused,
        )
        yield CounterMetricFamily(
            "evpark_http_connections_timed_out",
            "HTTP connections closed because a request did not arrive within request_timeout",
            value=self.limits.timed_out,
        )
        yield CounterMetricFamily(
            "evpark_http_bodies_refused",
            "Request bodies refused with 413: over their route's limit",
            value=self.bodies.refused,
        )
