"""The central scale bench keeps working: its smoke mode (a few sites, a few seconds per
phase) against central in scale mode on this machine's PostgreSQL, NATS and Redis, run as
a user runs it, its ``--json`` report read back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.harness.shared_services import PG_HOST, PG_PORT, require_nats, require_redis
from tests.services import require_tcp

pytestmark = [pytest.mark.services, pytest.mark.timeout(240)]  # a cluster starts
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    require_tcp("PostgreSQL", PG_HOST, PG_PORT)
    require_nats()
    require_redis()
    logs = tmp_path_factory.mktemp("central-scale")
    command = [
        sys.executable,
        "-m",
        "bench.central_scale",
        "--smoke",
        "--json",
        "--keep",
        str(logs),
    ]
    done = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr[-3000:]}"
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


def test_every_event_is_stored_and_applied_once(report: dict[str, Any]) -> None:
    once = report["exactly_once"]
    assert once["ok"] is True, [c for c in once["checks"] if not c["ok"]]
    assert {c["what"] for c in once["checks"]} >= {
        "sync: events stored",
        "analytics: events logged",
        "parking: history rows",
        "charging: sessions",
        "logs: bus.event.dead_lettered",
    }
    stored = next(c for c in once["checks"] if c["what"] == "sync: events stored")
    assert stored["got"] == report["events"] > 0


def test_both_phases_are_measured_to_the_end(report: dict[str, Any]) -> None:
    steady, storm = report["steady"], report["storm"]
    assert steady["events"] > 0
    assert steady["ingest_per_s"] > 0
    assert steady["processed"]["drained"] is True
    assert steady["processed"]["processed_per_s"] > 0
    assert 0 < steady["lag_p50_s"] <= steady["lag_p99_s"]
    # every acknowledged batch was seen applied
    assert steady["lag_batches_measured"] == steady["batches"] > 0
    backlog = report["config"]["backlog"] * report["config"]["sites"]
    assert storm["events"] == backlog + steady["given_up_in_flight"]
    assert storm["drain"]["drained"] is True
    assert storm["drain"]["seconds"] > 0
    assert report["events"] == steady["events"] + storm["events"]


def test_api_reads_were_answered_under_load(report: dict[str, Any]) -> None:
    api = report["steady"]["api"]
    assert set(api) == {"GET /parking/status", "GET /charging/status/{vehicle}"}
    for route, figures in api.items():
        assert figures["requests"] > 0, route
        assert figures["errors"] == 0, route
        assert 0 < figures["p50_ms"] <= figures["p99_ms"], route


def test_cost_per_process_and_in_postgresql(report: dict[str, Any]) -> None:
    processes = report["processes"]
    central = {"ingest-0", "ingest-1", "parking-0", "charging-0", "notification-0", "analytics-0"}
    assert central <= set(processes)
    for name in central:
        assert processes[name]["cpu_s"] > 0, name
        assert processes[name]["peak_rss_mb"] > 0, name
    postgres = report["postgres"]
    # each event is a row in sync's table and in analytics' log at least
    assert postgres["rows_added_per_event"] >= 2
    assert postgres["bytes_per_event"] > 0
    assert set(postgres["by_database"]) == {
        "gateway", "sync", "parking", "charging", "notification", "analytics"
    }  # fmt: skip
