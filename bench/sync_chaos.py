"""Long chaos run of the sync: a fast site day, the edge SIGKILLed ``--kills`` times,
central killed for ``--outage`` seconds; prints events, kills, outage, lost, duplicated.

    .venv/bin/python -m bench.sync_chaos --duration 120 --kills 10 --outage 20 --seed 7

Needs the ``mosquitto`` binary (started on a free port for the run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
from pathlib import Path

from bench.sync_harness import ChaosPlan, describe, run_chaos
from tests.harness.ports import free_port
from tests.harness.processes import DaemonProcess


def _mosquitto(workdir: Path) -> tuple[DaemonProcess, str]:
    """A broker for the run on a free port, listening when this returns."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    config = workdir / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    broker = DaemonProcess("mosquitto", [binary, "-c", str(config)], workdir / "mosquitto.log")
    broker.start()
    broker.wait_for_port(port, within=10)
    return broker, f"mqtt://127.0.0.1:{port}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=120.0, help="wall seconds of traffic")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--outage", type=float, default=20.0, help="central down, seconds")
    parser.add_argument("--speed", type=float, default=2400.0, help="simulated s per wall s")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    plan = ChaosPlan(
        seed=seed,
        duration_s=args.duration,
        kills=args.kills,
        outage_s=args.outage,
        speed=args.speed,
        drain_timeout_s=300.0,
    )
    workdir = Path(tempfile.mkdtemp(prefix="evpark-chaos-"))
    broker, url = _mosquitto(workdir)
    try:
        report = asyncio.run(run_chaos(plan, workdir / "run", url))
    finally:
        broker.stop(within=10)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    summary = describe(report)
    print(
        f"events {report.events}  kills {report.kills}  outage {report.outage_s:.0f} s  "
        f"lost {report.lost}  duplicated {report.duplicated}  gaps {report.gaps}  "
        f"sessions {report.sessions}  visits {report.visits}  "
        f"final drain {report.drain_s:.1f} s  seed {seed}"
    )
    print(json.dumps(summary))
    if args.keep:
        print(f"work directory: {workdir}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
