"""Prometheus gauges of load management, set after every decision and limit change (a
:attr:`LoadManager.observers` callback the daemon wires only while load management is on,
so that a site without it has none rather than zeros).

The profiles sent need no counter of their own: every one goes through
``send_command``, which counts it in ``evpark_ocpp_commands_total{action=
"SetChargingProfile", outcome}`` (:mod:`edge.metrics`).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge

from edge.core.power.model import OfferState
from edge.power.manager import STEERED, LoadManager


class PowerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.limit = Gauge(
            "evpark_power_site_limit_watts", "Site limit in force (a temporary limit, if "
            "lower, else the configured one)", registry=registry,
        )  # fmt: skip
        self.configured = Gauge(
            "evpark_power_configured_limit_watts", "Site limit in the configuration "
            "(power.site_limit_kw)", registry=registry,
        )  # fmt: skip
        self.measured = Gauge(
            "evpark_power_measured_watts", "Sum of the running sessions' last measured "
            "power", registry=registry,
        )  # fmt: skip
        self.offered = Gauge(
            "evpark_power_offered_watts", "Sum of the limits offered to charging sessions "
            "at the last decision", registry=registry,
        )  # fmt: skip
        self.usage = Gauge(
            "evpark_power_limit_usage_ratio", "Share of each limit (site, circuit <id>, "
            "phase <L>) the offers and uncontrolled chargers take", ["limit"],
            registry=registry,
        )  # fmt: skip
        self.sessions = Gauge(
            "evpark_power_sessions", "Sessions by load management state at the last "
            "decision", ["state"], registry=registry,
        )  # fmt: skip
        self.uncontrolled = Gauge(
            "evpark_power_uncontrolled_chargers", "Chargers that refused or ignored a "
            "limit (counted at their maximum until they boot again)", registry=registry,
        )  # fmt: skip
        for state in OfferState:
            self.sessions.labels(state=state.value)

    def observe(self, manager: LoadManager) -> None:
        assert manager.power.site_limit_kw is not None
        self.limit.set(manager.site_limit_w())
        self.configured.set(manager.power.site_limit_kw * 1000)
        self.measured.set(sum(s.power_w or 0.0 for s in manager.site.active_sessions()))
        self.uncontrolled.set(len(manager.uncontrolled))
        decision = manager.decision
        if decision is None:
            return
        offers = decision.offers
        self.offered.set(sum(o.limit_w for o in offers if o.state in STEERED))
        for state in OfferState:
            self.sessions.labels(state=state.value).set(sum(o.state is state for o in offers))
        self.usage.clear()  # circuits and phases come and go with the configuration
        for usage in decision.usage:
            share = usage.used / usage.limit if usage.limit > 0 else 0.0
            self.usage.labels(limit=usage.name).set(round(share, 4))
