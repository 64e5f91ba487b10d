"""The parking service's storage: SQLAlchemy Core over its own tables
(:mod:`central.parking.tables`), and the key of the status answer cached from them.

Every function takes a connection inside the caller's transaction: the caller decides
what one transaction holds. Rows come back as SQLAlchemy rows (the answers are built
from them) or as the values the rules work on (:class:`~central.parking.reservations.Slot`,
:class:`~central.parking.reservations.Booking`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from central.infra.cache import Cache
from central.infra.db import insert_ignore
from central.infra.paging import Key, after
from central.infra.saturating import shift
from central.parking import reservations as rules
from central.parking.tables import (
    lot_configuration,
    parking_history,
    parking_reservations,
    parking_slots,
)

STATUS_KEY: Final = "parking:status:"

_reservations = parking_reservations.c
_slots = parking_slots.c


# ---- the cached status ----------------------------------------------------------------
def status_key(site_id: str | None) -> str:
    """The cache key of one site's status answer, or of all sites' (``None``)."""
    return f"{STATUS_KEY}{site_id or '*'}"


async def forget_status(cache: Cache, *site_ids: str) -> None:
    """Drop the cached status changes at ``site_ids`` made stale: theirs and all sites'."""
    if not site_ids:
        return
    for site_id in site_ids:
        await cache.delete(status_key(site_id))
    await cache.delete(status_key(None))


# ---- rows as the rules see them -------------------------------------------------------
def booking(row: Any) -> rules.Booking:
    return rules.Booking(
        reservation_id=row.id,
        slot_id=row.slot_id,
        vehicle_id=row.vehicle_id,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        status=row.status,
    )


def slot(row: Any) -> rules.Slot:
    state: rules.SlotState = (
        "free" if row.state == "free" else "occupied" if row.state == "occupied" else "unknown"
    )
    return rules.Slot(row.slot_id, row.slot_type, state, bool(row.out_of_service))


# ---- reservations ---------------------------------------------------------------------
async def reservation(
    conn: AsyncConnection, reservation_id: str, site_id: str | None = None
) -> Any:
    """The reservation with this id (at this site, if given), or None."""
    query = select(parking_reservations).where(_reservations.id == reservation_id)
    if site_id is not None:
        query = query.where(_reservations.site_id == site_id)
    return (await conn.execute(query)).first()


async def reservation_of_command(conn: AsyncConnection, site_id: str, command_id: str) -> Any:
    """The site's reservation central sent this command for, or None."""
    query = select(parking_reservations).where(
        _reservations.command_id == command_id, _reservations.site_id == site_id
    )
    return (await conn.execute(query)).first()


async def insert_reservation(conn: AsyncConnection, values: Mapping[str, Any]) -> None:
    await conn.execute(parking_reservations.insert().values(**values))


async def set_status(
    conn: AsyncConnection,
    reservation_id: str,
    status: rules.ReservationStatus,
    now: datetime,
    *,
    detail: str | None = None,
    slot_id: str | None = None,
    only_from: frozenset[str] | None = None,
) -> bool:
    """Move a reservation to ``status`` (from one of ``only_from``, if given); False when
    it was not there to move. ``detail`` is cut to what its column holds."""
    values: dict[str, Any] = {"status": status, "updated_at": now}
    if detail is not None:
        values["detail"] = detail[:256]
    if slot_id is not None:
        values["slot_id"] = slot_id
    query = update(parking_reservations).where(_reservations.id == reservation_id)
    if only_from is not None:
        query = query.where(_reservations.status.in_(list(only_from)))
    return bool((await conn.execute(query.values(**values))).rowcount)


async def lock_site(conn: AsyncConnection, site_id: str) -> bool:
    """Take the site's slot rows for this transaction (by writing them), so the bookings
    of one site are serialised; False when the site has no slots."""
    locked = await conn.execute(
        update(parking_slots).where(_slots.site_id == site_id).values(updated_at=_slots.updated_at)
    )
    return bool(locked.rowcount)


async def live_bookings(
    conn: AsyncConnection,
    ending_after: datetime,
    *,
    site_id: str | None = None,
    vehicle_id: str | None = None,
) -> list[rules.Booking]:
    """The live reservations (of a site, of a vehicle) that end after ``ending_after``."""
    query = select(parking_reservations).where(
        _reservations.status.in_(list(rules.LIVE)), _reservations.ends_at > ending_after
    )
    if site_id is not None:
        query = query.where(_reservations.site_id == site_id)
    if vehicle_id is not None:
        query = query.where(_reservations.vehicle_id == vehicle_id)
    return [booking(row) for row in await conn.execute(query)]


async def live_reservation_of(
    conn: AsyncConnection, vehicle_id: str, site_id: str | None
) -> str | None:
    """The id of the vehicle's live reservation that starts first (at ``site_id``)."""
    query = (
        select(_reservations.id)
        .where(_reservations.vehicle_id == vehicle_id, _reservations.status.in_(list(rules.LIVE)))
        .order_by(_reservations.starts_at)
        .limit(1)
    )
    if site_id is not None:
        query = query.where(_reservations.site_id == site_id)
    found = (await conn.execute(query)).scalar_one_or_none()
    return None if found is None else str(found)


async def started_unused(conn: AsyncConnection, now: datetime) -> list[Any]:
    """Reservations started by ``now`` that no vehicle used yet: the expiry's candidates."""
    query = select(parking_reservations).where(
        _reservations.status.in_(list(rules.UNUSED)), _reservations.starts_at <= now
    )
    return list((await conn.execute(query)).all())


async def unused_reservation_at(
    conn: AsyncConnection, site_id: str, slot_id: str, at: datetime
) -> Any:
    """The unused reservation of the slot a vehicle arriving ``at`` takes up, or None: it
    may come a little early (three times the rules' tolerance) but not after the end."""
    query = (
        select(parking_reservations)
        .where(
            _reservations.site_id == site_id,
            _reservations.slot_id == slot_id,
            _reservations.status.in_(list(rules.UNUSED)),
            _reservations.starts_at <= shift(at, rules.NOW_TOLERANCE * 3),
            _reservations.ends_at > at,
        )
        .order_by(_reservations.starts_at)
        .limit(1)
    )
    return (await conn.execute(query)).first()


async def active_reservation(conn: AsyncConnection, site_id: str, slot_id: str) -> Any:
    """The reservation whose vehicle is in the slot, or None."""
    query = (
        select(parking_reservations)
        .where(
            _reservations.site_id == site_id,
            _reservations.slot_id == slot_id,
            _reservations.status == "active",
        )
        .limit(1)
    )
    return (await conn.execute(query)).first()


async def upcoming(
    conn: AsyncConnection, site_id: str, slot_id: str, now: datetime, limit: int = 50
) -> list[Any]:
    """The slot's live reservations not ended by ``now``, soonest first."""
    query = (
        select(parking_reservations)
        .where(
            _reservations.site_id == site_id,
            _reservations.slot_id == slot_id,
            _reservations.status.in_(list(rules.LIVE)),
            _reservations.ends_at > now,
        )
        .order_by(_reservations.starts_at)
        .limit(limit)
    )
    return list((await conn.execute(query)).all())


async def reservations(
    conn: AsyncConnection,
    limit: int,
    after_key: Key | None,
    *,
    vehicle_id: str | None = None,
    site_id: str | None = None,
    status: str | None = None,
) -> list[Any]:
    """Latest start first, by ``(starts_at, id)``; ``after_key``: the key of the previous
    page's last item (see :mod:`central.infra.paging`)."""
    r = _reservations
    query = select(parking_reservations)
    if vehicle_id is not None:
        query = query.where(r.vehicle_id == vehicle_id)
    if site_id is not None:
        query = query.where(r.site_id == site_id)
    if status is not None:
        query = query.where(r.status == status)
    if after_key is not None:
        query = query.where(after([r.starts_at, r.id], after_key))
    query = query.order_by(r.starts_at.desc(), r.id.desc()).limit(limit)
    return list((await conn.execute(query)).all())


# ---- history --------------------------------------------------------------------------
async def record(
    conn: AsyncConnection,
    event_id: str,
    site_id: str,
    kind: str,
    at: datetime,
    *,
    slot_id: str | None = None,
    vehicle_id: str | None = None,
    reservation_id: str | None = None,
    duration_s: int | None = None,
    data: dict[str, Any] | None = None,
) -> bool:
    """Add a history entry unless one with ``event_id`` is there (then False): what makes
    every event handler idempotent."""
    result = await conn.execute(
        insert_ignore(conn.dialect.name, parking_history, ["event_id"]).values(
            event_id=event_id,
            site_id=site_id,
            slot_id=slot_id,
            vehicle_id=vehicle_id,
            reservation_id=reservation_id,
            kind=kind,
            at=at,
            duration_s=duration_s,
            data=json.dumps(data or {}, default=str),
        )
    )
    return bool(result.rowcount)


async def record_own(
    conn: AsyncConnection, kind: str, at: datetime, reservation: Mapping[str, Any]
) -> None:
    """A change central made to a reservation itself (``booked``, ``released``,
    ``expired``): at most one entry per reservation and kind."""
    await record(
        conn,
        f"api:{reservation['id']}:{kind}",
        reservation["site_id"],
        kind,
        at,
        slot_id=reservation["slot_id"],
        vehicle_id=reservation["vehicle_id"],
        reservation_id=reservation["id"],
    )


async def history(
    conn: AsyncConnection, vehicle_id: str, limit: int, after_key: Key | None
) -> list[Any]:
    """The vehicle's entries, newest first, by ``(at, id)``."""
    h = parking_history.c
    query = select(parking_history).where(h.vehicle_id == vehicle_id)
    if after_key is not None:
        query = query.where(after([h.at, h.id], after_key))
    query = query.order_by(h.at.desc(), h.id.desc()).limit(limit)
    return list((await conn.execute(query)).all())


# ---- slots and lots -------------------------------------------------------------------
async def upsert_slot(
    conn: AsyncConnection,
    site_id: str,
    slot_id: str,
    now: datetime,
    *,
    slot_type: str | None = None,
    charger_id: str | None = None,
    out_of_service: bool | None = None,
    state: str | None = None,
    changed_at: datetime | None = None,
) -> None:
    """Create the slot if it is new, then set what is given (``None``: leave as is)."""
    await conn.execute(
        insert_ignore(conn.dialect.name, parking_slots, ["site_id", "slot_id"]).values(
            site_id=site_id,
            slot_id=slot_id,
            slot_type=slot_type or "standard",
            state="unknown",
            out_of_service=False,
            updated_at=now,
        )
    )
    values: dict[str, Any] = {"updated_at": now}
    if slot_type is not None:
        values["slot_type"] = slot_type
    if charger_id is not None:
        values["charger_id"] = charger_id
    if out_of_service is not None:
        values["out_of_service"] = out_of_service
    if state is not None:
        values["state"] = state
        values["state_changed_at"] = changed_at or now
    await conn.execute(
        update(parking_slots)
        .where(_slots.site_id == site_id, _slots.slot_id == slot_id)
        .values(**values)
    )


async def slot_type_of(conn: AsyncConnection, site_id: str, slot_id: str) -> str:
    query = select(_slots.slot_type).where(_slots.site_id == site_id, _slots.slot_id == slot_id)
    return str((await conn.execute(query)).scalar_one())


async def set_sensor_online(
    conn: AsyncConnection, site_id: str, slot_id: str, online: bool, now: datetime
) -> None:
    await conn.execute(
        update(parking_slots)
        .where(_slots.site_id == site_id, _slots.slot_id == slot_id)
        .values(sensor_online=online, updated_at=now)
    )


async def site_slots(conn: AsyncConnection, site_id: str) -> list[rules.Slot]:
    query = select(parking_slots).where(_slots.site_id == site_id)
    return [slot(row) for row in await conn.execute(query)]


async def slots_named(conn: AsyncConnection, slot_id: str, site_id: str | None) -> list[Any]:
    """The slots with this id (at this site, if given): one id may be used at several sites."""
    query = select(parking_slots).where(_slots.slot_id == slot_id)
    if site_id is not None:
        query = query.where(_slots.site_id == site_id)
    return list((await conn.execute(query)).all())


@dataclass(frozen=True)
class LotNow:
    """A site's slots and the unused reservations that hold one of them now."""

    site_id: str
    name: str
    slots: list[rules.Slot]
    bookings: list[rules.Booking]


async def lots_now(conn: AsyncConnection, site_id: str | None, now: datetime) -> list[LotNow]:
    """Every site with slots (or the one given), by site id."""
    slot_query = select(parking_slots)
    booking_query = select(parking_reservations).where(
        _reservations.status.in_(list(rules.UNUSED)),
        _reservations.starts_at <= now,
        _reservations.ends_at > now,
    )
    lot_query = select(lot_configuration)
    if site_id is not None:
        slot_query = slot_query.where(_slots.site_id == site_id)
        booking_query = booking_query.where(_reservations.site_id == site_id)
        lot_query = lot_query.where(lot_configuration.c.site_id == site_id)
    slot_rows = (await conn.execute(slot_query)).all()
    booking_rows = (await conn.execute(booking_query)).all()
    names = {row.site_id: row.name for row in await conn.execute(lot_query)}
    by_site: dict[str, list[Any]] = {}
    for row in slot_rows:
        by_site.setdefault(row.site_id, []).append(row)
    return [
        LotNow(
            site_id=sid,
            name=names.get(sid, ""),
            slots=[slot(row) for row in by_site[sid]],
            bookings=[booking(row) for row in booking_rows if row.site_id == sid],
        )
        for sid in sorted(by_site)
    ]


async def lot_holds(conn: AsyncConnection) -> dict[str, int]:
    """The sites whose lot sets its own hold, and that hold."""
    rows = await conn.execute(select(lot_configuration))
    return {row.site_id: row.hold_minutes for row in rows if row.hold_minutes is not None}


async def lot(conn: AsyncConnection, site_id: str) -> Any:
    query = select(lot_configuration).where(lot_configuration.c.site_id == site_id)
    return (await conn.execute(query)).first()


async def lot_slots(conn: AsyncConnection, site_id: str) -> list[Any]:
    query = select(parking_slots).where(_slots.site_id == site_id).order_by(_slots.slot_id)
    return list((await conn.execute(query)).all())


async def put_lot(
    conn: AsyncConnection,
    site_id: str,
    now: datetime,
    *,
    name: str,
    timezone: str,
    hold_minutes: int | None,
) -> None:
    values = {"name": name, "timezone": timezone, "hold_minutes": hold_minutes, "updated_at": now}
    lots = lot_configuration.c
    exists = (await conn.execute(select(lots.site_id).where(lots.site_id == site_id))).first()
    if exists:
        await conn.execute(
            update(lot_configuration).where(lots.site_id == site_id).values(**values)
        )
    else:
        await conn.execute(lot_configuration.insert().values(site_id=site_id, **values))
