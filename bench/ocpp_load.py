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

The targets (processes, ports, site file) are ``bench.ocpp_targets``'s; the figures and
the text report ``bench.ocpp_report``'s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import secrets
import statistics
import sys
import time
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, cast

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
from bench.ocpp_report import Figures, combine, figures_dict, figures_of, render_text
from bench.ocpp_targets import DEFAULT_EDGE_CMD, BenchError, Target, echo_target, edge_target, say
from edge.event_loop import uvloop_installed
from tests.harness.processes import ProcessFailed, ProcessProbe

TARGET_RATIO = 0.5  # saturation: edge rate / echo rate, at least
TARGET_P99_MS = 20.0  # site load: p99 CALL -> CALLRESULT, below
TARGET_RSS_MB = 300.0  # site load: the daemon's peak RSS, below


# --- one load run --------------------------------------------------------------------------


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
        say(f"{target.name}: connecting {len(chargers)} chargers ({workers} load process(es))")
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
        say(f"{target.name}: {connected} chargers set up; {warmup:g} s warm-up, {duration:g} s run")
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
    return figures_of(target, chargers, results, samples, mode, duration, t_start, t_end, probe)


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
                say(f"round {number} of {args.sat_rounds}")
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
                **{name: figures_dict(f) for name, f in r.items()},
                "ratio": ratios[i] if i < len(ratios) else None,
            }
            for i, r in enumerate(rounds)
        ],
        "runs": {name: figures_dict(combine([r[name] for r in rounds])) for name in names},
        "ratios": ratios,
        "ratio": ratio,
        "target_ratio": TARGET_RATIO,
        "met": None if ratio is None else ratio >= TARGET_RATIO,
    }


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
        "run": figures_dict(figures),
        "target_p99_ms": TARGET_P99_MS,
        "target_rss_mb": TARGET_RSS_MB,
        "p99_met": p99_met if target.name == "edge" else None,
        "rss_met": rss_met if target.name == "edge" else None,
    }


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
    except (BenchError, ProcessFailed) as err:
        say(f"FAILED: {err}")
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
