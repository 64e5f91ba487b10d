"""Prometheus metrics of the sensor side of the edge (MQTT adapter and slot model).

Built once by the composition root with the registry it exposes; tests pass their own
``CollectorRegistry`` so that nothing global is shared between them.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from edge.core.slots.model import SiteSummary
from edge.core.slots.values import SlotState
from edge.sensors.clock import ClockProblem
from edge.sensors.payloads import RejectReason


class MqttMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.messages = Counter(
            "evpark_mqtt_messages",
            "MQTT messages received on the site's sensor topics.",
            ["kind"],
            registry=registry,
        )
        self.rejected = Counter(
            "evpark_mqtt_rejected_payloads",
            "Sensor messages ignored because their topic or payload is invalid.",
            ["reason"],
            registry=registry,
        )
        self.slots = Gauge("evpark_slots", "Slots by state.", ["state"], registry=registry)
        self.sensors_offline = Gauge(
            "evpark_sensors_offline",
            "Slot sensors offline, silent for longer than sensor_stale_after, or never heard.",
            registry=registry,
        )
        self.connected = Gauge(
            "evpark_mqtt_connected", "1 while connected to the site's broker.", registry=registry
        )
        self.disconnects = Counter(
            "evpark_mqtt_disconnects",
            "Lost or failed connections to the site's broker.",
            registry=registry,
        )
        self.foreign_writes = Counter(
            "evpark_mqtt_foreign_slot_writes",
            "Messages from another client on the edge's own slot or summary topics "
            "(each is overwritten with the edge's state).",
            ["topic"],
            registry=registry,
        )
        self.republished = Counter(
            "evpark_mqtt_republished",
            "Slot states and summaries published again unchanged, by reason.",
            ["reason"],
            registry=registry,
        )
        self.clock_problems = Counter(
            "evpark_sensor_clock_problems",
            "Sensor readings whose ts was not believed (the receive time was used instead), "
            "ran backwards, or replayed an older state (dropped).",
            ["kind"],
            registry=registry,
        )
        for topic in ("slot", "summary"):
            self.foreign_writes.labels(topic=topic)
        for reason in ("connect", "periodic", "correction"):
            self.republished.labels(reason=reason)
        for problem in ClockProblem:
            self.clock_problems.labels(kind=problem.value)
        for kind in ("state", "status", "other"):
            self.messages.labels(kind=kind)
        for reason in RejectReason:
            self.rejected.labels(reason=reason.value)
        for state in SlotState:
            self.slots.labels(state=state.value)

    def observe_summary(self, summary: SiteSummary) -> None:
        for state, count in summary.by_state.items():
            self.slots.labels(state=state.value).set(count)
        self.sensors_offline.set(summary.sensors_offline)
