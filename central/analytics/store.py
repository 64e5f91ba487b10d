"""The analytics service's storage: ingest of one event (one transaction) and queries."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Integer, Table, case, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from central.analytics import event_data
from central.analytics.rates import KnownRate, Rate, rates_in
from central.analytics.revenue import session_revenue
from central.analytics.tables import (
    event_logs,
    rates,
    revenue_metrics,
    slots,
    system_health,
    usage_metrics,
    visits,
)
from central.analytics.usage import USAGE_FIELDS, merge, session_energy, usage_deltas
from central.reported_times import DEFAULT_POLICY, ClockPolicy, anchor
from contract.envelope import CloudEvent, topic_for

log = structlog.get_logger("central.analytics")

VEHICLE_TYPE_EVENTS = ("parking.reserved", "parking.occupied", "charging.started")


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


async def _touch(
    conn: AsyncConnection,
    component: str,
    kind: str,
    *,
    now: datetime,
    event_time: datetime,
    lag_s: float | None = None,
) -> None:
    h = system_health.c
    stmt = _insert(conn, system_health).values(
        component=component,
        kind=kind,
        status="up",
        last_seen=now,
        last_event_time=event_time,
        events=1,
        lag_s=lag_s,
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
                "events": h.events + 1,
                "lag_s": lag_s,
            },
        )
    )


async def known_rates(conn: AsyncConnection, site_id: str) -> list[KnownRate]:
    rows = await conn.execute(
        select(rates).where(rates.c.site_id.is_(None) | (rates.c.site_id == site_id))
    )
    return [KnownRate(row.site_id, Rate.model_validate(row.rate), row.learnt_at) for row in rows]


async def ingest(
    conn: AsyncConnection, event: CloudEvent, now: datetime, policy: ClockPolicy = DEFAULT_POLICY
) -> bool:
    """Log one event and move every figure it touches; ``False`` if it was seen before.

    ``now`` is when central received it: the reported times are placed relative to it
    (:mod:`central.reported_times`).
    """
    inserted = await conn.execute(
        _insert(conn, event_logs)
        .values(
            id=event.id,
            site_id=event.site_id,
            type=event.type,
            subject=event.subject,
            time=event.time,
            sequence=event.sequence,
            vehicle_id=event_data.text(event, "vehicle_id"),
            vehicle_type=event_data.extension_text(event, "vehicle_type"),
            data=event.model_dump(mode="json")["data"],
            received_at=now,
        )
        .on_conflict_do_nothing(index_elements=["id"])
    )
    if inserted.rowcount != 1:
        return False

    integer_counters = {
        name for name in USAGE_FIELDS if isinstance(usage_metrics.c[name].type, Integer)
    }
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
    for (site_id, bucket), counters in merge(deltas).items():
        amounts = {
            name: round(value) if name in integer_counters else value
            for name, value in counters.items()
        }
        await _add(conn, usage_metrics, {"site_id": site_id, "bucket": bucket}, amounts)

    slot_id = event_data.text(event, "slot_id")
    if slot_id is not None:
        await conn.execute(
            _insert(conn, slots)
            .values(
                site_id=event.site_id,
                slot_id=slot_id,
                slot_type=event_data.text(event, "slot_type"),
                first_seen=now,
            )
            .on_conflict_do_nothing(index_elements=["site_id", "slot_id"])
        )

    visit_id = event_data.text(event, "visit_id")
    arrived = event_data.instant(event, "arrived_at")
    if visit_id is not None and arrived is not None:
        departed = event_data.instant(event, "departed_at")
        stmt = _insert(conn, visits).values(
            site_id=event.site_id,
            visit_id=visit_id,
            slot_id=slot_id,
            arrived_at=arrived,
            departed_at=departed,
        )
        if event.type == "parking.vacated":
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["site_id", "visit_id"], set_={"departed_at": departed}
                )
            )
        elif event.type == "parking.occupied":
            await conn.execute(stmt.on_conflict_do_nothing(index_elements=["site_id", "visit_id"]))

    for scope, rate in rates_in(event):
        await conn.execute(
            rates.insert().values(
                site_id=scope,
                rate_id=rate.rate_id,
                rate=rate.model_dump(mode="json"),
                learnt_at=now,
                event_id=event.id,
            )
        )

    if event.type == "charging.completed":
        delta = session_revenue(event, await known_rates(conn, event.site_id), now, policy)
        if delta is not None:
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

    # placed, so one event stamped 9999 does not stay the site's "last event" for ever
    placed = anchor(event.time, now, policy).at
    await _touch(conn, f"site:{event.site_id}", "site", now=now, event_time=placed)
    lag = max(0.0, (now - placed).total_seconds())
    await _touch(
        conn, f"topic:{topic_for(event.type)}", "bus", now=now, event_time=placed, lag_s=lag
    )
    return True


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
