"""``/metrics`` of a central process: Prometheus text, public (or behind
``metrics_token``), a registry per app; requests by route template and status, the bus,
the sync ingest, queue depths and the connection pools."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from central.app import create_app
from central.infra.bus_url import ManagedBus, make_bus
from central.settings import CentralSettings
from contract.envelope import CloudEvent
from tests.central.conftest import Central, cloud_event, eventually

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


async def scrape(central: Central, **headers: str) -> Samples:
    r = await central.client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return samples(r.text)


async def test_requests_are_counted_by_route_template_and_status(central: Central) -> None:
    driver = await central.auth("driver")
    for slot in ("S1", "S2", "S3"):
        await central.client.get(f"/parking/slots/{slot}", headers=driver)
    await central.client.get("/parking/slots/S1")  # no key: the gateway answers 401
    await central.client.get("/no/such/path", headers=driver)
    found = await scrape(central)
    template = "/parking/slots/{slot_id}"
    requests = "evpark_central_http_requests_total"
    assert value(found, requests, route=template, method="GET", status="404") == 3
    # refused before any route: counted under its service's prefix
    assert value(found, requests, route="/parking/*", method="GET", status="401") == 1
    assert value(found, requests, route="unmatched", method="GET", status="404") == 1
    # no label per slot id
    assert not [k for k in found if any(v == "/parking/slots/S1" for _, v in k[1])]
    histogram = "evpark_central_http_request_duration_seconds_count"
    assert value(found, histogram, route=template, method="GET") == 3


async def test_ingest_bus_and_queues_are_counted(central: Central) -> None:
    site = await central.auth("site", "metrics-site")
    events = [
        cloud_event("metrics-site", n, "parking.occupied", {"slot_id": f"A{n}"})
        for n in range(1, 6)
    ]
    r = await central.client.post("/sync/v1/events", json={"events": events}, headers=site)
    assert r.json()["stored"] == 5
    again = await central.client.post("/sync/v1/events", json={"events": events[:2]}, headers=site)
    assert again.json()["duplicates"] == 2
    await central.settle()
    found = await scrape(central)
    assert value(found, "evpark_central_ingest_events_total") == 5
    assert value(found, "evpark_central_ingest_duplicates_total") == 2
    assert value(found, "evpark_central_bus_published_total", topic="parking.events") == 5
    handled = {
        labels: v
        for (name, labels), v in found.items()
        if name == "evpark_central_bus_consumed_total" and ("outcome", "handled") in labels
    }
    assert handled, "no consumer handled the events"
    assert all(v == 5 for v in handled.values())
    assert all(
        v == 0 for (name, _), v in found.items() if name == "evpark_central_bus_consumer_pending"
    )
    assert value(found, "evpark_central_notification_queue", state="pending") == 0
    assert value(found, "evpark_central_notification_queue", state="dead") == 0
    for owner in ("gateway", "parking", "charging", "sync", "notification", "analytics"):
        size = value(found, "evpark_central_db_pool_size", database=owner)
        assert size is not None
        assert size >= 1
        assert value(found, "evpark_central_db_pool_checked_out", database=owner) is not None


async def test_each_app_has_its_own_registry(
    central: Central, central_factory: Callable[..., Any]
) -> None:
    driver = await central.auth("driver")
    await central.client.get("/parking/slots/S1", headers=driver)
    async with central_factory() as other:
        found = await scrape(other)
    assert value(
        found, "evpark_central_http_requests_total",
        route="/parking/slots/{slot_id}", method="GET", status="404",
    ) is None  # fmt: skip


async def test_metrics_token_guards_metrics_only(central_factory: Callable[..., Any]) -> None:
    async with central_factory(metrics_token="scrape-me") as central:
        assert (await central.client.get("/metrics")).status_code == 401
        wrong = await central.client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert await scrape(central, Authorization="Bearer scrape-me")
        assert (await central.client.get("/healthz")).status_code == 200


async def test_a_service_alone_serves_its_own_metrics(tmp_path: Path) -> None:
    app = create_app(CentralSettings(data_dir=tmp_path), services=["parking"], gateway=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://p") as client,
    ):
        await client.get("/parking/slots/S1")  # no identity headers: refused by the service
        r = await client.get("/metrics")
    assert r.status_code == 200
    found = samples(r.text)
    assert value(found, "evpark_central_db_pool_size", database="parking") is not None
    assert value(found, "evpark_central_db_pool_size", database="gateway") is None
    assert any(
        name == "evpark_central_http_requests_total"
        and ("route", "/parking/slots/{slot_id}") in labels
        for name, labels in found
    )


def _event(n: int) -> CloudEvent:
    return CloudEvent(
        id=str(uuid.uuid4()), source="/sites/lag", type="parking.occupied",
        time=datetime.now(UTC), sequence=n, data={"slot_id": f"S{n}"},
    )  # fmt: skip


@pytest.fixture(params=["memory", "nats"])
def bus(request: pytest.FixtureRequest) -> ManagedBus:
    if request.param == "memory":
        return make_bus("memory://")
    url = request.getfixturevalue("nats_url")
    return make_bus(url, request.getfixturevalue("nats_namespace"))


async def test_consumer_lag_counts_events_not_yet_handled(bus: ManagedBus) -> None:
    release = asyncio.Event()

    async def slow(_event: CloudEvent) -> None:
        await release.wait()

    async with bus:
        await bus.subscribe("parking.events", "slow", slow)
        for n in range(1, 4):
            await bus.publish("parking.events", _event(n))

        async def lagging() -> bool:
            return (await bus.pending()).get(("parking.events", "slow")) == 3

        await eventually(lagging)
        release.set()

        async def caught_up() -> bool:
            return (await bus.pending()).get(("parking.events", "slow")) == 0

        await eventually(caught_up)
