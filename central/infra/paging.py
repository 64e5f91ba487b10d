"""Paging for every list endpoint of central: ``limit`` + an opaque ``cursor``.

One answer shape everywhere: ``{"items": [...], "next_cursor": "..." | null}``. The order
is stable (a sort column and a unique id as tie-breaker) and the cursor holds the last
row's key, so the next page starts strictly after it (keyset paging): following
``next_cursor`` to the end gives every row that existed at the start exactly once, even
while new rows are inserted. A cursor that does not decode, or belongs to another kind
of list, is a 400.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import HTTPException, Query
from pydantic import BaseModel
from sqlalchemy import ColumnElement, and_, or_

from common.timestamps import InvalidTimestamp, parse_timestamp

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")]
Cursor = Annotated[
    str | None,
    Query(max_length=512, description="`next_cursor` of the previous page; omit for the first"),
]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class BadCursor(ValueError):
    """The cursor was not made by this list."""


Key = tuple[datetime | str | int, ...]


def encode_cursor(kind: str, key: Key) -> str:
    # datetimes tagged (they must come back as datetimes), to the microsecond: the next
    # page starts strictly after this row
    values = [{"t": v.isoformat()} if isinstance(v, datetime) else v for v in key]
    raw = json.dumps([kind, values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str, types: Sequence[type]) -> Key:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        found_kind, values = json.loads(raw)
    except (binascii.Error, ValueError, TypeError) as err:
        raise BadCursor("the cursor is not one this API made") from err
    if found_kind != kind or not isinstance(values, list) or len(values) != len(types):
        raise BadCursor("the cursor belongs to another list")
    key: list[datetime | str | int] = []
    for value, wanted in zip(values, types, strict=True):
        if wanted is datetime:
            if not isinstance(value, dict) or not isinstance(value.get("t"), str):
                raise BadCursor("the cursor is damaged")
            try:
                key.append(parse_timestamp(value["t"]))
            except InvalidTimestamp as err:
                raise BadCursor("the cursor is damaged") from err
        elif type(value) is wanted and isinstance(value, str | int):
            key.append(value)
        else:
            raise BadCursor("the cursor is damaged")
    return tuple(key)


def parse_cursor(kind: str, cursor: str | None, types: Sequence[type]) -> Key | None:
    """For a route: the decoded cursor, None without one, HTTP 400 for a bad one."""
    if cursor is None or cursor == "":
        return None
    try:
        return decode_cursor(kind, cursor, types)
    except BadCursor as err:
        raise HTTPException(400, f"invalid cursor: {err}") from err


def after(columns: Sequence[Any], key: Key, *, descending: bool = True) -> ColumnElement[bool]:
    """Rows strictly after ``key`` in the order of ``columns`` (all descending or all
    ascending), written without row values so every dialect and column type binds."""
    clauses = []
    for i, column in enumerate(columns):
        equal = [columns[j] == key[j] for j in range(i)]
        beyond = column < key[i] if descending else column > key[i]
        clauses.append(and_(*equal, beyond))
    return or_(*clauses)


def page_of(items: list[T], rows: Sequence[Any], limit: int, kind: str, key_of: Any) -> Page[T]:
    """``rows`` were fetched with ``limit + 1``: one more means there is a next page."""
    more = len(rows) > limit
    items = items[:limit]
    cursor = encode_cursor(kind, key_of(rows[limit - 1])) if more else None
    return Page[T](items=items, next_cursor=cursor)
