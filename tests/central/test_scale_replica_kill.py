"""Exactly-once at scale under crashes: central in scale mode with two ingest replicas
(gateway and sync) and two analytics replicas sharing their durable consumers, sites
posting across both ingest replicas all along. One ingest replica is SIGKILLed mid-load
(the sites' batches in flight there fail and go again to the other, as an edge's would),
then both analytics replicas, the second in the middle of a batch (paused until a
backlog waits, let go and killed once it has taken a batch: NATS delivers the events
not acknowledged again after ``bus_ack_wait_s``, lowered here from 30 s to 3 s), and
both restarted. Once every consumer has caught up, every event is stored once, each site's
sequence 1..N gap-free, and every consumer applied each event once: counted in every
service's own tables (:func:`bench.central_checks.exactly_once`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.central_checks import exactly_once
from bench.central_lag import BusWatch
from bench.central_load import Posting, SitePoster, steady
from bench.central_sites import SiteEvents
from central.infra.bus_nats import consumer_name, stream_name
from contract.envelope import CHARGING_TOPIC
from tests.harness.central_cluster import CentralCluster
from tests.harness.shared_services import NATS_URL

pytestmark = pytest.mark.services

SITES = 6
RATE = 150.0  # events/s over all sites
SECONDS = 10.0
BACKLOG = 60  # charging events waiting for analytics when it is let go and killed


class AnalyticsConsumer:
    """Analytics' durable consumer of charging.events, as NATS sees it."""

    def __init__(self, js: Any, cluster: CentralCluster) -> None:
        self._js = js
        self._stream = stream_name(f"{cluster.bus_namespace}.{CHARGING_TOPIC}")
        self._name = consumer_name("analytics", CHARGING_TOPIC)

    async def state(self) -> tuple[int, int, int]:
        """(events delivered so far, delivered and not acknowledged, not yet delivered)."""
        info = await self._js.consumer_info(self._stream, self._name)
        return info.delivered.consumer_seq or 0, info.num_ack_pending or 0, info.num_pending or 0

    async def wait(self, what: str, ready: Callable[[int, int, int], bool], within: float) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            state = await self.state()
            if ready(*state):
                return
            await asyncio.sleep(0.02)
        raise AssertionError(
            f"not within {within} s: {what} (delivered, in flight, waiting: {state})"
        )


async def kill_analytics_mid_batch(cluster: CentralCluster) -> int:
    """SIGKILL analytics-0 under load; pause analytics-1 until a backlog waits, let it go
    and SIGKILL it as soon as it has taken a new batch (it holds events delivered and
    not acknowledged, more wait). NATS delivers the events of both again after
    ``bus_ack_wait_s``. Returns the events analytics-1 held when it died.

    (The first goes before the pause: a paused replica holds its transaction's row locks,
    and the other would wait on them.)"""
    import nats

    nc = await nats.connect(NATS_URL)
    try:
        consumer = AnalyticsConsumer(nc.jetstream(), cluster)
        cluster.kill("analytics-0")
        cluster.pause("analytics-1")
        await consumer.wait("a backlog", lambda _d, _h, waiting: waiting >= BACKLOG, within=30)
        delivered, _, _ = await consumer.state()
        cluster.resume("analytics-1")
        await consumer.wait(
            "analytics-1 takes a batch", lambda d, held, _w: d > delivered and held > 0, within=30
        )
        await asyncio.sleep(0.05)  # into its handlers
        _, held, _ = await consumer.state()
        cluster.kill("analytics-1")
    finally:
        await nc.close()
    return held


async def test_killed_replicas_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    env = {
        "EVPARK_CENTRAL_RATE_LIMIT__ENABLED": "false",
        "EVPARK_CENTRAL_BUS_ACK_WAIT_S": "3",
        # events a killed ingest replica stored and did not publish go out sooner
        "EVPARK_CENTRAL_REPUBLISH_INTERVAL_S": "1",
    }
    async with CentralCluster(
        tmp_path, ingest_replicas=2, replicas={"analytics": 2}, env=env
    ) as cluster:
        names = [f"kill-{i}" for i in range(SITES)]
        keys = await cluster.keys("site", list(names))
        posters = [
            SitePoster(SiteEvents(site, chargers=4), key, replica=i % 2)
            for i, (site, key) in enumerate(zip(names, keys, strict=True))
        ]
        posting = Posting()
        async with (
            httpx.AsyncClient(base_url=cluster.ingest_urls[0], timeout=60) as first,
            httpx.AsyncClient(base_url=cluster.ingest_urls[1], timeout=60) as second,
            asyncio.TaskGroup() as tasks,
        ):
            tasks.create_task(
                steady(
                    posters,
                    [first, second],
                    rate=RATE,
                    seconds=SECONDS,
                    interval=0.25,
                    batch=100,
                    posting=posting,
                )
            )
            await asyncio.sleep(2.0)
            cluster.kill("ingest-1")
            held = await kill_analytics_mid_batch(cluster)
            await cluster.restart("analytics-0")
            await cluster.restart("analytics-1")
        assert posting.retries, "no batch failed: the ingest replica died idle"

        async with BusWatch(NATS_URL, cluster.bus_namespace) as watch:
            done = await watch.until_applied(within=60)
        assert done is not None, f"the consumers did not catch up: {watch.samples[-1]}"
        problems = {
            needle: sum(cluster.count_in_logs(needle).values())
            for needle in ("bus.event.dead_lettered", ".event.invalid")
        }
        checks = await exactly_once(cluster, [p.events for p in posters], problems)
        failed = [c for c in checks if not c.ok]
        assert not failed, (
            f"{failed} (analytics-1 was killed holding {held} events; retries {posting.retries})"
        )
        assert sum(p.events.made for p in posters) >= RATE * SECONDS * 0.9
