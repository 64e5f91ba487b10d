"""One charger's OCPP-J connection: read frames, answer CALLs, send our own CALLs.

The hot path (a charger's CALL in, our CALLRESULT out) runs inside the websocket
layer's callback: parse with orjson, validate with compiled schemas, call the handler,
then send once the handler's write is committed, from the commit's own callback. A
handler that has to wait for more than its write (a read, a lookup) is a coroutine and
runs as a task. A charger's CALLs are answered one at a time, in the order they came,
as OCPP-J wants; answers to our own CALLs are matched by message id as they arrive.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections import deque
from collections.abc import Awaitable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final

import structlog
from websockets.exceptions import ConnectionClosed

from edge.metrics import OcppMetrics
from edge.ocpp.websocket import LeanConnection
from edge.storage.sqlite import StoreError
from ocpp_handlers import v16
from ocpp_handlers.base import Answer, Handler, HandlerContext, OcppError, Payload
from ocpp_handlers.framing import (
    Call,
    CallError,
    CallResult,
    FrameError,
    encode_call,
    encode_error,
    encode_result,
    parse,
)
from ocpp_handlers.schemas import SchemaViolation, Version, known_actions, validate, validator

TAIL_LENGTH: Final = 200
# What a 2.0.1 station may send while its boot is Pending (B02.FR.09): its boot, and the
# reports the site asks for then.
PENDING_ALLOWED: Final = frozenset({"BootNotification", "NotifyReport", "NotifyMonitoringReport"})
_ids = itertools.count(1)
_ID_PREFIX: Final = os.urandom(3).hex()


class CallFailed(Exception):
    """The charger answered our CALL with a CALLERROR."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description


# A frame in the tail: (unix time, "in" or "out", text). A plain tuple, not a NamedTuple:
# the garbage collector stops tracking plain tuples of strings and numbers, and the tail
# (two entries per message, for every charger) would otherwise be what drives the full
# collections that stall the event loop.
LoggedFrame = tuple[float, str, str]


class ChargerConnection:
    def __init__(
        self,
        ws: LeanConnection,
        ctx: HandlerContext,
        handlers: Mapping[str, Handler],
        metrics: OcppMetrics,
        *,
        strict: bool = False,
    ) -> None:
        self.ws = ws
        # validation "strict": a message that breaks its schema is refused as it is
        self.strict = strict
        # the charger's last boot was answered Pending (2.0.1 refuses most of what it sends)
        self.pending = False
        self.ctx = ctx
        self.version = ctx.version
        self.handlers = handlers
        self.metrics = metrics
        self.tail: deque[LoggedFrame] = deque(maxlen=TAIL_LENGTH)
        self.connected_at = datetime.now(UTC)
        self._pending: dict[str, asyncio.Future[Payload]] = {}
        self._call_lock = asyncio.Lock()
        self._answering = False  # a CALL of the charger's is being answered
        self._waiting: deque[Call] = deque()  # its CALLs that came meanwhile
        self._tasks: asyncio.TaskGroup | None = None
        self._drained: asyncio.Future[None] | None = None  # set when closed while answering
        self.log = structlog.get_logger(__name__).bind(
            site=ctx.site.site_id, charger=ctx.charger_id, version=ctx.version.value
        )

    @property
    def charger_id(self) -> str:
        return self.ctx.charger_id

    async def serve(self) -> None:
        """Answer the charger until the connection closes."""
        try:
            async with asyncio.TaskGroup() as tasks:  # the handlers that are coroutines
                self._tasks = tasks
                self.ws.attach(self.feed)
                await self.ws.wait_closed()
                if self._answering:  # what the charger sent before it left is still handled
                    self._drained = asyncio.get_running_loop().create_future()
                    await self._drained
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("charger disconnected"))

    def feed(self, text: str) -> None:
        """One message from the charger, handed over by the websocket layer on arrival."""
        try:
            self._on_frame(text)
        except Exception:  # raised into the transport, it would drop the connection
            self.log.exception("ocpp.frame.failed")

    def _on_frame(self, text: str) -> None:
        self.tail.append((time.time(), "in", text[:2000]))
        self.ctx.site.seen(self.ctx.charger_id)
        try:
            frame = parse(self.version, text)
        except FrameError as err:
            self.metrics.message("(frame)", err.code)
            self.log.warning("ocpp.frame.rejected", code=err.code, reason=err.description)
            self._send(encode_error(err.unique_id, err.code, err.description))
            return
        if isinstance(frame, Call):
            if self._answering:
                self._waiting.append(frame)
            else:
                self._on_call(frame)
        elif isinstance(frame, CallResult):
            self._settle(frame.unique_id, frame.payload, None)
        else:
            self._settle(frame.unique_id, None, frame)

    def _on_call(self, call: Call) -> None:
        started = time.perf_counter()
        action = call.action
        handler = self.handlers.get(action)
        if handler is None:
            known = action in known_actions(self.version)
            code = "NotSupported" if known else "NotImplemented"
            self.metrics.message(action if known else "(unknown)", code)
            self.log.warning("ocpp.call.unhandled", action=action[:64], code=code)
            self._send(encode_error(call.unique_id, code, f"{action[:64]} is not handled"))
            return
        if self.pending and action not in PENDING_ALLOWED and self.version is Version.V201:
            self._refuse_while_pending(call)
            return
        try:
            self._validate_call(action, call.payload)
            outcome = handler(self.ctx, call.payload)
        except Exception as err:  # noqa: BLE001 -- answered and logged by _refuse
            self._refuse(call, err)
            return
        if not isinstance(outcome, Answer):
            assert self._tasks is not None
            self._answering = True
            self._tasks.create_task(self._answer_later(call, outcome, started))
        elif outcome.stored is None:
            self._answer(call, outcome.payload, started)
        else:
            self._answering = True
            outcome.stored.add_done_callback(
                partial(self._answer_stored, call, outcome.payload, started)
            )

    async def _answer_later(self, call: Call, answer: Awaitable[Payload], started: float) -> None:
        try:
            payload = await answer
        except Exception as err:  # noqa: BLE001 -- answered and logged by _refuse
            self._refuse(call, err)
        else:
            self._answer(call, payload, started)
        self._next_call()

    def _answer_stored(
        self, call: Call, payload: Payload, started: float, stored: asyncio.Future[None]
    ) -> None:
        try:
            if stored.cancelled():
                self._refuse(call, StoreError("the write was cancelled"))
            elif (error := stored.exception()) is not None:
                self._refuse(call, error)
            else:
                self._answer(call, payload, started)
        finally:  # whatever happened, the charger's next CALL must not wait forever
            self._next_call()

    def _next_call(self) -> None:
        self._answering = False
        while self._waiting and not self._answering:
            self._on_call(self._waiting.popleft())
        if not self._answering and self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def _answer(self, call: Call, payload: Payload, started: float) -> None:
        try:
            validate(self.version, call.action, payload, response=True)
        except SchemaViolation as err:
            self._refuse(call, err)
            return
        self._send(encode_result(call.unique_id, payload))
        self.metrics.handled(call.action, time.perf_counter() - started)

    def _refuse(self, call: Call, err: BaseException) -> None:
        """Answer a CALL that failed with the CALLERROR its failure calls for."""
        action = call.action
        if isinstance(err, SchemaViolation | OcppError):
            code, description = err.code, err.description
            self.log.warning("ocpp.call.rejected", action=action, code=code, reason=description)
        elif isinstance(err, StoreError):
            code, description = "InternalError", "could not store"
            self.log.error("ocpp.call.store_failed", action=action, error=str(err))
        else:
            code, description = "InternalError", "handler failed"
            self.log.error("ocpp.call.failed", action=action, exc_info=err)
        self.metrics.message(action, code)
        self._send(encode_error(call.unique_id, code, description))

    def _refuse_while_pending(self, call: Call) -> None:
        """2.0.1 B02.FR.09: a station whose boot is Pending sends only BootNotification
        and what the site asked for (a report); anything else is a SecurityError."""
        self.metrics.message(call.action, "SecurityError")
        self.log.warning("ocpp.call.while_pending", action=call.action)
        self._send(encode_error(call.unique_id, "SecurityError", "boot is Pending"))

    def _validate_call(self, action: str, payload: Payload) -> None:
        if self.strict:  # no quirk repaired, no odd word tolerated
            validator(self.version, action, False)(payload)
            return
        try:
            validate(self.version, action, payload)
        except SchemaViolation:
            # Known firmware quirks are repaired only when the message fails as sent.
            if self.version is Version.V16 and v16.fix_quirks(action, payload):
                validate(self.version, action, payload)
            else:
                raise

    def _send(self, text: str) -> None:
        self.tail.append((time.time(), "out", text[:2000]))
        try:
            self.ws.send_now(text)
        except ConnectionClosed:
            self.log.info("ocpp.send.closed")

    def _settle(self, unique_id: str, payload: Payload | None, error: CallError | None) -> None:
        future = self._pending.pop(unique_id, None)
        if future is None or future.done():
            self.log.warning("ocpp.answer.unexpected", unique_id=unique_id[:40])
            return
        if error is not None:
            future.set_exception(CallFailed(error.code, error.description))
        else:
            assert payload is not None
            future.set_result(payload)

    async def call(self, action: str, payload: Payload, wait: float) -> Payload:
        """Send a CALL and wait for its answer; one CALL in flight at a time (OCPP-J)."""
        validate(self.version, action, payload)
        async with self._call_lock:
            unique_id = f"{_ID_PREFIX}-{next(_ids)}"
            future: asyncio.Future[Payload] = asyncio.get_running_loop().create_future()
            self._pending[unique_id] = future
            self._send(encode_call(unique_id, action, payload))
            try:
                async with asyncio.timeout(wait):
                    response = await future
            finally:
                self._pending.pop(unique_id, None)
        try:
            validate(self.version, action, response, response=True)
        except SchemaViolation as err:
            self.log.warning("ocpp.answer.invalid", action=action, reason=err.description)
            raise CallFailed(err.code, f"charger's answer is invalid: {err.description}") from err
        return response

    def tail_view(self, limit: int = 50) -> list[dict[str, Any]]:
        frames = list(self.tail)[-limit:]
        return [
            {"at": datetime.fromtimestamp(at, UTC).isoformat(), "direction": way, "frame": text}
            for at, way, text in frames
        ]

    async def close(self, code: int, reason: str) -> None:
        await self.ws.close(code, reason)
