"""The OCPP benchmark keeps working: both loads, tiny, against the echo server only.

It runs the real command line as a subprocess (echo server and load generator are real
processes too) and reads its ``--json`` report. It needs no edge daemon.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run_bench(*args: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.ocpp_load", *args, "--echo-only", "--json"]
    done = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    report: dict[str, Any] = json.loads(done.stdout)
    return report


@pytest.mark.slow
def test_both_loads_measure_messages_without_errors() -> None:
    report = _run_bench(
        "all",
        "--sat-chargers=5",
        "--sat-duration=1",
        "--sat-rounds=2",
        "--sat-warmup=0.5",
        "--sat-workers=1",
        "--site-chargers=10",
        "--site-duration=2",
        "--site-warmup=0.5",
    )

    rounds = report["saturation"]["rounds"]
    assert len(rounds) == 2
    assert all(r["echo"]["calls"] > 0 and r["echo"]["errors"] == 0 for r in rounds)
    saturation = report["saturation"]["runs"]["echo"]  # both rounds together
    assert saturation["calls"] == sum(r["echo"]["calls"] for r in rounds)
    assert saturation["connected"] == 5
    assert saturation["calls"] > 0
    assert saturation["rate"] > 0
    assert saturation["errors"] == 0
    assert saturation["p99_ms"] is not None

    site = report["site"]["run"]
    assert report["site"]["chargers_16"] == 5
    assert report["site"]["chargers_201"] == 5
    assert site["connected"] == 10
    assert site["calls"] > 0
    assert site["errors"] == 0
    assert site["peak_rss_mb"] is not None
    assert site["peak_rss_mb"] > 0

    assert report["errors"] == 0
