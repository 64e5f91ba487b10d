"""The edge's SQLite store: one writer thread with group commit, migrations, reads.

Writes arrive as :class:`Unit` s (the statements of one state change, committed together or
not at all). The writer thread takes every unit waiting, commits them in one transaction
and resolves their futures with one hop back to the event loop, so a burst of messages
costs one commit, not one each, and the event loop never blocks on SQLite. If a batch
fails, its units are retried one by one so that one bad unit fails alone.

Durability: WAL. Every commit survives a killed process. A commit that carries a durable
unit (the default: state changes and their events for central) is also synced to disk
(``synchronous=FULL``), so it survives power loss; a batch of only meter samples
(``Unit(durable=False)``) skips that sync and becomes power-safe with the next durable
commit or checkpoint: on power loss the last moments of samples may go, never a
session, a visit or an event for central.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TypeVar

import orjson
import structlog

from edge.migrations import MIGRATIONS

log = structlog.get_logger(__name__)
T = TypeVar("T")
_STOP: Final = object()
MAX_BATCH: Final = 2000


class StoreError(Exception):
    """A write could not be committed."""


@dataclass(slots=True)
class Unit:
    """Statements committed atomically."""

    ops: list[tuple[str, Sequence[Any]]] = field(default_factory=list)
    durable: bool = True  # synced to disk before it counts as committed

    def add(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.ops.append((sql, params))

    def insert(self, table: str, columns: tuple[str, ...], values: Sequence[Any]) -> None:
        """A plain row insert; runs of them are written in bulk (see ``_write_run``)."""
        self.ops.append((_insert_sql(table, columns), values))


@cache
def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    marks = ",".join("?" * len(columns))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"


@cache
def _bulk_sql(row_sql: str) -> str | None:
    """The one-statement form of a row insert: all rows as one JSON parameter."""
    if not row_sql.startswith("INSERT INTO ") or " VALUES (" not in row_sql:
        return None
    head = row_sql.split(" VALUES (", 1)[0]
    count = row_sql.count("?")
    picks = ", ".join(f"value->>{i}" for i in range(count))
    return f"{head} SELECT {picks} FROM json_each(?)"


BULK_FROM = 8  # rows; below this executemany is as cheap


@dataclass(slots=True)
class _Pending:
    unit: Unit
    future: asyncio.Future[None]


def connect(path: Path, synchronous: str = "FULL") -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.row_factory = sqlite3.Row
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema to the newest version; returns the version."""
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if current > len(MIGRATIONS):
        raise StoreError(
            f"database schema version {current} is newer than this evpark "
            f"({len(MIGRATIONS)}): refusing to run an older daemon on it"
        )
    for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={version}")
            conn.execute("COMMIT")
        except sqlite3.Error:
            conn.execute("ROLLBACK")
            raise
        log.info("store.migrated", version=version)
    return len(MIGRATIONS)


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";\n") if s.strip()]


class SqliteStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._read_lock = threading.Lock()
        self._gathering: list[_Pending] = []
        self.commits = 0

    async def __aenter__(self) -> SqliteStore:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._loop = asyncio.get_running_loop()
        self._writer = await asyncio.to_thread(self._open_writer)
        self._reader = await asyncio.to_thread(connect, self.path)
        self._thread = threading.Thread(target=self._run, name="sqlite-writer", daemon=True)
        self._thread.start()
        return self

    def _open_writer(self) -> sqlite3.Connection:
        conn = connect(self.path)
        migrate(conn)
        return conn

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Everything submitted before this point is committed before the store closes.
        if self._gathering:
            self._hand_over()
        self._queue.put(_STOP)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        for conn in (self._writer, self._reader):
            if conn is not None:
                await asyncio.to_thread(conn.close)

    def submit(self, unit: Unit) -> asyncio.Future[None]:
        """Queue ``unit``; the future resolves once it is committed (or fails).

        Units submitted during one turn of the event loop go to the writer together (one
        hand-over per turn, scheduled with ``call_soon``), so they share a commit instead
        of the writer waking for each.
        """
        assert self._loop is not None, "store is not open"
        future: asyncio.Future[None] = self._loop.create_future()
        if not self._gathering:
            self._loop.call_soon(self._hand_over)
        self._gathering.append(_Pending(unit, future))
        return future

    def _hand_over(self) -> None:
        gathered, self._gathering = self._gathering, []
        self._queue.put(gathered)

    async def write(self, unit: Unit) -> None:
        await self.submit(unit)

    async def read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``query`` on the read connection in a worker thread."""

        def run() -> T:
            assert self._reader is not None, "store is not open"
            with self._read_lock:
                return query(self._reader)

        return await asyncio.to_thread(run)

    def read_now(self, query: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``query`` synchronously (start-up only, before serving)."""
        assert self._reader is not None, "store is not open"
        with self._read_lock:
            return query(self._reader)

    # --- writer thread -------------------------------------------------------------

    def _run(self) -> None:
        assert self._writer is not None
        conn = self._writer
        stopping = False
        while not stopping:
            first = self._queue.get()
            batch: list[_Pending] = []
            if first is _STOP:
                stopping = True
            else:
                assert isinstance(first, list)
                batch.extend(first)
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                assert isinstance(item, list)
                batch.extend(item)
            if batch:
                outcome = self._commit(conn, batch)
                assert self._loop is not None
                with contextlib.suppress(RuntimeError):  # loop already closed at exit
                    self._loop.call_soon_threadsafe(_resolve, batch, outcome)

    def _commit(self, conn: sqlite3.Connection, batch: list[_Pending]) -> list[str | None]:
        try:
            self._execute(conn, [p.unit for p in batch])
            self.commits += 1
            return [None] * len(batch)
        except sqlite3.Error:
            pass
        # Some unit is bad: commit one at a time so that only it fails.
        outcome: list[str | None] = []
        for pending in batch:
            try:
                self._execute(conn, [pending.unit])
                outcome.append(None)
            except sqlite3.Error as err:
                outcome.append(f"{type(err).__name__}: {err}")
        self.commits += 1
        return outcome

    @staticmethod
    def _execute(conn: sqlite3.Connection, units: list[Unit]) -> None:
        durable = any(unit.durable for unit in units)
        conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Runs of the same statement (a burst of meter values) are written together;
            # order is kept, and the per-statement overhead is paid once per run.
            run_sql: str | None = None
            run: list[Sequence[Any]] = []
            for unit in units:
                for sql, params in unit.ops:
                    if sql != run_sql:
                        if run_sql is not None:
                            _write_run(conn, run_sql, run)
                        run_sql, run = sql, []
                    run.append(params)
            if run_sql is not None:
                _write_run(conn, run_sql, run)
            conn.execute("COMMIT")
        except sqlite3.Error:
            conn.execute("ROLLBACK")
            raise


def _write_run(conn: sqlite3.Connection, sql: str, rows: list[Sequence[Any]]) -> None:
    """Many rows of one insert go as a single statement with the rows as one JSON array.

    ``executemany`` steps SQLite once per row and gives up and takes back the GIL each
    time; with the event loop busy on the other side that hand-off, not SQLite, is the
    cost. One statement is one hand-off.
    """
    bulk = _bulk_sql(sql) if len(rows) >= BULK_FROM else None
    if bulk is None:
        conn.executemany(sql, rows)
    else:
        conn.execute(bulk, (orjson.dumps(rows).decode(),))


def _resolve(batch: list[_Pending], outcome: list[str | None]) -> None:
    for pending, error in zip(batch, outcome, strict=True):
        if pending.future.done():
            continue
        if error is None:
            pending.future.set_result(None)
        else:
            log.error("store.write_failed", error=error)
            pending.future.set_exception(StoreError(error))
