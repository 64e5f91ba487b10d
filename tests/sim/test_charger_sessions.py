"""Simulated chargers of both versions against the test CSMS: boot, whole sessions step
by step, remote start and stop, the offline queue's replay, the random driver loop."""

from __future__ import annotations

import asyncio
import base64

import pytest

from sim.charger import SimCharger
from tests.sim.csms import VERSIONS, WAIT, MiniCsms, Received, config, energy_of


@pytest.mark.parametrize("version", VERSIONS)
async def test_boot_pending_then_accepted_heartbeat_and_status(
    csms: MiniCsms, version: str
) -> None:
    csms.boot_statuses = ["Pending"]
    async with SimCharger(config(csms, version, connectors=2)) as charger:
        async with asyncio.timeout(WAIT):
            await charger.wait_online()
        cp = charger.id
        await csms.wait_for(cp, "Heartbeat")
        boots = csms.of(cp, "BootNotification")
        assert len(boots) == 2  # Pending, retried after the interval, Accepted
        expected = base64.b64encode(f"{cp}:test-password-1".encode()).decode()
        assert csms.auth_headers[cp] == f"Basic {expected}"
        statuses = [c.payload for c in csms.of(cp, "StatusNotification")]
        if version == "1.6":
            assert [(s["connectorId"], s["status"]) for s in statuses] == [
                (0, "Available"),
                (1, "Available"),
                (2, "Available"),
            ]
        else:
            assert [(s["evseId"], s["connectorStatus"]) for s in statuses] == [
                (1, "Available"),
                (2, "Available"),
            ]


@pytest.mark.parametrize("version", VERSIONS)
async def test_whole_session_step_by_step(csms: MiniCsms, version: str) -> None:
    async with SimCharger(config(csms, version)) as charger:
        async with asyncio.timeout(WAIT):
            await charger.wait_online()
        cp = charger.id
        await charger.plug_in(1, soc=30.0, capacity_wh=60_000.0)
        assert await charger.authorize("DEMO-TAG-1") == "Accepted"
        tx = await charger.start(1, "DEMO-TAG-1")
        await charger.send_meter_values(1, n=5)
        await charger.stop(1, "Local")
        await charger.unplug(1)

    actions = [c.action for c in csms.of(cp) if c.action != "Heartbeat"]
    if version == "1.6":
        assert tx.remote_id == 100
        assert actions == [
            "BootNotification",
            "SecurityEventNotification",  # StartupOfTheDevice (Security Whitepaper)
            "StatusNotification",
            "StatusNotification",
            "StatusNotification",  # Preparing
            "Authorize",
            "StartTransaction",
            "StatusNotification",  # Charging
            *["MeterValues"] * 5,
            "StopTransaction",
            "StatusNotification",  # Finishing
            "StatusNotification",  # Available
        ]
        statuses = [c.payload["status"] for c in csms.of(cp, "StatusNotification")]
        assert statuses[2:] == ["Preparing", "Charging", "Finishing", "Available"]
        start = csms.of(cp, "StartTransaction")[0].payload
        assert start["meterStart"] == 12_345
        assert start["idTag"] == "DEMO-TAG-1"
        meters = csms.of(cp, "MeterValues")
        assert {m.payload["transactionId"] for m in meters} == {100}
        assert all(len(m.payload["meterValue"][0]["sampledValue"]) >= 4 for m in meters)
        energies = [energy_of(version, m) for m in meters]
        stop = csms.of(cp, "StopTransaction")[0].payload
        assert stop["transactionId"] == 100
        assert stop["reason"] == "Local"
        assert stop["meterStop"] >= energies[-1] - 1
        assert [d["sampledValue"][0]["context"] for d in stop["transactionData"]] == [
            "Transaction.Begin",
            "Transaction.End",
        ]
    else:
        events = [c.payload for c in csms.of(cp, "TransactionEvent")]
        assert [e["eventType"] for e in events] == ["Started", *["Updated"] * 5, "Ended"]
        assert [e["seqNo"] for e in events] == list(range(7))
        assert {e["transactionInfo"]["transactionId"] for e in events} == {tx.key}
        assert events[0]["triggerReason"] == "Authorized"
        assert events[0]["idToken"] == {"idToken": "DEMO-TAG-1", "type": "ISO14443"}
        assert events[-1]["transactionInfo"]["stoppedReason"] == "Local"
        assert not any(e.get("offline") for e in events)
        statuses = [c.payload["connectorStatus"] for c in csms.of(cp, "StatusNotification")]
        assert statuses == ["Available", "Occupied", "Available"]
        energies = [energy_of(version, Received(cp, "TransactionEvent", e)) for e in events[1:-1]]
        assert all(len(e["meterValue"][0]["sampledValue"]) >= 4 for e in events[1:-1])
    assert energies == sorted(energies)
    assert energies[-1] > energies[0]
    # a minute at 11 kW between samples: ~183 Wh each
    assert 150 < energies[1] - energies[0] < 200


@pytest.mark.parametrize("version", VERSIONS)
async def test_remote_start_and_stop_are_obeyed(csms: MiniCsms, version: str) -> None:
    async with SimCharger(config(csms, version)) as charger:
        async with asyncio.timeout(WAIT):
            await charger.wait_online()
        cp = charger.id
        if version == "1.6":
            answer = await csms.result(
                cp, "RemoteStartTransaction", {"idTag": "FLEET-0001", "connectorId": 1}
            )
            assert answer == {"status": "Accepted"}
            start = (await csms.wait_for(cp, "StartTransaction"))[0].payload
            assert start["idTag"] == "FLEET-0001"
            await csms.wait_for(cp, "StatusNotification", 3)  # 0, 1 at boot, then Preparing
            answer = await csms.result(cp, "RemoteStopTransaction", {"transactionId": 999})
            assert answer == {"status": "Rejected"}
            answer = await csms.result(cp, "RemoteStopTransaction", {"transactionId": 100})
            assert answer == {"status": "Accepted"}
            stop = (await csms.wait_for(cp, "StopTransaction"))[0].payload
            assert stop["transactionId"] == 100
            assert stop["reason"] == "Remote"
        else:
            request = {
                "idToken": {"idToken": "FLEET-0001", "type": "Central"},
                "remoteStartId": 42,
                "evseId": 1,
            }
            answer = await csms.result(cp, "RequestStartTransaction", request)
            assert answer == {"status": "Accepted"}
            started = (await csms.wait_for(cp, "TransactionEvent"))[0].payload
            assert started["triggerReason"] == "RemoteStart"
            assert started["transactionInfo"]["remoteStartId"] == 42
            tx_id = started["transactionInfo"]["transactionId"]
            answer = await csms.result(cp, "RequestStopTransaction", {"transactionId": tx_id})
            assert answer == {"status": "Accepted"}
            ended = (await csms.wait_for(cp, "TransactionEvent", 2))[1].payload
            assert ended["eventType"] == "Ended"
            assert ended["triggerReason"] == "RemoteStop"
            assert ended["transactionInfo"]["stoppedReason"] == "Remote"
        assert charger.transaction(1) is None
        assert [e.action for e in charger.received][-1].startswith(("Remote", "Request"))


async def test_offline_queue_replays_16_with_transaction_id_remapping(csms: MiniCsms) -> None:
    async with SimCharger(config(csms, "1.6")) as charger:
        async with asyncio.timeout(WAIT):
            await charger.wait_online()
        cp = charger.id
        await charger.start(1, "DEMO-TAG-1")  # online: id 100
        await charger.disconnect()
        await charger.send_meter_values(1, n=2)
        await charger.stop(1, "Local")
        await charger.unplug(1)
        # A whole session while offline: started under a local id.
        assert await charger.authorize("UNKNOWN-TAG") == "Accepted"  # offline, unknown allowed
        await charger.start(1, "DEMO-TAG-2")
        await charger.send_meter_values(1, n=1)
        await charger.stop(1, "EVDisconnected")
        assert len(charger.queue) == 6
        seen_before = len(csms.of(cp))
        await charger.reconnect()
        async with asyncio.timeout(WAIT):
            await charger.wait_online()
            await charger.flush()

    replayed = [
        c
        for c in csms.of(cp)[seen_before:]
        if c.action
        not in ("Heartbeat", "StatusNotification", "BootNotification", "SecurityEventNotification")
    ]
    assert [(c.action, c.payload.get("transactionId")) for c in replayed] == [
        ("MeterValues", 100),
        ("MeterValues", 100),
        ("StopTransaction", 100),
        ("StartTransaction", None),
        ("MeterValues", 101),
        ("StopTransaction", 101),
    ]
    energies = [energy_of("1.6", c) for c in replayed if c.action == "MeterValues"]
    assert energies == sorted(energies)
    assert replayed[3].payload["idTag"] == "DEMO-TAG-2"
    # Not queued: no Authorize and no stale statuses replayed; the current one is sent once.
    after = csms.of(cp)[seen_before:]
    assert "Authorize" not in [c.action for c in after]
    assert [c.payload["status"] for c in after if c.action == "StatusNotification"] == [
        "Available",
        "Finishing",
    ]


async def test_offline_queue_replays_201_with_offline_flag(csms: MiniCsms) -> None:
    async with SimCharger(config(csms, "2.0.1")) as charger:
        async with asyncio.timeout(WAIT):
            await charger.wait_online()
        cp = charger.id
        tx = await charger.start(1, "DEMO-TAG-1")
        await charger.send_meter_values(1, n=1)
        await charger.disconnect()
        await charger.send_meter_values(1, n=2)
        await charger.stop(1, "Local")
        assert len(charger.queue) == 3
        await charger.reconnect()
        async with asyncio.timeout(WAIT):
            await charger.wait_online()
            await charger.flush()

    events = [c.payload for c in csms.of(cp, "TransactionEvent")]
    assert [(e["eventType"], e["seqNo"], e.get("offline", False)) for e in events] == [
        ("Started", 0, False),
        ("Updated", 1, False),
        ("Updated", 2, True),
        ("Updated", 3, True),
        ("Ended", 4, True),
    ]
    assert {e["transactionInfo"]["transactionId"] for e in events} == {tx.key}
    assert len(csms.of(cp, "BootNotification")) == 2


@pytest.mark.parametrize("version", VERSIONS)
async def test_driver_loop_runs_sessions_on_its_own(csms: MiniCsms, version: str) -> None:
    fast = config(
        csms,
        version,
        drive=True,
        auto_meter_values=True,
        meter_interval=0.05,
        speed=3600.0,
        idle_seconds=(10.0, 60.0),
        session_seconds=(1800.0, 3600.0),
        session_energy_wh=(2_000.0, 4_000.0),
        linger_seconds=(10.0, 60.0),
    )
    async with SimCharger(fast) as charger:
        end = "StopTransaction" if version == "1.6" else "TransactionEvent"
        async with asyncio.timeout(WAIT):
            while not any(
                c.action == end and c.payload.get("eventType", "Ended") == "Ended"
                for c in csms.of(charger.id)
            ):
                await csms.wait_for(charger.id, end, len(csms.of(charger.id, end)) + 1)
    tx_messages = [
        c
        for c in csms.of(charger.id)
        if c.action in ("MeterValues", "TransactionEvent")
        and c.payload.get("meterValue")
        and c.payload.get("eventType", "Updated") == "Updated"
    ]
    energies = [energy_of(version, c) for c in tx_messages]
    assert len(energies) >= 2
    assert energies == sorted(energies)
