"""Shared fixtures for central's tests (parking, charging, sync, gateway, notification,
analytics).

* ``clock``: a :class:`FakeClock` (aware UTC) the all-in-one app runs on.
* ``central``: central all-in-one on SQLite files in ``tmp_path`` (gateway and every
  service present), lifespan running, with an httpx client on the ASGI app and
  ``make_key(scope, site)``. ``central_factory(**settings)`` builds one with other
  settings (rate limits, services).
* ``pg_url``: a fresh PostgreSQL database (asyncpg DSN), dropped afterwards.
* ``nats_url`` / ``redis_url``: the local NATS JetStream and Redis, with a unique
  ``bus_namespace`` / ``cache_namespace`` per test (``nats_namespace``,
  ``redis_namespace``); streams of the namespace are deleted afterwards.

Missing services skip on a laptop and fail under ``CI=true`` (:mod:`tests.services`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from central.app import create_app
from central.context import utc_now
from central.gateway.keys import KeyStore
from central.infra.db import create_engine
from central.settings import CentralSettings
from tests.harness.shared_services import (
    NATS_URL,
    REDIS_URL,
    delete_cache_keys,
    delete_streams,
    pg_databases,
    require_nats,
    require_redis,
)
from tests.harness.shared_services import pg_url as shared_pg_url


class FakeClock:
    """A settable clock returning aware UTC datetimes."""

    def __init__(self, now: datetime) -> None:
        assert now.tzinfo is not None
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float = 15.0, every: float = 0.05
) -> None:
    """Wait until ``check()`` is true; fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            pytest.fail(f"condition not met within {within} s")
        await asyncio.sleep(every)


@dataclass
class Central:
    app: FastAPI
    client: httpx.AsyncClient
    settings: CentralSettings
    keys: KeyStore
    clock: Callable[[], datetime]

    async def make_key(
        self,
        scope: str,
        site: str | None = None,
        *,
        user: str | None = None,
        vehicles: tuple[str, ...] = (),
    ) -> str:
        """A key; a driver key without ``user`` gets a fresh user of its own."""
        if scope == "driver" and user is None:
            user = f"user-{uuid.uuid4().hex[:8]}"
        return await self.keys.create(scope, site, user_id=user, vehicle_ids=vehicles)

    async def auth(
        self,
        scope: str,
        site: str | None = None,
        *,
        user: str | None = None,
        vehicles: tuple[str, ...] = (),
    ) -> dict[str, str]:
        key = await self.make_key(scope, site, user=user, vehicles=vehicles)
        return {"Authorization": f"Bearer {key}"}

    def service(self, name: str) -> Any:
        return self.app.state.services[name]

    async def settle(self) -> None:
        """Wait until the in-process bus has delivered everything published so far."""
        bus = self.app.state.bus
        if hasattr(bus, "idle"):
            await bus.idle()


@asynccontextmanager
async def run_central(
    settings: CentralSettings,
    clock: Callable[[], datetime] = utc_now,
    services: list[str] | None = None,
) -> AsyncIterator[Central]:
    app = create_app(settings, services=services, clock=clock)
    async with app.router.lifespan_context(app):
        engine = create_engine(settings.database_url_for("gateway"))
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://central"
            ) as client:
                yield Central(app, client, settings, KeyStore(engine, clock), clock)
        finally:
            await engine.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def central_settings(tmp_path: Path) -> CentralSettings:
    return CentralSettings(
        data_dir=tmp_path / "central",
        expiry_interval_s=3600,
        republish_interval_s=3600,
        rate_limit={
            "burst": 1000,
            "driver_per_minute": 60000,
            "operator_per_minute": 60000,
            "site_per_minute": 60000,
        },
    )


@pytest.fixture
async def central(central_settings: CentralSettings, clock: FakeClock) -> AsyncIterator[Central]:
    async with run_central(central_settings, clock) as running:
        yield running


@pytest.fixture
def central_factory(tmp_path: Path, clock: FakeClock) -> Callable[..., Any]:
    """``async with central_factory(rate_limit={...}) as c:`` a central with other settings."""

    def factory(**overrides: Any) -> Any:
        values: dict[str, Any] = {
            "data_dir": tmp_path / f"central-{uuid.uuid4().hex[:6]}",
            "expiry_interval_s": 3600,
            "republish_interval_s": 3600,
        }
        values.update(overrides)
        services = values.pop("services", None)
        return run_central(CentralSettings(**values), clock, services)

    return factory


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for this test, as an SQLAlchemy asyncpg URL."""
    name = f"evpark_test_{uuid.uuid4().hex[:12]}"
    async with pg_databases([name]):
        yield shared_pg_url(name)


@pytest.fixture
def nats_namespace() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def nats_url(nats_namespace: str) -> AsyncIterator[str]:
    """The local NATS JetStream; the test's streams (``EVPARK_<NAMESPACE>_*``) are
    deleted afterwards."""
    require_nats()
    yield NATS_URL
    await delete_streams(nats_namespace)


@pytest.fixture
def redis_namespace() -> str:
    return f"evpark-test-{uuid.uuid4().hex[:10]}:"


@pytest.fixture
async def redis_url(redis_namespace: str) -> AsyncIterator[str]:
    """The local Redis; the test's keys (``redis_namespace``) are deleted afterwards."""
    require_redis()
    yield REDIS_URL
    await delete_cache_keys(redis_namespace)


def cloud_event(
    site: str,
    sequence: int,
    type_: str,
    data: dict[str, Any],
    time: datetime | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A CloudEvent as an edge sends it (JSON-ready)."""
    return {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4()),
        "source": f"/sites/{site}",
        "type": type_,
        "time": (time or datetime.now(UTC)).isoformat(),
        "sequence": sequence,
        "data": data,
    }
