"""The site's MQTT broker: sensor readings in, slot states and the summary out.

``MqttSensors`` is an async context manager that owns one supervised loop inside a
TaskGroup: connect, subscribe to ``evpark/<site>/sensors/+/state`` and ``.../+/status``
(QoS 1) and to the edge's own topics, hand every sensor message to the
:class:`~edge.sensors.readings.SensorReader` (which passes valid readings to the daemon's
sink) and publish the slot states and the summary retained through
:class:`~edge.sensors.retained.RetainedStates` (which also defends them against anyone
else's writes). When the broker goes away it reconnects with exponential backoff and
jitter, subscribes again (the broker then redelivers the sensors' retained states) and
republishes the latest slot states.

The edge also keeps ``evpark/<site>/edge/status`` retained: ``online`` while connected,
``offline`` on a clean stop and as its last will, so that a sign can tell stale numbers.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

import aiomqtt
import structlog

from common.backoff import Backoff
from common.mqtt_url import broker_address
from edge.config import MqttSection
from edge.core.slots.documents import slot_document, summary_document
from edge.core.slots.model import SiteSummary, SlotView
from edge.core.topics import (
    edge_status_topic,
    slot_state_topic,
    slot_state_topic_filter,
    summary_topic,
)
from edge.sensors.grid import BadGridReading, grid_power_topic, grid_watts
from edge.sensors.log_limit import LogLimiter
from edge.sensors.metrics import MqttMetrics
from edge.sensors.payloads import state_topic_filter, status_topic_filter
from edge.sensors.readings import SensorReader, SensorSink
from edge.sensors.retained import RetainedStates

log = structlog.get_logger("edge.sensors.mqtt")


def slot_state_payload(site_id: str, view: SlotView) -> bytes:
    return json.dumps(slot_document(site_id, view), separators=(",", ":")).encode()


def summary_payload(site_id: str, summary: SiteSummary, at: datetime) -> bytes:
    return json.dumps(summary_document(site_id, summary, at), separators=(",", ":")).encode()


def _utc_now() -> datetime:
    return datetime.now(UTC)


TopicHandler = Callable[[str, bytes, bool], None]
"""Gets a watched topic's messages: topic, payload and whether the broker kept it."""


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
        grid: Callable[[float, datetime], None] | None = None,
    ) -> None:
        """``url`` overrides ``mqtt.url`` (``--mqtt-url``); with ``known_sensors`` set,
        messages of other sensors are rejected as ``unknown_sensor``."""
        self._site_id = site_id
        self._mqtt = mqtt
        self._address = broker_address(url or mqtt.url)
        self._metrics = metrics
        self._clock = clock
        # our own copy: the policy given may be shared, the attempts made are this client's
        self._backoff = replace(backoff, attempts=0) if backoff else Backoff(base=0.5, cap=30.0)
        self._keepalive = keepalive
        # the grid meter's readings (evpark/<site>/grid/power) go here, if anyone wants them
        self._grid = grid
        self._grid_topic = grid_power_topic(site_id)
        self._log = log.bind(site=site_id)
        self._connected = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._task_group: asyncio.TaskGroup | None = None
        self._runner: asyncio.Task[None] | None = None
        self._watched: list[tuple[str, TopicHandler]] = []
        # one limiter for every log line about what others send: one bounded memory
        log_limiter = self._log_limiter = LogLimiter()
        self._reader = SensorReader(
            site_id=site_id,
            sink=sink,
            metrics=metrics,
            log_limiter=log_limiter,
            clock_tolerance=timedelta(seconds=mqtt.sensor_clock_tolerance),
            known_sensors=known_sensors,
        )
        self._retained = RetainedStates(
            site_id=site_id,
            metrics=metrics,
            log_limiter=log_limiter,
            every=mqtt.republish_interval,
        )

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
        await self._retained.wait_sent()

    def watch(self, topic_filter: str, handler: TopicHandler) -> None:
        """Subscribe to ``topic_filter`` (QoS 1) as well; call before entering."""
        if self._task_group is not None:
            raise RuntimeError("watch() before entering MqttSensors")
        self._watched.append((topic_filter, handler))

    # -------------------------------------------------------------- publishing

    def publish_retained(self, topic: str, payload: bytes) -> None:
        """Queue any other retained state of the edge (QoS 1, the latest per topic wins,
        sent again after a reconnect and every ``republish_interval``)."""
        self._retained.publish(topic, payload)

    def publish_slot(self, view: SlotView) -> None:
        """Queue a slot's state (retained, QoS 1); the latest state per slot wins."""
        self._retained.publish(
            slot_state_topic(self._site_id, view.slot_id), slot_state_payload(self._site_id, view)
        )

    def publish_summary(self, summary: SiteSummary, at: datetime) -> None:
        """Queue the site summary (retained) and update the slot gauges."""
        self._metrics.observe_summary(summary)
        self._retained.publish(
            summary_topic(self._site_id), summary_payload(self._site_id, summary, at)
        )

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
                *([(self._grid_topic, 0)] if self._grid is not None else []),
                *[(topic_filter, 1) for topic_filter, _ in self._watched],
            ]
        )
        await client.publish(edge_status_topic(site), b"online", qos=1, retain=True)
        self._retained.connected()
        self._connected.set()
        self._metrics.connected.set(1)
        self._log.info("mqtt.connected", broker=where, tls=self._address.tls)
        async with asyncio.TaskGroup() as task_group:
            task_group.create_task(self._retained.send(client), name="mqtt-publisher")
            task_group.create_task(self._retained.republish(), name="mqtt-republisher")
            async for message in client.messages:
                await self._receive(message)

    async def _receive(self, message: aiomqtt.Message) -> None:
        received_at = self._clock()
        name = message.topic.value
        payload = _payload_bytes(message.payload)
        if name == self._grid_topic and self._grid is not None:
            try:
                self._grid(grid_watts(payload), received_at)
            except BadGridReading as err:
                self._metrics.rejected.labels(reason="bad_grid_reading").inc()
                if (dropped := self._log_limiter.admit("grid")) is not None:
                    self._log.warning("mqtt.grid.refused", error=str(err),
                                      payload=payload[:64], not_logged=dropped)  # fmt: skip
            return
        for topic_filter, handler in self._watched:
            if message.topic.matches(topic_filter):
                handler(name, payload, message.retain)
                return
        if self._retained.owns(name):
            self._retained.check(name, payload, message.retain)
            return
        await self._reader.receive(name, payload, message.retain, received_at)


def _payload_bytes(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if payload is None:
        return b""
    return str(payload).encode()
