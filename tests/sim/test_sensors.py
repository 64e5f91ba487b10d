"""The sensor simulator against a real Mosquitto: what it publishes follows the contract."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from prometheus_client import CollectorRegistry

from common.backoff import Backoff
from common.mqtt_url import broker_address
from edge.config import SiteConfig, load_site_config
from edge.core.ids import SlotId
from edge.core.slots.events import (
    SensorAvailability,
    SensorReading,
    SensorReported,
    SlotOutput,
    Tick,
    VisitStarted,
)
from edge.core.slots.layout import Layout, Timing
from edge.core.slots.model import SlotModel
from edge.core.slots.values import SensorId, SlotState
from edge.sensors.metrics import MqttMetrics
from edge.sensors.mqtt import MqttSensors
from edge.sensors.payloads import parse_state
from sim.sensors import QUIET, Noise, SensorField
from sim.sensors.site import SiteFileError, read_site_file
from tests.harness.site_config import write_site_toml
from tests.mosquitto import Mosquitto, running_mosquitto

FAST_FLAPS = replace(QUIET, flap_probability=1.0, max_flaps=2, flap_gap=(0.01, 0.03))


def site_sections(mqtt_port: int) -> dict[str, Any]:
    """Two slots with sensors and one without (B2: not simulated), on the test's broker."""
    return {
        "site": {"id": "sim-site", "environment": "development"},
        "chargers": [{"id": "CP-1"}],
        "slots": [
            {"id": "A1", "type": "ev", "sensor": "S-A1", "charger": "CP-1", "evse": 1},
            {"id": "B1", "sensor": "S-B1"},
            {"id": "B2"},
        ],
        "mqtt": {"url": f"mqtt://127.0.0.1:{mqtt_port}"},
    }


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with running_mosquitto(tmp_path) as mosquitto:
        yield mosquitto


@pytest.fixture
def site_file(tmp_path: Path, broker: Mosquitto) -> Path:
    return write_site_toml(tmp_path / "site.toml", site_sections(broker.port))


@pytest.fixture
def site(site_file: Path) -> SiteConfig:
    return load_site_config(site_file)


def test_the_simulator_reads_the_site_file_as_the_edge_does(site_file: Path) -> None:
    """Its own reading of the TOML (it imports nothing of the edge) finds the same
    site, sensors and broker as the edge's loader."""
    edge, own = load_site_config(site_file), read_site_file(site_file, environ={})
    assert own.site.id == edge.site.id == "sim-site"
    assert [(s.id, s.sensor) for s in own.slots] == [(s.id, s.sensor) for s in edge.slots]
    assert (own.mqtt.url, own.mqtt.username, own.mqtt.password) == (
        edge.mqtt.url,
        edge.mqtt.username,
        edge.mqtt.password,
    )
    overridden = read_site_file(site_file, environ={"EVPARK_MQTT__PASSWORD": "from-env"})
    assert overridden.mqtt.password == "from-env"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[site\n", "Expected ']'"),
        ("[mqtt]\nurl = 'mqtt://h'\n", r"no \[site\] table"),
        ("[site]\nname = 'x'\n", "site.id is missing"),
        ("[site]\nid = 's'\n[[slots]]\nid = 'A1'\nsensor = 3\n", "slots.sensor must be"),
    ],
)
def test_a_site_file_the_simulator_cannot_use_says_why(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "site.toml"
    path.write_text(text)
    with pytest.raises(SiteFileError, match=problem):
        read_site_file(path, environ={})
    with pytest.raises(SiteFileError, match="No such file"):
        read_site_file(tmp_path / "missing.toml", environ={})


def test_broker_urls() -> None:
    assert broker_address("mqtt://broker") == (broker_address("mqtt://broker:1883"))
    address = broker_address("mqtts://broker.example")
    assert (address.host, address.port, address.tls) == ("broker.example", 8883, True)
    with pytest.raises(ValueError, match="not an MQTT URL"):
        broker_address("http://broker:1883")


async def eventually(check: Callable[[], bool], what: str, within: float = 10.0) -> None:
    try:
        async with asyncio.timeout(within):
            while not check():  # noqa: ASYNC110 - polling plain state with a deadline
                await asyncio.sleep(0.02)
    except TimeoutError:
        pytest.fail(f"not within {within}s: {what}")


@contextlib.asynccontextmanager
async def recording(broker: Mosquitto) -> AsyncIterator[list[tuple[str, bytes]]]:
    """Every message on the site's sensor topics, in order, from an independent client."""
    seen: list[tuple[str, bytes]] = []
    ready = asyncio.Event()

    async def record() -> None:
        async with aiomqtt.Client(broker.host, broker.port, identifier="recorder") as client:
            await client.subscribe("evpark/sim-site/sensors/#", qos=1)
            ready.set()
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                seen.append((message.topic.value, message.payload))

    async with asyncio.TaskGroup() as task_group:
        task = task_group.create_task(record())
        await ready.wait()
        try:
            yield seen
        finally:
            task.cancel()


def states(seen: list[tuple[str, bytes]], sensor: str) -> list[bool]:
    out = []
    for topic, payload in seen:
        if topic == f"evpark/sim-site/sensors/{sensor}/state":
            reading = parse_state(payload)
            assert isinstance(reading, SensorReading), payload  # the contract holds
            out.append(reading.occupied)
    return out


def statuses(seen: list[tuple[str, bytes]], sensor: str) -> list[bytes]:
    return [p for t, p in seen if t == f"evpark/sim-site/sensors/{sensor}/status"]


async def test_sensors_of_the_config_come_online_with_valid_states(
    broker: Mosquitto, site: SiteConfig
) -> None:
    async with recording(broker) as seen:
        async with SensorField.from_config(site, noise=QUIET, seed=1) as field:
            assert {sensor.sensor_id for sensor in field} == {"S-A1", "S-B1"}
            await eventually(lambda: len(states(seen, "S-B1")) == 1, "B1 state")
            await eventually(lambda: len(states(seen, "S-A1")) == 1, "A1 state")
            assert statuses(seen, "S-A1") == [b"online"]
            assert states(seen, "S-A1") == [False]
            payload = json.loads(next(p for t, p in seen if t.endswith("S-A1/state")))
            assert set(payload) == {"occupied", "ts", "battery", "rssi"}
        # stopping the simulator says offline
        await eventually(lambda: statuses(seen, "S-B1") == [b"online", b"offline"], "offline")


async def test_arrivals_and_departures_flap_then_settle(
    broker: Mosquitto, site: SiteConfig
) -> None:
    async with (
        recording(broker) as seen,
        SensorField.from_config(site, noise=FAST_FLAPS, seed=7) as field,
    ):
        await eventually(lambda: len(states(seen, "S-B1")) == 1, "initial state")
        await field.arrive("B1")
        await eventually(lambda: states(seen, "S-B1")[-1] is True, "arrived")
        arrival = states(seen, "S-B1")[1:]
        assert len(arrival) in (3, 5)  # 1 or 2 flips before it settles
        assert arrival == [i % 2 == 0 for i in range(len(arrival))]  # True, False, True...
        await field.leave("B1", flap=False)
        await eventually(lambda: states(seen, "S-B1")[-1] is False, "left")
        assert len(states(seen, "S-B1")) == 1 + len(arrival) + 1


async def test_sensor_goes_offline_and_comes_back(broker: Mosquitto, site: SiteConfig) -> None:
    async with recording(broker) as seen, SensorField.from_config(site, noise=QUIET) as field:
        await field.arrive("A1")
        await field.go_offline("A1")
        assert not field["A1"].online
        await field.leave("A1")  # the car leaves while the sensor is down: nothing is said
        await field.come_online("A1")
        await eventually(lambda: len(statuses(seen, "S-A1")) == 3, "back online")
        assert statuses(seen, "S-A1") == [b"online", b"offline", b"online"]
        assert states(seen, "S-A1") == [False, True, False]


@pytest.mark.parametrize(
    ("noise", "check"),
    [
        (replace(QUIET, low_battery_share=1.0), lambda p: json.loads(p)["battery"] < 20),
        (replace(QUIET, plain_share=1.0), lambda p: p in (b"0", b"1")),
    ],
)
async def test_low_batteries_and_plain_payloads(
    broker: Mosquitto, site: SiteConfig, noise: Noise, check: Callable[[bytes], bool]
) -> None:
    async with recording(broker) as seen, SensorField.from_config(site, noise=noise):
        await eventually(lambda: len(states(seen, "S-A1")) == 1, "state")
        payload = next(p for t, p in seen if t.endswith("S-A1/state"))
        assert check(payload), payload


async def test_cli_publishes_traffic_and_a_killed_simulator_leaves_its_last_will(
    broker: Mosquitto, site_file: Path
) -> None:
    async with recording(broker) as seen:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "from sim.cli import app; app()",
            *("sensors", "--config", str(site_file), "--speed", "1000", "--seed", "3"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            # at 1000x, a stay of about 45 simulated minutes takes a few real seconds
            await eventually(
                lambda: len(states(seen, "S-A1")) + len(states(seen, "S-B1")) >= 4,
                "traffic",
                within=20,
            )
        finally:
            process.send_signal(signal.SIGKILL)
            await process.wait()
        # the broker speaks for the dead sensors
        await eventually(lambda: statuses(seen, "S-A1")[-1:] == [b"offline"], "A1 will")
        await eventually(lambda: statuses(seen, "S-B1")[-1:] == [b"offline"], "B1 will")


async def test_cli_stops_cleanly_after_its_duration(broker: Mosquitto, site_file: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from sim.cli import app; app()",
        *("sensors", "--config", str(site_file), "--duration", "0.5"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        _, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()


class ModelSink:
    """The edge's part, on the real clock: readings into the slot model."""

    def __init__(self, layout: Layout) -> None:
        self.model = SlotModel(layout, datetime.now(UTC))
        self.outputs: list[SlotOutput] = []

    async def sensor_reported(
        self, sensor_id: SensorId, reading: SensorReading, received_at: datetime
    ) -> None:
        event = SensorReported(sensor_id, reading.occupied, reading.battery, reading.rssi)
        self.outputs += self.model.handle(event, received_at)

    async def sensor_availability(
        self, sensor_id: SensorId, online: bool, received_at: datetime
    ) -> None:
        self.outputs += self.model.handle(SensorAvailability(sensor_id, online), received_at)

    async def tick(self) -> None:
        while True:
            now = datetime.now(UTC)
            self.outputs += self.model.handle(Tick(now), now)
            await asyncio.sleep(0.05)


async def test_a_flapping_arrival_is_one_visit_at_the_edge(
    broker: Mosquitto, site: SiteConfig
) -> None:
    layout = Layout.from_config(site.slots, site.slot_timing)
    layout = replace(layout, timing=Timing(debounce=Timing().debounce / 10))  # 0.5 s
    sink = ModelSink(layout)
    async with (
        MqttSensors(
            site_id="sim-site",
            mqtt=site.mqtt,
            sink=sink,
            metrics=MqttMetrics(CollectorRegistry()),
            backoff=Backoff(base=0.05, cap=0.2),
        ) as mqtt,
        asyncio.TaskGroup() as task_group,
    ):
        ticker = task_group.create_task(sink.tick())
        await mqtt.wait_connected()
        async with SensorField.from_config(site, noise=FAST_FLAPS, seed=11) as field:
            await eventually(lambda: sink.model.view(SlotId("B1")).state == SlotState.FREE, "free")
            await field.arrive("B1", flap=True)
            await eventually(
                lambda: sink.model.view(SlotId("B1")).state == SlotState.OCCUPIED, "occupied"
            )
        ticker.cancel()
    visits = [o for o in sink.outputs if isinstance(o, VisitStarted) and o.slot_id == "B1"]
    assert len(visits) == 1


async def test_a_bay_scenario_rides_out_a_broker_outage(
    broker: Mosquitto, site: SiteConfig
) -> None:
    """`persist`: a scenario driving a bay (evpark demo's vehicles) waits for the broker
    to come back instead of dying with the connection."""
    async with SensorField.from_config(site, noise=QUIET) as field:
        await field.arrive("A1")
        await asyncio.to_thread(broker.stop)
        async with asyncio.timeout(60), asyncio.TaskGroup() as group:
            leaving = group.create_task(field.leave("A1", persist=True))
            await asyncio.sleep(1.5)  # it has met the lost connection and waits
            assert not leaving.done()
            await asyncio.to_thread(broker.start)
        assert field["A1"].online
    async with recording(broker) as seen:  # the retained state a new reader gets
        await eventually(lambda: states(seen, "S-A1") == [False], "the car has left")
