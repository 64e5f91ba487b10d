"""What the parking service does with the sites' events.

It consumes, as durable consumer ``parking``, from ``parking.events``: ``parking.reserved``,
``parking.released``, ``parking.occupied``, ``parking.vacated``, ``parking.condition`` and
``sensor.status``; from ``charging.events``: ``command.result``, the sites' answers to its
reservation commands. It publishes no events: it tells sites what to do through commands
(:mod:`central.parking.bookings`).

Each event's ``data`` is read through the contract (:func:`contract.events.parse_data`);
a field the contract leaves optional and a handler cannot do without is required here
(:func:`_required`), and an event without it is dropped like one that does not fit its
type (:func:`central.event_routing.dispatch`). Every handler is idempotent: it records the
event id in ``parking_history`` first (:func:`central.parking.store.record`) and stops if
it was there. Any handled event drops the site's cached status.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final, Literal, TypeVar

import structlog
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from central.context import ServiceContext
from central.event_routing import EventHandler, dispatch
from central.infra.shared_transaction import SharedTransaction
from central.parking import reservations as rules
from central.parking import store
from central.reported_times import anchor, reported_seconds
from contract.envelope import CHARGING_TOPIC, PARKING_TOPIC, CloudEvent
from contract.events import (
    CommandResultData,
    ParkingCondition,
    ParkingOccupied,
    ParkingReleased,
    ParkingReserved,
    ParkingVacated,
    SensorStatus,
    parse_data,
)

log = structlog.get_logger("central.parking")

TOPICS: Final = (PARKING_TOPIC, CHARGING_TOPIC)
DURABLE: Final = "parking"

T = TypeVar("T")


def _required(value: T | None, field: str, event: CloudEvent) -> T:
    """``value`` of ``field``, which the contract leaves optional and the handler needs;
    when it is missing the event is invalid, as if its type required it."""
    if value is None:
        raise ValidationError.from_exception_data(
            event.type, [{"type": "missing", "loc": (field,), "input": event.data}]
        )
    return value


class ParkingEvents:
    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self._clock_policy = ctx.settings.reported_times.policy()
        self._tx = SharedTransaction(ctx.engine, "parking")
        self._handlers: dict[str, EventHandler] = {
            ParkingReserved.TYPE: self._on_reserved,
            ParkingReleased.TYPE: self._on_released,
            ParkingOccupied.TYPE: self._on_occupied,
            ParkingVacated.TYPE: self._on_vacated,
            ParkingCondition.TYPE: self._on_condition,
            SensorStatus.TYPE: self._on_sensor,
            CommandResultData.TYPE: self._on_command_result,
        }

    @property
    def types(self) -> frozenset[str]:
        """The event types it handles: the bus hands it no others."""
        return frozenset(self._handlers)

    async def handle(self, event: CloudEvent) -> None:
        """The bus's entry: run the event type's handler; ignore the types not consumed."""
        await self.handle_batch((event,))

    async def handle_batch(self, events: Sequence[CloudEvent]) -> None:
        """The bus's entry for several events, in order, in one transaction; the cached
        status of each site they changed is dropped once, after them all."""
        changed: set[str] = set()
        async with self._tx.batch():
            for event in events:
                if await dispatch(event, self._handlers, "parking"):
                    changed.add(event.site_id)
        await store.forget_status(self._ctx.cache, *sorted(changed))

    async def _claim(
        self, conn: AsyncConnection, event: CloudEvent, kind: str, **fields: Any
    ) -> bool:
        """Record the event in the history; False when it was handled before."""
        return await store.record(
            conn, event.id, event.site_id, kind, event.time, data=event.data, **fields
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

    async def _on_reserved(self, event: CloudEvent) -> None:
        """The site holds a slot: central's booking confirmed, or one made at the site."""
        data = parse_data(ParkingReserved, event)
        # a reservation made at the site becomes a row that needs all three
        vehicle_id = _required(data.vehicle_id, "vehicle_id", event)
        starts_at = _required(data.starts_at, "starts_at", event)
        ends_at = _required(data.ends_at, "ends_at", event)
        now = self._ctx.clock()
        async with self._tx.begin() as conn:
            if not await self._claim(
                conn,
                event,
                "reserved",
                slot_id=data.slot_id,
                vehicle_id=vehicle_id,
                reservation_id=data.reservation_id,
            ):
                return
            await store.upsert_slot(
                conn, event.site_id, data.slot_id, now, slot_type=data.slot_type
            )
            row = await store.reservation(conn, data.reservation_id)
            if row is None:
                values = {
                    "id": data.reservation_id,
                    "site_id": event.site_id,
                    "slot_id": data.slot_id,
                    "slot_type": await store.slot_type_of(conn, event.site_id, data.slot_id),
                    "vehicle_id": vehicle_id,
                    "starts_at": starts_at,
                    "ends_at": ends_at,
                    "status": "confirmed",
                    "origin": "site",
                    "command_id": data.command_id,
                    "detail": "reserved at the site",
                    "created_at": now,
                    "updated_at": now,
                }
                await store.insert_reservation(conn, values)
            elif row.site_id == event.site_id and row.status == "booked":
                await store.set_status(
                    conn, data.reservation_id, "confirmed", now, slot_id=data.slot_id
                )
        log.info(
            "parking.reservation.confirmed", site=event.site_id, reservation_id=data.reservation_id
        )

    async def _on_released(self, event: CloudEvent) -> None:
        data = parse_data(ParkingReleased, event)
        now = self._ctx.clock()
        final = rules.status_after_release(data.reason)
        async with self._tx.begin() as conn:
            row = await store.reservation(conn, data.reservation_id, event.site_id)
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
                await store.set_status(
                    conn, data.reservation_id, final, now, detail=data.reason or "released"
                )

    async def _on_occupied(self, event: CloudEvent) -> None:
        data = parse_data(ParkingOccupied, event)
        now = self._ctx.clock()
        at = self._placed(event, data.arrived_at or event.time, now)
        async with self._tx.begin() as conn:
            if data.reservation_id:
                reservation = await store.reservation(conn, data.reservation_id, event.site_id)
            else:
                reservation = await store.unused_reservation_at(
                    conn, event.site_id, data.slot_id, at
                )
            if not await self._visit(conn, event, data, "occupied", at, now, reservation):
                return
            if reservation is not None and reservation.status in rules.UNUSED:
                await store.set_status(
                    conn, reservation.id, "active", now, detail="vehicle arrived"
                )

    async def _on_vacated(self, event: CloudEvent) -> None:
        data = parse_data(ParkingVacated, event)
        now = self._ctx.clock()
        at = self._placed(event, data.departed_at or event.time, now)
        async with self._tx.begin() as conn:
            active = await store.active_reservation(conn, event.site_id, data.slot_id)
            duration_s = reported_seconds(data.duration_s)
            if not await self._visit(conn, event, data, "free", at, now, active, duration_s):
                return
            if active is not None:
                await store.set_status(conn, active.id, "completed", now, detail="vehicle left")

    async def _visit(
        self,
        conn: AsyncConnection,
        event: CloudEvent,
        data: ParkingOccupied | ParkingVacated,
        state: Literal["occupied", "free"],
        at: datetime,
        now: datetime,
        reservation: Any,
        duration_s: int | None = None,
    ) -> bool:
        """Claim a vehicle's arrival or departure (``reservation``: the one it used, or
        None) and put the slot in ``state`` as of ``at``; False when handled before."""
        if not await self._claim(
            conn,
            event,
            "occupied" if state == "occupied" else "vacated",
            slot_id=data.slot_id,
            vehicle_id=reservation.vehicle_id if reservation else None,
            reservation_id=reservation.id if reservation else None,
            duration_s=duration_s,
        ):
            return False
        await store.upsert_slot(
            conn,
            event.site_id,
            data.slot_id,
            now,
            slot_type=data.slot_type,
            state=state,
            changed_at=at,
        )
        return True

    async def _on_condition(self, event: CloudEvent) -> None:
        data = parse_data(ParkingCondition, event)
        async with self._tx.begin() as conn:
            await self._claim(conn, event, f"condition.{data.condition}"[:32], slot_id=data.slot_id)

    async def _on_sensor(self, event: CloudEvent) -> None:
        data = parse_data(SensorStatus, event)
        now = self._ctx.clock()
        async with self._tx.begin() as conn:
            if not await self._claim(conn, event, "sensor", slot_id=data.slot_id):
                return
            if data.slot_id:
                await store.set_sensor_online(conn, event.site_id, data.slot_id, data.online, now)

    async def _on_command_result(self, event: CloudEvent) -> None:
        """A site's answer to a reservation command: a booking confirmed or rejected."""
        result = parse_data(CommandResultData, event)
        if result.command_type not in ("reserve", "cancel_reservation"):
            return
        now = self._ctx.clock()
        async with self._tx.begin() as conn:
            row = await store.reservation_of_command(conn, event.site_id, result.command_id)
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
                await store.set_status(
                    conn, row.id, "confirmed", now, detail="the site holds the slot"
                )
            elif result.status != "accepted" and row.status in rules.UNUSED:
                detail = result.detail or f"site answered {result.status}"
                await store.set_status(conn, row.id, "rejected", now, detail=detail)
