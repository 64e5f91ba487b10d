"""SQL of the sync: reading the outbox in order, the acknowledged sequence, received
commands. The outbox itself is written by every state change (``repository``)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from common.timestamps import format_timestamp
from contract.envelope import SPEC_VERSION
from contract.events import dataschema
from edge.storage.site_sql import parse_iso
from edge.storage.sqlite import Unit

ACKED_KEY = "sync.acked_sequence"
# set by an offline restore: the restored outbox's last sequence, until central is asked
UNFENCED_KEY = "sync.restored_unfenced"


@dataclass(frozen=True, slots=True)
class OutboxState:
    acked: int  # highest sequence central confirmed
    last: int  # highest sequence written
    oldest_unacked_time: str | None

    @property
    def backlog(self) -> int:
        return max(0, self.last - self.acked)


def outbox_state(conn: sqlite3.Connection) -> OutboxState:
    acked = acked_sequence(conn)
    last = conn.execute("SELECT COALESCE(MAX(sequence), 0) FROM outbox").fetchone()[0]
    # AUTOINCREMENT keeps counting after rows were pruned
    seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
    last = max(int(last), int(seq[0]) if seq else 0)
    oldest = conn.execute(
        "SELECT time FROM outbox WHERE sequence > ? ORDER BY sequence LIMIT 1", (acked,)
    ).fetchone()
    return OutboxState(acked, last, oldest[0] if oldest else None)


def acked_sequence(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (ACKED_KEY,)).fetchone()
    return int(row[0]) if row else 0


def batch_json(
    conn: sqlite3.Connection, site_source: str, after: int, limit: int
) -> tuple[bytes, int, int]:
    """The next events after ``after`` as an EventBatch body: (body, count, last sequence).

    Built as text from the stored JSON (the ``data`` column is already JSON), so a
    backlog of many thousands drains without decoding and re-encoding every event.
    """
    rows = conn.execute(
        "SELECT sequence, id, type, subject, time, data FROM outbox WHERE sequence > ? "
        "ORDER BY sequence LIMIT ?",
        (after, limit),
    ).fetchall()
    # the envelope of contract.envelope.CloudEvent, written out (a test reads it back)
    source = orjson.dumps(site_source).decode()
    parts = [
        f'{{"specversion":"{SPEC_VERSION}","id":{orjson.dumps(row[1]).decode()},'
        f'"source":{source},"type":{orjson.dumps(row[2]).decode()},'
        f'"time":{orjson.dumps(row[4]).decode()},"subject":{orjson.dumps(row[3]).decode()},'
        f'"dataschema":{orjson.dumps(dataschema(row[2])).decode()},'
        f'"datacontenttype":"application/json","sequence":{int(row[0])},"data":{row[5]}}}'
        for row in rows
    ]
    body = ('{"events":[' + ",".join(parts) + "]}").encode()
    return body, len(rows), rows[-1][0] if rows else after


def unfenced_restore(conn: sqlite3.Connection) -> int | None:
    """The last sequence of a backup restored without asking central, until it is fenced."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (UNFENCED_KEY,)).fetchone()
    return int(row[0]) if row else None


def mark_unfenced(conn: sqlite3.Connection, restored_last: int) -> None:
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (UNFENCED_KEY, str(restored_last)),
    )


def fence_restored(unit: Unit, restored_last: int, central_last: int) -> None:
    """Move the events written since an offline restore past what central holds.

    Central holds events up to ``central_last`` that the restored database never wrote;
    the site's events since the restore were numbered from ``restored_last`` on and
    would claim those sequences (central refuses them). They keep their order and ids.
    """
    shift = central_last - restored_last
    if shift > 0:
        # through negative keys: a shift smaller than the rows moved would collide
        unit.add("UPDATE outbox SET sequence = -sequence WHERE sequence > ?", (restored_last,))
        unit.add("UPDATE outbox SET sequence = ? - sequence WHERE sequence < 0", (shift,))
        continue_after(unit, central_last)
    unit.add("DELETE FROM meta WHERE key = ?", (UNFENCED_KEY,))


def continue_after(unit: Unit, sequence: int) -> None:
    """The next outbox event is numbered after ``sequence`` (central holds events up to
    it that this database never wrote: it was restored from an older backup)."""
    unit.add("DELETE FROM sqlite_sequence WHERE name = 'outbox'")
    unit.add(
        "INSERT INTO sqlite_sequence (name, seq) "
        "SELECT 'outbox', MAX(?, COALESCE(MAX(sequence), 0)) FROM outbox",
        (sequence,),
    )


def save_acked(unit: Unit, sequence: int) -> None:
    unit.add(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET "
        "value = MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
        (ACKED_KEY, str(sequence)),
    )


def prune_acked(unit: Unit, acked: int, keep: int) -> None:
    """Forget acknowledged events beyond the newest ``keep`` (local history only)."""
    unit.add("DELETE FROM outbox WHERE sequence <= ?", (acked - keep,))


# --- commands from central ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredCommand:
    id: str
    type: str
    payload: dict[str, Any]
    expires_at: datetime
    status: str


def save_received(unit: Unit, command: dict[str, Any], received_at: datetime) -> None:
    """Store a command once (a redelivered command is ignored)."""
    unit.add(
        "INSERT OR IGNORE INTO cloud_commands (id, type, payload, created_at, expires_at, "
        "received_at, status) VALUES (?,?,?,?,?,?,'received')",
        (
            command["id"],
            command["type"],
            orjson.dumps(command.get("payload", {})).decode(),
            command["created_at"],
            command["expires_at"],
            format_timestamp(received_at),
        ),
    )


def save_finished(
    unit: Unit, command_id: str, status: str, result: dict[str, Any], at: datetime
) -> None:
    unit.add(
        "UPDATE cloud_commands SET status = ?, result = ?, finished_at = ? WHERE id = ?",
        (status, orjson.dumps(result).decode(), format_timestamp(at), command_id),
    )


def unfinished_commands(conn: sqlite3.Connection) -> list[StoredCommand]:
    rows = conn.execute(
        "SELECT id, type, payload, expires_at, status FROM cloud_commands "
        "WHERE status = 'received' ORDER BY received_at, id"
    )
    return [
        StoredCommand(
            id=r["id"],
            type=r["type"],
            payload=orjson.loads(r["payload"]),
            expires_at=parse_iso(r["expires_at"]) or datetime.min.replace(tzinfo=UTC),
            status=r["status"],
        )
        for r in rows
    ]


def set_meta(unit: Unit, key: str, value: str) -> None:
    unit.add(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )
