"""Reservations central books, releases and expires itself.

Each change is one transaction over the service's tables (:mod:`central.parking.store`),
decided by the rules (:mod:`central.parking.reservations`). Only after it commits is the
site told, by a command (:mod:`central.site_commands`), so a site never hears of a
reservation central rolled back; then the cached status is dropped. The site's answer
comes back as a ``command.result`` event (:mod:`central.parking.events`).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import structlog

from central.context import ServiceContext
from central.parking import reservations as rules
from central.parking import store
from central.parking.schema import Reservation, ReserveRequest
from central.site_commands import new_command, send_command

log = structlog.get_logger("central.parking")


def _window(body: ReserveRequest, now: datetime) -> tuple[datetime, datetime]:
    """The asked-for ``[starts_at, ends_at)``, unchecked."""
    starts_at = body.starts_at or now
    if body.ends_at is not None:
        return starts_at, body.ends_at
    assert body.duration_minutes is not None  # the request's validator: one of the two
    try:
        return starts_at, starts_at + timedelta(minutes=body.duration_minutes)
    except OverflowError as err:
        raise rules.InvalidWindow("the time window is out of range") from err


class Bookings:
    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def _ttl(self, now: datetime, ends_at: datetime) -> float:
        """Reservation commands matter until the reservation ends (a site may be offline
        for hours), and at least ``command_ttl_s``."""
        return max(float(self._ctx.settings.command_ttl_s), (ends_at - now).total_seconds())

    async def reserve(self, body: ReserveRequest, driver_id: str | None = None) -> Reservation:
        """Book a slot for ``driver_id`` (the caller; None for an operator); the site is
        told the driver with the reservation. :class:`KeyError` for a site without
        slots, a :class:`~central.parking.reservations.ReservationError` when the rules
        say no."""
        now = self._ctx.clock()
        starts_at, ends_at = _window(body, now)
        rules.check_window(starts_at, ends_at, now, self._ctx.settings.max_reservation_hours)
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
                "driver_id": driver_id,
                # the tag an EV slot's charger is reserved for (OCPP 1.6 holds 20 characters)
                "id_tag": body.vehicle_id[:20],
                "starts_at": starts_at.isoformat(),
                "ends_at": ends_at.isoformat(),
            },
            now,
            self._ttl(now, ends_at),
        )
        async with self._ctx.engine.begin() as conn:
            if not await store.lock_site(conn, body.site_id):
                raise KeyError(f"no site {body.site_id} with slots")
            slot = rules.choose_slot(
                request,
                await store.site_slots(conn, body.site_id),
                await store.live_bookings(conn, starts_at, site_id=body.site_id),
                await store.live_bookings(conn, starts_at, vehicle_id=body.vehicle_id),
                now,
            )
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
            await store.insert_reservation(conn, values)
            await store.record_own(conn, "booked", now, values)
        await send_command(self._ctx.bus, command)
        await store.forget_status(self._ctx.cache, body.site_id)
        log.info(
            "parking.reservation.booked",
            site=body.site_id,
            reservation_id=reservation_id,
            slot=slot.slot_id,
        )
        return Reservation.model_validate(values)

    async def release(self, reservation_id: str) -> Reservation:
        """End a live reservation: cancelled before the vehicle came, completed after;
        :class:`KeyError` for an unknown one, a ``ReservationError`` for an ended one."""
        now = self._ctx.clock()
        async with self._ctx.engine.begin() as conn:
            row = await store.reservation(conn, reservation_id)
            if row is None:
                raise KeyError(f"no reservation {reservation_id}")
            if row.status not in rules.LIVE:
                raise rules.ReservationError(
                    f"reservation {reservation_id} is already {row.status}"
                )
            new_status: rules.ReservationStatus = (
                "completed" if row.status == "active" else "cancelled"
            )
            await store.set_status(
                conn, reservation_id, new_status, now, detail="released by the driver"
            )
            await store.record_own(conn, "released", now, row._mapping)
        await self._cancel_at_site(row, now, {})
        log.info("parking.reservation.released", site=row.site_id, reservation_id=reservation_id)
        async with self._ctx.engine.connect() as conn:
            return Reservation.of_row(await store.reservation(conn, reservation_id))

    async def expire_due(self) -> int:
        """Expire unused reservations past their hold; tell their sites. Returns how many
        were due, counting any that another transaction ended meanwhile."""
        now = self._ctx.clock()
        default_hold = timedelta(minutes=self._ctx.settings.reservation_hold_minutes)
        async with self._ctx.engine.connect() as conn:
            holds = await store.lot_holds(conn)
            candidates = await store.started_unused(conn, now)
        due = [
            row
            for row in candidates
            if rules.is_due_for_expiry(
                store.booking(row),
                now,
                timedelta(minutes=holds[row.site_id]) if row.site_id in holds else default_hold,
            )
        ]
        for row in due:
            async with self._ctx.engine.begin() as conn:
                expired = await store.set_status(
                    conn, row.id, "expired", now, detail="not used in time", only_from=rules.UNUSED
                )
                if not expired:
                    continue
                await store.record_own(conn, "expired", now, row._mapping)
            await self._cancel_at_site(row, now, {"reason": "expired"})
            log.info("parking.reservation.expired", site=row.site_id, reservation_id=row.id)
        return len(due)

    async def _cancel_at_site(self, row: Any, now: datetime, extra: dict[str, Any]) -> None:
        """Tell the site to drop reservation ``row``, and drop the cached status."""
        await send_command(
            self._ctx.bus,
            new_command(
                row.site_id,
                "cancel_reservation",
                {"reservation_id": row.id, **extra},
                now,
                self._ttl(now, row.ends_at),
            ),
        )
        await store.forget_status(self._ctx.cache, row.site_id)
