"""The local API's firmware routes (docs/firmware.md).

``POST /api/chargers/{id}/update-firmware``: one charger, answered with its own status;
``POST /api/firmware/campaign``: several (or all) chargers at once, each one's answer;
``GET /api/chargers/{id}/firmware-updates``: the updates the site asked a charger for.
The current update of each charger is in ``GET /api/chargers/{id}`` (``firmware_update``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from edge.api.commands import command_errors, known_charger
from edge.core import firmware as fw
from edge.core.ids import ChargerId
from edge.ocpp.firmware import campaign, update_firmware
from edge.ocpp.server import OcppServer
from edge.services.site import Site
from edge.storage import firmware_sql


class FirmwareBody(BaseModel):
    location: str = Field(max_length=fw.MAX_LOCATION)
    retrieve_at: str | None = Field(default=None, max_length=64)  # RFC 3339; absent: now
    retries: int | None = None
    retry_interval: int | None = None  # seconds
    signature: str | None = Field(default=None, max_length=fw.MAX_SIGNATURE)
    signing_certificate: str | None = Field(default=None, max_length=fw.MAX_CERTIFICATE)

    def order(self) -> fw.FirmwareOrder:
        try:
            return fw.order(
                self.location, self.retrieve_at, self.retries, self.retry_interval,
                self.signature, self.signing_certificate,
            )  # fmt: skip
        except fw.BadOrder as err:
            raise HTTPException(422, str(err)) from err


class CampaignBody(FirmwareBody):
    chargers: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None, min_length=1, max_length=1000
    )  # None: every charger the site knows


def firmware_router(site: Site, server: OcppServer) -> APIRouter:
    router = APIRouter()

    @router.post("/api/chargers/{charger_id}/update-firmware")
    async def update(charger_id: str, body: FirmwareBody) -> dict[str, Any]:
        """409 offline, 504 no answer in time, 422 a bad body or one the charger's
        version cannot carry; else the charger's answer (Accepted, Rejected, ...)."""
        found, order = known_charger(site, charger_id).id, body.order()
        with command_errors(charger_id):
            return await update_firmware(server, site, found, order)

    @router.post("/api/firmware/campaign")
    async def update_many(body: CampaignBody) -> dict[str, Any]:
        order = body.order()
        wanted = body.chargers if body.chargers is not None else sorted(site.chargers)
        answers = await campaign(server, site, map(ChargerId, wanted), order)
        return {"location": order.location, "chargers": answers}

    @router.get("/api/chargers/{charger_id}/firmware-updates")
    async def history(
        charger_id: str, limit: Annotated[int, Query(ge=1, le=500)] = 50
    ) -> list[dict[str, Any]]:
        found = known_charger(site, charger_id).id
        return await site.store.read(lambda c: firmware_sql.updates_of(c, found, limit))

    return router
