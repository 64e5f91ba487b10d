"""A lean websocket server for the OCPP endpoint, on websockets' sans-I/O protocol.

websockets' asyncio layer hands every frame through futures, an assembler and a send
lock; at OCPP message rates that machinery cost as much as our own work on the message.
Here an :class:`asyncio.Protocol` cuts the stream into frames and decodes plain text
frames itself (:mod:`edge.ocpp.frames`); the sans-I/O :class:`ServerProtocol` does the
handshake and every other frame (pings, fragments, the closing handshake, errors), and
its output goes straight to the transport. Text is checked to be UTF-8 here. Each connection's handler runs as a
task of the server's TaskGroup. It attaches a sink, and from then on every message goes
to the sink as it arrives, within the transport's callback: no queue, no task wake-up
per message. Messages that arrive before the sink is attached wait in a buffer. Sending
is a write.

Limits against what is not a charger: at most ``max_connections`` connections at once
(counting those still in their handshake; one more is answered 503 and closed at once),
``open_timeout`` for the whole handshake (TLS included), text frames only (a binary
frame closes the connection with 1003, as OCPP-J uses text), and a subprotocol offered
that the server does not speak exactly gets 400 before the upgrade. A handshake that
offers no subprotocol at all gets 400 too, unless ``accept_without_subprotocol`` (some
chargers offer none): it is then upgraded without one, and the handler decides what it
speaks. ``ping_interval=None`` sends no pings.

The connection object offers what the OCPP server uses of websockets' own
(``request``, ``subprotocol``, ``remote_address``, ``close``, ``close_code``,
``close_reason``, ``respond``, ``transport``), plus ``attach``, ``send_now`` and
``wait_closed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl as ssl_module
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, cast

import structlog
from websockets.exceptions import ConnectionClosed, InvalidState, NegotiationError
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import SEND_EOF, State
from websockets.server import ServerProtocol
from websockets.typing import StatusLike, Subprotocol

from edge.ocpp.frames import frame_size, plain_text, text_frame

log = structlog.get_logger(__name__)

Handler = Callable[["LeanConnection"], Awaitable[None]]
ProcessRequest = Callable[["LeanConnection", Request], Response | None]
SelectSubprotocol = Callable[["LeanConnection", Sequence[Subprotocol]], Subprotocol | None]
Sink = Callable[[str], None]
_BUSY_TEXT = b"too many connections, try again later\n"
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 30\r\n"
    b"Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (len(_BUSY_TEXT), _BUSY_TEXT)
)


class LeanConnection:
    def __init__(self, server: LeanServer, transport: asyncio.Transport) -> None:
        self.server = server
        self.transport = transport
        self.protocol = ServerProtocol(
            subprotocols=server.subprotocols,
            select_subprotocol=lambda _, offered: self._select_subprotocol(offered),
            max_size=server.max_size,
        )
        self.request: Request | None = None
        self.remote_address = transport.get_extra_info("peername")
        self._early: deque[str] | None = deque()  # messages before a sink is attached
        self._sink: Sink | None = None
        # Once open, frames are cut here (see edge.ocpp.frames); _cut holds a frame's start
        # until the rest of it arrives.
        self._cutting = False
        self._cut = bytearray()
        self._fragments: list[bytes] = []  # of a fragmented message, from the protocol
        self._closed = asyncio.Event()
        self._timers: dict[str, asyncio.TimerHandle] = {}

    # --- what the OCPP server uses --------------------------------------------------

    @property
    def subprotocol(self) -> Subprotocol | None:
        return self.protocol.subprotocol

    @property
    def close_code(self) -> int | None:
        return self.protocol.close_code

    @property
    def close_reason(self) -> str | None:
        return self.protocol.close_reason

    def _select_subprotocol(self, offered: Sequence[Subprotocol]) -> Subprotocol | None:
        chosen = self.server.select_subprotocol(self, offered)
        if chosen is None and not offered and self.server.accept_without_subprotocol:
            return None
        if chosen is None and self.server.subprotocols:
            # websockets would upgrade without one; refuse before the upgrade instead (400)
            log.warning(
                "ws.subprotocol.unsupported",
                remote=str(self.remote_address),
                offered=", ".join(offered)[:80],
            )
            raise NegotiationError(f"offer one of {', '.join(self.server.subprotocols)}")
        return chosen

    def respond(self, status: StatusLike, text: str) -> Response:
        return self.protocol.reject(status, text)

    def attach(self, sink: Sink) -> None:
        """Hand every text message to ``sink`` from now on, as it arrives.

        The sink runs inside the transport's callback: it must not raise (an exception
        would drop the connection) and must not block.
        """
        early, self._early = self._early, None
        self._sink = sink
        for message in early or ():
            sink(message)

    def _deliver(self, message: str) -> None:
        if self._sink is not None:
            self._sink(message)
        elif self._early is not None:
            self._early.append(message)

    def send_now(self, text: str) -> None:
        """Write a text frame (a write to the transport: nothing to wait for)."""
        protocol = self.protocol
        if protocol.state is not State.OPEN:  # closing or closed
            raise ConnectionClosed(
                protocol.close_rcvd, protocol.close_sent, protocol.close_rcvd_then_sent
            )
        self.transport.write(text_frame(text))  # never fragmented: no protocol state to keep

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.protocol.state is State.OPEN:
            self.protocol.send_close(code, reason)
            self._flush()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.server.close_timeout):
                await self._closed.wait()
        self.transport.abort()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    # --- driven by the asyncio protocol ---------------------------------------------

    def received(self, data: bytes) -> None:
        if self._cutting:
            self._received_frames(data)
            return
        self._to_protocol(data)
        # Switch to cutting frames here once open, unless the client sent more than its
        # handshake before the answer (the protocol's buffer then holds part of a frame).
        protocol = self.protocol
        self._cutting = protocol.state is State.OPEN and not protocol.reader.buffer

    def _received_frames(self, data: bytes) -> None:
        if self._cut:
            self._cut += data
            data = bytes(self._cut)
            self._cut.clear()
        protocol, start, end = self.protocol, 0, len(data)
        while start < end:
            size = frame_size(data, start)
            if size is None or start + size > end:
                if size is not None and size > self.server.max_size + 14:
                    # too big to wait for: the protocol refuses it (1009) from its header
                    self._cutting = False
                    self._to_protocol(data[start:])
                else:
                    self._cut += data[start:]
                return
            frame = data[start : start + size]
            start += size
            text = None
            if protocol.state is State.OPEN and protocol.cur_size is None:
                text = plain_text(frame)
            if text is not None and size <= self.server.max_size:
                self._deliver(text)
            else:
                self._to_protocol(frame)

    def _to_protocol(self, data: bytes) -> None:
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Request):
                self._handshake(event)
            elif isinstance(event, Frame):
                self._frame(event)
        self._flush()

    def _handshake(self, request: Request) -> None:
        try:
            response = self.server.process_request(self, request)
        except Exception:  # raised into the transport it would drop the client unanswered
            log.exception("ws.handshake.failed", remote=str(self.remote_address))
            response = self.protocol.reject(500, "the server could not check this request\n")
        if response is None:
            response = self.protocol.accept(request)
        self.protocol.send_response(response)
        self._cancel("open")
        if self.protocol.state is State.OPEN:
            self.request = request
            self._schedule_ping()
            self.server.start_handler(self)

    def _frame(self, frame: Frame) -> None:
        """A frame the protocol parsed: fragments are joined, UTF-8 checked, pongs noted."""
        opcode = frame.opcode
        if opcode is Opcode.BINARY:
            log.warning("ws.binary_refused", remote=str(self.remote_address))
            self.protocol.fail(CloseCode.UNSUPPORTED_DATA, "OCPP-J uses text frames only")
            return
        if opcode is Opcode.TEXT:
            self._fragments = [bytes(frame.data)]
        elif opcode is Opcode.CONT:  # the protocol checked that one was started
            self._fragments.append(bytes(frame.data))
        else:
            if opcode is Opcode.PONG:
                self._cancel("pong")
                self._schedule_ping()
            return
        if not frame.fin:
            return
        data, self._fragments = b"".join(self._fragments), []
        try:
            text = data.decode()
        except UnicodeDecodeError:
            log.warning("ws.invalid_utf8", remote=str(self.remote_address))
            self.protocol.fail(CloseCode.INVALID_DATA, "text message is not UTF-8")
            return
        self._deliver(text)

    def _flush(self) -> None:
        for chunk in self.protocol.data_to_send():
            if chunk is SEND_EOF or chunk == b"":
                if self.transport.can_write_eof():
                    self.transport.write_eof()
            else:
                self.transport.write(chunk)
        if self.protocol.close_expected() and "close" not in self._timers:
            self._timers["close"] = asyncio.get_running_loop().call_later(
                self.server.close_timeout, self.transport.abort
            )

    def lost(self) -> None:
        self.protocol.receive_eof()
        for name in list(self._timers):
            self._cancel(name)
        self._closed.set()

    # --- liveness -------------------------------------------------------------------

    def start_open_timer(self) -> None:
        loop = asyncio.get_running_loop()
        self._timers["open"] = loop.call_later(self.server.open_timeout, self.transport.abort)

    def _schedule_ping(self) -> None:
        if self.server.ping_interval is None:
            return
        loop = asyncio.get_running_loop()
        self._timers["ping"] = loop.call_later(self.server.ping_interval, self._ping)

    def _ping(self) -> None:
        if self.protocol.state is not State.OPEN:
            return
        try:
            self.protocol.send_ping(os.urandom(4))
        except InvalidState:
            return
        self._flush()
        if self.server.ping_timeout is not None:
            loop = asyncio.get_running_loop()
            self._timers["pong"] = loop.call_later(self.server.ping_timeout, self._no_pong)

    def probe(self, timeout: float) -> None:
        """Ping now; no pong within ``timeout`` fails the connection (another connection
        claims this charger's id: whether this one is still alive must be known soon)."""
        if self.protocol.state is not State.OPEN:
            return
        self._cancel("ping")
        self._cancel("pong")
        try:
            self.protocol.send_ping(os.urandom(4))
        except InvalidState:
            return
        self._flush()
        self._timers["pong"] = asyncio.get_running_loop().call_later(timeout, self._no_pong)

    def _no_pong(self) -> None:
        log.info("ws.keepalive.timeout", remote=str(self.remote_address))
        self.protocol.fail(1011, "keepalive ping timeout")
        self._flush()
        self.transport.abort()

    def _cancel(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()


class _AsyncioProtocol(asyncio.Protocol):
    def __init__(self, server: LeanServer) -> None:
        self.server = server
        self.connection: LeanConnection | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        server = self.server
        if server.max_connections is not None and len(server.connections) >= server.max_connections:
            server.refuse(transport)
            return
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one
        self.connection = LeanConnection(self.server, cast(asyncio.Transport, transport))
        self.server.connections.add(self.connection)
        self.connection.start_open_timer()

    def data_received(self, data: bytes) -> None:
        if self.connection is not None:  # None: refused, closing
            self.connection.received(data)

    def eof_received(self) -> bool | None:
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self.connection is not None:
            self.connection.lost()
            self.server.connections.discard(self.connection)


class LeanServer:
    """``async with LeanServer(...) as server: await server.serve_forever()``."""

    def __init__(
        self,
        handler: Handler,
        host: str,
        port: int,
        *,
        subprotocols: Sequence[Subprotocol],
        select_subprotocol: SelectSubprotocol,
        process_request: ProcessRequest,
        ping_interval: float | None,
        ping_timeout: float | None,
        max_size: int,
        ssl: ssl_module.SSLContext | None = None,
        open_timeout: float = 10.0,
        close_timeout: float = 5.0,
        max_connections: int | None = None,
        on_refused: Callable[[], None] | None = None,
        accept_without_subprotocol: bool = False,
    ) -> None:
        self.handler = handler
        self.host, self.port = host, port
        self.subprotocols = list(subprotocols)
        self.select_subprotocol = select_subprotocol
        self.accept_without_subprotocol = accept_without_subprotocol
        self.process_request = process_request
        self.ping_interval, self.ping_timeout = ping_interval, ping_timeout
        self.max_size = max_size
        self.ssl = ssl
        self.open_timeout, self.close_timeout = open_timeout, close_timeout
        self.max_connections = max_connections
        self.on_refused = on_refused
        self.refused = 0
        self.connections: set[LeanConnection] = set()
        self._server: asyncio.Server | None = None
        self._handlers: asyncio.TaskGroup | None = None

    @property
    def sockets(self) -> tuple[Any, ...]:
        assert self._server is not None
        return tuple(self._server.sockets)

    async def __aenter__(self) -> LeanServer:
        loop = asyncio.get_running_loop()
        self._handlers = asyncio.TaskGroup()
        await self._handlers.__aenter__()
        try:
            self._server = await loop.create_server(
                lambda: _AsyncioProtocol(self),
                self.host,
                self.port,
                ssl=self.ssl,
                ssl_handshake_timeout=self.open_timeout if self.ssl else None,
            )
        except BaseException as err:
            await self._handlers.__aexit__(type(err), err, err.__traceback__)
            raise
        return self

    def refuse(self, transport: asyncio.BaseTransport) -> None:
        """Over ``max_connections``: answer 503 at once and close, before reading anything."""
        self.refused += 1
        if self.refused == 1 or self.refused % 100 == 0:  # a flood logs a line per hundred
            log.warning(
                "ws.connection.refused",
                reason="max_connections",
                max_connections=self.max_connections,
                refused=self.refused,
                remote=str(transport.get_extra_info("peername")),
            )
        if self.on_refused is not None:
            self.on_refused()
        cast(asyncio.Transport, transport).write(_BUSY)
        transport.close()

    def start_handler(self, connection: LeanConnection) -> None:
        assert self._handlers is not None
        self._handlers.create_task(self._run_handler(connection))

    async def _run_handler(self, connection: LeanConnection) -> None:
        try:
            await self.handler(connection)
        except Exception:  # one connection's failure must not end the server
            log.exception("ws.handler.failed", remote=str(connection.remote_address))
        finally:
            if connection.protocol.state is State.OPEN:
                await connection.close(1000, "")

    async def serve_forever(self) -> None:
        await asyncio.Event().wait()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        assert self._handlers is not None
        self._server.close()
        for connection in list(self.connections):
            if connection.protocol.state is State.OPEN:
                connection.protocol.send_close(1001, "server shutting down")
                connection._flush()
        await asyncio.gather(
            *(c.close(1001, "server shutting down") for c in list(self.connections)),
            return_exceptions=True,
        )
        await self._handlers.__aexit__(None, None, None)
        await self._server.wait_closed()
