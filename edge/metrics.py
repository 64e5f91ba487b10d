"""Prometheus metrics of the edge, in a registry per daemon (tests run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class OcppMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.connected = Gauge(
            "evpark_ocpp_connected_chargers", "Chargers connected now", ["version"],
            registry=registry,
        )  # fmt: skip
        self.messages = Counter(
            "evpark_ocpp_messages", "CALLs received from chargers, by action and result",
            ["action", "result"], registry=registry,
        )  # fmt: skip
        self.latency = Histogram(
            "evpark_ocpp_handler_seconds", "CALL received -> CALLRESULT sent, stored included",
            ["action"], buckets=_LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.commands = Counter(
            "evpark_ocpp_commands", "Commands sent to chargers, by action and outcome",
            ["action", "outcome"], registry=registry,
        )  # fmt: skip
        # label children cached: .labels() costs more than the increment on the hot path
        self._counters: dict[tuple[str, str], Counter] = {}
        self._histograms: dict[str, Histogram] = {}

    def message(self, action: str, result: str) -> None:
        key = (action, result)
        child = self._counters.get(key)
        if child is None:
            child = self._counters[key] = self.messages.labels(action, result)
        child.inc()

    def handled(self, action: str, seconds: float) -> None:
        self.message(action, "ok")
        child = self._histograms.get(action)
        if child is None:
            child = self._histograms[action] = self.latency.labels(action)
        child.observe(seconds)
