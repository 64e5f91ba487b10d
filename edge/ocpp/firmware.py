"""Firmware updates sent to chargers: one, or a campaign over several at once.

The one place that sends an UpdateFirmware (1.6 plain or signed, 2.0.1) and has the site
follow the update the charger accepted; the local API, the UI and central's
``update_firmware`` command all come here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import structlog

from edge.core.documents import firmware_document
from edge.core.firmware import FirmwareOrder
from edge.core.ids import ChargerId
from edge.ocpp.charger_calls import ChargerOffline, CommandTimeout, InvalidCommand, send_command
from edge.ocpp.connection import CallFailed
from edge.ocpp.server import OcppServer
from edge.services.site import Site

log = structlog.get_logger(__name__)


async def update_firmware(
    server: OcppServer, site: Site, charger_id: ChargerId, order: FirmwareOrder
) -> dict[str, Any]:
    """Send ``order`` to one charger; its answer, the request id and, if it accepted, the
    update the site now follows. Raises what :func:`send_command` raises."""
    command = site.firmware.command(charger_id, order)
    outcome = await send_command(server, charger_id, command)
    update = await site.firmware.answered(charger_id, command, outcome.status)
    return {
        "charger_id": charger_id,
        "status": outcome.status,
        "request_id": command.request_id,
        "response": outcome.detail,
        "firmware_update": firmware_document(update),
    }


async def campaign(
    server: OcppServer, site: Site, charger_ids: Iterable[ChargerId], order: FirmwareOrder
) -> dict[str, dict[str, Any]]:
    """``order`` to every charger at once; each one's answer by charger id: its own status
    word, or ``unknown``, ``offline`` (also: configured, never connected), ``timeout``, ``invalid`` or ``error`` (with a
    ``detail``). A charger that cannot take it never holds up the others."""
    answers: dict[str, dict[str, Any]] = {}

    async def one(charger_id: ChargerId) -> None:
        if charger_id not in site.chargers:
            if site.config.charger(charger_id) is not None:  # configured, never connected
                answers[charger_id] = {"status": "offline", "detail": "never connected"}
            else:
                answers[charger_id] = {"status": "unknown", "detail": "no such charger"}
            return
        try:
            answers[charger_id] = await update_firmware(server, site, charger_id, order)
        except ChargerOffline:
            answers[charger_id] = {"status": "offline", "detail": "not connected"}
        except CommandTimeout:
            answers[charger_id] = {"status": "timeout", "detail": "no answer in time"}
        except InvalidCommand as err:
            answers[charger_id] = {"status": "invalid", "detail": str(err)}
        except CallFailed as err:
            answers[charger_id] = {"status": "error", "detail": f"{err.code}: {err.description}"}

    async with asyncio.TaskGroup() as group:
        for charger_id in dict.fromkeys(charger_ids):  # each charger once, in order
            group.create_task(one(charger_id), name=f"firmware-{charger_id}")
    log.info("firmware.campaign.sent", chargers=len(answers),
             accepted=sum(a["status"] in ("Accepted", "AcceptedCanceled")
                          for a in answers.values()))  # fmt: skip
    return answers
