"""The parking service's HTTP API: who may call what, and each answer.

Bookings (reserve, release) go through :mod:`central.parking.bookings`, which tells the
sites; the other routes read and write the service's tables through
:mod:`central.parking.store` and build the answers of :mod:`central.parking.schema`. The
status per site is cached (``status_cache_ttl_s``) and dropped by any change. Errors
become HTTP answers here only (:func:`_answering`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status

from central.api_types import ID_PATTERN, PathId, SiteId, SitePathId, SlotType, VehicleId
from central.auth import Principal, check_vehicle, require
from central.context import ServiceContext
from central.infra.paging import Cursor, Limit, Page, page_of, parse_cursor
from central.parking import reservations as rules
from central.parking import store
from central.parking.bookings import Bookings
from central.parking.schema import (
    HistoryEntry,
    LotAnswer,
    LotConfig,
    Reservation,
    ReserveRequest,
    SiteStatus,
    SlotAnswer,
    SlotConfig,
    StatusAnswer,
    TypeStatus,
)
from central.sync.presence import presence


@asynccontextmanager
async def _answering() -> AsyncIterator[None]:
    """The service's errors as HTTP answers: unknown 404, a bad time window 422, anything
    else the rules refuse 409."""
    try:
        yield
    except KeyError as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, err.args[0]) from err
    except rules.InvalidWindow as err:
        raise HTTPException(422, str(err)) from err
    except rules.ReservationError as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err


# ---- reads ----------------------------------------------------------------------------
async def status_answer(ctx: ServiceContext, site_id: str | None) -> StatusAnswer:
    """Slots per site and type now, from the cache while it holds them."""
    now = ctx.clock()
    key = store.status_key(site_id)
    cached = await ctx.cache.get(key)
    if cached is not None:
        return StatusAnswer.model_validate(cached)
    async with ctx.engine.connect() as conn:
        lots = await store.lots_now(conn, site_id, now)
    answer = StatusAnswer(
        at=now,
        sites=[
            SiteStatus(
                site_id=lot.site_id,
                name=lot.name,
                slot_types=[
                    TypeStatus(**vars(counts))
                    for counts in rules.status_by_type(lot.slots, lot.bookings, now)
                ],
            )
            for lot in lots
        ],
    )
    await ctx.cache.set(key, answer.model_dump(mode="json"), ttl=ctx.settings.status_cache_ttl_s)
    return answer


async def slot_answer(ctx: ServiceContext, slot_id: str, site_id: str | None) -> SlotAnswer:
    """One slot and its live reservations; a ``ReservationError`` when the id is used at
    several sites and none is given."""
    now = ctx.clock()
    async with ctx.engine.connect() as conn:
        rows = await store.slots_named(conn, slot_id, site_id)
        if not rows:
            raise KeyError(f"no slot {slot_id}" + (f" at site {site_id}" if site_id else ""))
        if len(rows) > 1:
            raise rules.ReservationError(
                f"slot {slot_id} exists at several sites "
                f"({', '.join(sorted(r.site_id for r in rows))}); add ?site_id="
            )
        row = rows[0]
        upcoming = await store.upcoming(conn, row.site_id, slot_id, now)
    return SlotAnswer(
        site_id=row.site_id,
        slot_id=row.slot_id,
        slot_type=row.slot_type,
        charger_id=row.charger_id,
        state=row.state,
        out_of_service=bool(row.out_of_service),
        sensor_online=row.sensor_online,
        state_changed_at=row.state_changed_at,
        upcoming=[Reservation.of_row(r) for r in upcoming],
    )


async def reservation_answer(ctx: ServiceContext, reservation_id: str) -> Reservation:
    async with ctx.engine.connect() as conn:
        row = await store.reservation(conn, reservation_id)
    if row is None:
        raise KeyError(f"no reservation {reservation_id}")
    return Reservation.of_row(row)


async def lot_answer(ctx: ServiceContext, site_id: str) -> LotAnswer:
    async with ctx.engine.connect() as conn:
        lot = await store.lot(conn, site_id)
        slots = await store.lot_slots(conn, site_id)
    if lot is None and not slots:
        raise KeyError(f"no site {site_id}")
    return LotAnswer(
        site_id=site_id,
        name=lot.name if lot else "",
        timezone=lot.timezone if lot else "UTC",
        hold_minutes=lot.hold_minutes if lot else None,
        updated_at=lot.updated_at if lot else max(s.updated_at for s in slots),
        slots=[
            SlotConfig(
                slot_id=s.slot_id,
                slot_type=s.slot_type,
                charger_id=s.charger_id,
                out_of_service=bool(s.out_of_service),
            )
            for s in slots
        ],
    )


async def configure_lot(ctx: ServiceContext, site_id: str, config: LotConfig) -> LotAnswer:
    """Set the lot and its slots (slots not named keep what they had)."""
    now = ctx.clock()
    async with ctx.engine.begin() as conn:
        await store.put_lot(
            conn,
            site_id,
            now,
            name=config.name,
            timezone=config.timezone,
            hold_minutes=config.hold_minutes,
        )
        for slot in config.slots:
            await store.upsert_slot(
                conn,
                site_id,
                slot.slot_id,
                now,
                slot_type=slot.slot_type,
                charger_id=slot.charger_id,
                out_of_service=slot.out_of_service,
            )
    await store.forget_status(ctx.cache, site_id)
    return await lot_answer(ctx, site_id)


# ---- routes ---------------------------------------------------------------------------
_PAGED_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "invalid cursor"},
    403: {"description": "not the key's vehicle"},
}


def make_router(ctx: ServiceContext, bookings: Bookings) -> APIRouter:
    router = APIRouter(prefix="/parking", tags=["parking"])
    anyone = Depends(require("driver", "operator"))
    operator = Depends(require("operator"))

    @router.post(
        "/reserve",
        status_code=201,
        response_model=Reservation,
        summary="Reserve a slot (a given one or any of a type) for a time window",
        responses={
            403: {"description": "not the key's vehicle"},
            404: {"description": "unknown site"},
            409: {"description": "no slot"},
        },
    )
    async def reserve(body: ReserveRequest, principal: Principal = anyone) -> Reservation:
        check_vehicle(principal, body.vehicle_id)
        async with _answering():
            booked = await bookings.reserve(body, principal.user_id)
        site = await presence(ctx.cache, body.site_id)
        booked.site_online = site.online
        if not site.online:
            booked.detail = f"{site.describe()}; the site confirms when back"
        return booked

    @router.get("/status", response_model=StatusAnswer, summary="Free slots per site and type")
    async def get_status(
        site_id: Annotated[SiteId | None, Query()] = None,
        slot_type: Annotated[SlotType | None, Query()] = None,
        _p: Principal = anyone,
    ) -> StatusAnswer:
        answer = await status_answer(ctx, site_id)
        if slot_type is not None:
            for site in answer.sites:
                site.slot_types = [t for t in site.slot_types if t.slot_type == slot_type]
        return answer

    @router.get(
        "/slots/{slot_id}",
        response_model=SlotAnswer,
        summary="One slot: state and upcoming reservations",
        responses={404: {"description": "no such slot"}, 409: {"description": "ambiguous"}},
    )
    async def get_slot(
        slot_id: PathId,
        site_id: Annotated[SiteId | None, Query()] = None,
        principal: Principal = anyone,
    ) -> SlotAnswer:
        async with _answering():
            answer = await slot_answer(ctx, slot_id, site_id)
        # a driver sees that the slot is booked, and whose only for its own
        answer.upcoming = [r for r in answer.upcoming if principal.may_see_vehicle(r.vehicle_id)]
        return answer

    @router.delete(
        "/release",
        response_model=Reservation,
        summary="Release (cancel, or end) a reservation",
        responses={
            403: {"description": "another user's reservation"},
            404: {"description": "no such reservation"},
            409: {"description": "ended"},
        },
    )
    async def release(
        reservation_id: Annotated[str | None, Query(pattern=ID_PATTERN, max_length=64)] = None,
        vehicle_id: Annotated[VehicleId | None, Query()] = None,
        site_id: Annotated[SiteId | None, Query()] = None,
        principal: Principal = anyone,
    ) -> Reservation:
        """By ``reservation_id``, or the vehicle's current (or next) live reservation
        (at ``site_id``, if given)."""
        async with _answering():
            if reservation_id is None:
                if vehicle_id is None:
                    raise HTTPException(422, "give reservation_id or vehicle_id")
                check_vehicle(principal, vehicle_id)
                async with ctx.engine.connect() as conn:
                    reservation_id = await store.live_reservation_of(conn, vehicle_id, site_id)
                if reservation_id is None:
                    raise KeyError(f"vehicle {vehicle_id} holds no live reservation")
            else:
                found = await reservation_answer(ctx, reservation_id)
                check_vehicle(principal, found.vehicle_id)
            return await bookings.release(reservation_id)

    @router.get(
        "/reservations/{reservation_id}",
        response_model=Reservation,
        summary="One reservation",
        responses={
            403: {"description": "another user's reservation"},
            404: {"description": "no such reservation"},
        },
    )
    async def get_reservation(reservation_id: PathId, principal: Principal = anyone) -> Reservation:
        async with _answering():
            found = await reservation_answer(ctx, reservation_id)
        check_vehicle(principal, found.vehicle_id)
        return found

    @router.get(
        "/reservations",
        response_model=Page[Reservation],
        summary="Reservations, latest start first (a driver: of one of its vehicles)",
        responses=_PAGED_RESPONSES,
    )
    async def list_reservations(
        vehicle_id: Annotated[VehicleId | None, Query()] = None,
        site_id: Annotated[SiteId | None, Query()] = None,
        status_: Annotated[rules.ReservationStatus | None, Query(alias="status")] = None,
        limit: Limit = 100,
        cursor: Cursor = None,
        principal: Principal = anyone,
    ) -> Page[Reservation]:
        if principal.scope != "operator":
            check_vehicle(principal, vehicle_id, "every vehicle's (give vehicle_id)")
        start = parse_cursor("reservations", cursor, (datetime, str))
        async with ctx.engine.connect() as conn:
            rows = await store.reservations(
                conn, limit + 1, start, vehicle_id=vehicle_id, site_id=site_id, status=status_
            )
        items = [Reservation.of_row(row) for row in rows[:limit]]
        return page_of(items, rows, limit, "reservations", lambda row: (row.starts_at, row.id))

    @router.get(
        "/history/{vehicle_id}",
        response_model=Page[HistoryEntry],
        summary="A vehicle's visits and reservation changes, newest first",
        responses=_PAGED_RESPONSES,
    )
    async def history(
        vehicle_id: PathId,
        limit: Limit = 100,
        cursor: Cursor = None,
        principal: Principal = anyone,
    ) -> Page[HistoryEntry]:
        check_vehicle(principal, vehicle_id)
        start = parse_cursor("parking-history", cursor, (datetime, int))
        async with ctx.engine.connect() as conn:
            rows = await store.history(conn, vehicle_id, limit + 1, start)
        items = [
            HistoryEntry(
                at=e.at,
                kind=e.kind,
                site_id=e.site_id,
                slot_id=e.slot_id,
                reservation_id=e.reservation_id,
                duration_s=e.duration_s,
            )
            for e in rows[:limit]
        ]
        return page_of(items, rows, limit, "parking-history", lambda e: (e.at, e.id))

    @router.put(
        "/lots/{site_id}",
        response_model=LotAnswer,
        summary="Configure a site's lot and slots (operators)",
    )
    async def put_lot(site_id: SitePathId, body: LotConfig, _p: Principal = operator) -> LotAnswer:
        return await configure_lot(ctx, site_id, body)

    @router.get(
        "/lots/{site_id}",
        response_model=LotAnswer,
        summary="A site's lot configuration",
        responses={404: {"description": "unknown site"}},
    )
    async def get_lot(site_id: SitePathId, _p: Principal = anyone) -> LotAnswer:
        async with _answering():
            return await lot_answer(ctx, site_id)

    return router
