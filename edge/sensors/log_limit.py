"""Rate-limited log lines for what arrives over MQTT from anyone.

A broken sensor or a flooding client on the broker must not flood the edge's log: the
counters still see every message, the log sees the first and then one a minute per key.
"""

from __future__ import annotations

import time
from collections.abc import Hashable


class LogLimiter:
    """The first line per key, then at most one per ``period`` with how many were skipped."""

    def __init__(self, period: float = 60.0, max_keys: int = 10_000) -> None:
        self._period = period
        self._max_keys = max_keys
        self._seen: dict[Hashable, tuple[float, int]] = {}

    def admit(self, key: Hashable) -> int | None:
        """None: stay silent; else log now, saying how many lines were skipped before."""
        now = time.monotonic()
        last, skipped = self._seen.get(key, (float("-inf"), 0))
        if now - last < self._period:
            self._seen[key] = (last, skipped + 1)
            return None
        if len(self._seen) > self._max_keys:  # bounded, whatever garbage arrives
            self._seen.clear()
        self._seen[key] = (now, 0)
        return skipped
