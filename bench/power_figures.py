"""The figures of a ``bench.power_day`` run and their text: plain code, no I/O.

The safety line is the verdict: every sample of the site's draw taken more than the
settle window after a car arrived must be at most the limit. In the window, a car at a
charger that ignores its limit draws what it likes until the manager has measured it
and lowered the others; that is what the react window is for.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from bench.power_schedule import DAY_HOURS, HOUR, Car, ChargerPlan, clock_time, met

SLOP_W = 0.5  # float sums of the chargers' draws


@dataclass(frozen=True, slots=True)
class Sample:
    """The site's real draw (the sum of the simulated chargers' meters) after a tick."""

    wall_s: float  # since the day began
    sim_s: float
    site_w: float
    cars: int = 0  # cars plugged in
    queued: int = 0  # of them, with a limit of 0 while not full


@dataclass(slots=True)
class CarRun:
    """One car's visit as it went, and as it would have gone on an unlimited site."""

    car: Car
    ignoring: bool  # at the charger that ignores profiles
    unlimited_wh: float
    delivered_wh: float = 0.0
    charging_s: float = 0.0  # simulated seconds it drew power
    waiting_s: float = 0.0  # the current stretch with a limit of 0 while not full
    longest_wait_s: float = 0.0

    def wait(self, seconds: float) -> None:
        self.waiting_s += seconds
        self.longest_wait_s = max(self.longest_wait_s, self.waiting_s)

    @property
    def met(self) -> bool:
        return met(self.delivered_wh, self.car)

    @property
    def avg_kw(self) -> float | None:
        if self.charging_s <= 0:
            return None
        return self.delivered_wh / 1000 / (self.charging_s / 3600)


@dataclass(frozen=True, slots=True)
class Safety:
    limit_w: float
    window_s: float
    highest: Sample | None
    highest_settled: Sample | None
    settled: int
    loaded: int  # settled samples with cars drawing power: what the verdict stands on
    samples: int
    over: tuple[Sample, ...]  # settled samples above the limit

    @property
    def held(self) -> bool:
        return not self.over and self.loaded > 0


def safety(
    samples: list[Sample], arrivals_wall: list[float], limit_w: float, window_s: float
) -> Safety:
    """The highest draw, overall and among the samples taken more than ``window_s`` after
    every arrival before them."""
    arrivals = sorted(arrivals_wall)
    settled = []
    for s in samples:
        last = max((a for a in arrivals if a <= s.wall_s), default=None)
        if last is None or s.wall_s - last > window_s:
            settled.append(s)
    return Safety(
        limit_w,
        window_s,
        max(samples, key=lambda s: s.site_w, default=None),
        max(settled, key=lambda s: s.site_w, default=None),
        len(settled),
        sum(1 for s in settled if s.site_w > 0),
        len(samples),
        tuple(s for s in settled if s.site_w > limit_w + SLOP_W),
    )


@dataclass(slots=True)
class Report:
    plans: list[ChargerPlan]
    seed: int
    strategy: str
    limit_w: float
    speed: float
    tick_wall_s: float
    cycle_s: float
    react_s: float
    rotate_sim_min: float
    wall_s: float = 0.0  # how long the day took
    late_ticks: int = 0
    samples: list[Sample] = field(default_factory=list)
    arrivals_wall: list[float] = field(default_factory=list)
    cars: list[CarRun] = field(default_factory=list)
    ignoring_first_car_wall: float | None = None
    detected_wall: float | None = None  # when the manager marked the ignoring charger
    ignoring_counted_w: float = 0.0  # the most the manager counted it at since
    false_alarms: set[str] = field(default_factory=set)  # obeying chargers marked
    errors: list[str] = field(default_factory=list)

    @property
    def window_s(self) -> float:
        """After a car arrives: the react window, a cycle, and two meter ticks (the one
        that carries the new draw to the edge, and the one that shows the new limit)."""
        return self.react_s + self.cycle_s + 2 * self.tick_wall_s

    def safety(self) -> Safety:
        return safety(self.samples, self.arrivals_wall, self.limit_w, self.window_s)


def _kw(watts: float) -> str:
    return f"{watts / 1000:.1f}"


def _at(s: Sample | None) -> str:
    return "-" if s is None else f"{_kw(s.site_w)} kW at {clock_time(s.sim_s)}"


def safety_line(safe: Safety) -> str:
    """The verdict, one line; ``tests/bench`` reads it."""
    limit = _kw(safe.limit_w)
    if safe.over:
        worst = max(safe.over, key=lambda s: s.site_w)
        return (
            f"SAFETY: LIMIT EXCEEDED after the react window in {len(safe.over)} sample(s): "
            f"worst {_at(worst)} > {limit} kW"
        )
    if safe.held:
        return (
            f"SAFETY: limit held after the react window "
            f"(highest {_at(safe.highest_settled)} <= {limit} kW)"
        )
    return "SAFETY: NOT CHECKED: no sample with cars charging outside the react windows"


def by_hours(samples: list[Sample], hours: int = 2) -> list[str]:
    """The day in blocks of ``hours``: cars, queued cars and the site's draw."""
    blocks: dict[int, list[Sample]] = {}
    last = math.ceil(DAY_HOURS / hours) - 1  # the tick at midnight closes the last block
    for s in samples:
        blocks.setdefault(min(int(s.sim_s // (hours * HOUR)), last), []).append(s)
    lines = ["time         cars  queued  max kW  avg kW"]
    for block, some in sorted(blocks.items()):
        start = block * hours * HOUR
        span = f"{clock_time(start)}-{clock_time(start + hours * HOUR)}"
        draws = [s.site_w for s in some]
        lines.append(
            f"{span:<11}  {max(s.cars for s in some):>4}  {max(s.queued for s in some):>6}  "
            f"{max(draws) / 1000:>6.1f}  {statistics.mean(draws) / 1000:>6.1f}"
        )
    return lines


def render(report: Report) -> str:
    plans, cars = report.plans, report.cars
    v16 = sum(1 for p in plans if p.version == "1.6")
    ignoring = [p.id for p in plans if p.profiles == "ignore"]
    safe = report.safety()
    sim_min = report.speed / 60
    rows: list[tuple[str, str]] = []

    def row(name: str, value: str) -> None:
        rows.append((name, value))

    row("site limit", f"{_kw(report.limit_w)} kW ({report.strategy})")
    row("highest draw, overall", _at(safe.highest) + " (react windows included)")
    row(
        "highest draw, settled",
        f"{_at(safe.highest_settled)} ({safe.settled} of {safe.samples} samples "
        f"> {report.window_s:g} s wall after an arrival, {safe.loaded} with cars charging)",
    )
    delivered = sum(c.delivered_wh for c in cars)
    unlimited = sum(c.unlimited_wh for c in cars)
    share = f" ({100 * delivered / unlimited:.0f} %)" if unlimited else ""
    row("energy delivered", f"{delivered / 1000:.1f} kWh{share}")
    row("unlimited site", f"{unlimited / 1000:.1f} kWh for the same cars and stays")
    wanted = sum(c.car.wanted_wh for c in cars)
    row("energy wanted", f"{wanted / 1000:.1f} kWh")
    short = [c for c in cars if not c.met and not c.ignoring and c.avg_kw is not None]
    speeds = [c.avg_kw for c in short if c.avg_kw is not None]
    if len(speeds) >= 2:
        cv = statistics.pstdev(speeds) / statistics.mean(speeds)
        row(
            "fairness (short cars)",
            f"avg kW while charging min {min(speeds):.1f} / max {max(speeds):.1f}, "
            f"CV {cv:.2f} ({len(speeds)} cars that got less than they wanted)",
        )
    else:
        row("fairness (short cars)", f"{len(speeds)} car(s) got less than they wanted")
    queued = [c for c in cars if c.longest_wait_s > 0]
    longest = max((c.longest_wait_s for c in queued), default=0.0)
    row("cars queued", f"{len(queued)} of {len(cars)}, longest wait {longest / 60:.0f} sim-min")
    declared = [c for c in cars if c.car.declared]
    free = [c for c in declared if met(c.unlimited_wh, c.car)]
    row(
        "departures met",
        f"{sum(c.met for c in declared)} of {len(declared)} declared "
        f"(unlimited site: {len(free)}); all cars {sum(c.met for c in cars)} of {len(cars)} "
        f"(unlimited: {sum(met(c.unlimited_wh, c.car) for c in cars)})",
    )
    if report.detected_wall is None:
        row("uncontrolled detected", f"NO ({', '.join(ignoring) or 'none'} ignores profiles)")
    else:
        after = report.detected_wall - (report.ignoring_first_car_wall or 0.0)
        row(
            "uncontrolled detected",
            f"yes, {', '.join(ignoring)} {after:.1f} s wall (~{after * sim_min:.0f} sim-min) "
            "after its first car arrived",
        )
        max_kw = ", ".join(f"{p.max_kw:g}" for p in plans if p.profiles == "ignore")
        row(
            "uncontrolled counted at",
            f"{_kw(report.ignoring_counted_w)} kW (its max_kw: {max_kw}) while its car was in",
        )
    alarms = ", ".join(sorted(report.false_alarms)) or "none"
    row("obeying chargers marked", alarms)
    row("late ticks", f"{report.late_ticks} of {len(report.samples)}")
    width = max(len(name) for name, _ in rows)
    lines = [
        f"power_day: {len(plans)} chargers ({v16} OCPP 1.6, {len(plans) - v16} OCPP 2.0.1; "
        f"{', '.join(ignoring) or 'none'} ignores profiles), {len(cars)} cars, seed {report.seed}",
        f"accelerated {report.speed:.0f}x: 06:00-24:00 simulated in {report.wall_s:.0f} s wall; "
        f"a meter tick every {report.tick_wall_s:g} s wall = {report.tick_wall_s * sim_min:.1f} "
        "sim-min of charging",
        f"the manager runs in wall time: cycle {report.cycle_s:g} s, react {report.react_s:g} s "
        f"(~{report.react_s * sim_min:.0f} sim-min), rotation {report.rotate_sim_min:g} sim-min "
        f"= {report.rotate_sim_min * 60 / report.speed:.1f} s wall",
        "",
        *by_hours(report.samples),
        "",
        *(f"{name.ljust(width)}  {value}" for name, value in rows),
        "",
        safety_line(safe),
    ]
    lines += [f"ERROR: {e}" for e in report.errors[:10]]
    return "\n".join(lines) + "\n"
