"""``/metrics/health`` lists every durable consumer of every topic with what it has not
applied yet: in one process (the in-process bus), and on NATS where the consumers run in
other processes."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from central.analytics.health import backlog_status
from central.analytics.settings import AnalyticsSettings
from central.app import create_app
from central.infra.bus_backlog import ConsumerBacklog, memory_backlog
from central.infra.bus_nats import NatsBus
from central.settings import CentralSettings
from central.site_commands import COMMANDS_TOPIC
from contract.envelope import CHARGING_TOPIC, PARKING_TOPIC, CloudEvent
from tests.central.conftest import eventually

OPERATOR = {"x-evpark-key-id": "op-1", "x-evpark-scope": "operator"}
_ids = itertools.count(1)


def event() -> CloudEvent:
    n = next(_ids)
    return CloudEvent(
        id=f"backlog-{n}",
        source="/sites/site-1",
        type="parking.nothing_to_do",  # a type no service applies: only the count matters
        time=datetime.now(UTC),
        sequence=n,
    )


def stuck(released: asyncio.Event) -> Any:
    async def handle(_event: CloudEvent) -> None:
        await released.wait()

    return handle


def test_a_consumer_lags_by_count_or_by_age() -> None:
    s = AnalyticsSettings(bus_backlog_warn=100, bus_lag_warn_s=60)
    assert backlog_status(ConsumerBacklog("t", "c", 100, 59.0), s) == "ok"
    assert backlog_status(ConsumerBacklog("t", "c", 100, None), s) == "ok"
    assert backlog_status(ConsumerBacklog("t", "c", 101, None), s) == "lagging"
    assert backlog_status(ConsumerBacklog("t", "c", 1, 61.0), s) == "lagging"


def test_memory_backlog_keeps_the_topics_asked() -> None:
    pending = {("b", "x"): 1, ("a", "y"): 2, ("other", "z"): 3}
    assert memory_backlog(pending, ["a", "b"]) == [
        ConsumerBacklog("a", "y", 2),
        ConsumerBacklog("b", "x", 1),
    ]


async def test_all_in_one_lists_every_consumer_and_a_stuck_one_degrades(
    central_factory: Any,
) -> None:
    async with central_factory(analytics={"bus_backlog_warn": 2}) as central:
        bus = central.app.state.bus
        released = asyncio.Event()
        await bus.subscribe(PARKING_TOPIC, "stuck", stuck(released))
        for _ in range(3):
            await bus.publish(PARKING_TOPIC, event())
        operator = await central.auth("operator")

        async def health() -> dict[str, Any]:
            r = await central.client.get("/metrics/health", headers=operator)
            assert r.status_code == 200
            answer: dict[str, Any] = r.json()
            return answer

        async def others_done() -> bool:
            consumers = (await health())["bus"][PARKING_TOPIC]["consumers"]
            return all(c["pending"] == 0 for name, c in consumers.items() if name != "stuck")

        await eventually(others_done)
        report = await health()
        bus_report = report["bus"]
        assert set(bus_report[PARKING_TOPIC]["consumers"]) == {
            "analytics",
            "notification",
            "parking",
            "stuck",
        }
        assert set(bus_report[CHARGING_TOPIC]["consumers"]) == {
            "analytics",
            "charging",
            "notification",
            "parking",
        }
        assert set(bus_report[COMMANDS_TOPIC]["consumers"]) == {"sync"}
        stuck_report = bus_report[PARKING_TOPIC]["consumers"]["stuck"]
        age = stuck_report.pop("oldest_age_s")
        assert stuck_report == {"pending": 3, "status": "lagging"}  # one in its handler
        assert age is not None
        assert age >= 0  # since the first was published
        assert bus_report[PARKING_TOPIC]["status"] == "lagging"
        assert report["status"] == "degraded"
        assert any(
            problem.startswith("bus consumer stuck of parking.events has 3 events not applied")
            for problem in report["problems"]
        )

        released.set()
        await central.settle()
        report = await health()
        assert report["bus"][PARKING_TOPIC]["consumers"]["stuck"]["status"] == "ok"
        assert not [p for p in report["problems"] if p.startswith("bus")]


@pytest.mark.services
async def test_on_nats_analytics_sees_the_consumers_of_other_processes(
    tmp_path: Path, nats_url: str, nats_namespace: str
) -> None:
    settings = CentralSettings(
        data_dir=tmp_path,
        bus_url=nats_url,
        bus_namespace=nats_namespace,
        analytics={"bus_backlog_warn": 2},
    )
    app = create_app(settings, services=["analytics"], gateway=False)
    released = asyncio.Event()
    # the parking service's process: it has taken events and applies none yet
    async with NatsBus(nats_url, namespace=nats_namespace) as parking:
        await parking.subscribe(PARKING_TOPIC, "parking", stuck(released))
        for _ in range(3):
            await parking.publish(PARKING_TOPIC, event())
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://a") as client:

                async def report() -> dict[str, Any]:
                    r = await client.get("/metrics/health", headers=OPERATOR)
                    assert r.status_code == 200
                    answer: dict[str, Any] = r.json()
                    return answer

                async def analytics_done() -> bool:
                    consumers = (await report())["bus"][PARKING_TOPIC]["consumers"]
                    return consumers.get("analytics", {}).get("pending") == 0

                await eventually(analytics_done)
                health = await report()
                lagging = health["bus"][PARKING_TOPIC]["consumers"]["parking"]
                assert lagging["pending"] == 3
                assert lagging["oldest_age_s"] is not None
                assert lagging["oldest_age_s"] >= 0
                assert lagging["status"] == "lagging"
                assert health["status"] == "degraded"
                assert any(
                    p.startswith("bus consumer parking of parking.events")
                    for p in health["problems"]
                )
                released.set()

                async def parking_done() -> bool:
                    consumers = (await report())["bus"][PARKING_TOPIC]["consumers"]
                    return consumers["parking"]["pending"] == 0

                await eventually(parking_done)
                done = (await report())["bus"][PARKING_TOPIC]["consumers"]["parking"]
                assert done == {"pending": 0, "oldest_age_s": None, "status": "ok"}
