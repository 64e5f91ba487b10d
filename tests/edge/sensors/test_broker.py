"""The embedded broker (amqtt in the daemon's loop) with aiomqtt and Mosquitto's clients."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import pytest
from prometheus_client import CollectorRegistry

from common.backoff import Backoff
from edge.config import MqttSection
from edge.core.slots.events import SensorReading
from edge.core.slots.model import SiteSummary
from edge.core.slots.values import SensorId, SlotState
from edge.sensors.broker import EmbeddedBroker, EmbeddedBrokerError, site_broker
from edge.sensors.metrics import MqttMetrics
from edge.sensors.mqtt import MqttSensors
from tests.harness.ports import free_port
from tests.polling import eventually
from tests.services import require_binary

_ids = itertools.count()


async def retained(broker: EmbeddedBroker, topic_filter: str, topics: set[str]) -> dict[str, bytes]:
    """Subscribe with a fresh client until each of ``topics`` came; topic -> payload.

    amqtt may send a retained message twice on subscribe (once per QoS): QoS 1 is "at
    least once", and a repeated sensor reading changes nothing in the slot model.
    """
    got: dict[str, bytes] = {}
    async with aiomqtt.Client(broker.host, broker.port, identifier=f"c-{next(_ids)}") as client:
        await client.subscribe(topic_filter, qos=1)
        async with asyncio.timeout(10):
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                assert message.retain
                got[message.topic.value] = message.payload
                if set(got) >= topics:
                    break
        # anything else that was retained and matches arrives right behind
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.3):
                async for message in client.messages:
                    assert isinstance(message.payload, bytes)
                    got[message.topic.value] = message.payload
    return got


async def test_retained_messages_and_wildcards() -> None:
    async with EmbeddedBroker("127.0.0.1", free_port()) as broker:
        async with aiomqtt.Client(broker.host, broker.port, identifier="pub") as client:
            await client.publish("evpark/s/sensors/S1/state", b"1", qos=1, retain=True)
            await client.publish("evpark/s/sensors/S2/state", b"0", qos=0, retain=True)
            await client.publish("evpark/s/sensors/S2/state", b"1", qos=1, retain=True)
            await client.publish("evpark/other/sensors/S9/state", b"1", qos=1, retain=True)
            await client.publish("evpark/s/sensors/S3/state", b"1", qos=1, retain=True)
            await client.publish("evpark/s/sensors/S3/state", b"", qos=1, retain=True)  # cleared
        mine = {"evpark/s/sensors/S1/state", "evpark/s/sensors/S2/state"}
        assert await retained(broker, "evpark/s/sensors/+/state", mine) == {
            "evpark/s/sensors/S1/state": b"1",
            "evpark/s/sensors/S2/state": b"1",  # the last retained value
        }
        everything = {*mine, "evpark/other/sensors/S9/state"}
        assert set(await retained(broker, "evpark/#", everything)) == everything


async def test_live_messages_reach_subscribers() -> None:
    async with EmbeddedBroker("127.0.0.1", free_port()) as broker:
        async with aiomqtt.Client(broker.host, broker.port, identifier="sub") as sub:
            await sub.subscribe("a/+/c", qos=1)
            async with aiomqtt.Client(broker.host, broker.port, identifier="pub") as pub:
                await pub.publish("a/b/c", b"live", qos=1)
                await pub.publish("a/b/x", b"not for us", qos=1)
                await pub.publish("a/z/c", b"second", qos=1)
            async with asyncio.timeout(10):
                payloads = [m.payload async for m in _take(sub, 2)]
        assert payloads == [b"live", b"second"]


async def _take(client: aiomqtt.Client, count: int):  # type: ignore[no-untyped-def]
    seen = 0
    async for message in client.messages:
        yield message
        seen += 1
        if seen == count:
            return


async def test_last_will_of_a_client_that_dies() -> None:
    mosquitto_sub = require_binary("mosquitto_sub")
    async with EmbeddedBroker("127.0.0.1", free_port()) as broker:
        process = await asyncio.create_subprocess_exec(
            mosquitto_sub,
            *("-h", broker.host, "-p", str(broker.port), "-t", "nothing", "-i", "sensor-S1"),
            *("--will-topic", "evpark/s/sensors/S1/status", "--will-payload", "offline"),
            *("--will-retain", "--will-qos", "1"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        async with aiomqtt.Client(broker.host, broker.port, identifier="watch") as watch:
            await watch.subscribe("evpark/s/sensors/+/status", qos=1)
            await asyncio.sleep(0.3)  # let mosquitto_sub connect (its will is only armed then)
            process.kill()
            await process.wait()
            async with asyncio.timeout(10):
                message = await anext(aiter(watch.messages))
        assert message.topic.value == "evpark/s/sensors/S1/status"
        assert message.payload == b"offline"


async def test_site_broker_embeds_only_when_asked_and_nobody_listens() -> None:
    port = free_port()
    url = f"mqtt://127.0.0.1:{port}"
    async with site_broker(MqttSection(url=url, embedded=False)) as none:
        assert none is None
    async with site_broker(MqttSection(url=url, embedded=True)) as embedded:
        assert embedded is not None
        assert embedded.port == port
        # a second daemon on the same site finds a broker there and uses it
        async with site_broker(MqttSection(url=url, embedded=True)) as second:
            assert second is None


async def test_site_broker_refuses_tls_and_busy_ports(tmp_path: Path) -> None:
    with pytest.raises(EmbeddedBrokerError, match="TLS"):
        async with site_broker(MqttSection(url="mqtts://127.0.0.1:1", embedded=True)):
            pass
    port = free_port()
    async with EmbeddedBroker("127.0.0.1", port):
        with pytest.raises(EmbeddedBrokerError, match="cannot run"):
            async with EmbeddedBroker("127.0.0.1", port):
                pass


class Sink:
    def __init__(self) -> None:
        self.readings: list[tuple[SensorId, SensorReading]] = []

    async def sensor_reported(self, sensor_id: SensorId, reading: SensorReading, _: object) -> None:
        self.readings.append((sensor_id, reading))

    async def sensor_availability(self, sensor_id: SensorId, online: bool, _: object) -> None:
        raise AssertionError("no status expected")


async def test_the_edge_adapter_works_on_the_embedded_broker() -> None:
    async with (
        site_broker(MqttSection(url=f"mqtt://127.0.0.1:{free_port()}", embedded=True)) as broker,
    ):
        assert broker is not None
        async with aiomqtt.Client(broker.host, broker.port, identifier="sensor") as sensor:
            await sensor.publish(
                "evpark/site/sensors/S-1/state", b'{"occupied": true}', qos=1, retain=True
            )
        sink = Sink()
        section = MqttSection(url=broker.url, client_id="edge")
        async with MqttSensors(
            site_id="site",
            mqtt=section,
            sink=sink,  # type: ignore[arg-type]
            metrics=MqttMetrics(CollectorRegistry()),
            backoff=Backoff(base=0.05, cap=0.2),
        ) as mqtt:
            async with asyncio.timeout(10):
                while not sink.readings:  # noqa: ASYNC110 - polling with a deadline
                    await asyncio.sleep(0.02)
            assert mqtt.connected
        assert set(sink.readings) == {("S-1", SensorReading(True))}


async def test_the_edge_undoes_a_foreign_summary_on_the_embedded_broker() -> None:
    """No ACL on the embedded broker: the edge's corrections are the only defence."""
    async with EmbeddedBroker("127.0.0.1", free_port()) as broker:
        registry = CollectorRegistry()
        section = MqttSection(url=broker.url, client_id="edge")
        summary = SiteSummary(
            {SlotState.FREE: 0, SlotState.OCCUPIED: 1}, {"ev": 0}, {"ev": 1}, 0, 0
        )
        async with MqttSensors(
            site_id="site",
            mqtt=section,
            sink=Sink(),  # type: ignore[arg-type]
            metrics=MqttMetrics(registry),
            backoff=Backoff(base=0.05, cap=0.2),
        ) as mqtt:
            await mqtt.wait_connected()
            mqtt.publish_summary(summary, datetime.now(UTC))
            await mqtt.wait_published()
            mine = await retained(broker, "evpark/site/summary", {"evpark/site/summary"})
            async with aiomqtt.Client(broker.host, broker.port, identifier="intruder") as intruder:
                await intruder.publish("evpark/site/summary", b'{"free": {"ev": 1}}', retain=True)

            def foreign() -> float:
                labels = {"topic": "summary"}
                value = registry.get_sample_value("evpark_mqtt_foreign_slot_writes_total", labels)
                return value or 0.0

            async def counted() -> bool:
                return foreign() >= 1

            async def restored() -> bool:
                topic = "evpark/site/summary"
                return await retained(broker, topic, {topic}) == mine

            await eventually(counted, "the foreign summary counted")
            await eventually(restored, "the edge's summary back on the broker")
            assert foreign() == 1
