"""Paging of the local API's lists: ``limit`` and an opaque ``cursor``, a stable order, and
the next page's address in a ``Link: <...>; rel="next"`` header (the body stays a list).

A cursor is the sort key of the last item served, tagged with the list it belongs to,
in URL-safe base64: keyset paging, so a page is as cheap at row 100,000 as at row 0 and
rows added meanwhile never shift a page. Plain code, no I/O.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlencode

import orjson

MAX_LIMIT: Final = 500
_MAX_CURSOR: Final = 512

Key = tuple[str | int, ...]


class BadPage(ValueError):
    """A ``limit`` or ``cursor`` the list cannot use (the message says which, and why)."""


@dataclass(frozen=True, slots=True)
class Page:
    limit: int
    after: Key | None  # the sort key of the last item of the previous page


def encode_cursor(kind: str, key: Key) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([kind, *key])).rstrip(b"=").decode()


def decode_cursor(kind: str, cursor: str, types: tuple[type, ...]) -> Key:
    problem = BadPage(f"cursor {cursor[:40]!r} is not one this list ({kind}) gave out")
    if len(cursor) > _MAX_CURSOR:
        raise problem
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = orjson.loads(raw)
    except (binascii.Error, ValueError) as err:
        raise problem from err
    if (
        not isinstance(value, list)
        or len(value) != len(types) + 1
        or value[0] != kind
        or not all(type(v) is t for v, t in zip(value[1:], types, strict=True))
    ):
        raise problem
    return tuple(value[1:])


def parse_page(
    kind: str,
    limit: str | None,
    cursor: str | None,
    default: int,
    types: tuple[type, ...] = (str,),
) -> Page:
    if limit is None:
        count = default
    elif limit.isascii() and limit.isdigit() and 1 <= int(limit) <= MAX_LIMIT:
        count = int(limit)
    else:
        raise BadPage(f"limit {limit[:20]!r} is not a whole number from 1 to {MAX_LIMIT}")
    after = decode_cursor(kind, cursor, types) if cursor else None
    return Page(count, after)


def next_link(path: str, query: list[tuple[str, str]], kind: str, key: Key, limit: int) -> str:
    """The ``Link`` header to the page after the item with ``key`` (a relative address:
    the same path and filters, never a host taken from the request)."""
    kept = [(k, v) for k, v in query if k not in {"cursor", "limit"}]
    params = urlencode([*kept, ("limit", str(limit)), ("cursor", encode_cursor(kind, key))])
    return f'<{path}?{params}>; rel="next"'
