"""Prometheus metrics of one central process, in a registry of its own (a test process
runs several apps; the global registry would mix them).

Counted where things happen: HTTP requests (:mod:`central.infra.http_metrics`), bus
traffic (the bus adapters), ingested events (the sync service). Depths that live in a
database or on the NATS server (sync's unpublished events, the notification queue,
consumer lag, the connection pools) are read when ``/metrics`` is scraped, by the probes
the owners register with :meth:`CentralMetrics.on_scrape`; a probe that fails or takes
too long leaves its figures as they were and is counted, the scrape still answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine

log = structlog.get_logger("central.metrics")

PROBE_TIMEOUT_S = 2.0
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
Probe = Callable[[], Awaitable[None]]


class CentralMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_requests = Counter(
            "evpark_central_http_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_seconds = Histogram(
            "evpark_central_http_request_duration_seconds",
            "time from request to the end of the answer, by route template and method",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.bus_published = Counter(
            "evpark_central_bus_published", "events published on the bus, by topic", ["topic"],
            registry=r,
        )  # fmt: skip
        self.bus_consumed = Counter(
            "evpark_central_bus_consumed",
            "events delivered to a consumer, by topic, consumer and outcome "
            "(handled, failed: to be retried, dead: given up)",
            ["topic", "consumer", "outcome"],
            registry=r,
        )
        self.bus_pending = Gauge(
            "evpark_central_bus_consumer_pending",
            "events a consumer has not handled yet (NATS: num_pending + num_ack_pending; "
            "in process: queued or in the handler)",
            ["topic", "consumer"],
            registry=r,
        )
        self.ingest_events = Counter(
            "evpark_central_ingest_events", "events from sites stored by the sync ingest",
            registry=r,
        )  # fmt: skip
        self.ingest_duplicates = Counter(
            "evpark_central_ingest_duplicates",
            "events from sites received again and ignored (already stored)",
            registry=r,
        )
        self.sync_unpublished = Gauge(
            "evpark_central_sync_unpublished_events",
            "events stored by the sync ingest and not yet confirmed published on the bus",
            registry=r,
        )
        self.notification_queue = Gauge(
            "evpark_central_notification_queue",
            "messages in the notification queue, by state (pending, dead)",
            ["state"],
            registry=r,
        )
        self.db_pool_size = Gauge(
            "evpark_central_db_pool_size", "connections the pool keeps, by database owner",
            ["database"], registry=r,
        )  # fmt: skip
        self.db_pool_checked_out = Gauge(
            "evpark_central_db_pool_checked_out",
            "connections in use, by database owner",
            ["database"],
            registry=r,
        )
        self.probe_failures = Counter(
            "evpark_central_metrics_probe_failures",
            "scrape-time probes that failed or timed out, by probe",
            ["probe"],
            registry=r,
        )
        self._probes: dict[str, Probe] = {}

    def on_scrape(self, name: str, probe: Probe) -> None:
        """Run ``probe`` before each scrape (it sets its gauges)."""
        self._probes[name] = probe

    def watch_pool(self, owner: str, engine: AsyncEngine) -> None:
        """Report ``engine``'s connection pool as the database of ``owner``."""
        pool = engine.pool
        size = getattr(pool, "size", None)
        checked_out = getattr(pool, "checkedout", None)
        if not callable(size) or not callable(checked_out):
            return  # a pool without figures (NullPool, StaticPool)
        self.db_pool_size.labels(owner).set_function(size)
        self.db_pool_checked_out.labels(owner).set_function(checked_out)

    async def render(self) -> bytes:
        """The text exposition format, after every probe has run."""
        for name, probe in list(self._probes.items()):
            try:
                async with asyncio.timeout(PROBE_TIMEOUT_S):
                    await probe()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - one failing probe must not fail the scrape
                self.probe_failures.labels(name).inc()
                log.warning("metrics.probe.failed", probe=name, error=repr(err))
        return generate_latest(self.registry)
