"""Rate limiting per API key: a token bucket each (rules in :mod:`central.infra.resilience`).

Held in the gateway process; with several gateway replicas each enforces its own share.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from central.infra.resilience import Bucket, bucket_take
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


class FailureLimiter:
    """Authentication attempts per client address: a token bucket each.

    An attempt that needs a key lookup takes a token *before* the lookup (so attempts in
    flight count, not only finished ones); a successful one gives it back. An address
    without a token left is refused without a lookup: ``take`` answers the seconds until
    it may try again.
    """

    def __init__(
        self, settings: RateLimitSettings, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = settings.invalid_key_per_minute / 60.0
        self._burst = settings.invalid_key_burst
        self._enabled = settings.enabled
        self._monotonic = monotonic
        self._buckets: dict[str, Bucket] = {}

    def take(self, address: str) -> float:
        """0.0 and one token taken, or the seconds to wait (nothing taken)."""
        if not self._enabled:
            return 0.0
        now = self._monotonic()
        self._buckets[address], wait = bucket_take(
            self._buckets.get(address), now, self._rate, self._burst
        )
        if len(self._buckets) > 100_000:
            full_after = self._burst / self._rate
            self._buckets = {k: b for k, b in self._buckets.items() if now - b.updated < full_after}
        return wait

    def refund(self, address: str) -> None:
        """The attempt succeeded: it costs nothing."""
        bucket = self._buckets.get(address)
        if self._enabled and bucket is not None:
            self._buckets[address] = replace(
                bucket, tokens=min(float(self._burst), bucket.tokens + 1.0)
            )
