"""OCPP load benchmark of the edge daemon (issue 2, point 13).

Two loads against one edge daemon, each started fresh as a subprocess (or ``--url``):

* ``saturation``: N simulated OCPP 1.6 chargers in closed loop, one MeterValues CALL in
  flight each; the same load against a bare websockets echo server in the same run; prints
  both rates and the ratio edge/echo.
* ``site``: N chargers of mixed versions, one meter message per second each; prints
  p50/p99 CALL -> CALLRESULT latency and the daemon's peak RSS.

    python -m bench.ocpp_load all
    python -m bench.ocpp_load saturation --chargers 200 --duration 15
    python -m bench.ocpp_load site --chargers 1000 --duration 30 --json

See bench/README.md for how to read the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import secrets
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Final, cast

if __package__ in (None, ""):  # run as `python bench/ocpp_load.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.frames import Version, validate_all
from bench.load_worker import (
    ChargerSpec,
    Mode,
    V201Message,
    WorkerResult,
    WorkerSpec,
    raise_nofile,
    run_worker,
)
from edge.event_loop import uvloop_installed

TARGET_RATIO = 0.5  # saturation: edge rate / echo rate, at least
TARGET_P99_MS = 20.0  # site load: p99 CALL -> CALLRESULT, below
TARGET_RSS_MB = 300.0  # site load: the daemon's peak RSS, below

DEFAULT_EDGE_CMD = "{evpark} edge run --config {config} --data-dir {data_dir} --log-format json"
ECHO_SERVER = Path(__file__).resolve().with_name("echo_server.py")


def _say(text: str) -> None:
    sys.stderr.write(f"[bench] {text}\n")
    sys.stderr.flush()


class BenchError(Exception):
    """The bench could not run (a target did not start, a worker crashed, ...)."""


# --- processes under test -------------------------------------------------------------------


class ProcessProbe:
    """Memory and CPU of one process, from /proc (Linux)."""

    _tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def _status_kb(self, key: str) -> float | None:
        try:
            text = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith(key + ":"):
                return float(line.split()[1])
        return None

    def rss_mb(self) -> float | None:
        kb = self._status_kb("VmRSS")
        return None if kb is None else kb / 1024.0

    def peak_rss_mb(self) -> float | None:
        kb = self._status_kb("VmHWM")
        return None if kb is None else kb / 1024.0

    def cpu_seconds(self) -> float | None:
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._tick  # utime + stime


@dataclass
class Target:
    name: str  # "echo" or "edge"
    url: str  # ws://host:port/ocpp
    process: subprocess.Popen[bytes] | None = None
    pid: int | None = None  # for memory and CPU figures
    log_file: Path | None = None
    notes: list[str] = field(default_factory=list)

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise BenchError(
                f"the {self.name} process exited with code {self.process.returncode}"
                + _log_tail(self.log_file)
            )


def _log_tail(path: Path | None, lines: int = 30) -> str:
    if path is None or not path.exists():
        return ""
    tail = path.read_text(errors="replace").splitlines()[-lines:]
    return f"\n--- last lines of {path} ---\n" + "\n".join(tail)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _listening(host: str, port: int) -> bool:
    """Is a TCP socket listening on ``port``? Read from /proc/net so that the daemon under
    test does not see (and log) a probe connection; connect only where /proc is missing."""
    tables = [Path("/proc/net/tcp"), Path("/proc/net/tcp6")]
    if not any(t.exists() for t in tables):
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False
    wanted = f":{port:04X}"
    for table in tables:
        with contextlib.suppress(OSError):
            for line in table.read_text().splitlines()[1:]:
                fields = line.split()
                if fields[1].endswith(wanted) and fields[3] == "0A":  # 0A: LISTEN
                    return True
    return False


def _wait_for_port(host: str, port: int, target: Target, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not _listening(host, port):
        target.check_alive()
        if time.monotonic() > deadline:
            raise BenchError(
                f"the {target.name} did not listen on {host}:{port} within {timeout:.0f} s"
                + _log_tail(target.log_file)
            )
        time.sleep(0.1)


def _stop(target: Target, timeout: float = 30.0) -> None:
    proc = target.process
    if proc is None or proc.poll() is not None:
        return
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        target.notes.append(f"did not stop within {timeout:.0f} s of SIGTERM; killed")
        return
    took = time.monotonic() - started
    if code != 0:
        target.notes.append(f"exit code {code} after SIGTERM ({took:.1f} s)")
    else:
        target.notes.append(f"stopped cleanly {took:.1f} s after SIGTERM")


@contextlib.contextmanager
def echo_target(event_loop: str, host: str = "127.0.0.1") -> Iterator[Target]:
    port = free_port(host)
    with tempfile.TemporaryDirectory(prefix="evpark-bench-echo-") as tmp:
        log = Path(tmp) / "echo.log"
        with log.open("wb") as out:
            command = [sys.executable, str(ECHO_SERVER), "--host", host, "--port", str(port)]
            proc = subprocess.Popen(
                [*command, "--event-loop", event_loop],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        target = Target("echo", f"ws://{host}:{port}/ocpp", proc, proc.pid, log)
        try:
            _wait_for_port(host, port, target, timeout=20)
            yield target
        finally:
            _stop(target)


def site_toml(
    ocpp_port: int, http_port: int, data_dir: Path, mqtt_url: str, event_loop: str = "auto"
) -> str:
    """The temporary site configuration the bench runs the edge with."""
    return f"""\
# written by bench/ocpp_load.py
[site]
id = "bench"
name = "evpark OCPP benchmark"
environment = "development"

[ocpp]
host = "127.0.0.1"
port = {ocpp_port}
auto_register = true
heartbeat_interval = 86400

[http]
host = "127.0.0.1"
port = {http_port}

[storage]
data_dir = {json.dumps(str(data_dir))}

[authorization]
allow_any_id_tag = true

[mqtt]
url = {json.dumps(mqtt_url)}
embedded = false

[runtime]
event_loop = {json.dumps(event_loop)}
"""


@contextlib.contextmanager
def edge_target(args: argparse.Namespace) -> Iterator[Target]:
    if args.url:
        yield Target("edge", args.url.rstrip("/"), None, args.edge_pid)
        return
    evpark = Path(sys.executable).with_name("evpark")
    tmp_ctx: contextlib.AbstractContextManager[str]
    if args.keep_data:
        tmp_ctx = contextlib.nullcontext(tempfile.mkdtemp(prefix="evpark-bench-edge-"))
    else:
        tmp_ctx = tempfile.TemporaryDirectory(prefix="evpark-bench-edge-")
    with tmp_ctx as tmp:
        tmp_path = Path(tmp)
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        ocpp_port, http_port = free_port(), free_port()
        mqtt_url = args.mqtt_url or f"mqtt://127.0.0.1:{free_port()}"
        config = tmp_path / "site.toml"
        config.write_text(site_toml(ocpp_port, http_port, data_dir, mqtt_url, args.event_loop))
        placeholders = {
            "evpark": str(evpark),
            "python": sys.executable,
            "config": str(config),
            "data_dir": str(data_dir),
            "ocpp_port": str(ocpp_port),
            "http_port": str(http_port),
        }
        command = [part.format(**placeholders) for part in shlex.split(args.edge_cmd)]
        log = Path(args.edge_log) if args.edge_log else tmp_path / "edge.log"
        _say(f"starting the edge: {shlex.join(command)} (log: {log})")
        with log.open("wb") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        target = Target("edge", f"ws://127.0.0.1:{ocpp_port}/ocpp", proc, proc.pid, log)
        try:
            _wait_for_port("127.0.0.1", ocpp_port, target, timeout=args.start_timeout)
            yield target
        finally:
            _stop(target)
            if args.keep_data:
                _say(f"kept the edge's config, data and log in {tmp_path}")


# --- one load run --------------------------------------------------------------------------


@dataclass
class Figures:
    target: str
    chargers: int
    connected: int
    duration_s: float
    calls: int
    rate: float  # answered CALLs per second
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    setup_failed: int
    call_errors: int
    protocol_errors: int
    timeouts: int
    disconnects: int
    late_ticks: int
    target_cpu_pct: float | None  # of one core, during the window
    loadgen_cpu_pct: float | None  # all load-generator processes, of one core
    peak_rss_mb: float | None  # VmHWM at the end of the run
    sampled_rss_max_mb: float | None  # max of VmRSS samples during the run
    server_calls: dict[str, int]
    error_samples: list[str]
    notes: list[str]

    @property
    def errors(self) -> int:
        return (
            self.setup_failed
            + self.call_errors
            + self.protocol_errors
            + self.timeouts
            + self.disconnects
        )


def _percentile(ordered: Sequence[float], q: float) -> float | None:
    if not ordered:
        return None
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def charger_specs(count: int, v201_share: float, token: str) -> list[ChargerSpec]:
    """``count`` chargers, the 2.0.1 ones spread evenly among the 1.6 ones."""
    specs = []
    for i in range(count):
        version: Version = "2.0.1" if int((i + 1) * v201_share) > int(i * v201_share) else "1.6"
        tag = "v16" if version == "1.6" else "v201"
        specs.append(ChargerSpec(i, f"bench-{token}-{tag}-{i:05d}", version))
    return specs


def run_load(
    target: Target,
    chargers: list[ChargerSpec],
    *,
    mode: Mode,
    duration: float,
    warmup: float,
    workers: int,
    interval: float = 1.0,
    v201_message: V201Message = "transaction-event",
    connect_rate: float = 500.0,
    setup_timeout: float = 30.0,
) -> Figures:
    workers = max(1, min(workers, len(chargers)))
    strict = target.name != "echo"
    seed = secrets.randbits(16)
    ctx = multiprocessing.get_context("spawn")
    pipes: list[Connection] = []
    procs: list[multiprocessing.process.BaseProcess] = []
    probe = ProcessProbe(target.pid) if target.pid else None
    for w in range(workers):
        spec = WorkerSpec(
            url=target.url,
            chargers=tuple(chargers[w::workers]),
            mode=mode,
            interval=interval,
            v201_message=v201_message,
            strict_setup=strict,
            connect_rate=connect_rate,
            setup_timeout=setup_timeout,
            seed=seed,
        )
        ours, theirs = ctx.Pipe()
        proc = ctx.Process(target=run_worker, args=(spec, theirs), name=f"bench-load-{w}")
        proc.start()
        theirs.close()
        pipes.append(ours)
        procs.append(proc)
    results: list[WorkerResult] = []
    samples: list[tuple[float, float | None, float | None]] = []  # (t, cpu s, rss MB)
    try:
        _say(f"{target.name}: connecting {len(chargers)} chargers ({workers} load process(es))")
        setup_deadline = time.monotonic() + setup_timeout * 5 + len(chargers) / connect_rate
        ready = _collect(pipes, procs, "ready", target, setup_deadline)
        connected = sum(r[0] for r in ready)
        if connected == 0:
            for pipe in pipes:
                pipe.send(("abort",))
            results = [
                r[0] for r in _collect(pipes, procs, "result", target, time.monotonic() + 60)
            ]
            raise BenchError(
                f"no charger could connect and set up against the {target.name}: "
                + "; ".join(s for r in results for s in r.error_samples[:3])
            )
        t_go = time.monotonic() + 0.1
        t_start, t_end = t_go + warmup, t_go + warmup + duration
        for pipe in pipes:
            pipe.send(("go", t_go, t_start, t_end))
        _say(
            f"{target.name}: {connected} chargers set up; {warmup:g} s warm-up, {duration:g} s run"
        )
        collected = _collect(
            pipes, procs, "result", target, t_end + 60, samples=samples, probe=probe
        )
        results = [r[0] for r in collected]
    finally:
        for pipe in pipes:  # a worker still waiting for "go" sees EOF and ends
            pipe.close()
        for worker in procs:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
                worker.join()
    return _figures(target, chargers, results, samples, mode, duration, t_start, t_end, probe)


def _collect(
    pipes: list[Connection],
    procs: list[multiprocessing.process.BaseProcess],
    kind: str,
    target: Target,
    deadline: float,
    *,
    samples: list[tuple[float, float | None, float | None]] | None = None,
    probe: ProcessProbe | None = None,
) -> list[Any]:
    """Wait for one ``kind`` message from every worker; sample the target meanwhile."""
    got: dict[int, Any] = {}
    while len(got) < len(pipes):
        waiting = [p for i, p in enumerate(pipes) if i not in got]
        for ready in wait(waiting, timeout=0.25):
            pipe = cast(Connection, ready)
            index = pipes.index(pipe)
            try:
                message = pipe.recv()
            except EOFError:
                raise BenchError(
                    f"load process {index} died (exit code {procs[index].exitcode})"
                ) from None
            if message[0] == "failed":
                raise BenchError(f"load process {index} failed:\n{message[1]}")
            if message[0] != kind:
                raise BenchError(f"load process {index} said {message[0]!r}, expected {kind!r}")
            got[index] = message[1:]
        if samples is not None and probe is not None:
            samples.append((time.monotonic(), probe.cpu_seconds(), probe.rss_mb()))
        target.check_alive()
        if time.monotonic() > deadline:
            raise BenchError(f"load processes did not report {kind!r} in time")
    return [got[i] for i in range(len(pipes))]


def _cpu_in_window(
    samples: list[tuple[float, float | None, float | None]], t_start: float, t_end: float
) -> float | None:
    inside = [(t, cpu) for t, cpu, _ in samples if cpu is not None and t_start <= t <= t_end]
    if len(inside) < 2 or inside[-1][0] - inside[0][0] <= 0:
        return None
    (t0, c0), (t1, c1) = inside[0], inside[-1]
    return 100.0 * (c1 - c0) / (t1 - t0)


# counts that WorkerResult and Figures both carry, added up over workers or rounds
_COUNTS: Final = (
    "setup_failed",
    "call_errors",
    "protocol_errors",
    "timeouts",
    "disconnects",
    "late_ticks",
)


def _summed_counts(parts: Sequence[WorkerResult | Figures]) -> dict[str, Any]:
    return {name: sum(getattr(part, name) for part in parts) for name in _COUNTS}


def _figures(
    target: Target,
    chargers: list[ChargerSpec],
    results: list[WorkerResult],
    samples: list[tuple[float, float | None, float | None]],
    mode: Mode,
    duration: float,
    t_start: float,
    t_end: float,
    probe: ProcessProbe | None,
) -> Figures:
    latencies = array("d")
    server_calls: Counter[str] = Counter()
    errors: list[str] = []
    for r in results:
        latencies.frombytes(r.latencies_ms)
        server_calls.update(r.server_calls)
        errors += r.error_samples
    ordered = sorted(latencies)
    calls = sum(r.calls for r in results)
    rss_samples = [rss for _, _, rss in samples if rss is not None]
    target_cpu = _cpu_in_window(samples, t_start, t_end)
    workers = max(1, len(results))
    loadgen_cpu = 100.0 * sum(r.cpu_seconds for r in results) / duration
    notes = target.notes  # the same list: the stop of the target adds to it later
    if target_cpu is not None and target_cpu < 90.0 and loadgen_cpu / workers > 90.0:
        notes.append(
            f"the load generator was busier ({loadgen_cpu:.0f}% over {workers} process(es)) than "
            f"the {target.name} ({target_cpu:.0f}%): this rate is a lower bound of what the "
            f"{target.name} can do"
        )
    elif (
        mode == "closed"
        and target_cpu is not None
        and max(target_cpu, loadgen_cpu / workers) < 75.0
    ):
        notes.append(
            f"in a closed loop neither the {target.name} ({target_cpu:.0f}%) nor the load "
            f"generator ({loadgen_cpu / workers:.0f}% per process) used a full core: something "
            f"else limited this rate (other work on the machine, or waiting on I/O)"
        )
    return Figures(
        target=target.name,
        chargers=len(chargers),
        connected=sum(r.connected for r in results),
        duration_s=duration,
        calls=calls,
        rate=calls / duration,
        p50_ms=_percentile(ordered, 0.50),
        p99_ms=_percentile(ordered, 0.99),
        max_ms=ordered[-1] if ordered else None,
        **_summed_counts(results),
        target_cpu_pct=target_cpu,
        loadgen_cpu_pct=loadgen_cpu,
        peak_rss_mb=probe.peak_rss_mb() if probe else None,
        sampled_rss_max_mb=max(rss_samples) if rss_samples else None,
        server_calls=dict(server_calls),
        error_samples=errors[:20],
        notes=notes,
    )


# --- the two loads ---------------------------------------------------------------------------


def default_workers() -> int:
    """One load process per CPU that the server under test does not need, 1 to 4."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


def run_saturation(args: argparse.Namespace, token: str) -> dict[str, Any]:
    """Rounds of echo then edge, both targets up throughout.

    The machine's speed drifts (neighbours, frequency): a run of each target side by side
    sees about the same machine, so the ratio is taken per round, and the median of the
    rounds' ratios is the result.
    """
    names = ["echo"] if args.echo_only else ["echo", "edge"]
    rounds: list[dict[str, Figures]] = []
    with contextlib.ExitStack() as stack:
        targets = [
            stack.enter_context(
                echo_target(args.event_loop) if name == "echo" else edge_target(args)
            )
            for name in names
        ]
        for number in range(1, args.sat_rounds + 1):
            chargers = charger_specs(args.sat_chargers, 0.0, f"{token}r{number}")
            figures: dict[str, Figures] = {}
            for target in targets:
                _say(f"round {number} of {args.sat_rounds}")
                figures[target.name] = run_load(
                    target,
                    chargers,
                    mode="closed",
                    duration=args.sat_duration,
                    warmup=args.sat_warmup,
                    workers=args.sat_workers or default_workers(),
                    connect_rate=args.connect_rate,
                )
            rounds.append(figures)
    ratios = [r["edge"].rate / r["echo"].rate for r in rounds if "edge" in r and r["echo"].rate > 0]
    ratio = statistics.median(ratios) if ratios else None
    return {
        "chargers": args.sat_chargers,
        "duration_s": args.sat_duration,
        "warmup_s": args.sat_warmup,
        "rounds": [
            {
                **{name: _figures_dict(f) for name, f in r.items()},
                "ratio": ratios[i] if i < len(ratios) else None,
            }
            for i, r in enumerate(rounds)
        ],
        "runs": {name: _figures_dict(_combine([r[name] for r in rounds])) for name in names},
        "ratios": ratios,
        "ratio": ratio,
        "target_ratio": TARGET_RATIO,
        "met": None if ratio is None else ratio >= TARGET_RATIO,
    }


def _combine(runs: list[Figures]) -> Figures:
    """One target's figures over several rounds: rate over all of them, the worst p99."""
    calls = sum(f.calls for f in runs)
    duration = sum(f.duration_s for f in runs)
    cpus = [f.target_cpu_pct for f in runs if f.target_cpu_pct is not None]
    loadgen = [f.loadgen_cpu_pct for f in runs if f.loadgen_cpu_pct is not None]
    server_calls: Counter[str] = Counter()
    for f in runs:
        server_calls.update(f.server_calls)

    def worst(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return max(known) if known else None

    return replace(
        runs[0],
        connected=min(f.connected for f in runs),
        duration_s=duration,
        calls=calls,
        rate=calls / duration if duration else 0.0,
        p50_ms=worst([f.p50_ms for f in runs]),
        p99_ms=worst([f.p99_ms for f in runs]),
        max_ms=worst([f.max_ms for f in runs]),
        **_summed_counts(runs),
        target_cpu_pct=statistics.fmean(cpus) if cpus else None,
        loadgen_cpu_pct=statistics.fmean(loadgen) if loadgen else None,
        peak_rss_mb=worst([f.peak_rss_mb for f in runs]),
        sampled_rss_max_mb=worst([f.sampled_rss_max_mb for f in runs]),
        server_calls=dict(server_calls),
        error_samples=[e for f in runs for e in f.error_samples][:20],
    )


def run_site(args: argparse.Namespace, token: str) -> dict[str, Any]:
    chargers = charger_specs(args.site_chargers, args.v201_share, token)
    ctx = echo_target(args.event_loop) if args.echo_only else edge_target(args)
    with ctx as target:
        figures = run_load(
            target,
            chargers,
            mode="paced",
            duration=args.site_duration,
            warmup=args.site_warmup,
            workers=args.site_workers,
            interval=args.interval,
            v201_message=args.v201_message,
            connect_rate=args.connect_rate,
        )
    p99_met = None if figures.p99_ms is None else figures.p99_ms < TARGET_P99_MS
    rss_met = None if figures.peak_rss_mb is None else figures.peak_rss_mb < TARGET_RSS_MB
    n201 = sum(1 for c in chargers if c.version == "2.0.1")
    return {
        "chargers": args.site_chargers,
        "chargers_16": args.site_chargers - n201,
        "chargers_201": n201,
        "v201_message": args.v201_message,
        "interval_s": args.interval,
        "duration_s": args.site_duration,
        "warmup_s": args.site_warmup,
        "run": _figures_dict(figures),
        "target_p99_ms": TARGET_P99_MS,
        "target_rss_mb": TARGET_RSS_MB,
        "p99_met": p99_met if target.name == "edge" else None,
        "rss_met": rss_met if target.name == "edge" else None,
    }


def _figures_dict(f: Figures) -> dict[str, Any]:
    out = asdict(f)
    out["errors"] = f.errors
    return out


# --- output --------------------------------------------------------------------------------


def _num(value: float | None, fmt: str = "{:.2f}") -> str:
    return "n/a" if value is None else fmt.format(value)


def _met(flag: bool | None) -> str:
    return {True: "MET", False: "NOT MET", None: "not evaluated"}[flag]


_COLUMNS = (
    ("target", 9, lambda f: f["target"]),
    ("msgs/s", 10, lambda f: _num(f["rate"], "{:.0f}")),
    ("p50 ms", 8, lambda f: _num(f["p50_ms"])),
    ("p99 ms", 8, lambda f: _num(f["p99_ms"])),
    ("max ms", 8, lambda f: _num(f["max_ms"], "{:.1f}")),
    ("calls", 9, lambda f: str(f["calls"])),
    ("errors", 7, lambda f: str(f["errors"])),
    ("late", 6, lambda f: str(f["late_ticks"])),
    ("target CPU", 11, lambda f: _num(f["target_cpu_pct"], "{:.0f}%")),
    ("loadgen CPU", 12, lambda f: _num(f["loadgen_cpu_pct"], "{:.0f}%")),
    ("peak RSS MB", 12, lambda f: _num(f["peak_rss_mb"], "{:.1f}")),
)


def _table(rows: list[dict[str, Any]]) -> list[str]:
    header = "".join(
        name.rjust(width) if i else name.ljust(width) for i, (name, width, _) in enumerate(_COLUMNS)
    )
    lines = [header]
    for row in rows:
        cells = [fn(row) for _, _, fn in _COLUMNS]
        lines.append(
            "".join(
                cell.rjust(width) if i else cell.ljust(width)
                for i, (cell, (_, width, _)) in enumerate(zip(cells, _COLUMNS, strict=True))
            )
        )
    return lines


def _details(rows: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for f in rows:
        if f["server_calls"]:
            asked = ", ".join(f"{a} x{n}" for a, n in sorted(f["server_calls"].items()))
            lines.append(f"  {f['target']} sent CALLs to the chargers: {asked}")
        lines += [f"  {f['target']}: {note}" for note in f["notes"]]
        if f["connected"] < f["chargers"]:
            lines.append(f"  {f['target']}: only {f['connected']}/{f['chargers']} chargers set up")
        if f["errors"]:
            lines.append("")
            lines.append(
                f"!!! {f['target']}: {f['errors']} ERRORS, these figures do not measure the normal path:"
            )
            lines.append(
                f"!!!   setup failed {f['setup_failed']}, CALLERROR {f['call_errors']}, "
                f"protocol {f['protocol_errors']}, timeouts {f['timeouts']}, "
                f"disconnects {f['disconnects']}"
            )
            for sample, count in Counter(f["error_samples"]).items():
                lines.append(f"!!!   {sample}" + (f"  (x{count})" if count > 1 else ""))
    return lines


def render_text(report: dict[str, Any]) -> str:
    out: list[str] = []
    machine = report["machine"]
    out.append(
        f"evpark OCPP bench: {machine['cpus']} CPUs, load average "
        f"{machine['loadavg_start'][0]:.2f} at start, {machine['loadavg_end'][0]:.2f} at end; "
        f"event loop {report['event_loop']} for the echo and the edge it starts"
    )
    if "saturation" in report:
        s = report["saturation"]
        out.append("")
        out.append(
            f"== saturation: {s['chargers']} OCPP 1.6 chargers, closed loop, one MeterValues "
            f"(4 sampled values) in flight each; {s['duration_s']:g} s measured after "
            f"{s['warmup_s']:g} s warm-up"
        )
        rows = [
            {**f, "target": f"{name} #{number}"}
            for number, r in enumerate(s["rounds"], 1)
            for name, f in r.items()
            if name != "ratio"
        ]
        out += _table(rows)
        if s["ratio"] is not None:
            each = "  ".join(f"{r:.3f}" for r in s["ratios"])
            out.append(f"ratio edge/echo per round: {each}")
            out.append(
                f"ratio edge/echo (median of the rounds): {s['ratio']:.3f}   "
                f"(target >= {s['target_ratio']}: {_met(s['met'])})"
            )
        out += _details(list(s["runs"].values()))
    if "site" in report:
        s = report["site"]
        out.append("")
        msg201 = "TransactionEvent" if s["v201_message"] == "transaction-event" else "MeterValues"
        out.append(
            f"== site load: {s['chargers']} chargers ({s['chargers_16']} x 1.6 MeterValues, "
            f"{s['chargers_201']} x 2.0.1 {msg201}), one message every {s['interval_s']:g} s "
            f"each; {s['duration_s']:g} s measured after {s['warmup_s']:g} s warm-up"
        )
        run = s["run"]
        out += _table([run])
        if run["sampled_rss_max_mb"] is not None:
            out.append(f"RSS sampled during the run: max {run['sampled_rss_max_mb']:.1f} MB")
        out.append(
            f"p99 < {s['target_p99_ms']:g} ms: {_met(s['p99_met'])}    "
            f"peak RSS < {s['target_rss_mb']:g} MB: {_met(s['rss_met'])}"
        )
        out += _details([run])
    out.append("")
    if report["errors"]:
        out.append(f"!!! {report['errors']} ERRORS: the figures above are NOT valid measurements")
    else:
        out.append(f"no errors; targets: {_met(report['targets_met'])}")
    return "\n".join(out) + "\n"


# --- command line ---------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("targets")
    g.add_argument("--url", help="an already running edge, ws://host:port/ocpp (not started)")
    g.add_argument("--edge-pid", type=int, help="with --url: the edge's pid, for RSS and CPU")
    g.add_argument(
        "--edge-cmd",
        default=DEFAULT_EDGE_CMD,
        help="command that starts the edge; placeholders {evpark} {python} {config} {data_dir} "
        "{ocpp_port} {http_port} "
        f"(default: {DEFAULT_EDGE_CMD!r})",
    )
    g.add_argument("--edge-log", help="write the edge's output here (default: temp dir)")
    g.add_argument("--keep-data", action="store_true", help="keep the edge's temp dir")
    g.add_argument("--mqtt-url", help="broker for the edge (default: a free port, no broker)")
    g.add_argument(
        "--start-timeout", type=float, default=60.0, help="seconds for the edge to listen"
    )
    g.add_argument(
        "--event-loop",
        choices=["auto", "uvloop", "asyncio"],
        default="auto",
        help="event loop of the echo server and of the edge the bench starts; the same "
        "for both, so that the ratio compares like with like (default: auto, the edge's "
        "default: uvloop when installed)",
    )
    g.add_argument(
        "--echo-only",
        action="store_true",
        help="run every load against the echo server only (checks the harness; no edge)",
    )
    g = common.add_argument_group("saturation")
    g.add_argument("--sat-chargers", type=int, default=200)
    g.add_argument(
        "--sat-duration", type=float, default=10.0, help="seconds measured per target and round"
    )
    g.add_argument(
        "--sat-rounds",
        type=int,
        default=3,
        help="rounds of echo then edge; the ratio is the median of the rounds' ratios",
    )
    g.add_argument("--sat-warmup", type=float, default=3.0)
    g.add_argument(
        "--sat-workers",
        type=int,
        default=0,
        help="load-generator processes (default 0: one per CPU beyond the first, at most 4)",
    )
    g = common.add_argument_group("site load")
    g.add_argument("--site-chargers", type=int, default=1000)
    g.add_argument("--site-duration", type=float, default=30.0)
    g.add_argument("--site-warmup", type=float, default=5.0)
    g.add_argument("--site-workers", type=int, default=1, help="load-generator processes")
    g.add_argument("--interval", type=float, default=1.0, help="seconds between two messages")
    g.add_argument("--v201-share", type=float, default=0.5, help="fraction of 2.0.1 chargers")
    g.add_argument(
        "--v201-message",
        choices=["transaction-event", "meter-values"],
        default="transaction-event",
        help="2.0.1 chargers' periodic message: TransactionEvent(Updated) or MeterValues",
    )
    g = common.add_argument_group("output")
    g.add_argument("--connect-rate", type=float, default=250.0, help="new connections per second")
    g.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    g.add_argument("--check-targets", action="store_true", help="exit 2 when a target is not met")

    parser = argparse.ArgumentParser(
        prog="python -m bench.ocpp_load",
        description="OCPP load benchmark of the evpark edge daemon (see bench/README.md).",
    )
    sub = parser.add_subparsers(dest="load", required=True)
    sat = sub.add_parser("saturation", parents=[common], help="closed loop, edge vs echo")
    site = sub.add_parser("site", parents=[common], help="1000 chargers, 1 message/s each")
    sub.add_parser("all", parents=[common], help="saturation, then site load")
    for p, prefix in ((sat, "sat"), (site, "site")):
        # shorthands for the one load the sub-command runs
        p.add_argument(
            "-n", "--chargers", type=int, dest=f"{prefix}_chargers", default=argparse.SUPPRESS
        )
        p.add_argument(
            "-d", "--duration", type=float, dest=f"{prefix}_duration", default=argparse.SUPPRESS
        )
        p.add_argument("--warmup", type=float, dest=f"{prefix}_warmup", default=argparse.SUPPRESS)
        p.add_argument("--workers", type=int, dest=f"{prefix}_workers", default=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.sat_rounds < 1:
        parser.error("--sat-rounds must be 1 or more")
    if args.event_loop == "auto":
        args.event_loop = "uvloop" if uvloop_installed() else "asyncio"
    validate_all()
    raise_nofile(max(args.sat_chargers, args.site_chargers) * 2 + 512)
    token = secrets.token_hex(2)
    loadavg_start = os.getloadavg()
    report: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}, "event_loop": args.event_loop}
    try:
        if args.load in ("saturation", "all"):
            report["saturation"] = run_saturation(args, token)
        if args.load in ("site", "all"):
            report["site"] = run_site(args, token)
    except BenchError as err:
        _say(f"FAILED: {err}")
        return 1
    report["machine"]["loadavg_start"] = loadavg_start
    report["machine"]["loadavg_end"] = os.getloadavg()
    runs = list(report.get("saturation", {}).get("runs", {}).values())
    if "site" in report:
        runs.append(report["site"]["run"])
    report["errors"] = sum(r["errors"] for r in runs)
    report["calls"] = sum(r["calls"] for r in runs)
    verdicts = [report.get("saturation", {}).get("met")]
    verdicts += [report.get("site", {}).get(k) for k in ("p99_met", "rss_met")]
    evaluated = [v for v in verdicts if v is not None]
    report["targets_met"] = all(evaluated) if evaluated else None
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        sys.stdout.write(render_text(report))
    if report["errors"] or report["calls"] == 0:
        return 1
    if args.check_targets and report["targets_met"] is False:
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
