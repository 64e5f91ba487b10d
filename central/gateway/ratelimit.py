"""Rate limiting per API key: a token bucket each (rules in :mod:`central.resilience`).

Held in the gateway process; with several gateway replicas each enforces its own share.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from central.resilience import Bucket, bucket_take
from central.settings import RateLimitSettings


class RateLimiter:
    def __init__(
        self, settings: RateLimitSettings, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._settings = settings
        self._monotonic = monotonic
        self._buckets: dict[str, Bucket] = {}

    def check(self, key_id: str, scope: str) -> float:
        """0.0 when the request may go, else the seconds to wait (for Retry-After)."""
        if not self._settings.enabled:
            return 0.0
        now = self._monotonic()
        bucket, wait = bucket_take(
            self._buckets.get(key_id), now, self._settings.per_second(scope), self._settings.burst
        )
        self._buckets[key_id] = bucket
        if len(self._buckets) > 100_000:
            self._prune(now)
        return wait

    def _prune(self, now: float) -> None:
        full_after = self._settings.burst / min(
            self._settings.per_second(s) for s in ("driver", "operator", "site")
        )
        self._buckets = {k: b for k, b in self._buckets.items() if now - b.updated < full_after}
