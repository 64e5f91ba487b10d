"""The charging service: the HTTP API, the event handlers, command tracking.

``POST /charging/start`` and ``/stop`` become ``remote_start`` / ``remote_stop`` commands
for the site (:mod:`central.site_commands`); the answer is 202 with the command id and status
``pending``, or, when the site's ``command.result`` arrives within ``?wait=`` seconds,
the charger's answer (200). ``GET /charging/commands/{id}`` polls a command. Sessions,
their energy and cost come from the sites' events (``charging.events``); pricing rules
are in :mod:`central.charging.pricing`. Handlers are idempotent by event id
(``charging_history.event_id``; progress updates only move forward in time).

Whose a session is, is decided by its id tag only (:meth:`ChargingService._vehicle_for`):
a tag an operator registered to a vehicle, or the tag of that vehicle's remote start on
the same charger (and evse). A session started with any other tag (a stranger's RFID
card) belongs to no vehicle: operators and the site see it, priced, in the site's and
charger's listings, no driver does. Drivers see and act only for their own vehicles
(:mod:`central.auth`).
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

import structlog
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field, field_validator
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from central.api_types import ChargerId, IdTag, PathId, SiteId, VehicleId
from central.auth import Principal, check_vehicle, forbidden, require
from central.charging.pricing import Cost, Rate, TouWindow, price_reported_session
from central.charging.tables import (
    charger_stations,
    charging_commands,
    charging_history,
    charging_id_tags,
    charging_rates,
    charging_sessions,
)
from central.context import ServiceContext
from central.event_routing import dispatch
from central.infra.db import insert_ignore
from central.infra.paging import Cursor, Limit, Page, after, page_of, parse_cursor
from central.reported_times import reported_amount, shift
from central.site_commands import new_command, send_command
from central.sync.presence import presence
from contract.envelope import CHARGING_TOPIC, CloudEvent
from contract.sync_api import CommandResult, CommandType

log = structlog.get_logger("central.charging")

RATES_KEY = "charging:rates:"
IDLE_POWER_W = 50
# a remote start's tag names a session on its charger that starts after the command was
# made (clocks may differ this much) and before the command could expire
CLOCK_SKEW = timedelta(minutes=2)

Wait = Annotated[float, Query(ge=0, le=60, description="seconds to wait for the charger's answer")]
Money = Annotated[Decimal, Field(ge=0, le=10_000, max_digits=12, decimal_places=6)]


# ---- API models ---------------------------------------------------------------------
class StartRequest(BaseModel):
    site_id: SiteId
    charger_id: ChargerId
    evse_id: int | None = Field(default=None, ge=1, le=64)
    vehicle_id: VehicleId
    id_tag: IdTag | None = Field(default=None, description="default: derived from vehicle_id")


class StopRequest(BaseModel):
    vehicle_id: VehicleId | None = None
    session_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")] | None = None


class CommandAnswer(BaseModel):
    command_id: str
    type: str
    site_id: str
    status: Literal["pending", "accepted", "rejected", "failed", "expired", "timeout", "unknown"]
    detail: str
    result: dict[str, Any]
    created_at: datetime
    expires_at: datetime
    site_online: bool | None = Field(
        default=None,
        description="false: the site is offline; a pending command waits for it until "
        "expires_at, then becomes expired",
    )


class CostAnswer(BaseModel):
    currency: str
    energy_kwh: Decimal
    energy: Decimal
    parking: Decimal
    idle: Decimal
    idle_minutes: int
    total: Decimal


class SessionAnswer(BaseModel):
    session_id: str
    site_id: str
    charger_id: str
    evse_id: int | None
    vehicle_id: str | None
    status: str
    started_at: datetime
    stopped_at: datetime | None
    energy_wh: int
    power_w: int | None
    reason: str | None
    cost: CostAnswer | None


class VehicleStatus(BaseModel):
    vehicle_id: str
    charging: bool
    session: SessionAnswer | None
    pending_commands: list[CommandAnswer]


class IdTagAnswer(BaseModel):
    id_tag: str
    vehicle_id: str
    created_at: datetime


class IdTagRequest(BaseModel):
    vehicle_id: VehicleId


class TouWindowModel(BaseModel):
    start: time
    end: time
    energy_price_per_kwh: Money
    days: list[int] = Field(default_factory=list, max_length=7, description="0=Monday")

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[int]) -> list[int]:
        if any(d < 0 or d > 6 for d in value):
            raise ValueError("days are 0 (Monday) to 6 (Sunday)")
        return value

    @field_validator("start", "end")
    @classmethod
    def _naive_time(cls, value: time) -> time:
        return value.replace(tzinfo=None)


class RateModel(BaseModel):
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    energy_price_per_kwh: Money
    parking_price_per_hour: Money = Decimal(0)
    idle_fee_per_minute: Money = Decimal(0)
    idle_grace_minutes: int = Field(default=0, ge=0, le=24 * 60)
    timezone: str = Field(default="UTC", max_length=64)
    tou_windows: list[TouWindowModel] = Field(default_factory=list, max_length=48)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if value not in _zones():
            raise ValueError(f"unknown time zone {value!r}")
        return value

    def to_rate(self) -> Rate:
        return Rate(
            currency=self.currency,
            energy_price_per_kwh=self.energy_price_per_kwh,
            parking_price_per_hour=self.parking_price_per_hour,
            idle_fee_per_minute=self.idle_fee_per_minute,
            idle_grace_minutes=self.idle_grace_minutes,
            timezone=self.timezone,
            tou=tuple(
                TouWindow(w.start, w.end, w.energy_price_per_kwh, frozenset(w.days))
                for w in self.tou_windows
            ),
        )


class SiteRate(RateModel):
    site_id: str
    updated_at: datetime


class StationAnswer(BaseModel):
    site_id: str
    charger_id: str
    status: str
    online: bool | None
    error_code: str | None
    evses: dict[str, Any]
    updated_at: datetime


_ZONES: set[str] = set()


def _zones() -> set[str]:
    if not _ZONES:
        _ZONES.update(available_timezones())
        _ZONES.add("UTC")
    return _ZONES


# event data shapes (what this service reads of them; extra keys ignored)
class _Started(BaseModel):
    session_id: str = Field(max_length=64)
    charger_id: str = Field(max_length=64)
    evse_id: int | None = None
    id_tag: str | None = Field(default=None, max_length=64)
    transaction_id: str | int | None = None
    started_at: AwareDatetime


class _Progress(BaseModel):
    session_id: str = Field(max_length=64)
    energy_wh: float = Field(ge=0)
    power_w: float | None = None
    at: AwareDatetime


class _Completed(BaseModel):
    session_id: str = Field(max_length=64)
    charger_id: str = Field(max_length=64)
    evse_id: int | None = None
    id_tag: str | None = Field(default=None, max_length=64)
    transaction_id: str | int | None = None
    energy_wh: float = Field(ge=0)
    started_at: AwareDatetime
    stopped_at: AwareDatetime
    reason: str = Field(default="", max_length=64)


class _Failed(BaseModel):
    charger_id: str = Field(max_length=64)
    reason: str = Field(default="", max_length=256)
    command_id: str | None = Field(default=None, max_length=64)
    id_tag: str | None = Field(default=None, max_length=64)


class _ChargerStatus(BaseModel):
    charger_id: str = Field(max_length=64)
    evse_id: int | None = None
    connector_id: int | None = None
    status: str = Field(max_length=32)
    error_code: str | None = Field(default=None, max_length=64)
    online: bool = True


def _rate_model(row: Any) -> SiteRate:
    return SiteRate(
        site_id=row.site_id,
        currency=row.currency,
        energy_price_per_kwh=Decimal(row.energy_price_per_kwh),
        parking_price_per_hour=Decimal(row.parking_price_per_hour),
        idle_fee_per_minute=Decimal(row.idle_fee_per_minute),
        idle_grace_minutes=row.idle_grace_minutes,
        timezone=row.timezone,
        tou_windows=[TouWindowModel.model_validate(w) for w in json.loads(row.tou_windows)],
        updated_at=row.updated_at,
    )


def _cost_answer(cost: Cost) -> CostAnswer:
    return CostAnswer(
        currency=cost.currency,
        energy_kwh=cost.energy_kwh,
        energy=cost.energy,
        parking=cost.parking,
        idle=cost.idle,
        idle_minutes=cost.idle_minutes,
        total=cost.total,
    )


def _command_answer(row: Any, now: datetime) -> CommandAnswer:
    state = row.status
    if state == "pending" and now >= row.expires_at:
        state = "expired"
    return CommandAnswer(
        command_id=row.id,
        type=row.type,
        site_id=row.site_id,
        status=state,
        detail=row.detail,
        result=json.loads(row.result),
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


def _meter_problem(event: CloudEvent, session_id: str, reported: float) -> None:
    """An energy no session delivers: the session is kept (its energy 0, the reported
    figure in its history's event data) and the problem logged, not dead-lettered."""
    log.warning(
        "charging.session.meter_problem",
        site=event.site_id,
        session=session_id,
        event_id=event.id,
        energy_wh=reported,
    )


def default_id_tag(vehicle_id: str) -> str:
    """OCPP 1.6 id tags hold 20 characters."""
    return vehicle_id[:20]


class ChargingService:
    name = "charging"

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self._waiters: dict[str, asyncio.Event] = {}
        self._clock_policy = ctx.settings.reported_times.policy()

    async def start(self) -> None:
        await self.ctx.bus.subscribe(CHARGING_TOPIC, "charging", self.handle_event)

    async def stop(self) -> None:
        for event in self._waiters.values():
            event.set()

    # ---- commands -------------------------------------------------------------------
    async def _issue(
        self,
        site_id: str,
        type_: CommandType,
        payload: dict[str, Any],
        *,
        charger_id: str | None,
        vehicle_id: str | None,
        session_id: str | None = None,
        id_tag: str | None = None,
        evse_id: int | None = None,
    ) -> str:
        now = self.ctx.clock()
        command = new_command(site_id, type_, payload, now, self.ctx.settings.command_ttl_s)
        async with self.ctx.engine.begin() as conn:
            await conn.execute(
                charging_commands.insert().values(
                    id=command.id,
                    site_id=site_id,
                    type=type_,
                    charger_id=charger_id,
                    vehicle_id=vehicle_id,
                    session_id=session_id,
                    id_tag=id_tag,
                    evse_id=evse_id,
                    status="pending",
                    created_at=now,
                    expires_at=command.expires_at,
                    updated_at=now,
                )
            )
        await send_command(self.ctx.bus, command)
        log.info("charging.command.sent", site=site_id, command_id=command.id, type=type_)
        return command.id

    async def start_charging(self, body: StartRequest) -> str:
        id_tag = body.id_tag or default_id_tag(body.vehicle_id)
        async with self.ctx.engine.connect() as conn:
            owner = (
                await conn.execute(
                    select(charging_id_tags.c.vehicle_id).where(charging_id_tags.c.id_tag == id_tag)
                )
            ).scalar_one_or_none()
            if owner is not None and owner != body.vehicle_id:
                # the remote start's tag names the session's vehicle: never another's tag
                raise PermissionError(f"id tag {id_tag} belongs to another vehicle")
            station = (
                await conn.execute(
                    select(charger_stations).where(
                        charger_stations.c.site_id == body.site_id,
                        charger_stations.c.charger_id == body.charger_id,
                    )
                )
            ).first()
            active = (
                await conn.execute(
                    select(charging_sessions.c.id).where(
                        charging_sessions.c.vehicle_id == body.vehicle_id,
                        charging_sessions.c.status == "active",
                    )
                )
            ).first()
        if station is not None and station.online is False:
            raise ValueError(f"charger {body.charger_id} is offline")
        if active is not None:
            raise ValueError(f"vehicle {body.vehicle_id} is already charging (session {active.id})")
        payload: dict[str, Any] = {
            "charger_id": body.charger_id,
            "id_tag": id_tag,
            "vehicle_id": body.vehicle_id,
        }
        if body.evse_id is not None:
            payload["evse_id"] = body.evse_id
        return await self._issue(
            body.site_id,
            "remote_start",
            payload,
            charger_id=body.charger_id,
            vehicle_id=body.vehicle_id,
            id_tag=id_tag,
            evse_id=body.evse_id,
        )

    async def stop_charging(self, body: StopRequest, principal: Principal) -> str:
        query = select(charging_sessions).where(charging_sessions.c.status == "active")
        if body.session_id is not None:
            query = query.where(charging_sessions.c.id == body.session_id)
        elif body.vehicle_id is not None:
            query = query.where(charging_sessions.c.vehicle_id == body.vehicle_id)
        else:
            raise ValueError("give vehicle_id or session_id")
        async with self.ctx.engine.connect() as conn:
            session = (await conn.execute(query.limit(1))).first()
        if session is None:
            raise KeyError("no active charging session for that vehicle or session id")
        check_vehicle(principal, session.vehicle_id, "a session of no vehicle of its own")
        return await self._issue(
            session.site_id,
            "remote_stop",
            {
                "charger_id": session.charger_id,
                "session_id": session.id,
                "transaction_id": session.transaction_id,
                "vehicle_id": session.vehicle_id,
            },
            charger_id=session.charger_id,
            vehicle_id=session.vehicle_id,
            session_id=session.id,
        )

    async def command(self, command_id: str, wait: float = 0.0) -> CommandAnswer | None:
        """The command's state, waiting up to ``wait`` seconds for a final answer."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(wait, self.ctx.settings.max_command_wait_s)
        while True:
            waiter = self._waiters.setdefault(command_id, asyncio.Event())
            async with self.ctx.engine.connect() as conn:
                row = (
                    await conn.execute(
                        select(charging_commands).where(charging_commands.c.id == command_id)
                    )
                ).first()
            if row is None:
                self._waiters.pop(command_id, None)
                return None
            answer = _command_answer(row, self.ctx.clock())
            remaining = deadline - loop.time()
            if answer.status != "pending" or remaining <= 0:
                self._waiters.pop(command_id, None)
                return answer
            # woken by a result handled in this process; re-read now and then (another
            # replica may have handled it)
            try:
                async with asyncio.timeout(min(remaining, 0.5)):
                    await waiter.wait()
            except TimeoutError:
                pass

    # ---- reads ----------------------------------------------------------------------
    async def rates(
        self, site_id: str | None, limit: int = 100, cursor: str | None = None
    ) -> Page[SiteRate]:
        start = parse_cursor("rates", cursor, (str,))
        key = f"{RATES_KEY}{site_id or '*'}:{limit}:{cursor or ''}"
        cached = await self.ctx.cache.get(key)
        if cached is not None:
            return Page[SiteRate].model_validate(cached)
        query = select(charging_rates).order_by(charging_rates.c.site_id).limit(limit + 1)
        if site_id is not None:
            query = query.where(charging_rates.c.site_id == site_id)
        if start is not None:
            query = query.where(charging_rates.c.site_id > start[0])
        async with self.ctx.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        answer = page_of(
            [_rate_model(r) for r in rows], rows, limit, "rates", lambda r: (r.site_id,)
        )
        await self.ctx.cache.set(
            key, answer.model_dump(mode="json"), ttl=self.ctx.settings.rates_cache_ttl_s
        )
        return answer

    async def _rate_for(self, conn: AsyncConnection, site_id: str) -> Rate | None:
        row = (
            await conn.execute(select(charging_rates).where(charging_rates.c.site_id == site_id))
        ).first()
        return None if row is None else _rate_model(row).to_rate()

    async def set_rates(self, site_id: str, body: RateModel) -> SiteRate:
        now = self.ctx.clock()
        values = {
            "currency": body.currency,
            "energy_price_per_kwh": str(body.energy_price_per_kwh),
            "parking_price_per_hour": str(body.parking_price_per_hour),
            "idle_fee_per_minute": str(body.idle_fee_per_minute),
            "idle_grace_minutes": body.idle_grace_minutes,
            "timezone": body.timezone,
            "tou_windows": json.dumps([w.model_dump(mode="json") for w in body.tou_windows]),
            "updated_at": now,
        }
        async with self.ctx.engine.begin() as conn:
            exists = (
                await conn.execute(
                    select(charging_rates.c.site_id).where(charging_rates.c.site_id == site_id)
                )
            ).first()
            if exists:
                await conn.execute(
                    update(charging_rates)
                    .where(charging_rates.c.site_id == site_id)
                    .values(**values)
                )
            else:
                await conn.execute(charging_rates.insert().values(site_id=site_id, **values))
            row = (
                await conn.execute(
                    select(charging_rates).where(charging_rates.c.site_id == site_id)
                )
            ).one()
        await self.ctx.cache.delete_prefix(RATES_KEY)
        answer = _rate_model(row)
        await self._issue(
            site_id,
            "update_rates",
            {"rates": [answer.model_dump(mode="json")]},
            charger_id=None,
            vehicle_id=None,
        )
        return answer

    async def _session_answer(self, conn: AsyncConnection, row: Any) -> SessionAnswer:
        rate = await self._rate_for(conn, row.site_id)
        cost = None
        if rate is not None:
            now = self.ctx.clock()
            priced, _problem = price_reported_session(
                rate,
                row.started_at,
                row.stopped_at or now,
                row.energy_wh,
                row.charging_ended_at,
                # a completed session's times were judged when central stored it
                received=row.updated_at if row.stopped_at else now,
                policy=self._clock_policy,
            )
            cost = _cost_answer(priced)
        return SessionAnswer(
            session_id=row.id,
            site_id=row.site_id,
            charger_id=row.charger_id,
            evse_id=row.evse_id,
            vehicle_id=row.vehicle_id,
            status=row.status,
            started_at=row.started_at,
            stopped_at=row.stopped_at,
            energy_wh=row.energy_wh,
            power_w=row.power_w,
            reason=row.reason,
            cost=cost,
        )

    async def vehicle_status(self, vehicle_id: str) -> VehicleStatus:
        now = self.ctx.clock()
        async with self.ctx.engine.connect() as conn:
            session = (
                await conn.execute(
                    select(charging_sessions)
                    .where(
                        charging_sessions.c.vehicle_id == vehicle_id,
                        charging_sessions.c.status == "active",
                    )
                    .order_by(charging_sessions.c.started_at.desc())
                    .limit(1)
                )
            ).first()
            pending = (
                await conn.execute(
                    select(charging_commands)
                    .where(
                        charging_commands.c.vehicle_id == vehicle_id,
                        charging_commands.c.status == "pending",
                        charging_commands.c.expires_at > now,
                    )
                    .order_by(charging_commands.c.created_at)
                )
            ).all()
            answer = None if session is None else await self._session_answer(conn, session)
        return VehicleStatus(
            vehicle_id=vehicle_id,
            charging=answer is not None,
            session=answer,
            pending_commands=[_command_answer(r, now) for r in pending],
        )

    async def history(
        self, vehicle_id: str, limit: int, cursor: str | None = None
    ) -> Page[SessionAnswer]:
        """The vehicle's finished sessions, newest first."""
        return await self.sessions(
            limit, cursor, vehicle_id=vehicle_id, finished=True, kind="history"
        )

    async def sessions(
        self,
        limit: int,
        cursor: str | None,
        *,
        site_id: str | None = None,
        charger_id: str | None = None,
        vehicle_id: str | None = None,
        status: str | None = None,
        finished: bool = False,
        kind: str = "sessions",
    ) -> Page[SessionAnswer]:
        """Sessions newest first (by start, then id), ``limit`` a page."""
        start = parse_cursor(kind, cursor, (datetime, str))
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
        async with self.ctx.engine.connect() as conn:
            rows = (await conn.execute(query.limit(limit + 1))).all()
            items = [await self._session_answer(conn, r) for r in rows[:limit]]
        return page_of(items, rows, limit, kind, lambda r: (r.started_at, r.id))

    async def stations(
        self, site_id: str | None, limit: int = 100, cursor: str | None = None
    ) -> Page[StationAnswer]:
        start = parse_cursor("stations", cursor, (str, str))
        c = charger_stations.c
        query = select(charger_stations).order_by(c.site_id, c.charger_id)
        if site_id is not None:
            query = query.where(c.site_id == site_id)
        if start is not None:
            query = query.where(after([c.site_id, c.charger_id], start, descending=False))
        async with self.ctx.engine.connect() as conn:
            rows = (await conn.execute(query.limit(limit + 1))).all()
        items = [
            StationAnswer(
                site_id=r.site_id,
                charger_id=r.charger_id,
                status=r.status,
                online=r.online,
                error_code=r.error_code,
                evses=json.loads(r.evses),
                updated_at=r.updated_at,
            )
            for r in rows[:limit]
        ]
        return page_of(items, rows, limit, "stations", lambda r: (r.site_id, r.charger_id))

    # ---- id tags ----------------------------------------------------------------------
    async def register_tag(self, id_tag: str, vehicle_id: str) -> IdTagAnswer:
        now = self.ctx.clock()
        async with self.ctx.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(charging_id_tags).where(charging_id_tags.c.id_tag == id_tag)
                )
            ).first()
            if row is not None and row.vehicle_id != vehicle_id:
                raise ValueError(f"id tag {id_tag} is registered to another vehicle")
            if row is None:
                await conn.execute(
                    charging_id_tags.insert().values(
                        id_tag=id_tag, vehicle_id=vehicle_id, created_at=now
                    )
                )
        log.info("charging.id_tag.registered", id_tag=id_tag, vehicle=vehicle_id)
        return IdTagAnswer(
            id_tag=id_tag, vehicle_id=vehicle_id, created_at=row.created_at if row else now
        )

    async def unregister_tag(self, id_tag: str) -> bool:
        async with self.ctx.engine.begin() as conn:
            result = await conn.execute(
                charging_id_tags.delete().where(charging_id_tags.c.id_tag == id_tag)
            )
        return bool(result.rowcount)

    async def tags(
        self, vehicle_id: str | None, limit: int, cursor: str | None
    ) -> Page[IdTagAnswer]:
        start = parse_cursor("id-tags", cursor, (str,))
        c = charging_id_tags.c
        query = select(charging_id_tags).order_by(c.id_tag)
        if vehicle_id is not None:
            query = query.where(c.vehicle_id == vehicle_id)
        if start is not None:
            query = query.where(c.id_tag > start[0])
        async with self.ctx.engine.connect() as conn:
            rows = (await conn.execute(query.limit(limit + 1))).all()
        items = [
            IdTagAnswer(id_tag=r.id_tag, vehicle_id=r.vehicle_id, created_at=r.created_at)
            for r in rows[:limit]
        ]
        return page_of(items, rows, limit, "id-tags", lambda r: (r.id_tag,))

    async def command_vehicle(self, command_id: str) -> str | None:
        async with self.ctx.engine.connect() as conn:
            vehicle: str | None = (
                await conn.execute(
                    select(charging_commands.c.vehicle_id).where(
                        charging_commands.c.id == command_id
                    )
                )
            ).scalar_one_or_none()
        return vehicle

    # ---- events ---------------------------------------------------------------------
    async def handle_event(self, event: CloudEvent) -> None:
        handlers = {
            "charging.started": self._on_started,
            "charging.progress": self._on_progress,
            "charging.completed": self._on_completed,
            "charging.failed": self._on_failed,
            "charger.status": self._on_charger_status,
            "command.result": self._on_command_result,
        }
        await dispatch(event, handlers, "charging")

    async def _claim(
        self,
        conn: AsyncConnection,
        event: CloudEvent,
        kind: str,
        *,
        session_id: str | None = None,
        vehicle_id: str | None = None,
        energy_wh: int | None = None,
        cost: str | None = None,
    ) -> bool:
        result = await conn.execute(
            insert_ignore(conn.dialect.name, charging_history, ["event_id"]).values(
                event_id=event.id,
                site_id=event.site_id,
                session_id=session_id,
                vehicle_id=vehicle_id,
                kind=kind,
                at=event.time,
                energy_wh=energy_wh,
                cost=cost,
                data=json.dumps(event.data, default=str),
            )
        )
        return bool(result.rowcount)

    async def _vehicle_for(
        self,
        conn: AsyncConnection,
        site_id: str,
        charger_id: str,
        evse_id: int | None,
        id_tag: str | None,
        started_at: datetime,
    ) -> str | None:
        """The vehicle a session belongs to, by its id tag only: the vehicle the tag is
        registered to, else the vehicle of a remote start with that very tag on that
        charger (and evse, when both name one) made before the session started and not
        expired by then. Anything else (no tag, a stranger's card) is no vehicle's.

        Only the event's own data and the commands central issued decide, so events that
        arrive late (a site back from an outage) are attributed the same way."""
        if not id_tag:
            return None
        registered = (
            await conn.execute(
                select(charging_id_tags.c.vehicle_id).where(charging_id_tags.c.id_tag == id_tag)
            )
        ).scalar_one_or_none()
        if registered is not None:
            return str(registered)
        c = charging_commands.c
        query = (
            select(c.vehicle_id)
            .where(
                c.site_id == site_id,
                c.charger_id == charger_id,
                c.type == "remote_start",
                c.id_tag == id_tag,
                c.status.in_(["accepted", "pending"]),
                c.created_at <= shift(started_at, CLOCK_SKEW),
                c.expires_at >= shift(started_at, -CLOCK_SKEW),
            )
            .order_by(c.created_at.desc())
            .limit(1)
        )
        if evse_id is not None:
            query = query.where((c.evse_id.is_(None)) | (c.evse_id == evse_id))
        vehicle = (await conn.execute(query)).scalar_one_or_none()
        return None if vehicle is None else str(vehicle)

    async def _on_started(self, event: CloudEvent) -> None:
        data = _Started.model_validate(event.data)
        now = self.ctx.clock()
        async with self.ctx.engine.begin() as conn:
            vehicle = await self._vehicle_for(
                conn, event.site_id, data.charger_id, data.evse_id, data.id_tag, data.started_at
            )
            if not await self._claim(
                conn, event, "started", session_id=data.session_id, vehicle_id=vehicle
            ):
                return
            await conn.execute(
                insert_ignore(conn.dialect.name, charging_sessions, ["id"]).values(
                    id=data.session_id,
                    site_id=event.site_id,
                    charger_id=data.charger_id,
                    evse_id=data.evse_id,
                    vehicle_id=vehicle,
                    id_tag=data.id_tag,
                    transaction_id=None
                    if data.transaction_id is None
                    else str(data.transaction_id),
                    status="active",
                    started_at=data.started_at,
                    energy_wh=0,
                    updated_at=now,
                )
            )
        log.info("charging.session.started", site=event.site_id, session=data.session_id)

    async def _on_progress(self, event: CloudEvent) -> None:
        data = _Progress.model_validate(event.data)
        now = self.ctx.clock()
        # a reading stamped by a clock in 9999 must not make every later one look older
        believed = shift(now, self._clock_policy.future_tolerance)
        idle = data.power_w is not None and data.power_w < IDLE_POWER_W
        async with self.ctx.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(charging_sessions).where(
                        charging_sessions.c.id == data.session_id,
                        charging_sessions.c.site_id == event.site_id,
                    )
                )
            ).first()
            if row is None or row.status != "active":
                return
            if row.progress_at is not None and data.at <= row.progress_at <= believed:
                return  # an older or repeated update
            charging_ended = row.charging_ended_at if idle else None
            if idle and charging_ended is None:
                charging_ended = data.at
            energy = reported_amount(data.energy_wh)
            if energy is None:
                _meter_problem(event, data.session_id, data.energy_wh)
            await conn.execute(
                update(charging_sessions)
                .where(charging_sessions.c.id == data.session_id)
                .values(
                    energy_wh=row.energy_wh if energy is None else energy,
                    power_w=reported_amount(data.power_w),
                    progress_at=data.at,
                    charging_ended_at=charging_ended,
                    updated_at=now,
                )
            )

    async def _on_completed(self, event: CloudEvent) -> None:
        data = _Completed.model_validate(event.data)
        now = self.ctx.clock()
        energy = reported_amount(data.energy_wh)
        if energy is None:
            _meter_problem(event, data.session_id, data.energy_wh)
        async with self.ctx.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(charging_sessions).where(charging_sessions.c.id == data.session_id)
                )
            ).first()
            if row is not None and row.site_id != event.site_id:
                log.warning("charging.session.foreign", site=event.site_id, session=data.session_id)
                return
            vehicle = (
                row.vehicle_id
                if row is not None
                else await self._vehicle_for(
                    conn, event.site_id, data.charger_id, data.evse_id, data.id_tag, data.started_at
                )
            )
            rate = await self._rate_for(conn, event.site_id)
            charging_ended = row.charging_ended_at if row else None
            cost, problem = None, None
            if rate is not None:
                cost, problem = price_reported_session(
                    rate,
                    data.started_at,
                    data.stopped_at,
                    energy or 0,
                    charging_ended,
                    received=now,
                    policy=self._clock_policy,
                )
            if problem is not None:
                log.warning(
                    "charging.session.clock_problem",
                    site=event.site_id,
                    charger=data.charger_id,
                    session=data.session_id,
                    problem=problem,
                    started_at=data.started_at,
                    stopped_at=data.stopped_at,
                )
            if not await self._claim(
                conn,
                event,
                "completed",
                session_id=data.session_id,
                vehicle_id=vehicle,
                energy_wh=energy,
                cost=None if cost is None else str(cost.total),
            ):
                return
            values = {
                "status": "completed",
                "stopped_at": data.stopped_at,
                "energy_wh": energy or 0,
                "reason": data.reason or None,
                "vehicle_id": vehicle,
                "updated_at": now,
            }
            if row is None:
                await conn.execute(
                    charging_sessions.insert().values(
                        id=data.session_id,
                        site_id=event.site_id,
                        charger_id=data.charger_id,
                        evse_id=data.evse_id,
                        id_tag=data.id_tag,
                        transaction_id=None
                        if data.transaction_id is None
                        else str(data.transaction_id),
                        started_at=data.started_at,
                        **values,
                    )
                )
            else:
                await conn.execute(
                    update(charging_sessions)
                    .where(charging_sessions.c.id == data.session_id)
                    .values(**values)
                )
        log.info(
            "charging.session.completed",
            site=event.site_id,
            session=data.session_id,
            energy_wh=energy,
        )

    async def _on_failed(self, event: CloudEvent) -> None:
        data = _Failed.model_validate(event.data)
        now = self.ctx.clock()
        async with self.ctx.engine.begin() as conn:
            vehicle = None
            if data.command_id:
                vehicle = (
                    await conn.execute(
                        select(charging_commands.c.vehicle_id).where(
                            charging_commands.c.id == data.command_id,
                            charging_commands.c.site_id == event.site_id,
                        )
                    )
                ).scalar_one_or_none()
            if not await self._claim(conn, event, "failed", vehicle_id=vehicle):
                return
            if data.command_id:
                await conn.execute(
                    update(charging_commands)
                    .where(
                        charging_commands.c.id == data.command_id,
                        charging_commands.c.site_id == event.site_id,
                        charging_commands.c.status == "pending",
                    )
                    .values(status="failed", detail=data.reason[:256], updated_at=now)
                )
        if data.command_id and data.command_id in self._waiters:
            self._waiters[data.command_id].set()

    async def _on_charger_status(self, event: CloudEvent) -> None:
        data = _ChargerStatus.model_validate(event.data)
        async with self.ctx.engine.begin() as conn:
            await conn.execute(
                insert_ignore(
                    conn.dialect.name, charger_stations, ["site_id", "charger_id"]
                ).values(
                    site_id=event.site_id,
                    charger_id=data.charger_id,
                    status=data.status,
                    online=data.online,
                    evses="{}",
                    updated_at=event.time,
                )
            )
            row = (
                await conn.execute(
                    select(charger_stations).where(
                        charger_stations.c.site_id == event.site_id,
                        charger_stations.c.charger_id == data.charger_id,
                    )
                )
            ).one()
            if row.updated_at > event.time:
                return  # an older status than the one held
            evses = json.loads(row.evses)
            if data.evse_id is not None:
                evses[str(data.evse_id)] = {"status": data.status, "error_code": data.error_code}
            await conn.execute(
                update(charger_stations)
                .where(
                    charger_stations.c.site_id == event.site_id,
                    charger_stations.c.charger_id == data.charger_id,
                )
                .values(
                    status=data.status if data.evse_id in (None, 0) else row.status,
                    online=data.online,
                    error_code=data.error_code,
                    evses=json.dumps(evses),
                    updated_at=max(event.time, row.updated_at),
                )
            )

    async def _on_command_result(self, event: CloudEvent) -> None:
        result = CommandResult.model_validate(event.data)
        now = self.ctx.clock()
        async with self.ctx.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(charging_commands).where(
                        charging_commands.c.id == result.command_id,
                        charging_commands.c.site_id == event.site_id,
                    )
                )
            ).first()
            if row is None:
                return  # not a charging command (or another site's: ignored)
            if not await self._claim(
                conn,
                event,
                f"command.{result.status}",
                session_id=row.session_id,
                vehicle_id=row.vehicle_id,
            ):
                return
            await conn.execute(
                update(charging_commands)
                .where(charging_commands.c.id == result.command_id)
                .values(
                    status=result.status,
                    detail=result.detail[:256],
                    result=json.dumps(result.result, default=str),
                    updated_at=now,
                )
            )
        log.info(
            "charging.command.result",
            site=event.site_id,
            command_id=result.command_id,
            status=result.status,
        )
        waiter = self._waiters.get(result.command_id)
        if waiter is not None:
            waiter.set()

    # ---- HTTP -----------------------------------------------------------------------
    def router(self) -> APIRouter:
        router = APIRouter(prefix="/charging", tags=["charging"])
        anyone = Depends(require("driver", "operator"))
        operator = Depends(require("operator"))
        listing = Depends(require("operator", "site"))

        def command_response(answer: CommandAnswer) -> JSONResponse:
            return JSONResponse(
                status_code=202 if answer.status == "pending" else 200,
                content=answer.model_dump(mode="json"),
            )

        async def answer_for(command_id: str, wait: float) -> CommandAnswer:
            """Wait for the charger's answer only while the site is reachable: for an
            offline site the command stays queued and the answer says so at once."""
            answer = await self.command(command_id, 0.0)
            assert answer is not None
            site = await presence(self.ctx.cache, answer.site_id)
            if site.online and answer.status == "pending" and wait > 0:
                answer = await self.command(command_id, wait) or answer
            answer.site_online = site.online
            if not site.online and answer.status == "pending":
                answer.detail = (
                    f"{site.describe()}; the command is queued and reaches the site if it "
                    f"comes back before {answer.expires_at.isoformat()}, else it expires"
                )
            return answer

        @router.post(
            "/start",
            status_code=202,
            response_model=CommandAnswer,
            summary="Start charging: a remote start for the site's charger",
            responses={
                200: {"model": CommandAnswer, "description": "the charger answered in time"},
                403: {"description": "not the key's vehicle, or another vehicle's id tag"},
                409: {"description": "charger offline or vehicle already charging"},
            },
        )
        async def start(
            body: StartRequest, wait: Wait = 0.0, principal: Principal = anyone
        ) -> JSONResponse:
            check_vehicle(principal, body.vehicle_id)
            try:
                command_id = await self.start_charging(body)
            except PermissionError as err:
                raise HTTPException(status.HTTP_403_FORBIDDEN, str(err)) from err
            except ValueError as err:
                raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err
            return command_response(await answer_for(command_id, wait))

        @router.post(
            "/stop",
            status_code=202,
            response_model=CommandAnswer,
            summary="Stop charging: a remote stop for the vehicle's or session's charger",
            responses={
                200: {"model": CommandAnswer, "description": "the charger answered in time"},
                403: {"description": "not the key's vehicle or session"},
                404: {"description": "no active session"},
                422: {"description": "neither vehicle_id nor session_id"},
            },
        )
        async def stop(
            body: StopRequest, wait: Wait = 0.0, principal: Principal = anyone
        ) -> JSONResponse:
            if body.session_id is None and body.vehicle_id is not None:
                check_vehicle(principal, body.vehicle_id)
            try:
                command_id = await self.stop_charging(body, principal)
            except ValueError as err:
                raise HTTPException(422, str(err)) from err
            except KeyError as err:
                raise HTTPException(status.HTTP_404_NOT_FOUND, err.args[0]) from err
            return command_response(await answer_for(command_id, wait))

        @router.get(
            "/commands/{command_id}",
            response_model=CommandAnswer,
            summary="A start or stop command's state (long-poll with ?wait=)",
            responses={
                202: {"model": CommandAnswer, "description": "still pending"},
                403: {"description": "a command of another user's vehicle"},
                404: {"description": "no such command"},
            },
        )
        async def get_command(
            command_id: PathId, wait: Wait = 0.0, principal: Principal = anyone
        ) -> JSONResponse:
            if await self.command(command_id, 0.0) is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no command {command_id}")
            if principal.scope != "operator":
                check_vehicle(principal, await self.command_vehicle(command_id))
            return command_response(await answer_for(command_id, wait))

        @router.get(
            "/status/{vehicle_id}",
            response_model=VehicleStatus,
            summary="A vehicle's current session (energy, cost so far) and pending commands",
            responses={403: {"description": "not the key's vehicle"}},
        )
        async def get_status(vehicle_id: PathId, principal: Principal = anyone) -> VehicleStatus:
            check_vehicle(principal, vehicle_id)
            return await self.vehicle_status(vehicle_id)

        @router.get(
            "/history/{vehicle_id}",
            response_model=Page[SessionAnswer],
            summary="A vehicle's finished sessions with energy and cost, newest first",
            responses={
                400: {"description": "invalid cursor"},
                403: {"description": "not the key's vehicle"},
            },
        )
        async def get_history(
            vehicle_id: PathId,
            limit: Limit = 100,
            cursor: Cursor = None,
            principal: Principal = anyone,
        ) -> Page[SessionAnswer]:
            check_vehicle(principal, vehicle_id)
            return await self.history(vehicle_id, limit, cursor)

        @router.get(
            "/sessions",
            response_model=Page[SessionAnswer],
            summary="Sessions of a site or a charger, newest first (operators; a site key: "
            "its own site)",
            responses={
                400: {"description": "invalid cursor"},
                403: {"description": "another site's sessions"},
            },
        )
        async def list_sessions(
            site_id: Annotated[SiteId | None, Query()] = None,
            charger_id: Annotated[ChargerId | None, Query()] = None,
            status_: Annotated[Literal["active", "completed"] | None, Query(alias="status")] = None,
            limit: Limit = 100,
            cursor: Cursor = None,
            principal: Principal = listing,
        ) -> Page[SessionAnswer]:
            if principal.scope == "site":
                if site_id is None:
                    site_id = principal.site_id
                if site_id is None or not principal.may_act_for_site(site_id):
                    raise forbidden(f"the sessions of site {site_id}")
            return await self.sessions(
                limit, cursor, site_id=site_id, charger_id=charger_id, status=status_
            )

        @router.get(
            "/rates",
            response_model=Page[SiteRate],
            summary="Rates per site",
            responses={400: {"description": "invalid cursor"}},
        )
        async def get_rates(
            site_id: Annotated[SiteId | None, Query()] = None,
            limit: Limit = 100,
            cursor: Cursor = None,
            _p: Principal = anyone,
        ) -> Page[SiteRate]:
            return await self.rates(site_id, limit, cursor)

        @router.put(
            "/rates/{site_id}",
            response_model=SiteRate,
            summary="Set a site's rates (operators); the site is sent the new rates",
        )
        async def put_rates(site_id: PathId, body: RateModel, _p: Principal = operator) -> SiteRate:
            return await self.set_rates(site_id, body)

        @router.get(
            "/stations",
            response_model=Page[StationAnswer],
            summary="Chargers and their last known status",
            responses={400: {"description": "invalid cursor"}},
        )
        async def get_stations(
            site_id: Annotated[SiteId | None, Query()] = None,
            limit: Limit = 100,
            cursor: Cursor = None,
            _p: Principal = anyone,
        ) -> Page[StationAnswer]:
            return await self.stations(site_id, limit, cursor)

        @router.put(
            "/id-tags/{id_tag}",
            response_model=IdTagAnswer,
            summary="Register an id tag (an RFID card) to a vehicle (operators): sessions "
            "started with it belong to that vehicle",
            responses={409: {"description": "the tag is registered to another vehicle"}},
        )
        async def put_tag(
            id_tag: Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,36}$")],
            body: IdTagRequest,
            _p: Principal = operator,
        ) -> IdTagAnswer:
            try:
                return await self.register_tag(id_tag, body.vehicle_id)
            except ValueError as err:
                raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err

        @router.delete(
            "/id-tags/{id_tag}",
            status_code=204,
            summary="Unregister an id tag (operators)",
            responses={404: {"description": "no such tag"}},
        )
        async def delete_tag(
            id_tag: Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,36}$")],
            _p: Principal = operator,
        ) -> Response:
            if not await self.unregister_tag(id_tag):
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no id tag {id_tag}")
            return Response(status_code=204)

        @router.get(
            "/id-tags",
            response_model=Page[IdTagAnswer],
            summary="Registered id tags (operators; a driver: those of its vehicle)",
            responses={400: {"description": "invalid cursor"}},
        )
        async def list_tags(
            vehicle_id: Annotated[VehicleId | None, Query()] = None,
            limit: Limit = 100,
            cursor: Cursor = None,
            principal: Principal = anyone,
        ) -> Page[IdTagAnswer]:
            if principal.scope != "operator":
                check_vehicle(principal, vehicle_id, "every vehicle's (give vehicle_id)")
            return await self.tags(vehicle_id, limit, cursor)

        return router


def build(ctx: ServiceContext) -> ChargingService:
    return ChargingService(ctx)
