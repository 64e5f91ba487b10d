"""The local API's paged lists as SQL over the site's store (reads only).

Each takes the page's ``after`` key (:mod:`edge.core.paging`) and returns up to ``limit + 1``
rows in a stable order, newest first, the sort key ending in a unique column: the extra
row tells the caller there is a next page.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from edge.core.model import Session
from edge.core.paging import Key
from edge.storage.site_sql import row_to_session


def _where(filters: list[tuple[str, object]]) -> tuple[list[str], list[Any]]:
    where = [f"{column} = ?" for column, value in filters if value is not None]
    return where, [value for _, value in filters if value is not None]


def _older_than(where: list[str], params: list[Any], after: Key, time: str, key: str) -> None:
    """Keyset condition for a newest-first list ordered by (``time``, ``key``)."""
    where.append(f"({time} < ? OR ({time} = ? AND {key} < ?))")
    params += [after[0], after[0], after[1]]


def _clause(where: list[str]) -> str:
    return f"WHERE {' AND '.join(where)}" if where else ""


def sessions(
    conn: sqlite3.Connection,
    *,
    status: str | None,
    charger_id: str | None,
    id_tag: str | None,
    limit: int,
    after: Key | None,
) -> list[Session]:
    """By start, newest first; key (started_at, id)."""
    where, params = _where([("status", status), ("charger_id", charger_id), ("id_tag", id_tag)])
    if after is not None:
        _older_than(where, params, after, "started_at", "id")
    rows = conn.execute(
        f"SELECT * FROM sessions {_clause(where)} ORDER BY started_at DESC, id DESC LIMIT ?",
        (*params, limit + 1),
    )
    return [row_to_session(row) for row in rows]


def visits(
    conn: sqlite3.Connection, slot_id: str | None, limit: int, after: Key | None
) -> list[dict[str, object]]:
    """By arrival, newest first; key (arrived_at, visit_id)."""
    where, params = _where([("slot_id", slot_id)])
    if after is not None:
        _older_than(where, params, after, "arrived_at", "visit_id")
    rows = conn.execute(
        f"SELECT * FROM visits {_clause(where)} ORDER BY arrived_at DESC, visit_id DESC LIMIT ?",
        (*params, limit + 1),
    )
    return [dict(row) for row in rows]


def charger_events(
    conn: sqlite3.Connection, charger_id: str, limit: int, after: Key | None
) -> list[dict[str, Any]]:
    """A charger's events (boots, status changes, errors), newest first; key (id)."""
    where, params = _where([("charger_id", charger_id)])
    if after is not None:
        where.append("id < ?")
        params.append(after[0])
    rows = conn.execute(
        f"SELECT id, at, kind, data FROM charger_events {_clause(where)} ORDER BY id DESC LIMIT ?",
        (*params, limit + 1),
    )
    return [{**dict(r), "data": orjson.loads(r["data"])} for r in rows]


def site_events(
    conn: sqlite3.Connection, family: str | None, limit: int, after: Key | None
) -> list[dict[str, Any]]:
    """The site's events (what it tells central), newest first, optionally of one family
    (``charging`` or ``charging.started``); key (sequence)."""
    where: list[str] = []
    params: list[Any] = []
    if family:
        where.append("(type = ? OR substr(type, 1, ?) = ?)")
        params += [family, len(family) + 1, family + "."]
    if after is not None:
        where.append("sequence < ?")
        params.append(after[0])
    rows = conn.execute(
        f"SELECT sequence, id, type, subject, time, data FROM outbox {_clause(where)} "
        "ORDER BY sequence DESC LIMIT ?",
        (*params, limit + 1),
    )
    return [{**dict(r), "data": orjson.loads(r["data"])} for r in rows]
