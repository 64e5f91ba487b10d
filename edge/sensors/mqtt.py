"""The site's MQTT broker: sensor readings in, slot states and the summary out.

``MqttSensors`` is an async context manager that owns one supervised loop inside a
TaskGroup: connect, subscribe to ``evpark/<site>/sensors/+/state`` and ``.../+/status``
(QoS 1), hand every valid reading to the :class:`SensorSink` the daemon provides, and
publish the slot states and the summary retained. When the broker goes away it
reconnects with exponential backoff and jitter, subscribes again (the broker then
redelivers the sensors' retained states) and republishes the latest slot states.

Invalid topics and payloads are counted (``evpark_mqtt_rejected_payloads_total{reason}``)
and logged (``mqtt.payload.rejected``) and never reach the sink. Each reading's ``ts`` is
judged by :class:`~edge.sensors.clock.SensorClocks`: a wrong sensor clock is counted
(``evpark_sensor_clock_problems_total{kind}``) and logged (``mqtt.sensor.clock``), and the
reading is applied with the receive time. Log lines about one sensor (or topic) and one
reason are rate-limited: the first, then at most one a minute with the count skipped.

The edge owns its slot and summary topics and listens to them too. Anyone else's message
there (a fake "free" from any client on the broker) is counted
(``evpark_mqtt_foreign_slot_writes_total{topic}``), logged (``mqtt.slot.foreign_write``)
and overwritten with the edge's state, at most once a second per topic (two edges that
disagree must not flood the broker). Its own publications come back as well: they are
recognised by their payload. Every state is also published again every
``mqtt.republish_interval`` seconds and after every (re)connect.

The edge also keeps ``evpark/<site>/edge/status`` retained: ``online`` while connected,
``offline`` on a clean stop and as its last will, so that a sign can tell stale numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import ssl
import time
from collections import deque
from collections.abc import Callable, Collection, Hashable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Protocol, Self
from urllib.parse import urlsplit

import aiomqtt
import structlog

from common.backoff import Backoff
from edge.config import MqttSection
from edge.core.slots import SensorId, SiteSummary, SlotView
from edge.sensors.clock import ClockProblem, ClockVerdict, SensorClocks
from edge.sensors.metrics import MqttMetrics
from edge.sensors.payloads import (
    Rejected,
    RejectReason,
    SensorReading,
    parse_state,
    parse_status,
    parse_topic,
    state_topic_filter,
    status_topic_filter,
)

log = structlog.get_logger("edge.sensors.mqtt")

CORRECTION_SPACING = 1.0  # seconds between two corrections of the same topic
_ECHOES_KEPT = 8  # own publications per topic whose echo has not come back yet


class SensorSink(Protocol):
    """What the daemon does with valid sensor messages (called in arrival order)."""

    async def sensor_reported(
        self, sensor_id: SensorId, reading: SensorReading, received_at: datetime
    ) -> None: ...

    async def sensor_availability(
        self, sensor_id: SensorId, online: bool, received_at: datetime
    ) -> None: ...


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool


def broker_address(url: str) -> BrokerAddress:
    """``mqtt://host[:1883]`` or ``mqtts://host[:8883]``."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"not an MQTT URL: {url!r} (mqtt://host:port or mqtts://host:port)")
    tls = parts.scheme == "mqtts"
    return BrokerAddress(parts.hostname, parts.port or (8883 if tls else 1883), tls)


def slot_state_topic(site_id: str, slot_id: str) -> str:
    return f"evpark/{site_id}/slots/{slot_id}/state"


def summary_topic(site_id: str) -> str:
    return f"evpark/{site_id}/summary"


def edge_status_topic(site_id: str) -> str:
    return f"evpark/{site_id}/edge/status"


def slot_state_topic_filter(site_id: str) -> str:
    return slot_state_topic(site_id, "+")


def _is_slot_state_topic(topic: str, site_id: str) -> bool:
    prefix = f"evpark/{site_id}/slots/"
    return topic.startswith(prefix) and topic.endswith("/state") and topic.count("/") == 4


class _LogLimiter:
    """The first line per key, then at most one per ``period`` with how many were skipped:
    a broken sensor or a flooding client cannot flood the log."""

    def __init__(self, period: float = 60.0, max_keys: int = 10_000) -> None:
        self._period = period
        self._max_keys = max_keys
        self._seen: dict[Hashable, tuple[float, int]] = {}

    def admit(self, key: Hashable) -> int | None:
        """None: stay silent; else log now, saying how many lines were skipped before."""
        now = time.monotonic()
        last, skipped = self._seen.get(key, (float("-inf"), 0))
        if now - last < self._period:
            self._seen[key] = (last, skipped + 1)
            return None
        if len(self._seen) > self._max_keys:  # bounded, whatever garbage arrives
            self._seen.clear()
        self._seen[key] = (now, 0)
        return skipped


def _mqtt_time(moment: datetime) -> str:
    """Times on the site's topics keep microseconds, as published since the first release
    (docs/mqtt.md); what evpark stores and sends central has milliseconds."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def slot_state_payload(site_id: str, view: SlotView) -> bytes:
    return json.dumps(slot_document(site_id, view), separators=(",", ":")).encode()


def slot_document(site_id: str, view: SlotView) -> dict[str, object]:
    """One slot as JSON: the retained MQTT state and the local API's answer alike."""
    document: dict[str, object] = {
        "site_id": site_id,
        "slot_id": view.slot_id,
        "type": view.slot_type,
        "state": view.state.value,
        "since": _mqtt_time(view.since),
        "conditions": [c.value for c in view.conditions],
    }
    if view.charger_id is not None:
        document["charger"] = view.charger_id
        document["evse"] = view.evse_id
        document["connector"] = view.connector_id
        document["connector_status"] = view.connector_status
    if view.sensor_id is not None:
        document["sensor"] = {
            "id": view.sensor_id,
            "status": view.sensor_status,
            "battery": view.battery,
            "low_battery": view.low_battery,
        }
    if view.reservation_id is not None:
        document["reservation_id"] = view.reservation_id
    if view.visit_id is not None:
        document["visit_id"] = view.visit_id
    if view.out_of_service_reason:
        document["out_of_service_reason"] = view.out_of_service_reason
    return document


def summary_payload(site_id: str, summary: SiteSummary, at: datetime) -> bytes:
    return json.dumps(summary_document(site_id, summary, at), separators=(",", ":")).encode()


def summary_document(site_id: str, summary: SiteSummary, at: datetime) -> dict[str, object]:
    """The site's free counts by slot type: the retained MQTT summary and the API's."""
    return {
        "site_id": site_id,
        "free": dict(summary.free_by_type),
        "total": dict(summary.total_by_type),
        "states": {state.value: count for state, count in summary.by_state.items()},
        "sensors_offline": summary.sensors_offline,
        "sensors_low_battery": summary.sensors_low_battery,
        "updated_at": _mqtt_time(at),
    }


def _utc_now() -> datetime:
    return datetime.now(UTC)


class MqttSensors:
    """The sensor adapter of one site; use as ``async with MqttSensors(...) as mqtt:``."""

    def __init__(
        self,
        *,
        site_id: str,
        mqtt: MqttSection,
        sink: SensorSink,
        metrics: MqttMetrics,
        url: str | None = None,
        known_sensors: Collection[str] | None = None,
        clock: Callable[[], datetime] = _utc_now,
        backoff: Backoff | None = None,
        keepalive: int = 30,
    ) -> None:
        """``url`` overrides ``mqtt.url`` (``--mqtt-url``); with ``known_sensors`` set,
        messages of other sensors are rejected as ``unknown_sensor``."""
        self._site_id = site_id
        self._mqtt = mqtt
        self._address = broker_address(url or mqtt.url)
        self._sink = sink
        self._metrics = metrics
        self._known = frozenset(known_sensors) if known_sensors is not None else None
        self._clock = clock
        # our own copy: the policy given may be shared, the attempts made are this client's
        self._backoff = replace(backoff, attempts=0) if backoff else Backoff(base=0.5, cap=30.0)
        self._keepalive = keepalive
        self._log = log.bind(site=site_id)
        self._latest: dict[str, bytes] = {}  # topic -> the last payload we were asked to publish
        # topic -> (payload, request number): not yet acknowledged by the current broker. The
        # number tells a request made while the same payload was being sent from that send.
        self._dirty: dict[str, tuple[bytes, int]] = {}
        self._requests = itertools.count()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._connected = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._task_group: asyncio.TaskGroup | None = None
        self._runner: asyncio.Task[None] | None = None
        self._log_limiter = _LogLimiter()
        self._clocks = SensorClocks(timedelta(seconds=mqtt.sensor_clock_tolerance))
        self._republish_every = mqtt.republish_interval
        # own publications not yet seen coming back, oldest first, per topic
        self._in_flight: dict[str, deque[bytes]] = {}
        self._corrected_at: dict[str, float] = {}  # topic -> loop time of its last correction
        self._deferred: dict[str, float] = {}  # topic -> loop time its correction may go
        self._deferred_added = asyncio.Event()

    # -------------------------------------------------------------- lifetime

    async def __aenter__(self) -> Self:
        self._task_group = asyncio.TaskGroup()
        await self._task_group.__aenter__()
        self._runner = self._task_group.create_task(self._supervise(), name="mqtt-sensors")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task_group is None or self._runner is None:
            raise RuntimeError("MqttSensors was not entered")
        client = self._client
        if client is not None and self._connected.is_set():
            try:
                async with asyncio.timeout(2):
                    await client.publish(
                        edge_status_topic(self._site_id), b"offline", qos=1, retain=True
                    )
            except (aiomqtt.MqttError, TimeoutError) as err:
                self._log.info("mqtt.stop.offline_not_sent", error=str(err))
        self._runner.cancel()
        await self._task_group.__aexit__(exc_type, exc, tb)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self) -> None:
        await self._connected.wait()

    async def wait_published(self) -> None:
        """Until the broker has acknowledged everything published so far."""
        await self._idle.wait()

    # -------------------------------------------------------------- publishing

    def publish_slot(self, view: SlotView) -> None:
        """Queue a slot's state (retained, QoS 1); the latest state per slot wins."""
        self._publish(
            slot_state_topic(self._site_id, view.slot_id), slot_state_payload(self._site_id, view)
        )

    def publish_summary(self, summary: SiteSummary, at: datetime) -> None:
        """Queue the site summary (retained) and update the slot gauges."""
        self._metrics.observe_summary(summary)
        self._publish(summary_topic(self._site_id), summary_payload(self._site_id, summary, at))

    def _publish(self, topic: str, payload: bytes) -> None:
        if self._latest.get(topic) == payload:
            return
        self._latest[topic] = payload
        self._dirty[topic] = (payload, next(self._requests))
        self._idle.clear()
        self._wake.set()

    def _queue_all(self, reason: str) -> None:
        """Publish every slot state and the summary again (a broker may have lost them)."""
        if not self._latest:
            return
        self._dirty.update((t, (p, next(self._requests))) for t, p in self._latest.items())
        self._metrics.republished.labels(reason=reason).inc(len(self._latest))
        self._idle.clear()
        self._wake.set()

    def _correct(self, topic: str) -> None:
        payload = self._latest.get(topic)
        if payload is None:
            return
        self._corrected_at[topic] = asyncio.get_running_loop().time()
        self._dirty[topic] = (payload, next(self._requests))
        self._metrics.republished.labels(reason="correction").inc()
        self._idle.clear()
        self._wake.set()

    # -------------------------------------------------------------- the loop

    def _make_client(self) -> aiomqtt.Client:
        tls_context: ssl.SSLContext | None = None
        if self._address.tls:
            cafile = str(self._mqtt.ca_file) if self._mqtt.ca_file is not None else None
            tls_context = ssl.create_default_context(cafile=cafile)
        return aiomqtt.Client(
            self._address.host,
            self._address.port,
            identifier=self._mqtt.client_id or f"evpark-edge-{self._site_id}",
            username=self._mqtt.username,
            password=self._mqtt.password,
            tls_context=tls_context,
            keepalive=self._keepalive,
            timeout=10,
            will=aiomqtt.Will(edge_status_topic(self._site_id), b"offline", qos=1, retain=True),
        )

    async def _supervise(self) -> None:
        where = f"{self._address.host}:{self._address.port}"
        while True:
            client = self._make_client()
            try:
                async with client:
                    self._client = client
                    self._backoff.reset()
                    await self._session(client, where)
            except* aiomqtt.MqttError as group:
                error = group.exceptions[0]
                was_connected = self._connected.is_set()
                self._log.warning(
                    "mqtt.disconnected" if was_connected else "mqtt.connect.failed",
                    broker=where,
                    error=str(error),
                )
            finally:
                self._client = None
                self._connected.clear()
                self._metrics.connected.set(0)
            self._metrics.disconnects.inc()
            delay = self._backoff.next_delay()
            self._log.info("mqtt.reconnect.scheduled", broker=where, delay=round(delay, 2))
            await asyncio.sleep(delay)

    async def _session(self, client: aiomqtt.Client, where: str) -> None:
        site = self._site_id
        await client.subscribe(
            [
                (state_topic_filter(site), 1),
                (status_topic_filter(site), 1),
                # our own topics, to see (and undo) anyone else's writes there
                (slot_state_topic_filter(site), 1),
                (summary_topic(site), 1),
            ]
        )
        await client.publish(edge_status_topic(site), b"online", qos=1, retain=True)
        self._in_flight.clear()  # echoes of the last session's publications will not come
        self._deferred.clear()
        # a new broker (or a restarted one) gets every slot state again
        self._queue_all("connect")
        self._wake.set()
        self._connected.set()
        self._metrics.connected.set(1)
        self._log.info("mqtt.connected", broker=where, tls=self._address.tls)
        async with asyncio.TaskGroup() as task_group:
            task_group.create_task(self._publisher(client), name="mqtt-publisher")
            task_group.create_task(self._republisher(), name="mqtt-republisher")
            async for message in client.messages:
                await self._receive(message)

    async def _publisher(self, client: aiomqtt.Client) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._dirty:
                topic, (payload, request) = next(iter(self._dirty.items()))
                echoes = self._in_flight.setdefault(topic, deque(maxlen=_ECHOES_KEPT))
                echoes.append(payload)  # before sending: the echo may beat the PUBACK
                await client.publish(topic, payload, qos=1, retain=True)
                # a correction asked for meanwhile goes out again: this send may have
                # reached the broker before the write it answers
                if self._dirty.get(topic, (b"", -1))[1] == request:
                    del self._dirty[topic]
            self._idle.set()

    async def _republisher(self) -> None:
        """Every state again each ``republish_interval``; deferred corrections when due."""
        loop = asyncio.get_running_loop()
        next_round = loop.time() + self._republish_every
        while True:
            self._deferred_added.clear()
            due = min([next_round, *self._deferred.values()])
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(due):
                    await self._deferred_added.wait()
            now = loop.time()
            if now >= next_round:
                self._queue_all("periodic")
                next_round = now + self._republish_every
            for topic, at in list(self._deferred.items()):
                if at <= now:
                    del self._deferred[topic]
                    self._correct(topic)

    # -------------------------------------------------------------- receiving

    async def _receive(self, message: aiomqtt.Message) -> None:
        received_at = self._clock()
        name = message.topic.value
        if name == summary_topic(self._site_id) or _is_slot_state_topic(name, self._site_id):
            self._check_own_topic(name, _payload_bytes(message.payload), message.retain)
            return
        topic = parse_topic(name, self._site_id)
        if isinstance(topic, Rejected):
            self._metrics.messages.labels(kind="other").inc()
            self._reject("-", topic)
            return
        self._metrics.messages.labels(kind=topic.kind).inc()
        sensor = topic.sensor_id
        if self._known is not None and sensor not in self._known:
            self._reject(sensor, Rejected(RejectReason.UNKNOWN_SENSOR, "not in the site config"))
            return
        payload = _payload_bytes(message.payload)
        if topic.kind == "state":
            reading = parse_state(payload)
            if isinstance(reading, Rejected):
                self._reject(sensor, reading)
                return
            # a retained message delivered as we subscribed is a replay, maybe an old one
            verdict = self._clocks.judge(
                sensor, reading.measured_at, received_at, replayed=message.retain
            )
            if verdict.problem is not None:
                self._clock_problem(sensor, reading, verdict)
            if not verdict.accepted:
                return
            reading = replace(reading, measured_at=verdict.measured_at)
            await self._sink.sensor_reported(sensor, reading, received_at)
        else:
            online = parse_status(payload)
            if isinstance(online, Rejected):
                self._reject(sensor, online)
                return
            self._log.info("mqtt.sensor.availability", sensor=sensor, online=online)
            await self._sink.sensor_availability(sensor, online, received_at)

    def _check_own_topic(self, topic: str, payload: bytes, retained: bool) -> None:
        """A message on one of our slot or summary topics: our echo, or someone else's."""
        mine = self._latest.get(topic)
        if mine is None:
            return  # not a slot of this edge, or nothing published yet: nothing to defend
        echoes = self._in_flight.get(topic)
        if echoes and payload in echoes:
            # echoes come back in the order sent: older ones not seen were overtaken
            while echoes.popleft() != payload:
                continue
            return
        if payload == mine:
            return
        if retained:
            # stored before we subscribed (ours from before a restart, or anyone's): the
            # reconnect republish overwrites it unless ours is already on its way
            if topic not in self._dirty and not echoes:
                self._correct(topic)
            return
        which = "summary" if topic == summary_topic(self._site_id) else "slot"
        self._metrics.foreign_writes.labels(topic=which).inc()
        skipped = self._log_limiter.admit(("foreign", topic))
        if skipped is not None:
            self._log.warning(
                "mqtt.slot.foreign_write",
                topic=topic,
                payload=payload[:120].decode("utf-8", "replace"),
                suppressed=skipped,
            )
        now = asyncio.get_running_loop().time()
        last = self._corrected_at.get(topic, float("-inf"))
        if now - last >= CORRECTION_SPACING:
            self._correct(topic)
        elif topic not in self._deferred:
            self._deferred[topic] = last + CORRECTION_SPACING
            self._deferred_added.set()

    def _clock_problem(self, sensor: str, reading: SensorReading, verdict: ClockVerdict) -> None:
        assert verdict.problem is not None
        assert verdict.skew is not None
        self._metrics.clock_problems.labels(kind=verdict.problem.value).inc()
        skipped = self._log_limiter.admit(("clock", sensor, verdict.problem))
        if skipped is None:
            return
        if not verdict.accepted:
            action = "dropped"
        elif verdict.measured_at == reading.measured_at:
            action = "applied"
        else:
            action = "applied_at_receive_time"
        # a replay is the broker's doing (an older save), not the sensor's
        emit = self._log.info if verdict.problem is ClockProblem.STALE_REPLAY else self._log.warning
        emit(
            "mqtt.sensor.clock",
            sensor=sensor,
            kind=verdict.problem.value,
            skew_s=round(verdict.skew.total_seconds(), 1),
            ts=_mqtt_time(reading.measured_at) if reading.measured_at is not None else None,
            action=action,
            suppressed=skipped,
        )

    def _reject(self, sensor: str, rejected: Rejected) -> None:
        """Count every rejection; log the first per (sensor, reason) and then once a minute."""
        self._metrics.rejected.labels(reason=rejected.reason.value).inc()
        suppressed = self._log_limiter.admit((sensor, rejected.reason))
        if suppressed is None:
            return
        self._log.warning(
            "mqtt.payload.rejected",
            sensor=sensor,
            reason=rejected.reason.value,
            detail=rejected.detail,
            suppressed=suppressed,
        )


def _payload_bytes(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if payload is None:
        return b""
    return str(payload).encode()
