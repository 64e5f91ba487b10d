"""The one pricing engine: what a charging session costs. Plain code, no I/O.

The charging service prices a session for its driver (``/charging/status``, histories)
and analytics books the same sessions as revenue; both call this engine, so the revenue
reported is what drivers are charged. It lives in ``central/`` rather than in either
service because neither owns the rules and neither may read the other's tables: each
hands it a :class:`Rate` built from its own data (charging from its ``charging_rates``
rows, analytics from the rates it learnt from events). It depends only on
:mod:`central.reported_times`.

The rules:

* a rate has an energy price per kWh, a parking price per hour while plugged in, an idle
  fee per whole minute the vehicle stays plugged in after charging ended beyond a grace
  period (at most ``idle_fee_cap``), and a session fee;
* time-of-use windows, in the site's local time, replace the energy price, the parking
  price or both while they are in force; a window applies on ``days`` (0 = Monday, none
  named: every day); one with ``start > end`` spans midnight and belongs to the day it
  starts on; ``start == end`` is the whole day; the first window that covers a moment wins;
* energy is spread evenly over the charging time ``[started_at, charging_ended_at)`` (the
  edge reports only totals), at most :data:`MAX_CHARGING`, and each part is priced by the
  window in force then;
* a stop before the start is an instant at the start; a negative energy is none;
* amounts are Decimals rounded half-up to cents per component; the total is the sum of
  the rounded components.

Times a site reported go through :func:`price_reported_session`: a session whose times
central does not believe is priced by its energy alone (:func:`believed_times`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise
from typing import NamedTuple
from zoneinfo import ZoneInfo

from central.infra.saturating import shift
from central.reported_times import DEFAULT_POLICY, ClockPolicy, ClockProblem, Span, bounded_span

CENT = Decimal("0.01")
# energy is spread over at most this much charging time; the rest of a longer session
# is idle (callers bound reported spans first, see believed_times)
MAX_CHARGING = timedelta(days=14)


class Prices(NamedTuple):
    energy_per_kwh: Decimal
    parking_per_hour: Decimal


@dataclass(frozen=True)
class TouWindow:
    """A time-of-use window; a price left out (None) is the rate's own."""

    start: time
    end: time
    energy_price_per_kwh: Decimal | None = None
    days: frozenset[int] = field(default_factory=frozenset)  # 0=Monday; empty: every day
    parking_price_per_hour: Decimal | None = None

    def _on(self, weekday: int) -> bool:
        return not self.days or weekday in self.days

    def covers(self, local: datetime) -> bool:
        clock, day = local.time(), local.weekday()
        if self.start < self.end:
            return self._on(day) and self.start <= clock < self.end
        if self.start == self.end:
            return self._on(day)
        # over midnight: the part after midnight belongs to the day before
        return (self._on(day) and clock >= self.start) or (
            self._on((day - 1) % 7) and clock < self.end
        )


@dataclass(frozen=True)
class Rate:
    currency: str
    energy_price_per_kwh: Decimal
    parking_price_per_hour: Decimal = Decimal(0)
    idle_fee_per_minute: Decimal = Decimal(0)
    idle_grace_minutes: int = 0
    timezone: str = "UTC"
    tou: tuple[TouWindow, ...] = ()
    session_fee: Decimal = Decimal(0)
    idle_fee_cap: Decimal | None = None

    def prices_at(self, at: datetime) -> Prices:
        if not self.tou:  # no local time needed (nor converted, far off in time)
            return Prices(self.energy_price_per_kwh, self.parking_price_per_hour)
        local = at.astimezone(ZoneInfo(self.timezone))
        for window in self.tou:
            if window.covers(local):
                return Prices(
                    _or(window.energy_price_per_kwh, self.energy_price_per_kwh),
                    _or(window.parking_price_per_hour, self.parking_price_per_hour),
                )
        return Prices(self.energy_price_per_kwh, self.parking_price_per_hour)


@dataclass(frozen=True)
class Cost:
    currency: str
    energy_kwh: Decimal
    energy: Decimal
    parking: Decimal
    idle: Decimal
    idle_minutes: int
    session_fee: Decimal = Decimal(0)

    @property
    def total(self) -> Decimal:
        return self.energy + self.parking + self.idle + self.session_fee


def _or(price: Decimal | None, default: Decimal) -> Decimal:
    return default if price is None else price


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _seconds(start: datetime, end: datetime) -> Decimal:
    return Decimal(str((end - start).total_seconds()))


def energy_price_at(rate: Rate, at: datetime) -> Decimal:
    return rate.prices_at(at).energy_per_kwh


def _boundaries(rate: Rate, start: datetime, end: datetime) -> list[datetime]:
    """Instants in ``(start, end)`` where a price may change: window edges, local midnights."""
    zone = ZoneInfo(rate.timezone)
    edges = {time(0), *(w.start for w in rate.tou), *(w.end for w in rate.tou)}
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


def _pieces(rate: Rate, start: datetime, end: datetime) -> list[tuple[datetime, datetime, Prices]]:
    """``[start, end)`` cut where a price may change, each piece with its prices."""
    if not rate.tou:
        return [(start, end, rate.prices_at(start))]
    points = [start, *_boundaries(rate, start, end), end]
    return [(lo, hi, rate.prices_at(lo + (hi - lo) / 2)) for lo, hi in pairwise(points)]


def price_session(
    rate: Rate,
    started_at: datetime,
    stopped_at: datetime,
    energy_wh: float,
    charging_ended_at: datetime | None = None,
) -> Cost:
    """The cost of a session plugged in ``[started_at, stopped_at)`` that delivered
    ``energy_wh``, charging until ``charging_ended_at`` (default: the whole time)."""
    stopped_at = max(stopped_at, started_at)
    charge_end = min(
        max(charging_ended_at or stopped_at, started_at),
        stopped_at,
        shift(started_at, MAX_CHARGING),
    )
    kwh = Decimal(str(max(energy_wh, 0))) / 1000
    charging_s = _seconds(started_at, charge_end)
    if charging_s == 0:
        energy = kwh * rate.prices_at(started_at).energy_per_kwh
    else:
        energy = sum(
            (
                kwh * _seconds(lo, hi) / charging_s * prices.energy_per_kwh
                for lo, hi, prices in _pieces(rate, started_at, charge_end)
            ),
            Decimal(0),
        )
    parking = sum(
        (
            _seconds(lo, hi) / 3600 * prices.parking_per_hour
            for lo, hi, prices in _pieces(rate, started_at, stopped_at)
        ),
        Decimal(0),
    )
    idle_s = (stopped_at - charge_end).total_seconds() - rate.idle_grace_minutes * 60
    idle_minutes = max(0, int(idle_s // 60))
    idle = Decimal(idle_minutes) * rate.idle_fee_per_minute
    if rate.idle_fee_cap is not None:
        idle = min(idle, rate.idle_fee_cap)
    return Cost(
        currency=rate.currency,
        energy_kwh=kwh,
        energy=_cents(energy),
        parking=_cents(parking),
        idle=_cents(idle),
        idle_minutes=idle_minutes,
        session_fee=_cents(rate.session_fee),
    )


@dataclass(frozen=True)
class BelievedTimes:
    """The times to price a reported session over, and the span to account it over."""

    started_at: datetime
    stopped_at: datetime
    charging_ended_at: datetime | None
    span: Span

    @property
    def problem(self) -> ClockProblem | None:
        return self.span.problem


def believed_times(
    started_at: datetime,
    stopped_at: datetime,
    charging_ended_at: datetime | None,
    *,
    received: datetime,
    policy: ClockPolicy = DEFAULT_POLICY,
) -> BelievedTimes:
    """The times of a session a site reported, as central prices them: as reported when
    central believes them (:func:`~central.reported_times.bounded_span`), else an instant
    where the session's end is placed, so no parking or idle fee is made up from a broken
    clock and the energy is priced at the rate in force there."""
    span = bounded_span(started_at, stopped_at, received, policy)
    if span.problem is not None:
        return BelievedTimes(span.end, span.end, None, span)
    return BelievedTimes(started_at, stopped_at, charging_ended_at, span)


def price_reported_session(
    rate: Rate,
    started_at: datetime,
    stopped_at: datetime,
    energy_wh: float,
    charging_ended_at: datetime | None,
    *,
    received: datetime,
    policy: ClockPolicy = DEFAULT_POLICY,
) -> tuple[Cost, ClockProblem | None]:
    """:func:`price_session` over :func:`believed_times`, with the problem named."""
    times = believed_times(
        started_at, stopped_at, charging_ended_at, received=received, policy=policy
    )
    cost = price_session(
        rate, times.started_at, times.stopped_at, energy_wh, times.charging_ended_at
    )
    return cost, times.problem
