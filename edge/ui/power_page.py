"""The UI's power page: the site limit in force, limit against measured power over the last
hours, each charger's sessions with what they are offered and why (the load manager's
:func:`~edge.power.document.power_document`, as ``GET /api/power`` shows it), and a form
for technicians to set or clear a temporary site limit.

``GET /power`` (``?hours=`` of chart, ``?fragment=`` as every page), ``POST /ui/power/limit``
(``action=set`` with ``limit_kw`` and optional ``minutes``, or ``action=clear``): through
:meth:`LoadManager.set_override`, as the local API's ``PUT /api/power/limit``, set by
``ui:<user>`` and written to the audit trail. :class:`PowerLive` tells open pages when
the power document changed (a :attr:`LoadManager.observers` callback).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Final

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from edge.power.document import power_document
from edge.power.manager import LoadManager
from edge.services.users import LoginSession, Role
from edge.storage.sqlite import StoreError
from edge.ui.actions import ActionResult, BadInput, Form
from edge.ui.live import LiveHub

if TYPE_CHECKING:
    from edge.ui.app import WebUi

MAX_MINUTES: Final = 7 * 24 * 60


@dataclass(frozen=True, slots=True)
class LimitOrder:
    limit_kw: float | None  # None: back to the configured limit
    until: datetime | None


def limit_order(form: Form, configured_kw: float, now: datetime) -> LimitOrder:
    """A technician's form as a temporary limit: it may lower the configured one, never
    raise it (that one is the grid connection's fuse)."""
    action = form.get("action", "")
    if action == "clear":
        return LimitOrder(None, None)
    if action != "set":
        raise BadInput("the action is set or clear")
    try:
        limit_kw = float(form.get("limit_kw", "").strip())
    except ValueError as err:
        raise BadInput("the limit is a number of kW") from err
    if not 0 < limit_kw <= configured_kw:  # also refuses nan and inf
        raise BadInput(f"the limit is more than 0 and at most the configured {configured_kw:g} kW")
    minutes_text = form.get("minutes", "").strip()
    if not minutes_text:
        return LimitOrder(limit_kw, None)
    try:
        minutes = int(minutes_text)
    except ValueError as err:
        raise BadInput("minutes must be a whole number") from err
    if not 1 <= minutes <= MAX_MINUTES:
        raise BadInput(f"minutes must be between 1 and {MAX_MINUTES}")
    return LimitOrder(limit_kw, now + timedelta(minutes=minutes))


async def set_limit(manager: LoadManager, form: Form, username: str) -> ActionResult:
    if not manager.enabled:
        return ActionResult(False, 409, "load management is off: set power.site_limit_kw first")
    assert manager.power.site_limit_kw is not None
    try:
        order = limit_order(form, manager.power.site_limit_kw, manager.clock())
    except BadInput as err:
        return ActionResult(False, 422, str(err))
    try:
        await manager.set_override(order.limit_kw, order.until, f"ui:{username}")
    except StoreError as err:
        return ActionResult(False, 503, f"the site limit was not saved ({err})")
    in_force = manager.site_limit_w() / 1000
    if order.limit_kw is None:
        return ActionResult(True, 200, f"temporary limit removed: {in_force:g} kW in force",
                            answer="cleared")  # fmt: skip
    until = "until removed" if order.until is None else f"until {order.until:%Y-%m-%d %H:%M} UTC"
    return ActionResult(True, 200, f"site limit {in_force:g} kW {until}", answer="set")


def power_routes(ui: WebUi, manager: LoadManager) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    viewer = Depends(ui.access.viewer())
    technician_action = Depends(ui.access.actor(Role.TECHNICIAN))

    @router.get("/power")
    async def page(
        request: Request,
        session: LoginSession = viewer,
        hours: Annotated[float, Query(gt=0, le=48)] = 6,
    ) -> Response:
        fragment = request.query_params.get("fragment")
        chart = None
        if manager.enabled and fragment in (None, "chart"):
            chart = await ui.views.power_chart(hours, ui.site_limit_w())
        context: dict[str, Any] = {
            "power": power_document(manager),
            "chart": chart,
            "hours": hours,
            "max_minutes": MAX_MINUTES,
        }
        return ui.pages.render(request, "power.html", session, context)

    @router.post("/ui/power/limit")
    async def limit(
        request: Request, actor: tuple[LoginSession, dict[str, str]] = technician_action
    ) -> Response:
        session, form = actor
        result = await set_limit(manager, form, session.user.username)
        if result.ok:  # the UI's one audit trail, as for every action
            await ui.actions.audit(session.user, "power-limit", "site", result, form)
        return ui.pages.answer(request, result)

    return router


class PowerLive:
    """After each decision: a ``power`` event to open pages when what they show changed
    (not every cycle: a quiet site sends nothing), and ``power_limit`` when the limit in
    force did (the chart, read from the store, is redrawn then, else once a minute)."""

    def __init__(self, hub: LiveHub) -> None:
        self.hub = hub
        self._last: dict[str, Any] | None = None

    def __call__(self, manager: LoadManager) -> None:
        if not self.hub.subscribers:
            self._last = None  # the next page fetches everything on connecting
            return
        document = power_document(manager)
        document.pop("decided_at", None)
        if document == self._last:
            return
        limit = ("site_limit_kw", "override")
        if self._last is None or any(document[k] != self._last[k] for k in limit):
            self.hub.broadcast({"type": "power_limit"})
        self._last = document
        self.hub.broadcast({"type": "power"})
