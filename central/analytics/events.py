"""What the analytics service does with the sites' events: every event it is given counts.

It consumes ``parking.events`` and ``charging.events`` as durable consumer ``analytics``
and publishes nothing. One transaction per event (:func:`ingest`): the event's row in
``event_logs`` (unique by id, so a redelivered event counts once), then every figure it
moves: hourly usage counters (:mod:`central.analytics.usage`), the slots and visits it
shows, the rates it announces (:mod:`central.analytics.rates`), a completed session's
revenue (:mod:`central.analytics.revenue`), the last contact of its site and bus topic.

Event data is read through the contract, field by field
(:mod:`central.analytics.event_data`): an event with an odd field still counts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from central.analytics import event_data, store
from central.analytics.rates import rates_in
from central.analytics.revenue import session_revenue
from central.analytics.usage import merge, session_energy, usage_deltas
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
        async with self._ctx.engine.begin() as conn:
            new = await ingest(conn, event, self._ctx.clock(), self._clock_policy)
        if not new:
            log.debug("analytics.event.duplicate", event_id=event.id)


async def ingest(
    conn: AsyncConnection, event: CloudEvent, now: datetime, policy: ClockPolicy = DEFAULT_POLICY
) -> bool:
    """Log one event and move every figure it touches; ``False`` if it was seen before.

    ``now`` is when central received it: the reported times are placed relative to it
    (:mod:`central.reported_times`).
    """
    if not await store.log_event(
        conn,
        event,
        now,
        vehicle_id=event_data.text(event, "vehicle_id"),
        vehicle_type=event_data.text(event, "vehicle_type"),
    ):
        return False

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
    # in key order: concurrent events then lock the rows they share in the same order
    for (site_id, bucket), counters in sorted(merge(deltas).items()):
        await store.add_usage(conn, site_id, bucket, counters)

    slot_id = event_data.text(event, "slot_id")
    if slot_id is not None:
        await store.add_slot(
            conn, event.site_id, slot_id, event_data.text(event, "slot_type"), first_seen=now
        )

    visit_id = event_data.text(event, "visit_id")
    arrived = event_data.instant(event, "arrived_at")
    if visit_id is not None and arrived is not None:  # an occupied or vacated slot
        await store.put_visit(
            conn,
            event.site_id,
            visit_id,
            slot_id,
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

    # placed, so one event stamped 9999 does not stay the site's "last event" for ever
    placed = anchor(event.time, now, policy).at
    await store.touch(conn, f"site:{event.site_id}", "site", now=now, event_time=placed)
    lag = max(0.0, (now - placed).total_seconds())
    await store.touch(
        conn, f"topic:{topic_for(event.type)}", "bus", now=now, event_time=placed, lag_s=lag
    )
    return True
