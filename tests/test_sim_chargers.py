"""The charger simulator against a small CSMS written here (plain websockets on port 0).

The CSMS validates every frame the simulator sends (its calls and its answers to our
calls) against the official schemas with jsonschema, independently of the simulator's
own fastjsonschema validators.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import random
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.typing import Subprotocol

from sim.backoff import Backoff
from sim.charger import SimCharger
from sim.charger_fleet import FleetOptions, fleet_configs
from sim.charger_model import SimChargerConfig
from sim.curve import AcCurve, ConnectorMeter, DcCurve
from sim.offline_queue import OfflineQueue, QueuedMessage

VERSIONS = ["1.6", "2.0.1"]
WAIT = 10.0


# -- the test CSMS -------------------------------------------------------------------


def _schema(version: str, action: str, kind: str) -> dict[str, Any]:
    package = "ocpp.v16" if version == "1.6" else "ocpp.v201"
    if kind == "response":
        name = f"{action}Response.json"
    else:
        name = f"{action}.json" if version == "1.6" else f"{action}Request.json"
    text = resources.files(package).joinpath("schemas", name).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    schema.pop("$id", None)
    return schema


def check(version: str, action: str, kind: str, payload: dict[str, Any]) -> None:
    jsonschema.validate(
        payload, _schema(version, action, kind), format_checker=jsonschema.FormatChecker()
    )


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Received:
    charger: str
    action: str
    payload: dict[str, Any]


@dataclass
class MiniCsms:
    """Hard-coded, schema-valid answers; records everything; calls chargers on demand."""

    heartbeat_interval: int = 1
    boot_statuses: list[str] = field(default_factory=list)  # then Accepted
    calls: list[Received] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    auth_headers: dict[str, str] = field(default_factory=dict)
    connections: dict[str, ServerConnection] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    tx_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(100))
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _pending: dict[str, asyncio.Future[Any]] = field(default_factory=dict)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    def of(self, charger: str, action: str | None = None) -> list[Received]:
        return [c for c in self.calls if c.charger == charger and action in (None, c.action)]

    async def wait_for(self, charger: str, action: str, count: int = 1) -> list[Received]:
        async with asyncio.timeout(WAIT):
            while len(self.of(charger, action)) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.of(charger, action)

    async def handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        charger = ws.request.path.rsplit("/", 1)[-1]
        version = "1.6" if ws.subprotocol == "ocpp1.6" else "2.0.1"
        self.versions[charger] = version
        self.auth_headers[charger] = ws.request.headers.get("Authorization", "")
        self.connections[charger] = ws
        async for raw in ws:
            frame = json.loads(raw)
            if frame[0] == 2:
                _, unique_id, action, payload = frame
                try:
                    check(version, action, "request", payload)
                except jsonschema.ValidationError as err:
                    self.violations.append(f"{charger} {action}: {err.message}")
                self.calls.append(Received(charger, action, payload))
                self._arrived.set()
                answer = self.answer(charger, version, action, payload)
                check(version, action, "response", answer)  # our own answers are valid too
                await ws.send(json.dumps([3, unique_id, answer]))
            elif frame[0] in (3, 4):
                future = self._pending.pop(frame[1], None)
                if future is not None and not future.done():
                    future.set_result(frame)

    def answer(
        self, charger: str, version: str, action: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        if action == "BootNotification":
            status = self.boot_statuses.pop(0) if self.boot_statuses else "Accepted"
            return {"status": status, "currentTime": now(), "interval": self.heartbeat_interval}
        if action == "Heartbeat":
            return {"currentTime": now()}
        if version == "1.6":
            if action == "Authorize":
                status = "Blocked" if payload["idTag"] == "BLOCKED" else "Accepted"
                return {"idTagInfo": {"status": status}}
            if action == "StartTransaction":
                return {"transactionId": next(self.tx_ids), "idTagInfo": {"status": "Accepted"}}
            if action == "StopTransaction":
                return {"idTagInfo": {"status": "Accepted"}}
            if action == "DataTransfer":
                return {"status": "Accepted"}
            return {}
        if action == "Authorize":
            return {"idTokenInfo": {"status": "Accepted"}}
        if action == "TransactionEvent" and payload["eventType"] == "Started":
            return {"idTokenInfo": {"status": "Accepted"}}
        return {}

    async def call(self, charger: str, action: str, payload: dict[str, Any]) -> list[Any]:
        """Send a CALL, return the charger's [3, id, payload] or [4, id, code, ...]."""
        version = self.versions[charger]
        unique_id = f"csms-{next(self._ids)}"
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[unique_id] = future
        await self.connections[charger].send(json.dumps([2, unique_id, action, payload]))
        async with asyncio.timeout(WAIT):
            frame: list[Any] = await future
        if frame[0] == 3:
            check(version, action, "response", frame[2])
        return frame

    async def result(self, charger: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        frame = await self.call(charger, action, payload)
        assert frame[0] == 3, frame
        result: dict[str, Any] = frame[2]
        return result


@pytest.fixture
async def csms() -> AsyncIterator[MiniCsms]:
    mini = MiniCsms()
    server: Server
    async with serve(
        mini.handler,
        "127.0.0.1",
        0,
        subprotocols=[Subprotocol("ocpp1.6"), Subprotocol("ocpp2.0.1")],
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        mini.url = f"ws://127.0.0.1:{port}/ocpp"
        yield mini
    assert mini.violations == []


def config(csms: MiniCsms, version: str, **changes: Any) -> SimChargerConfig:
    tag = "16" if version == "1.6" else "201"
    base = SimChargerConfig(
        charge_point_id=f"SIM-{tag}-001",
        url=csms.url,
        version=version,  # type: ignore[arg-type]
        password="test-password-1",
        meter_interval=60.0,
        speed=1.0,
        auto_meter_values=False,
        seed=7,
        start_register_wh=12_345.0,
        backoff_initial=0.05,
        backoff_max=0.2,
        call_timeout=5.0,
    )
    return replace(base, **changes)


def energy_of(version: str, received: Received) -> float:
    for meter_value in received.payload.get("meterValue", []):
        for sampled in meter_value["sampledValue"]:
            if (
                sampled.get("measurand", "Energy.Active.Import.Register")
                == "Energy.Active.Import.Register"
            ):
                return float(sampled["value"])
    raise AssertionError(f"no energy in {received.payload}")


# -- pure parts -----------------------------------------------------------------------


def test_curves_and_meter_are_monotonic() -> None:
    meter = ConnectorMeter(curve=DcCurve(max_power_w=50_000), register_wh=1000.0)
    meter.plug(soc=40.0, capacity_wh=60_000.0)
    registers, powers = [], []
    for _ in range(40):
        sample = meter.advance(300)
        registers.append(sample.energy_wh)
        powers.append(sample.power_w)
    assert registers == sorted(registers)
    assert powers[0] == 50_000  # tapers as SoC rises
    assert powers[-1] < powers[0]
    assert meter.soc == 100.0
    assert meter.advance(300).power_w == 0.0
    assert AcCurve(22_000).power_w(50.0) == 22_000
    ac = ConnectorMeter(curve=AcCurve(11_000))
    assert round(ac.advance(3600).energy_wh) == 11_000
    assert round(ac.sample().current_a, 1) == 15.9  # 11 kW on three phases at 230 V


def test_backoff_grows_with_jitter_and_resets() -> None:
    backoff = Backoff(initial=1.0, maximum=8.0, rng=random.Random(3))
    delays = [backoff.next_delay() for _ in range(6)]
    ceilings = [1, 2, 4, 8, 8, 8]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    backoff.reset()
    assert backoff.next_delay() <= 1.0


async def test_offline_queue_drops_periodic_samples_first() -> None:
    queue = OfflineQueue(max_items=3)
    start = QueuedMessage("StartTransaction", {}, "t")
    samples = [QueuedMessage("MeterValues", {"n": i}, "t", droppable=True) for i in range(2)]
    stop = QueuedMessage("StopTransaction", {}, "t")
    for message in [start, *samples, stop]:
        queue.append(message)
    assert [m.action for m in queue.items()] == [
        "StartTransaction",
        "MeterValues",
        "StopTransaction",
    ]
    assert queue.items()[1].payload == {"n": 1}
    assert queue.dropped == 1


def test_fleet_ids_versions_and_seeds() -> None:
    configs = fleet_configs(FleetOptions(count=3, version="mixed", prefix="X", seed=5))
    assert [(c.charge_point_id, c.version) for c in configs] == [
        ("X-16-001", "1.6"),
        ("X-201-001", "2.0.1"),
        ("X-16-002", "1.6"),
    ]
    assert configs == fleet_configs(FleetOptions(count=3, version="mixed", prefix="X", seed=5))
    assert [c.charge_point_id for c in fleet_configs(FleetOptions(ids=("CP-1",)))] == ["CP-1"]


# -- against the CSMS ---------------------------------------------------------------------


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
        if c.action not in ("Heartbeat", "StatusNotification", "BootNotification")
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
async def test_reconnects_with_backoff_after_the_server_drops_it(
    csms: MiniCsms, version: str
) -> None:
    async with SimCharger(config(csms, version)) as charger:
        async with asyncio.timeout(WAIT):
            await charger.wait_online()
        await csms.connections[charger.id].close()
        async with asyncio.timeout(WAIT):
            await charger.wait_offline()
            await charger.wait_online()
        assert charger.connection_count == 2
        assert charger.boot_count == 2


async def test_16_commands(csms: MiniCsms) -> None:
    async with SimCharger(config(csms, "1.6", connectors=2)) as charger:
        async with asyncio.timeout(WAIT):
            await charger.wait_online()
        cp = charger.id
        answer = await csms.result(cp, "GetConfiguration", {"key": ["HeartbeatInterval", "Nope"]})
        assert answer["configurationKey"] == [
            {"key": "HeartbeatInterval", "readonly": False, "value": "1"}
        ]
        assert answer["unknownKey"] == ["Nope"]
        everything = await csms.result(cp, "GetConfiguration", {})
        keys = {k["key"] for k in everything["configurationKey"]}
        assert {"MeterValueSampleInterval", "NumberOfConnectors"} <= keys
        assert "AuthorizationKey" not in keys  # write-only
        change = {"key": "MeterValueSampleInterval", "value": "30"}
        assert await csms.result(cp, "ChangeConfiguration", change) == {"status": "Accepted"}
        assert charger.protocol.settings.meter_interval() == 30.0
        for key, value, status in [
            ("NumberOfConnectors", "4", "Rejected"),
            ("MeterValueSampleInterval", "soon", "Rejected"),
            ("MeterValuesSampledData", "Energy.Active.Import.Register,Nonsense", "Rejected"),
            ("NoSuchKey", "1", "NotSupported"),
        ]:
            answer = await csms.result(cp, "ChangeConfiguration", {"key": key, "value": value})
            assert answer == {"status": status}, key
        expiry = datetime.now(UTC).replace(year=2099).isoformat()
        reserve = {
            "connectorId": 2,
            "expiryDate": expiry,
            "idTag": "DEMO-TAG-3",
            "reservationId": 7,
        }
        assert await csms.result(cp, "ReserveNow", reserve) == {"status": "Accepted"}
        statuses = await csms.wait_for(cp, "StatusNotification", 4)
        assert statuses[-1].payload == {
            **statuses[-1].payload,
            "connectorId": 2,
            "status": "Reserved",
        }
        assert await csms.result(cp, "CancelReservation", {"reservationId": 7}) == {
            "status": "Accepted"
        }
        assert await csms.result(cp, "CancelReservation", {"reservationId": 7}) == {
            "status": "Rejected"
        }
        local_list = {
            "listVersion": 3,
            "updateType": "Full",
            "localAuthorizationList": [{"idTag": "LOCAL-1", "idTagInfo": {"status": "Accepted"}}],
        }
        assert await csms.result(cp, "SendLocalList", local_list) == {"status": "Accepted"}
        assert await csms.result(cp, "GetLocalListVersion", {}) == {"listVersion": 3}
        assert await csms.result(cp, "ClearCache", {}) == {"status": "Accepted"}
        transfer = {"vendorId": "evpark", "messageId": "echo", "data": "hi"}
        assert await csms.result(cp, "DataTransfer", transfer) == {
            "status": "Accepted",
            "data": "hi",
        }
        assert (await csms.result(cp, "DataTransfer", {"vendorId": "other"}))[
            "status"
        ] == "UnknownVendorId"
        assert await csms.result(cp, "UnlockConnector", {"connectorId": 9}) == {
            "status": "NotSupported"
        }
        assert await csms.result(
            cp, "ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}
        ) == {"status": "Accepted"}
        statuses = await csms.wait_for(cp, "StatusNotification", 6)
        assert [(s.payload["connectorId"], s.payload["status"]) for s in statuses[3:]] == [
            (2, "Reserved"),
            (2, "Available"),
            (1, "Unavailable"),
        ]
        trigger = {"requestedMessage": "DiagnosticsStatusNotification"}
        assert await csms.result(cp, "TriggerMessage", trigger) == {"status": "Accepted"}
        await csms.wait_for(cp, "DiagnosticsStatusNotification")
        await csms.result(
            cp, "UpdateFirmware", {"location": "http://fw.example/1.bin", "retrieveDate": now()}
        )
        firmware = await csms.wait_for(cp, "FirmwareStatusNotification", 4)
        assert firmware[-1].payload == {"status": "Installed"}
        # Protocol errors: an unknown action, a malformed payload.
        assert (await csms.call(cp, "Teleport", {}))[2] == "NotImplemented"
        assert (await csms.call(cp, "Reset", {"type": "Sideways"}))[2] == "FormationViolation"
        assert await csms.result(cp, "Reset", {"type": "Soft"}) == {"status": "Accepted"}
        await csms.wait_for(cp, "BootNotification", 2)
        async with asyncio.timeout(WAIT):
            await charger.wait_online()
        assert charger.boot_count == 2


async def test_201_commands_report_and_fault(csms: MiniCsms) -> None:
    async with SimCharger(config(csms, "2.0.1")) as charger:
        async with asyncio.timeout(WAIT):
            await charger.wait_online()
        cp = charger.id
        heartbeat = {
            "component": {"name": "OCPPCommCtrlr"},
            "variable": {"name": "HeartbeatInterval"},
        }
        answer = await csms.result(
            cp,
            "GetVariables",
            {
                "getVariableData": [
                    heartbeat,
                    {"component": {"name": "Nope"}, "variable": {"name": "X"}},
                ]
            },
        )
        assert [r["attributeStatus"] for r in answer["getVariableResult"]] == [
            "Accepted",
            "UnknownComponent",
        ]
        assert answer["getVariableResult"][0]["attributeValue"] == "1"
        interval = {
            "component": {"name": "SampledDataCtrlr"},
            "variable": {"name": "TxUpdatedInterval"},
        }
        answer = await csms.result(
            cp,
            "SetVariables",
            {
                "setVariableData": [
                    {**interval, "attributeValue": "15"},
                    {**heartbeat, "attributeValue": "-3"},
                ]
            },
        )
        assert [r["attributeStatus"] for r in answer["setVariableResult"]] == [
            "Accepted",
            "Rejected",
        ]
        assert charger.protocol.settings.meter_interval() == 15.0
        assert await csms.result(
            cp, "GetBaseReport", {"requestId": 5, "reportBase": "FullInventory"}
        ) == {"status": "Accepted"}
        reports = await csms.wait_for(cp, "NotifyReport", 2)
        while reports[-1].payload["tbc"]:
            reports = await csms.wait_for(cp, "NotifyReport", len(reports) + 1)
        assert [r.payload["seqNo"] for r in reports] == list(range(len(reports)))
        assert all(r.payload["requestId"] == 5 for r in reports)
        await charger.fault(1, "GroundFailure")
        event = (await csms.wait_for(cp, "NotifyEvent"))[0].payload
        assert event["eventData"][0]["variable"] == {"name": "Problem"}
        assert csms.of(cp, "StatusNotification")[-1].payload["connectorStatus"] == "Faulted"
        await charger.clear_fault(1)
        await csms.wait_for(cp, "NotifyEvent", 2)
        unlock = await csms.result(cp, "UnlockConnector", {"evseId": 1, "connectorId": 1})
        assert unlock == {"status": "Unlocked"}
        trigger = {"requestedMessage": "MeterValues", "evse": {"id": 1}}
        assert await csms.result(cp, "TriggerMessage", trigger) == {"status": "Accepted"}
        await csms.wait_for(cp, "MeterValues")
        local_list = {
            "versionNumber": 2,
            "updateType": "Full",
            "localAuthorizationList": [
                {
                    "idToken": {"idToken": "LOCAL-1", "type": "ISO14443"},
                    "idTokenInfo": {"status": "Accepted"},
                }
            ],
        }
        assert await csms.result(cp, "SendLocalList", local_list) == {"status": "Accepted"}
        assert await csms.result(cp, "GetLocalListVersion", {}) == {"versionNumber": 2}
        assert (await csms.call(cp, "Reset", {"type": "Later"}))[2] == "FormatViolation"
        assert await csms.result(cp, "Reset", {"type": "Immediate"}) == {"status": "Accepted"}
        boots = await csms.wait_for(cp, "BootNotification", 2)
        assert boots[1].payload["reason"] == "RemoteReset"


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


async def test_cli_runs_a_mixed_fleet_and_stops_gracefully(csms: MiniCsms) -> None:
    evpark = Path(sys.executable).parent / "evpark"
    process = await asyncio.create_subprocess_exec(
        str(evpark),
        "sim",
        "chargers",
        "--url",
        csms.url,
        "--count",
        "2",
        "--version",
        "mixed",
        "--speed",
        "3000",
        "--meter-interval",
        "0.2",
        "--duration",
        "3",
        "--seed",
        "4",
        "--log-format",
        "json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    async with asyncio.timeout(30):
        _, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert {"SIM-16-001", "SIM-201-001"} <= {c.charger for c in csms.calls}
    logs = [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]
    assert any(
        line["event"] == "sim.charger.booted" and line["charger"] == "SIM-16-001" for line in logs
    )
    # Every session started was ended before exit.
    starts = len(csms.of("SIM-16-001", "StartTransaction"))
    assert len(csms.of("SIM-16-001", "StopTransaction")) == starts
    events = [c.payload["eventType"] for c in csms.of("SIM-201-001", "TransactionEvent")]
    assert events.count("Started") == events.count("Ended")


def _issue_certificates(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    start = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "evpark test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start.replace(year=start.year + 1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = {"ca": directory / "ca.pem"}
    paths["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    for role, name, usage in [
        ("server", "127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH),
        ("client", "SIM-16-001", ExtendedKeyUsageOID.CLIENT_AUTH),
    ]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start.replace(year=start.year + 1))
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
        )
        if role == "server":
            import ipaddress

            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(name))]),
                critical=False,
            )
        cert = builder.sign(ca_key, hashes.SHA256())
        paths[role] = directory / f"{role}.pem"
        paths[f"{role}_key"] = directory / f"{role}.key"
        paths[role].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        paths[f"{role}_key"].write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return paths


async def test_security_profile_3_mutual_tls_with_basic_auth(tmp_path: Path) -> None:
    import ssl

    certs = _issue_certificates(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certs["ca"]))
    server_tls.load_cert_chain(certs["server"], certs["server_key"])
    server_tls.verify_mode = ssl.CERT_REQUIRED
    mini = MiniCsms()
    async with serve(
        mini.handler, "127.0.0.1", 0, subprotocols=[Subprotocol("ocpp1.6")], ssl=server_tls
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        mini.url = f"wss://127.0.0.1:{port}/ocpp"
        tls = config(
            mini,
            "1.6",
            ca_file=str(certs["ca"]),
            cert_file=str(certs["client"]),
            key_file=str(certs["client_key"]),
        )
        async with SimCharger(tls) as charger:
            async with asyncio.timeout(WAIT):
                await charger.wait_online()
            assert mini.auth_headers[charger.id].startswith("Basic ")
    assert mini.violations == []
