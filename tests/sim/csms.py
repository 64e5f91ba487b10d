"""A small CSMS for the charger simulator's tests (plain websockets on port 0).

It validates every frame the simulator sends (its calls and its answers to our calls)
against the official schemas with jsonschema, independently of the simulator's own
fastjsonschema validators and of the edge's compiler.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import jsonschema
from websockets.asyncio.server import ServerConnection

from sim.charger import SimChargerConfig

VERSIONS = ["1.6", "2.0.1"]
WAIT = 30.0  # a generous bound: the suite runs on four workers beside other work


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
