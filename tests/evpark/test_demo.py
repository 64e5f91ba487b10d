"""The README's first command: `evpark demo` brings up central, an edge and a simulated
site, prints where to look, and stops cleanly."""

from __future__ import annotations

from pathlib import Path

from tests.harness.processes import run_evpark


def test_demo_runs_and_stops_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    result = run_evpark(
        "demo", "--duration", "15", "--chargers", "0", "--data-dir", str(data), within=110
    )
    assert result.code == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "evpark demo is running" in result.stdout
    assert "user demo, password" in result.stdout
    assert "Authorization: Bearer evp_" in result.stdout
    edge_log = (data / "edge.log").read_text()
    assert '"event": "edge.ready"' in edge_log
    assert '"event": "sync.central.reachable"' in edge_log
    assert '"event": "edge.stopped"' in edge_log
    assert '"level": "error"' not in edge_log
    assert '"level": "error"' not in (data / "central.log").read_text()
