"""The charging service's storage: SQLAlchemy Core over its own tables
(:mod:`central.charging.tables`); no other service reads them.

Every function takes a connection inside the caller's transaction: the caller decides
what one transaction holds. Rows come back as SQLAlchemy rows; the answers are built
from them (:mod:`central.charging.schema`).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from central.charging.tables import (
    charger_stations,
    charging_commands,
    charging_history,
    charging_id_tag_changes,
    charging_id_tags,
    charging_rates,
    charging_sessions,
    charging_sites,
)
from central.infra.db import insert_ignore
from central.infra.paging import Key, after
from central.infra.saturating import shift
from contract.envelope import CloudEvent
from contract.events import ChargingCompleted, ChargingStarted
from contract.sync_api import Command


async def _first(conn: AsyncConnection, query: Select[Any]) -> Any:
    return (await conn.execute(query)).first()


async def _page(conn: AsyncConnection, query: Select[Any], limit: int) -> list[Any]:
    """``limit + 1`` rows: one more than a page says there is a next one (paging.page_of)."""
    return list((await conn.execute(query.limit(limit + 1))).all())


# ---- the history: every event handled, once -------------------------------------------


async def claim(
    conn: AsyncConnection,
    event: CloudEvent,
    kind: str,
    *,
    session_id: str | None = None,
    vehicle_id: str | None = None,
    driver_id: str | None = None,
    energy_wh: int | None = None,
    cost: str | None = None,
) -> bool:
    """Record the event in ``charging_history`` (its data as reported); False when it was
    handled before."""
    result = await conn.execute(
        insert_ignore(conn.dialect.name, charging_history, ["event_id"]).values(
            event_id=event.id,
            site_id=event.site_id,
            session_id=session_id,
            vehicle_id=vehicle_id,
            driver_id=driver_id,
            kind=kind,
            at=event.time,
            energy_wh=energy_wh,
            cost=cost,
            data=json.dumps(event.data, default=str),
        )
    )
    return bool(result.rowcount)


# ---- commands -------------------------------------------------------------------------


async def insert_command(
    conn: AsyncConnection,
    command: Command,
    *,
    charger_id: str | None,
    vehicle_id: str | None,
    session_id: str | None,
    id_tag: str | None,
    evse_id: int | None,
) -> None:
    await conn.execute(
        charging_commands.insert().values(
            id=command.id,
            site_id=command.site_id,
            type=command.type,
            charger_id=charger_id,
            vehicle_id=vehicle_id,
            session_id=session_id,
            id_tag=id_tag,
            evse_id=evse_id,
            status="pending",
            created_at=command.created_at,
            expires_at=command.expires_at,
            updated_at=command.created_at,
        )
    )


async def command(conn: AsyncConnection, command_id: str, site_id: str | None = None) -> Any:
    """The command's row (of that site, when given), or None."""
    query = select(charging_commands).where(charging_commands.c.id == command_id)
    if site_id is not None:
        query = query.where(charging_commands.c.site_id == site_id)
    return await _first(conn, query)


async def pending_commands(conn: AsyncConnection, vehicle_id: str, now: datetime) -> list[Any]:
    c = charging_commands.c
    query = (
        select(charging_commands)
        .where(c.vehicle_id == vehicle_id, c.status == "pending", c.expires_at > now)
        .order_by(c.created_at)
    )
    return list((await conn.execute(query)).all())


async def record_failure(
    conn: AsyncConnection,
    command_id: str,
    site_id: str,
    code: str,
    reason: str,
    now: datetime,
) -> None:
    """The site says the command's charge failed: its code and reason are kept, and a
    command still pending is rejected (the charger refused it) or failed (a charger's
    own answer, already held, stays)."""
    c = charging_commands.c
    status = "rejected" if code == "RemoteStartRejected" else "failed"
    await conn.execute(
        update(charging_commands)
        .where(c.id == command_id, c.site_id == site_id)
        .values(failure_code=code[:32], failure_reason=reason[:256], updated_at=now)
    )
    await conn.execute(
        update(charging_commands)
        .where(c.id == command_id, c.site_id == site_id, c.status == "pending")
        .values(status=status, detail=reason[:256])
    )


async def last_failure(conn: AsyncConnection, vehicle_id: str) -> Any:
    """The vehicle's latest ``charging.failed`` in the history, or None."""
    h = charging_history.c
    query = (
        select(charging_history)
        .where(h.vehicle_id == vehicle_id, h.kind == "failed")
        .order_by(h.at.desc(), h.id.desc())
        .limit(1)
    )
    return await _first(conn, query)


async def set_command_result(
    conn: AsyncConnection,
    command_id: str,
    status: str,
    detail: str,
    result: dict[str, Any],
    now: datetime,
) -> None:
    await conn.execute(
        update(charging_commands)
        .where(charging_commands.c.id == command_id)
        .values(
            status=status,
            detail=detail[:256],
            result=json.dumps(result, default=str),
            updated_at=now,
        )
    )


async def remote_start_vehicle(
    conn: AsyncConnection,
    site_id: str,
    charger_id: str,
    evse_id: int | None,
    id_tag: str,
    started_at: datetime,
    skew: timedelta,
) -> str | None:
    """The vehicle of the latest remote start with ``id_tag`` on that charger (and evse,
    when both name one), made before ``started_at`` and not expired by then, give or take
    ``skew`` for the clocks."""
    c = charging_commands.c
    query = (
        select(c.vehicle_id)
        .where(
            c.site_id == site_id,
            c.charger_id == charger_id,
            c.type == "remote_start",
            c.id_tag == id_tag,
            c.status.in_(["accepted", "pending"]),
            c.created_at <= shift(started_at, skew),
            c.expires_at >= shift(started_at, -skew),
        )
        .order_by(c.created_at.desc())
        .limit(1)
    )
    if evse_id is not None:
        query = query.where((c.evse_id.is_(None)) | (c.evse_id == evse_id))
    vehicle = (await conn.execute(query)).scalar_one_or_none()
    return None if vehicle is None else str(vehicle)


# ---- sessions -------------------------------------------------------------------------


async def session(conn: AsyncConnection, session_id: str, site_id: str | None = None) -> Any:
    """The session's row (of that site, when given), or None."""
    query = select(charging_sessions).where(charging_sessions.c.id == session_id)
    if site_id is not None:
        query = query.where(charging_sessions.c.site_id == site_id)
    return await _first(conn, query)


async def active_session(
    conn: AsyncConnection, *, vehicle_id: str | None = None, session_id: str | None = None
) -> Any:
    """The vehicle's latest active session, or the active session of that id; or None."""
    c = charging_sessions.c
    query = select(charging_sessions).where(c.status == "active")
    if session_id is not None:
        query = query.where(c.id == session_id)
    if vehicle_id is not None:
        query = query.where(c.vehicle_id == vehicle_id)
    return await _first(conn, query.order_by(c.started_at.desc()).limit(1))


async def sessions(
    conn: AsyncConnection,
    limit: int,
    start: Key | None,
    *,
    site_id: str | None = None,
    charger_id: str | None = None,
    vehicle_id: str | None = None,
    status: str | None = None,
    finished: bool = False,
) -> list[Any]:
    """A page of sessions, newest first (by start, then id)."""
    c = charging_sessions.c
    query = select(charging_sessions).order_by(c.started_at.desc(), c.id.desc())
    if site_id is not None:
        query = query.where(c.site_id == site_id)
    if charger_id is not None:
        query = query.where(c.charger_id == charger_id)
    if vehicle_id is not None:
        query = query.where(c.vehicle_id == vehicle_id)
    if status is not None:
        query = query.where(c.status == status)
    if finished:
        query = query.where(c.status != "active")
    if start is not None:
        query = query.where(after([c.started_at, c.id], start))
    return await _page(conn, query, limit)


async def add_session(
    conn: AsyncConnection,
    site_id: str,
    data: ChargingStarted | ChargingCompleted,
    *,
    unless_known: bool,
    **values: Any,
) -> None:
    """A session row from the event that made it known, ``values`` for its other columns.
    ``unless_known``: nothing when the id is taken; else a taken id is an error (the
    caller looked in this transaction, so the event fails and is redelivered)."""
    columns = {
        "id": data.session_id,
        "site_id": site_id,
        "charger_id": data.charger_id,
        "evse_id": data.evse_id,
        "id_tag": data.id_tag,
        "transaction_id": None if data.transaction_id is None else str(data.transaction_id),
        "started_at": data.started_at,
        **values,
    }
    await insert_session(conn, unless_known=unless_known, **columns)


async def insert_session(conn: AsyncConnection, *, unless_known: bool, **columns: Any) -> None:
    """A session row of ``columns``; ``unless_known`` as :func:`add_session`'s."""
    if unless_known:
        insert = insert_ignore(conn.dialect.name, charging_sessions, ["id"])
    else:
        insert = charging_sessions.insert()
    await conn.execute(insert.values(**columns))


async def sessions_by_id(conn: AsyncConnection, session_ids: Collection[str]) -> dict[str, Any]:
    """The rows of those sessions that exist, by id (one query per thousand)."""
    found: dict[str, Any] = {}
    ids = sorted(session_ids)
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        rows = await conn.execute(
            select(charging_sessions).where(charging_sessions.c.id.in_(chunk))
        )
        found.update({row.id: row for row in rows})
    return found


async def update_sessions(conn: AsyncConnection, changes: Mapping[str, Mapping[str, Any]]) -> None:
    """Set the same columns of several sessions to each one's values, in one statement
    (in id order: concurrent writers then lock rows in the same order)."""
    if not changes:
        return
    columns = sorted(next(iter(changes.values())))
    c = charging_sessions.c
    await conn.execute(
        update(charging_sessions)
        .where(c.id == bindparam("session"))
        .values({name: bindparam(f"new_{name}") for name in columns}),
        [
            {"session": sid, **{f"new_{name}": values[name] for name in columns}}
            for sid, values in sorted(changes.items())
        ],
    )


async def update_session(conn: AsyncConnection, session_id: str, **values: Any) -> None:
    await conn.execute(
        update(charging_sessions).where(charging_sessions.c.id == session_id).values(**values)
    )


# ---- rates ----------------------------------------------------------------------------


async def rate(conn: AsyncConnection, site_id: str) -> Any:
    return await _first(conn, select(charging_rates).where(charging_rates.c.site_id == site_id))


async def rates(
    conn: AsyncConnection, site_id: str | None, limit: int, start: Key | None
) -> list[Any]:
    query = select(charging_rates).order_by(charging_rates.c.site_id)
    if site_id is not None:
        query = query.where(charging_rates.c.site_id == site_id)
    if start is not None:
        query = query.where(charging_rates.c.site_id > start[0])
    return await _page(conn, query, limit)


async def put_rate(conn: AsyncConnection, site_id: str, values: dict[str, Any]) -> Any:
    """Insert or replace the site's rate; its row as stored."""
    if await rate(conn, site_id) is None:
        await conn.execute(charging_rates.insert().values(site_id=site_id, **values))
    else:
        await conn.execute(
            update(charging_rates).where(charging_rates.c.site_id == site_id).values(**values)
        )
    return await rate(conn, site_id)


# ---- stations -------------------------------------------------------------------------


async def station(conn: AsyncConnection, site_id: str, charger_id: str) -> Any:
    s = charger_stations.c
    return await _first(
        conn, select(charger_stations).where(s.site_id == site_id, s.charger_id == charger_id)
    )


async def stations(
    conn: AsyncConnection, site_id: str | None, limit: int, start: Key | None
) -> list[Any]:
    s = charger_stations.c
    query = select(charger_stations).order_by(s.site_id, s.charger_id)
    if site_id is not None:
        query = query.where(s.site_id == site_id)
    if start is not None:
        query = query.where(after([s.site_id, s.charger_id], start, descending=False))
    return await _page(conn, query, limit)


async def add_station(conn: AsyncConnection, site_id: str, charger_id: str, **values: Any) -> None:
    """A station row with ``values``, unless the charger has one."""
    await conn.execute(
        insert_ignore(conn.dialect.name, charger_stations, ["site_id", "charger_id"]).values(
            site_id=site_id, charger_id=charger_id, **values
        )
    )


async def update_station(
    conn: AsyncConnection, site_id: str, charger_id: str, **values: Any
) -> None:
    s = charger_stations.c
    await conn.execute(
        update(charger_stations)
        .where(s.site_id == site_id, s.charger_id == charger_id)
        .values(**values)
    )


# ---- id tags --------------------------------------------------------------------------


async def tag(conn: AsyncConnection, id_tag: str) -> Any:
    return await _first(conn, select(charging_id_tags).where(charging_id_tags.c.id_tag == id_tag))


async def add_tag(conn: AsyncConnection, id_tag: str, vehicle_id: str, **values: Any) -> None:
    """A tag row; ``values`` for its other columns (created_at, driver_id, kind, ...)."""
    await conn.execute(
        charging_id_tags.insert().values(id_tag=id_tag, vehicle_id=vehicle_id, **values)
    )


async def update_tag(conn: AsyncConnection, id_tag: str, **values: Any) -> None:
    await conn.execute(
        update(charging_id_tags).where(charging_id_tags.c.id_tag == id_tag).values(**values)
    )


async def remove_tag(conn: AsyncConnection, id_tag: str) -> bool:
    result = await conn.execute(
        charging_id_tags.delete().where(charging_id_tags.c.id_tag == id_tag)
    )
    return bool(result.rowcount)


async def tags(
    conn: AsyncConnection,
    vehicles: Collection[str] | None,
    limit: int,
    start: Key | None,
    kind: str | None = None,
) -> list[Any]:
    """A page of tags by id (of those vehicles, when given)."""
    t = charging_id_tags.c
    query = select(charging_id_tags).order_by(t.id_tag)
    if vehicles is not None:
        query = query.where(t.vehicle_id.in_(sorted(vehicles)))
    if kind is not None:
        query = query.where(t.kind == kind)
    if start is not None:
        query = query.where(t.id_tag > start[0])
    return await _page(conn, query, limit)


async def site_tags(conn: AsyncConnection, site_id: str, now: datetime) -> list[Any]:
    """What the site must accept: every RFID card (a blocked one as blocked) and the
    site's app tokens not yet expired."""
    t = charging_id_tags.c
    query = (
        select(charging_id_tags)
        .where(
            (t.kind == "rfid") | ((t.kind == "app") & (t.site_id == site_id) & (t.expires_at > now))
        )
        .order_by(t.id_tag)
    )
    return list((await conn.execute(query)).all())


async def vehicle_driver(conn: AsyncConnection, vehicle_id: str) -> str | None:
    """The driver of the vehicle's latest RFID card that names one."""
    t = charging_id_tags.c
    query = (
        select(t.driver_id)
        .where(t.vehicle_id == vehicle_id, t.kind == "rfid", t.driver_id.is_not(None))
        .order_by(t.created_at.desc())
        .limit(1)
    )
    driver = (await conn.execute(query)).scalar_one_or_none()
    return None if driver is None else str(driver)


async def record_tag_change(conn: AsyncConnection, id_tag: str, change: str, now: datetime) -> int:
    """Log a change of the cards (``"*"``, ``"full"``: a full list sent); its id is the
    version of the list that holds it."""
    result = await conn.execute(
        charging_id_tag_changes.insert().values(id_tag=id_tag, change=change, at=now)
    )
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


async def add_site(conn: AsyncConnection, site_id: str, now: datetime) -> bool:
    """Remember the site; False when it was known."""
    result = await conn.execute(
        insert_ignore(conn.dialect.name, charging_sites, ["site_id"]).values(
            site_id=site_id, first_seen_at=now
        )
    )
    return bool(result.rowcount)


async def known_sites(conn: AsyncConnection) -> list[str]:
    query = select(charging_sites.c.site_id).order_by(charging_sites.c.site_id)
    return [str(site) for site in (await conn.execute(query)).scalars()]
