"""Local HTTP API of a charger's configuration: the last one read from it, how applying
the site's keys went, and a fresh read (docs/provisioning.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from edge.core.ids import ChargerId
from edge.ocpp.charger_calls import ChargerOffline, CommandTimeout, InvalidCommand
from edge.ocpp.connection import CallFailed
from edge.ocpp.server import OcppServer
from edge.services.provisioning import outcome_document
from edge.services.site import Site


def configuration_router(site: Site, server: OcppServer) -> APIRouter:
    router = APIRouter(prefix="/api/chargers", tags=["configuration"])

    def known(charger_id: str) -> ChargerId:
        charger = site.chargers.get(ChargerId(charger_id))
        if charger is None:
            raise HTTPException(404, f"no charger {charger_id!r}")
        return charger.id

    async def document(charger_id: ChargerId) -> dict[str, Any]:
        stored = await site.provisioning.stored(charger_id)
        listed = "keys" if site.chargers[charger_id].version == "ocpp1.6" else "variables"
        return {
            "charger_id": charger_id,
            "read_at": stored.read_at,
            "source": stored.source,
            "provisioning": outcome_document(stored.outcome),
            listed: [entry.document() for entry in stored.entries],
        }

    @router.get("/{charger_id}/configuration")
    async def configuration(charger_id: str) -> dict[str, Any]:
        """The configuration last read from the charger (``read_at`` null: never read)."""
        return await document(known(charger_id))

    @router.post("/{charger_id}/read-configuration")
    async def read_configuration(charger_id: str) -> dict[str, Any]:
        """Read the connected charger's whole configuration again, store and show it."""
        found = known(charger_id)
        try:
            await server.read_configuration(found)
        except ChargerOffline as err:
            raise HTTPException(409, f"charger {charger_id!r} is not connected") from err
        except (CommandTimeout, TimeoutError) as err:
            raise HTTPException(504, f"charger {charger_id!r} did not answer in time") from err
        except InvalidCommand as err:
            raise HTTPException(422, str(err)) from err
        except CallFailed as err:  # a CALLERROR, or a report refused (its status)
            raise HTTPException(502, f"charger refused: {err.code}: {err.description}") from err
        return await document(found)

    return router
