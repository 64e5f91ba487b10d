"""Slots in the running daemon: sensors over a real Mosquitto, chargers over OCPP, the API,
the retained slot topics and the events for central."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest

from edge.config import SiteConfig
from edge.daemon import EdgeDaemon
from edge.storage import site_sql as repo
from ocpp_handlers.schemas import Version
from tests.edge.conftest import make_config, ocpp_url
from tests.mosquitto import Mosquitto, mosquitto_pub, running_mosquitto
from tests.ocpp_client import RawCharger
from tests.ocpp_flows import flow_for
from tests.polling import eventually

SLOTS = [
    {"id": "A1", "type": "ev", "sensor": "S-A1", "charger": "CP-EV", "evse": 1},
    {"id": "B1", "type": "standard", "sensor": "S-B1"},
    {"id": "B2", "type": "standard", "sensor": "S-B2"},
]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with running_mosquitto(tmp_path / "mqtt") as mosquitto:
        yield mosquitto


@pytest.fixture
def slot_config(tmp_path: Path, broker: Mosquitto) -> SiteConfig:
    return make_config(
        tmp_path / "data",
        chargers=[{"id": "CP-EV"}],
        slots=SLOTS,
        slot_timing={"debounce": 0, "ev_slot_blocked_after": 0.5, "charged_idle_after": 0.5},
        mqtt={"url": broker.url, "embedded": False},
    )


@pytest.fixture
async def daemon(slot_config: SiteConfig) -> AsyncIterator[EdgeDaemon]:
    async with EdgeDaemon(slot_config) as running:
        await running.mqtt.wait_connected()
        yield running


def api(daemon: EdgeDaemon) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.http_port}")


async def slot(daemon: EdgeDaemon, slot_id: str) -> dict[str, Any]:
    async with api(daemon) as client:
        reply = await client.get(f"/api/slots/{slot_id}")
        assert reply.status_code == 200, reply.text
        data: dict[str, Any] = reply.json()
        return data


async def state_is(daemon: EdgeDaemon, slot_id: str, state: str) -> bool:
    return (await slot(daemon, slot_id))["state"] == state


async def outbox_types(daemon: EdgeDaemon) -> list[str]:
    rows = await daemon.store.read(lambda c: repo.outbox_rows(c, 0, 1000))
    return [r["type"] for r in rows]


async def test_occupancy_reaches_api_retained_topic_and_central_events(
    daemon: EdgeDaemon, broker: Mosquitto
) -> None:
    await mosquitto_pub(broker, "evpark/test-site/sensors/S-B2/state", "0", retain=True)
    await eventually(lambda: state_is(daemon, "B2", "free"), "B2 free")
    await mosquitto_pub(
        broker,
        "evpark/test-site/sensors/S-B1/state",
        '{"occupied": true, "battery": 88}',
        retain=True,
    )
    await eventually(lambda: state_is(daemon, "B1", "occupied"), "B1 occupied")
    view = await slot(daemon, "B1")
    assert view["sensor"] == {"id": "S-B1", "status": "ok", "battery": 88, "low_battery": False}

    # an entrance sign subscribing now gets the retained state and summary (and updates)
    async with aiomqtt.Client(broker.host, broker.port) as sign:
        await sign.subscribe("evpark/test-site/slots/B1/state")
        await sign.subscribe("evpark/test-site/summary")
        seen: dict[str, Any] = {}
        async with asyncio.timeout(10):
            async for message in sign.messages:
                seen[str(message.topic)] = json.loads(bytes(message.payload))  # type: ignore[arg-type]
                b1 = seen.get("evpark/test-site/slots/B1/state", {})
                summary = seen.get("evpark/test-site/summary", {})
                if b1.get("state") == "occupied" and summary.get("free", {}).get("standard") == 1:
                    break

    async with api(daemon) as client:
        summary = (await client.get("/api/site/summary")).json()
    assert summary["site_id"] == "test-site"
    assert summary["states"]["occupied"] == 1
    assert summary["free"] == {"ev": 0, "standard": 1}  # A1 has no reading yet: unknown

    await mosquitto_pub(broker, "evpark/test-site/sensors/S-B1/state", "0", retain=True)
    await eventually(lambda: state_is(daemon, "B1", "free"), "B1 free again")
    types = await outbox_types(daemon)
    assert types.count("parking.occupied") == 1
    assert types.count("parking.vacated") == 1
    async with api(daemon) as client:
        visits = (await client.get("/api/visits", params={"slot": "B1"})).json()
    assert len(visits) == 1
    assert visits[0]["departed_at"] is not None


async def test_garbage_is_counted_and_changes_nothing(
    daemon: EdgeDaemon, broker: Mosquitto
) -> None:
    await mosquitto_pub(broker, "evpark/test-site/sensors/S-B2/state", "free", retain=True)
    await eventually(lambda: state_is(daemon, "B2", "free"), "B2 free")
    for garbage in (
        '{"occupied": "perhaps"}',
        "\xff\xfe",
        '{"occupied": true, "battery": 900}',
        "maybe",
    ):
        await mosquitto_pub(broker, "evpark/test-site/sensors/S-B2/state", garbage)
    await mosquitto_pub(broker, "evpark/other-site/sensors/S-B2/state", "1")

    async def counted() -> bool:
        async with api(daemon) as client:
            text = (await client.get("/metrics")).text
        return (
            sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("evpark_mqtt_rejected_payloads_total{")
            )
            >= 4
        )

    await eventually(counted, "four rejected payloads counted")
    assert await state_is(daemon, "B2", "free")


async def test_ev_slot_blocked_then_plugged(daemon: EdgeDaemon, broker: Mosquitto) -> None:
    async with RawCharger(ocpp_url(daemon), "CP-EV", Version.V16) as charger:
        flow = flow_for(charger)
        await flow.boot()
        await charger.call(
            "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
        )
        await mosquitto_pub(broker, "evpark/test-site/sensors/S-A1/state", "occupied")

        async def blocked() -> bool:
            return "ev_slot_blocked" in (await slot(daemon, "A1"))["conditions"]

        await eventually(blocked, "a car that does not plug in blocks the EV slot")
        await flow.plug(1)

        async def cleared() -> bool:
            view = await slot(daemon, "A1")
            return not view["conditions"] and view["connector_status"] == "occupied"

        await eventually(cleared, "plugging in clears the condition")
    conditions = [
        r["data"]
        for r in await daemon.store.read(lambda c: repo.outbox_rows(c, 0, 1000))
        if r["type"] == "parking.condition"
    ]
    assert [(c["condition"], c["active"]) for c in conditions] == [
        ("ev_slot_blocked", True),
        ("ev_slot_blocked", False),
    ]


async def test_out_of_service_and_visits_survive_a_restart(
    slot_config: SiteConfig, broker: Mosquitto
) -> None:
    async with EdgeDaemon(slot_config) as daemon:
        await daemon.mqtt.wait_connected()
        await mosquitto_pub(broker, "evpark/test-site/sensors/S-B1/state", "1", retain=True)
        await eventually(lambda: state_is(daemon, "B1", "occupied"), "B1 occupied")
        async with api(daemon) as client:
            reply = await client.post(
                "/api/slots/B2/out-of-service",
                json={"out_of_service": True, "reason": "repainting"},
            )
            assert reply.status_code == 200
            assert reply.json()["state"] == "out_of_service"
            visit_id = (await client.get("/api/slots/B1")).json()["visit_id"]
    async with EdgeDaemon(slot_config) as daemon:
        await daemon.mqtt.wait_connected()
        view = await slot(daemon, "B2")
        assert (view["state"], view["out_of_service_reason"]) == ("out_of_service", "repainting")
        await eventually(lambda: state_is(daemon, "B1", "occupied"), "B1 still occupied")
        assert (await slot(daemon, "B1"))["visit_id"] == visit_id  # the same visit goes on
        await mosquitto_pub(broker, "evpark/test-site/sensors/S-B1/state", "0", retain=True)
        await eventually(lambda: state_is(daemon, "B1", "free"), "B1 free")

        # the API shows the model's change at once; its event is in the outbox once stored
        async def vacated_stored() -> bool:
            return "parking.vacated" in await outbox_types(daemon)

        await eventually(vacated_stored, "the visit's end in the outbox")
        types = await outbox_types(daemon)
    assert types.count("parking.occupied") == 1
    assert types.count("parking.vacated") == 1


async def test_local_reservation(daemon: EdgeDaemon, broker: Mosquitto) -> None:
    await mosquitto_pub(broker, "evpark/test-site/sensors/S-B2/state", "free", retain=True)
    await eventually(lambda: state_is(daemon, "B2", "free"), "B2 free")
    async with api(daemon) as client:
        reply = await client.post("/api/slots/B2/reservation", json={"reservation_id": "R-1"})
        assert reply.json()["state"] == "reserved"
        assert (
            await client.post("/api/slots/B2/reservation", json={"reservation_id": "R-2"})
        ).status_code == 409
        assert "reservation_id" not in (await client.delete("/api/slots/B2/reservation")).json()
        assert (await client.get("/api/slots/NOPE")).status_code == 404
