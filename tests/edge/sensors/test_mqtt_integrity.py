"""The running daemon keeps its MQTT topics true: it undoes foreign writes on its slot and
summary topics, publishes every state again periodically, keeps hearing sensors whose
clocks are wrong, and the documented Mosquitto ACL (config/mosquitto/acl) lets each
sensor write only its own topics and the edge alone write the slots."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
from structlog.testing import capture_logs

from edge.config import SiteConfig
from edge.daemon import EdgeDaemon
from tests.edge.conftest import make_config
from tests.mosquitto import Mosquitto, mosquitto_pub, running_mosquitto
from tests.polling import eventually
from tests.services import require_binary

SITE = "test-site"
SLOTS = [
    {"id": "B1", "type": "standard", "sensor": "S-B1"},
    {"id": "B2", "type": "standard", "sensor": "S-B2"},
]
ACL = Path(__file__).resolve().parents[3] / "config" / "mosquitto" / "acl"
_ids = itertools.count()
Logs = list[MutableMapping[str, Any]]


def sensor_topic(sensor: str) -> str:
    return f"evpark/{SITE}/sensors/{sensor}/state"


def slot_topic(slot: str) -> str:
    return f"evpark/{SITE}/slots/{slot}/state"


SUMMARY = f"evpark/{SITE}/summary"


def site_config(tmp_path: Path, broker: Mosquitto, **mqtt: Any) -> SiteConfig:
    return make_config(
        tmp_path / "data",
        slots=SLOTS,
        slot_timing={"debounce": 0},
        mqtt={"url": broker.url, "embedded": False, **mqtt},
    )


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with running_mosquitto(tmp_path / "mqtt") as mosquitto:
        yield mosquitto


@pytest.fixture
def logs() -> Iterator[Logs]:
    # entered before the daemon is built: its loggers are bound then
    with capture_logs() as captured:
        yield captured


@contextlib.asynccontextmanager
async def running(config: SiteConfig) -> AsyncIterator[EdgeDaemon]:
    async with EdgeDaemon(config) as daemon:
        async with asyncio.timeout(10):
            await daemon.mqtt.wait_connected()
        yield daemon


def sample(daemon: EdgeDaemon, name: str, **labels: str) -> float:
    return daemon.registry.get_sample_value(name, labels) or 0.0


async def slot_state(daemon: EdgeDaemon, slot: str) -> str:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.http_port}") as client:
        reply = await client.get(f"/api/slots/{slot}")
        assert reply.status_code == 200, reply.text
        state: str = reply.json()["state"]
        return state


def client(broker: Mosquitto, user: tuple[str, str] | None = None) -> aiomqtt.Client:
    return aiomqtt.Client(
        broker.host,
        broker.port,
        identifier=f"test-client-{next(_ids)}",
        username=user[0] if user else None,
        password=user[1] if user else None,
    )


async def retained(broker: Mosquitto, topic: str, user: tuple[str, str] | None = None) -> Any:
    """What a display connecting now gets on ``topic`` (its retained message), as JSON."""
    async with client(broker, user) as reader:
        await reader.subscribe(topic, qos=1)
        async with asyncio.timeout(5):
            async for message in reader.messages:
                assert isinstance(message.payload, bytes)
                return json.loads(message.payload)
    raise AssertionError("no retained message")


async def retained_when_state(broker: Mosquitto, topic: str, state: str) -> Any:
    """The retained slot document once it shows ``state``: the API shows a change as soon
    as the model made it, the broker only after it was stored and published."""
    found: list[Any] = []

    async def shows() -> bool:
        found[:] = [await retained(broker, topic)]
        return bool(found[0]["state"] == state)

    await eventually(shows, f"{topic} retained as {state}")
    return found[0]


@dataclass
class Seen:
    messages: list[tuple[str, bytes, bool]] = field(default_factory=list)

    def on(self, topic: str) -> list[bytes]:
        return [payload for t, payload, _ in self.messages if t == topic]

    def live_on(self, topic: str) -> list[bytes]:
        return [payload for t, payload, kept in self.messages if t == topic and not kept]


@contextlib.asynccontextmanager
async def watching(
    broker: Mosquitto, topic: str, user: tuple[str, str] | None = None
) -> AsyncIterator[Seen]:
    """Every message on ``topic`` (a filter) as a subscriber logged in as ``user`` sees it."""
    seen = Seen()
    ready = asyncio.Event()

    async def watch() -> None:
        async with client(broker, user) as watcher:
            await watcher.subscribe(topic, qos=1)
            ready.set()
            async for message in watcher.messages:
                assert isinstance(message.payload, bytes)
                seen.messages.append((message.topic.value, message.payload, message.retain))

    async with asyncio.TaskGroup() as group:
        task = group.create_task(watch())
        await ready.wait()
        try:
            yield seen
        finally:
            task.cancel()


# ------------------------------------------------------------------ foreign writes


async def test_a_foreign_free_on_an_occupied_slot_is_overwritten_and_counted(
    tmp_path: Path, broker: Mosquitto, logs: Logs
) -> None:
    async with running(site_config(tmp_path, broker)) as daemon:
        await mosquitto_pub(broker, sensor_topic("S-B1"), "1", retain=True)
        await eventually(lambda: _is(daemon, "B1", "occupied"), "B1 occupied")
        # the edge's own publications come back to it: never taken for foreign ones
        for payload in ("1", "0", "1", "0"):
            await mosquitto_pub(broker, sensor_topic("S-B2"), payload)
        await eventually(lambda: _is(daemon, "B2", "free"), "B2 free after flapping")
        await daemon.mqtt.wait_published()
        edge_b1 = await retained_when_state(broker, slot_topic("B1"), "occupied")
        assert sample(daemon, "evpark_mqtt_foreign_slot_writes_total", topic="slot") == 0

        fake = {**edge_b1, "state": "free"}
        await mosquitto_pub(broker, slot_topic("B1"), json.dumps(fake), retain=True)
        await eventually(
            _counted(daemon, "evpark_mqtt_foreign_slot_writes_total", 1, topic="slot"),
            "the foreign write counted",
        )
        await eventually(
            lambda: _retained_is(broker, slot_topic("B1"), edge_b1), "B1 occupied on the broker"
        )

        edge_summary = await retained(broker, SUMMARY)
        fake_summary = {**edge_summary, "free": {"standard": 2}}
        await mosquitto_pub(broker, SUMMARY, json.dumps(fake_summary), retain=True)
        await eventually(
            _counted(daemon, "evpark_mqtt_foreign_slot_writes_total", 1, topic="summary"),
            "the foreign summary counted",
        )
        await eventually(lambda: _retained_is(broker, SUMMARY, edge_summary), "summary restored")
        assert await slot_state(daemon, "B1") == "occupied"  # the model never listened
        assert sample(daemon, "evpark_mqtt_foreign_slot_writes_total", topic="slot") == 1
        assert sample(daemon, "evpark_mqtt_republished_total", reason="correction") >= 2
    warnings = [e for e in logs if e["event"] == "mqtt.slot.foreign_write"]
    assert [e["topic"] for e in warnings] == [slot_topic("B1"), SUMMARY]
    assert all(e["log_level"] == "warning" and e["site"] == SITE for e in warnings)
    assert '"state":"free"' in warnings[0]["payload"].replace(" ", "")


async def test_a_flood_of_foreign_writes_is_undone_without_flooding_the_log(
    tmp_path: Path, broker: Mosquitto, logs: Logs
) -> None:
    async with running(site_config(tmp_path, broker)) as daemon:
        await mosquitto_pub(broker, sensor_topic("S-B1"), "1", retain=True)
        await eventually(lambda: _is(daemon, "B1", "occupied"), "B1 occupied")
        edge_b1 = await retained_when_state(broker, slot_topic("B1"), "occupied")
        for n in range(5):
            fake = f'{{"state": "free", "n": {n}}}'
            await mosquitto_pub(broker, slot_topic("B1"), fake, retain=True)
        await eventually(
            _counted(daemon, "evpark_mqtt_foreign_slot_writes_total", 5, topic="slot"),
            "every foreign write counted",
        )
        await eventually(
            lambda: _retained_is(broker, slot_topic("B1"), edge_b1), "B1 occupied on the broker"
        )
    warnings = [e for e in logs if e["event"] == "mqtt.slot.foreign_write"]
    assert len(warnings) == 1  # then at most one a minute per topic


async def test_a_restart_does_not_take_the_last_run_for_a_foreign_writer(
    tmp_path: Path, broker: Mosquitto
) -> None:
    config = site_config(tmp_path, broker)
    async with running(config) as daemon:
        await mosquitto_pub(broker, sensor_topic("S-B2"), "0", retain=True)
        await eventually(lambda: _is(daemon, "B2", "free"), "B2 free")
        await daemon.mqtt.wait_published()
        before = await retained(broker, slot_topic("B1"))
    async with running(config) as daemon:
        await eventually(lambda: _is(daemon, "B2", "free"), "B2 free again")
        await daemon.mqtt.wait_published()
        after = await retained(broker, slot_topic("B1"))
        assert after["since"] != before["since"]  # a new state, over the last run's
        assert sample(daemon, "evpark_mqtt_foreign_slot_writes_total", topic="slot") == 0
        assert sample(daemon, "evpark_mqtt_foreign_slot_writes_total", topic="summary") == 0


async def test_every_state_is_published_again_periodically(
    tmp_path: Path, broker: Mosquitto
) -> None:
    async with running(site_config(tmp_path, broker, republish_interval=0.2)) as daemon:
        await mosquitto_pub(broker, sensor_topic("S-B2"), "0", retain=True)
        await eventually(lambda: _is(daemon, "B2", "free"), "B2 free")
        await daemon.mqtt.wait_published()
        async with watching(broker, f"evpark/{SITE}/#") as seen:
            await eventually(
                holds(lambda: len(seen.live_on(slot_topic("B2"))) >= 3), "B2 again and again"
            )
            await eventually(holds(lambda: len(seen.live_on(SUMMARY)) >= 3), "summary again")
        again = seen.live_on(slot_topic("B2"))
        assert len(set(again)) == 1  # the same state each time: nothing changed
        assert json.loads(again[0])["state"] == "free"
        assert sample(daemon, "evpark_mqtt_republished_total", reason="periodic") >= 6
        # its own republications are never mistaken for someone else's writes
        assert sample(daemon, "evpark_mqtt_foreign_slot_writes_total", topic="slot") == 0
        assert sample(daemon, "evpark_mqtt_foreign_slot_writes_total", topic="summary") == 0


# ------------------------------------------------------------------ sensor clocks


def reading(occupied: bool, ts: datetime | str) -> str:
    stamp = ts if isinstance(ts, str) else ts.isoformat().replace("+00:00", "Z")
    return json.dumps({"occupied": occupied, "ts": stamp})


async def test_a_sensor_clock_ahead_then_corrected_or_reset_keeps_being_heard(
    tmp_path: Path, broker: Mosquitto, logs: Logs
) -> None:
    topic = sensor_topic("S-B1")
    async with running(site_config(tmp_path, broker)) as daemon:
        ahead = datetime.now(UTC) + timedelta(hours=2)
        await mosquitto_pub(broker, topic, reading(True, ahead), retain=True)
        await eventually(lambda: _is(daemon, "B1", "occupied"), "occupied, clock 2 h ahead")
        await mosquitto_pub(broker, topic, reading(False, ahead + timedelta(seconds=5)))
        await eventually(lambda: _is(daemon, "B1", "free"), "free, clock still ahead")
        # the clock is corrected: every reading is now "older" than the last one
        await mosquitto_pub(broker, topic, reading(True, datetime.now(UTC)), retain=True)
        await eventually(lambda: _is(daemon, "B1", "occupied"), "occupied, clock corrected")
        await mosquitto_pub(broker, topic, reading(False, datetime.now(UTC)), retain=True)
        await eventually(lambda: _is(daemon, "B1", "free"), "free, clock corrected")
        # then the clock loses its time and restarts in 2000
        await mosquitto_pub(broker, topic, reading(True, "2000-01-01T00:00:00Z"), retain=True)
        await eventually(lambda: _is(daemon, "B1", "occupied"), "occupied, clock reset")
        await mosquitto_pub(broker, topic, reading(False, "2000-01-01T00:00:09Z"), retain=True)
        await eventually(lambda: _is(daemon, "B1", "free"), "free, clock reset")

        def count(kind: str) -> float:
            return sample(daemon, "evpark_sensor_clock_problems_total", kind=kind)

        assert (count("future"), count("reset"), count("backwards")) == (2, 2, 0)
        assert count("stale_replay") == 0
        assert sample(daemon, "evpark_mqtt_rejected_payloads_total", reason="bad_ts") == 0
    lines = [e for e in logs if e["event"] == "mqtt.sensor.clock"]
    # one line per sensor and kind (then at most one a minute), with the skew
    assert [(e["sensor"], e["kind"], e["action"]) for e in lines] == [
        ("S-B1", "future", "applied_at_receive_time"),
        ("S-B1", "reset", "applied_at_receive_time"),
    ]
    assert 7100 < lines[0]["skew_s"] < 7300
    assert lines[1]["skew_s"] < -20 * 365 * 86_400
    assert lines[1]["ts"] == "2000-01-01T00:00:00Z"


async def _is(daemon: EdgeDaemon, slot: str, state: str) -> bool:
    return await slot_state(daemon, slot) == state


def holds(condition: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return condition()

    return check


def _counted(
    daemon: EdgeDaemon, name: str, value: float, **labels: str
) -> Callable[[], Awaitable[bool]]:
    return holds(lambda: sample(daemon, name, **labels) >= value)


async def _retained_is(broker: Mosquitto, topic: str, expected: Any) -> bool:
    return bool(await retained(broker, topic) == expected)


# ------------------------------------------------------------------ the documented ACL

USERS = {
    "evpark-edge": "edge-password-1",
    "S-A1": "sensor-a1-password",
    "S-B1": "sensor-b1-password",
    "sign-entrance": "sign-password-1",
}


def login(user: str) -> tuple[str, str]:
    return user, USERS[user]


async def publish_v5(broker: Mosquitto, user: str, topic: str, payload: str) -> str:
    """Publish with MQTT 5 at QoS 1 and return what ``mosquitto_pub`` said about the PUBACK
    (its reason code: "Not authorized" for a denied publish)."""
    process = await asyncio.create_subprocess_exec(
        require_binary("mosquitto_pub"),
        *("-V", "mqttv5", "-h", broker.host, "-p", str(broker.port), "-q", "1", "-r"),
        *("-u", user, "-P", USERS[user], "-t", topic, "-m", payload),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(10):
        output, _ = await process.communicate()
    return output.decode()


async def test_the_documented_acl_lets_sensors_write_only_their_own_topics(
    tmp_path: Path,
) -> None:
    broker = Mosquitto(tmp_path / "mqtt", users=USERS, acl_file=ACL)
    await asyncio.to_thread(broker.start)
    try:
        await _acl_holds(tmp_path, broker)
    finally:
        await asyncio.to_thread(broker.stop)


async def _acl_holds(tmp_path: Path, broker: Mosquitto) -> None:
    config = site_config(
        tmp_path, broker, username="evpark-edge", password=USERS["evpark-edge"],
        homeassistant_discovery=True,
    )  # fmt: skip
    everything = f"evpark/{SITE}/#"
    async with (
        running(config) as daemon,
        watching(broker, everything, login("evpark-edge")) as edge_eye,
        watching(broker, everything, login("sign-entrance")) as sign,
        watching(broker, "homeassistant/#", login("sign-entrance")) as home_assistant,
    ):
        # allowed: a sensor its own state; the edge reads it and writes the slot
        await mosquitto_pub(broker, sensor_topic("S-B1"), "1", retain=True, user=login("S-B1"))
        await eventually(lambda: _is(daemon, "B1", "occupied"), "B1 occupied")
        await eventually(
            holds(lambda: any(b'"occupied"' in p for p in sign.on(slot_topic("B1")))),
            "the sign reads the edge's slot state",
        )
        await eventually(holds(lambda: bool(sign.on(SUMMARY))), "the sign reads the summary")

        # denied: a sensor writing another sensor's topic, a slot, the summary
        attacker = login("S-A1")
        await mosquitto_pub(broker, sensor_topic("S-B1"), "0", retain=True, user=attacker)
        await mosquitto_pub(broker, slot_topic("B1"), '{"state": "FAKE"}', user=attacker)
        await mosquitto_pub(broker, SUMMARY, '{"FAKE": {"standard": 9}}', user=attacker)
        await mosquitto_pub(broker, sensor_topic("S-A1"), "marker", user=attacker)  # allowed
        await eventually(
            holds(lambda: edge_eye.on(sensor_topic("S-A1")) == [b"marker"]), "the marker"
        )
        assert edge_eye.on(sensor_topic("S-B1")) == [b"1"]
        assert not any(b"FAKE" in payload for _, payload, _ in edge_eye.messages)
        # MQTT 5 says so to the publisher; a sign may not write a slot either
        assert "Not authorized" in await publish_v5(broker, "S-A1", slot_topic("B1"), "{}")
        assert "Not authorized" in await publish_v5(broker, "sign-entrance", slot_topic("B1"), "{}")
        assert "Not authorized" not in await publish_v5(broker, "S-A1", sensor_topic("S-A1"), "0")
        await eventually(holds(lambda: edge_eye.on(sensor_topic("S-A1"))[-1:] == [b"0"]), "0")

        # the edge writes the chargers' states and Home Assistant's documents; readers read
        # them, and nobody else may write them
        charger_status = f"evpark/{SITE}/chargers/CP-LOCKED/status"
        await eventually(holds(lambda: sign.on(charger_status) == [b"offline"]), "charger status")
        await eventually(holds(lambda: bool(home_assistant.messages)), "discovery documents")
        ha_topic = home_assistant.messages[0][0]
        assert "Not authorized" in await publish_v5(broker, "S-A1", charger_status, "online")
        assert "Not authorized" in await publish_v5(broker, "sign-entrance", ha_topic, "{}")

        assert await slot_state(daemon, "B1") == "occupied"
        assert not [t for t, _, _ in sign.messages if "/sensors/" in t]  # signs read no sensor
        assert sample(daemon, "evpark_mqtt_foreign_slot_writes_total", topic="slot") == 0
        assert sample(daemon, "evpark_mqtt_connected") == 1
