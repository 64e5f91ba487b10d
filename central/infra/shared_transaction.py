"""One transaction for the handlers of a batch of events.

A consumer's handlers each open a transaction for their event. Given a batch, they can
share one instead (a commit, and on PostgreSQL a WAL flush, per batch, not per event):
inside :meth:`SharedTransaction.batch`, :meth:`SharedTransaction.begin` hands out the
batch's connection, in a savepoint. What must wait until the writes are visible (waking a request that
reads them) goes to :meth:`SharedTransaction.after_commit`. If a handler raises, the
whole batch rolls back and the bus hands the events over again one by one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


class SharedTransaction:
    def __init__(self, engine: AsyncEngine, name: str) -> None:
        self._engine = engine
        self._conn: ContextVar[AsyncConnection | None] = ContextVar(f"{name}_tx", default=None)
        self._after: ContextVar[list[Callable[[], None]] | None] = ContextVar(
            f"{name}_after_commit", default=None
        )

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """Inside :meth:`batch` a savepoint of the batch's transaction (a handler that
        fails after some writes, its event then dropped as invalid, leaves none of
        them), else a transaction of its own."""
        conn = self._conn.get()
        if conn is not None:
            async with conn.begin_nested():
                yield conn
            return
        async with self._engine.begin() as own:
            yield own

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        """Run the handlers of a batch in one transaction, committed at the end."""
        after: list[Callable[[], None]] = []
        async with self._engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                # the write lock now: two batches that both read first and then write would
                # otherwise each wait for the other's (SQLite answers "database is locked")
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            conn_token = self._conn.set(conn)
            after_token = self._after.set(after)
            try:
                yield
            finally:
                self._conn.reset(conn_token)
                self._after.reset(after_token)
        for callback in after:
            callback()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the writes made so far are committed."""
        after = self._after.get()
        if after is None:
            callback()
        else:
            after.append(callback)
