"""Identifiers used across the edge."""

from __future__ import annotations

import os
import time
import uuid
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
