"""Revenue from events: rates learnt from events, completed sessions priced. No I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from central.analytics.buckets import hour_floor
from central.analytics.pricing import KnownRate, Rate, price_session, select_rate
from central.analytics.usage import parse_time, session_energy
from central.reported_times import DEFAULT_POLICY, ClockPolicy, bounded_span
from contract.envelope import CloudEvent

RATES_EVENT = "charging.rates_updated"
UNPRICED = ""  # the currency of sessions no rate was known for


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
    data = event.data
    items: object = None
    scope: str | None = event.site_id
    if event.type == RATES_EVENT:
        items = data.get("rates")
        if data.get("all_sites") is True:
            scope = None
    elif (
        event.type == "command.result"
        and data.get("command_type") == "update_rates"
        and data.get("status") == "accepted"
    ):
        result = data.get("result")
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
    central does not believe (:func:`~central.reported_times.bounded_span`) is booked
    where they are placed and priced by its energy only: time and idle fees would be
    made up from a broken clock.
    """
    if event.type != "charging.completed":
        return None
    data: Mapping[str, Any] = event.data
    reported_stop = parse_time(data.get("stopped_at")) or event.time
    span = bounded_span(
        parse_time(data.get("started_at")) or reported_stop, reported_stop, received, policy
    )
    started, stopped = (span.end, span.end) if span.problem else (span.start, span.end)
    energy = session_energy(data)
    idle_since = None
    if span.problem is None:
        idle_since = parse_time(data.get("idle_since")) or parse_time(data.get("charging_ended_at"))
    rate: Rate | None = None
    if data.get("rate") is not None:
        try:
            rate = parse_rate(data["rate"])
        except BadRate:
            rate = None
    if rate is None:
        rate_id = data.get("rate_id")
        rate = select_rate(
            known,
            site_id=event.site_id,
            rate_id=rate_id if isinstance(rate_id, str) else None,
            at=span.start,
        )
    bucket = hour_floor(stopped)
    if rate is None:
        return RevenueDelta(event.site_id, bucket, UNPRICED, 1, energy, 0, 0, 0, 0)
    price = price_session(
        rate, started_at=started, stopped_at=stopped, energy_wh=energy, idle_since=idle_since
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
