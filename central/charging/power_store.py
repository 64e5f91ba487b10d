"""SQL of the sites' load management (:mod:`central.charging.power`) over its own two
tables: ``charging_power_limits`` and ``charging_power_alerts``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from central.charging.tables import charging_power_alerts, charging_power_limits
from central.infra.db import insert_ignore
from central.infra.paging import Key, after
from contract.envelope import CloudEvent
from contract.events import PowerLimitChanged, PowerOvershoot


async def save_limit(conn: AsyncConnection, event: CloudEvent, data: PowerLimitChanged) -> bool:
    """The site's limit as ``event`` reports it, unless a later event of the site (by its
    sequence) is held; False when nothing changed (a redelivery or an older event)."""
    values = {
        "limit_kw": data.limit_kw,
        "configured_kw": data.configured_kw,
        "until": data.until,
        "set_by": data.set_by,
        "reported_at": event.time,
        "sequence": event.sequence,
        "event_id": event.id,
    }
    c = charging_power_limits.c
    inserted = await conn.execute(
        insert_ignore(conn.dialect.name, charging_power_limits, ["site_id"]).values(
            site_id=event.site_id, **values
        )
    )
    if inserted.rowcount:
        return True
    updated = await conn.execute(
        update(charging_power_limits)
        .where(c.site_id == event.site_id, c.sequence < event.sequence)
        .values(**values)
    )
    return bool(updated.rowcount)


async def add_alert(conn: AsyncConnection, event: CloudEvent, data: PowerOvershoot) -> bool:
    """Keep the alert once; False for one held already."""
    result = await conn.execute(
        insert_ignore(conn.dialect.name, charging_power_alerts, ["event_id"]).values(
            event_id=event.id,
            site_id=event.site_id,
            charger_id=data.charger_id,
            reason=data.reason,
            measured_kw=data.measured_kw,
            offered_kw=data.offered_kw,
            at=event.time,
        )
    )
    return bool(result.rowcount)


async def limit(conn: AsyncConnection, site_id: str) -> Any:
    query = select(charging_power_limits).where(charging_power_limits.c.site_id == site_id)
    return (await conn.execute(query)).first()


async def alerts(conn: AsyncConnection, site_id: str, limit: int, start: Key | None) -> list[Any]:
    """A page of the site's alerts, newest first (``limit + 1`` rows: paging.page_of)."""
    a = charging_power_alerts.c
    query = select(charging_power_alerts).where(a.site_id == site_id)
    if start is not None:
        query = query.where(after([a.at, a.id], start))
    query = query.order_by(a.at.desc(), a.id.desc()).limit(limit + 1)
    return list((await conn.execute(query)).all())
