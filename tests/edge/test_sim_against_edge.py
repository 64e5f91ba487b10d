"""The simulator against the real edge: whole sessions, remote commands, and the offline
queue of a charger that lost its connection (replayed and recorded once)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import httpx

from edge.daemon import EdgeDaemon
from ocpp_handlers.schemas import Version
from sim.charger import OcppVersion, SimCharger, SimChargerConfig
from tests.edge.conftest import sim_charger_config
from tests.polling import eventually


def sim_config(edge: EdgeDaemon, charger_id: str, version: Version) -> SimChargerConfig:
    wire: OcppVersion = "1.6" if version is Version.V16 else "2.0.1"
    return sim_charger_config(edge, charger_id, wire, seed=5)


async def sessions(edge: EdgeDaemon, charger_id: str) -> list[dict[str, object]]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{edge.http_port}") as api:
        found: list[dict[str, object]] = (
            await api.get("/api/sessions", params={"charger": charger_id})
        ).json()
    return found


async def test_offline_session_is_replayed_and_recorded_once(
    edge: EdgeDaemon, version: Version
) -> None:
    async with SimCharger(sim_config(edge, "SIM-OFF", version)) as cp:
        async with asyncio.timeout(10):
            await cp.wait_online()
        await cp.plug_in(1, soc=20.0)
        assert await cp.authorize("TAG-OK") == "Accepted"
        await cp.start(1, "TAG-OK")
        await cp.send_meter_values(1, n=2)
        await cp.disconnect()
        await cp.send_meter_values(1, n=3)  # queued while offline
        stopped = await cp.stop(1, "Local")
        assert stopped is not None
        await cp.reconnect()
        async with asyncio.timeout(10):
            await cp.wait_online()
            await cp.flush()
        expected_wh = (
            stopped.last_sample.energy_wh - stopped.meter_start_wh if stopped.last_sample else None
        )

    found = await sessions(edge, "SIM-OFF")
    assert len(found) == 1, found
    assert found[0]["status"] == "completed"
    assert expected_wh is not None
    assert abs(float(found[0]["energy_wh"]) - expected_wh) < 1.0  # type: ignore[arg-type]
    periodic = await edge.store.read(
        lambda c: [
            row[0]
            for row in c.execute(
                "SELECT energy_wh FROM meter_values WHERE session_id = ? "
                "AND context = 'Sample.Periodic' ORDER BY id",
                (found[0]["id"],),
            )
        ]
    )
    # 2 sent online, 3 replayed after the reconnect: in order, none twice
    assert len(periodic) == 5
    assert periodic == sorted(periodic)
    assert len(set(periodic)) == 5


async def test_remote_start_and_stop_reach_the_simulated_charger(
    edge: EdgeDaemon, version: Version
) -> None:
    config = replace(sim_config(edge, "SIM-REMOTE", version), auto_meter_values=True)
    async with SimCharger(config) as cp:
        async with asyncio.timeout(10):
            await cp.wait_online()
        await cp.plug_in(1)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{edge.http_port}", timeout=10
        ) as api:
            started = await api.post(
                "/api/chargers/SIM-REMOTE/remote-start", json={"id_tag": "TAG-OK", "evse_id": 1}
            )
            assert started.json()["status"] == "Accepted", started.text

            async def active() -> bool:
                return any(s["status"] == "active" for s in await sessions(edge, "SIM-REMOTE"))

            await eventually(active, "the remote start became a session")
            stopped = await api.post("/api/chargers/SIM-REMOTE/remote-stop", json={})
            assert stopped.json()["status"] == "Accepted", stopped.text

            async def completed() -> bool:
                return [s["status"] for s in await sessions(edge, "SIM-REMOTE")] == ["completed"]

            await eventually(completed, "the remote stop ended the session")
            reset = await api.post("/api/chargers/SIM-REMOTE/reset", json={"type": "soft"})
            assert reset.json()["status"] == "Accepted"


async def test_every_command_reaches_a_charger_of_each_version(
    edge: EdgeDaemon, version: Version
) -> None:
    async with SimCharger(sim_config(edge, "SIM-CMD", version)) as cp:
        async with asyncio.timeout(10):
            await cp.wait_online()
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{edge.http_port}/api/chargers/SIM-CMD", timeout=10
        ) as api:

            async def command(name: str, body: dict[str, object]) -> dict[str, object]:
                reply = await api.post(f"/{name}", json=body)
                assert reply.status_code == 200, (name, reply.text)
                answer: dict[str, object] = reply.json()
                return answer

            assert (await command("unlock", {"evse_id": 1}))["status"] in ("Unlocked", "Accepted")
            assert (await command("availability", {"operative": False, "evse_id": 1}))[
                "status"
            ] in (
                "Accepted",
                "Scheduled",
            )
            assert (await command("availability", {"operative": True, "evse_id": 1}))[
                "status"
            ] == "Accepted"
            assert (await command("trigger", {"message": "Heartbeat"}))["status"] == "Accepted"
            if version is Version.V16:
                keys = await command("get-configuration", {"keys": ["HeartbeatInterval"]})
                listed = keys["response"]["configurationKey"]  # type: ignore[index]
                assert [k["key"] for k in listed] == ["HeartbeatInterval"]  # type: ignore[attr-defined]
                changed = await command(
                    "change-configuration", {"key": "MeterValueSampleInterval", "value": "30"}
                )
                assert changed["status"] == "Accepted"
                again = await command("get-configuration", {"keys": ["MeterValueSampleInterval"]})
                assert again["response"]["configurationKey"][0]["value"] == "30"  # type: ignore[index]
            else:
                variable = {"component": "SampledDataCtrlr", "variable": "TxUpdatedInterval"}
                assert (
                    await command("set-variables", {"variables": [{**variable, "value": "30"}]})
                )["status"] == "Accepted"
                got = await command("get-variables", {"variables": [variable]})
                assert got["status"] == "Accepted"
                assert got["response"]["getVariableResult"][0]["attributeValue"] == "30"  # type: ignore[index]
        received = {e.action for e in cp.received}
    if version is Version.V16:
        assert {
            "UnlockConnector",
            "ChangeAvailability",
            "TriggerMessage",
            "GetConfiguration",
            "ChangeConfiguration",
        } <= received
    else:
        assert {
            "UnlockConnector",
            "ChangeAvailability",
            "TriggerMessage",
            "GetVariables",
            "SetVariables",
        } <= received
