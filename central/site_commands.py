"""Commands from central to a site: how services hand them to the sync service.

A service that wants a site to do something (reserve a slot, start or stop charging,
take new rates) builds a :class:`~contract.sync_api.Command` with :func:`new_command` and
publishes it with :func:`send_command` on the internal topic ``central.site_commands``. The
sync service queues it for the site; the edge fetches it (``GET /sync/v1/commands``),
acknowledges it once stored, and reports the outcome as a ``command.result`` event whose
``command_id`` the sending service matches. Services never share tables for this.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, Final

from central.infra.bus import Bus
from contract.envelope import CloudEvent, site_source
from contract.sync_api import Command, CommandType

COMMANDS_TOPIC: Final = "central.site_commands"
COMMAND_REQUESTED: Final = "command.requested"


def new_command(
    site_id: str, type_: CommandType, payload: dict[str, Any], now: datetime, ttl_s: float
) -> Command:
    return Command(
        id=str(uuid.uuid4()),
        site_id=site_id,
        type=type_,
        payload=payload,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_s),
    )


def command_event(command: Command) -> CloudEvent:
    return CloudEvent(
        id=f"cmd-{command.id}",
        source=site_source(command.site_id),
        type=COMMAND_REQUESTED,
        time=command.created_at,
        subject=command.type,
        sequence=1,
        data=command.model_dump(mode="json"),
    )


async def send_command(bus: Bus, command: Command) -> None:
    await bus.publish(COMMANDS_TOPIC, command_event(command))
