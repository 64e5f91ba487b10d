"""Local HTTP API of a charger's configuration: the last one read from it, how applying
the site's keys went, and a fresh read (docs/provisioning.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from edge.api.commands import command_errors, known_charger
from edge.core.ids import ChargerId
from edge.ocpp.charger_calls import CommandTimeout
from edge.ocpp.server import OcppServer
from edge.services.site import Site


def configuration_router(site: Site, server: OcppServer) -> APIRouter:
    router = APIRouter(prefix="/api/chargers", tags=["configuration"])

    async def document(charger_id: ChargerId) -> dict[str, Any]:
        return await site.provisioning.document(charger_id, site.chargers[charger_id].version)

    @router.get("/{charger_id}/configuration")
    async def configuration(charger_id: str) -> dict[str, Any]:
        """The configuration last read from the charger (``read_at`` null: never read)."""
        return await document(known_charger(site, charger_id).id)

    @router.post("/{charger_id}/read-configuration")
    async def read_configuration(charger_id: str) -> dict[str, Any]:
        """Read the connected charger's whole configuration again, store and show it."""
        found = known_charger(site, charger_id).id
        with command_errors(charger_id):
            try:
                await server.read_configuration(found)
            except TimeoutError as err:  # the report's parts did not all come in time
                raise CommandTimeout(found) from err
        return await document(found)

    return router
