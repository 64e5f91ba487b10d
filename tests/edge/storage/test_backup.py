"""Backups of the edge's database taken while it is written to, and restores that refuse
what would harm a site: a running daemon, a newer schema, a file that is not ours."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge.storage.backup import BackupError, backup, inspect, restore
from edge.storage.migrations import MIGRATIONS
from edge.storage.sqlite import SqliteStore, Unit
from evpark.cli import app
from tests.harness.site_config import write_site_toml
from tests.polling import eventually

NOW = datetime(2026, 12, 2, 20, 0, tzinfo=UTC)


def event_unit(n: int) -> Unit:
    """An outbox event and a counter in one transaction: a backup holding one without
    the other would be half a write."""
    unit = Unit()
    unit.add(
        "INSERT INTO outbox (id, type, subject, time, data) VALUES (?, 'test.event', NULL, ?, ?)",
        (str(uuid.uuid4()), "2026-12-02T20:00:00Z", f'{{"n": {n}}}'),
    )
    unit.add(
        "INSERT INTO meta (key, value) VALUES ('test.count', ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (str(n),),
    )
    return unit


async def write_until(store: SqliteStore, done: asyncio.Event) -> int:
    n = 0
    while not done.is_set():
        n += 1
        await store.write(event_unit(n))
    return n


def files(directory: Path, pattern: str) -> list[Path]:
    return list(directory.glob(pattern))


def has_events(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] > 0


def assert_whole(path: Path) -> int:
    """Every committed event up to a point, each with its counter; returns how many."""
    conn = sqlite3.connect(path)
    try:
        sequences = [r[0] for r in conn.execute("SELECT sequence FROM outbox ORDER BY sequence")]
        numbers = [r[0] for r in conn.execute("SELECT data->>'n' FROM outbox ORDER BY sequence")]
        count = conn.execute("SELECT value FROM meta WHERE key = 'test.count'").fetchone()
    finally:
        conn.close()
    assert sequences == list(range(1, len(sequences) + 1))
    assert numbers == sequences
    assert count is not None
    assert int(count[0]) == len(sequences)
    return len(sequences)


async def test_a_backup_taken_while_the_store_writes_is_consistent(tmp_path: Path) -> None:
    database = tmp_path / "edge.sqlite3"
    async with SqliteStore(database) as store:
        done = asyncio.Event()
        async with asyncio.TaskGroup() as tasks:
            writer = tasks.create_task(write_until(store, done))
            await eventually(lambda: store.read(has_events), "the first events are written")
            reports = [
                await asyncio.to_thread(backup, database, tmp_path / f"b{i}.db") for i in range(3)
            ]
            done.set()
        written = writer.result()
    copied = [assert_whole(r.path) for r in reports]
    assert 0 < copied[0] <= copied[1] <= copied[2] <= written
    for report, rows in zip(reports, copied, strict=True):
        assert report.schema == len(MIGRATIONS)
        assert report.outbox_rows == rows == report.last_sequence
        assert report.size == report.path.stat().st_size
        assert not files(tmp_path, f"{report.path.name}-wal")  # one self-contained file
    assert not files(tmp_path, ".*partial")


async def test_restore_keeps_the_old_database_aside_and_continues_after_central(
    tmp_path: Path,
) -> None:
    database = tmp_path / "data" / "edge.sqlite3"
    async with SqliteStore(database) as store:
        for n in range(1, 6):
            await store.write(event_unit(n))
        saved = await asyncio.to_thread(backup, database, tmp_path / "b.db")
        for n in range(6, 9):
            await store.write(event_unit(n))
    report = restore(database, saved.path, NOW, central_sequence=8)
    assert report.kept_aside == database.with_name("edge.sqlite3.before-restore-20261202T200000Z")
    assert assert_whole(report.kept_aside) == 8  # the WAL was folded in before moving it
    assert assert_whole(database) == 5
    assert report.next_sequence == 9
    assert not files(database.parent, "*-wal")
    async with SqliteStore(database) as store:  # the daemon's next event continues after 8
        await store.write(event_unit(9))
        seqs = await store.read(
            lambda c: [r[0] for r in c.execute("SELECT sequence FROM outbox ORDER BY 1")]
        )
    assert seqs == [1, 2, 3, 4, 5, 9]


async def test_restore_is_refused_while_a_daemon_has_the_database_open(tmp_path: Path) -> None:
    database = tmp_path / "edge.sqlite3"
    async with SqliteStore(database) as store:
        await store.write(event_unit(1))
        saved = await asyncio.to_thread(backup, database, tmp_path / "b.db")
        await store.write(event_unit(2))
        with pytest.raises(BackupError, match="in use"):
            await asyncio.to_thread(restore, database, saved.path, NOW)
        await store.write(event_unit(3))  # the daemon's database is untouched
    assert assert_whole(database) == 3
    assert not files(tmp_path, "*before-restore*")


async def test_a_damaged_database_is_replaced_and_kept_aside(tmp_path: Path) -> None:
    database = tmp_path / "edge.sqlite3"
    async with SqliteStore(tmp_path / "good.db") as store:
        await store.write(event_unit(1))
    saved = await asyncio.to_thread(backup, tmp_path / "good.db", tmp_path / "b.db")
    await asyncio.to_thread(database.write_bytes, b"SQLite format 3\x00" + b"\xff" * 4096)
    report = await asyncio.to_thread(restore, database, saved.path, NOW)
    assert assert_whole(database) == 1
    assert report.kept_aside is not None
    assert report.kept_aside.read_bytes().startswith(b"SQLite format 3")


def test_restore_refuses_a_newer_schema_and_files_that_are_not_edge_databases(
    tmp_path: Path,
) -> None:
    database = tmp_path / "edge.sqlite3"
    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as conn:
        conn.executescript(
            "CREATE TABLE outbox (sequence INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT, type TEXT,"
            " subject TEXT, time TEXT, data TEXT); CREATE TABLE meta (key TEXT PRIMARY KEY, value);"
            f"CREATE TABLE sessions (id TEXT); PRAGMA user_version = {len(MIGRATIONS) + 1};"
        )
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    text = tmp_path / "notes.txt"
    text.write_text("not a database at all, but long enough to look like a header" * 20)
    cases = [
        (newer, "newer than this evpark"),
        (other, "not an evpark edge database"),
        (text, "not an evpark edge database"),
        (tmp_path / "missing.db", "no such file"),
    ]
    for source, why in cases:
        with pytest.raises(BackupError, match=why):
            restore(database, source, NOW)
    assert not database.exists()


async def test_the_cli_backs_up_and_restores(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = write_site_toml(
        tmp_path / "site.toml",
        {"site": {"id": "backup-site"}, "storage": {"data_dir": str(tmp_path / "elsewhere")}},
    )
    async with SqliteStore(data / "edge.sqlite3") as store:
        for n in range(1, 4):
            await store.write(event_unit(n))
        runner = CliRunner()
        target = tmp_path / "site.bak"
        made = await asyncio.to_thread(
            runner.invoke,
            app,
            ["edge", "backup", "-c", str(config), "--data-dir", str(data), "--to", str(target)],
        )
        assert made.exit_code == 0, made.output
        assert "schema" in made.output
        assert "last sequence 3" in made.output
        args = [
            "edge",
            "restore",
            "-c",
            str(config),
            "--data-dir",
            str(data),
            "--from",
            str(target),
        ]
        busy = await asyncio.to_thread(runner.invoke, app, [*args, "--yes"])
        assert busy.exit_code == 1
        assert "in use" in busy.output
    kept = runner.invoke(app, args, input="n\n")  # asked, and answered no
    assert kept.exit_code == 1
    assert not files(data, "*before-restore*")
    done = runner.invoke(app, [*args, "--yes"])
    assert done.exit_code == 0, done.output
    assert "before-restore" in done.output
    assert "next event is sequence 4" in done.output
    bad = runner.invoke(app, [*args[:6], "--from", str(config), "--yes"])
    assert bad.exit_code == 1
    assert "not an evpark edge database" in bad.output
    assert inspect(data / "edge.sqlite3").last_sequence == 3
