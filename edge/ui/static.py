"""The UI's static files and the security headers every page carries.

The stylesheet, the script and the images ship inside the package (a site may have no
internet) and are read once at start-up; each is served with an ETag so that a browser
asks again cheaply. Pages carry a strict Content-Security-Policy: scripts and styles come
from the edge itself only, and no other site may frame a page.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Final

from fastapi import Request
from fastapi.responses import Response

SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_TYPES: Final = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml",
                 ".png": "image/png"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    media_type: str
    etag: str


def static_files() -> dict[str, StaticFile]:
    """Every file of ``edge/ui/static`` of a type the UI serves, by name."""
    found: dict[str, StaticFile] = {}
    for entry in resources.files("edge.ui").joinpath("static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in _TYPES:
            body = entry.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            found[entry.name] = StaticFile(body, _TYPES[suffix], etag)
    return found


def static_response(found: StaticFile | None, request: Request) -> Response:
    """The file, or 304 when the browser has it already, or 404."""
    if found is None:
        return Response("not found", 404)
    headers = {"ETag": found.etag, "Cache-Control": "no-cache",
               "X-Content-Type-Options": "nosniff"}  # fmt: skip
    if request.headers.get("if-none-match") == found.etag:
        return Response(status_code=304, headers=headers)
    return Response(found.body, media_type=found.media_type, headers=headers)
