"""The README's first command: `evpark demo` brings up central, an edge and a simulated
site, prints where to look, and stops cleanly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EVPARK = str(Path(sys.executable).with_name("evpark"))


def test_demo_runs_and_stops_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    result = subprocess.run(
        [EVPARK, "demo", "--duration", "15", "--chargers", "0", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "evpark demo is running" in result.stdout
    assert "user demo, password" in result.stdout
    assert "Authorization: Bearer evp_" in result.stdout
    edge_log = (data / "edge.log").read_text()
    assert '"event": "edge.ready"' in edge_log
    assert '"event": "sync.central.reachable"' in edge_log
    assert '"event": "edge.stopped"' in edge_log
    assert '"level": "error"' not in edge_log
    assert '"level": "error"' not in (data / "central.log").read_text()
