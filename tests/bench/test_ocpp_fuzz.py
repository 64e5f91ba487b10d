"""The long OCPP fuzz keeps working: a tiny run of the real command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def test_a_tiny_fuzz_run_reports_its_figures() -> None:
    command = [
        sys.executable, "-m", "bench.ocpp_fuzz", "--examples", "3", "--seed", "7",
        "--version", "ocpp1.6", "--action", "MeterValues", "--action", "Heartbeat", "--json",
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=90, check=False
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    report: dict[str, Any] = json.loads(done.stdout)
    assert report["seed"] == 7
    assert report["rounds"] == 1
    assert report["failures"] == []
    by_action = report["answers_by_action"]
    assert set(by_action) == {"ocpp1.6 MeterValues", "ocpp1.6 Heartbeat"}
    assert report["messages_sent"] == sum(sum(codes.values()) for codes in by_action.values())
    assert set(by_action["ocpp1.6 Heartbeat"]) == {"CALLRESULT"}  # its only payload: {}
    assert report["canary_heartbeats_answered"] > 0
    assert report["final_health"]["status"] == "ok"
    assert report["unreadable_api_pages"] == []
    assert report["sigterm_exit"] == 0
