"""SQL of chargers' firmware updates (table ``firmware_updates``, migration 9)."""

from __future__ import annotations

import sqlite3
from typing import Any

from common.timestamps import format_timestamp, parse_timestamp
from edge.core.firmware import FirmwareState, FirmwareUpdate
from edge.storage.site_sql import parse_iso
from edge.storage.sqlite import Unit

_COLUMNS = (
    "charger_id", "request_id", "location", "signed", "answer", "requested_at", "updated_at",
    "from_version", "retrieve_at", "state", "status", "to_version",
)  # fmt: skip


def save_update(unit: Unit, update: FirmwareUpdate) -> None:
    """Insert or replace one update (a charger's request ids are unique per update)."""
    retrieve_at = format_timestamp(update.retrieve_at) if update.retrieve_at else None
    unit.add(
        f"INSERT OR REPLACE INTO firmware_updates ({', '.join(_COLUMNS)}) "
        f"VALUES ({','.join('?' * len(_COLUMNS))})",
        (
            update.charger_id, update.request_id, update.location, int(update.signed),
            update.answer, format_timestamp(update.requested_at),
            format_timestamp(update.updated_at), update.from_version, retrieve_at,
            update.state.value, update.status, update.to_version,
        ),
    )  # fmt: skip


def _update(row: sqlite3.Row) -> FirmwareUpdate:
    return FirmwareUpdate(
        charger_id=row["charger_id"],
        request_id=row["request_id"],
        location=row["location"],
        signed=bool(row["signed"]),
        answer=row["answer"],
        requested_at=parse_timestamp(row["requested_at"]),
        updated_at=parse_timestamp(row["updated_at"]),
        from_version=row["from_version"],
        retrieve_at=parse_iso(row["retrieve_at"]),
        state=FirmwareState(row["state"]),
        status=row["status"],
        to_version=row["to_version"],
    )


def current_updates(conn: sqlite3.Connection) -> dict[str, FirmwareUpdate]:
    """Each charger's latest update (the last requested)."""
    rows = conn.execute("SELECT * FROM firmware_updates ORDER BY requested_at, rowid").fetchall()
    return {row["charger_id"]: _update(row) for row in rows}


def last_request_ids(conn: sqlite3.Connection) -> dict[str, int]:
    """The highest request id used so far with each charger."""
    rows = conn.execute(
        "SELECT charger_id, MAX(request_id) FROM firmware_updates GROUP BY charger_id"
    ).fetchall()
    return {row[0]: int(row[1]) for row in rows}


def updates_of(conn: sqlite3.Connection, charger_id: str, limit: int) -> list[dict[str, Any]]:
    """A charger's updates, newest first, as stored (for its history)."""
    rows = conn.execute(
        "SELECT * FROM firmware_updates WHERE charger_id = ? "
        "ORDER BY requested_at DESC, rowid DESC LIMIT ?",
        (charger_id, limit),
    ).fetchall()
    return [dict(row) for row in rows]
