"""Revenue from events: each completed session priced, in minor units (cents). No I/O.

A session is priced by the one engine the charging service prices it by
(:mod:`central.pricing`), so the revenue booked is what its driver is charged; the rate
is one analytics learnt from events (:mod:`central.analytics.rates`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from central import pricing
from central.analytics import event_data
from central.analytics.buckets import hour_floor
from central.analytics.rates import BadRate, KnownRate, parse_rate, select_rate
from central.analytics.usage import session_energy
from central.published_rates import PublishedRate
from central.reported_times import DEFAULT_POLICY, ClockPolicy
from contract.envelope import CloudEvent

UNPRICED = ""  # the currency of sessions no rate was known for


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


def to_minor(amount: Decimal) -> int:
    return int((amount / pricing.CENT).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def in_minor_units(cost: pricing.Cost, rate_id: str) -> SessionPrice:
    return SessionPrice(
        currency=cost.currency,
        energy=to_minor(cost.energy),
        time=to_minor(cost.parking),
        idle=to_minor(cost.idle),
        session_fee=to_minor(cost.session_fee),
        rate_id=rate_id,
    )


def price_session(
    rate: PublishedRate,
    *,
    started_at: datetime,
    stopped_at: datetime,
    energy_wh: float,
    idle_since: datetime | None = None,
) -> SessionPrice:
    """The price of a session plugged in ``[started_at, stopped_at)``, charging until
    ``idle_since`` (:func:`central.pricing.price_session`).

    Times reach here believed (:func:`central.pricing.believed_times`), so a stop before
    the start, or a time without an offset, is a caller's mistake and refused.
    """
    if started_at.tzinfo is None or stopped_at.tzinfo is None:
        raise ValueError("aware datetimes only")
    if stopped_at < started_at:
        raise ValueError("stopped_at is before started_at")
    cost = pricing.price_session(rate.to_rate(), started_at, stopped_at, energy_wh, idle_since)
    return in_minor_units(cost, rate.rate_id)


@dataclass(frozen=True)
class RevenueDelta:
    site_id: str
    bucket: datetime
    currency: str
    sessions: int
    energy_wh: float
    energy_minor: int
    time_minor: int
    idle_minor: int
    fee_minor: int

    @property
    def total_minor(self) -> int:
        return self.energy_minor + self.time_minor + self.idle_minor + self.fee_minor


def _inline_rate(event: CloudEvent) -> PublishedRate | None:
    value = event_data.field(event, "rate")
    if value is None:
        return None
    try:
        return parse_rate(value)
    except BadRate:
        return None


def session_revenue(
    event: CloudEvent,
    known: list[KnownRate],
    received: datetime,
    policy: ClockPolicy = DEFAULT_POLICY,
) -> RevenueDelta | None:
    """The revenue of a ``charging.completed`` event, booked in the hour it stopped.

    The rate is the one the event carries (``data.rate``), else the one in force at the
    session's start among ``known`` (by ``data.rate_id`` when given). Without a rate the
    session is counted under the empty currency with no amounts. A session whose times
    central does not believe is booked where they are placed and priced by its energy
    only (:func:`central.pricing.believed_times`).
    """
    if event.type != "charging.completed":
        return None
    reported_stop = event_data.instant(event, "stopped_at") or event.time
    times = pricing.believed_times(
        event_data.instant(event, "started_at") or reported_stop,
        reported_stop,
        event_data.instant(event, "idle_since") or event_data.instant(event, "charging_ended_at"),
        received=received,
        policy=policy,
    )
    energy = session_energy(event)
    rate = _inline_rate(event)
    if rate is None:
        rate_id = event_data.text(event, "rate_id")
        rate = select_rate(
            known,
            site_id=event.site_id,
            rate_id=rate_id if isinstance(rate_id, str) else None,
            at=times.span.start,
        )
    bucket = hour_floor(times.span.end)
    if rate is None:
        return RevenueDelta(event.site_id, bucket, UNPRICED, 1, energy, 0, 0, 0, 0)
    price = price_session(
        rate,
        started_at=times.started_at,
        stopped_at=times.stopped_at,
        energy_wh=energy,
        idle_since=times.charging_ended_at,
    )
    return RevenueDelta(
        event.site_id,
        bucket,
        price.currency,
        1,
        energy,
        price.energy,
        price.time,
        price.idle,
        price.session_fee,
    )
