"""Backups of the edge's database: taken while the daemon runs, restored while it is stopped.

Backup uses SQLite's online backup API in one step: it reads one snapshot (a WAL read
transaction) while the daemon's writer goes on committing, so the copy holds every
transaction committed before that point and nothing of a later one. It is written to a
temporary file next to the target, checked, synced and renamed: a target either is a
whole checked backup or is not there.

Restore refuses while a daemon uses the database (leaving WAL mode needs every other
connection closed), a file that is not an evpark edge database, and a schema newer than
this evpark. The current database is kept aside, never deleted. Sync: see
:func:`fence_outbox` and docs/operations.md.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from edge.storage.migrations import MIGRATIONS
from edge.storage.sync_sql import acked_sequence, mark_unfenced, outbox_state

EDGE_TABLES = frozenset({"outbox", "meta", "sessions"})


class BackupError(Exception):
    """A backup or restore was refused or failed; the message says why."""


@dataclass(frozen=True, slots=True)
class BackupReport:
    path: Path
    size: int  # bytes
    schema: int  # PRAGMA user_version: migrations applied
    outbox_rows: int
    last_sequence: int  # highest outbox sequence ever written
    acked_sequence: int  # highest sequence central had confirmed


def backup(database: Path, target: Path) -> BackupReport:
    """Copy ``database`` (possibly in use) to ``target`` consistently; the copy is checked."""
    if not database.is_file():
        raise BackupError(f"{database}: no such database")
    target = target.resolve()
    temp = target.with_name(f".{target.name}.partial")
    temp.unlink(missing_ok=True)
    source = sqlite3.connect(database, timeout=30)
    try:
        copy = sqlite3.connect(temp)
        try:
            source.backup(copy)  # one step: one consistent snapshot
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            copy.close()
        report = inspect(temp)
        _fsync(temp)
        os.replace(temp, target)
        _fsync(target.parent)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    return _at(report, target)


def inspect(path: Path) -> BackupReport:
    """What a backup holds; raises :class:`BackupError` if it is not a sound edge database."""
    if not path.is_file():
        raise BackupError(f"{path}: no such file")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as err:
        raise BackupError(f"{path}: cannot open: {err}") from err
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not EDGE_TABLES.issubset(tables):
            raise BackupError(f"{path}: not an evpark edge database")
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise BackupError(f"{path}: integrity check failed: {check}")
        schema = int(conn.execute("PRAGMA user_version").fetchone()[0])
        state = outbox_state(conn)
        rows = int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
    except sqlite3.DatabaseError as err:  # "file is not a database" and the like
        raise BackupError(f"{path}: not an evpark edge database ({err})") from err
    finally:
        conn.close()
    return BackupReport(path, path.stat().st_size, schema, rows, state.last, state.acked)


@dataclass(frozen=True, slots=True)
class RestoreReport:
    restored: BackupReport
    kept_aside: Path | None  # the database that was in place, if any
    next_sequence: int  # the sequence the site's next event gets


def restore(
    database: Path, source: Path, now: datetime, central_sequence: int | None = None
) -> RestoreReport:
    """Put the backup ``source`` in place of ``database`` (the daemon must be stopped).

    ``central_sequence``: the last sequence central holds for the site, when known; the
    restored outbox then continues after it (see :func:`fence_outbox`).
    """
    report = inspect(source)
    if report.schema > len(MIGRATIONS):
        raise BackupError(
            f"{source}: schema version {report.schema} is newer than this evpark "
            f"({len(MIGRATIONS)}): restore it with that evpark or newer"
        )
    database.parent.mkdir(parents=True, exist_ok=True)
    temp = database.with_name(f".{database.name}.restoring")
    temp.unlink(missing_ok=True)
    aside: Path | None = None
    try:
        _copy(source, temp)
        next_sequence = fence_outbox(temp, central_sequence)
        _fsync(temp)
        with _exclusive(database):
            if database.exists():
                aside = database.with_name(
                    f"{database.name}.before-restore-{now.strftime('%Y%m%dT%H%M%SZ')}"
                )
                os.replace(database, aside)
            for suffix in ("-wal", "-shm", "-journal"):  # the old database's, now stale
                Path(f"{database}{suffix}").unlink(missing_ok=True)
            os.replace(temp, database)
        _fsync(database.parent)
    finally:
        temp.unlink(missing_ok=True)
    return RestoreReport(_at(report, database), aside, next_sequence)


def fence_outbox(path: Path, central_sequence: int | None) -> int:
    """Let the restored outbox continue after what central holds; returns the next sequence.

    Central already holds the events the site made after the backup was taken, under the
    sequences the restored outbox would give its next events: central would refuse those
    as conflicts and sync would stop. Raising the outbox's counter past central's last
    sequence avoids that; the backup's own events not yet confirmed are sent again and
    central drops them as duplicates (same event ids).
    """
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        state = outbox_state(conn)
        if central_sequence is not None and central_sequence > state.last:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM sqlite_sequence WHERE name = 'outbox'")
            conn.execute(
                "INSERT INTO sqlite_sequence (name, seq) VALUES ('outbox', ?)",
                (central_sequence,),
            )
            conn.execute("COMMIT")
            return central_sequence + 1
        if central_sequence is None:
            # central was not asked: the daemon asks it before its first upload and moves
            # the events it wrote meanwhile past central's (sync_sql.fence_restored)
            mark_unfenced(conn, state.last)
        return max(state.last, acked_sequence(conn)) + 1
    finally:
        conn.close()


@contextlib.contextmanager
def _exclusive(database: Path) -> Iterator[None]:
    """Hold ``database`` alone; refuse if a daemon (any connection) has it open.

    A connection leaves WAL mode only when no other connection is open, so a daemon
    that runs is seen even while it writes nothing. Leaving WAL also folds the WAL into
    the file, so the database kept aside is whole on its own.
    """
    if not database.exists():
        yield
        return
    conn = sqlite3.connect(database, isolation_level=None, timeout=0)
    try:
        try:
            mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
            conn.execute("BEGIN EXCLUSIVE")
        except sqlite3.OperationalError as err:
            raise BackupError(
                f"{database} is in use (is the edge daemon running? stop it first): {err}"
            ) from err
        except sqlite3.DatabaseError:  # damaged beyond opening: no daemon can use it either
            yield
            return
        if mode != "delete":
            raise BackupError(f"{database} is in use (journal mode stays {mode})")
        yield
    finally:
        conn.close()


def _copy(source: Path, target: Path) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _at(report: BackupReport, path: Path) -> BackupReport:
    return BackupReport(
        path, path.stat().st_size, report.schema, report.outbox_rows, report.last_sequence,
        report.acked_sequence,
    )  # fmt: skip
