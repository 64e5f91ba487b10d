"""Which chargers may connect: the configured ones, and the ones an operator approved.

A charger is *configured* when it is listed under ``[[chargers]]`` in the site file (with
its password, if it has one). Every charger that ever connected also has a row in the
``chargers`` table; a row for a charger that is not configured is *registered*, and it
is either *approved* (``evpark chargers approve``: ``approved_at`` is set) or *pending*
(``ocpp.auto_register`` let it in, or the charger was removed from the file, and
nobody approved it).

The rule, in :func:`admit`: a configured charger connects with its credentials; an
approved one connects too, but in production only with a client certificate (security
profile 3), as it has no password; a pending or unknown id connects only while
``ocpp.auto_register`` is on, which production refuses. So switching auto_register off
closes the door to everything it let in that nobody approved.

Reads take a ``sqlite3.Connection``; writes append to a :class:`~edge.storage.sqlite.Unit` (the
``evpark chargers`` command runs them in its own transaction on the site database).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from common.timestamps import format_timestamp
from edge.config import SiteConfig
from edge.core.ids import ChargerId, charger_key, parse_charger_id
from edge.storage.site_sql import parse_iso
from edge.storage.sqlite import Unit


class ChargerError(ValueError):
    """A registry change that cannot be made (a bad id, an unknown or configured charger)."""


@dataclass(frozen=True, slots=True)
class Registered:
    """A charger's row in the site database."""

    id: ChargerId
    approved_at: datetime | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    vendor: str = ""
    model: str = ""

    @property
    def approved(self) -> bool:
        return self.approved_at is not None


class Refusal(StrEnum):
    UNKNOWN = "unknown"  # not configured, not approved, auto_register off
    NEEDS_CREDENTIALS = "needs_credentials"  # approved, but production wants a certificate


@dataclass(frozen=True, slots=True)
class Admitted:
    id: ChargerId  # the spelling the site knows it by
    password: str | None  # to check, when the charger is configured with one
    configured: bool


def admit(
    config: SiteConfig, charger_id: ChargerId, registered: Registered | None
) -> Admitted | Refusal:
    """May ``charger_id`` (already checked by :func:`~edge.core.ids.parse_charger_id`) connect?"""
    configured = config.charger(charger_id)
    if configured is not None:
        return Admitted(ChargerId(configured.id), configured.password, configured=True)
    if registered is not None and registered.approved:
        if config.site.environment == "production" and not config.mutual_tls:
            return Refusal.NEEDS_CREDENTIALS
        return Admitted(registered.id, None, configured=False)
    if config.ocpp.auto_register:
        return Admitted(registered.id if registered else charger_id, None, configured=False)
    return Refusal.UNKNOWN


# --- SQL -----------------------------------------------------------------------------

_COLUMNS = "id, approved_at, first_seen, last_seen, vendor, model"


def _row(row: sqlite3.Row) -> Registered:
    return Registered(
        id=ChargerId(row["id"]),
        approved_at=parse_iso(row["approved_at"]),
        first_seen=parse_iso(row["first_seen"]),
        last_seen=parse_iso(row["last_seen"]),
        vendor=row["vendor"],
        model=row["model"],
    )


def load_registry(conn: sqlite3.Connection) -> dict[str, Registered]:
    """Every charger row, by :func:`~edge.core.ids.charger_key`."""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM chargers")
    return {charger_key(r.id): r for r in map(_row, rows)}


def list_registered(conn: sqlite3.Connection, config: SiteConfig) -> list[Registered]:
    """The rows of chargers that are not in the configuration, oldest first."""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM chargers ORDER BY first_seen, id")
    return [r for r in map(_row, rows) if config.charger(r.id) is None]


def find(conn: sqlite3.Connection, charger_id: str) -> Registered | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM chargers WHERE id = ? COLLATE NOCASE", (charger_id,)
    ).fetchone()
    return _row(row) if row is not None else None


def check_id(text: str) -> ChargerId:
    try:
        return parse_charger_id(text)
    except ValueError as err:
        raise ChargerError(f"{text!r}: {err}") from err


def check_not_configured(config: SiteConfig, charger_id: str) -> None:
    if config.charger(charger_id) is not None:
        raise ChargerError(
            f"{charger_id} is configured in the site file: change it there, not here"
        )


def approve(
    unit: Unit, conn: sqlite3.Connection, config: SiteConfig, text: str, now: datetime
) -> ChargerId:
    """Approve a registered charger, or an id that has not connected yet (pre-approval)."""
    charger_id = check_id(text)
    check_not_configured(config, charger_id)
    existing = find(conn, charger_id)
    if existing is not None:
        unit.add(
            "UPDATE chargers SET approved_at = ? WHERE id = ?", (format_timestamp(now), existing.id)
        )
        return existing.id
    unit.add(
        "INSERT INTO chargers (id, auto_registered, approved_at) VALUES (?, 1, ?)",
        (charger_id, format_timestamp(now)),
    )
    return charger_id


def revoke(unit: Unit, conn: sqlite3.Connection, config: SiteConfig, text: str) -> ChargerId:
    """Take an approval back: the charger is pending again."""
    charger_id = check_id(text)
    check_not_configured(config, charger_id)
    existing = find(conn, charger_id)
    if existing is None:
        raise ChargerError(f"no registered charger {charger_id}")
    unit.add("UPDATE chargers SET approved_at = NULL WHERE id = ?", (existing.id,))
    return existing.id


def remove(unit: Unit, conn: sqlite3.Connection, config: SiteConfig, text: str) -> ChargerId:
    """Forget a registered charger: its row and its connectors' state (its sessions and
    meter values stay, they are the site's history)."""
    charger_id = check_id(text)
    check_not_configured(config, charger_id)
    existing = find(conn, charger_id)
    if existing is None:
        raise ChargerError(f"no registered charger {charger_id}")
    unit.add("DELETE FROM evses WHERE charger_id = ?", (existing.id,))
    unit.add("DELETE FROM chargers WHERE id = ?", (existing.id,))
    return existing.id
