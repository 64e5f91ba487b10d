"""Every event the edge produces fits the contract: a running site is driven through a
session, a refused card, a remote start with an app token and a reservation, and each
event of its outbox must parse with its model (``parse_data``) and, for the version-2
types, name its subject."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from contract.events import DATA_MODELS, SUBJECT, parse_data
from edge.core.ids import SlotId
from edge.core.slots.values import SlotState
from edge.daemon import EdgeDaemon
from ocpp_handlers.schemas import Version
from sim.charger import SimCharger
from tests.edge.conftest import make_config, sim_charger_config
from tests.edge.site_commands import app_token, outbox, remote_start_payload, run_command, wire
from tests.polling import eventually

# the types whose events must say who they are about (a producer fills each one)
NAMED = {
    "charging.started": ("EV-1", "u-1"),
    "charging.progress": ("EV-1", "u-1"),
    "charging.completed": ("EV-1", "u-1"),
    "charging.failed": (None, "u-2"),
    "parking.reserved": ("EV-3", "u-3"),
    "parking.released": ("EV-3", "u-3"),
}


async def drive_the_site(edge: EdgeDaemon, version: Version) -> None:
    tags = {"tags": [{"id_tag": "CARD-2", "status": "Blocked", "driver_id": "u-2"}]}
    assert (await run_command(edge, "update_id_tags", tags)).status == "accepted"
    config = sim_charger_config(edge, "CP-1", wire(version), seed=11)
    async with SimCharger(config) as cp:
        async with asyncio.timeout(10):
            await cp.wait_online()

        async def free() -> bool:
            assert edge.slots.model is not None
            return edge.slots.model.view(SlotId("P1")).state is SlotState.FREE

        await eventually(free, "the slot is free")
        reserve = {
            "reservation_id": "R-1", "vehicle_id": "EV-3", "driver_id": "u-3",
            "ends_at": "2099-01-01T00:00:00Z",
        }  # fmt: skip
        assert (await run_command(edge, "reserve", reserve)).status == "accepted"
        assert (
            await run_command(edge, "cancel_reservation", {"reservation_id": "R-1"})
        ).status == ("accepted")
        await cp.start(1, "CARD-2")  # refused: the simulator ends it itself
        await cp.flush()
        await cp.plug_in(1)
        start = remote_start_payload(
            "CP-1", app_token(), vehicle_id="EV-1", driver_id="u-1", expires_in=600
        )
        assert (await run_command(edge, "remote_start", start)).status == "accepted"
        await cp.send_meter_values(1, n=3)
        await cp.stop(1, "Local")
        await cp.flush()


@pytest.mark.parametrize("version", [Version.V16, Version.V201], ids=["ocpp1.6", "ocpp2.0.1"])
async def test_every_event_of_the_edge_parses_and_names_its_subject(
    tmp_path: Path, version: Version
) -> None:
    config = make_config(
        tmp_path / "data",
        slots=[{"id": "P1", "type": "ev", "charger": "CP-1", "evse": 1}],
        chargers=[{"id": "CP-1"}],
        central={"progress_interval": 1},
    )
    async with EdgeDaemon(config) as edge:
        await drive_the_site(edge, version)

        async def completed() -> bool:
            return any(e.type == "charging.completed" for e in await outbox(edge))

        await eventually(completed, "charging.completed")
        events = await outbox(edge)
    seen: set[str] = set()
    for event in events:
        data = parse_data(DATA_MODELS[event.type], event)  # every one fits its model
        seen.add(event.type)
        if data.VERSION > 1:
            assert set(SUBJECT) <= set(event.data), event  # named, if only as unknown
        if event.type in NAMED:
            assert (event.data["vehicle_id"], event.data["driver_id"]) == NAMED[event.type], event
    assert set(NAMED) <= seen, seen
