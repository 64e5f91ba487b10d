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

The writer never dies of a unit: whatever a unit raises (an ``sqlite3.Error``, an
``OverflowError`` for an integer SQLite cannot store, anything else) fails that unit
alone, with a log line and a count. If the thread ends anyway (a bug, a connection left
in a broken state), every waiting write fails at once, :meth:`SqliteStore.watch` raises
so that the daemon exits non-zero (systemd restarts it), and :meth:`SqliteStore.health`
says so. Closing the store waits a bounded time for the writer; what it has not
committed by then fails instead of holding the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import re
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TypeVar

import orjson
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from edge.storage.migrations import MIGRATIONS

log = structlog.get_logger(__name__)
T = TypeVar("T")
_STOP: Final = object()
MAX_BATCH: Final = 2000
SQLITE_INT_MIN: Final = -(2**63)
SQLITE_INT_MAX: Final = 2**63 - 1
# An integer SQLite cannot store has at least 19 digits; only JSON with such a run is
# checked value by value (see _write_run).
_LONG_DIGITS: Final = re.compile(rb"\d{19}")


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


@dataclass(slots=True)
class _Handed:
    """The units of one event-loop turn, handed to the writer together."""

    at: float  # monotonic time of the hand-over
    pending: list[_Pending]


class _BatchFailed(Exception):
    """The transaction could not begin: no unit is to blame, none is retried alone."""


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
    """The database: ``submit`` writes through the writer thread, ``read`` in worker threads.

    ``stall_after``: seconds a unit may wait for its commit before :meth:`health` calls
    the writer stalled. ``stop_timeout``: seconds closing waits for the writer.
    """

    def __init__(
        self,
        path: Path,
        *,
        registry: CollectorRegistry | None = None,
        stall_after: float = 30.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.path = path
        self.stall_after = stall_after
        self.stop_timeout = stop_timeout
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._read_lock = threading.Lock()
        self._gathering: list[_Pending] = []
        self._inflight: deque[_Handed] = deque()  # handed to the writer, not yet resolved
        self._dead: BaseException | None = None
        self._context = contextvars.Context()
        self._abandoned: str | None = None  # why writes are refused while stopping
        self._died = asyncio.Event()
        self.commits = 0
        self.failed_units = 0
        self._failed_metric: Counter | None = None
        if registry is not None:
            self._failed_metric = Counter(
                "evpark_store_failed_units",
                "Writes (units) that failed alone; the charger got a CALLERROR",
                registry=registry,
            )
            Gauge(
                "evpark_store_writer_up", "1 while the SQLite writer thread runs",
                registry=registry,
            ).set_function(lambda: float(self.writer_alive))  # fmt: skip
            Gauge(
                "evpark_store_oldest_queued_seconds",
                "Age of the oldest write waiting for its commit (0 when none waits)",
                registry=registry,
            ).set_function(self.oldest_queued_age)

    async def __aenter__(self) -> SqliteStore:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._loop = asyncio.get_running_loop()
        # the writer's reports run in the opener's context: its log lines name the site
        self._context = contextvars.copy_context()
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
        # Everything submitted before this point is committed before the store closes,
        # unless the writer cannot finish within stop_timeout: then it fails instead.
        if self._gathering:
            self._hand_over()
        self._queue.put(_STOP)
        # once abandoned (the daemon's own stop timed out) the writer gets no second wait
        wait = min(self.stop_timeout, 0.5) if self._abandoned else self.stop_timeout
        stuck = False
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, wait)
            stuck = self._thread.is_alive()
        if stuck:
            failed = self.abandon("the store closed before this write was committed")
            log.error("store.writer.abandoned", uncommitted=failed, waited_s=wait)
        # A writer still inside SQLite keeps its connection: closing it under it would crash.
        for conn in (None if stuck else self._writer, self._reader):
            if conn is not None:
                await asyncio.to_thread(conn.close)
        if stuck:
            raise StoreError("the SQLite writer did not finish: writes were left uncommitted")

    def submit(self, unit: Unit) -> asyncio.Future[None]:
        """Queue ``unit``; the future resolves once it is committed (or fails).

        Units submitted during one turn of the event loop go to the writer together (one
        hand-over per turn, scheduled with ``call_soon``), so they share a commit instead
        of the writer waking for each.
        """
        assert self._loop is not None, "store is not open"
        future: asyncio.Future[None] = self._loop.create_future()
        if self._dead is not None:
            future.set_exception(StoreError(f"the SQLite writer is not running: {self._dead!r}"))
            return future
        if self._abandoned is not None:
            future.set_exception(StoreError(self._abandoned))
            return future
        if not self._gathering:
            self._loop.call_soon(self._hand_over)
        self._gathering.append(_Pending(unit, future))
        return future

    def _hand_over(self) -> None:
        gathered, self._gathering = self._gathering, []
        if not gathered:
            return
        assert self._loop is not None
        handed = _Handed(self._loop.time(), gathered)
        self._inflight.append(handed)
        self._queue.put(handed)

    async def write(self, unit: Unit) -> None:
        await self.submit(unit)

    async def read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``query`` on the read connection in a worker thread."""

        def run() -> T:
            assert self._reader is not None, "store is not open"
            with self._read_lock:
                return query(self._reader)

        return await asyncio.to_thread(run)

    # --- supervision (event loop side) ----------------------------------------------

    @property
    def writer_alive(self) -> bool:
        return self._dead is None and self._thread is not None and self._thread.is_alive()

    def oldest_queued_age(self) -> float:
        """Seconds the oldest write handed to the writer has waited (0 when none waits)."""
        if not self._inflight or self._loop is None:
            return 0.0
        return max(0.0, self._loop.time() - self._inflight[0].at)

    def health(self) -> dict[str, Any]:
        """For ``/healthz``: ``ok`` is false when the writer is dead or stalled."""
        alive = self.writer_alive
        age = self.oldest_queued_age()
        state = "dead" if not alive else "stalled" if age > self.stall_after else "running"
        return {
            "ok": state == "running",
            "writer": state,
            "queued": sum(len(h.pending) for h in self._inflight) + len(self._gathering),
            "oldest_queued_s": round(age, 3),
            "failed_units": self.failed_units,
        }

    async def watch(self) -> None:
        """Return never; raise :class:`StoreError` once the writer thread has died."""
        await self._died.wait()
        raise StoreError(f"the SQLite writer died: {self._dead!r}")

    def fail_pending(self, reason: str) -> int:
        """Fail every write not yet resolved (the writer is gone or being left behind)."""
        failed = 0
        for pending in [p for h in self._inflight for p in h.pending] + self._gathering:
            if not pending.future.done():
                pending.future.set_exception(StoreError(reason))
                failed += 1
        self._inflight.clear()
        self._gathering = []
        return failed

    def abandon(self, reason: str) -> int:
        """Stop waiting for a writer that does not finish: fail what waits and every write
        submitted from now on (a bounded stop with a stuck writer)."""
        self._abandoned = reason
        return self.fail_pending(reason)

    def _writer_died(self, err: BaseException) -> None:
        self._dead = err
        failed = self.fail_pending(f"the SQLite writer died: {err!r}")
        log.critical("store.writer.died", error=repr(err), failed_writes=failed)
        self._died.set()

    def _resolved(self, handed: list[_Handed], outcome: list[str | None]) -> None:
        for item in handed:  # the writer takes hand-overs in order: they leave in order
            if self._inflight and self._inflight[0] is item:
                self._inflight.popleft()
        batch = [p for h in handed for p in h.pending]
        for pending, error in zip(batch, outcome, strict=True):
            if error is not None:
                self.failed_units += 1
                if self._failed_metric is not None:
                    self._failed_metric.inc()
                ops = pending.unit.ops
                log.error(
                    "store.write_failed", error=error, statement=ops[0][0][:80] if ops else ""
                )
            if pending.future.done():
                continue
            if error is None:
                pending.future.set_result(None)
            else:
                pending.future.set_exception(StoreError(error))

    # --- writer thread -------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._serve()
        except BaseException as err:  # noqa: BLE001 -- the thread's end is reported, not lost
            assert self._loop is not None
            with contextlib.suppress(RuntimeError):  # loop already closed at exit
                self._loop.call_soon_threadsafe(self._writer_died, err, context=self._context)

    def _serve(self) -> None:
        assert self._writer is not None
        conn = self._writer
        stopping = False
        while not stopping:
            first = self._queue.get()
            handed: list[_Handed] = []
            if first is _STOP:
                stopping = True
            else:
                assert isinstance(first, _Handed)
                handed.append(first)
            size = sum(len(h.pending) for h in handed)
            while size < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                assert isinstance(item, _Handed)
                handed.append(item)
                size += len(item.pending)
            if handed:
                outcome = self._commit(conn, [p for h in handed for p in h.pending])
                assert self._loop is not None
                with contextlib.suppress(RuntimeError):  # loop already closed at exit
                    self._loop.call_soon_threadsafe(
                        self._resolved, handed, outcome, context=self._context
                    )

    def _commit(self, conn: sqlite3.Connection, batch: list[_Pending]) -> list[str | None]:
        try:
            self._execute(conn, [p.unit for p in batch])
            self.commits += 1
            return [None] * len(batch)
        except _BatchFailed as err:
            return [str(err)] * len(batch)
        except Exception:  # noqa: BLE001 -- some unit is bad: found below, one at a time
            _check_connection(conn)
        outcome: list[str | None] = []
        for pending in batch:
            try:
                self._execute(conn, [pending.unit])
                outcome.append(None)
            except Exception as err:  # noqa: BLE001 -- that unit fails alone, reported
                _check_connection(conn)
                outcome.append(f"{type(err).__name__}: {err}")
        self.commits += 1
        return outcome

    @staticmethod
    def _execute(conn: sqlite3.Connection, units: list[Unit]) -> None:
        durable = any(unit.durable for unit in units)
        try:
            conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:  # locked by another process, disk gone: no unit's fault
            raise _BatchFailed(f"{type(err).__name__}: {err}") from err
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
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def _check_connection(conn: sqlite3.Connection) -> None:
    """A connection left inside a transaction would fail every later unit: end the writer."""
    if conn.in_transaction:
        raise StoreError("the writer's connection is stuck in a transaction")


def _write_run(conn: sqlite3.Connection, sql: str, rows: list[Sequence[Any]]) -> None:
    """Many rows of one insert go as a single statement with the rows as one JSON array.

    ``executemany`` steps SQLite once per row and gives up and takes back the GIL each
    time; with the event loop busy on the other side that hand-off, not SQLite, is the
    cost. One statement is one hand-off.
    """
    bulk = _bulk_sql(sql) if len(rows) >= BULK_FROM else None
    if bulk is None:
        conn.executemany(sql, rows)  # raises OverflowError itself for a too large integer
        return
    data = orjson.dumps(rows)
    # SQLite would read an integer in [2**63, 2**64) from JSON as a float: refuse it as
    # executemany does (rare: only JSON with a long run of digits is looked at closely).
    if _LONG_DIGITS.search(data):
        for row in rows:
            for value in row:
                if type(value) is int and not SQLITE_INT_MIN <= value <= SQLITE_INT_MAX:
                    raise OverflowError(f"{value} is outside SQLite's 64-bit integer range")
    conn.execute(bulk, (data.decode(),))
