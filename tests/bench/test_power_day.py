"""The load-management bench keeps working, and its safety verdict can fail.

The smoke run is the real command line: an edge daemon with load management and
simulated chargers of both versions (one ignoring its profiles) over real websockets,
through a tiny accelerated day. The verdict it prints must say the limit held.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.power_figures import Sample, safety, safety_line
from bench.power_schedule import chargers, day

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_tiny_day_keeps_the_site_under_its_limit() -> None:
    command = [
        sys.executable, "-m", "bench.power_day", "--chargers=4", "--site-kw=20",
        "--minutes=0.4", "--tick=0.25", "--react=1", "--seed=3",
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=90, check=False
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    lines = done.stdout.splitlines()
    verdict = [line for line in lines if line.startswith("SAFETY:")]
    assert verdict, done.stdout
    assert verdict[0].startswith("SAFETY: limit held after the react window"), done.stdout
    assert any(line.startswith("energy delivered") for line in lines)
    # the charger that ignores its profiles is caught, and no obeying one is blamed
    assert any(line.startswith("uncontrolled detected    yes, PD-03") for line in lines), (
        done.stdout
    )
    assert "obeying chargers marked  none" in lines, done.stdout
    counted = [line for line in lines if line.startswith("uncontrolled counted at")]
    assert counted, done.stdout
    assert counted[0].split()[3:5] == ["11.0", "kW"], done.stdout  # its max_kw, 11 kW
    assert not any(line.startswith("ERROR") for line in lines), done.stdout


def test_a_draw_over_the_limit_outside_the_react_window_fails_the_verdict() -> None:
    arrivals = [10.0]
    samples = [
        Sample(11.0, 0, 25_000.0),  # just after an arrival: the react window
        Sample(20.0, 0, 19_000.0),
        Sample(21.0, 0, 20_400.0),  # settled, and over
    ]
    safe = safety(samples, arrivals, 20_000.0, window_s=4.0)
    assert not safe.held
    assert [s.wall_s for s in safe.over] == [21.0]
    assert safety_line(safe).startswith("SAFETY: LIMIT EXCEEDED")
    within = safety(samples[:2], arrivals, 20_000.0, window_s=4.0)
    assert within.held
    assert within.highest is not None
    assert within.highest.site_w == 25_000.0
    assert safety_line(within).startswith("SAFETY: limit held")


def test_no_settled_sample_with_cars_is_no_verdict() -> None:
    safe = safety([Sample(1.0, 0, 30_000.0), Sample(9.0, 0, 0.0)], [0.5], 20_000.0, 4.0)
    assert not safe.held
    assert not safe.over
    assert safety_line(safe).startswith("SAFETY: NOT CHECKED")


def test_the_day_is_the_same_for_the_same_seed() -> None:
    plans = chargers(20)
    assert day(plans, 5) == day(plans, 5)
    assert day(plans, 5) != day(plans, 6)
    assert sum(p.profiles == "ignore" for p in plans) == 1
    assert {p.version for p in plans} == {"1.6", "2.0.1"}
    ignoring = next(p.id for p in plans if p.profiles == "ignore")
    assert any(car.charger == ignoring for car in day(plans, 5))
    for car in day(plans, 5):
        assert 0 < car.soc < 100
        assert car.arrive_s < car.leave_s
