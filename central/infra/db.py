"""Databases: one per service, SQLAlchemy 2 async, Alembic migrations per service.

* :func:`create_engine` makes an engine for a URL: SQLite files by default (WAL journal,
  a busy timeout, foreign keys on), PostgreSQL through asyncpg at scale.
* :func:`migrate` upgrades one service's schema to head. Each service package has its own
  ``central/<service>/migrations`` (``env.py`` + ``versions/``) and its own version table
  ``alembic_version_<service>``, so several services can share one PostgreSQL database
  without touching each other's tables. A service's ``env.py`` is just::

      from central.infra.db import run_migrations
      from central.<service>.tables import metadata
      run_migrations(metadata)

* :class:`UTCDateTime` stores aware datetimes and always reads them back aware (UTC),
  SQLite included.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from alembic import command
from alembic.config import Config
from sqlalchemy import DateTime, MetaData, event, text
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.types import TypeDecorator

from central.infra.databases import MissingDatabase, is_missing_database
from central.infra.saturating import utc

CENTRAL_DIR = Path(__file__).resolve().parent.parent  # central/, where each service lives


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # saturating: a reported time whose offset reaches past year 1 or 9999 is stored
        # as the nearest instant a datetime holds
        value = utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


POOL_OPTIONS: Final = ("pool_size", "max_overflow", "pool_pre_ping")


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine; for a SQLite file, creates its directory and sets WAL + busy timeout
    (the pool options are PostgreSQL's: a SQLite file keeps SQLAlchemy's defaults)."""
    if url.startswith("sqlite"):
        for option in POOL_OPTIONS:
            kwargs.pop(option, None)
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def migrations_dir(service: str) -> Path:
    return CENTRAL_DIR / service / "migrations"


def alembic_config(service: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir(service)))
    cfg.attributes["version_table"] = f"alembic_version_{service}"
    cfg.attributes["service"] = service
    return cfg


def _upgrade(connection: Connection, service: str, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        # two replicas of one service starting together must not migrate concurrently
        lock_id = zlib.crc32(f"evpark.migrate.{service}".encode())
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})
    cfg = alembic_config(service)
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


async def migrate(engine: AsyncEngine, service: str, revision: str = "head") -> None:
    """Upgrade ``service``'s tables in ``engine`` to ``revision`` (idempotent); a PostgreSQL
    database that does not exist is a :class:`MissingDatabase` saying how to create it."""
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, service, revision)
    except DBAPIError as err:
        if is_missing_database(err):
            raise MissingDatabase(service, engine.url) from None
        raise


def run_migrations(metadata: MetaData) -> None:
    """The body of every service's ``migrations/env.py`` (online mode only)."""
    from alembic import context

    cfg = context.config
    connection: Connection | None = cfg.attributes.get("connection")
    if connection is None:
        raise RuntimeError("central migrations run through central.infra.db.migrate()")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=cfg.attributes["version_table"],
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def insert_ignore(dialect_name: str, table: Any, index_elements: list[str] | None = None) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` for SQLite and PostgreSQL."""
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(index_elements=index_elements)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing(index_elements=index_elements)
