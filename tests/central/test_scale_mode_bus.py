"""The bus and cache adapters against real NATS JetStream and Redis (and the in-process
ones, by the same tests): delivery to each durable name, shared work within one name,
redelivery after a handler failure, cache expiry and prefix deletion."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from central.infra.bus_url import ManagedBus, make_bus
from central.infra.cache import make_cache
from contract.envelope import CloudEvent
from tests.central.conftest import eventually


def event(n: int) -> CloudEvent:
    return CloudEvent(
        id=str(uuid.uuid4()),
        source="/sites/bus-test",
        type="parking.occupied",
        time=datetime.now(UTC),
        sequence=n,
        data={"slot_id": f"S{n}"},
    )


@pytest.fixture(params=["memory", "nats"])
def bus_factory(request: pytest.FixtureRequest) -> Callable[[], ManagedBus]:
    if request.param == "memory":
        return lambda: make_bus("memory://")
    url = request.getfixturevalue("nats_url")
    namespace = request.getfixturevalue("nats_namespace")
    return lambda: make_bus(url, namespace)


@asynccontextmanager
async def running(bus: ManagedBus) -> AsyncIterator[ManagedBus]:
    async with bus:
        yield bus


async def test_each_durable_name_gets_every_event_in_order(
    bus_factory: Callable[[], ManagedBus],
) -> None:
    a: list[int] = []
    b: list[int] = []

    async def to_a(e: CloudEvent) -> None:
        a.append(e.sequence)

    async def to_b(e: CloudEvent) -> None:
        b.append(e.sequence)

    async with running(bus_factory()) as bus:
        await bus.subscribe("parking.events", "svc-a", to_a)
        await bus.subscribe("parking.events", "svc-b", to_b)
        for n in range(1, 11):
            await bus.publish("parking.events", event(n))

        async def done() -> bool:
            return len(a) == 10 and len(b) == 10

        await eventually(done)
    assert a == list(range(1, 11))
    assert b == list(range(1, 11))


async def test_a_failing_handler_gets_the_event_again(
    bus_factory: Callable[[], ManagedBus],
) -> None:
    attempts: dict[int, int] = {}
    handled: list[int] = []

    async def flaky(e: CloudEvent) -> None:
        attempts[e.sequence] = attempts.get(e.sequence, 0) + 1
        if attempts[e.sequence] < 3:
            raise RuntimeError("database briefly away")
        handled.append(e.sequence)

    async with running(bus_factory()) as bus:
        await bus.subscribe("charging.events", "flaky", flaky)
        await bus.publish("charging.events", event(1))

        async def done() -> bool:
            return handled == [1]

        await eventually(done, within=20)
    assert attempts[1] == 3


async def test_replicas_with_one_durable_name_share_the_work(
    nats_url: str, nats_namespace: str
) -> None:
    seen: list[tuple[str, int]] = []

    def handler(name: str) -> Any:
        async def handle(e: CloudEvent) -> None:
            seen.append((name, e.sequence))

        return handle

    async with (
        running(make_bus(nats_url, nats_namespace)) as one,
        running(make_bus(nats_url, nats_namespace)) as two,
    ):
        await one.subscribe("parking.events", "shared", handler("one"))
        await two.subscribe("parking.events", "shared", handler("two"))
        for n in range(1, 41):
            await one.publish("parking.events", event(n))

        async def done() -> bool:
            return len(seen) >= 40

        await eventually(done, within=20)
        await asyncio.sleep(0.3)
    assert sorted(n for _, n in seen) == list(range(1, 41))  # each once


async def test_a_republished_event_id_is_stored_once(nats_url: str, nats_namespace: str) -> None:
    got: list[str] = []

    async def handle(e: CloudEvent) -> None:
        got.append(e.id)

    e = event(1)
    async with running(make_bus(nats_url, nats_namespace)) as bus:
        await bus.publish("parking.events", e)
        await bus.publish("parking.events", e)
        await bus.publish("parking.events", event(2))
        await bus.subscribe("parking.events", "dedup", handle)

        async def done() -> bool:
            return len(got) >= 2

        await eventually(done)
        await asyncio.sleep(0.3)
    assert got.count(e.id) == 1


@pytest.fixture(params=["memory", "redis"])
def cache_args(request: pytest.FixtureRequest) -> tuple[str, str]:
    if request.param == "memory":
        return "memory://", ""
    return request.getfixturevalue("redis_url"), request.getfixturevalue("redis_namespace")


async def test_cache_contract(cache_args: tuple[str, str]) -> None:
    cache = make_cache(*cache_args)
    try:
        assert await cache.get("missing") is None
        await cache.set("parking:status:a", {"free": 3, "types": ["ev"]})
        await cache.set("parking:status:b", [1, 2])
        await cache.set("charging:rates:a", "x")
        await cache.set("short", 1, ttl=0.05)
        assert await cache.get("parking:status:a") == {"free": 3, "types": ["ev"]}
        await asyncio.sleep(0.1)
        assert await cache.get("short") is None
        await cache.delete_prefix("parking:status:")
        assert await cache.get("parking:status:a") is None
        assert await cache.get("parking:status:b") is None
        assert await cache.get("charging:rates:a") == "x"
        await cache.delete("charging:rates:a")
        assert await cache.get("charging:rates:a") is None
    finally:
        await cache.aclose()
