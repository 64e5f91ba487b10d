"""Issue 13 points 4 and 7 against a running daemon and simulated chargers of both
versions: a charger held Pending while its configuration is read and the site's keys
applied, then accepted; the configuration stored and served; not provisioned again on a
reconnect; kept across a restart; a Pending 2.0.1 station's other messages refused; and
per-charger strict validation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from edge.config import SiteConfig
from edge.daemon import EdgeDaemon
from ocpp_handlers.schemas import Version
from sim.charger import SimCharger
from tests.edge.conftest import PASSWORD, ocpp_url, sim_charger_config
from tests.edge.ocpp.test_meter_quirks import T0, meter_values
from tests.edge.site_commands import wire
from tests.edge.ui.conftest import add_users, logged_in
from tests.ocpp_client import CallErrorReceived, RawCharger
from tests.ocpp_flows import flow_for
from tests.polling import eventually

# A key each version's simulated charger takes, and one it refuses (read-only), with
# the values the site configures for them.
TAKEN = {Version.V16: "ConnectionTimeOut", Version.V201: "TxCtrlr.EVConnectionTimeOut"}
REFUSED = {Version.V16: "NumberOfConnectors", Version.V201: "LocalAuthListCtrlr.Entries"}
REFUSED_VALUE = {Version.V16: "3", Version.V201: "5"}


def provisioned_config(factory: Callable[..., SiteConfig], **charger: Any) -> SiteConfig:
    return factory(
        ocpp={"pending_interval": 60, "config": {"ConnectionTimeOut": "45"},
              "variables": {"TxCtrlr.EVConnectionTimeOut": "45"}},
        chargers=[
            {"id": "CP-LOCKED", "password": PASSWORD},
            {"id": "CP-PROV", "boot": "pending", "config": {"NumberOfConnectors": "3"},
             "variables": {"LocalAuthListCtrlr.Entries": "5"}, **charger},
        ],
    )  # fmt: skip


def held(cp: SimCharger, version: Version, key: str) -> str:
    protocol: Any = cp.protocol
    if version is Version.V16:
        return str(protocol.keys.get(key))
    component, variable = key.split(".")
    return str(protocol.model.get(component, variable))


def received(cp: SimCharger) -> list[str]:
    return [e.action for e in cp.received]


@asynccontextmanager
async def running(
    config: SiteConfig, version: Version
) -> AsyncIterator[tuple[EdgeDaemon, SimCharger]]:
    """The daemon, and the charger CP-PROV connected to it."""
    async with (
        EdgeDaemon(config) as edge,
        SimCharger(sim_charger_config(edge, "CP-PROV", wire(version))) as cp,
    ):
        yield edge, cp


async def configuration(daemon: EdgeDaemon, charger_id: str) -> httpx.Response:
    base = f"http://127.0.0.1:{daemon.http_port}/api/chargers/{charger_id}"
    async with httpx.AsyncClient(base_url=base, timeout=15) as api:
        return await api.get("/configuration")


async def test_pending_boot_reads_applies_and_accepts(
    config_factory: Callable[..., SiteConfig], version: Version
) -> None:
    config = provisioned_config(config_factory)
    read = "GetConfiguration" if version is Version.V16 else "GetBaseReport"
    async with running(config, version) as (edge, cp):
        async with asyncio.timeout(10):  # well before the 60 s Pending interval
            await cp.wait_online()
        sent = [e.action for e in cp.sent]
        assert sent.count("BootNotification") == 2  # Pending, then the triggered one
        # while Pending the charger sent nothing but its boot and the report asked for
        second = sent.index("BootNotification", 1)
        assert set(sent[:second]) <= {"BootNotification", "NotifyReport"}
        assert held(cp, version, TAKEN[version]) == "45"
        assert held(cp, version, REFUSED[version]) != REFUSED_VALUE[version]
        assert "TriggerMessage" in received(cp)
        shown = (await configuration(edge, "CP-PROV")).json()
        assert shown["read_at"] is not None
        assert shown["source"] == ("GetConfiguration" if version is Version.V16 else "NotifyReport")
        assert shown["provisioning"]["state"] == "partial"
        assert shown["provisioning"]["applied"] == [TAKEN[version]]
        assert shown["provisioning"]["failed"] == [{"key": REFUSED[version], "status": "Rejected"}]
        listed = shown["keys" if version is Version.V16 else "variables"]
        values = {entry["key"]: entry["value"] for entry in listed}
        assert values[TAKEN[version]] == "45"
        # the whole configuration: 2.0.1 in several NotifyReport parts (20 a part)
        assert len(values) > 20
        # and the charger page shows it to the technician
        await add_users(edge)
        async with logged_in(edge, "vic") as viewer:
            page = (await viewer.http.get("/chargers/CP-PROV")).text
        assert 'id="charger-configuration"' in page
        assert f"<code>{REFUSED[version]}</code> (Rejected)" in page
        assert f"<td><code>{TAKEN[version]}</code></td><td>45</td>" in page
        # a reconnect is accepted at once: nothing is read or applied again
        await cp.link.disconnect()
        cp.link.reconnect()
        async with asyncio.timeout(10):
            await cp.wait_online()
        assert received(cp).count(read) == 1
    # the stored configuration outlives the daemon
    async with EdgeDaemon(config) as edge:
        again = (await configuration(edge, "CP-PROV")).json()
        assert again == shown
        async with SimCharger(sim_charger_config(edge, "CP-PROV", wire(version))) as cp:
            async with asyncio.timeout(10):
                await cp.wait_online()
            assert read not in received(cp)  # provisioned before the restart


async def test_a_change_of_keys_is_applied_on_the_next_boot(
    config_factory: Callable[..., SiteConfig], version: Version
) -> None:
    first = provisioned_config(config_factory)
    async with running(first, version) as (edge, cp):
        async with asyncio.timeout(10):
            await cp.wait_online()
    # the 1.6 simulator takes a new WebSocketPingInterval at its next reboot
    changed = provisioned_config(
        config_factory, config={"ConnectionTimeOut": "50", "WebSocketPingInterval": "30"},
        variables={"TxCtrlr.EVConnectionTimeOut": "50"},
    )  # fmt: skip
    async with running(changed, version) as (edge, cp):
        async with asyncio.timeout(10):
            await cp.wait_online()
        assert held(cp, version, TAKEN[version]) == "50"
        shown = (await configuration(edge, "CP-PROV")).json()
        reboot = ["WebSocketPingInterval"] if version is Version.V16 else []
        assert shown["provisioning"] == {
            "state": "done", "applied": [TAKEN[version], *reboot], "failed": [],
            "pending_reboot": reboot,
        }  # fmt: skip


async def test_an_accepted_charger_gets_its_keys_after_the_boot(
    config_factory: Callable[..., SiteConfig], version: Version
) -> None:
    config = provisioned_config(config_factory, boot="accept")
    async with running(config, version) as (_edge, cp):
        async with asyncio.timeout(10):
            await cp.wait_online()
        assert [e.action for e in cp.sent].count("BootNotification") == 1

        async def applied() -> bool:
            return held(cp, version, TAKEN[version]) == "45"

        await eventually(applied, "key applied")
        assert "TriggerMessage" not in received(cp)


async def test_the_configuration_routes(
    edge: EdgeDaemon, api: httpx.AsyncClient, version: Version
) -> None:
    assert (await api.get("/api/chargers/CP-NOBODY/configuration")).status_code == 404
    assert (await api.post("/api/chargers/CP-NOBODY/read-configuration")).status_code == 404
    async with SimCharger(sim_charger_config(edge, "CP-READ", wire(version))) as cp:
        async with asyncio.timeout(10):
            await cp.wait_online()
        never = (await api.get("/api/chargers/CP-READ/configuration")).json()
        assert never["read_at"] is None
        assert never["provisioning"]["state"] == "none"
        fresh = await api.post("/api/chargers/CP-READ/read-configuration")
        assert fresh.status_code == 200, fresh.text
        listed = fresh.json()["keys" if version is Version.V16 else "variables"]
        assert fresh.json()["read_at"] is not None
        assert len(listed) > 10
        await cp.link.disconnect()
        offline = await api.post("/api/chargers/CP-READ/read-configuration")
        assert offline.status_code == 409


async def test_a_pending_station_may_send_only_its_boot(
    config_factory: Callable[..., SiteConfig],
) -> None:
    config = provisioned_config(config_factory)
    async with (
        EdgeDaemon(config) as edge,
        RawCharger(
            ocpp_url(edge), "CP-PROV", Version.V201, responder=lambda a, p: {"status": "Rejected"}
        ) as charger,
    ):
        answer = await flow_for(charger).boot()
        assert answer["status"] == "Pending"
        assert answer["interval"] == 60
        with pytest.raises(CallErrorReceived) as refused:
            await charger.call("Heartbeat", {})
        assert refused.value.code == "SecurityError"
        # the read failed (GetBaseReport Rejected): accepted anyway, the failure kept

        async def triggered() -> bool:
            return any(action == "TriggerMessage" for action, _ in charger.received_calls)

        await eventually(triggered, "the boot triggered")
        assert (await flow_for(charger).boot())["status"] == "Accepted"
        assert "currentTime" in await charger.call("Heartbeat", {})
        shown = (await configuration(edge, "CP-PROV")).json()
        assert shown["provisioning"]["state"] == "failed"
        assert shown["provisioning"]["reason"] == "Rejected: GetBaseReport was not accepted"


@pytest.mark.parametrize("validation", ["tolerant", "strict"])
async def test_strict_validation_refuses_a_vendor_quirk(
    config_factory: Callable[..., SiteConfig], version: Version, validation: str
) -> None:
    config = config_factory(chargers=[{"id": "CP-ALFEN", "validation": validation}])
    async with EdgeDaemon(config) as edge, RawCharger(ocpp_url(edge), "CP-ALFEN", version) as cp:
        flow = flow_for(cp)
        await flow.boot()
        await flow.plug(1)
        tx = await flow.start(1, "TAG-OK", 1000, T0)
        frame = meter_values(version, tx, 4000, {"context": "CurrentMax"})
        if validation == "tolerant":
            assert await cp.call("MeterValues", frame) == {}
        else:
            with pytest.raises(CallErrorReceived) as refused:
                await cp.call("MeterValues", frame)
            assert refused.value.code == "PropertyConstraintViolation"


async def test_the_simulator_reports_its_start_up_as_a_security_event(
    edge: EdgeDaemon, api: httpx.AsyncClient, version: Version
) -> None:
    settings = sim_charger_config(edge, "CP-SEC", wire(version), security_event_at_boot=True)
    async with SimCharger(settings) as cp:
        async with asyncio.timeout(10):
            await cp.wait_online()
        await cp.reboot("HardReset", "RemoteReset")

        async def two_events() -> bool:
            events = (await api.get("/api/chargers/CP-SEC/events")).json()
            return [e["data"]["type"] for e in events if e["kind"] == "security_event"] == [
                "ResetOrReboot", "StartupOfTheDevice",
            ]  # fmt: skip

        await eventually(two_events, "a security event at each boot")


def _station(action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A 2.0.1 station that takes every variable set (reports are the test's to send)."""
    if action == "SetVariables":
        return {"setVariableResult": [
            {"attributeStatus": "Accepted", "component": d["component"], "variable": d["variable"]}
            for d in payload["setVariableData"]
        ]}  # fmt: skip
    return {"status": "Accepted"}


def _report(request_id: int, seq_no: int, tbc: bool, component: str, name: str, value: str,
            mutability: str = "ReadWrite") -> dict[str, Any]:  # fmt: skip
    return {"requestId": request_id, "generatedAt": "2026-12-02T08:00:00Z", "seqNo": seq_no,
            "tbc": tbc, "reportData": [{
                "component": {"name": component}, "variable": {"name": name},
                "variableAttribute": [{"type": "Actual", "value": value,
                                       "mutability": mutability}],
            }]}  # fmt: skip


async def test_report_parts_are_joined_by_seq_no_and_a_silent_station_times_out(
    config_factory: Callable[..., SiteConfig],
) -> None:
    config = config_factory(
        ocpp={"boot": "pending", "provisioning_timeout": 0.5,
              "variables": {"TxCtrlr.EVConnectionTimeOut": "45", "AuthCtrlr.Enabled": "false"}},
    )  # fmt: skip
    async with EdgeDaemon(config) as edge:
        async with RawCharger(
            ocpp_url(edge), "CP-PARTS", Version.V201, responder=_station
        ) as station:
            assert (await flow_for(station).boot())["status"] == "Pending"

            def calls(action: str) -> list[dict[str, Any]]:
                return [p for a, p in station.received_calls if a == action]

            async def asked() -> bool:
                return bool(calls("GetBaseReport"))

            await eventually(asked, "GetBaseReport")
            request_id = calls("GetBaseReport")[0]["requestId"]
            # the last part first: the read waits for every seqNo up to it
            last = _report(request_id, 1, False, "AuthCtrlr", "Enabled", "true")
            first = _report(request_id, 0, True, "TxCtrlr", "EVConnectionTimeOut", "45")
            assert await station.call("NotifyReport", last) == {}
            assert await station.call("NotifyReport", first) == {}

            async def triggered() -> bool:
                return bool(calls("TriggerMessage"))

            await eventually(triggered, "the boot triggered")
            # only what the station did not hold already was set
            (sent,) = calls("SetVariables")
            assert [(d["component"]["name"], d["attributeValue"])
                    for d in sent["setVariableData"]] == [("AuthCtrlr", "false")]  # fmt: skip
            shown = (await configuration(edge, "CP-PARTS")).json()
            assert {v["key"]: v["value"] for v in shown["variables"]} == {
                "AuthCtrlr.Enabled": "false", "TxCtrlr.EVConnectionTimeOut": "45",
            }  # fmt: skip
            assert shown["provisioning"]["state"] == "done"
        # a station that never sends its report: failed at the timeout, and accepted
        async with RawCharger(
            ocpp_url(edge), "CP-SILENT", Version.V201, responder=_station
        ) as station:
            assert (await flow_for(station).boot())["status"] == "Pending"

            async def failed() -> bool:
                state = (await configuration(edge, "CP-SILENT")).json()["provisioning"]
                return bool(state["state"] == "failed")

            await eventually(failed, "the read timed out")
            shown = (await configuration(edge, "CP-SILENT")).json()["provisioning"]
            assert shown["reason"] == "the charger's report did not come in time"
            assert (await flow_for(station).boot())["status"] == "Accepted"
