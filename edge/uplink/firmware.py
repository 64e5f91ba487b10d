"""Central's ``update_firmware`` command: a firmware campaign over the site's chargers.

Payload: ``location`` (required), ``chargers`` (ids; absent: every charger the site
knows), ``retrieve_at``, ``retries``, ``retry_interval``, ``signature``,
``signing_certificate`` (docs/firmware.md). The result names each charger's answer
(``offline`` ones included): ``accepted`` if any charger accepted, ``failed`` if none did.
"""

from __future__ import annotations

from typing import Any

from contract.sync_api import CommandStatus
from edge.core import firmware as fw
from edge.core.ids import ChargerId
from edge.ocpp.firmware import campaign
from edge.ocpp.server import OcppServer
from edge.services.site import Site

MAX_CHARGERS = 1000


def _charger_ids(site: Site, given: object) -> list[ChargerId]:
    if given is None:
        return sorted(site.chargers)
    if (
        not isinstance(given, list)
        or not 0 < len(given) <= MAX_CHARGERS
        or not all(isinstance(c, str) and 0 < len(c) <= 64 for c in given)
    ):
        raise fw.BadOrder(f"chargers: a list of 1 to {MAX_CHARGERS} charger ids")
    return [ChargerId(c) for c in given]


async def update_firmware(
    site: Site, server: OcppServer, payload: dict[str, Any]
) -> tuple[CommandStatus, str, dict[str, Any]]:
    """Raises :class:`~edge.core.firmware.BadOrder` for a payload it cannot send."""
    order = fw.order_from(payload)
    answers = await campaign(server, site, _charger_ids(site, payload.get("chargers")), order)
    accepted = sum(a["status"] in ("Accepted", "AcceptedCanceled") for a in answers.values())
    status: CommandStatus = "accepted" if accepted else "failed"
    detail = f"{accepted} of {len(answers)} chargers accepted the update"
    return status, detail, {"location": order.location, "chargers": answers}
