"""Issue 13 point 5 against a running daemon and simulated chargers of both versions:
the local list version read back and re-sent to a charger that comes back with an older
one, ClearCache, DataTransfer out, 2.0.1 GetTransactionStatus, 1.6 ExtendedTriggerMessage,
and a reservation made through central's reserve command then cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from edge.config import SiteConfig
from edge.core.ids import SlotId
from edge.core.slots.values import SlotState
from edge.daemon import EdgeDaemon
from ocpp_handlers.schemas import Version
from sim.charger import SimCharger
from tests.edge.conftest import sim_charger_config
from tests.edge.site_commands import run_command, wire
from tests.polling import eventually


def charger(edge: EdgeDaemon, charger_id: str, version: Version) -> SimCharger:
    return SimCharger(sim_charger_config(edge, charger_id, wire(version)))


async def online(cp: SimCharger) -> SimCharger:
    async with asyncio.timeout(10):
        await cp.wait_online()
    return cp


@pytest.fixture
async def commands(edge: EdgeDaemon) -> AsyncIterator[Callable[..., Any]]:
    """POST one command to the charger ``CP-MORE``; the reply as it came."""
    base = f"http://127.0.0.1:{edge.http_port}/api/chargers/CP-MORE"
    async with httpx.AsyncClient(base_url=base, timeout=10) as api:

        async def command(name: str, body: dict[str, Any] | None = None) -> httpx.Response:
            return await api.post(f"/{name}", json=body or {})

        yield command


def actions(cp: SimCharger) -> list[str]:
    return [e.action for e in cp.received]


async def test_local_list_version_and_clear_cache(
    edge: EdgeDaemon, version: Version, commands: Callable[..., Any]
) -> None:
    async with charger(edge, "CP-MORE", version) as cp:
        await online(cp)
        held = await commands("local-list-version")
        assert held.status_code == 200, held.text
        assert held.json()["status"] == "Accepted"
        assert held.json()["response"]["list_version"] == 0
        cp.auth.cache["TAG-CACHED"] = "Accepted"
        cleared = await commands("clear-cache")
        assert cleared.json()["status"] == "Accepted"
        assert cp.auth.cache == {}
        assert {"GetLocalListVersion", "ClearCache"} <= set(actions(cp))


async def test_data_transfer_answers_the_chargers_status_and_data(
    edge: EdgeDaemon, version: Version, commands: Callable[..., Any]
) -> None:
    async with charger(edge, "CP-MORE", version) as cp:
        await online(cp)
        echoed = await commands(
            "data-transfer", {"vendor_id": "evpark", "message_id": "echo", "data": "ping"}
        )
        assert echoed.status_code == 200, echoed.text
        assert echoed.json()["status"] == "Accepted"
        assert echoed.json()["response"]["data"] == "ping"
        unknown = await commands("data-transfer", {"vendor_id": "ACME", "message_id": "x"})
        assert unknown.json()["status"] == "UnknownVendorId"
        sent = [e.payload for e in cp.received if e.action == "DataTransfer"]
        assert sent == [
            {"vendorId": "evpark", "messageId": "echo", "data": "ping"},
            {"vendorId": "ACME", "messageId": "x"},
        ]
        refused = await commands("data-transfer", {"vendor_id": ""})
        assert refused.status_code == 422


async def test_transaction_status_is_asked_of_a_201_station_only(
    edge: EdgeDaemon, version: Version, commands: Callable[..., Any]
) -> None:
    async with charger(edge, "CP-MORE", version) as cp:
        await online(cp)
        asked = await commands("transaction-status", {"transaction_id": "tx-unknown"})
        if version is Version.V16:
            assert asked.status_code == 422, asked.text
            assert "GetTransactionStatus" not in actions(cp)
            return
        assert asked.status_code == 200, asked.text
        assert asked.json()["response"]["messagesInQueue"] is False
        anything = await commands("transaction-status")
        assert anything.status_code == 200, anything.text
        assert [e.payload for e in cp.received if e.action == "GetTransactionStatus"] == [
            {"transactionId": "tx-unknown"},
            {},
        ]


async def test_extended_trigger_message_for_what_only_it_can_trigger(
    edge: EdgeDaemon, version: Version, commands: Callable[..., Any]
) -> None:
    async with charger(edge, "CP-MORE", version) as cp:
        await online(cp)
        if version is Version.V201:
            # one TriggerMessage in 2.0.1: "extended" changes nothing
            answer = await commands("trigger", {"message": "Heartbeat", "extended": True})
            assert answer.json()["status"] == "Accepted"
            assert "TriggerMessage" in actions(cp)
            return
        signing = await commands("trigger", {"message": "SignChargePointCertificate"})
        assert signing.json()["status"] == "Accepted", signing.text
        heartbeat = await commands("trigger", {"message": "Heartbeat", "extended": True})
        assert heartbeat.json()["status"] == "Accepted"
        plain = await commands("trigger", {"message": "Heartbeat"})
        assert plain.json()["status"] == "Accepted"

        async def signed() -> bool:
            return any(e.action == "SignCertificate" for e in cp.sent)

        await eventually(signed, "the charger sent its certificate signing request")
    triggers = [
        (e.action, e.payload["requestedMessage"]) for e in cp.received if "Trigger" in e.action
    ]
    assert triggers == [
        ("ExtendedTriggerMessage", "SignChargePointCertificate"),
        ("ExtendedTriggerMessage", "Heartbeat"),
        ("TriggerMessage", "Heartbeat"),
    ]


def id_tag_list(version: int) -> dict[str, Any]:
    tags = [{"id_tag": "RFID-1", "status": "Accepted"}, {"id_tag": "RFID-2", "status": "Blocked"}]
    return {"version": version, "full": True, "tags": tags}


async def test_a_charger_back_with_an_older_local_list_gets_the_current_one(
    edge: EdgeDaemon, version: Version
) -> None:
    # central's list comes while the charger is away
    assert (await run_command(edge, "update_id_tags", id_tag_list(41))).status == "accepted"
    async with charger(edge, "CP-LIST", version) as cp:
        await online(cp)
        full = await asyncio.wait_for(cp.wait_for_command("SendLocalList"), 10)
        assert "GetLocalListVersion" in actions(cp)
        number = "listVersion" if version is Version.V16 else "versionNumber"
        assert full.payload[number] == 41
        assert full.payload["updateType"] == "Full"

        async def applied() -> bool:
            return cp.auth.local_version == 41

        await eventually(applied, "the charger holds list 41")
        assert cp.auth.local.get("RFID-2") == "Blocked"
        # a reboot with the current list: asked, not sent again
        await cp.reboot("SoftReset", "RemoteReset")
        await online(cp)

        async def asked_twice() -> bool:
            return actions(cp).count("GetLocalListVersion") == 2

        await eventually(asked_twice, "the list version was asked after the reboot")
        await asyncio.sleep(0.3)
        assert actions(cp).count("SendLocalList") == 1


async def test_no_list_check_without_a_numbered_list(edge: EdgeDaemon, version: Version) -> None:
    async with charger(edge, "CP-NOLIST", version) as cp:
        await online(cp)
        await asyncio.sleep(0.3)
        assert "GetLocalListVersion" not in actions(cp)


async def test_a_reservation_made_and_cancelled_reaches_the_charger(
    config_factory: Callable[..., SiteConfig], version: Version
) -> None:
    slots = [{"id": "P1", "type": "ev", "charger": "CP-RES", "evse": 1}]
    config = config_factory(slots=slots, chargers=[{"id": "CP-RES"}])
    async with EdgeDaemon(config) as edge, charger(edge, "CP-RES", version) as cp:
        await online(cp)

        async def free() -> bool:
            assert edge.slots.model is not None
            return edge.slots.model.view(SlotId("P1")).state is SlotState.FREE

        await eventually(free, "the slot is free")
        reserve = {"reservation_id": "R-5", "vehicle_id": "EV-5", "ends_at": "2099-01-01T00:00:00Z"}
        reserved = await run_command(edge, "reserve", reserve)
        assert reserved.status == "accepted", reserved
        made = await asyncio.wait_for(cp.wait_for_command("ReserveNow"), 10)
        cancel = await run_command(edge, "cancel_reservation", {"reservation_id": "R-5"})
        assert cancel.status == "accepted", cancel
        cancelled = await asyncio.wait_for(cp.wait_for_command("CancelReservation"), 10)
        held = made.payload["reservationId" if version is Version.V16 else "id"]
        assert cancelled.payload == {"reservationId": held}
        assert cp.connectors[1].reservation is None
