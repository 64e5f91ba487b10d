"""Sensor messages in: topics and payloads checked, clocks judged, readings handed on.

:class:`SensorReader` takes each message of the sensors' topics, hands every valid reading
or availability to the :class:`SensorSink` the daemon provides, in arrival order, and
nothing else. Invalid topics and payloads are counted
(``evpark_mqtt_rejected_payloads_total{reason}``) and logged (``mqtt.payload.rejected``).
Each reading's ``ts`` is judged by :class:`~edge.sensors.clock.SensorClocks`: a wrong
sensor clock is counted (``evpark_sensor_clock_problems_total{kind}``) and logged
(``mqtt.sensor.clock``), and the reading is applied with the receive time. Log lines about
one sensor (or topic) and one reason are rate-limited: the first, then at most one a
minute with the count skipped.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from edge.core.slots.documents import document_time
from edge.core.slots.events import SensorReading
from edge.core.slots.values import SensorId
from edge.sensors.clock import ClockProblem, ClockVerdict, SensorClocks
from edge.sensors.log_limit import LogLimiter
from edge.sensors.metrics import MqttMetrics
from edge.sensors.payloads import (
    Rejected,
    RejectReason,
    parse_state,
    parse_status,
    parse_topic,
)

log = structlog.get_logger("edge.sensors.readings")


class SensorSink(Protocol):
    """What the daemon does with valid sensor messages (called in arrival order)."""

    async def sensor_reported(
        self, sensor_id: SensorId, reading: SensorReading, received_at: datetime
    ) -> None: ...

    async def sensor_availability(
        self, sensor_id: SensorId, online: bool, received_at: datetime
    ) -> None: ...


class SensorReader:
    """The sensor side of one site's MQTT adapter."""

    def __init__(
        self,
        *,
        site_id: str,
        sink: SensorSink,
        metrics: MqttMetrics,
        log_limiter: LogLimiter,
        clock_tolerance: timedelta,
        known_sensors: Collection[str] | None = None,
    ) -> None:
        """With ``known_sensors`` set, messages of other sensors are rejected as
        ``unknown_sensor``."""
        self._site_id = site_id
        self._sink = sink
        self._metrics = metrics
        self._log_limiter = log_limiter
        self._clocks = SensorClocks(clock_tolerance)
        self._known = frozenset(known_sensors) if known_sensors is not None else None
        self._log = log.bind(site=site_id)

    async def receive(
        self, name: str, payload: bytes, retained: bool, received_at: datetime
    ) -> None:
        """One message of a sensor topic (``name``); ``retained``: the broker's replay."""
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
        if topic.kind == "state":
            reading = parse_state(payload)
            if isinstance(reading, Rejected):
                self._reject(sensor, reading)
                return
            # a retained message delivered as we subscribed is a replay, maybe an old one
            verdict = self._clocks.judge(
                sensor, reading.measured_at, received_at, replayed=retained
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
            ts=document_time(reading.measured_at) if reading.measured_at is not None else None,
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
