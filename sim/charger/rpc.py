"""OCPP-J framing for one charger connection (RPC over a websocket), both versions.

``OcppConnection.call`` sends a CALL and waits for its CALLRESULT; ``serve`` reads
frames, resolves pending calls and answers the central system's CALLs through a
handler. Both directions are validated against the official schemas: our requests and
answers before they leave (a bug in the simulator is an exception, never a bad frame on
the wire), the central system's requests and answers on arrival.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from sim.charger.schemas import OcppVersion, SchemaViolation, UnknownAction, validate

CALL, CALLRESULT, CALLERROR = 2, 3, 4

FollowUp = Callable[[], Awaitable[None]]


class ChargerError(Exception):
    """Base of the simulator's connection errors."""


class NotConnected(ChargerError):
    """The charger has no booted connection right now."""


class ConnectionLost(ChargerError):
    """The websocket closed while a call was in flight."""


class CallTimeout(ChargerError):
    """The central system did not answer a call in time."""


class CallError(ChargerError):
    """The central system answered a call with a CALLERROR (or an invalid CALLRESULT)."""

    def __init__(self, code: str, description: str) -> None:
        self.code = code
        self.description = description
        super().__init__(f"{code}: {description}")


class Rejected(Exception):
    """Raised by a handler to answer with a CALLERROR of ``code``."""

    def __init__(self, code: str, description: str = "") -> None:
        self.code = code
        self.description = description
        super().__init__(f"{code}: {description}")


@dataclass(frozen=True)
class Reply:
    """A handler's answer; ``then`` runs after the answer has been sent."""

    payload: dict[str, Any]
    then: FollowUp | None = None


Handler = Callable[[str, dict[str, Any]], Awaitable[Reply]]


@dataclass(frozen=True)
class Exchange:
    """One message seen on the connection, kept for tests and logs."""

    direction: str  # "sent" or "received"
    action: str
    payload: dict[str, Any]


@dataclass
class OcppConnection:
    ws: ClientConnection
    version: OcppVersion
    on_follow_up: Callable[[FollowUp], None]
    call_timeout: float = 30.0
    log: structlog.stdlib.BoundLogger = field(default_factory=lambda: structlog.get_logger())
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _pending: dict[str, tuple[str, asyncio.Future[dict[str, Any]]]] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    closed: bool = False

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Send one CALL (one in flight at a time, as OCPP-J requires) and return the
        validated answer."""
        validate(self.version, action, "request", payload)
        async with self._lock:
            if self.closed:
                raise ConnectionLost("connection closed")
            unique_id = str(next(self._ids))
            future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self._pending[unique_id] = (action, future)
            try:
                await self._send([CALL, unique_id, action, payload])
                async with asyncio.timeout(self.call_timeout):
                    return await future
            except TimeoutError as err:
                raise CallTimeout(f"{action} unanswered after {self.call_timeout}s") from err
            finally:
                self._pending.pop(unique_id, None)

    async def serve(self, handler: Handler) -> None:
        """Read frames until the connection closes, then fail the pending calls and raise
        :class:`ConnectionLost`."""
        try:
            async for raw in self.ws:
                await self._on_frame(raw, handler)
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            for _, future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionLost("connection closed"))
        raise ConnectionLost("connection closed")

    async def _send(self, frame: list[Any]) -> None:
        try:
            await self.ws.send(orjson.dumps(frame).decode())
        except ConnectionClosed as err:
            raise ConnectionLost("connection closed while sending") from err

    async def _on_frame(self, raw: str | bytes, handler: Handler) -> None:
        try:
            frame = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.log.warning("sim.rpc.bad_frame", frame=str(raw)[:200])
            return
        if not isinstance(frame, list) or len(frame) < 3 or not isinstance(frame[1], str):
            self.log.warning("sim.rpc.bad_frame", frame=str(raw)[:200])
            return
        kind, unique_id = frame[0], frame[1]
        if kind == CALL and len(frame) == 4 and isinstance(frame[3], dict):
            await self._answer(unique_id, str(frame[2]), frame[3], handler)
        elif kind == CALLRESULT and isinstance(frame[2], dict):
            self._resolve(unique_id, frame[2])
        elif kind == CALLERROR and len(frame) >= 4:
            pending = self._pending.get(unique_id)
            if pending is not None and not pending[1].done():
                pending[1].set_exception(CallError(str(frame[2]), str(frame[3])))
        else:
            self.log.warning("sim.rpc.bad_frame", frame=str(raw)[:200])

    def _resolve(self, unique_id: str, payload: dict[str, Any]) -> None:
        pending = self._pending.get(unique_id)
        if pending is None:
            self.log.warning("sim.rpc.unexpected_result", unique_id=unique_id)
            return
        action, future = pending
        if future.done():
            return
        try:
            validate(self.version, action, "response", payload)
        except SchemaViolation as err:
            future.set_exception(CallError("FormationViolation", str(err)))
        else:
            future.set_result(payload)

    async def _answer(
        self, unique_id: str, action: str, payload: dict[str, Any], handler: Handler
    ) -> None:
        try:
            validate(self.version, action, "request", payload)
            reply = await handler(action, payload)
        except UnknownAction:
            await self._send_error(unique_id, "NotImplemented", f"unknown action {action}")
            return
        except SchemaViolation as err:
            await self._send_error(unique_id, _violation_code(self.version), str(err))
            return
        except Rejected as err:
            await self._send_error(unique_id, err.code, err.description)
            return
        except (KeyError, TypeError, ValueError) as err:
            # A payload the handler could not use despite a valid schema: answer, stay up.
            self.log.exception("sim.rpc.handler_failed", action=action)
            await self._send_error(unique_id, "InternalError", f"{type(err).__name__}: {err}")
            return
        # Our own answer must be valid: an invalid one is a simulator bug and raises.
        validate(self.version, action, "response", reply.payload)
        await self._send([CALLRESULT, unique_id, reply.payload])
        if reply.then is not None:
            self.on_follow_up(reply.then)

    async def _send_error(self, unique_id: str, code: str, description: str) -> None:
        self.log.info("sim.rpc.call_error_sent", code=code, description=description[:200])
        await self._send([CALLERROR, unique_id, code, description[:255], {}])


def _violation_code(version: OcppVersion) -> str:
    # 1.6 names it FormationViolation; 2.0.1 renamed it FormatViolation.
    return "FormationViolation" if version == "1.6" else "FormatViolation"
