"""SQL for the slot model: visits, out-of-service flags and reservations.

Visits are written from the model's outputs in the same unit as the events for central;
at start-up the open visits, flags and live reservations are read back so the model
carries on where it stopped.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime

from common.timestamps import format_timestamp
from edge.core.ids import SessionId, SlotId, ocpp_reservation_id
from edge.core.model import Subject
from edge.core.slots.events import SlotOutput, VisitEnded, VisitSessionLinked, VisitStarted
from edge.core.slots.machine import Visit
from edge.core.slots.values import ReservationId, VisitId
from edge.storage.site_sql import parse_iso
from edge.storage.sqlite import Unit


@dataclass(slots=True)
class SavedSlots:
    open_visits: list[Visit] = field(default_factory=list)
    out_of_service: dict[SlotId, str] = field(default_factory=dict)
    reservations: dict[SlotId, tuple[ReservationId, datetime | None]] = field(default_factory=dict)
    # who each live or in-use reservation is for (the visit that uses one names them)
    subjects: dict[ReservationId, Subject] = field(default_factory=dict)


def record_outputs(unit: Unit, outputs: list[SlotOutput]) -> None:
    for output in outputs:
        match output:
            case VisitStarted():
                unit.add(
                    "INSERT OR IGNORE INTO visits (visit_id, slot_id, arrived_at, reservation_id) "
                    "VALUES (?,?,?,?)",
                    (
                        output.visit_id,
                        output.slot_id,
                        format_timestamp(output.arrived_at),
                        output.reservation_id,
                    ),
                )
                if output.reservation_id is not None:
                    unit.add(
                        "UPDATE reservations SET status='used', updated_at=? WHERE reservation_id=?",
                        (format_timestamp(output.arrived_at), output.reservation_id),
                    )
            case VisitEnded():
                unit.add(
                    "UPDATE visits SET departed_at=?, duration_s=?, session_id=COALESCE(?, session_id)"
                    " WHERE visit_id=?",
                    (
                        format_timestamp(output.departed_at),
                        output.duration.total_seconds(),
                        output.session_id,
                        output.visit_id,
                    ),
                )
            case VisitSessionLinked():
                unit.add(
                    "UPDATE visits SET session_id=?, plugged=1 WHERE visit_id=?",
                    (output.session_id, output.visit_id),
                )
            case _:
                pass


def save_out_of_service(unit: Unit, slot_id: SlotId, on: bool, reason: str, at: datetime) -> None:
    unit.add(
        "INSERT INTO slot_flags (slot_id, out_of_service, reason, updated_at) VALUES (?,?,?,?) "
        "ON CONFLICT(slot_id) DO UPDATE SET out_of_service=excluded.out_of_service, "
        "reason=excluded.reason, updated_at=excluded.updated_at",
        (slot_id, int(on), reason, format_timestamp(at)),
    )


def save_reservation(
    unit: Unit,
    slot_id: SlotId,
    reservation_id: str,
    until: datetime | None,
    at: datetime,
    *,
    cancelled: bool = False,
    subject: Subject | None = None,
) -> None:
    if cancelled:
        unit.add(
            "UPDATE reservations SET status='cancelled', updated_at=? WHERE reservation_id=?",
            (format_timestamp(at), reservation_id),
        )
        return
    subject = subject or Subject()
    unit.add(
        "INSERT INTO reservations (reservation_id, slot_id, until, status, updated_at, "
        "vehicle_id, driver_id, id_tag) VALUES (?,?,?,'active',?,?,?,?) "
        "ON CONFLICT(reservation_id) DO UPDATE SET slot_id=excluded.slot_id, "
        "until=excluded.until, status='active', updated_at=excluded.updated_at, "
        "vehicle_id=excluded.vehicle_id, driver_id=excluded.driver_id, id_tag=excluded.id_tag",
        (
            reservation_id, slot_id, format_timestamp(until) if until else None,
            format_timestamp(at), subject.vehicle_id, subject.driver_id, subject.id_tag,
        ),
    )  # fmt: skip


def load_slot_state(conn: sqlite3.Connection) -> SavedSlots:
    saved = SavedSlots()
    for row in conn.execute("SELECT * FROM visits WHERE departed_at IS NULL"):
        saved.open_visits.append(
            Visit(
                visit_id=VisitId(row["visit_id"]),
                slot_id=SlotId(row["slot_id"]),
                arrived_at=parse_iso(row["arrived_at"]) or datetime.now(UTC),
                reservation_id=ReservationId(row["reservation_id"])
                if row["reservation_id"]
                else None,
                session_id=SessionId(row["session_id"]) if row["session_id"] else None,
                plugged=bool(row["plugged"]),
            )
        )
    for row in conn.execute("SELECT slot_id, reason FROM slot_flags WHERE out_of_service = 1"):
        saved.out_of_service[SlotId(row["slot_id"])] = row["reason"]
    now = datetime.now(UTC)
    for row in conn.execute(
        "SELECT reservation_id, slot_id, until FROM reservations WHERE status='active'"
    ):
        until = parse_iso(row["until"])
        if until is None or until > now:
            saved.reservations[SlotId(row["slot_id"])] = (
                ReservationId(row["reservation_id"]),
                until,
            )
    for row in conn.execute(
        "SELECT reservation_id, vehicle_id, driver_id, id_tag FROM reservations "
        "WHERE status = 'active' OR reservation_id IN "
        "(SELECT reservation_id FROM visits WHERE departed_at IS NULL)"
    ):
        saved.subjects[ReservationId(row["reservation_id"])] = Subject(
            row["vehicle_id"], row["driver_id"], row["id_tag"]
        )
    return saved


def reservation_ends(conn: sqlite3.Connection, ocpp_ids: set[int]) -> dict[int, datetime]:
    """When the reservations behind these OCPP reservation ids end (the booked
    departure), for the ones that name an end; cancelled ones are left out."""
    rows = conn.execute(
        "SELECT reservation_id, until FROM reservations "
        "WHERE until IS NOT NULL AND status != 'cancelled'"
    ).fetchall()
    found: dict[int, datetime] = {}
    for reservation_id, until in rows:
        key = ocpp_reservation_id(str(reservation_id))
        end = parse_iso(until)
        if key in ocpp_ids and end is not None:
            found[key] = end
    return found
