"""Pricing of a charging session (plain code, no I/O).

A site's rate has an energy price per kWh (replaced inside time-of-use windows, in the
site's local time), a parking-time price per hour while plugged in, and an idle fee per
minute for the time a vehicle stays plugged in after charging ended, beyond a grace
period. Energy is spread evenly over the charging time to attribute it to windows (the
edge reports only totals). Amounts are Decimals rounded half-up to cents per component.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from central.reported_times import DEFAULT_POLICY, ClockPolicy, ClockProblem, bounded_span

CENT = Decimal("0.01")
STEP = timedelta(minutes=1)
MAX_PRICED = timedelta(days=14)


@dataclass(frozen=True)
class TouWindow:
    start: time
    end: time
    energy_price_per_kwh: Decimal
    days: frozenset[int] = field(default_factory=frozenset)  # 0=Monday; empty: every day

    def covers(self, local: datetime) -> bool:
        if self.days and local.weekday() not in self.days:
            return False
        t = local.time()
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end  # over midnight


@dataclass(frozen=True)
class Rate:
    currency: str
    energy_price_per_kwh: Decimal
    parking_price_per_hour: Decimal = Decimal(0)
    idle_fee_per_minute: Decimal = Decimal(0)
    idle_grace_minutes: int = 0
    timezone: str = "UTC"
    tou: tuple[TouWindow, ...] = ()


@dataclass(frozen=True)
class Cost:
    currency: str
    energy_kwh: Decimal
    energy: Decimal
    parking: Decimal
    idle: Decimal
    idle_minutes: int

    @property
    def total(self) -> Decimal:
        return self.energy + self.parking + self.idle


def energy_price_at(rate: Rate, at: datetime) -> Decimal:
    local = at.astimezone(ZoneInfo(rate.timezone))
    for window in rate.tou:
        if window.covers(local):
            return window.energy_price_per_kwh
    return rate.energy_price_per_kwh


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def price_session(
    rate: Rate,
    started_at: datetime,
    stopped_at: datetime,
    energy_wh: int,
    charging_ended_at: datetime | None = None,
) -> Cost:
    """The cost of a session plugged in ``[started_at, stopped_at)`` that delivered
    ``energy_wh``, charging until ``charging_ended_at`` (default: the whole time)."""
    if stopped_at < started_at:
        stopped_at = started_at
    charge_end = min(max(charging_ended_at or stopped_at, started_at), stopped_at)
    charge_end = min(charge_end, started_at + MAX_PRICED)
    kwh = Decimal(max(energy_wh, 0)) / Decimal(1000)
    charging_s = (charge_end - started_at).total_seconds()
    if not rate.tou or charging_s <= 0:
        energy = kwh * energy_price_at(rate, started_at)
    else:
        energy = Decimal(0)
        cursor = started_at
        while cursor < charge_end:
            step_end = min(cursor + STEP, charge_end)
            share = Decimal(str((step_end - cursor).total_seconds() / charging_s))
            energy += kwh * share * energy_price_at(rate, cursor)
            cursor = step_end
    plugged_h = Decimal(str((stopped_at - started_at).total_seconds() / 3600))
    parking = plugged_h * rate.parking_price_per_hour
    idle_s = (stopped_at - charge_end).total_seconds() - rate.idle_grace_minutes * 60
    idle_minutes = max(0, int(idle_s // 60))
    idle = Decimal(idle_minutes) * rate.idle_fee_per_minute
    return Cost(
        currency=rate.currency,
        energy_kwh=kwh,
        energy=_cents(energy),
        parking=_cents(parking),
        idle=_cents(idle),
        idle_minutes=idle_minutes,
    )


def price_reported_session(
    rate: Rate,
    started_at: datetime,
    stopped_at: datetime,
    energy_wh: int,
    charging_ended_at: datetime | None,
    *,
    received: datetime,
    policy: ClockPolicy = DEFAULT_POLICY,
) -> tuple[Cost, ClockProblem | None]:
    """:func:`price_session` for times a site reported: a session whose times central
    does not believe (:func:`~central.reported_times.bounded_span`) is priced by its
    energy alone, at the rate in force where its end is placed, with the problem named;
    a parking or idle fee from a broken clock would be made up."""
    span = bounded_span(started_at, stopped_at, received, policy)
    if span.problem is not None:
        return price_session(rate, span.end, span.end, energy_wh), span.problem
    return price_session(rate, started_at, stopped_at, energy_wh, charging_ended_at), None
