"""Reservation rules (plain code, no I/O, the clock passed in).

* A reservation holds one slot for ``[starts_at, ends_at)``; two live reservations of a
  slot never overlap (no double booking), nor two of one vehicle.
* Live statuses: ``booked`` (central accepted it, the site is being told), ``confirmed``
  (the site holds it), ``active`` (the vehicle arrived). Final: ``completed``,
  ``cancelled``, ``expired``, ``rejected`` (the site refused it).
* An unused reservation expires ``hold`` after its start (the vehicle did not come), and
  any unused one at its end.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

ReservationStatus = Literal[
    "booked", "confirmed", "active", "completed", "cancelled", "expired", "rejected"
]
LIVE: frozenset[str] = frozenset({"booked", "confirmed", "active"})
UNUSED: frozenset[str] = frozenset({"booked", "confirmed"})
SlotState = Literal["free", "occupied", "unknown"]

MAX_ADVANCE = timedelta(days=90)
MIN_DURATION = timedelta(minutes=5)
NOW_TOLERANCE = timedelta(minutes=5)


class ReservationError(ValueError):
    """The request cannot be booked; the message says why."""


class InvalidWindow(ReservationError):
    pass


class NoSlotAvailable(ReservationError):
    pass


class VehicleAlreadyBooked(ReservationError):
    pass


@dataclass(frozen=True)
class Slot:
    slot_id: str
    slot_type: str
    state: SlotState = "unknown"
    out_of_service: bool = False


@dataclass(frozen=True)
class Booking:
    reservation_id: str
    slot_id: str
    vehicle_id: str
    starts_at: datetime
    ends_at: datetime
    status: str


@dataclass(frozen=True)
class Request:
    vehicle_id: str
    starts_at: datetime
    ends_at: datetime
    slot_id: str | None = None
    slot_type: str | None = None


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    return a_start < b_end and b_start < a_end


def check_window(starts_at: datetime, ends_at: datetime, now: datetime, max_hours: int) -> None:
    if starts_at < now - NOW_TOLERANCE:
        raise InvalidWindow("starts_at is in the past")
    if starts_at > now + MAX_ADVANCE:
        raise InvalidWindow(f"reservations open at most {MAX_ADVANCE.days} days ahead")
    if ends_at - starts_at < MIN_DURATION:
        raise InvalidWindow("ends_at must be at least 5 minutes after starts_at")
    if ends_at - starts_at > timedelta(hours=max_hours):
        raise InvalidWindow(f"a reservation lasts at most {max_hours} hours")


def choose_slot(
    request: Request,
    slots: Sequence[Slot],
    bookings: Iterable[Booking],
    vehicle_bookings: Iterable[Booking],
    now: datetime,
) -> Slot:
    """The slot to book, or the reason there is none."""
    for booking in vehicle_bookings:
        if booking.status in LIVE and overlaps(
            booking.starts_at, booking.ends_at, request.starts_at, request.ends_at
        ):
            raise VehicleAlreadyBooked(
                f"vehicle {request.vehicle_id} already holds reservation "
                f"{booking.reservation_id} in that time"
            )
    if request.slot_id is not None:
        candidates = [s for s in slots if s.slot_id == request.slot_id]
        if not candidates:
            raise NoSlotAvailable(f"no slot {request.slot_id} at this site")
        if request.slot_type is not None and candidates[0].slot_type != request.slot_type:
            raise NoSlotAvailable(
                f"slot {request.slot_id} is {candidates[0].slot_type}, not {request.slot_type}"
            )
    elif request.slot_type is not None:
        candidates = [s for s in slots if s.slot_type == request.slot_type]
        if not candidates:
            raise NoSlotAvailable(f"no {request.slot_type} slots at this site")
    else:
        candidates = list(slots)
    taken = {
        b.slot_id
        for b in bookings
        if b.status in LIVE and overlaps(b.starts_at, b.ends_at, request.starts_at, request.ends_at)
    }
    starts_now = request.starts_at <= now + NOW_TOLERANCE
    free = [
        s
        for s in candidates
        if not s.out_of_service
        and s.slot_id not in taken
        and not (starts_now and s.state == "occupied")
    ]
    if not free:
        what = request.slot_id or request.slot_type or "slot"
        raise NoSlotAvailable(f"no {what} is free for that time")
    # prefer slots known to be free, then by id: deterministic
    return sorted(free, key=lambda s: (s.state != "free", s.slot_id))[0]


def is_due_for_expiry(booking: Booking, now: datetime, hold: timedelta) -> bool:
    if booking.status not in UNUSED:
        return False
    return now >= booking.starts_at + hold or now >= booking.ends_at


@dataclass(frozen=True)
class TypeCounts:
    slot_type: str
    total: int
    free: int
    occupied: int
    reserved: int
    out_of_service: int
    unknown: int


def status_by_type(
    slots: Sequence[Slot], bookings: Iterable[Booking], now: datetime
) -> list[TypeCounts]:
    """Counts per slot type now: a slot is reserved when a live reservation covers now and
    the vehicle has not arrived; occupied and out-of-service win over reserved."""
    reserved_now = {
        b.slot_id for b in bookings if b.status in UNUSED and b.starts_at <= now < b.ends_at
    }
    out: dict[str, dict[str, int]] = {}
    for slot in slots:
        counts = out.setdefault(
            slot.slot_type,
            {
                "total": 0,
                "free": 0,
                "occupied": 0,
                "reserved": 0,
                "out_of_service": 0,
                "unknown": 0,
            },
        )
        counts["total"] += 1
        if slot.out_of_service:
            counts["out_of_service"] += 1
        elif slot.state == "occupied":
            counts["occupied"] += 1
        elif slot.slot_id in reserved_now:
            counts["reserved"] += 1
        elif slot.state == "free":
            counts["free"] += 1
        else:
            counts["unknown"] += 1
    return [TypeCounts(slot_type=t, **c) for t, c in sorted(out.items())]


def status_after_release(reason: str) -> ReservationStatus:
    """The final status a site's ``parking.released`` reason maps to."""
    reason = reason.lower()
    if "expire" in reason or "no_show" in reason or "timeout" in reason:
        return "expired"
    if reason in {"used", "completed", "departed", "vacated", "finished"}:
        return "completed"
    if "reject" in reason:
        return "rejected"
    return "cancelled"
