"""Identifiers used across the edge."""

from __future__ import annotations

import os
import re
import time
import uuid
import zlib
from typing import NewType

ChargerId = NewType("ChargerId", str)
SessionId = NewType("SessionId", str)
IdTag = NewType("IdTag", str)
SlotId = NewType("SlotId", str)


def uuid7() -> str:
    """A UUIDv7 (RFC 9562): time-ordered, so ids sort by creation time."""
    unix_ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (unix_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= (rand >> 68) << 64 & (0xFFF << 64)  # 12 random bits
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


# --- charge point identity ----------------------------------------------------------
#
# OCPP 2.0.1 (identifierString, and A00.FR.204: the identity is the Basic auth user) and
# OCPP-J 1.6 (the last path segment of the URL): at most 48 characters of
# a-z A-Z 0-9 * - _ = + | @ . -- ':' is left out because it ends the Basic auth user
# (RFC 7617). The id arrives percent-encoded in the path; it is decoded once and then
# has to be made of these characters only, so an encoded control character, a space, a
# non-ASCII lookalike ("CP-1" spelt in Cyrillic) or a trailing newline is refused, not
# trimmed. Ids are compared case-insensitively (identifierString is): "cp-1" is the
# charger configured as "CP-1", never a second one.
CHARGER_ID_MAX_LENGTH = 48
CHARGER_ID_PATTERN = r"^[A-Za-z0-9*\-_=+|@.]{1,48}$"
_CHARGER_ID = re.compile(r"[A-Za-z0-9*\-_=+|@.]{1,48}")


class InvalidChargerId(ValueError):
    """A charge point identity outside the OCPP identity rules."""


def parse_charger_id(text: str) -> ChargerId:
    """``text`` (already percent-decoded) as a charger id, or :class:`InvalidChargerId`."""
    if _CHARGER_ID.fullmatch(text) is None:
        if not text:
            raise InvalidChargerId("empty charge point identity")
        if len(text) > CHARGER_ID_MAX_LENGTH:
            raise InvalidChargerId(
                f"charge point identity longer than {CHARGER_ID_MAX_LENGTH} characters"
            )
        raise InvalidChargerId(
            "a charge point identity is made of A-Z a-z 0-9 and * - _ = + | @ . only"
        )
    return ChargerId(text)


def charger_key(charger_id: str) -> str:
    """What two ids that name the same charger have in common (case is not significant)."""
    return charger_id.lower()


def ocpp_reservation_id(reservation_id: str) -> int:
    """OCPP wants an integer reservation id; central's is a string. Stable mapping."""
    return zlib.crc32(reservation_id.encode()) & 0x7FFFFFFF
