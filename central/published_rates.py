"""Rates as they are published, read leniently: one reader for every service.

Central pushes rates to sites (``update_rates``), announces them (``charging.rates_updated``)
and a site attaches the one in force to each completed session (``data.rate``). Analytics
learns rates from those, notification prices a driver's session from ``data.rate``; both
read them with :class:`PublishedRate`, which takes the charging service's field names and
analytics' own (the aliases below, docs/central.md "Rates as analytics reads them"), and
hand the engine (:mod:`central.pricing`) what :meth:`PublishedRate.to_rate` builds. No I/O.
"""

from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from central import pricing

Money = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=6)]
EVERY_DAY = (0, 1, 2, 3, 4, 5, 6)
ENERGY = AliasChoices("energy_per_kwh", "energy_price_per_kwh", "price_per_kwh")
TIME = AliasChoices("time_per_hour", "parking_price_per_hour", "price_per_hour")


class PublishedWindow(BaseModel):
    """A time-of-use window: on ``days`` (0 = Monday) from ``start`` to ``end`` local time.

    ``start > end`` spans midnight (the window belongs to the day it starts on). Prices
    left out fall back to the rate's base prices.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    days: tuple[int, ...] = EVERY_DAY
    start: time
    end: time
    energy_per_kwh: Money | None = Field(default=None, validation_alias=ENERGY)
    time_per_hour: Money | None = Field(default=None, validation_alias=TIME)

    @field_validator("days")
    @classmethod
    def _weekdays(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 0 <= day <= 6 for day in value):
            raise ValueError("days are 0 (Monday) to 6 (Sunday)")
        return value or EVERY_DAY  # empty: every day


class PublishedRate(BaseModel):
    """A rate as published: in ``update_rates`` payloads, ``charging.rates_updated`` events
    and a completed session's ``data.rate`` (stored by analytics as learnt, in this shape)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    rate_id: str = Field(
        default="default", max_length=64, validation_alias=AliasChoices("rate_id", "id")
    )
    currency: str = Field(default="EUR", min_length=3, max_length=3)
    energy_per_kwh: Money = Field(default=Decimal(0), validation_alias=ENERGY)
    time_per_hour: Money = Field(default=Decimal(0), validation_alias=TIME)
    session_fee: Money = Decimal(0)
    idle_fee_per_minute: Money = Decimal(0)
    idle_grace_minutes: int = Field(default=0, ge=0)
    idle_fee_cap: Money | None = None
    timezone: str = "UTC"
    windows: tuple[PublishedWindow, ...] = Field(
        default=(), validation_alias=AliasChoices("windows", "tou_windows", "time_of_use", "tou")
    )
    valid_from: datetime | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:  # KeyError is no validation error
            raise ValueError(f"unknown time zone {value[:64]!r}") from err
        return value

    @field_validator("valid_from")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("valid_from needs a UTC offset")
        return value

    def to_rate(self) -> pricing.Rate:
        """This rate for the pricing engine (the time price is its parking price)."""
        return pricing.Rate(
            currency=self.currency,
            energy_price_per_kwh=self.energy_per_kwh,
            parking_price_per_hour=self.time_per_hour,
            idle_fee_per_minute=self.idle_fee_per_minute,
            idle_grace_minutes=self.idle_grace_minutes,
            timezone=self.timezone,
            tou=tuple(
                pricing.TouWindow(
                    start=w.start,
                    end=w.end,
                    energy_price_per_kwh=w.energy_per_kwh,
                    days=frozenset(w.days),
                    parking_price_per_hour=w.time_per_hour,
                )
                for w in self.windows
            ),
            session_fee=self.session_fee,
            idle_fee_cap=self.idle_fee_cap,
        )
