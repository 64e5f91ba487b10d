"""Databases that do not exist yet at scale: start-up and ``evpark central migrate`` name
the missing one and the command that creates it; ``--create-databases`` creates them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from central.app import SERVICE_NAMES
from central.infra.databases import MissingDatabase, create_database
from central.infra.db import create_engine, migrate
from tests.harness.processes import run_evpark_async
from tests.harness.shared_services import PG_HOST, PG_PORT, PG_USER, pg_url
from tests.services import require_tcp

pytestmark = pytest.mark.services


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A database name prefix of this test's own; its databases are dropped afterwards."""
    require_tcp("PostgreSQL", PG_HOST, PG_PORT)
    name = f"evpark_test_{uuid.uuid4().hex[:10]}"
    yield name
    admin = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        for row in await admin.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE $1", f"{name}%"
        ):
            await admin.execute(f'DROP DATABASE "{row["datname"]}" WITH (FORCE)')
    finally:
        await admin.close()


async def test_a_missing_database_is_named_then_created(prefix: str) -> None:
    url = pg_url(f"{prefix}_parking")
    engine = create_engine(url)
    try:
        with pytest.raises(MissingDatabase) as missing:
            await migrate(engine, "parking")
        assert f"the parking database '{prefix}_parking' does not exist" in str(missing.value)
        assert "evpark central migrate --create-databases" in str(missing.value)
        assert await create_database(url)
        assert not await create_database(url)  # there now: left alone
        await migrate(engine, "parking")
    finally:
        await engine.dispose()


@pytest.mark.slow
async def test_migrate_creates_the_databases_when_asked(prefix: str) -> None:
    # one database shared by every service (no {service}): each made database costs a
    # checkpoint to drop, and the rule is the same for six
    env = {"EVPARK_CENTRAL_DATABASE_URL": pg_url(f"{prefix}_central")}
    refused = await run_evpark_async("central", "migrate", env=env)
    assert refused.code == 1
    assert f"the gateway database '{prefix}_central' does not exist" in refused.stderr
    assert "Traceback" not in refused.stderr

    made = await run_evpark_async("central", "migrate", "--create-databases", env=env)
    assert made.code == 0, made.stderr
    assert made.stdout.count("created database") == 1  # by the first, found by the others
    assert f"gateway: created database {prefix}_central" in made.stdout
    for name in ("gateway", *SERVICE_NAMES):
        assert f"{name}: up to date" in made.stdout
    again = await run_evpark_async("central", "migrate", env=env)
    assert again.code == 0, again.stderr
    assert "created" not in again.stdout
