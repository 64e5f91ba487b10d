"""SQL for the site model: what each change writes, and loading the site at start-up.

Functions that write append statements to a :class:`~edge.storage.sqlite.Unit`; the caller
submits the unit, so one state change and the events it causes commit together.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from common.timestamps import format_timestamp, parse_timestamp
from contract.events import Data, event_row
from edge.core.ids import ChargerId, IdTag, SessionId, uuid7
from edge.core.meter import MeterReading
from edge.core.model import (
    AuthorizationStatus,
    BootStatus,
    Charger,
    ChargerInfo,
    ConnectorStatus,
    Evse,
    Session,
    SessionStatus,
)
from edge.storage.sqlite import Unit

RATES_KEY = "central.rates"  # meta: the rates of central's last ``update_rates``
ID_TAGS_VERSION_KEY = "central.id_tags.version"  # meta: the newest id tag list applied


def parse_iso(text: str | None) -> datetime | None:
    """A time as stored (ours, so UTC even where an old row has no offset)."""
    return None if text is None else parse_timestamp(text, naive_is_utc=True)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def save_charger(unit: Unit, charger: Charger) -> None:
    unit.add(
        "INSERT INTO chargers (id, version, vendor, model, serial, firmware, info, "
        "auto_registered, first_seen, last_seen, last_boot, boot_status) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET "
        "version=excluded.version, vendor=excluded.vendor, model=excluded.model, "
        "serial=excluded.serial, firmware=excluded.firmware, info=excluded.info, "
        "auto_registered=excluded.auto_registered, last_seen=excluded.last_seen, "
        "last_boot=excluded.last_boot, boot_status=excluded.boot_status",
        (
            charger.id,
            charger.version,
            charger.info.vendor,
            charger.info.model,
            charger.info.serial,
            charger.info.firmware,
            _dumps(charger.info.extra),
            int(charger.auto_registered),
            format_timestamp(charger.first_seen) if charger.first_seen else None,
            format_timestamp(charger.last_seen) if charger.last_seen else None,
            format_timestamp(charger.last_boot) if charger.last_boot else None,
            charger.boot_status.value if charger.boot_status else None,
        ),
    )


def touch_charger(unit: Unit, charger: Charger) -> None:
    unit.add(
        "UPDATE chargers SET last_seen=? WHERE id=?",
        (format_timestamp(charger.last_seen) if charger.last_seen else None, charger.id),
    )


def save_evse(unit: Unit, charger_id: ChargerId, evse: Evse) -> None:
    unit.add(
        "INSERT INTO evses (charger_id, evse_id, connector_id, status, error_code, info, "
        "updated_at) VALUES (?,?,?,?,?,?,?) ON CONFLICT(charger_id, evse_id) DO UPDATE SET "
        "connector_id=excluded.connector_id, status=excluded.status, "
        "error_code=excluded.error_code, info=excluded.info, updated_at=excluded.updated_at",
        (
            charger_id,
            evse.evse_id,
            evse.connector_id,
            evse.status.value,
            evse.error_code,
            evse.info,
            format_timestamp(evse.updated_at) if evse.updated_at else None,
        ),
    )


_SESSION_COLUMNS = (
    "id, charger_id, evse_id, connector_id, transaction_id, id_tag, id_tag_status, version, "
    "started_at, stopped_at, meter_start_wh, meter_last_wh, meter_stop_wh, energy_wh, power_w, "
    "soc, last_update, status, stop_reason, reservation_id, orphan, vehicle_id, driver_id, "
    "awaiting_token"
)


def save_session(unit: Unit, session: Session) -> None:
    unit.add(
        f"INSERT OR REPLACE INTO sessions ({_SESSION_COLUMNS}) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            session.id,
            session.charger_id,
            session.evse_id,
            session.connector_id,
            session.transaction_id,
            session.id_tag,
            session.id_tag_status.value,
            session.version,
            format_timestamp(session.started_at),
            format_timestamp(session.stopped_at) if session.stopped_at else None,
            session.meter_start_wh,
            session.meter_last_wh,
            session.meter_stop_wh,
            session.energy_wh,
            session.power_w,
            session.soc,
            format_timestamp(session.last_update) if session.last_update else None,
            session.status.value,
            session.stop_reason,
            session.reservation_id,
            int(session.orphan),
            session.vehicle_id,
            session.driver_id,
            int(session.awaiting_token),
        ),
    )


_METER_COLUMNS = (
    "charger_id", "evse_id", "session_id", "at", "energy_wh", "power_w", "current_a",
    "voltage_v", "soc", "context",
)  # fmt: skip


def add_meter_reading(
    unit: Unit, charger_id: ChargerId, evse_id: int, session_id: SessionId | None, r: MeterReading
) -> None:
    unit.insert(
        "meter_values",
        _METER_COLUMNS,
        (
            charger_id, evse_id, session_id, format_timestamp(r.at), r.energy_wh, r.power_w, r.current_a,
            r.voltage_v, r.soc, r.context,
        ),
    )  # fmt: skip


def add_charger_event(
    unit: Unit, charger_id: ChargerId, at: datetime, kind: str, data: dict[str, Any]
) -> None:
    unit.insert(
        "charger_events",
        ("charger_id", "at", "kind", "data"),
        (charger_id, format_timestamp(at), kind, _dumps(data)),
    )


def add_outbox_event(unit: Unit, data: Data, subject: str | None, at: datetime) -> None:
    """An event for central, in the same transaction as the change that caused it; its
    type and ``data`` as the contract defines them (:mod:`contract.events`).

    ``sequence`` is the table's AUTOINCREMENT key: assigned at commit, never reused, and
    gap-free because a unit commits whole or not at all.
    """
    event_type, fields = event_row(data)
    unit.insert(
        "outbox",
        ("id", "type", "subject", "time", "data"),
        (uuid7(), event_type, subject, format_timestamp(at), _dumps(fields)),
    )


@dataclass(slots=True)
class IdTagEntry:
    """An id tag the site accepts or refuses, and whose it is (central's list says so)."""

    status: AuthorizationStatus
    expires_at: datetime | None
    source: str  # "config" (the site file) or "central"
    vehicle_id: str | None = None
    driver_id: str | None = None


def save_id_tag(unit: Unit, id_tag: IdTag, entry: IdTagEntry) -> None:
    unit.add(
        "INSERT INTO id_tags (id_tag, status, expires_at, source, updated_at, vehicle_id, "
        "driver_id) VALUES (?,?,?,?,?,?,?) ON CONFLICT(id_tag) DO UPDATE SET "
        "status=excluded.status, expires_at=excluded.expires_at, source=excluded.source, "
        "updated_at=excluded.updated_at, vehicle_id=excluded.vehicle_id, "
        "driver_id=excluded.driver_id",
        (
            id_tag,
            entry.status.value,
            format_timestamp(entry.expires_at) if entry.expires_at else None,
            entry.source,
            format_timestamp(datetime.now(UTC)),
            entry.vehicle_id,
            entry.driver_id,
        ),
    )


def forget_id_tags(unit: Unit, id_tags: list[IdTag]) -> None:
    for tag in id_tags:
        unit.add("DELETE FROM id_tags WHERE id_tag = ?", (tag,))


# --- loading -------------------------------------------------------------------------


@dataclass(slots=True)
class Snapshot:
    chargers: dict[ChargerId, Charger] = field(default_factory=dict)
    active_sessions: list[Session] = field(default_factory=list)
    id_tags: dict[IdTag, IdTagEntry] = field(default_factory=dict)
    last_numeric_transaction_id: int = 0
    rates: object = None  # the rates central last pushed (meta ``central.rates``), as sent
    id_tags_version: int = 0  # the newest id tag list central sent that was applied


def row_to_session(row: sqlite3.Row) -> Session:
    return Session(
        id=SessionId(row["id"]),
        charger_id=ChargerId(row["charger_id"]),
        evse_id=row["evse_id"],
        connector_id=row["connector_id"],
        transaction_id=row["transaction_id"],
        id_tag=IdTag(row["id_tag"]) if row["id_tag"] is not None else None,
        id_tag_status=AuthorizationStatus(row["id_tag_status"]),
        version=row["version"],
        started_at=parse_iso(row["started_at"]) or datetime.now(UTC),
        stopped_at=parse_iso(row["stopped_at"]),
        meter_start_wh=row["meter_start_wh"],
        meter_last_wh=row["meter_last_wh"],
        meter_stop_wh=row["meter_stop_wh"],
        power_w=row["power_w"],
        soc=row["soc"],
        last_update=parse_iso(row["last_update"]),
        status=SessionStatus(row["status"]),
        stop_reason=row["stop_reason"],
        reservation_id=row["reservation_id"],
        orphan=bool(row["orphan"]),
        vehicle_id=row["vehicle_id"],
        driver_id=row["driver_id"],
        awaiting_token=bool(row["awaiting_token"]),
    )


def load_snapshot(conn: sqlite3.Connection) -> Snapshot:
    snap = Snapshot()
    for row in conn.execute("SELECT * FROM chargers"):
        charger = Charger(
            id=ChargerId(row["id"]),
            version=row["version"],
            info=ChargerInfo(
                vendor=row["vendor"],
                model=row["model"],
                serial=row["serial"],
                firmware=row["firmware"],
                extra=orjson.loads(row["info"]),
            ),
            first_seen=parse_iso(row["first_seen"]),
            last_seen=parse_iso(row["last_seen"]),
            last_boot=parse_iso(row["last_boot"]),
            boot_status=BootStatus(row["boot_status"]) if row["boot_status"] else None,
            auto_registered=bool(row["auto_registered"]),
        )
        snap.chargers[charger.id] = charger
    for row in conn.execute("SELECT * FROM evses"):
        owner = snap.chargers.get(ChargerId(row["charger_id"]))
        if owner is None:
            continue
        owner.evses[row["evse_id"]] = Evse(
            evse_id=row["evse_id"],
            connector_id=row["connector_id"],
            status=ConnectorStatus(row["status"]),
            error_code=row["error_code"],
            info=row["info"],
            updated_at=parse_iso(row["updated_at"]),
        )
    snap.active_sessions = [
        row_to_session(row)
        for row in conn.execute(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE status = ?",
            (SessionStatus.ACTIVE.value,),
        )
    ]
    # Meter values of running sessions are only appended (the hot path writes one row per
    # message); the session's live figures are folded back from them here.
    for session in snap.active_sessions:
        for row in conn.execute(
            "SELECT at, energy_wh, power_w, soc FROM meter_values WHERE at >= ? AND session_id = ?"
            " ORDER BY id",
            (format_timestamp(session.started_at), session.id),
        ):
            at = parse_iso(row["at"]) or session.started_at
            session.apply(
                MeterReading(
                    at=at, energy_wh=row["energy_wh"], power_w=row["power_w"], soc=row["soc"]
                )
            )
    for row in conn.execute("SELECT * FROM id_tags"):
        snap.id_tags[IdTag(row["id_tag"])] = IdTagEntry(
            status=AuthorizationStatus(row["status"]),
            expires_at=parse_iso(row["expires_at"]),
            source=row["source"],
            vehicle_id=row["vehicle_id"],
            driver_id=row["driver_id"],
        )
    found = conn.execute(
        "SELECT MAX(CAST(transaction_id AS INTEGER)) FROM sessions "
        "WHERE version = 'ocpp1.6' AND transaction_id GLOB '[0-9]*'"
    ).fetchone()[0]
    snap.last_numeric_transaction_id = int(found or 0)
    rates = conn.execute("SELECT value FROM meta WHERE key = ?", (RATES_KEY,)).fetchone()
    snap.rates = orjson.loads(rates[0]) if rates else []
    version = conn.execute(
        "SELECT value FROM meta WHERE key = ?", (ID_TAGS_VERSION_KEY,)
    ).fetchone()
    snap.id_tags_version = int(version[0]) if version and str(version[0]).isdigit() else 0
    return snap


def list_sessions(
    conn: sqlite3.Connection,
    *,
    status: str | None = None,
    charger_id: str | None = None,
    id_tag: str | None = None,
    limit: int = 50,
    before: str | None = None,
) -> list[Session]:
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("status", status), ("charger_id", charger_id), ("id_tag", id_tag)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if before is not None:
        where.append("started_at < ?")
        params.append(before)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = conn.execute(
        f"SELECT {_SESSION_COLUMNS} FROM sessions {clause} ORDER BY started_at DESC LIMIT ?",
        (*params, limit),
    )
    return [row_to_session(row) for row in rows]


def get_session(conn: sqlite3.Connection, session_id: str) -> Session | None:
    row = conn.execute(f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id = ?", (session_id,))
    found = row.fetchone()
    return row_to_session(found) if found else None


def find_session_by_start(
    conn: sqlite3.Connection, charger_id: str, connector_id: int, id_tag: str, started_at: datetime
) -> Session | None:
    row = conn.execute(
        f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE charger_id=? AND connector_id=? "
        "AND id_tag=? AND started_at=?",
        (charger_id, connector_id, id_tag, format_timestamp(started_at)),
    ).fetchone()
    return row_to_session(row) if row else None


def find_session_by_transaction(
    conn: sqlite3.Connection, charger_id: str, transaction_id: str
) -> Session | None:
    row = conn.execute(
        f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE charger_id=? AND transaction_id=?",
        (charger_id, transaction_id),
    ).fetchone()
    return row_to_session(row) if row else None


def session_meter_values(conn: sqlite3.Connection, session: Session) -> list[dict[str, Any]]:
    """A session's meter values, found through the time index (meter values have no index
    by session: with every charger writing at once it would cost a page per row)."""
    rows = conn.execute(
        "SELECT at, energy_wh, power_w, current_a, voltage_v, soc FROM meter_values "
        "WHERE at >= ? AND at <= ? AND session_id = ? ORDER BY id",
        (
            format_timestamp(session.started_at),
            format_timestamp(session.stopped_at) if session.stopped_at else "9999",
            session.id,
        ),
    )
    return [dict(row) for row in rows]


def charger_events(conn: sqlite3.Connection, charger_id: str, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT at, kind, data FROM charger_events WHERE charger_id = ? ORDER BY id DESC LIMIT ?",
        (charger_id, limit),
    )
    return [{"at": r["at"], "kind": r["kind"], "data": orjson.loads(r["data"])} for r in rows]


def outbox_rows(conn: sqlite3.Connection, after: int, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT sequence, id, type, subject, time, data FROM outbox WHERE sequence > ? "
        "ORDER BY sequence LIMIT ?",
        (after, limit),
    )
    return [{**dict(r), "data": orjson.loads(r["data"])} for r in rows]
