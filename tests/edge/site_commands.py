"""Central's commands and the site's outbox, for tests against a running daemon without a
central: commands go straight to the daemon's command runner, events are read back from
its outbox through the contract (as central would read them)."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from contract.envelope import CloudEvent
from contract.events import DATA_MODELS, Data, dataschema, parse_data
from contract.sync_api import CommandResult
from edge.daemon import EdgeDaemon
from edge.storage.site_sql import outbox_rows
from edge.storage.sync_sql import StoredCommand
from edge.uplink.commands import CloudCommandRunner
from ocpp_handlers.schemas import Version
from sim.charger import OcppVersion

BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def wire(version: Version) -> OcppVersion:
    return "1.6" if version is Version.V16 else "2.0.1"


def app_token() -> str:
    """A token as central makes one for a remote start: ``A`` and 19 base32 characters."""
    return "A" + "".join(secrets.choice(BASE32) for _ in range(19))


def runner(edge: EdgeDaemon) -> CloudCommandRunner:
    return CloudCommandRunner(edge.site, edge.slots, edge.ocpp, edge.clock, edge.power)


async def run_command(
    edge: EdgeDaemon, command_type: str, payload: dict[str, Any]
) -> CommandResult:
    """Carry out one of central's commands on the site, as the sync worker would."""
    command = StoredCommand(
        id=str(uuid.uuid4()),
        type=command_type,
        payload=payload,
        expires_at=datetime.now(UTC) + timedelta(minutes=5),
        status="received",
    )
    return await runner(edge).run(command)


def remote_start_payload(
    charger_id: str, id_tag: str, *, vehicle_id: str, driver_id: str, expires_in: float | None
) -> dict[str, Any]:
    """Central's ``remote_start``; ``expires_in`` None: a tag the site knows, not an app token."""
    payload: dict[str, Any] = {
        "charger_id": charger_id, "evse_id": 1, "id_tag": id_tag,
        "vehicle_id": vehicle_id, "driver_id": driver_id,
    }  # fmt: skip
    if expires_in is not None:
        expires = datetime.now(UTC) + timedelta(seconds=expires_in)
        payload["token_expires_at"] = expires.isoformat()
    return payload


async def outbox(edge: EdgeDaemon) -> list[CloudEvent]:
    """Every event the site wrote for central, in order, as central receives them."""
    rows = await edge.store.read(lambda c: outbox_rows(c, 0, 10_000))
    return [
        CloudEvent(
            id=row["id"],
            source=f"/sites/{edge.config.site.id}",
            type=row["type"],
            time=row["time"],
            subject=row["subject"],
            sequence=row["sequence"],
            dataschema=dataschema(row["type"]),
            data=row["data"],
        )
        for row in rows
    ]


async def events_of(edge: EdgeDaemon, *types: str) -> list[Data]:
    """The outbox's events of ``types``, parsed with the contract's models."""
    return [
        parse_data(DATA_MODELS[event.type], event)
        for event in await outbox(edge)
        if event.type in types
    ]
