"""The README's first command: `evpark demo` brings up central, an edge and a simulated
site, prints where to look, and stops cleanly; in its first half minute the demo driver has
been told something by email (the demo's mail sink) and its charge was priced (revenue)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.harness.processes import run_evpark

# the site's running time (counted once everything is up, however long starting took):
# the demo driver's first visit (reserve, arrive, charge 10 s, stop, leave) with room to spare
DURATION_S = 30


@pytest.mark.slow
def test_demo_runs_and_stops_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    result = run_evpark(
        "demo", "--duration", str(DURATION_S), "--chargers", "0", "--data-dir", str(data),
        within=DURATION_S + 80,  # and starting and stopping
    )  # fmt: skip
    assert result.code == 0, result.stdout[-2000:] + result.stderr[-3000:]
    out = result.stdout
    assert "evpark demo is running" in out
    assert "user demo, password" in out
    assert "Authorization: Bearer evp_" in out
    assert "demo set-up: central refused" not in out, out
    edge_log = (data / "edge.log").read_text()
    assert '"event": "edge.ready"' in edge_log
    assert '"event": "sync.central.reachable"' in edge_log
    assert '"event": "edge.stopped"' in edge_log
    assert '"level": "error"' not in edge_log
    assert '"level": "error"' not in (data / "central.log").read_text()

    # the demo driver's journey: each step on the output, priced, told by email
    assert "demo driver: reserved slot A3 for EV-1" in out, out[-3000:]
    assert "demo driver: start from the app: accepted" in out, out[-3000:]
    assert "demo driver: unplugged and left" in out, out[-3000:]
    revenue = re.search(r"^revenue of demo-site: (.*); unpriced sessions", out, re.M)
    assert revenue is not None, out[-3000:]
    assert revenue.group(1).startswith("EUR "), revenue.group(0)
    mails = re.search(r"^(\d+) emails reached the demo's mail sink", out, re.M)
    assert mails is not None, out[-3000:]
    assert int(mails.group(1)) >= 1, out[-3000:]
    assert "mail to demo-driver@evpark.example: " in out
    assert "mail to demo-driver@evpark.example: " in (data / "mail.log").read_text()
