"""Rendering the UI's pages and fragments, and the answers to its actions.

Pages are server-rendered (Jinja2, autoescaped). Each live section of a page is a
template block; ``?fragment=<block>`` on the page's URL renders just that block, which the
page's script fetches again when the event stream says something it shows changed. An
action answers JSON to the page's script and a small result page to a browser without
JavaScript.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from edge.config import SiteSection
from edge.services.users import LoginSession, Role
from edge.ui.actions import ActionResult
from edge.ui.charger_events import describe
from edge.ui.inputs import safe_next, wants_json
from edge.ui.static import SECURITY_HEADERS
from edge.ui.views import as_time


def _kw(watts: float | None) -> str:
    return "\u2013" if watts is None else f"{watts / 1000:.1f} kW"


def _kwh(wh: float | None) -> str:
    return "\u2013" if wh is None else f"{wh / 1000:.2f} kWh"


def _label(word: str | None) -> str:
    return (word or "unknown").replace("_", " ")


class Pages:
    """The templates of ``edge/ui/templates`` and what every page is given."""

    def __init__(self, site: SiteSection, clock: Callable[[], datetime]) -> None:
        self.site = site
        self.clock = clock
        self.templates = Environment(
            loader=PackageLoader("edge.ui", "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters.update(
            kw=_kw,
            kwh=_kwh,
            label=_label,
            as_time=as_time,
            local=self.local_time,
            describe=describe,
        )
        self.templates.globals["m"] = self.templates.get_template("macros.html").module

    def local_time(self, moment: datetime) -> datetime:
        """``moment`` in the site's time zone (what the pages show; APIs stay UTC)."""
        return moment.astimezone(self.site.zone)

    def render(
        self,
        request: Request,
        template: str,
        session: LoginSession | None,
        context: dict[str, Any],
        status: int = 200,
    ) -> HTMLResponse:
        """The page, or only its block named by ``?fragment=``."""
        fragment = request.query_params.get("fragment")
        page = self.templates.get_template(template)
        values = {
            "site": self.site,
            "user": session.user if session else None,
            "csrf": session.csrf_token if session else "",
            "can_act": session is not None and session.user.role.allows(Role.TECHNICIAN),
            "is_admin": session is not None and session.user.role.allows(Role.ADMIN),
            "path": request.url.path,
            "now": self.clock(),
            **context,
        }
        if fragment is not None:
            block = page.blocks.get(fragment)
            if block is None:
                return HTMLResponse("no such fragment", 404, headers=SECURITY_HEADERS)
            html = "".join(block(page.new_context(values)))
        else:
            html = page.render(values)
        return HTMLResponse(html, status, headers=SECURITY_HEADERS)

    def answer(self, request: Request, result: ActionResult) -> Response:
        """An action's result: JSON to the page's script, a result page to a browser."""
        if wants_json(request):
            return JSONResponse(result.as_json(), result.status_code, headers=SECURITY_HEADERS)
        referer = request.headers.get("referer", "")
        back = safe_next(urlsplit(referer).path if referer else "/")
        return self.render(
            request, "result.html", None, {"result": result, "back": back}, result.status_code
        )
