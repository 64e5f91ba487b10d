"""The UI's firmware page: every charger's firmware and current update (live), and a
campaign form for technicians: pick chargers, give the location and options, send.

``GET /firmware`` (``?charger=<id>`` ticks one), ``POST /ui/firmware/campaign`` (fields
``charger`` once per charger, then those of the local API's body). The campaign runs
through :func:`edge.ocpp.firmware.campaign`, as the local API's and central's do, and is
written to the audit trail with each charger's answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from edge.core import firmware as fw
from edge.core.ids import ChargerId
from edge.ocpp.firmware import campaign
from edge.services.users import LoginSession, Role
from edge.ui.actions import ActionResult

if TYPE_CHECKING:
    from edge.ui.app import WebUi

ACCEPTED = ("Accepted", "AcceptedCanceled")


def firmware_routes(ui: WebUi) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    viewer = Depends(ui.access.viewer())
    technician_action = Depends(ui.access.actor(Role.TECHNICIAN))
    views = ui.views

    @router.get("/firmware")
    async def page(request: Request, session: LoginSession = viewer) -> Response:
        context = {"chargers": views.chargers(), "ticked": request.query_params.get("charger")}
        return ui.pages.render(request, "firmware.html", session, context)

    @router.post("/ui/firmware/campaign")
    async def send(
        request: Request, actor: tuple[LoginSession, dict[str, str]] = technician_action
    ) -> Response:
        session, form = actor
        # ``form`` keeps one value per name; the chargers are read apart (the body was
        # checked for size and encoding with the form)
        fields = parse_qsl((await request.body()).decode(), keep_blank_values=True)
        chargers = [ChargerId(v) for k, v in fields if k == "charger" and v]
        result = await _campaign(ui, chargers, form)
        detail = {k: v for k, v in form.items() if k not in ("charger", "signing_certificate")}
        audited = {**detail, "chargers": ", ".join(chargers)}
        # the UI's one audit trail, as for every other action
        await ui.actions.audit(
            session.user, "update-firmware", audited["chargers"], result, audited
        )
        return ui.pages.answer(request, result)

    return router


async def _campaign(ui: WebUi, chargers: list[ChargerId], form: dict[str, str]) -> ActionResult:
    if not chargers:
        return ActionResult(False, 422, "choose at least one charger")
    if len(chargers) > 1000:
        return ActionResult(False, 422, "at most 1000 chargers at once")
    try:
        order = fw.order_from(form)
    except fw.BadOrder as err:
        return ActionResult(False, 422, str(err))
    answers: dict[str, dict[str, Any]] = await campaign(
        ui.views.server, ui.views.site, chargers, order
    )
    accepted = [c for c, a in answers.items() if a["status"] in ACCEPTED]
    words = ", ".join(f"{c}: {a['status']}" for c, a in answers.items())
    message = f"firmware update accepted by {len(accepted)} of {len(answers)} ({words})"
    return ActionResult(
        bool(accepted), 200, message,
        answer=f"{len(accepted)}/{len(answers)} accepted", detail={"chargers": answers},
    )  # fmt: skip
