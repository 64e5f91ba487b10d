"""A real edge daemon under OCPP fuzz: the process, the fuzzing chargers, a canary.

Shared by ``tests/edge/ocpp/test_ocpp_fuzz.py`` (bounded, in CI) and ``bench/ocpp_fuzz.py``
(long runs). The daemon runs as ``evpark edge run --log-format json`` in its own process,
so a crash, a dead thread or a traceback shows up as it would under systemd. The clients
are synchronous (websockets' threading client): hypothesis drives them one message at a
time, and the canary runs in its own thread, so a daemon that stops answering fails the
canary too, whatever the fuzzing charger is doing.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import httpx
import hypothesis
from hypothesis import HealthCheck, given, settings
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from ocpp_handlers.schemas import SchemaViolation, Version, validate
from tests.harness.ports import free_port
from tests.harness.processes import DaemonProcess, edge_run_command
from tests.harness.site_config import write_site_toml
from tests.ocpp_strategies import (
    SPEC_ERROR_CODES,
    Payload,
    Step,
    encode_call,
    has_lone_surrogate,
    payloads,
    schema_errors,
    session_steps,
)

# How long an answer may take before the daemon counts as hung: generous, the machine is
# shared; it is a bound on a hang, not a measured time.
ANSWER_WAIT: Final = 20.0
CANARY_PERIOD: Final = 0.05
FRAME_LIMIT: Final = 256 * 1024  # the edge's own limit (ocpp_server.py)
BOOT: Final[dict[Version, Payload]] = {
    Version.V16: {"chargePointVendor": "evpark", "chargePointModel": "Fuzz"},
    Version.V201: {
        "chargingStation": {"vendorName": "evpark", "model": "Fuzz"},
        "reason": "PowerUp",
    },
}
# Lines at these levels are expected in a fuzz run: refused messages are warnings.
_BAD_LEVELS: Final = frozenset({"error", "critical", "exception"})


class FuzzFailure(AssertionError):
    """The daemon answered a schema-valid message wrongly, or not at all."""


def fuzz_settings(examples: int, *, derandomize: bool = True) -> settings:
    """The hypothesis settings of a fuzz run: no deadline (the daemon is shared and the
    machine loaded; hangs are caught by ANSWER_WAIT), no example database (the CI run is
    derandomized: the same examples every time, so a failure reproduces as it is)."""
    return settings(
        max_examples=examples,
        derandomize=derandomize,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.function_scoped_fixture,
        ],
        print_blob=True,
    )


def write_config(
    path: Path, ocpp_port: int, http_port: int, extra: Mapping[str, Any] | None = None
) -> Path:
    """The fuzzed site's config; ``extra``: more sections (e.g. ``central``)."""
    return write_site_toml(
        path,
        {
            "site": {"id": "fuzz-site", "environment": "development"},
            "ocpp": {"host": "127.0.0.1", "port": ocpp_port, "auto_register": True,
                     "heartbeat_interval": 86400},
            "http": {"host": "127.0.0.1", "port": http_port},
            "authorization": {"allow_any_id_tag": True},
            "mqtt": {"url": f"mqtt://127.0.0.1:{free_port()}", "embedded": False},
            **(extra or {}),
        },
    )  # fmt: skip


class EdgeProcess(DaemonProcess):
    """``evpark edge run`` on free ports, its log (JSON lines) in a file."""

    def __init__(self, workdir: Path, extra_config: Mapping[str, Any] | None = None) -> None:
        self.workdir = workdir
        self.extra_config = dict(extra_config or {})
        self.ocpp_port, self.http_port = free_port(), free_port()
        self.config = workdir / "site.toml"
        super().__init__(
            "edge daemon",
            edge_run_command(self.config, workdir / "data"),
            workdir / f"edge-{self.ocpp_port}.log",
        )
        self._log_seen = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.ocpp_port}/ocpp"

    def start(self) -> None:
        """Start it and wait until /healthz says ok."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        write_config(self.config, self.ocpp_port, self.http_port, self.extra_config)
        super().start()
        self.wait_until(self.healthy, "/healthz says ok", within=60)

    def health(self) -> dict[str, Any] | None:
        try:
            answer = httpx.get(f"http://127.0.0.1:{self.http_port}/healthz", timeout=ANSWER_WAIT)
        except httpx.TransportError:
            return None
        if answer.status_code != 200:
            return None
        body: dict[str, Any] = answer.json()
        return body

    def healthy(self) -> bool:
        health = self.health()
        return health is not None and health.get("status") == "ok"

    def unreadable_pages(self) -> list[str]:
        """Local API pages that do not answer 200 now that fuzzed data is stored (the
        chargers', their events, the sessions): extreme values must render too."""
        paths = ["/api/chargers", "/api/sessions", "/api/events", "/metrics"]
        paths += [f"/api/chargers/FUZZ-{v.name}{tail}" for v in Version for tail in ("", "/events")]
        failed = []
        with httpx.Client(
            base_url=f"http://127.0.0.1:{self.http_port}", timeout=ANSWER_WAIT
        ) as api:
            sessions = api.get("/api/sessions")
            if sessions.status_code == 200:
                paths += [f"/api/sessions/{s['id']}" for s in sessions.json()[:20]]
            for path in paths:
                answer = api.get(path)
                if answer.status_code != 200:
                    failed.append(f"{path}: {answer.status_code} {answer.text[:200]}")
        return failed

    def log_problems(self) -> list[str]:
        """Log lines that say something went wrong inside: an error, a traceback."""
        return self._problems(self.log.read_bytes())

    def new_log_problems(self) -> list[str]:
        """The problems logged since the last call."""
        with self.log.open("rb") as log:
            log.seek(self._log_seen)
            text = log.read()
        complete = text.rfind(b"\n") + 1  # a line still being written waits for next time
        self._log_seen += complete
        return self._problems(text[:complete])

    @staticmethod
    def _problems(text: bytes) -> list[str]:
        problems = []
        for line in text.decode(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                problems.append(line)  # not structlog's: a raw traceback or a crash
                continue
            if not isinstance(entry, dict):
                problems.append(line)
            elif entry.get("level") in _BAD_LEVELS or "exception" in entry:
                problems.append(line[:2000])
        return problems


class Charger:
    """One synchronous OCPP-J connection: sends CALLs, waits for the matching answer,
    refuses the daemon's own CALLs (NotImplemented) so they never block it."""

    def __init__(self, url: str, charger_id: str, version: Version) -> None:
        self.url = f"{url}/{charger_id}"
        self.version = version
        self._ids = itertools.count(1)
        self._ws: ClientConnection | None = None

    def connect(self) -> None:
        self.close()
        self._ws = connect(
            self.url,
            subprotocols=[Subprotocol(self.version.value)],
            max_size=None,
            open_timeout=ANSWER_WAIT,
            # no keepalive pings: their payloads come from the global `random`, which
            # hypothesis must see untouched while it draws (the daemon pings us anyway)
            ping_interval=None,
        )
        answer = self.call("BootNotification", BOOT[self.version])
        if answer[0] != 3 or answer[2].get("status") != "Accepted":
            raise FuzzFailure(f"a plain BootNotification was not accepted: {answer}")

    def close(self) -> None:
        if self._ws is not None:
            self._ws.close()
            self._ws = None

    def call(self, action: str, payload: Payload) -> list[Any]:
        """Send a CALL; return the answering frame (its id, or "-1" for an unreadable one)."""
        if self._ws is None:
            raise ConnectionError("not connected")
        unique_id = f"f{next(self._ids)}"
        text = encode_call(unique_id, action, payload)
        self._ws.send(text)
        deadline = time.monotonic() + ANSWER_WAIT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer to {action} within {ANSWER_WAIT:.0f} s")
            raw = self._ws.recv(timeout=left)
            frame = json.loads(raw)
            if frame[0] == 2:  # the daemon's own CALL
                refusal = [4, frame[1], "NotImplemented", "fuzzing charger", {}]
                self._ws.send(json.dumps(refusal))
                continue
            if frame[1] in (unique_id, "-1"):
                return list(frame)


class Canary(threading.Thread):
    """A well-behaved charger on its own connection: a Heartbeat every 50 ms, each of
    which must be answered (within ANSWER_WAIT) with a valid CALLRESULT."""

    def __init__(self, url: str, version: Version = Version.V16) -> None:
        super().__init__(name="ocpp-canary", daemon=True)
        self.charger = Charger(url, "CANARY-1", version)
        self.answered = 0
        self.failures: list[str] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            self.charger.connect()
            while not self._stop_event.is_set():
                frame = self.charger.call("Heartbeat", {})
                if frame[0] != 3:
                    self.failures.append(f"heartbeat answered with {frame}")
                else:
                    self.answered += 1
                self._stop_event.wait(CANARY_PERIOD)
        except Exception as err:  # the test reads failures; the thread must end cleanly
            self.failures.append(f"{type(err).__name__}: {err}")
        finally:
            self.charger.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(ANSWER_WAIT + 5)

    def check(self) -> None:
        if self.failures:
            raise FuzzFailure(f"the canary charger was disturbed: {self.failures[:3]}")

    def wait_for_more(self, count: int = 2) -> None:
        """The canary is still being answered now: ``count`` more heartbeats come back."""
        target = self.answered + count
        deadline = time.monotonic() + ANSWER_WAIT
        while self.answered < target and not self.failures and time.monotonic() < deadline:
            time.sleep(CANARY_PERIOD)
        self.check()
        if self.answered < target:
            raise FuzzFailure("the canary's heartbeats stopped being answered")


class FuzzSite:
    """The daemon, one fuzzing charger per version and the canary, with a tally."""

    def __init__(self, workdir: Path, extra_config: Mapping[str, Any] | None = None) -> None:
        self.edge = EdgeProcess(workdir, extra_config)
        self.chargers: dict[Version, Charger] = {}
        self.canary: Canary | None = None
        self.sent = 0
        self.answers: Counter[str] = Counter()  # "CALLRESULT" or a CALLERROR code
        self.by_action: Counter[tuple[str, str, str]] = Counter()  # (version, action, answer)

    def __enter__(self) -> FuzzSite:
        self.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
        self.edge.stop()

    def start(self) -> None:
        self.edge.start()
        self.chargers = {v: Charger(self.edge.url, f"FUZZ-{v.name}", v) for v in Version}
        self.canary = Canary(self.edge.url)
        self.canary.start()
        for charger in self.chargers.values():
            charger.connect()
        self.canary.wait_for_more()

    def close(self) -> None:
        for charger in self.chargers.values():
            charger.close()
        if self.canary is not None:
            self.canary.stop()

    def restart(self) -> None:
        """A fresh daemon after a crash (the long fuzz goes on; the log keeps both)."""
        self.close()
        self.edge.stop(within=10)
        self.edge = EdgeProcess(self.edge.workdir, self.edge.extra_config)
        self.start()

    def reboot(self, version: Version) -> None:
        """A clean BootNotification on a fresh connection (before each action's run)."""
        self.chargers[version].connect()

    def check_steps(self, version: Version, steps: list[Step]) -> None:
        """A session's messages in order; a linked 1.6 message gets the transactionId
        the edge answered the last StartTransaction with."""
        transaction: int | None = None
        for action, payload, linked in steps:
            if linked and transaction is not None and action in ("MeterValues", "StopTransaction"):
                payload = {**payload, "transactionId": transaction}
            frame = self.check(version, action, payload)
            if action == "StartTransaction" and frame[0] == 3:
                transaction = frame[2]["transactionId"]

    def check(self, version: Version, action: str, payload: Payload) -> list[Any]:
        """Send one schema-valid message; fail unless the daemon answers it as the spec
        allows and the canary is still answered."""
        problem = schema_errors(version, action, payload)
        assert problem is None, f"the strategy made an invalid payload: {problem}"
        size = len(encode_call("f1", action, payload).encode())
        assert size < FRAME_LIMIT, f"the strategy made a frame of {size} bytes"
        assert self.canary is not None
        self.canary.check()
        charger = self.chargers[version]
        self.sent += 1
        try:
            frame = charger.call(action, payload)
        except (TimeoutError, ConnectionClosed, ConnectionError) as err:
            self._count(version, action, "(none)")
            alive = "alive" if self.edge.alive() else f"dead (exit {self.edge.exit_code()})"
            charger.close()  # the next example starts on a new connection
            self._reconnect(version)
            raise FuzzFailure(
                f"{action}: no answer ({type(err).__name__}: {err}); daemon {alive}"
            ) from err
        self._judge(version, action, payload, frame)
        problems = self.edge.new_log_problems()
        if problems:
            raise FuzzFailure(
                f"{action}: the daemon logged {len(problems)} problem(s): {problems[:2]}"
            )
        self.canary.check()
        return frame

    def _reconnect(self, version: Version) -> None:
        # if this fails too, the next example fails on its own, with its own reason
        with contextlib.suppress(OSError, TimeoutError, ConnectionClosed, FuzzFailure):
            self.chargers[version].connect()

    def _count(self, version: Version, action: str, answer: str) -> None:
        self.answers[answer] += 1
        self.by_action[version.value, action, answer] += 1

    def _judge(self, version: Version, action: str, payload: Payload, frame: list[Any]) -> None:
        if frame[0] == 3:
            self._count(version, action, "CALLRESULT")
            try:
                validate(version, action, frame[2], response=True)
            except SchemaViolation as err:
                raise FuzzFailure(f"{action}: the CALLRESULT breaks its schema: {err}") from err
            return
        if frame[0] != 4 or len(frame) < 4:
            raise FuzzFailure(f"{action}: not a CALLRESULT or CALLERROR: {str(frame)[:300]}")
        code = str(frame[2])
        self._count(version, action, code)
        if frame[1] == "-1" and not has_lone_surrogate(payload):
            raise FuzzFailure(f"{action}: a valid frame was taken as unreadable: {frame}")
        if code not in SPEC_ERROR_CODES[version]:
            raise FuzzFailure(f"{action}: {code} is not a {version.value} CALLERROR code")
        if code == "InternalError":  # the daemon's way of saying a handler or a write failed
            raise FuzzFailure(f"{action}: InternalError ({frame[3]!r})")


def fuzz_sessions(
    site: FuzzSite, version: Version, fuzz: settings, seed: int | None = None
) -> None:
    """Run hypothesis over sequences of a session's messages (``session_steps``)."""
    site.reboot(version)
    site.edge.new_log_problems()

    @fuzz
    @given(steps=session_steps(version))
    def one_session(steps: list[Step]) -> None:
        site.check_steps(version, steps)

    (one_session if seed is None else hypothesis.seed(seed)(one_session))()
    assert site.canary is not None
    site.canary.wait_for_more()


def fuzz_action(
    site: FuzzSite, version: Version, action: str, fuzz: settings, seed: int | None = None
) -> None:
    """Run hypothesis over one action: every example must pass ``site.check``; then the
    canary must still be answered and the daemon's log must show nothing gone wrong."""
    site.reboot(version)
    site.edge.new_log_problems()  # what an earlier run left was reported with it

    @fuzz
    @given(payload=payloads(version, action))
    def one_message(payload: Payload) -> None:
        site.check(version, action, payload)

    (one_message if seed is None else hypothesis.seed(seed)(one_message))()
    assert site.canary is not None
    site.canary.wait_for_more()
    problems = site.edge.new_log_problems()
    if problems:
        raise FuzzFailure(f"{action}: the daemon logged {len(problems)} problem(s): {problems[:3]}")
