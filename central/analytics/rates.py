"""Rates as analytics learns them from events, and which one is in force for a session.

Analytics never reads the charging service's tables: it learns rates from
``charging.rates_updated`` events and from accepted ``update_rates`` command results
(:func:`rates_in`), in its own shape or the charging service's (the aliases below, see
docs/central.md, "Rates as analytics reads them"), and keeps them as learnt
(``analytics_rates``). Pricing itself is the one engine, :mod:`central.pricing`
(:meth:`Rate.to_rate`). No I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from central import pricing
from central.analytics import event_data
from contract.envelope import CloudEvent

Money = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=6)]
RATES_EVENT = "charging.rates_updated"
EVERY_DAY = (0, 1, 2, 3, 4, 5, 6)
ENERGY = AliasChoices("energy_per_kwh", "energy_price_per_kwh", "price_per_kwh")
TIME = AliasChoices("time_per_hour", "parking_price_per_hour", "price_per_hour")


class TouWindow(BaseModel):
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


class Rate(BaseModel):
    """A charging rate as analytics learns it from events (stored as learnt, in this shape)."""

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

    def to_rate(self) -> pricing.Rate:
        """This rate for the pricing engine (analytics' time price is its parking price)."""
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


class BadRate(ValueError):
    """Rate data in an event that does not describe a rate."""


def parse_rate(value: object) -> Rate:
    if not isinstance(value, Mapping):
        raise BadRate("a rate is an object")
    try:
        return Rate.model_validate(dict(value))
    except ValidationError as err:
        raise BadRate(str(err)) from err


def rates_in(event: CloudEvent) -> list[tuple[str | None, Rate]]:
    """Rates an event announces, with their scope (a site, or ``None`` for all sites).

    * ``charging.rates_updated``: ``{rates: [...], all_sites?: bool}``;
    * ``command.result`` of an accepted ``update_rates`` command carrying
      ``result.rates``.

    An item with its own ``site_id`` (the charging service's ``GET /charging/rates``
    shape) applies to that site. Items that are not rates are skipped.
    """
    items: object = None
    scope: str | None = event.site_id
    if event.type == RATES_EVENT:
        items = event_data.field(event, "rates")
        if event_data.field(event, "all_sites") is True:
            scope = None
    elif (
        event.type == "command.result"
        and event_data.field(event, "command_type") == "update_rates"
        and event_data.field(event, "status") == "accepted"
    ):
        result = event_data.field(event, "result")
        items = result.get("rates") if isinstance(result, Mapping) else None
    if not isinstance(items, list):
        return []
    found: list[tuple[str | None, Rate]] = []
    for item in items:
        try:
            rate = parse_rate(item)
        except BadRate:
            continue
        own = item.get("site_id") if isinstance(item, Mapping) else None
        found.append((own if isinstance(own, str) and own else scope, rate))
    return found


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
