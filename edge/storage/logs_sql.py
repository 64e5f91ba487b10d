"""SQL of log and diagnostics requests (:mod:`edge.core.logs`): the request, the status
words the charger sent about it, and the files it uploaded."""

from __future__ import annotations

import sqlite3
from typing import cast

from common.timestamps import format_timestamp, parse_timestamp
from edge.core.ids import ChargerId
from edge.core.logs import LogRequest, LogType, ReceivedFile, StatusChange
from edge.core.paging import Key
from edge.storage.sqlite import Unit


def add_request(unit: Unit, request: LogRequest) -> None:
    unit.insert(
        "log_requests",
        ("id", "charger_id", "log_type", "token_hash", "created_at", "expires_at"),
        (request.id, request.charger_id, request.log_type, request.token_hash,
         format_timestamp(request.created_at), format_timestamp(request.expires_at)),
    )  # fmt: skip


def set_answer(unit: Unit, request: LogRequest) -> None:
    unit.add(
        "UPDATE log_requests SET answer = ?, file_name = ? WHERE id = ?",
        (request.answer, request.file_name, request.id),
    )


def add_status(unit: Unit, request_id: int, change: StatusChange) -> None:
    unit.insert(
        "log_statuses",
        ("request_id", "at", "status"),
        (request_id, format_timestamp(change.at), change.status),
    )


def add_file(unit: Unit, request_id: int, received: ReceivedFile) -> None:
    unit.insert(
        "log_files",
        ("request_id", "name", "size", "sha256", "path", "received_at"),
        (request_id, received.name, received.size, received.sha256, received.path,
         format_timestamp(received.received_at)),
    )  # fmt: skip


def last_id(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT coalesce(max(id), 0) FROM log_requests").fetchone()[0])


def by_token(conn: sqlite3.Connection, hashed: str) -> LogRequest | None:
    rows = conn.execute("SELECT * FROM log_requests WHERE token_hash = ?", (hashed,)).fetchall()
    return _with_details(conn, rows)[0] if rows else None


def by_id(conn: sqlite3.Connection, charger_id: str, request_id: int) -> LogRequest | None:
    rows = conn.execute(
        "SELECT * FROM log_requests WHERE id = ? AND charger_id = ?", (request_id, charger_id)
    ).fetchall()
    return _with_details(conn, rows)[0] if rows else None


def of_charger(
    conn: sqlite3.Connection, charger_id: str, limit: int, after: Key | None = None
) -> list[LogRequest]:
    """A charger's requests, newest first, one more than ``limit``; key (id)."""
    before = cast(int, after[0]) if after is not None else None
    rows = conn.execute(
        "SELECT * FROM log_requests WHERE charger_id = ? AND (? IS NULL OR id < ?)"
        " ORDER BY id DESC LIMIT ?",
        (charger_id, before, before, limit + 1),
    ).fetchall()
    return _with_details(conn, rows)


def _with_details(conn: sqlite3.Connection, rows: list[sqlite3.Row]) -> list[LogRequest]:
    if not rows:
        return []
    ids = [r["id"] for r in rows]
    marks = ",".join("?" * len(ids))
    statuses: dict[int, list[StatusChange]] = {}
    for s in conn.execute(
        f"SELECT request_id, at, status FROM log_statuses WHERE request_id IN ({marks})"
        " ORDER BY rowid",
        ids,
    ):
        statuses.setdefault(s["request_id"], []).append(
            StatusChange(s["status"], parse_timestamp(s["at"]))
        )
    files: dict[int, list[ReceivedFile]] = {}
    for f in conn.execute(
        f"SELECT * FROM log_files WHERE request_id IN ({marks}) ORDER BY rowid", ids
    ):
        files.setdefault(f["request_id"], []).append(
            ReceivedFile(f["name"], f["size"], f["sha256"], f["path"],
                         parse_timestamp(f["received_at"]))
        )  # fmt: skip
    return [_request(r, statuses.get(r["id"], []), files.get(r["id"], [])) for r in rows]


def _request(
    row: sqlite3.Row, statuses: list[StatusChange], files: list[ReceivedFile]
) -> LogRequest:
    return LogRequest(
        id=row["id"],
        charger_id=ChargerId(row["charger_id"]),
        log_type=cast(LogType, row["log_type"]),
        token_hash=row["token_hash"],
        created_at=parse_timestamp(row["created_at"]),
        expires_at=parse_timestamp(row["expires_at"]),
        answer=row["answer"],
        file_name=row["file_name"],
        statuses=tuple(statuses),
        files=tuple(files),
    )
