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


class FailureLimiter:
    """Failed authentications per client address: a token bucket each.

    ``wait(address)`` tells, without taking a token, whether the address is over its
    budget (seconds until it is not); ``failed(address)`` takes one.
    """

    def __init__(
        self, settings: RateLimitSettings, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = settings.invalid_key_per_minute / 60.0
        self._burst = settings.invalid_key_burst
        self._enabled = settings.enabled
        self._monotonic = monotonic
        self._buckets: dict[str, Bucket] = {}

    def wait(self, address: str) -> float:
        if not self._enabled or address not in self._buckets:
            return 0.0
        bucket, wait = bucket_take(self._buckets[address], self._monotonic(), self._rate, 1)
        if wait > 0:
            self._buckets[address] = bucket
        return wait

    def failed(self, address: str) -> None:
        if not self._enabled:
            return
        now = self._monotonic()
        self._buckets[address], _wait = bucket_take(
            self._buckets.get(address), now, self._rate, self._burst
        )
        if len(self._buckets) > 100_000:
            full_after = self._burst / self._rate
            self._buckets = {k: b for k, b in self._buckets.items() if now - b.updated < full_after}
