"""Paging for the local API's routes (FastAPI side of :mod:`edge.core.paging`): every list takes
``limit`` and ``cursor``, answers a JSON list, and names the next page in a ``Link``
header; a bad ``limit`` or ``cursor`` is a 400 that says what is wrong."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, TypeVar

from fastapi import HTTPException, Query, Request, Response

from edge.core.paging import MAX_LIMIT, BadPage, Key, Page, next_link, parse_page

T = TypeVar("T")

# Every list takes these two; they are parsed by hand, for a 400 that says what is wrong.
Limit = Annotated[str | None, Query(description=f"1 to {MAX_LIMIT}")]
Cursor = Annotated[str | None, Query(description="from the Link header of the page before")]


def page_of(
    kind: str,
    limit: str | None,
    cursor: str | None,
    default: int,
    types: tuple[type, ...] = (str,),
) -> Page:
    try:
        return parse_page(kind, limit, cursor, default, types)
    except BadPage as err:
        raise HTTPException(400, str(err)) from err


def serve_page(
    request: Request,
    response: Response,
    kind: str,
    page: Page,
    items: Sequence[T],
    key: Callable[[T], Key],
) -> list[T]:
    """The first ``page.limit`` of ``items`` (fetched one more than that: if that one is
    there, a next page is linked)."""
    shown = list(items[: page.limit])
    if len(items) > page.limit and shown:
        query = request.query_params.multi_items()
        response.headers["Link"] = next_link(
            request.url.path, query, kind, key(shown[-1]), page.limit
        )
    return shown


def in_memory(
    items: Sequence[T], page: Page, key: Callable[[T], Key], descending: bool = False
) -> list[T]:
    """A page of an in-memory list already sorted by ``key``: the items after the cursor,
    one more than the page."""
    after = page.after
    if after is None:
        return list(items[: page.limit + 1])
    later = (i for i in items if (key(i) < after if descending else key(i) > after))
    return [i for _, i in zip(range(page.limit + 1), later, strict=False)]
