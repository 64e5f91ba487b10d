"""The analytics service's storage: SQLAlchemy Core over its own tables
(:mod:`central.analytics.tables`).

Every function takes a connection inside the caller's transaction: a batch of events'
figures are written in one (:func:`central.analytics.events.ingest`). Counters are upserts that
add, so a row is made or moved in one statement.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Table, case, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from central.analytics import event_data
from central.analytics.rates import KnownRate
from central.analytics.revenue import RevenueDelta
from central.analytics.tables import (
    event_logs,
    rates,
    revenue_metrics,
    slots,
    system_health,
    usage_metrics,
    visits,
)
from central.analytics.usage import USAGE_FIELDS
from central.published_rates import PublishedRate
from contract.envelope import CloudEvent

VEHICLE_TYPE_EVENTS = ("parking.reserved", "parking.occupied", "charging.started")
_INTEGER_COUNTERS = frozenset(
    name for name in USAGE_FIELDS if isinstance(usage_metrics.c[name].type, Integer)
)


def _insert(conn: AsyncConnection, table: Table) -> postgresql.Insert | sqlite.Insert:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


async def _add(
    conn: AsyncConnection, table: Table, keys: Mapping[str, Any], amounts: Mapping[str, Any]
) -> None:
    """Insert a counter row or add ``amounts`` to the existing one."""
    stmt = _insert(conn, table).values(**keys, **amounts)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=list(keys),
            set_={name: table.c[name] + stmt.excluded[name] for name in amounts},
        )
    )


@dataclass
class Contact:
    """What a batch says of one site or bus topic: how many events, the newest one's
    (placed) time, and the lag of the last one consumed (topics only)."""

    kind: str
    events: int = 0
    newest: datetime | None = None
    lag_s: float | None = None


class Contacts(dict[str, Contact]):
    def add(self, component: str, kind: str, event_time: datetime, *, lag_s: float | None) -> None:
        contact = self.setdefault(component, Contact(kind))
        contact.events += 1
        if contact.newest is None or event_time > contact.newest:
            contact.newest = event_time
        contact.lag_s = lag_s


async def touch(conn: AsyncConnection, component: str, contact: Contact, *, now: datetime) -> None:
    """More events of a site or bus topic: its last contact now, its newest event time."""
    h = system_health.c
    stmt = _insert(conn, system_health).values(
        component=component,
        kind=contact.kind,
        status="up",
        last_seen=now,
        last_event_time=contact.newest,
        events=contact.events,
        lag_s=contact.lag_s,
    )
    newer = h.last_event_time.is_(None) | (stmt.excluded.last_event_time > h.last_event_time)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["component"],
            set_={
                "status": "up",
                "last_seen": now,
                "last_event_time": case(
                    (newer, stmt.excluded.last_event_time), else_=h.last_event_time
                ),
                "events": h.events + contact.events,
                "lag_s": contact.lag_s,
            },
        )
    )


async def log_events(
    conn: AsyncConnection, events: Sequence[CloudEvent], received_at: datetime
) -> list[CloudEvent]:
    """Keep the events in ``event_logs``, their data as sent, in one statement; returns
    those that were not there, in the order given (an id twice counts once)."""
    rows: dict[str, dict[str, Any]] = {}
    for event in events:
        rows.setdefault(
            event.id,
            {
                "id": event.id,
                "site_id": event.site_id,
                "type": event.type,
                "subject": event.subject,
                "time": event.time,
                "sequence": event.sequence,
                "vehicle_id": event_data.text(event, "vehicle_id"),
                "vehicle_type": event_data.text(event, "vehicle_type"),
                "data": event.model_dump(mode="json")["data"],
                "received_at": received_at,
            },
        )
    if not rows:
        return []
    inserted = await conn.execute(
        _insert(conn, event_logs)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(event_logs.c.id),
        list(rows.values()),
    )
    new = set(inserted.scalars())
    fresh = []
    for event in events:
        if event.id in new:
            new.discard(event.id)
            fresh.append(event)
    return fresh


async def add_usage(
    conn: AsyncConnection, site_id: str, bucket: datetime, counters: Mapping[str, float]
) -> None:
    """Add to the site's counters of the hour (integer counters rounded)."""
    amounts = {
        name: round(value) if name in _INTEGER_COUNTERS else value
        for name, value in counters.items()
    }
    await _add(conn, usage_metrics, {"site_id": site_id, "bucket": bucket}, amounts)


async def add_revenue(conn: AsyncConnection, delta: RevenueDelta) -> None:
    await _add(
        conn,
        revenue_metrics,
        {"site_id": delta.site_id, "bucket": delta.bucket, "currency": delta.currency},
        {
            "sessions": delta.sessions,
            "energy_wh": delta.energy_wh,
            "energy_minor": delta.energy_minor,
            "time_minor": delta.time_minor,
            "idle_minor": delta.idle_minor,
            "fee_minor": delta.fee_minor,
            "total_minor": delta.total_minor,
        },
    )


async def add_slots(
    conn: AsyncConnection,
    seen: Mapping[tuple[str, str], str | None],
    *,
    first_seen: datetime,
) -> None:
    """Slots seen, by (site, slot) with their type: those seen for the first time get a
    row (a slot known already keeps its own)."""
    if not seen:
        return
    await conn.execute(
        _insert(conn, slots).on_conflict_do_nothing(index_elements=["site_id", "slot_id"]),
        [
            {"site_id": site, "slot_id": slot, "slot_type": kind, "first_seen": first_seen}
            for (site, slot), kind in sorted(seen.items())
        ],
    )


async def put_visit(
    conn: AsyncConnection,
    site_id: str,
    visit_id: str,
    slot_id: str | None,
    arrived_at: datetime,
    departed_at: datetime | None,
    *,
    departure: bool,
) -> None:
    """A visit's row: an arrival adds it unless known; a departure sets its
    ``departed_at`` (the row made if its arrival was never seen)."""
    stmt = _insert(conn, visits).values(
        site_id=site_id,
        visit_id=visit_id,
        slot_id=slot_id,
        arrived_at=arrived_at,
        departed_at=departed_at,
    )
    keys = ["site_id", "visit_id"]
    if departure:
        await conn.execute(
            stmt.on_conflict_do_update(index_elements=keys, set_={"departed_at": departed_at})
        )
    else:
        await conn.execute(stmt.on_conflict_do_nothing(index_elements=keys))


async def add_rate(
    conn: AsyncConnection,
    scope: str | None,
    rate: PublishedRate,
    *,
    learnt_at: datetime,
    event_id: str,
) -> None:
    """A rate learnt, for a site or for all (``scope`` None), kept as learnt."""
    await conn.execute(
        rates.insert().values(
            site_id=scope,
            rate_id=rate.rate_id,
            rate=rate.model_dump(mode="json"),
            learnt_at=learnt_at,
            event_id=event_id,
        )
    )


async def known_rates(conn: AsyncConnection, site_id: str) -> list[KnownRate]:
    rows = await conn.execute(
        select(rates).where(rates.c.site_id.is_(None) | (rates.c.site_id == site_id))
    )
    return [
        KnownRate(row.site_id, PublishedRate.model_validate(row.rate), row.learnt_at)
        for row in rows
    ]


# -- queries -------------------------------------------------------------------------

Rows = dict[str, list[tuple[datetime, dict[str, float]]]]


async def usage_rows(
    conn: AsyncConnection, site_id: str | None, lo: datetime, hi: datetime
) -> Rows:
    u = usage_metrics.c
    query = select(usage_metrics).where(u.bucket >= lo, u.bucket < hi).order_by(u.bucket)
    if site_id is not None:
        query = query.where(u.site_id == site_id)
    found: Rows = defaultdict(list)
    for row in (await conn.execute(query)).mappings():
        found[row["site_id"]].append(
            (row["bucket"], {name: float(row[name]) for name in USAGE_FIELDS})
        )
    return dict(found)


async def revenue_rows(
    conn: AsyncConnection, site_id: str | None, lo: datetime, hi: datetime
) -> list[dict[str, Any]]:
    r = revenue_metrics.c
    query = select(revenue_metrics).where(r.bucket >= lo, r.bucket < hi).order_by(r.bucket)
    if site_id is not None:
        query = query.where(r.site_id == site_id)
    return [dict(row) for row in (await conn.execute(query)).mappings()]


async def slot_counts(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(select(slots.c.site_id, func.count()).group_by(slots.c.site_id))
    return {site: count for site, count in rows.all()}


async def open_visits(
    conn: AsyncConnection, site_id: str | None, before: datetime
) -> dict[str, list[tuple[datetime, datetime | None]]]:
    v = visits.c
    query = select(v.site_id, v.arrived_at).where(v.departed_at.is_(None), v.arrived_at < before)
    if site_id is not None:
        query = query.where(v.site_id == site_id)
    found: dict[str, list[tuple[datetime, datetime | None]]] = defaultdict(list)
    for site, arrived in (await conn.execute(query)).all():
        found[site].append((arrived, None))
    return dict(found)


async def vehicle_type_counts(
    conn: AsyncConnection, site_id: str | None, lo: datetime, hi: datetime
) -> list[tuple[str, str, int, int]]:
    """(vehicle_type, event type, events, distinct vehicles) over ``[lo, hi)``."""
    e = event_logs.c
    kind = func.coalesce(e.vehicle_type, "unknown")
    query = (
        select(kind, e.type, func.count(), func.count(e.vehicle_id.distinct()))
        .where(e.type.in_(VEHICLE_TYPE_EVENTS), e.time >= lo, e.time < hi)
        .group_by(kind, e.type)
    )
    if site_id is not None:
        query = query.where(e.site_id == site_id)
    return [(str(a), str(b), int(c), int(d)) for a, b, c, d in (await conn.execute(query)).all()]


async def vehicles_by_type(
    conn: AsyncConnection, site_id: str | None, lo: datetime, hi: datetime
) -> dict[str, int]:
    e = event_logs.c
    kind = func.coalesce(e.vehicle_type, "unknown")
    query = (
        select(kind, func.count(e.vehicle_id.distinct()))
        .where(e.type.in_(VEHICLE_TYPE_EVENTS), e.time >= lo, e.time < hi)
        .group_by(kind)
    )
    if site_id is not None:
        query = query.where(e.site_id == site_id)
    return {str(k): int(n) for k, n in (await conn.execute(query)).all()}


async def health_rows(conn: AsyncConnection) -> list[dict[str, Any]]:
    rows = await conn.execute(select(system_health).order_by(system_health.c.component))
    return [dict(row) for row in rows.mappings()]


async def record_probe(
    conn: AsyncConnection, service: str, status: str, now: datetime, detail: dict[str, Any]
) -> None:
    stmt = _insert(conn, system_health).values(
        component=f"service:{service}", kind="service", status=status, last_seen=now, detail=detail
    )
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["component"],
            set_={"status": status, "last_seen": now, "detail": detail},
        )
    )


async def ping(conn: AsyncConnection) -> None:
    await conn.execute(text("SELECT 1"))
