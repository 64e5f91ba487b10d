"""Pricing a completed charging session from a rate: time-of-use windows, idle fee.

Plain code, no I/O. Money is :class:`~decimal.Decimal` and ends as integer minor units
(cents), rounded half-up per component; the total is the sum of rounded components.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

Money = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=6)]


class TouWindow(BaseModel):
    """A time-of-use window: on ``days`` (0 = Monday) from ``start`` to ``end`` local time.

    ``start > end`` spans midnight (the window belongs to the day it starts on). Prices
    left out fall back to the rate's base prices.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    days: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)
    start: time
    end: time
    energy_per_kwh: Money | None = Field(
        default=None,
        validation_alias=AliasChoices("energy_per_kwh", "energy_price_per_kwh", "price_per_kwh"),
    )
    time_per_hour: Money | None = Field(
        default=None,
        validation_alias=AliasChoices("time_per_hour", "parking_price_per_hour", "price_per_hour"),
    )

    @field_validator("days")
    @classmethod
    def _weekdays(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 0 <= day <= 6 for day in value):
            raise ValueError("days are 0 (Monday) to 6 (Sunday)")
        return value or (0, 1, 2, 3, 4, 5, 6)  # empty: every day

    def covers(self, local: datetime) -> bool:
        clock, day = local.time(), local.weekday()
        if self.start < self.end:
            return day in self.days and self.start <= clock < self.end
        if self.start == self.end:  # all day
            return day in self.days
        return (day in self.days and clock >= self.start) or (
            (day - 1) % 7 in self.days and clock < self.end
        )


class Rate(BaseModel):
    """A charging rate as analytics learns it from events (see the README section)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    rate_id: str = Field(
        default="default", max_length=64, validation_alias=AliasChoices("rate_id", "id")
    )
    currency: str = Field(default="EUR", min_length=3, max_length=3)
    energy_per_kwh: Money = Field(
        default=Decimal(0),
        validation_alias=AliasChoices("energy_per_kwh", "energy_price_per_kwh", "price_per_kwh"),
    )
    time_per_hour: Money = Field(
        default=Decimal(0),
        validation_alias=AliasChoices("time_per_hour", "parking_price_per_hour", "price_per_hour"),
    )
    session_fee: Money = Decimal(0)
    idle_fee_per_minute: Money = Decimal(0)
    idle_grace_minutes: int = Field(default=0, ge=0)
    idle_fee_cap: Money | None = None
    timezone: str = "UTC"
    windows: tuple[TouWindow, ...] = Field(
        default=(), validation_alias=AliasChoices("windows", "tou_windows", "time_of_use", "tou")
    )
    valid_from: datetime | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        ZoneInfo(value)
        return value

    @field_validator("valid_from")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("valid_from needs a UTC offset")
        return value

    def prices_at(self, at: datetime) -> tuple[Decimal, Decimal]:
        """(energy per kWh, time per hour) in force at ``at``."""
        local = at.astimezone(ZoneInfo(self.timezone))
        for window in self.windows:
            if window.covers(local):
                return (
                    self.energy_per_kwh if window.energy_per_kwh is None else window.energy_per_kwh,
                    self.time_per_hour if window.time_per_hour is None else window.time_per_hour,
                )
        return self.energy_per_kwh, self.time_per_hour


@dataclass(frozen=True)
class SessionPrice:
    currency: str
    energy: int
    time: int
    idle: int
    session_fee: int
    rate_id: str

    @property
    def total(self) -> int:
        return self.energy + self.time + self.idle + self.session_fee


CENT = Decimal("0.01")


def to_minor(amount: Decimal) -> int:
    return int((amount / CENT).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _boundaries(rate: Rate, start: datetime, end: datetime) -> list[datetime]:
    """Instants in ``(start, end)`` where prices may change: window edges, local midnights."""
    zone = ZoneInfo(rate.timezone)
    edges = {time(0), *(w.start for w in rate.windows), *(w.end for w in rate.windows)}
    found: set[datetime] = set()
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date() + timedelta(days=1)
    while day <= last:
        for edge in edges:
            instant = datetime.combine(day, edge, tzinfo=zone).astimezone(UTC)
            if start < instant < end:
                found.add(instant)
        day += timedelta(days=1)
    return sorted(found)


def price_session(
    rate: Rate,
    *,
    started_at: datetime,
    stopped_at: datetime,
    energy_wh: float,
    idle_since: datetime | None = None,
) -> SessionPrice:
    """The price of a session: energy spread evenly over the charging time.

    Charging time is ``[started_at, idle_since or stopped_at)``; the idle time after it
    costs ``idle_fee_per_minute`` beyond ``idle_grace_minutes`` (capped at
    ``idle_fee_cap``). The time price runs over the whole plugged-in time
    ``[started_at, stopped_at)``. Energy and time are priced by the window in force at
    each moment.
    """
    if started_at.tzinfo is None or stopped_at.tzinfo is None:
        raise ValueError("aware datetimes only")
    if stopped_at < started_at:
        raise ValueError("stopped_at is before started_at")
    charge_end = stopped_at
    if idle_since is not None:
        charge_end = min(max(idle_since, started_at), stopped_at)
    kwh = Decimal(str(max(0.0, energy_wh))) / 1000
    charge_s = Decimal(str((charge_end - started_at).total_seconds()))
    energy_cost = Decimal(0)
    time_cost = Decimal(0)
    if charge_s == 0:
        energy_cost = kwh * rate.prices_at(started_at)[0]
    points = [started_at, *_boundaries(rate, started_at, stopped_at), stopped_at]
    if charge_end not in points:
        points = sorted([*points, charge_end])
    for lo, hi in pairwise(points):
        seconds = Decimal(str((hi - lo).total_seconds()))
        energy_price, time_price = rate.prices_at(lo + (hi - lo) / 2)
        time_cost += seconds / 3600 * time_price
        if charge_s > 0 and hi <= charge_end:
            energy_cost += kwh * seconds / charge_s * energy_price
    idle_minutes = Decimal(str((stopped_at - charge_end).total_seconds())) / 60
    billable = max(Decimal(0), idle_minutes - rate.idle_grace_minutes)
    idle_cost = billable * rate.idle_fee_per_minute
    if rate.idle_fee_cap is not None:
        idle_cost = min(idle_cost, rate.idle_fee_cap)
    return SessionPrice(
        currency=rate.currency,
        energy=to_minor(energy_cost),
        time=to_minor(time_cost),
        idle=to_minor(idle_cost),
        session_fee=to_minor(rate.session_fee),
        rate_id=rate.rate_id,
    )


@dataclass(frozen=True)
class KnownRate:
    """A rate learnt from an event, for one site or for all (``site_id`` ``None``)."""

    site_id: str | None
    rate: Rate
    learnt_at: datetime


def select_rate(
    known: list[KnownRate], *, site_id: str, rate_id: str | None, at: datetime
) -> Rate | None:
    """The rate in force for a session at ``site_id`` starting ``at``.

    Among rates valid at ``at`` (``valid_from`` unset or not later), prefer the named
    ``rate_id``, then the site's own over global ones, then the latest ``valid_from``
    (else the latest learnt).
    """
    candidates = [
        k
        for k in known
        if k.site_id in (site_id, None) and (k.rate.valid_from is None or k.rate.valid_from <= at)
    ]
    if rate_id is not None and any(k.rate.rate_id == rate_id for k in candidates):
        candidates = [k for k in candidates if k.rate.rate_id == rate_id]
    if not candidates:
        return None

    def rank(k: KnownRate) -> tuple[bool, datetime, datetime]:
        since = k.rate.valid_from or datetime.min.replace(tzinfo=UTC)
        return (k.site_id is not None, since, k.learnt_at)

    return max(candidates, key=rank).rate
