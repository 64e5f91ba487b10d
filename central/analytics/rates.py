"""Rates as analytics learns them from events, and which one is in force for a session.

Analytics never reads the charging service's tables: it learns rates from
``charging.rates_updated`` events and from accepted ``update_rates`` command results
(:func:`rates_in`), in its own shape or the charging service's (the aliases below, see
docs/central.md, "Rates as analytics reads them"), and keeps them as learnt
(``analytics_rates``). Pricing itself is the one engine, :mod:`central.pricing`
(:meth:`~central.published_rates.PublishedRate.to_rate`). No I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from central.analytics import event_data
from central.published_rates import PublishedRate
from contract.envelope import CloudEvent

RATES_EVENT = "charging.rates_updated"


class BadRate(ValueError):
    """Rate data in an event that does not describe a rate."""


def parse_rate(value: object) -> PublishedRate:
    if not isinstance(value, Mapping):
        raise BadRate("a rate is an object")
    try:
        return PublishedRate.model_validate(dict(value))
    except ValidationError as err:
        raise BadRate(str(err)) from err


def rates_in(event: CloudEvent) -> list[tuple[str | None, PublishedRate]]:
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
    found: list[tuple[str | None, PublishedRate]] = []
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
    rate: PublishedRate
    learnt_at: datetime


def select_rate(
    known: list[KnownRate], *, site_id: str, rate_id: str | None, at: datetime
) -> PublishedRate | None:
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
