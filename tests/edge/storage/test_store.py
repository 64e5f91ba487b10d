"""The SQLite store: group commit, bulk row inserts, a bad unit failing alone, migrations."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from edge.storage.migrations import MIGRATIONS
from edge.storage.sqlite import SqliteStore, StoreError, Unit, migrate


async def test_a_burst_is_committed_in_order_with_types_kept(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "s.db") as store:
        units = []
        for i in range(300):
            unit = Unit()
            unit.insert(
                "outbox",
                ("id", "type", "subject", "time", "data"),
                (f"e{i}", "t.x", None, "2026-01-01T00:00:00Z", f'{{"n": {i}}}'),
            )
            unit.insert("meta", ("key", "value"), (f"k{i}", str(i)))
            units.append(store.submit(unit))
        await asyncio.gather(*units)
        rows = await store.read(
            lambda c: c.execute(
                "SELECT sequence, id, subject, typeof(sequence) FROM outbox ORDER BY sequence"
            ).fetchall()
        )
        metas = await store.read(
            lambda c: c.execute("SELECT COUNT(*) FROM meta WHERE key LIKE 'k%'").fetchone()[0]
        )
    assert [r[1] for r in rows] == [f"e{i}" for i in range(300)]
    assert [r[0] for r in rows] == list(range(1, 301))
    assert {r[2] for r in rows} == {None}
    assert metas == 300
    assert store.commits < 300  # they shared commits


async def test_bulk_insert_keeps_sql_types(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "s.db") as store:
        futures = []
        for i in range(20):
            unit = Unit()
            unit.insert(
                "meter_values",
                (
                    "charger_id",
                    "evse_id",
                    "session_id",
                    "at",
                    "energy_wh",
                    "power_w",
                    "current_a",
                    "voltage_v",
                    "soc",
                    "context",
                ),
                (
                    "CP",
                    i,
                    None,
                    f"2026-01-01T00:00:{i:02d}Z",
                    1000.5 + i,
                    7000.0,
                    None,
                    230,
                    None,
                    "Sample.Periodic",
                ),
            )
            futures.append(store.submit(unit))
        await asyncio.gather(*futures)
        types = await store.read(
            lambda c: c.execute(
                "SELECT DISTINCT typeof(evse_id), typeof(energy_wh), typeof(session_id), typeof(voltage_v) FROM meter_values"
            ).fetchall()
        )
        total = await store.read(
            lambda c: c.execute("SELECT SUM(evse_id), MAX(energy_wh) FROM meter_values").fetchone()
        )
    assert [tuple(t) for t in types] == [("integer", "real", "null", "real")]
    assert tuple(total) == (190, 1019.5)


async def test_a_bad_unit_fails_alone(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "s.db") as store:
        good, bad = Unit(), Unit()
        good.insert("meta", ("key", "value"), ("a", "1"))
        bad.add("INSERT INTO no_such_table VALUES (1)")
        also_good = Unit()
        also_good.insert("meta", ("key", "value"), ("b", "2"))
        results = await asyncio.gather(
            store.submit(good), store.submit(bad), store.submit(also_good), return_exceptions=True
        )
        keys = await store.read(
            lambda c: [r[0] for r in c.execute("SELECT key FROM meta ORDER BY key")]
        )
    assert results[0] is None
    assert results[2] is None
    assert isinstance(results[1], StoreError)
    assert keys == ["a", "b"]


def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "s.db")
    migrate(conn)
    conn.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    with pytest.raises(StoreError, match="newer"):
        migrate(conn)
