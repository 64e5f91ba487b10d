"""The MQTT sensor adapter against a real Mosquitto, with ``mosquitto_pub`` publishing.

A small harness plays the daemon's part: it feeds what the adapter hands over into the
pure slot model (on a fake clock) and publishes the slot views back through the adapter,
so debounce, stale and offline sensors and the derived conditions are seen end to end on
the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from common.backoff import Backoff
from edge.config import MqttSection, SlotConfig, SlotTimingSection
from edge.core.ids import ChargerId, SlotId
from edge.core.model import ConnectorStatus
from edge.core.slots.events import (
    ConnectorReported,
    SensorAvailability,
    SensorReading,
    SensorReported,
    SlotEvent,
    SlotOutput,
    Tick,
)
from edge.core.slots.layout import Layout
from edge.core.slots.model import SlotModel, touched_slots
from edge.core.slots.values import EvseId, SensorId, SlotState
from edge.sensors.metrics import MqttMetrics
from edge.sensors.mqtt import MqttSensors
from tests.mosquitto import Mosquitto, make_certificates, mosquitto_pub, running_mosquitto

SITE = "t-site"
SLOTS = [
    SlotConfig(id="A1", type="ev", sensor="S-A1", charger="CP-1", evse=1),
    SlotConfig(id="B1", type="standard", sensor="S-B1"),
]
TIMING = SlotTimingSection(
    debounce=5,
    sensor_stale_after=900,
    low_battery=20,
    ev_slot_blocked_after=600,
    charged_idle_after=900,
    sensor_suspect_after=300,
)
FAST = Backoff(base=0.05, cap=0.3, jitter=0.2)
_client_ids = itertools.count()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with running_mosquitto(tmp_path) as mosquitto:
        yield mosquitto


def state_topic(sensor: str, site: str = SITE) -> str:
    return f"evpark/{site}/sensors/{sensor}/state"


def status_topic(sensor: str) -> str:
    return f"evpark/{SITE}/sensors/{sensor}/status"


async def eventually(check: Callable[[], bool], what: str, within: float = 10.0) -> None:
    """Poll ``check`` until it holds; fail with ``what`` after ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            while not check():  # noqa: ASYNC110 - polling plain state with a deadline
                await asyncio.sleep(0.02)
    except TimeoutError:
        pytest.fail(f"not within {within}s: {what}")


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@dataclass
class RecordingSink:
    readings: list[tuple[SensorId, SensorReading]] = field(default_factory=list)
    availability: list[tuple[SensorId, bool]] = field(default_factory=list)

    async def sensor_reported(
        self, sensor_id: SensorId, reading: SensorReading, received_at: datetime
    ) -> None:
        assert received_at.tzinfo is not None
        self.readings.append((sensor_id, reading))

    async def sensor_availability(
        self, sensor_id: SensorId, online: bool, received_at: datetime
    ) -> None:
        self.availability.append((sensor_id, online))


class Harness:
    """The daemon's part: adapter -> slot model -> adapter (slot states, summary)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.model = SlotModel(Layout.from_config(SLOTS, TIMING), clock.now)
        self.outputs: list[SlotOutput] = []
        self.received = 0
        self.adapter: MqttSensors | None = None

    async def sensor_reported(
        self, sensor_id: SensorId, reading: SensorReading, received_at: datetime
    ) -> None:
        self.received += 1
        event = SensorReported(
            sensor_id, reading.occupied, reading.battery, reading.rssi, reading.measured_at
        )
        self.handle(event, received_at)

    async def sensor_availability(
        self, sensor_id: SensorId, online: bool, received_at: datetime
    ) -> None:
        self.received += 1
        self.handle(SensorAvailability(sensor_id, online), received_at)

    def handle(self, event: SlotEvent, now: datetime | None = None) -> None:
        now = now or self.clock.now
        outputs = self.model.handle(event, now)
        self.outputs += outputs
        assert self.adapter is not None
        for slot_id in touched_slots(outputs):
            self.adapter.publish_slot(self.model.view(slot_id))
        if outputs:
            self.adapter.publish_summary(self.model.summary(), now)

    def tick_after(self, seconds: float) -> None:
        self.handle(Tick(self.clock.advance(seconds)))

    def publish_all(self) -> None:
        assert self.adapter is not None
        for view in self.model.views():
            self.adapter.publish_slot(view)
        self.adapter.publish_summary(self.model.summary(), self.clock.now)


class Watcher:
    """An independent client that remembers the last payload seen on each edge topic."""

    def __init__(self) -> None:
        self.latest: dict[str, bytes] = {}

    def json(self, topic: str) -> dict[str, object] | None:
        payload = self.latest.get(topic)
        return json.loads(payload) if payload else None

    def slot(self, slot: str) -> dict[str, object] | None:
        return self.json(f"evpark/{SITE}/slots/{slot}/state")


@contextlib.asynccontextmanager
async def watching(broker: Mosquitto) -> AsyncIterator[Watcher]:
    watcher = Watcher()
    ready = asyncio.Event()

    async def watch() -> None:
        async with aiomqtt.Client(
            broker.host, broker.port, identifier=f"watcher-{next(_client_ids)}"
        ) as client:
            await client.subscribe(f"evpark/{SITE}/slots/#", qos=1)
            await client.subscribe(f"evpark/{SITE}/summary", qos=1)
            await client.subscribe(f"evpark/{SITE}/edge/status", qos=1)
            ready.set()
            async for message in client.messages:
                payload = message.payload
                assert isinstance(payload, bytes)
                watcher.latest[message.topic.value] = payload

    async with asyncio.TaskGroup() as task_group:
        task = task_group.create_task(watch())
        await ready.wait()
        try:
            yield watcher
        finally:
            task.cancel()


def adapter(
    broker: Mosquitto,
    sink: RecordingSink | Harness,
    registry: CollectorRegistry,
    clock: FakeClock | None = None,
    url: str | None = None,
) -> MqttSensors:
    mqtt = adapter_section(broker)
    return MqttSensors(
        site_id=SITE,
        mqtt=mqtt,
        sink=sink,
        metrics=MqttMetrics(registry),
        url=url,
        known_sensors={"S-A1", "S-B1"},
        clock=clock or FakeClock(),
        backoff=FAST,
    )


def adapter_section(broker: Mosquitto) -> MqttSection:
    return MqttSection(url=broker.url, client_id=f"edge-under-test-{next(_client_ids)}")


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


@contextlib.asynccontextmanager
async def harnessed(
    broker: Mosquitto, registry: CollectorRegistry
) -> AsyncIterator[tuple[Harness, MqttSensors]]:
    clock = FakeClock()
    harness = Harness(clock)
    async with adapter(broker, harness, registry, clock) as mqtt:
        harness.adapter = mqtt
        await mqtt.wait_connected()
        yield harness, mqtt


# ------------------------------------------------------------------ receiving


async def test_readings_from_mosquitto_pub_reach_the_sink(broker: Mosquitto) -> None:
    sink = RecordingSink()
    registry = CollectorRegistry()
    async with adapter(broker, sink, registry) as mqtt:
        await mqtt.wait_connected()
        await mosquitto_pub(
            broker, state_topic("S-A1"), '{"occupied": true, "battery": 87, "rssi": -71}'
        )
        await mosquitto_pub(broker, state_topic("S-B1"), "0")
        await mosquitto_pub(broker, status_topic("S-B1"), "offline")
        await eventually(lambda: len(sink.availability) == 1, "status reached the sink")
    assert sink.readings == [
        ("S-A1", SensorReading(True, battery=87, rssi=-71)),
        ("S-B1", SensorReading(False)),
    ]
    assert sink.availability == [("S-B1", False)]
    assert sample(registry, "evpark_mqtt_messages_total", kind="state") == 2
    assert sample(registry, "evpark_mqtt_messages_total", kind="status") == 1


async def test_url_override_wins_over_the_config(broker: Mosquitto) -> None:
    sink = RecordingSink()
    mqtt_section = MqttSection(url="mqtt://127.0.0.1:9", client_id="edge-override")
    async with MqttSensors(
        site_id=SITE,
        mqtt=mqtt_section,
        sink=sink,
        metrics=MqttMetrics(CollectorRegistry()),
        url=broker.url,
        backoff=FAST,
    ) as mqtt:
        async with asyncio.timeout(10):
            await mqtt.wait_connected()


async def test_garbage_is_counted_logged_and_never_changes_a_slot(broker: Mosquitto) -> None:
    registry = CollectorRegistry()
    with capture_logs() as logs:
        await _publish_garbage(broker, registry)
    rejected = [e for e in logs if e["event"] == "mqtt.payload.rejected"]
    assert {"sensor": "S-B1", "reason": "bad_json"}.items() <= rejected[0].items()
    assert all(e["site"] == SITE and e["detail"] for e in rejected)
    assert len(rejected) == 10  # the same sensor and reason twice is logged once a minute


async def _publish_garbage(broker: Mosquitto, registry: CollectorRegistry) -> None:
    async with harnessed(broker, registry) as (harness, _):
        await mosquitto_pub(broker, state_topic("S-B1"), "free")
        await eventually(lambda: harness.received == 1, "first reading")
        before = harness.model.state
        garbage = [
            (state_topic("S-B1"), b'{"occupied": tru', "bad_json"),
            (state_topic("S-B1"), b'{"occupied": true, "battery": 500}', "out_of_range"),
            (state_topic("S-B1"), b'{"occupied": "yes"}', "wrong_type"),
            (state_topic("S-B1"), b'{"battery": 50}', "missing_field"),
            (state_topic("S-B1"), b"maybe", "unknown_payload"),
            (state_topic("S-B1"), b"\xff\xfe\xfd", "not_utf8"),
            (state_topic("S-B1"), b"1" * 5000, "too_large"),
            (state_topic("S-B1"), b'{"occupied": true, "ts": "yesterday"}', "bad_ts"),
            (state_topic("S-ZZ"), b"1", "unknown_sensor"),
            (state_topic("bad id!"), b"1", "bad_sensor_id"),
            (status_topic("S-B1"), b"sleeping", "unknown_payload"),
        ]
        for topic, payload, _ in garbage:
            await mosquitto_pub(broker, topic, payload)
        # a valid message after the garbage, as a barrier
        await mosquitto_pub(broker, state_topic("S-A1"), "0")
        await eventually(lambda: harness.received == 2, "barrier reading")
        assert harness.model.state.slots[SlotId("B1")] == before.slots[SlotId("B1")]
        for reason in {reason for _, _, reason in garbage}:
            expected = sum(1 for _, _, r in garbage if r == reason)
            assert (
                sample(registry, "evpark_mqtt_rejected_payloads_total", reason=reason) == expected
            ), reason


async def test_other_sites_topics_are_ignored(broker: Mosquitto) -> None:
    sink = RecordingSink()
    registry = CollectorRegistry()
    async with adapter(broker, sink, registry) as mqtt:
        await mqtt.wait_connected()
        await mosquitto_pub(broker, state_topic("S-A1", site="other-site"), "1", retain=True)
        await mosquitto_pub(broker, f"evpark/{SITE}/slots/A1/state", "1")
        await mosquitto_pub(broker, state_topic("S-B1"), "1")  # barrier
        await eventually(lambda: len(sink.readings) == 1, "barrier reading")
    assert sink.readings == [("S-B1", SensorReading(True))]


# ------------------------------------------------------------------ publishing


async def test_slot_states_and_summary_are_published_retained(broker: Mosquitto) -> None:
    registry = CollectorRegistry()
    async with harnessed(broker, registry) as (harness, mqtt):
        harness.publish_all()
        await mosquitto_pub(broker, state_topic("S-A1"), '{"occupied": true, "battery": 15}')
        await mosquitto_pub(broker, state_topic("S-B1"), "0")
        await eventually(lambda: harness.received == 2, "readings")
        await mqtt.wait_published()
        # a client that connects afterwards gets the retained states
        async with watching(broker) as watcher:
            await eventually(lambda: watcher.slot("B1") is not None, "B1 retained")
            await eventually(lambda: f"evpark/{SITE}/summary" in watcher.latest, "summary")
            a1 = watcher.slot("A1")
            assert a1 is not None
            assert a1["state"] == "occupied"
            assert a1["type"] == "ev"
            assert a1["charger"] == "CP-1"
            assert a1["evse"] == 1
            assert a1["sensor"] == {
                "id": "S-A1",
                "status": "ok",
                "battery": 15,
                "low_battery": True,
            }
            assert watcher.slot("B1") == {
                "site_id": SITE,
                "slot_id": "B1",
                "type": "standard",
                "state": "free",
                "since": harness.clock.now.isoformat().replace("+00:00", "Z"),
                "conditions": [],
                "sensor": {"id": "S-B1", "status": "ok", "battery": None, "low_battery": False},
            }
            summary = watcher.json(f"evpark/{SITE}/summary")
            assert summary is not None
            assert summary["free"] == {"ev": 0, "standard": 1}
            await eventually(
                lambda: watcher.latest.get(f"evpark/{SITE}/edge/status") == b"online", "online"
            )
        assert sample(registry, "evpark_slots", state="occupied") == 1
        assert sample(registry, "evpark_slots", state="free") == 1
        assert sample(registry, "evpark_sensors_offline") == 0


# ------------------------------------------------------------------ the model end to end


async def test_debounce_end_to_end(broker: Mosquitto) -> None:
    async with harnessed(broker, CollectorRegistry()) as (harness, _), watching(broker) as watcher:
        await mosquitto_pub(broker, state_topic("S-B1"), "free", retain=True)
        await eventually(lambda: (watcher.slot("B1") or {}).get("state") == "free", "free")
        # flapping while a car arrives, one second apart
        for count, payload in enumerate(("1", "0", "1"), start=2):
            harness.clock.advance(1)
            await mosquitto_pub(broker, state_topic("S-B1"), payload, retain=True)
            await eventually(lambda n=count: harness.received == n, "flapping reading")  # type: ignore[misc]
        harness.tick_after(4.5)
        harness.handle(SensorReported(SensorId("S-B1"), True))  # the same raw value again
        harness.tick_after(0)
        assert harness.model.view(SlotId("B1")).state == SlotState.FREE
        harness.tick_after(0.5)  # 5 s after the last change
        await eventually(lambda: (watcher.slot("B1") or {}).get("state") == "occupied", "occupied")


async def test_offline_and_stale_sensors_make_their_slot_unknown(broker: Mosquitto) -> None:
    async with harnessed(broker, CollectorRegistry()) as (harness, _), watching(broker) as watcher:
        await mosquitto_pub(broker, state_topic("S-A1"), "1")
        await mosquitto_pub(broker, state_topic("S-B1"), "0")
        await eventually(lambda: (watcher.slot("B1") or {}).get("state") == "free", "B1 free")

        await mosquitto_pub(broker, status_topic("S-A1"), "offline", retain=True)
        await eventually(lambda: (watcher.slot("A1") or {}).get("state") == "unknown", "offline")
        assert (watcher.slot("A1") or {}).get("sensor", {})["status"] == "offline"  # type: ignore[index]
        await mosquitto_pub(broker, status_topic("S-A1"), "online", retain=True)
        await eventually(lambda: (watcher.slot("A1") or {}).get("state") == "occupied", "online")

        harness.tick_after(600)
        await mosquitto_pub(broker, state_topic("S-A1"), "1")  # A1 keeps talking, B1 is silent
        await eventually(lambda: harness.received == 5, "heartbeat")
        harness.tick_after(301)
        await eventually(lambda: (watcher.slot("B1") or {}).get("state") == "unknown", "stale")
        assert (watcher.slot("A1") or {}).get("state") == "occupied"
        # the summary is a message of its own, published after the slot's
        summary_topic = f"evpark/{SITE}/summary"
        await eventually(
            lambda: (watcher.json(summary_topic) or {}).get("sensors_offline") == 1,
            "the summary counts the stale sensor",
        )


def connector(status: ConnectorStatus) -> ConnectorReported:
    """What the integrator's site model says about CP-1 / EVSE 1 (A1's charger)."""
    return ConnectorReported(ChargerId("CP-1"), EvseId(1), status)


@pytest.mark.parametrize(
    ("sensor", "connector_statuses", "after", "condition"),
    [
        ("1", [ConnectorStatus.AVAILABLE], 600, "ev_slot_blocked"),
        ("1", [ConnectorStatus.CHARGING, ConnectorStatus.SUSPENDED_EV], 900, "charged_idle"),
        ("0", [ConnectorStatus.CHARGING], 300, "sensor_suspect"),
    ],
)
async def test_each_derived_condition_end_to_end(
    broker: Mosquitto,
    sensor: str,
    connector_statuses: list[ConnectorStatus],
    after: float,
    condition: str,
) -> None:
    async with harnessed(broker, CollectorRegistry()) as (harness, _), watching(broker) as watcher:
        await mosquitto_pub(broker, state_topic("S-A1"), sensor)
        await eventually(lambda: harness.received == 1, "reading")
        for status in connector_statuses:
            harness.handle(connector(status), harness.clock.advance(1))
        harness.tick_after(after / 2 - 1)
        await mosquitto_pub(broker, state_topic("S-A1"), sensor)  # heartbeat
        await eventually(lambda: harness.received == 2, "heartbeat")
        harness.tick_after(after / 2)
        assert harness.model.view(SlotId("A1")).conditions == ()
        harness.tick_after(1)
        await eventually(
            lambda: (watcher.slot("A1") or {}).get("conditions") == [condition], condition
        )


# ------------------------------------------------------------------ broker restarts


async def test_broker_restart_reloads_retained_states_and_republishes(
    broker: Mosquitto,
) -> None:
    registry = CollectorRegistry()
    async with harnessed(broker, registry) as (harness, mqtt):
        await mosquitto_pub(broker, state_topic("S-A1"), "1", retain=True)
        await mosquitto_pub(broker, state_topic("S-B1"), "0", retain=True)
        await eventually(lambda: harness.received == 2, "retained readings")
        await mqtt.wait_published()

        # 1. Mosquitto restarts with its saved retained messages: they come again
        await asyncio.to_thread(broker.restart)
        await eventually(lambda: harness.received == 4, "retained states reloaded")
        assert mqtt.connected
        assert sample(registry, "evpark_mqtt_disconnects_total") >= 1

        # 2. a broker that lost everything gets the slot states again from the edge
        disconnects = sample(registry, "evpark_mqtt_disconnects_total")
        await asyncio.to_thread(broker.restart, wipe=True)
        await eventually(
            lambda: sample(registry, "evpark_mqtt_disconnects_total") > disconnects,
            "disconnect noticed",
        )
        await eventually(lambda: mqtt.connected, "reconnected")
        async with watching(broker) as watcher:
            await eventually(lambda: watcher.slot("B1") is not None, "republished")
            assert (watcher.slot("A1") or {}).get("state") == "occupied"
            assert (watcher.slot("B1") or {}).get("state") == "free"
        assert sample(registry, "evpark_mqtt_connected") == 1


async def test_adapter_waits_for_a_broker_that_is_not_up_yet(tmp_path: Path) -> None:
    later = Mosquitto(tmp_path)
    sink = RecordingSink()
    registry = CollectorRegistry()
    async with adapter(later, sink, registry) as mqtt:
        await eventually(lambda: sample(registry, "evpark_mqtt_disconnects_total") >= 2, "retries")
        assert not mqtt.connected
        await asyncio.to_thread(later.start)
        try:
            await eventually(lambda: mqtt.connected, "connected once the broker is up")
        finally:
            await asyncio.to_thread(later.stop)


# ------------------------------------------------------------------ TLS and credentials


async def test_tls_and_credentials_come_from_the_config(tmp_path: Path) -> None:
    tls = make_certificates(tmp_path)
    secure = Mosquitto(tmp_path, tls=tls, users={"edge": "edge-secret", "sensor": "s3cret"})
    await asyncio.to_thread(secure.start)
    try:
        assert secure.url.startswith("mqtts://")
        sink = RecordingSink()
        good = MqttSection(
            url=secure.url,
            ca_file=tls.ca,
            username="edge",
            password="edge-secret",
            client_id="edge-tls",
        )
        async with MqttSensors(
            site_id=SITE, mqtt=good, sink=sink, metrics=MqttMetrics(CollectorRegistry())
        ) as mqtt:
            await eventually(lambda: mqtt.connected, "connected over TLS with a password")
            await mosquitto_pub(secure, state_topic("S-A1"), "1", user=("sensor", "s3cret"))
            await eventually(lambda: len(sink.readings) == 1, "reading over TLS")

        registry = CollectorRegistry()
        wrong = good.model_copy(update={"password": "wrong", "client_id": "edge-wrong"})
        async with MqttSensors(
            site_id=SITE, mqtt=wrong, sink=sink, metrics=MqttMetrics(registry), backoff=FAST
        ) as mqtt:
            await eventually(
                lambda: sample(registry, "evpark_mqtt_disconnects_total") >= 2, "refused"
            )
            assert not mqtt.connected
    finally:
        await asyncio.to_thread(secure.stop)


# ------------------------------------------------------------------ sensor clocks


async def test_an_older_retained_state_replayed_after_a_broker_restart_is_dropped(
    broker: Mosquitto,
) -> None:
    registry = CollectorRegistry()
    async with harnessed(broker, registry) as (harness, _):
        now = harness.clock.now
        old = (now - timedelta(minutes=30)).isoformat()
        # retained on the broker: a reading half an hour old (live, so it is applied)
        await mosquitto_pub(
            broker, state_topic("S-B1"), f'{{"occupied": true, "ts": "{old}"}}', retain=True
        )
        await eventually(lambda: harness.received == 1, "old reading")
        # the sensor's current state, which the broker does not keep
        await mosquitto_pub(
            broker, state_topic("S-B1"), f'{{"occupied": false, "ts": "{now.isoformat()}"}}'
        )
        await eventually(lambda: harness.received == 2, "current reading")
        await asyncio.to_thread(broker.restart)

        def count(kind: str) -> float:
            return sample(registry, "evpark_sensor_clock_problems_total", kind=kind)

        await eventually(lambda: count("stale_replay") == 1, "the old state replayed, dropped")
        assert harness.received == 2
        assert count("past") == 1
        harness.tick_after(5)
        assert harness.model.view(SlotId("B1")).state == SlotState.FREE
