"""What the UI reads from a request, checked, and the one way it refuses.

Forms are read with a size limit and must be UTF-8; paging cursors are the lists' own
(:mod:`edge.core.paging`); where to go after a login must be a path on this site. Anything
wrong raises :class:`UiDenied`, which the UI answers with a page, JSON or a redirect.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import Request

from edge.core.paging import BadPage, Key, decode_cursor

MAX_FORM: Final = 16 * 1024


class UiDenied(Exception):
    """Not logged in (401: to the login page) or not allowed (403)."""

    def __init__(self, status: int, message: str, redirect: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.redirect = redirect


def safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no host, no //) may follow a login."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


def page_after(kind: str, cursor: str | None, types: tuple[type, ...]) -> Key | None:
    """The page's position from its ``cursor`` (the lists' own, :mod:`edge.core.paging`)."""
    try:
        return decode_cursor(kind, cursor, types) if cursor else None
    except BadPage as err:
        raise UiDenied(400, str(err)) from err


def older_page(request: Request, cursor: str | None) -> str | None:
    """The address of the next (older) page: this page's filters and the cursor."""
    if cursor is None:
        return None
    kept = [
        (k, v) for k, v in request.query_params.multi_items() if k not in {"cursor", "fragment"}
    ]
    return f"{request.url.path}?{urlencode([*kept, ('cursor', cursor)])}"


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


async def read_form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM:
        raise UiDenied(413, "the form is too large")
    if not body:
        return {}
    try:
        text = body.decode()
    except UnicodeDecodeError as err:
        raise UiDenied(400, "the form is not UTF-8") from err
    return dict(parse_qsl(text, keep_blank_values=True))
