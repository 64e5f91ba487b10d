"""One load-generator process: many simulated chargers on one asyncio loop.

The orchestrator (:mod:`bench.ocpp_load`) starts one or more of these with
``multiprocessing`` (spawn), so the chargers get a core of their own, apart from the
server under test. The conversation with the orchestrator over a pipe:

    worker -> ("ready", connected, setup_failed)   every charger has connected and set up
    orch.  -> ("go", t_go, t_start, t_end)         monotonic times: loops run from t_go,
                                                   only [t_start, t_end) is measured
    orch.  -> ("abort",)                           instead of "go": close and report
    worker -> ("result", WorkerResult) or ("failed", traceback)

Each charger boots like real hardware (BootNotification, StatusNotification, a started
transaction) and then either runs closed-loop (next MeterValues as soon as the answer is
in: saturation) or paced (one message per interval at a random phase: site load). Exactly
one CALL is in flight per connection, as OCPP requires.
"""

from __future__ import annotations

import asyncio
import random
import resource
import time
import traceback
from array import array
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Literal

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.typing import Subprotocol

from bench.frames import (
    CALL,
    CALLERROR,
    CALLRESULT,
    SUBPROTOCOL,
    FrameTemplate,
    Timestamps,
    Version,
    answer_payload,
    frames_16,
    frames_201,
)

Mode = Literal["closed", "paced"]
V201Message = Literal["transaction-event", "meter-values"]

MAX_ERROR_SAMPLES = 10


@dataclass(frozen=True, slots=True)
class ChargerSpec:
    index: int  # global, across workers
    charge_point_id: str
    version: Version


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    url: str  # ws://host:port/ocpp (the charge point id is appended)
    chargers: tuple[ChargerSpec, ...]
    mode: Mode
    interval: float = 1.0  # paced mode: seconds between two messages of one charger
    v201_message: V201Message = "transaction-event"
    # A real CSMS must accept the boot and the transaction; the echo server answers {}.
    strict_setup: bool = True
    connect_rate: float = 500.0  # connections per second, whole run
    setup_timeout: float = 30.0  # per setup call and per connection handshake
    grace: float = 10.0  # after t_end, how long an unanswered CALL may still take
    seed: int = 0


@dataclass(slots=True)
class WorkerResult:
    chargers: int = 0
    connected: int = 0
    setup_failed: int = 0
    calls: int = 0  # answered CALLRESULTs sent and answered inside the window
    latencies_ms: bytes = b""  # array('d') of those calls
    call_errors: int = 0  # CALLERROR answers (setup and load)
    protocol_errors: int = 0  # unparsable frames, wrong message ids, unexpected types
    timeouts: int = 0  # CALLs still unanswered `grace` seconds after the window
    disconnects: int = 0  # connections closed during the run
    late_ticks: int = 0  # paced mode: sends that started over an interval late
    server_calls: dict[str, int] = field(default_factory=dict)  # CSMS-initiated, by action
    cpu_seconds: float = 0.0  # this process, during the window
    error_samples: list[str] = field(default_factory=list)


class SetupError(Exception):
    """A charger could not boot or start its transaction."""


class _Stats:
    def __init__(self, total: int) -> None:
        self.result = WorkerResult(chargers=total)
        self.latencies = array("d")
        self.server_calls: Counter[str] = Counter()
        self._pending_setup = total
        self.all_set_up = asyncio.Event()
        if total == 0:
            self.all_set_up.set()

    def setup_done(self, ok: bool) -> None:
        if ok:
            self.result.connected += 1
        else:
            self.result.setup_failed += 1
        self._pending_setup -= 1
        if self._pending_setup == 0:
            self.all_set_up.set()

    def error(self, text: str) -> None:
        if len(self.result.error_samples) < MAX_ERROR_SAMPLES:
            self.result.error_samples.append(text)


@dataclass(slots=True)
class _Window:
    go: asyncio.Event
    aborted: bool = False
    t_go: float = 0.0
    t_start: float = 0.0
    t_end: float = 0.0


# Power, current, voltage readings cycle through a few pre-encoded variants.
_READINGS: tuple[tuple[bytes, bytes, bytes], ...] = tuple(
    (
        b"%.1f" % (11040.0 - 23.0 * k),
        b"%.1f" % ((11040.0 - 23.0 * k) / 690.0),
        b"%.1f" % (230.0 + (k % 3) - 1),
    )
    for k in range(8)
)


class _Charger:
    def __init__(self, spec: ChargerSpec, worker: WorkerSpec, stats: _Stats, window: _Window):
        self.spec = spec
        self.worker = worker
        self.stats = stats
        self.window = window
        self.ws: ClientConnection | None = None
        self.seq = 0
        self.energy = 1000 * (spec.index % 50)
        self.clock = Timestamps()
        self.loop_frame: FrameTemplate | None = None
        self.tx_seq = 0  # 2.0.1 TransactionEvent seqNo
        self.in_flight = False

    # --- one CALL -------------------------------------------------------------------------

    async def call(self, frame: bytes, message_id: bytes, action: str) -> Any:
        """Send ``frame``; return the CALLRESULT payload, or None after an error answer."""
        ws = self.ws
        assert ws is not None
        self.in_flight = True
        await ws.send(frame, text=True)
        while True:
            raw = await ws.recv(decode=False)
            try:
                message = orjson.loads(raw)
                kind = message[0]
                their_id = message[1]
            except (orjson.JSONDecodeError, IndexError, KeyError, TypeError):
                self._protocol_error(f"unparsable frame after {action}: {raw[:200]!r}")
                self.in_flight = False
                return None
            if kind == CALL:
                await self._answer_server_call(message)
                continue
            self.in_flight = False
            if their_id != message_id.decode():
                self._protocol_error(
                    f"{action}: answer for message id {their_id!r}, expected {message_id.decode()!r}"
                )
                return None
            if kind == CALLRESULT and len(message) == 3:
                return message[2]
            if kind == CALLERROR:
                self.stats.result.call_errors += 1
                self.stats.error(
                    f"CALLERROR to {action} from {self.spec.charge_point_id}: "
                    f"{orjson.dumps(message[2:]).decode()[:300]}"
                )
                return None
            self._protocol_error(f"{action}: unexpected answer {raw[:200]!r}")
            return None

    def _protocol_error(self, text: str) -> None:
        self.stats.result.protocol_errors += 1
        self.stats.error(f"{self.spec.charge_point_id}: {text}")

    async def _answer_server_call(self, message: list[Any]) -> None:
        assert self.ws is not None
        action = str(message[2]) if len(message) > 2 else "?"
        self.stats.server_calls[action] += 1
        request = message[3] if len(message) > 3 else {}
        payload = answer_payload(self.spec.version, action, request)
        if payload is None:
            reply = [CALLERROR, message[1], "NotImplemented", f"bench: no {action}", {}]
        else:
            reply = [CALLRESULT, message[1], payload]
        await self.ws.send(orjson.dumps(reply), text=True)

    def _next_id(self) -> bytes:
        self.seq += 1
        return b"%d" % self.seq

    async def setup_call(self, template: FrameTemplate, **values: bytes) -> dict[str, Any]:
        message_id = self._next_id()
        frame = template.render({"id": message_id, "ts": self.clock.now(), **values})
        async with asyncio.timeout(self.worker.setup_timeout):
            payload = await self.call(frame, message_id, template.action)
        if payload is None:
            raise SetupError(f"{template.action} was not answered with a CALLRESULT")
        if not isinstance(payload, dict):
            raise SetupError(f"{template.action} answered with a payload that is no object")
        return payload

    # --- lifecycle --------------------------------------------------------------------------

    async def run(self) -> None:
        spec, worker = self.spec, self.worker
        await asyncio.sleep(spec.index / worker.connect_rate)
        set_up = False
        try:
            async with connect(
                f"{worker.url}/{spec.charge_point_id}",
                subprotocols=[Subprotocol(SUBPROTOCOL[spec.version])],
                compression=None,
                ping_interval=None,
                open_timeout=worker.setup_timeout,
                close_timeout=2,
                max_queue=None,
            ) as ws:
                self.ws = ws
                if ws.subprotocol != SUBPROTOCOL[spec.version]:
                    raise SetupError(f"server chose subprotocol {ws.subprotocol!r}")
                if spec.version == "1.6":
                    await self._setup_16()
                else:
                    await self._setup_201()
                set_up = True
                self.stats.setup_done(ok=True)
                await self.window.go.wait()
                if self.window.aborted:
                    return
                if worker.mode == "closed":
                    await self._closed_loop()
                else:
                    await self._paced_loop()
        except (SetupError, TimeoutError, OSError, InvalidHandshake, InvalidURI) as err:
            self.in_flight = False
            if set_up:
                self.stats.result.disconnects += 1
            self.stats.error(f"{spec.charge_point_id}: {type(err).__name__}: {err}")
        except ConnectionClosed as err:
            self.in_flight = False
            if set_up:
                self.stats.result.disconnects += 1
            self.stats.error(f"{spec.charge_point_id}: connection closed: {err}")
        finally:
            if not set_up:
                self.stats.setup_done(ok=False)

    async def _setup_16(self) -> None:
        frames = frames_16()
        strict = self.worker.strict_setup
        serial = self.spec.charge_point_id.encode()[-25:]
        boot = await self.setup_call(frames.boot, serial=serial)
        if strict and boot.get("status") != "Accepted":
            raise SetupError(f"BootNotification answered {boot!r}")
        await self.setup_call(frames.status, status=b"Available")
        answer = await self.setup_call(
            frames.start_transaction,
            idtag=b"BENCH%05d" % self.spec.index,
            energy=b"%d" % self.energy,
        )
        tx = answer.get("transactionId")
        if strict:
            status = _field(answer, "idTagInfo", "status")
            if status != "Accepted" or not isinstance(tx, int):
                raise SetupError(f"StartTransaction answered {answer!r}")
        if not isinstance(tx, int):
            tx = self.spec.index + 1
        await self.setup_call(frames.status, status=b"Charging")
        self.loop_frame = frames.meter_values.bind(tx=b"%d" % tx)

    async def _setup_201(self) -> None:
        frames = frames_201()
        strict = self.worker.strict_setup
        serial = self.spec.charge_point_id.encode()[-25:]
        boot = await self.setup_call(frames.boot, serial=serial)
        if strict and boot.get("status") != "Accepted":
            raise SetupError(f"BootNotification answered {boot!r}")
        await self.setup_call(frames.status, status=b"Occupied")
        tx = b"bench-tx-%s" % self.spec.charge_point_id.encode()[-26:]
        answer = await self.setup_call(
            frames.transaction_started,
            tx=tx,
            idtag=b"BENCH%05d" % self.spec.index,
            energy=b"%d" % self.energy,
        )
        # idTokenInfo is optional in the answer; when it is there it must accept the token
        token_status = _field(answer, "idTokenInfo", "status")
        if strict and "idTokenInfo" in answer and token_status != "Accepted":
            raise SetupError(f"TransactionEvent(Started) answered {answer!r}")
        self.tx_seq = 0
        if self.worker.v201_message == "transaction-event":
            self.loop_frame = frames.transaction_updated.bind(tx=tx)
        else:
            self.loop_frame = frames.meter_values

    # --- the loops --------------------------------------------------------------------------

    async def _closed_loop(self) -> None:
        template = self.loop_frame
        assert template is not None
        fmt, pick, action = template.fmt, template.getter(), template.action
        values: dict[str, bytes] = {}
        t_start, t_end = self.window.t_start, self.window.t_end
        latencies = self.stats.latencies
        result = self.stats.result
        clock = time.monotonic
        while True:
            frame = fmt % self._fill(values, pick)
            sent = clock()
            payload = await self.call(frame, values["id"], action)
            done = clock()
            if done >= t_end:
                return
            if payload is not None and sent >= t_start:
                result.calls += 1
                latencies.append((done - sent) * 1000.0)

    async def _paced_loop(self) -> None:
        template = self.loop_frame
        assert template is not None
        fmt, pick, action = template.fmt, template.getter(), template.action
        values: dict[str, bytes] = {}
        t_start, t_end, interval = self.window.t_start, self.window.t_end, self.worker.interval
        latencies = self.stats.latencies
        result = self.stats.result
        clock = time.monotonic
        rng = random.Random(self.worker.seed * 1_000_003 + self.spec.index)
        due = self.window.t_go + rng.uniform(0.0, interval)
        while due < t_end:
            now = clock()
            if due > now:
                await asyncio.sleep(due - now)
            elif now - due > interval:
                if now >= t_start:
                    result.late_ticks += 1
                due = now
            frame = fmt % self._fill(values, pick)
            sent = clock()
            payload = await self.call(frame, values["id"], action)
            done = clock()
            if payload is not None and sent >= t_start and done < t_end:
                result.calls += 1
                latencies.append((done - sent) * 1000.0)
            due += interval

    def _fill(self, values: dict[str, bytes], pick: Any) -> Any:
        seq = self.seq + 1
        self.seq = seq
        self.energy += 3
        self.tx_seq += 1
        power, current, voltage = _READINGS[seq & 7]
        values["id"] = b"%d" % seq
        values["ts"] = self.clock.now()
        values["seq"] = b"%d" % self.tx_seq
        values["energy"] = b"%d" % self.energy
        values["power"] = power
        values["current"] = current
        values["voltage"] = voltage
        picked = pick(values)
        return picked if isinstance(picked, tuple) else (picked,)


def _field(payload: dict[str, Any], outer: str, inner: str) -> Any:
    value = payload.get(outer)
    return value.get(inner) if isinstance(value, dict) else None


async def _worker(spec: WorkerSpec, pipe: Connection) -> WorkerResult:
    stats = _Stats(len(spec.chargers))
    window = _Window(go=asyncio.Event())
    chargers = [_Charger(c, spec, stats, window) for c in spec.chargers]
    tasks = [asyncio.create_task(c.run(), name=c.spec.charge_point_id) for c in chargers]
    try:
        await stats.all_set_up.wait()
        pipe.send(("ready", stats.result.connected, stats.result.setup_failed))
        command = await asyncio.to_thread(pipe.recv)
        if command[0] == "go":
            _, window.t_go, window.t_start, window.t_end = command
        else:
            window.aborted = True
        window.go.set()
        if not window.aborted:
            await _sleep_until(window.t_start)
            cpu_start = time.process_time()
            await _sleep_until(window.t_end)
            stats.result.cpu_seconds = time.process_time() - cpu_start
        deadline = (window.t_end if not window.aborted else time.monotonic()) + spec.grace
        _done, pending = await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))
        for charger in chargers:
            if charger.in_flight and not window.aborted:
                stats.result.timeouts += 1
        if pending and not window.aborted:
            stats.error(f"{len(pending)} charger(s) still waiting for an answer after the run")
    finally:
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
    stats.result.latencies_ms = stats.latencies.tobytes()
    stats.result.server_calls = dict(stats.server_calls)
    return stats.result


async def _sleep_until(t: float) -> None:
    delay = t - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


def raise_nofile(wanted: int) -> None:
    """Raise the soft open-files limit towards ``wanted`` (never above the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def run_worker(spec: WorkerSpec, pipe: Connection) -> None:
    """Process entry point."""
    raise_nofile(len(spec.chargers) + 256)
    try:
        result = asyncio.run(_worker(spec, pipe))
    except BaseException:
        pipe.send(("failed", traceback.format_exc()))
        raise
    pipe.send(("result", result))
