"""The long OCPP fuzz: schema-valid, extreme messages of every charger action of both
versions against a real edge daemon, for as long as you like.

The same strategies and checks as ``tests/edge/ocpp/test_ocpp_fuzz.py`` (imported from
``tests/ocpp_strategies.py`` and ``tests/ocpp_fuzz_site.py``), with random seeds instead
of CI's fixed examples, round after round until ``--minutes`` have passed. A daemon that
crashed or hung is restarted so the run goes on; every failure is reported with its
shrunk example. Exit status 1 if anything failed.

    .venv/bin/python -m bench.ocpp_fuzz --examples 200 --minutes 30
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run by path: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from ocpp_handlers.schemas import Version
from tests.harness.ports import free_port, http_ok
from tests.harness.processes import (
    DaemonProcess,
    ProcessProbe,
    central_run_command,
    create_site_key,
)
from tests.ocpp_fuzz_site import (
    ANSWER_WAIT,
    FuzzSite,
    fuzz_action,
    fuzz_sessions,
    fuzz_settings,
)
from tests.ocpp_strategies import CHARGER_ACTIONS

SESSIONS = "sessions"  # the pseudo-action of session sequences (tests.ocpp_strategies)


@dataclass
class Failure:
    version: str
    action: str
    seed: int
    error: str
    example: str


@dataclass
class Report:
    rounds: int = 0
    sent: int = 0
    answers: Counter[str] = field(default_factory=Counter)
    by_action: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    restarts: int = 0
    canary_heartbeats: int = 0
    log_problems: int = 0
    final_health: dict[str, Any] | None = None
    unreadable_pages: list[str] = field(default_factory=list)
    sigterm_exit: int | None = None
    sync_backlog_end: int | None = None
    central_peak_rss_mb: int | None = None
    central_killed_at_mb: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "rounds": self.rounds,
            "messages_sent": self.sent,
            "answers": dict(self.answers.most_common()),
            "answers_by_action": {
                f"{version} {action}": {
                    answer: n
                    for (v, a, answer), n in self.by_action.items()
                    if (v, a) == (version, action)
                }
                for version, action in sorted({(v, a) for v, a, _ in self.by_action})
            },
            "failures": [f.__dict__ for f in self.failures],
            "daemon_restarts": self.restarts,
            "canary_heartbeats_answered": self.canary_heartbeats,
            "log_problem_lines": self.log_problems,
            "final_health": self.final_health,
            "unreadable_api_pages": self.unreadable_pages,
            "sigterm_exit": self.sigterm_exit,
            "sync_backlog_end": self.sync_backlog_end,
            "central_peak_rss_mb": self.central_peak_rss_mb,
            "central_killed_at_mb": self.central_killed_at_mb,
        }


class Central(DaemonProcess):
    """``evpark central run`` (all in one, SQLite) that the fuzzed edge syncs to, with a
    watchdog: events made of fuzzed values must not take central down either, and one
    that eats memory is killed before it takes the machine with it."""

    def __init__(self, workdir: Path, max_rss_mb: int) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.max_rss_mb = max_rss_mb
        super().__init__(
            "central",
            central_run_command(self.port),
            workdir / "central.log",
            env={"EVPARK_CENTRAL_DATA_DIR": str(workdir)},
        )
        self.killed_at_mb: int | None = None
        self.peak_rss_mb = 0
        self._watching = threading.Event()
        self._watchdog: threading.Thread | None = None
        self.key = ""

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.key = create_site_key("fuzz-site", env=self.env)
        super().start()
        self.wait_healthy(f"{self.url}/healthz", within=60)
        self._watching.set()
        self._watchdog = threading.Thread(target=self._watch, name="central-watchdog", daemon=True)
        self._watchdog.start()

    def edge_config(self) -> dict[str, Any]:
        """The edge's ``[central]`` section: sync to this central with its site key."""
        return {"central": {"url": self.url, "site_key": self.key}}

    def healthy(self) -> bool:
        return http_ok(f"{self.url}/healthz", timeout=ANSWER_WAIT)

    def _watch(self) -> None:
        assert self.pid is not None
        probe = ProcessProbe(self.pid)
        while self._watching.is_set() and self.alive():
            rss = int(probe.rss_mb() or 0)
            self.peak_rss_mb = max(self.peak_rss_mb, rss)
            if rss > self.max_rss_mb:
                self.killed_at_mb = rss
                self.kill()
                return
            time.sleep(0.25)

    def stop(self, within: float = 15.0) -> int | None:
        self._watching.clear()
        return super().stop(within)


def _drained(site: FuzzSite, wait: float) -> int | None:
    """The edge's sync backlog once it reached 0 (or as it is after ``wait`` seconds)."""
    deadline = time.monotonic() + wait
    backlog = None
    while time.monotonic() < deadline:
        health = site.edge.health() or {}
        backlog = health.get("sync", {}).get("backlog")
        if backlog == 0:
            return 0
        time.sleep(1)
    return backlog if isinstance(backlog, int) else None


def _failure(version: Version, action: str, seed: int, err: BaseException) -> Failure:
    """One finding; hypothesis groups distinct failures of one run in an ExceptionGroup."""
    errors = list(err.exceptions) if isinstance(err, BaseExceptionGroup) else [err]
    text = "\n".join(f"{type(e).__name__}: {e}"[:2000] for e in errors)
    notes = "\n".join(note for e in errors for note in getattr(e, "__notes__", []))
    return Failure(version.value, action, seed, text, notes[:8000])


def run(args: argparse.Namespace, workdir: Path) -> Report:
    versions = [v for v in Version if args.version in (None, v.value)]
    report = Report()
    rng = random.Random(args.seed)
    deadline = time.monotonic() + args.minutes * 60
    central = Central(workdir / "central", args.central_max_rss) if args.with_central else None
    if central is not None:
        central.start()
    site = FuzzSite(workdir, central.edge_config() if central is not None else None)
    site.start()
    try:
        while True:
            report.rounds += 1
            for version in versions:
                # every action alone, then sequences of a session's messages
                for action in (*CHARGER_ACTIONS[version], SESSIONS):
                    if args.action and action not in args.action:
                        continue
                    seed = rng.randrange(2**32)
                    fuzz = fuzz_settings(args.examples, derandomize=False)
                    try:
                        if action == SESSIONS:
                            fuzz_sessions(site, version, fuzz, seed=seed)
                        else:
                            fuzz_action(site, version, action, fuzz, seed=seed)
                    except Exception as err:  # a finding: record it, go on
                        report.failures.append(_failure(version, action, seed, err))
                        print(
                            f"FAILED {version.value} {action} (seed {seed}): {err}", file=sys.stderr
                        )
                        canary = site.canary
                        broken = canary is None or bool(canary.failures)
                        if broken or not site.edge.alive() or not site.edge.healthy():
                            report.restarts += 1
                            site.restart()
            if central is not None and not central.healthy():
                killed = f", killed at {central.killed_at_mb} MB" if central.killed_at_mb else ""
                report.failures.append(
                    Failure("central", "(round)", args.seed, f"central not healthy{killed}", "")
                )
                break  # its log tells what it was doing; a restarted one would redo it
            print(
                f"round {report.rounds}: {site.sent} sent, {len(report.failures)} failure(s)",
                file=sys.stderr,
            )
            if time.monotonic() >= deadline:
                break
        report.final_health = site.edge.health()
        report.unreadable_pages = site.edge.unreadable_pages()
        if central is not None:
            report.sync_backlog_end = _drained(site, 120)
            if report.sync_backlog_end != 0:
                report.failures.append(
                    Failure(
                        "central", "(sync)", args.seed, f"backlog {report.sync_backlog_end}", ""
                    )
                )
    finally:
        report.sent = site.sent
        report.answers = site.answers
        report.by_action = site.by_action
        report.canary_heartbeats = site.canary.answered if site.canary else 0
        site.close()
        report.log_problems = len(site.edge.log_problems())
        report.sigterm_exit = site.edge.stop()
        if central is not None:
            report.central_peak_rss_mb = central.peak_rss_mb
            report.central_killed_at_mb = central.killed_at_mb
            central.stop()
    return report


def print_report(report: Report, log: Path | None) -> None:
    print(f"rounds                      {report.rounds}")
    print(f"messages sent               {report.sent}")
    for code, count in report.answers.most_common():
        print(f"  answered {code:<27} {count}")
    print("per action (CALLRESULT / CALLERRORs):")
    for version, action in sorted({(v, a) for v, a, _ in report.by_action}):
        counts = {
            answer: n
            for (v, a, answer), n in report.by_action.items()
            if (v, a) == (version, action)
        }
        results = counts.pop("CALLRESULT", 0)
        errors = ", ".join(f"{code} {n}" for code, n in sorted(counts.items()))
        print(f"  {version:<10} {action:<34} {results:>6}  {errors}")
    print(f"canary heartbeats answered  {report.canary_heartbeats}")
    print(f"daemon restarts (crashes)   {report.restarts}")
    print(f"daemon log problem lines    {report.log_problems}")
    print(f"final /healthz              {report.final_health}")
    print(f"API pages not readable      {report.unreadable_pages or 'none'}")
    print(f"exit code after SIGTERM     {report.sigterm_exit}")
    if report.central_peak_rss_mb is not None:
        print(f"central peak RSS MB         {report.central_peak_rss_mb}")
        print(f"central killed (RSS MB)     {report.central_killed_at_mb or 'no'}")
        print(f"edge sync backlog at end    {report.sync_backlog_end}")
    print(f"failures                    {len(report.failures)}")
    for failure in report.failures:
        print(f"\n--- {failure.version} {failure.action} (seed {failure.seed})\n{failure.error}")
        print(failure.example)
    if log is not None:
        print(f"\ndaemon log: {log}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ocpp_fuzz", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--examples", type=int, default=100, help="examples per action per round")
    parser.add_argument(
        "--minutes", type=float, default=0, help="keep going for this long (0: one round)"
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of the rounds' seeds (default: random)"
    )
    parser.add_argument("--version", choices=[v.value for v in Version], default=None)
    parser.add_argument(
        "--action",
        action="append",
        help=f"only this action (repeatable); {SESSIONS!r}: session sequences",
    )
    parser.add_argument(
        "--with-central",
        action="store_true",
        help="the edge syncs to a real central (evpark central run), which must stay healthy",
    )
    parser.add_argument(
        "--central-max-rss", type=int, default=1000, help="MB; central is killed above this"
    )
    parser.add_argument("--keep-data", action="store_true", help="keep the daemon's data and log")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.randrange(2**32)
    print(f"seed {args.seed} (rerun with --seed {args.seed})", file=sys.stderr)

    workdir = Path(tempfile.mkdtemp(prefix="evpark-fuzz-"))
    report = run(args, workdir)
    log_path = workdir if args.keep_data else None
    if not args.keep_data:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps({"seed": args.seed, **report.as_dict()}, indent=2))
    else:
        print_report(report, log_path)
    failed = report.failures or report.unreadable_pages or report.sigterm_exit != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
