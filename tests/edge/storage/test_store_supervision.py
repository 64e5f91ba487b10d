"""The SQLite writer never dies of a unit, says when it is dead or stalled, and closing the
store is bounded even when the writer is stuck. A real SQLite file in tmp_path each."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, overload

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from edge.storage.sqlite import SqliteStore, StoreError, Unit


def _row(key: str, value: object) -> Unit:
    unit = Unit()
    unit.insert("t", ("k", "n"), (key, value))
    return unit


async def _table(store: SqliteStore) -> None:
    table = Unit()
    table.add("CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER)")
    await store.write(table)


async def _keys(store: SqliteStore) -> list[str]:
    return await store.read(lambda c: [r[0] for r in c.execute("SELECT k FROM t ORDER BY k")])


class _Exploding(Sequence[Any]):
    """Parameters that raise when SQLite reads them: a bug we did not foresee."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __len__(self) -> int:
        return 2

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Any]: ...
    def __getitem__(self, index: int | slice) -> Any:
        raise self.error

    def __iter__(self) -> Iterator[Any]:
        raise self.error


class WriterKiller(BaseException):
    """Not an Exception: nothing per unit catches it, so it ends the writer thread."""


@pytest.mark.parametrize("rows", [1, 12], ids=["row-by-row", "bulk-json"])
async def test_an_integer_sqlite_cannot_store_fails_its_unit_alone(
    tmp_path: Path, rows: int
) -> None:
    registry = CollectorRegistry()
    async with SqliteStore(tmp_path / "s.db", registry=registry) as store:
        await _table(store)
        bad = Unit()
        for n in range(rows - 1):
            bad.insert("t", ("k", "n"), (f"bad{n}", n))
        bad.insert("t", ("k", "n"), ("bad-last", 2**63))
        results = await asyncio.gather(
            store.submit(_row("a", 1)),
            store.submit(bad),
            store.submit(_row("b", 2**63 - 1)),
            return_exceptions=True,
        )
        assert results[0] is None
        assert results[2] is None
        assert isinstance(results[1], StoreError)
        assert "OverflowError" in str(results[1])
        # the writer lives on: a later write commits
        await store.write(_row("c", -(2**63)))
        assert await _keys(store) == ["a", "b", "c"]
        stored = await store.read(
            lambda c: c.execute("SELECT n, typeof(n) FROM t WHERE k = 'b'").fetchone()
        )
        assert tuple(stored) == (2**63 - 1, "integer")
        assert store.health()["writer"] == "running"
        assert store.health()["failed_units"] == 1
    assert "evpark_store_failed_units_total 1.0" in generate_latest(registry).decode()


async def test_any_exception_from_a_unit_fails_it_alone(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "s.db") as store:
        await _table(store)
        odd = Unit()
        odd.add("INSERT INTO t (k, n) VALUES (?, ?)", _Exploding(ValueError("odd value")))
        results = await asyncio.gather(
            store.submit(_row("a", 1)), store.submit(odd), return_exceptions=True
        )
        assert results[0] is None
        assert isinstance(results[1], StoreError)
        assert "ValueError: odd value" in str(results[1])
        await store.write(_row("b", 2))
        assert await _keys(store) == ["a", "b"]
        assert store.health()["ok"] is True


async def test_a_dead_writer_fails_every_write_and_is_reported(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    async with SqliteStore(tmp_path / "s.db", registry=registry) as store:
        await _table(store)
        watcher = asyncio.create_task(store.watch())
        poison = Unit()
        poison.add("INSERT INTO t (k, n) VALUES (?, ?)", _Exploding(WriterKiller()))
        with pytest.raises(StoreError, match="writer died"):
            await store.write(poison)
        with pytest.raises(StoreError, match="writer died"):
            await watcher
        # nothing waits forever: a write after the death fails at once
        with pytest.raises(StoreError, match="not running"):
            await store.write(_row("late", 1))
        health = store.health()
        assert (health["ok"], health["writer"]) == (False, "dead")
        assert "evpark_store_writer_up 0.0" in generate_latest(registry).decode()


async def test_a_stuck_writer_is_reported_and_closing_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(path, stall_after=0.2, stop_timeout=0.5)
    await store.__aenter__()
    await _table(store)
    # another process (a backup tool, a technician's sqlite3 shell) holds the write lock
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        write = store.submit(_row("waiting", 1))
        for _ in range(200):
            if store.health()["writer"] == "stalled":
                break
            await asyncio.sleep(0.02)
        health = store.health()
        assert (health["ok"], health["writer"], health["queued"]) == (False, "stalled", 1)
        assert health["oldest_queued_s"] > 0.2
        with pytest.raises(StoreError, match="did not finish"):
            await store.__aexit__(None, None, None)
        assert isinstance(write.exception(), StoreError)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
