"""Id tokens as the sites receive them, and the per-session app token of a remote start.

A driver's id tokens are its RFID cards and, for each remote start, an app token central
makes: ``A`` and 19 random base32 characters (20 in all, the OCPP 1.6 idTag limit), valid
for :data:`APP_TOKEN_TTL`. A per-session token binds exactly one session to a vehicle and
driver, sends no long-lived secret to a charger, still works if the site loses central
right after the start, and a leaked one expires within minutes.

:func:`tag_entry` is one entry of the ``update_id_tags`` command's ``tags`` (the shape
the edge stores, with the vehicle and driver of each tag).
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any, Final

from common.timestamps import format_timestamp

APP_TOKEN_TTL: Final = timedelta(minutes=10)
APP_TOKEN_PREFIX: Final = "A"
APP_TOKEN_LENGTH: Final = 20
BASE32: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def new_app_token() -> str:
    """A fresh app token (95 random bits: never guessed, never reused)."""
    random_part = "".join(
        secrets.choice(BASE32) for _ in range(APP_TOKEN_LENGTH - len(APP_TOKEN_PREFIX))
    )
    return APP_TOKEN_PREFIX + random_part


def tag_entry(row: Any, status: str | None = None) -> dict[str, Any]:
    """A ``charging_id_tags`` row as an ``update_id_tags`` entry (``status``: instead of
    the row's, e.g. ``Invalid`` for a removed card)."""
    return {
        "id_tag": row.id_tag,
        "status": status or row.status,
        "expires_at": None if row.expires_at is None else format_timestamp(row.expires_at),
        "vehicle_id": row.vehicle_id,
        "driver_id": row.driver_id,
    }
