"""What a completed session cost, for its driver's message. No I/O.

A ``charging.completed`` event carries the rate its site had in force (``data.rate``:
the rate central pushed with ``update_rates``, in the shape of ``GET /charging/rates``).
The notification service may not read the charging service's tables, so it prices the
session from that rate with the one pricing engine (:mod:`central.pricing`), under the
same rule for reported times as the charging service: the amount the driver reads is
the amount they are charged. A session without a rate (or with one that is not a rate)
has no cost here: its message says the cost is not known yet.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import ValidationError

from central import pricing
from central.published_rates import PublishedRate
from central.reported_times import DEFAULT_POLICY, ClockPolicy, reported_amount
from contract.events import ChargingCompleted


def event_rate(data: ChargingCompleted) -> pricing.Rate | None:
    """The rate the event carries, for the engine; None without one or for a bad one."""
    if data.rate is None:
        return None
    try:
        rate = PublishedRate.model_validate(data.rate)
    except ValidationError:
        return None
    # a rate that names no energy price is no rate a driver was charged by
    return rate.to_rate() if "energy_per_kwh" in rate.model_fields_set else None


def session_cost(
    data: ChargingCompleted, *, received: datetime, policy: ClockPolicy = DEFAULT_POLICY
) -> pricing.Cost | None:
    """What the session costs its driver, or None when its rate is not known."""
    rate = event_rate(data)
    if rate is None:
        return None
    cost, _problem = pricing.price_reported_session(
        rate,
        data.started_at,
        data.stopped_at,
        reported_amount(data.energy_wh) or 0,
        data.idle_since or data.charging_ended_at,
        received=received,
        policy=policy,
    )
    return cost
