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

from datetime import datetime, time
from decimal import Decimal
from typing import Annotated

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from central import pricing
from central.notification.model import ZoneName
from central.reported_times import DEFAULT_POLICY, ClockPolicy, reported_amount
from contract.events import ChargingCompleted

Money = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=6)]
_ENERGY = AliasChoices("energy_price_per_kwh", "energy_per_kwh", "price_per_kwh")
_PARKING = AliasChoices("parking_price_per_hour", "time_per_hour", "price_per_hour")


class _Window(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    start: time
    end: time
    energy_price_per_kwh: Money | None = Field(default=None, validation_alias=_ENERGY)
    parking_price_per_hour: Money | None = Field(default=None, validation_alias=_PARKING)
    days: frozenset[Annotated[int, Field(ge=0, le=6)]] = frozenset()


class EventRate(BaseModel):
    """A rate as a ``charging.completed`` event carries it (unknown fields ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    currency: str = Field(default="EUR", min_length=3, max_length=3)
    energy_price_per_kwh: Money = Field(validation_alias=_ENERGY)
    parking_price_per_hour: Money = Field(default=Decimal(0), validation_alias=_PARKING)
    idle_fee_per_minute: Money = Decimal(0)
    idle_grace_minutes: int = Field(default=0, ge=0)
    idle_fee_cap: Money | None = None
    session_fee: Money = Decimal(0)
    timezone: ZoneName = "UTC"
    tou_windows: tuple[_Window, ...] = Field(
        default=(), validation_alias=AliasChoices("tou_windows", "windows", "tou")
    )

    def to_rate(self) -> pricing.Rate:
        return pricing.Rate(
            currency=self.currency,
            energy_price_per_kwh=self.energy_price_per_kwh,
            parking_price_per_hour=self.parking_price_per_hour,
            idle_fee_per_minute=self.idle_fee_per_minute,
            idle_grace_minutes=self.idle_grace_minutes,
            timezone=self.timezone,
            tou=tuple(
                pricing.TouWindow(
                    w.start, w.end, w.energy_price_per_kwh, w.days, w.parking_price_per_hour
                )
                for w in self.tou_windows
            ),
            session_fee=self.session_fee,
            idle_fee_cap=self.idle_fee_cap,
        )


def event_rate(data: ChargingCompleted) -> pricing.Rate | None:
    """The rate the event carries, for the engine; None without one or for a bad one."""
    if data.rate is None:
        return None
    try:
        return EventRate.model_validate(data.rate).to_rate()
    except ValidationError:
        return None


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
