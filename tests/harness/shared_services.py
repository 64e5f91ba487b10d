"""This machine's PostgreSQL, NATS JetStream and Redis, shared by every test run: where
they are, and how a test takes its own part of each and gives it back (databases of its
own, NATS streams and Redis keys under a namespace of its own).

Missing services skip on a laptop and fail under ``CI=true`` (:mod:`tests.services`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import asyncpg

from tests.services import require_tcp

PG_HOST = os.environ.get("EVPARK_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("EVPARK_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("EVPARK_TEST_PG_USER", "postgres")
NATS_HOST, NATS_PORT = "127.0.0.1", int(os.environ.get("EVPARK_TEST_NATS_PORT", "4222"))
REDIS_HOST, REDIS_PORT = "127.0.0.1", int(os.environ.get("EVPARK_TEST_REDIS_PORT", "6379"))
NATS_URL = f"nats://{NATS_HOST}:{NATS_PORT}"
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


def pg_url(database: str) -> str:
    """The SQLAlchemy asyncpg URL of ``database`` on the local PostgreSQL."""
    return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


@asynccontextmanager
async def pg_databases(names: Sequence[str]) -> AsyncIterator[None]:
    """Create the databases ``names`` (fresh ones: the names should be unique to the
    test), and drop them on exit even while something is still connected."""
    require_tcp("PostgreSQL", PG_HOST, PG_PORT)
    admin = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        for name in names:
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield
    finally:
        admin = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
        try:
            for name in names:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def require_nats() -> None:
    require_tcp("NATS", NATS_HOST, NATS_PORT)


def require_redis() -> None:
    require_tcp("Redis", REDIS_HOST, REDIS_PORT)


async def delete_streams(namespace: str, url: str = NATS_URL) -> None:
    """Delete the JetStream streams of a ``bus_namespace`` (``EVPARK_<NAMESPACE>_*``)."""
    import nats

    nc = await nats.connect(url, connect_timeout=3)
    try:
        js = nc.jetstream()
        prefix = f"EVPARK_{namespace.upper()}_"
        for stream in await js.streams_info():
            if stream.config.name.startswith(prefix):
                await js.delete_stream(stream.config.name)
    finally:
        await nc.close()


async def delete_cache_keys(namespace: str, url: str = REDIS_URL) -> None:
    """Delete the Redis keys of a ``cache_namespace``."""
    import redis.asyncio as redis_asyncio

    client = redis_asyncio.Redis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{namespace}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
