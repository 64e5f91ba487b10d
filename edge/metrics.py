"""Prometheus metrics of the edge, in a registry per daemon (tests run several).

The per-message figures (messages by action and result, handler latency) are counted in
plain dicts and lists and turned into metric families only when ``/metrics`` is read:
prometheus-client's own counters take a lock and check their state on every increment,
which at OCPP message rates cost more than the handler's own bookkeeping. Everything
runs on the event loop, so the plain counts need no lock.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from ocpp_handlers.quirks import COUNTS as METER_QUIRKS

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class _Latency:
    """One action's histogram: counts per bucket (the last is +Inf) and the sum."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(_LATENCY_BUCKETS) + 1)
        self.total = 0.0


class _MessageCollector(Collector):
    def __init__(self) -> None:
        self.messages: dict[tuple[str, str], int] = {}
        self.latency: dict[str, _Latency] = {}

    def collect(self) -> Iterator[Metric]:
        messages = CounterMetricFamily(
            "evpark_ocpp_messages",
            "CALLs received from chargers, by action and result",
            labels=["action", "result"],
        )
        for (action, result), count in sorted(self.messages.items()):
            messages.add_metric([action, result], count)
        yield messages
        latency = HistogramMetricFamily(
            "evpark_ocpp_handler_seconds",
            "CALL received -> CALLRESULT sent, stored included",
            labels=["action"],
        )
        for action, histogram in sorted(self.latency.items()):
            cumulative, buckets = 0, []
            bounds = (*_LATENCY_BUCKETS, float("inf"))
            for bound, count in zip(bounds, histogram.counts, strict=True):
                cumulative += count
                buckets.append((_bucket_label(bound), cumulative))
            latency.add_metric([action], buckets, histogram.total)
        yield latency
        quirks = CounterMetricFamily(
            "evpark_ocpp_meter_quirks",
            "Sampled values with a word outside their field's enum, tolerated (reading "
            "repaired or the sample dropped; ocpp_handlers.quirks), by field. Counted per "
            "process",
            labels=["field"],
        )
        for field, count in sorted(METER_QUIRKS.items()):
            quirks.add_metric([field], count)
        yield quirks


def _bucket_label(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


class OcppMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.connected = Gauge(
            "evpark_ocpp_connected_chargers", "Chargers connected now", ["version"],
            registry=registry,
        )  # fmt: skip
        self.commands = Counter(
            "evpark_ocpp_commands", "Commands sent to chargers, by action and outcome",
            ["action", "outcome"], registry=registry,
        )  # fmt: skip
        # who may connect (edge.ocpp.server, edge.ocpp.throttle)
        self.upgrade_failures = Counter(
            "evpark_ocpp_upgrade_failures", "Refused OCPP upgrades that count towards a "
            "lockout, by reason", ["reason"], registry=registry,
        )  # fmt: skip
        self.lockouts = Counter(
            "evpark_ocpp_lockouts", "Lockouts started after repeated failed upgrades, by "
            "scope (address or charger)", ["scope"], registry=registry,
        )  # fmt: skip
        self.throttled = Counter(
            "evpark_ocpp_upgrades_throttled", "Upgrades answered 429 while locked out, by "
            "scope", ["scope"], registry=registry,
        )  # fmt: skip
        self.duplicates = Counter(
            "evpark_ocpp_duplicate_connections", "Connections with the id of a charger "
            "already connected, by outcome (replaced, refused, probed)", ["outcome"],
            registry=registry,
        )  # fmt: skip
        self.connections_refused = Counter(
            "evpark_ocpp_connections_refused", "TCP connections refused because "
            "ocpp.max_connections were open", registry=registry,
        )  # fmt: skip
        self._per_message = _MessageCollector()
        registry.register(self._per_message)

    def message(self, action: str, result: str) -> None:
        counts = self._per_message.messages
        key = (action, result)
        counts[key] = counts.get(key, 0) + 1

    def handled(self, action: str, seconds: float) -> None:
        self.message(action, "ok")
        histogram = self._per_message.latency.get(action)
        if histogram is None:
            histogram = self._per_message.latency[action] = _Latency()
        histogram.counts[bisect_left(_LATENCY_BUCKETS, seconds)] += 1
        histogram.total += seconds
