"""Events central stored but could not put on the bus (the bus failed, or the process died
between commit and publish) are published again from each site's published mark, and
the mark moves only over unbroken runs: nothing is skipped, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from central.infra.db import create_engine, migrate
from central.sync.batches import published_runs
from central.sync.tables import sites
from contract.envelope import CloudEvent
from tests.central.conftest import Central, cloud_event, eventually
from tests.central.notification_fixtures import database_url

__all__ = ["database_url"]  # a fixture, used by name
Factory = Callable[..., Any]
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def test_published_runs_are_each_sites_unbroken_runs() -> None:
    marks = [("b", 4), ("a", 3), ("a", 1), ("a", 2), ("a", 7), ("b", 5), ("a", 8), ("a", 2)]
    assert published_runs(marks) == [("a", 1, 3), ("a", 7, 8), ("b", 4, 5)]
    assert published_runs([]) == []


class FailingOnce:
    """A bus whose next ``failures`` publish_many calls fail (as NATS down would)."""

    def __init__(self, bus: Any, failures: int) -> None:
        self.bus, self.failures = bus, failures
        self.real = bus.publish_many

    async def publish_many(self, topic: str, events: Sequence[CloudEvent]) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the bus is down")
        await self.real(topic, events)


async def marks(central: Central) -> dict[str, tuple[int, int]]:
    engine = create_engine(central.settings.database_url_for("sync"))
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(sites.c.site_id, sites.c.last_sequence, sites.c.published_sequence)
            )
            return {r.site_id: (r.last_sequence, r.published_sequence) for r in rows}
    finally:
        await engine.dispose()


async def test_events_the_bus_refused_are_published_again_from_the_sites_mark(
    central_factory: Factory, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with central_factory(database_url=database_url, services=["sync", "analytics"]) as c:
        headers = await c.auth("site", "south")
        bus = c.app.state.bus
        failing = FailingOnce(bus, failures=0)
        monkeypatch.setattr(bus, "publish_many", failing.publish_many)

        async def upload(first: int, count: int) -> int:
            batch = [
                cloud_event("south", n, "sensor.status", {"sensor_id": f"s{n}", "online": True})
                for n in range(first, first + count)
            ]
            r = await c.client.post("/sync/v1/events", json={"events": batch}, headers=headers)
            return r.status_code

        assert await upload(1, 3) == 200
        failing.failures = 1
        with pytest.raises(ConnectionError):  # stored, then the bus failed: a 500
            await upload(4, 3)
        assert await upload(7, 2) == 200  # published, but after a run that is not
        sync = c.service("sync")
        await c.settle()

        async def confirmed() -> bool:  # in process: marked once the consumers handled them
            return not sync._unconfirmed

        await eventually(confirmed)
        assert (await marks(c))["south"] == (8, 3)

        assert await sync.republish_pending(older_than=timedelta(0)) == 5
        await c.settle()
        await eventually(confirmed)
        assert (await marks(c))["south"] == (8, 8)
        assert await sync.republish_pending(older_than=timedelta(0)) == 0

        analytics = c.service("analytics")
        health = await analytics.health.report({"analytics": analytics})
        (south,) = health["sites"]
        assert (south["site_id"], south["events"]) == ("south", 8)  # each applied once


async def test_the_upgrade_sets_each_sites_mark_before_its_first_unpublished_event(
    database_url: str,
) -> None:
    """Events flagged unpublished by the old schema are still published after the upgrade."""
    engine = create_engine(database_url)
    try:
        await migrate(engine, "sync", "sync_0001")
        row = {"type": "sensor.status", "time": NOW, "received_at": NOW, "body": "{}"}
        async with engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO sync_sites (site_id, last_sequence) VALUES ('a', 3), ('b', 2)")
            )
            for site, sequence, published in [
                ("a", 1, True), ("a", 2, False), ("a", 3, True), ("b", 1, True), ("b", 2, True),
            ]:  # fmt: skip
                await conn.execute(
                    text(
                        "INSERT INTO sync_events (id, site_id, sequence, type, time, "
                        "received_at, published, body) VALUES (:id, :site, :sequence, :type, "
                        ":time, :received_at, :published, :body)"
                    ),
                    {"id": f"{site}{sequence}", "site": site, "sequence": sequence,
                     "published": published, **row},
                )  # fmt: skip
        await migrate(engine, "sync")
        async with engine.connect() as conn:
            found = await conn.execute(select(sites.c.site_id, sites.c.published_sequence))
            assert dict(found.all()) == {"a": 1, "b": 2}
    finally:
        await engine.dispose()
