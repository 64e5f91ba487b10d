"""SQL of provisioning: the last configuration read from each charger (one row per key or
variable) and how its provisioning went."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from common.timestamps import format_timestamp
from edge.core.provisioning import Outcome, State
from edge.storage.sqlite import Unit


@dataclass(frozen=True, slots=True)
class ConfigEntry:
    key: str
    value: str | None
    readonly: bool
    mutability: str | None = None  # 2.0.1 only

    def document(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"key": self.key, "value": self.value, "readonly": self.readonly}
        if self.mutability is not None:
            shown["mutability"] = self.mutability
        return shown


@dataclass(frozen=True, slots=True)
class StoredConfiguration:
    read_at: str | None
    source: str | None
    outcome: Outcome | None
    entries: list[ConfigEntry]


def save_configuration(
    unit: Unit, charger_id: str, entries: Sequence[ConfigEntry], source: str, at: datetime
) -> None:
    """Replace what is known of the charger's configuration with what it just reported."""
    unit.add("DELETE FROM charger_configuration WHERE charger_id = ?", (charger_id,))
    for entry in entries:
        unit.insert(
            "charger_configuration",
            ("charger_id", "key", "value", "readonly", "mutability"),
            (charger_id, entry.key, entry.value, int(entry.readonly), entry.mutability),
        )
    unit.add(
        "INSERT INTO charger_provisioning (charger_id, read_at, source) VALUES (?,?,?) "
        "ON CONFLICT(charger_id) DO UPDATE SET read_at=excluded.read_at, source=excluded.source",
        (charger_id, format_timestamp(at), source),
    )


def save_values(unit: Unit, charger_id: str, values: dict[str, str]) -> None:
    """Keys the charger accepted: it holds these values now."""
    for key, value in values.items():
        unit.add(
            "INSERT INTO charger_configuration (charger_id, key, value) VALUES (?,?,?) "
            "ON CONFLICT(charger_id, key) DO UPDATE SET value=excluded.value",
            (charger_id, key, value),
        )


def save_outcome(unit: Unit, charger_id: str, outcome: Outcome, at: datetime) -> None:
    unit.add(
        "INSERT INTO charger_provisioning (charger_id, state, fingerprint, applied, failed, "
        "pending_reboot, reason, updated_at) VALUES (?,?,?,?,?,?,?,?) "
        "ON CONFLICT(charger_id) DO UPDATE SET state=excluded.state, "
        "fingerprint=excluded.fingerprint, applied=excluded.applied, failed=excluded.failed, "
        "pending_reboot=excluded.pending_reboot, reason=excluded.reason, "
        "updated_at=excluded.updated_at",
        (
            charger_id,
            outcome.state.value,
            outcome.fingerprint,
            orjson.dumps(outcome.applied).decode(),
            orjson.dumps([list(f) for f in outcome.failed]).decode(),
            orjson.dumps(outcome.pending_reboot).decode(),
            outcome.reason,
            format_timestamp(at),
        ),
    )


def _outcome(row: sqlite3.Row | tuple[Any, ...]) -> Outcome:
    state, fingerprint, applied, failed, reboot, reason = row
    return Outcome(
        State(state),
        fingerprint,
        tuple(orjson.loads(applied)),
        tuple((k, s) for k, s in orjson.loads(failed)),
        tuple(orjson.loads(reboot)),
        reason,
    )


def load_outcome(conn: sqlite3.Connection, charger_id: str) -> Outcome | None:
    row = conn.execute(
        "SELECT state, fingerprint, applied, failed, pending_reboot, reason "
        "FROM charger_provisioning WHERE charger_id = ?",
        (charger_id,),
    ).fetchone()
    return None if row is None else _outcome(tuple(row))


def load_configuration(conn: sqlite3.Connection, charger_id: str) -> StoredConfiguration:
    row = conn.execute(
        "SELECT read_at, source, state, fingerprint, applied, failed, pending_reboot, reason "
        "FROM charger_provisioning WHERE charger_id = ?",
        (charger_id,),
    ).fetchone()
    rows = conn.execute(
        "SELECT key, value, readonly, mutability FROM charger_configuration "
        "WHERE charger_id = ? ORDER BY key",
        (charger_id,),
    ).fetchall()
    entries = [ConfigEntry(k, v, bool(r), m) for k, v, r, m in rows]
    if row is None:
        return StoredConfiguration(None, None, None, entries)
    read_at, source, *rest = tuple(row)
    return StoredConfiguration(read_at, source, _outcome(tuple(rest)), entries)
