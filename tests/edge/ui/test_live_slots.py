"""Every input that changes what a slot shows reaches every view of it: the local API, the
retained MQTT state (entrance signs, central's readers) and the web UI's live stream.

One daemon, a real Mosquitto, a 1.6 charger over a real websocket and a logged-in UI
stream. After each input the three documents of the slot must be the same document, and
say what the input changed. A view that misses a change keeps its old document and fails
the comparison (the slot map used to keep a connector's old status until a reload).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiomqtt
import httpx

from edge.daemon import EdgeDaemon
from ocpp_handlers.schemas import Version
from tests.edge.conftest import ocpp_url
from tests.edge.ui.conftest import logged_in
from tests.mosquitto import Mosquitto, mosquitto_pub
from tests.ocpp_client import RawCharger
from tests.ocpp_flows import flow_for
from tests.polling import eventually

SITE = "test-site"
Document = dict[str, Any]


@dataclass
class SlotViews:
    """The latest document of each slot as the retained topics and the UI stream gave it."""

    mqtt: dict[str, Document] = field(default_factory=dict)
    live: dict[str, Document] = field(default_factory=dict)


async def _follow_mqtt(broker: Mosquitto, views: SlotViews, subscribed: asyncio.Event) -> None:
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.subscribe(f"evpark/{SITE}/slots/+/state", qos=1)
        subscribed.set()
        async for message in client.messages:
            document = json.loads(bytes(message.payload))  # type: ignore[arg-type]
            views.mqtt[document["slot_id"]] = document


async def _follow_live(
    http: httpx.AsyncClient, views: SlotViews, subscribed: asyncio.Event
) -> None:
    async with http.stream("GET", "/ui/events", timeout=None) as stream:
        async for line in stream.aiter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line.removeprefix("data: "))
            if event["type"] == "hello":
                subscribed.set()
            elif event["type"] == "slot":
                views.live[event["slot"]["slot_id"]] = event["slot"]


@asynccontextmanager
async def following(daemon: EdgeDaemon, broker: Mosquitto) -> AsyncIterator[SlotViews]:
    views = SlotViews()
    async with logged_in(daemon, "vic") as ui, asyncio.TaskGroup() as group:
        mqtt_ready, live_ready = asyncio.Event(), asyncio.Event()
        tasks = [
            group.create_task(_follow_mqtt(broker, views, mqtt_ready)),
            group.create_task(_follow_live(ui.http, views, live_ready)),
        ]
        async with asyncio.timeout(10):
            await mqtt_ready.wait()
            await live_ready.wait()
        try:
            yield views
        finally:
            for task in tasks:
                task.cancel()


async def api_document(daemon: EdgeDaemon, slot_id: str) -> Document:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.http_port}") as client:
        reply = await client.get(f"/api/slots/{slot_id}")
        assert reply.status_code == 200, reply.text
        document: Document = reply.json()
        return document


async def agree(
    daemon: EdgeDaemon, views: SlotViews, slot_id: str, what: str, holds: Callable[[Document], bool]
) -> Document:
    """Wait until the API's document of the slot shows ``holds`` and the retained MQTT
    state and the live UI event are that same document."""
    found: dict[str, Any] = {}

    async def same_everywhere() -> bool:
        api = await api_document(daemon, slot_id)
        found.update(api=api, mqtt=views.mqtt.get(slot_id), live=views.live.get(slot_id))
        return holds(api) and api == found["mqtt"] == found["live"]

    try:
        await eventually(same_everywhere, what, within=5)
    except AssertionError as err:
        raise AssertionError(f"{err}\n{json.dumps(found, indent=1, sort_keys=True)}") from None
    document: Document = found["api"]
    return document


async def test_every_input_reaches_the_api_the_retained_state_and_the_live_page(
    daemon: EdgeDaemon, broker: Mosquitto
) -> None:
    async def sensor(sensor_id: str, kind: str, payload: str) -> None:
        await mosquitto_pub(broker, f"evpark/{SITE}/sensors/{sensor_id}/{kind}", payload)

    async with (
        following(daemon, broker) as views,
        RawCharger(ocpp_url(daemon), "CP-1", Version.V16) as charger,
    ):
        flow = flow_for(charger)
        await flow.boot()

        async def status(word: str, **extra: str) -> None:
            payload = {"connectorId": 1, "errorCode": "NoError", "status": word, **extra}
            await charger.call("StatusNotification", payload)

        # a sensor reading
        await sensor("S-A1", "state", "occupied")
        await agree(daemon, views, "A1", "occupied", lambda d: d["state"] == "occupied")

        # the connector's status, alone: no other output of the slot model says it
        await status("Available")
        await agree(
            daemon, views, "A1", "connector available",
            lambda d: d["connector_status"] == "available",
        )  # fmt: skip

        # a session starts and stops
        await flow.plug(1)
        await agree(
            daemon, views, "A1", "plugged in",
            lambda d: d["connector_status"] == "occupied",
        )  # fmt: skip
        tx = await flow.start(1, "TAG-OK", 1000, datetime.now(UTC))
        await status("Charging")
        await agree(
            daemon, views, "A1", "charging",
            lambda d: d["connector_status"] == "charging",
        )  # fmt: skip
        await status("SuspendedEV")
        await agree(
            daemon, views, "A1", "suspended by the car",
            lambda d: d["connector_status"] == "suspended_ev",
        )  # fmt: skip
        await flow.stop(1, tx, 5000, datetime.now(UTC))
        await status("Finishing")
        await agree(
            daemon, views, "A1", "finishing",
            lambda d: d["connector_status"] == "finishing",
        )  # fmt: skip

        # a fault, then back to available
        await status("Faulted", errorCode="GroundFailure")
        await agree(
            daemon, views, "A1", "faulted",
            lambda d: d["connector_status"] == "faulted",
        )  # fmt: skip

        # a reservation, set and cancelled, on a free slot
        await sensor("S-B1", "state", "free")
        await agree(daemon, views, "B1", "B1 free", lambda d: d["state"] == "free")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.http_port}") as api:
            reply = await api.post("/api/slots/B1/reservation", json={"reservation_id": "R-9"})
            assert reply.status_code == 200, reply.text
            await agree(
                daemon, views, "B1", "reserved",
                lambda d: d["state"] == "reserved" and d["reservation_id"] == "R-9",
            )  # fmt: skip
            assert (await api.delete("/api/slots/B1/reservation")).status_code == 200
            await agree(
                daemon, views, "B1", "reservation cancelled", lambda d: d["state"] == "free"
            )

            # out of service and back
            reply = await api.post(
                "/api/slots/B1/out-of-service", json={"out_of_service": True, "reason": "paint"}
            )
            assert reply.status_code == 200, reply.text
            await agree(
                daemon, views, "B1", "out of service",
                lambda d: d["state"] == "out_of_service" and d["out_of_service_reason"] == "paint",
            )  # fmt: skip
            reply = await api.post("/api/slots/B1/out-of-service", json={"out_of_service": False})
            assert reply.status_code == 200, reply.text
            await agree(daemon, views, "B1", "back in service", lambda d: d["state"] == "free")

        # the sensor's own status: offline, online again, a new battery level
        await sensor("S-B1", "status", "offline")
        await agree(
            daemon, views, "B1", "sensor offline", lambda d: d["sensor"]["status"] == "offline"
        )
        await sensor("S-B1", "status", "online")
        await sensor("S-B1", "state", '{"occupied": false, "battery": 41}')
        await agree(
            daemon, views, "B1", "sensor back with a battery level",
            lambda d: d["sensor"]["status"] == "ok" and d["sensor"]["battery"] == 41,
        )  # fmt: skip
