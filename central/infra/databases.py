"""PostgreSQL databases that are not there yet: named in a clear error, or made on request.

At scale each service has its own database (``evpark_{service}``); PostgreSQL does not
create one on first connection. Rather than asyncpg's traceback, a missing database is a
:class:`MissingDatabase` naming it and the command that creates it
(``evpark central migrate --create-databases``, :func:`create_database`).
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

NO_SUCH_DATABASE: Final = "3D000"  # PostgreSQL's invalid_catalog_name
DATABASE_EXISTS: Final = "42P04"  # duplicate_database
MAINTENANCE_DB: Final = "postgres"  # where CREATE DATABASE is run from


class MissingDatabase(Exception):
    def __init__(self, service: str, url: URL) -> None:
        where = f"{url.host or 'localhost'}:{url.port or 5432}"
        super().__init__(
            f"the {service} database {url.database!r} does not exist on {where}: create it "
            f"with `evpark central migrate --create-databases` (or `createdb -h {url.host or 'localhost'} "
            f"-U {url.username or 'postgres'} {url.database}`), then start again"
        )
        self.service = service
        self.database = url.database


def _sqlstate(err: BaseException) -> str | None:
    """The SQLSTATE of ``err`` or of an error it was raised from (asyncpg's, wrapped)."""
    seen: BaseException | None = err
    while seen is not None:
        code = getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None)
        if isinstance(code, str):
            return code
        seen = seen.__cause__ or seen.__context__
    return None


def is_missing_database(err: BaseException) -> bool:
    return _sqlstate(err) == NO_SUCH_DATABASE


async def create_database(url: str) -> bool:
    """Create the PostgreSQL database ``url`` names, if it does not exist; True if it was
    created. The user needs the CREATEDB privilege; other URLs are left alone."""
    target = make_url(url)
    if not target.drivername.startswith("postgresql") or not target.database:
        return False
    admin = create_async_engine(
        target.set(database=MAINTENANCE_DB), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    try:
        async with admin.connect() as conn:
            found = await conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": target.database},
            )
            if found:
                return False
            quoted = conn.dialect.identifier_preparer.quote(target.database)
            try:
                await conn.execute(text(f"CREATE DATABASE {quoted}"))
            except DBAPIError as err:
                if _sqlstate(err) == DATABASE_EXISTS:
                    return False  # another process made it meanwhile
                raise
            return True
    finally:
        await admin.dispose()
