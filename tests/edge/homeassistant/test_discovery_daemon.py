"""Home Assistant discovery and the chargers' states, from a running daemon through a real
Mosquitto: every config document is valid and its templates work on what its topics
carry; unique ids survive a restart; stale entities are removed; meter values are spaced
but the last one always arrives."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.config import SiteConfig
from edge.daemon import EdgeDaemon
from ocpp_handlers.schemas import Version
from tests.edge.conftest import make_config, ocpp_url
from tests.edge.homeassistant.discovery_schema import problems, render
from tests.edge.homeassistant.recorder import TopicRecorder
from tests.mosquitto import Mosquitto, mosquitto_pub, running_mosquitto
from tests.ocpp_client import RawCharger
from tests.ocpp_flows import Flow, flow_for
from tests.polling import eventually

SITE = "evpark/test-site"
# "+" is an MQTT wildcard, and allowed in an OCPP identity
CHARGER_201 = "CP+201"
SLOTS = [
    {"id": "A1", "type": "ev", "sensor": "S-A1", "charger": "CP-16", "evse": 1},
    {"id": "A2", "type": "ev", "sensor": "S-A2", "charger": CHARGER_201, "evse": 1},
    {"id": "B1", "type": "standard", "sensor": "S-B1", "label": "Entrance"},
]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with running_mosquitto(tmp_path / "mqtt") as mosquitto:
        yield mosquitto


def site_config(tmp_path: Path, broker: Mosquitto, slots: list[dict[str, Any]] = SLOTS,
                **mqtt: Any) -> SiteConfig:  # fmt: skip
    return make_config(
        tmp_path / "data",
        site={"id": "test-site", "name": "Test garage", "environment": "development"},
        chargers=[{"id": s["charger"]} for s in slots if "charger" in s],
        slots=slots,
        slot_timing={"debounce": 0},
        mqtt={"url": broker.url, "homeassistant_discovery": True, **mqtt},
    )


def configs(seen: TopicRecorder) -> dict[str, dict[str, Any]]:
    """The discovery documents the broker holds, by unique_id."""
    found = {}
    for topic, payload in seen.under("homeassistant/").items():
        document = json.loads(payload)
        document["topic"] = topic
        found[document["unique_id"]] = document
    return found


def state(seen: TopicRecorder, document: dict[str, Any]) -> str:
    """What Home Assistant would show for the entity."""
    return render(document["value_template"], seen.latest[document["state_topic"]])


async def test_every_entity_is_valid_and_reads_its_value(tmp_path: Path, broker: Mosquitto) -> None:
    config = site_config(tmp_path, broker, charger_state_interval=0.2)
    start = datetime.now(UTC)
    async with (
        TopicRecorder(broker, "homeassistant/#", f"{SITE}/#") as seen,
        EdgeDaemon(config) as daemon,
        RawCharger(ocpp_url(daemon), "CP-16", Version.V16) as charger_16,
        RawCharger(ocpp_url(daemon), CHARGER_201, Version.V201) as charger_201,
    ):
        transactions = {}
        for charger in (charger_16, charger_201):
            flow = flow_for(charger)
            await flow.boot()
            await flow.plug(1)
            transactions[charger.charger_id] = tx = await flow.start(1, "TAG-OK", 1000, start)
            await flow.meter(1, tx, 1500, "Wh", start + timedelta(minutes=1), power_w=7000)
        await charger_16.call(  # a 1.6 charger says so itself (2.0.1: the transaction's state)
            "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Charging"}
        )
        for sensor, reading in (("S-A1", "1"), ("S-A2", "1"), ("S-B1", "0")):
            await mosquitto_pub(broker, f"{SITE}/sensors/{sensor}/state", reading, retain=True)
        entities = "evpark_test-site_"

        async def settled() -> bool:
            found = configs(seen)
            return (
                len(found) == 3 + 2 + 2 * 3  # slots, free counts by type, 3 per EVSE
                and all(not problems(d["topic"], d, seen.latest) for d in found.values())
                and state(seen, found[entities + "slot_A1"]) == "ON"
                and state(seen, found[entities + "slot_B1"]) == "OFF"
                and all(
                    float(state(seen, found[f"{entities}charger_{c}_evse_1_power"])) > 0
                    and float(state(seen, found[f"{entities}charger_{c}_evse_1_energy"])) == 500
                    for c in ("CP-16", CHARGER_201)
                )
            )

        await eventually(settled, "valid discovery documents reading the site's values")
        found = configs(seen)
        assert state(seen, found[entities + "free_standard"]) == "1"  # B1
        assert state(seen, found[entities + "free_ev"]) == "0"
        for charger_id in ("CP-16", CHARGER_201):
            status = found[f"{entities}charger_{charger_id}_evse_1_status"]
            assert state(seen, status) == "charging"
        attributes = seen.json(found[entities + "slot_A1"]["json_attributes_topic"])
        assert attributes["connector_status"] == "charging"
        assert found[entities + "slot_B1"]["name"] == "Slot Entrance"

        # the topics: "+" written %2B, the chargers' own availability next to the edge's
        energy_201 = found[f"{entities}charger_{CHARGER_201}_evse_1_energy"]
        assert energy_201["state_topic"] == f"{SITE}/chargers/CP%2B201/evses/1/state"
        assert [a["topic"] for a in energy_201["availability"]] == [
            f"{SITE}/edge/status", f"{SITE}/chargers/CP%2B201/status"
        ]  # fmt: skip
        assert energy_201["availability_mode"] == "all"
        assert seen.latest[f"{SITE}/chargers/CP%2B201/status"] == b"online"

        # devices: the site, and each charger as it booted, reached through the site
        site_device = found[entities + "slot_A1"]["device"]
        assert site_device["name"] == "Test garage"
        for charger_id, model in (("CP-16", "T16"), (CHARGER_201, "T201")):
            device = found[f"{entities}charger_{charger_id}_evse_1_power"]["device"]
            assert (device["manufacturer"], device["model"]) == ("TestVendor", model)
            assert device["via_device"] in site_device["identifiers"]

        # session energy grows with the meter
        energy_16 = found[entities + "charger_CP-16_evse_1_energy"]
        for charger in (charger_16, charger_201):
            tx = transactions[charger.charger_id]
            await flow_for(charger).meter(1, tx, 2500, "Wh", start + timedelta(minutes=2))

        async def grown() -> bool:
            return (
                float(state(seen, energy_16)) == 1500.0 and float(state(seen, energy_201)) == 1500.0
            )

        await eventually(grown, "session energy 1500 Wh on both chargers")

        # the charger goes: its entities say so through their availability
        await charger_16.close()
        await eventually(
            lambda: _says(seen, f"{SITE}/chargers/CP-16/status", b"offline"), "CP-16 offline"
        )


async def _says(seen: TopicRecorder, topic: str, payload: bytes) -> bool:
    return seen.latest.get(topic) == payload


async def published_ids(config: SiteConfig, broker: Mosquitto) -> tuple[set[str], TopicRecorder]:
    """The unique ids one run of the daemon publishes, and what the broker holds after it."""
    async with TopicRecorder(broker, "homeassistant/#", f"{SITE}/#") as seen:
        async with EdgeDaemon(config) as daemon:
            await daemon.mqtt.wait_connected()
            await eventually(lambda: _published(daemon), "everything published")
            await seen.sync()
        ids = {
            json.loads(p)["unique_id"] for t, p in seen.live if t.startswith("homeassistant/") and p
        }
        return ids, seen


async def _published(daemon: EdgeDaemon) -> bool:
    await daemon.mqtt.wait_published()
    return True


async def test_unique_ids_survive_a_restart_and_removed_entities_go(
    tmp_path: Path, broker: Mosquitto
) -> None:
    first, _ = await published_ids(site_config(tmp_path, broker), broker)
    assert len(first) == 3 + 2 + 2 * 3
    again, _ = await published_ids(site_config(tmp_path, broker), broker)
    assert again == first

    # B1 (the only standard slot) and the 2.0.1 charger's slot leave the site config
    fewer = site_config(tmp_path, broker, slots=[SLOTS[0]])
    async with TopicRecorder(broker, "homeassistant/#") as seen, EdgeDaemon(fewer) as daemon:
        await daemon.mqtt.wait_connected()

        async def stale_removed() -> bool:
            await seen.sync()
            return len(configs(seen)) == 1 + 1 + 3

        await eventually(stale_removed, "the stale entities removed")
    gone = first - set(configs(seen))
    assert gone == {
        "evpark_test-site_slot_A2",
        "evpark_test-site_slot_B1",
        "evpark_test-site_free_standard",
        *(f"evpark_test-site_charger_{CHARGER_201}_evse_1_{kind}"
          for kind in ("status", "power", "energy")),
    }  # fmt: skip


@dataclass
class Session:
    """A session on CP-16's EVSE 1 and a subscriber to that EVSE's state topic."""

    daemon: EdgeDaemon
    seen: TopicRecorder
    charger: RawCharger
    flow: Flow
    tx: str
    start: datetime
    topic: str = f"{SITE}/chargers/CP-16/evses/1/state"


@contextlib.asynccontextmanager
async def charging(tmp_path: Path, broker: Mosquitto, interval: float) -> AsyncIterator[Session]:
    config = site_config(tmp_path, broker, charger_state_interval=interval)
    start = datetime.now(UTC)
    async with (
        TopicRecorder(broker, Session.topic) as seen,
        EdgeDaemon(config) as daemon,
        RawCharger(ocpp_url(daemon), "CP-16", Version.V16) as charger,
    ):
        flow = flow_for(charger)
        await flow.boot()
        tx = await flow.start(1, "TAG-OK", 0, start)
        yield Session(daemon, seen, charger, flow, tx, start)


async def test_meter_values_are_spaced_and_the_last_one_arrives(
    tmp_path: Path, broker: Mosquitto
) -> None:
    async with charging(tmp_path, broker, interval=1.0) as session:
        seen, topic = session.seen, session.topic
        burst = [100.0 * n for n in range(1, 21)]
        for n, energy in enumerate(burst):
            await session.flow.meter(
                1, session.tx, energy, "Wh", session.start + timedelta(seconds=n)
            )

        async def last_arrived() -> bool:
            return topic in seen.latest and seen.json(topic)["energy_wh"] == burst[-1]

        await eventually(last_arrived, "the burst's last energy retained")
        sent = [json.loads(payload) for _, payload in seen.live]
        metered = [d for d in sent if d["session_id"] is not None and d["energy_wh"] > 0]
        assert len(metered) < len(burst)  # spaced: not one publication per meter value


async def test_a_status_change_is_not_held_back(tmp_path: Path, broker: Mosquitto) -> None:
    # an interval far longer than the test: whatever arrives went out at once
    async with charging(tmp_path, broker, interval=3600) as session:
        seen, topic, flow, tx = session.seen, session.topic, session.flow, session.tx
        await eventually(lambda: _in_session(seen, topic), "the session on the topic")
        await flow.meter(1, tx, 400, "Wh", session.start + timedelta(minutes=1))
        await flow.meter(1, tx, 900, "Wh", session.start + timedelta(minutes=2))
        await session.daemon.mqtt.wait_published()
        await seen.sync()
        assert seen.json(topic)["energy_wh"] < 900  # held back: the interval is not up
        await session.charger.call(
            "StatusNotification",
            {"connectorId": 1, "errorCode": "NoError", "status": "SuspendedEV"},
        )
        # the status goes at once, and with it the energy held back
        await eventually(
            lambda: _holds(seen, topic, status="suspended_ev", energy_wh=900.0),
            "suspended_ev with 900 Wh",
        )


async def _in_session(seen: TopicRecorder, topic: str) -> bool:
    return topic in seen.latest and seen.json(topic)["session_id"] is not None


async def _holds(seen: TopicRecorder, topic: str, **expected: object) -> bool:
    if topic not in seen.latest:
        return False
    document = seen.json(topic)
    return all(document.get(key) == value for key, value in expected.items())
