"""The parking service: the HTTP API, the event handlers and the expiry loop.

Reservation rules live in :mod:`central.parking.reservations`; this module reads and
writes the service's own tables (:mod:`central.parking.tables`), tells sites about
reservations through commands (:mod:`central.site_commands`), and follows the sites' events
(``parking.events``, and ``command.result`` on ``charging.events``). Every event handler
is idempotent: it records the event id in ``parking_history`` first and stops if it was
there. The status per site is cached and dropped whenever an event or a write changes it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import AwareDatetime, BaseModel, Field, model_validator
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from central.api_types import ID_PATTERN, PathId, SiteId, SlotId, SlotType, VehicleId
from central.auth import Principal, check_vehicle, require
from central.context import ServiceContext
from central.event_routing import dispatch
from central.infra.db import insert_ignore
from central.infra.lifetimes import Background
from central.infra.paging import Cursor, Limit, Page, after, page_of, parse_cursor
from central.parking import reservations as rules
from central.parking.tables import (
    lot_configuration,
    parking_history,
    parking_reservations,
    parking_slots,
)
from central.reported_times import anchor, reported_seconds, shift
from central.site_commands import new_command, send_command
from central.sync.presence import presence
from contract.envelope import CHARGING_TOPIC, PARKING_TOPIC, CloudEvent
from contract.sync_api import CommandResult

log = structlog.get_logger("central.parking")

STATUS_KEY = "parking:status:"


# ---- API models ---------------------------------------------------------------------
class ReserveRequest(BaseModel):
    vehicle_id: VehicleId
    site_id: SiteId
    slot_id: SlotId | None = Field(default=None, description="a given slot, or")
    slot_type: SlotType | None = Field(default=None, description="any slot of this type")
    starts_at: AwareDatetime | None = Field(default=None, description="default: now")
    ends_at: AwareDatetime | None = None
    duration_minutes: int | None = Field(default=None, ge=5, le=7 * 24 * 60)

    @model_validator(mode="after")
    def _window(self) -> ReserveRequest:
        if (self.ends_at is None) == (self.duration_minutes is None):
            raise ValueError("give exactly one of ends_at and duration_minutes")
        return self


class Reservation(BaseModel):
    id: str
    site_id: str
    slot_id: str
    slot_type: str
    vehicle_id: str
    starts_at: datetime
    ends_at: datetime
    status: rules.ReservationStatus
    origin: str
    command_id: str | None
    detail: str
    created_at: datetime
    updated_at: datetime
    site_online: bool | None = Field(
        default=None,
        description="on a new reservation, false: the site is offline; it stays 'booked' "
        "(central holds the slot) until the site confirms or rejects it when back",
    )


class TypeStatus(BaseModel):
    slot_type: str
    total: int
    free: int
    occupied: int
    reserved: int
    out_of_service: int
    unknown: int


class SiteStatus(BaseModel):
    site_id: str
    name: str
    slot_types: list[TypeStatus]


class StatusAnswer(BaseModel):
    at: datetime
    sites: list[SiteStatus]


class SlotAnswer(BaseModel):
    site_id: str
    slot_id: str
    slot_type: str
    charger_id: str | None
    state: str
    out_of_service: bool
    sensor_online: bool | None
    state_changed_at: datetime | None
    upcoming: list[Reservation]


class HistoryEntry(BaseModel):
    at: datetime
    kind: str
    site_id: str
    slot_id: str | None
    reservation_id: str | None
    duration_s: int | None


class SlotConfig(BaseModel):
    slot_id: SlotId
    slot_type: SlotType = "standard"
    charger_id: SlotId | None = None
    out_of_service: bool = False


class LotConfig(BaseModel):
    name: str = Field(default="", max_length=128)
    timezone: str = Field(default="UTC", max_length=64, pattern=r"^[A-Za-z_]+(/[A-Za-z0-9_+-]+)*$")
    hold_minutes: int | None = Field(default=None, ge=0, le=24 * 60)
    slots: list[SlotConfig] = Field(default_factory=list, max_length=5000)


class LotAnswer(LotConfig):
    site_id: str
    updated_at: datetime


# event data shapes (what this service reads of them; extra keys ignored)
class _Reserved(BaseModel):
    slot_id: str = Field(max_length=64)
    reservation_id: str = Field(max_length=64)
    vehicle_id: str = Field(max_length=64)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    slot_type: str | None = Field(default=None, max_length=32)
    command_id: str | None = Field(default=None, max_length=64)


class _Released(BaseModel):
    slot_id: str | None = Field(default=None, max_length=64)
    reservation_id: str = Field(max_length=64)
    vehicle_id: str | None = Field(default=None, max_length=64)
    reason: str = Field(default="", max_length=64)


class _Occupancy(BaseModel):
    slot_id: str = Field(max_length=64)
    slot_type: str | None = Field(default=None, max_length=32)
    visit_id: str | None = Field(default=None, max_length=64)
    arrived_at: AwareDatetime | None = None
    departed_at: AwareDatetime | None = None
    duration_s: float | None = None
    reservation_id: str | None = Field(default=None, max_length=64)


class _SensorStatus(BaseModel):
    slot_id: str | None = Field(default=None, max_length=64)
    online: bool


class _Condition(BaseModel):
    slot_id: str = Field(max_length=64)
    condition: str = Field(max_length=32)
    active: bool


def _reservation(row: Any) -> Reservation:
    return Reservation.model_validate(row._mapping, from_attributes=False)


def _booking(row: Any) -> rules.Booking:
    return rules.Booking(
        reservation_id=row.id,
        slot_id=row.slot_id,
        vehicle_id=row.vehicle_id,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        status=row.status,
    )


def _slot(row: Any) -> rules.Slot:
    state: rules.SlotState = (
        "free" if row.state == "free" else "occupied" if row.state == "occupied" else "unknown"
    )
    return rules.Slot(row.slot_id, row.slot_type, state, bool(row.out_of_service))


class ParkingService:
    name = "parking"

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self._background = Background("parking")
        self._clock_policy = ctx.settings.reported_times.policy()

    # ---- lifetime -------------------------------------------------------------------
    async def start(self) -> None:
        await self._background.start()
        await self.ctx.bus.subscribe(PARKING_TOPIC, "parking", self.handle_event)
        await self.ctx.bus.subscribe(CHARGING_TOPIC, "parking", self.handle_event)
        self._background.supervise("parking.expiry", self._expiry_loop)

    async def stop(self) -> None:
        await self._background.stop()

    # ---- reservations ---------------------------------------------------------------
    def _ttl(self, now: datetime, ends_at: datetime) -> float:
        """Reservation commands matter until the reservation ends (a site may be offline
        for hours), and at least ``command_ttl_s``."""
        return max(float(self.ctx.settings.command_ttl_s), (ends_at - now).total_seconds())

    async def reserve(self, body: ReserveRequest) -> Reservation:
        now = self.ctx.clock()
        starts_at = body.starts_at or now
        try:
            if body.ends_at is not None:
                ends_at = body.ends_at
            else:
                assert body.duration_minutes is not None
                ends_at = starts_at + timedelta(minutes=body.duration_minutes)
        except OverflowError as err:
            raise rules.InvalidWindow("the time window is out of range") from err
        rules.check_window(starts_at, ends_at, now, self.ctx.settings.max_reservation_hours)
        request = rules.Request(
            vehicle_id=body.vehicle_id,
            starts_at=starts_at,
            ends_at=ends_at,
            slot_id=body.slot_id,
            slot_type=body.slot_type,
        )
        reservation_id = str(uuid.uuid4())
        command = new_command(
            body.site_id,
            "reserve",
            {
                "reservation_id": reservation_id,
                "slot_id": None,
                "vehicle_id": body.vehicle_id,
                # the tag an EV slot's charger is reserved for (OCPP 1.6 holds 20 characters)
                "id_tag": body.vehicle_id[:20],
                "starts_at": starts_at.isoformat(),
                "ends_at": ends_at.isoformat(),
            },
            now,
            self._ttl(now, ends_at),
        )
        async with self.ctx.engine.begin() as conn:
            # writing first takes the site's slot rows: reservations of a site are serialised
            locked = await conn.execute(
                update(parking_slots)
                .where(parking_slots.c.site_id == body.site_id)
                .values(updated_at=parking_slots.c.updated_at)
            )
            if not locked.rowcount:
                raise KeyError(f"no site {body.site_id} with slots")
            slots = [
                _slot(r)
                for r in await conn.execute(
                    select(parking_slots).where(parking_slots.c.site_id == body.site_id)
                )
            ]
            live = list(rules.LIVE)
            bookings = [
                _booking(r)
                for r in await conn.execute(
                    select(parking_reservations).where(
                        parking_reservations.c.site_id == body.site_id,
                        parking_reservations.c.status.in_(live),
                        parking_reservations.c.ends_at > starts_at,
                    )
                )
            ]
            vehicle = [
                _booking(r)
                for r in await conn.execute(
                    select(parking_reservations).where(
                        parking_reservations.c.vehicle_id == body.vehicle_id,
                        parking_reservations.c.status.in_(live),
                        parking_reservations.c.ends_at > starts_at,
                    )
                )
            ]
            slot = rules.choose_slot(request, slots, bookings, vehicle, now)
            command.payload["slot_id"] = slot.slot_id
            command.payload["slot_type"] = slot.slot_type
            values = {
                "id": reservation_id,
                "site_id": body.site_id,
                "slot_id": slot.slot_id,
                "slot_type": slot.slot_type,
                "vehicle_id": body.vehicle_id,
                "starts_at": starts_at,
                "ends_at": ends_at,
                "status": "booked",
                "origin": "api",
                "command_id": command.id,
                "detail": "",
                "created_at": now,
                "updated_at": now,
            }
            await conn.execute(parking_reservations.insert().values(**values))
            await self._history(
                conn,
                f"api:{reservation_id}:booked",
                body.site_id,
                "booked",
                now,
                slot_id=slot.slot_id,
                vehicle_id=body.vehicle_id,
                reservation_id=reservation_id,
            )
        await send_command(self.ctx.bus, command)
        await self._invalidate(body.site_id)
        log.info(
            "parking.reservation.booked",
            site=body.site_id,
            reservation_id=reservation_id,
            slot=slot.slot_id,
        )
        return Reservation.model_validate(values)

    async def get_reservation(self, reservation_id: str) -> Reservation | None:
        async with self.ctx.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(parking_reservations).where(parking_reservations.c.id == reservation_id)
                )
            ).first()
        return None if row is None else _reservation(row)

    async def live_reservation_of(self, vehicle_id: str, site_id: str | None) -> str:
        query = (
            select(parking_reservations.c.id)
            .where(
                parking_reservations.c.vehicle_id == vehicle_id,
                parking_reservations.c.status.in_(list(rules.LIVE)),
            )
            .order_by(parking_reservations.c.starts_at)
            .limit(1)
        )
        if site_id is not None:
            query = query.where(parking_reservations.c.site_id == site_id)
        async with self.ctx.engine.connect() as conn:
            found = (await conn.execute(query)).scalar_one_or_none()
        if found is None:
            raise KeyError(f"vehicle {vehicle_id} holds no live reservation")
        return str(found)

    async def release(self, reservation_id: str) -> Reservation:
        now = self.ctx.clock()
        async with self.ctx.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(parking_reservations).where(parking_reservations.c.id == reservation_id)
                )
            ).first()
            if row is None:
                raise KeyError(f"no reservation {reservation_id}")
            if row.status not in rules.LIVE:
                raise rules.ReservationError(
                    f"reservation {reservation_id} is already {row.status}"
                )
            new_status = "completed" if row.status == "active" else "cancelled"
            await conn.execute(
                update(parking_reservations)
                .where(parking_reservations.c.id == reservation_id)
                .values(status=new_status, updated_at=now, detail="released by the driver")
            )
            await self._history(
                conn,
                f"api:{reservation_id}:released",
                row.site_id,
                "released",
                now,
                slot_id=row.slot_id,
                vehicle_id=row.vehicle_id,
                reservation_id=reservation_id,
            )
        await send_command(
            self.ctx.bus,
            new_command(
                row.site_id,
                "cancel_reservation",
                {"reservation_id": reservation_id},
                now,
                self._ttl(now, row.ends_at),
            ),
        )
        await self._invalidate(row.site_id)
        log.info("parking.reservation.released", site=row.site_id, reservation_id=reservation_id)
        answer = await self.get_reservation(reservation_id)
        assert answer is not None
        return answer

    async def expire_due(self) -> int:
        """Expire unused reservations past their hold; tell their sites. Returns how many."""
        now = self.ctx.clock()
        default_hold = timedelta(minutes=self.ctx.settings.reservation_hold_minutes)
        async with self.ctx.engine.connect() as conn:
            holds = {
                r.site_id: r.hold_minutes
                for r in await conn.execute(select(lot_configuration))
                if r.hold_minutes is not None
            }
            candidates = (
                await conn.execute(
                    select(parking_reservations).where(
                        parking_reservations.c.status.in_(list(rules.UNUSED)),
                        parking_reservations.c.starts_at <= now,
                    )
                )
            ).all()
        due = [
            r
            for r in candidates
            if rules.is_due_for_expiry(
                _booking(r),
                now,
                timedelta(minutes=holds[r.site_id]) if r.site_id in holds else default_hold,
            )
        ]
        for row in due:
            async with self.ctx.engine.begin() as conn:
                result = await conn.execute(
                    update(parking_reservations)
                    .where(
                        parking_reservations.c.id == row.id,
                        parking_reservations.c.status.in_(list(rules.UNUSED)),
                    )
                    .values(status="expired", updated_at=now, detail="not used in time")
                )
                if not result.rowcount:
                    continue
                await self._history(
                    conn,
                    f"api:{row.id}:expired",
                    row.site_id,
                    "expired",
                    now,
                    slot_id=row.slot_id,
                    vehicle_id=row.vehicle_id,
                    reservation_id=row.id,
                )
            await send_command(
                self.ctx.bus,
                new_command(
                    row.site_id,
                    "cancel_reservation",
                    {"reservation_id": row.id, "reason": "expired"},
                    now,
                    self._ttl(now, row.ends_at),
                ),
            )
            await self._invalidate(row.site_id)
            log.info("parking.reservation.expired", site=row.site_id, reservation_id=row.id)
        return len(due)

    async def _expiry_loop(self) -> None:
        while True:
            await self.expire_due()
            await asyncio.sleep(self.ctx.settings.expiry_interval_s)

    # ---- reads ----------------------------------------------------------------------
    async def status(self, site_id: str | None, slot_type: str | None) -> StatusAnswer:
        now = self.ctx.clock()
        key = f"{STATUS_KEY}{site_id or '*'}"
        cached = await self.ctx.cache.get(key)
        if cached is not None:
            answer = StatusAnswer.model_validate(cached)
        else:
            answer = await self._compute_status(site_id, now)
            await self.ctx.cache.set(
                key, answer.model_dump(mode="json"), ttl=self.ctx.settings.status_cache_ttl_s
            )
        if slot_type is not None:
            for site in answer.sites:
                site.slot_types = [t for t in site.slot_types if t.slot_type == slot_type]
        return answer

    async def _compute_status(self, site_id: str | None, now: datetime) -> StatusAnswer:
        async with self.ctx.engine.connect() as conn:
            slot_query = select(parking_slots)
            booking_query = select(parking_reservations).where(
                parking_reservations.c.status.in_(list(rules.UNUSED)),
                parking_reservations.c.starts_at <= now,
                parking_reservations.c.ends_at > now,
            )
            lot_query = select(lot_configuration)
            if site_id is not None:
                slot_query = slot_query.where(parking_slots.c.site_id == site_id)
                booking_query = booking_query.where(parking_reservations.c.site_id == site_id)
                lot_query = lot_query.where(lot_configuration.c.site_id == site_id)
            slot_rows = (await conn.execute(slot_query)).all()
            booking_rows = (await conn.execute(booking_query)).all()
            names = {r.site_id: r.name for r in await conn.execute(lot_query)}
        by_site: dict[str, list[Any]] = {}
        for row in slot_rows:
            by_site.setdefault(row.site_id, []).append(row)
        sites = []
        for sid in sorted(by_site):
            counts = rules.status_by_type(
                [_slot(r) for r in by_site[sid]],
                [_booking(b) for b in booking_rows if b.site_id == sid],
                now,
            )
            sites.append(
                SiteStatus(
                    site_id=sid,
                    name=names.get(sid, ""),
                    slot_types=[TypeStatus(**vars(c)) for c in counts],
                )
            )
        return StatusAnswer(at=now, sites=sites)

    async def slot(self, slot_id: str, site_id: str | None) -> SlotAnswer:
        now = self.ctx.clock()
        async with self.ctx.engine.connect() as conn:
            query = select(parking_slots).where(parking_slots.c.slot_id == slot_id)
            if site_id is not None:
                query = query.where(parking_slots.c.site_id == site_id)
            rows = (await conn.execute(query)).all()
            if not rows:
                raise KeyError(f"no slot {slot_id}" + (f" at site {site_id}" if site_id else ""))
            if len(rows) > 1:
                raise rules.ReservationError(
                    f"slot {slot_id} exists at several sites "
                    f"({', '.join(sorted(r.site_id for r in rows))}); add ?site_id="
                )
            row = rows[0]
            upcoming = (
                await conn.execute(
                    select(parking_reservations)
                    .where(
                        parking_reservations.c.site_id == row.site_id,
                        parking_reservations.c.slot_id == slot_id,
                        parking_reservations.c.status.in_(list(rules.LIVE)),
                        parking_reservations.c.ends_at > now,
                    )
                    .order_by(parking_reservations.c.starts_at)
                    .limit(50)
                )
            ).all()
        return SlotAnswer(
            site_id=row.site_id,
            slot_id=row.slot_id,
            slot_type=row.slot_type,
            charger_id=row.charger_id,
            state=row.state,
            out_of_service=bool(row.out_of_service),
            sensor_online=row.sensor_online,
            state_changed_at=row.state_changed_at,
            upcoming=[_reservation(r) for r in upcoming],
        )

    async def history(
        self, vehicle_id: str, limit: int, cursor: str | None = None
    ) -> Page[HistoryEntry]:
        """The vehicle's visits and reservation changes, newest first."""
        start = parse_cursor("parking-history", cursor, (datetime, int))
        h = parking_history.c
        query = select(parking_history).where(h.vehicle_id == vehicle_id)
        if start is not None:
            query = query.where(after([h.at, h.id], start))
        async with self.ctx.engine.connect() as conn:
            rows = (
                await conn.execute(query.order_by(h.at.desc(), h.id.desc()).limit(limit + 1))
            ).all()
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

    async def reservations(
        self,
        limit: int,
        cursor: str | None,
        *,
        vehicle_id: str | None = None,
        site_id: str | None = None,
        status: str | None = None,
    ) -> Page[Reservation]:
        """Reservations, latest start first."""
        start = parse_cursor("reservations", cursor, (datetime, str))
        r = parking_reservations.c
        query = select(parking_reservations)
        if vehicle_id is not None:
            query = query.where(r.vehicle_id == vehicle_id)
        if site_id is not None:
            query = query.where(r.site_id == site_id)
        if status is not None:
            query = query.where(r.status == status)
        if start is not None:
            query = query.where(after([r.starts_at, r.id], start))
        async with self.ctx.engine.connect() as conn:
            rows = (
                await conn.execute(query.order_by(r.starts_at.desc(), r.id.desc()).limit(limit + 1))
            ).all()
        items = [_reservation(row) for row in rows[:limit]]
        return page_of(items, rows, limit, "reservations", lambda row: (row.starts_at, row.id))

    # ---- lot configuration ----------------------------------------------------------
    async def configure_lot(self, site_id: str, config: LotConfig) -> LotAnswer:
        now = self.ctx.clock()
        engine = self.ctx.engine
        async with engine.begin() as conn:
            exists = (
                await conn.execute(
                    select(lot_configuration.c.site_id).where(
                        lot_configuration.c.site_id == site_id
                    )
                )
            ).first()
            values = {
                "name": config.name,
                "timezone": config.timezone,
                "hold_minutes": config.hold_minutes,
                "updated_at": now,
            }
            if exists:
                await conn.execute(
                    update(lot_configuration)
                    .where(lot_configuration.c.site_id == site_id)
                    .values(**values)
                )
            else:
                await conn.execute(lot_configuration.insert().values(site_id=site_id, **values))
            for slot in config.slots:
                await self._upsert_slot(
                    conn,
                    site_id,
                    slot.slot_id,
                    now,
                    slot_type=slot.slot_type,
                    charger_id=slot.charger_id,
                    out_of_service=slot.out_of_service,
                )
        await self._invalidate(site_id)
        return await self.lot(site_id)

    async def lot(self, site_id: str) -> LotAnswer:
        async with self.ctx.engine.connect() as conn:
            lot = (
                await conn.execute(
                    select(lot_configuration).where(lot_configuration.c.site_id == site_id)
                )
            ).first()
            slots = (
                await conn.execute(
                    select(parking_slots)
                    .where(parking_slots.c.site_id == site_id)
                    .order_by(parking_slots.c.slot_id)
                )
            ).all()
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

    # ---- events ---------------------------------------------------------------------
    async def handle_event(self, event: CloudEvent) -> None:
        handlers = {
            "parking.reserved": self._on_reserved,
            "parking.released": self._on_released,
            "parking.occupied": self._on_occupied,
            "parking.vacated": self._on_vacated,
            "parking.condition": self._on_condition,
            "sensor.status": self._on_sensor,
            "command.result": self._on_command_result,
        }
        if await dispatch(event, handlers, "parking"):
            await self._invalidate(event.site_id)

    async def _claim(
        self, conn: AsyncConnection, event: CloudEvent, kind: str, **fields: Any
    ) -> bool:
        """Record the event in the history; False when it was handled before."""
        return await self._history(
            conn, event.id, event.site_id, kind, event.time, data=event.data, **fields
        )

    async def _on_reserved(self, event: CloudEvent) -> None:
        data = _Reserved.model_validate(event.data)
        now = self.ctx.clock()
        async with self.ctx.engine.begin() as conn:
            if not await self._claim(
                conn,
                event,
                "reserved",
                slot_id=data.slot_id,
                vehicle_id=data.vehicle_id,
                reservation_id=data.reservation_id,
            ):
                return
            await self._upsert_slot(
                conn, event.site_id, data.slot_id, now, slot_type=data.slot_type
            )
            row = (
                await conn.execute(
                    select(parking_reservations).where(
                        parking_reservations.c.id == data.reservation_id
                    )
                )
            ).first()
            if row is None:
                slot_type = (
                    await conn.execute(
                        select(parking_slots.c.slot_type).where(
                            parking_slots.c.site_id == event.site_id,
                            parking_slots.c.slot_id == data.slot_id,
                        )
                    )
                ).scalar_one()
                await conn.execute(
                    parking_reservations.insert().values(
                        id=data.reservation_id,
                        site_id=event.site_id,
                        slot_id=data.slot_id,
                        slot_type=slot_type,
                        vehicle_id=data.vehicle_id,
                        starts_at=data.starts_at,
                        ends_at=data.ends_at,
                        status="confirmed",
                        origin="site",
                        command_id=data.command_id,
                        detail="reserved at the site",
                        created_at=now,
                        updated_at=now,
                    )
                )
            elif row.site_id == event.site_id and row.status == "booked":
                await conn.execute(
                    update(parking_reservations)
                    .where(parking_reservations.c.id == data.reservation_id)
                    .values(status="confirmed", updated_at=now, slot_id=data.slot_id)
                )
        log.info(
            "parking.reservation.confirmed", site=event.site_id, reservation_id=data.reservation_id
        )

    async def _on_released(self, event: CloudEvent) -> None:
        data = _Released.model_validate(event.data)
        now = self.ctx.clock()
        final = rules.status_after_release(data.reason)
        async with self.ctx.engine.begin() as conn:
            row = await _find_reservation(conn, event.site_id, id=data.reservation_id)
            if not await self._claim(
                conn,
                event,
                "released",
                slot_id=data.slot_id or (row.slot_id if row else None),
                vehicle_id=data.vehicle_id or (row.vehicle_id if row else None),
                reservation_id=data.reservation_id,
            ):
                return
            if row is not None and row.status in rules.LIVE:
                await conn.execute(
                    update(parking_reservations)
                    .where(parking_reservations.c.id == data.reservation_id)
                    .values(status=final, updated_at=now, detail=data.reason or "released")
                )

    async def _on_occupied(self, event: CloudEvent) -> None:
        data = _Occupancy.model_validate(event.data)
        now = self.ctx.clock()
        at = self._placed(event, data.arrived_at or event.time, now)
        async with self.ctx.engine.begin() as conn:
            reservation = await self._reservation_for_arrival(conn, event.site_id, data, at)
            if not await self._claim(
                conn,
                event,
                "occupied",
                slot_id=data.slot_id,
                vehicle_id=reservation.vehicle_id if reservation else None,
                reservation_id=reservation.id if reservation else None,
            ):
                return
            await self._upsert_slot(
                conn,
                event.site_id,
                data.slot_id,
                now,
                slot_type=data.slot_type,
                state="occupied",
                changed_at=at,
            )
            if reservation is not None and reservation.status in rules.UNUSED:
                await conn.execute(
                    update(parking_reservations)
                    .where(parking_reservations.c.id == reservation.id)
                    .values(status="active", updated_at=now, detail="vehicle arrived")
                )

    def _placed(self, event: CloudEvent, reported: datetime, now: datetime) -> datetime:
        """When a sensor's change counts as having happened: its reported time unless
        the sensor's clock is off (central.reported_times); the history keeps it as-is."""
        placed = anchor(reported, now, self._clock_policy)
        if placed.problem is not None:
            log.warning(
                "parking.clock_problem",
                site=event.site_id,
                event_id=event.id,
                type=event.type,
                problem=placed.problem,
                reported=reported,
            )
        return placed.at

    async def _reservation_for_arrival(
        self, conn: AsyncConnection, site_id: str, data: _Occupancy, at: datetime
    ) -> Any:
        if data.reservation_id:
            return await _find_reservation(conn, site_id, id=data.reservation_id)
        return (
            await conn.execute(
                select(parking_reservations)
                .where(
                    parking_reservations.c.site_id == site_id,
                    parking_reservations.c.slot_id == data.slot_id,
                    parking_reservations.c.status.in_(list(rules.UNUSED)),
                    parking_reservations.c.starts_at <= shift(at, rules.NOW_TOLERANCE * 3),
                    parking_reservations.c.ends_at > at,
                )
                .order_by(parking_reservations.c.starts_at)
                .limit(1)
            )
        ).first()

    async def _on_vacated(self, event: CloudEvent) -> None:
        data = _Occupancy.model_validate(event.data)
        now = self.ctx.clock()
        at = self._placed(event, data.departed_at or event.time, now)
        async with self.ctx.engine.begin() as conn:
            active = (
                await conn.execute(
                    select(parking_reservations)
                    .where(
                        parking_reservations.c.site_id == event.site_id,
                        parking_reservations.c.slot_id == data.slot_id,
                        parking_reservations.c.status == "active",
                    )
                    .limit(1)
                )
            ).first()
            if not await self._claim(
                conn,
                event,
                "vacated",
                slot_id=data.slot_id,
                vehicle_id=active.vehicle_id if active else None,
                reservation_id=active.id if active else None,
                duration_s=reported_seconds(data.duration_s),
            ):
                return
            await self._upsert_slot(
                conn,
                event.site_id,
                data.slot_id,
                now,
                slot_type=data.slot_type,
                state="free",
                changed_at=at,
            )
            if active is not None:
                await conn.execute(
                    update(parking_reservations)
                    .where(parking_reservations.c.id == active.id)
                    .values(status="completed", updated_at=now, detail="vehicle left")
                )

    async def _on_condition(self, event: CloudEvent) -> None:
        data = _Condition.model_validate(event.data)
        async with self.ctx.engine.begin() as conn:
            await self._claim(conn, event, f"condition.{data.condition}"[:32], slot_id=data.slot_id)

    async def _on_sensor(self, event: CloudEvent) -> None:
        data = _SensorStatus.model_validate(event.data)
        now = self.ctx.clock()
        async with self.ctx.engine.begin() as conn:
            if not await self._claim(conn, event, "sensor", slot_id=data.slot_id):
                return
            if data.slot_id:
                await conn.execute(
                    update(parking_slots)
                    .where(
                        parking_slots.c.site_id == event.site_id,
                        parking_slots.c.slot_id == data.slot_id,
                    )
                    .values(sensor_online=data.online, updated_at=now)
                )

    async def _on_command_result(self, event: CloudEvent) -> None:
        result = CommandResult.model_validate(event.data)
        if result.command_type not in ("reserve", "cancel_reservation"):
            return
        now = self.ctx.clock()
        async with self.ctx.engine.begin() as conn:
            row = await _find_reservation(conn, event.site_id, command_id=result.command_id)
            if not await self._claim(
                conn,
                event,
                f"command.{result.status}",
                reservation_id=row.id if row else None,
                vehicle_id=row.vehicle_id if row else None,
                slot_id=row.slot_id if row else None,
            ):
                return
            if row is None or result.command_type != "reserve":
                return
            if result.status == "accepted" and row.status == "booked":
                new_status, detail = "confirmed", "the site holds the slot"
            elif result.status != "accepted" and row.status in rules.UNUSED:
                new_status, detail = "rejected", (result.detail or f"site answered {result.status}")
            else:
                return
            await conn.execute(
                update(parking_reservations)
                .where(parking_reservations.c.id == row.id)
                .values(status=new_status, updated_at=now, detail=detail[:256])
            )

    # ---- storage helpers ------------------------------------------------------------
    async def _history(
        self,
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

    async def _upsert_slot(
        self,
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
            .where(parking_slots.c.site_id == site_id, parking_slots.c.slot_id == slot_id)
            .values(**values)
        )

    async def _invalidate(self, site_id: str) -> None:
        await self.ctx.cache.delete(f"{STATUS_KEY}{site_id}")
        await self.ctx.cache.delete(f"{STATUS_KEY}*")

    # ---- HTTP -----------------------------------------------------------------------
    def router(self) -> APIRouter:
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
            try:
                booked = await self.reserve(body)
                site = await presence(self.ctx.cache, body.site_id)
                booked.site_online = site.online
                if not site.online:
                    booked.detail = f"{site.describe()}; the site confirms when back"
                return booked
            except rules.InvalidWindow as err:
                raise HTTPException(422, str(err)) from err
            except rules.ReservationError as err:
                raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err
            except KeyError as err:
                raise HTTPException(status.HTTP_404_NOT_FOUND, err.args[0]) from err

        @router.get("/status", response_model=StatusAnswer, summary="Free slots per site and type")
        async def get_status(
            site_id: Annotated[SiteId | None, Query()] = None,
            slot_type: Annotated[SlotType | None, Query()] = None,
            _p: Principal = anyone,
        ) -> StatusAnswer:
            return await self.status(site_id, slot_type)

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
            try:
                answer = await self.slot(slot_id, site_id)
                # a driver sees that the slot is booked, and whose only for its own
                answer.upcoming = [
                    r for r in answer.upcoming if principal.may_see_vehicle(r.vehicle_id)
                ]
                return answer
            except KeyError as err:
                raise HTTPException(status.HTTP_404_NOT_FOUND, err.args[0]) from err
            except rules.ReservationError as err:
                raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err

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
            try:
                if reservation_id is None:
                    if vehicle_id is None:
                        raise HTTPException(422, "give reservation_id or vehicle_id")
                    check_vehicle(principal, vehicle_id)
                    reservation_id = await self.live_reservation_of(vehicle_id, site_id)
                else:
                    found = await self.get_reservation(reservation_id)
                    if found is None:
                        raise KeyError(f"no reservation {reservation_id}")
                    check_vehicle(principal, found.vehicle_id)
                return await self.release(reservation_id)
            except KeyError as err:
                raise HTTPException(status.HTTP_404_NOT_FOUND, err.args[0]) from err
            except rules.ReservationError as err:
                raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err

        @router.get(
            "/reservations/{reservation_id}",
            response_model=Reservation,
            summary="One reservation",
            responses={
                403: {"description": "another user's reservation"},
                404: {"description": "no such reservation"},
            },
        )
        async def get_reservation(
            reservation_id: PathId, principal: Principal = anyone
        ) -> Reservation:
            found = await self.get_reservation(reservation_id)
            if found is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no reservation {reservation_id}")
            check_vehicle(principal, found.vehicle_id)
            return found

        @router.get(
            "/reservations",
            response_model=Page[Reservation],
            summary="Reservations, latest start first (a driver: of one of its vehicles)",
            responses={
                400: {"description": "invalid cursor"},
                403: {"description": "not the key's vehicle"},
            },
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
            return await self.reservations(
                limit, cursor, vehicle_id=vehicle_id, site_id=site_id, status=status_
            )

        @router.get(
            "/history/{vehicle_id}",
            response_model=Page[HistoryEntry],
            summary="A vehicle's visits and reservation changes, newest first",
            responses={
                400: {"description": "invalid cursor"},
                403: {"description": "not the key's vehicle"},
            },
        )
        async def history(
            vehicle_id: PathId,
            limit: Limit = 100,
            cursor: Cursor = None,
            principal: Principal = anyone,
        ) -> Page[HistoryEntry]:
            check_vehicle(principal, vehicle_id)
            return await self.history(vehicle_id, limit, cursor)

        @router.put(
            "/lots/{site_id}",
            response_model=LotAnswer,
            summary="Configure a site's lot and slots (operators)",
        )
        async def put_lot(site_id: PathId, body: LotConfig, _p: Principal = operator) -> LotAnswer:
            return await self.configure_lot(site_id, body)

        @router.get(
            "/lots/{site_id}",
            response_model=LotAnswer,
            summary="A site's lot configuration",
            responses={404: {"description": "unknown site"}},
        )
        async def get_lot(site_id: PathId, _p: Principal = anyone) -> LotAnswer:
            try:
                return await self.lot(site_id)
            except KeyError as err:
                raise HTTPException(status.HTTP_404_NOT_FOUND, err.args[0]) from err

        return router


def build(ctx: ServiceContext) -> ParkingService:
    return ParkingService(ctx)


async def _find_reservation(conn: AsyncConnection, site_id: str, **key: str | None) -> Any:
    """The site's reservation with this ``id`` or ``command_id``, or None."""
    ((column, value),) = key.items()
    return (
        await conn.execute(
            select(parking_reservations).where(
                parking_reservations.c[column] == value,
                parking_reservations.c.site_id == site_id,
            )
        )
    ).first()
