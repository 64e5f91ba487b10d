"""The site and the seeded day of ``bench.power_day``: plain code, no I/O.

Chargers alternate OCPP 1.6 and 2.0.1; every fourth can give 22 kW, the others 11 kW; the
third (``PD-03``) accepts charging profiles and ignores them. Cars come in three kinds:
commuters (arrive 07:00-09:30, stay 6.5-9.5 h), visitors (10:00-16:00, 1-3 h, one after
another) and evening cars (17:30-20:00, until the end of the day). Each wants an amount
of energy: its battery is full when it has it. Some declare their departure (as a
reservation would): the manager is not told yet, the bench reports whether they left
with what they wanted. Times are simulated seconds since the day's start (06:00).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final, Literal

from sim.charger.curve import AcCurve, ConnectorMeter

HOUR: Final = 3600.0
DAY_START_H: Final = 6.0  # the simulated day runs from 06:00 ...
DAY_HOURS: Final = 18.0  # ... to midnight: nothing happens at night
IGNORING_INDEX: Final = 2  # PD-03
CAPACITIES_WH: Final = (40_000.0, 58_000.0, 77_000.0, 100_000.0)
# a car that got this share of what it wanted left with what it wanted (the AC taper
# above 95 % state of charge makes the last few hundred Wh slow for every site)
MET_SHARE: Final = 0.97


@dataclass(frozen=True, slots=True)
class ChargerPlan:
    id: str
    version: Literal["1.6", "2.0.1"]
    max_kw: float
    profiles: Literal["obey", "ignore"]


@dataclass(frozen=True, slots=True)
class Car:
    number: int
    charger: str
    arrive_s: float
    leave_s: float
    wanted_wh: float
    capacity_wh: float
    declared: bool  # told its departure time (a reservation would)

    @property
    def soc(self) -> float:
        """The state of charge it arrives with: full once it has what it wants."""
        return 100.0 * (1.0 - self.wanted_wh / self.capacity_wh)


def chargers(count: int) -> list[ChargerPlan]:
    return [
        ChargerPlan(
            f"PD-{i + 1:02d}",
            "1.6" if i % 2 == 0 else "2.0.1",
            22.0 if i % 4 == 3 else 11.0,
            "ignore" if i == IGNORING_INDEX else "obey",
        )
        for i in range(count)
    ]


def clock_time(sim_s: float) -> str:
    """``HH:MM`` of a simulated moment."""
    minutes = int(DAY_START_H * 60 + sim_s / 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def day(plans: list[ChargerPlan], seed: int) -> list[Car]:
    """Every car of the day, by arrival; the same ``seed`` gives the same day."""
    rng = random.Random(seed)
    end = DAY_HOURS * HOUR
    visits: list[tuple[str, float, float, float, bool]] = []

    def visit(
        charger: str, arrive: float, leave: float, kwh: tuple[float, float], p: float
    ) -> None:
        visits.append(
            (charger, arrive, min(leave, end), rng.uniform(*kwh) * 1000, rng.random() < p)
        )

    for plan in plans:
        free_at = 0.0
        # the charger that ignores profiles always gets a morning car: it must be caught
        if plan.profiles == "ignore" or rng.random() < 0.75:
            arrive = rng.uniform(1.0, 3.5) * HOUR
            free_at = arrive + rng.uniform(6.5, 9.5) * HOUR
            visit(plan.id, arrive, free_at, (8.0, 35.0), 0.7)
        else:
            arrive = rng.uniform(4.0, 6.0) * HOUR
            while arrive < 10.0 * HOUR:
                free_at = arrive + rng.uniform(1.0, 3.0) * HOUR
                visit(plan.id, arrive, free_at, (5.0, 20.0), 0.3)
                arrive = free_at + rng.uniform(0.25, 1.5) * HOUR
        if rng.random() < 0.6:
            arrive = max(free_at + rng.uniform(0.25, 1.0) * HOUR, rng.uniform(11.5, 14.0) * HOUR)
            if arrive < end - HOUR:
                visit(plan.id, arrive, end - rng.uniform(0.0, 0.5) * HOUR, (10.0, 40.0), 0.5)
    cars = []
    for number, (charger, arrive, leave, wanted, declared) in enumerate(
        sorted(visits, key=lambda v: v[1]), start=1
    ):
        capacity = next(c for c in (*CAPACITIES_WH, 10 * wanted) if c >= wanted * 1.1)
        cars.append(Car(number, charger, arrive, leave, wanted, capacity, declared))
    return cars


def unlimited_wh(car: Car, max_w: float, ticks: int, tick_s: float) -> float:
    """What the car would get on a site without a limit: its charger's maximum for its
    whole stay (``ticks`` meter ticks of ``tick_s`` simulated seconds), as the simulated
    charger's meter integrates it."""
    meter = ConnectorMeter(curve=AcCurve(max_power_w=max_w))
    meter.plug(car.soc, car.capacity_wh)
    for _ in range(ticks):
        meter.advance(tick_s)
    return meter.register_wh


def met(delivered_wh: float, car: Car) -> bool:
    return delivered_wh >= MET_SHARE * car.wanted_wh
