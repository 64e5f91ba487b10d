"""What the analytics service does with the sites' events: every event it is given counts.

It consumes ``parking.events`` and ``charging.events`` as durable consumer ``analytics``
and publishes nothing. One transaction per batch of events the bus hands over
(:func:`ingest`): the events' rows in ``event_logs`` (unique by id, so a redelivered
event counts once), then every figure they move: hourly usage counters
(:mod:`central.analytics.usage`), the slots and visits they show, the rates they announce
(:mod:`central.analytics.rates`), a completed session's revenue
(:mod:`central.analytics.revenue`), the last contact of their site and bus topic.

Event data is read through the contract, field by field
(:mod:`central.analytics.event_data`): an event with an odd field still counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from central.analytics import event_data, store
from central.analytics.rates import rates_in
from central.analytics.revenue import session_revenue
from central.analytics.store import Contacts
from central.analytics.usage import UsageDelta, merge, session_energy, usage_deltas
from central.context import ServiceContext
from central.reported_times import DEFAULT_POLICY, ClockPolicy, anchor
from contract.envelope import CHARGING_TOPIC, PARKING_TOPIC, CloudEvent, topic_for

log = structlog.get_logger("central.analytics")

TOPICS: Final = (PARKING_TOPIC, CHARGING_TOPIC)
DURABLE: Final = "analytics"


class AnalyticsEvents:
    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self._clock_policy = ctx.settings.reported_times.policy()

    async def handle(self, event: CloudEvent) -> None:
        """The bus's entry: log the event and move its figures (idempotent by event id)."""
        await self.handle_batch((event,))

    async def handle_batch(self, events: Sequence[CloudEvent]) -> None:
        """The bus's entry for several events: all in one transaction."""
        async with self._ctx.engine.begin() as conn:
            new = await ingest(conn, events, self._ctx.clock(), self._clock_policy)
        if len(new) < len(events):
            log.debug("analytics.event.duplicate", events=len(events) - len(new))


async def ingest(
    conn: AsyncConnection,
    events: Sequence[CloudEvent],
    now: datetime,
    policy: ClockPolicy = DEFAULT_POLICY,
) -> list[CloudEvent]:
    """Log the events and move every figure they touch; returns those not seen before.

    ``now`` is when central received them: the reported times are placed relative to it
    (:mod:`central.reported_times`). Figures many events move (hourly counters, slots,
    last contacts) are summed first and written once per row, in key order: concurrent
    batches then lock the rows they share in the same order.
    """
    fresh = await store.log_events(conn, events, now)
    usage: list[UsageDelta] = []
    contacts = Contacts()
    slots: dict[tuple[str, str], str | None] = {}
    for event in fresh:
        usage += _usage_of(event, now, policy)
        slot_id = event_data.text(event, "slot_id")
        if slot_id is not None:
            slots.setdefault((event.site_id, slot_id), event_data.text(event, "slot_type"))
        # placed, so one event stamped 9999 does not stay the site's "last event" for ever
        placed = anchor(event.time, now, policy).at
        contacts.add(f"site:{event.site_id}", "site", placed, lag_s=None)
        lag = max(0.0, (now - placed).total_seconds())
        contacts.add(f"topic:{topic_for(event.type)}", "bus", placed, lag_s=lag)
    for (site_id, bucket), counters in sorted(merge(usage).items()):
        await store.add_usage(conn, site_id, bucket, counters)
    await store.add_slots(conn, slots, first_seen=now)
    for event in fresh:  # rarer figures, in order: a rate learnt prices later sessions
        await _visit_rates_and_revenue(conn, event, now, policy)
    for component, contact in sorted(contacts.items()):
        await store.touch(conn, component, contact, now=now)
    return fresh


def _usage_of(event: CloudEvent, now: datetime, policy: ClockPolicy) -> list[UsageDelta]:
    deltas = usage_deltas(event, now, policy)
    for noted in deltas:
        if noted.problem is not None:
            log.warning(
                "analytics.clock_problem",
                site=event.site_id,
                event_id=event.id,
                type=event.type,
                problem=noted.problem,
                placed_at=noted.bucket,
            )
    reported = event_data.as_sent(event, "energy_wh")
    if event.type == "charging.completed" and reported and not session_energy(event):
        log.warning(
            "analytics.meter_problem", site=event.site_id, event_id=event.id, energy_wh=reported
        )
    return deltas


async def _visit_rates_and_revenue(
    conn: AsyncConnection, event: CloudEvent, now: datetime, policy: ClockPolicy
) -> None:
    visit_id = event_data.text(event, "visit_id")
    arrived = event_data.instant(event, "arrived_at")
    if visit_id is not None and arrived is not None:  # an occupied or vacated slot
        await store.put_visit(
            conn,
            event.site_id,
            visit_id,
            event_data.text(event, "slot_id"),
            arrived,
            event_data.instant(event, "departed_at"),
            departure=event.type == "parking.vacated",
        )
    for scope, rate in rates_in(event):
        await store.add_rate(conn, scope, rate, learnt_at=now, event_id=event.id)
    if event.type == "charging.completed":
        delta = session_revenue(event, await store.known_rates(conn, event.site_id), now, policy)
        if delta is not None:
            await store.add_revenue(conn, delta)
