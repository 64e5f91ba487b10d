"""Rate limiting per API key and per failing client address: a token bucket each (rules in
:mod:`central.infra.resilience`), counted in :mod:`central.infra.buckets`: shared by the
gateway replicas through Redis when ``cache_url`` is Redis, in this process otherwise.
"""

from __future__ import annotations

from central.infra.buckets import Buckets
from central.settings import RateLimitSettings


class RateLimiter:
    def __init__(self, settings: RateLimitSettings, buckets: Buckets) -> None:
        self._settings = settings
        self._buckets = buckets

    async def check(self, key_id: str, scope: str) -> float:
        """0.0 when the request may go, else the seconds to wait (for Retry-After)."""
        if not self._settings.enabled:
            return 0.0
        return await self._buckets.take(
            f"key:{key_id}", self._settings.per_second(scope), self._settings.burst
        )


class FailureLimiter:
    """Authentication attempts per client address: a token bucket each.

    An attempt that needs a key lookup takes a token *before* the lookup (so attempts in
    flight count, not only finished ones); a successful one gives it back. An address
    without a token left is refused without a lookup: ``take`` answers the seconds until
    it may try again.
    """

    def __init__(self, settings: RateLimitSettings, buckets: Buckets) -> None:
        self._rate = settings.invalid_key_per_minute / 60.0
        self._burst = settings.invalid_key_burst
        self._enabled = settings.enabled
        self._buckets = buckets

    async def take(self, address: str) -> float:
        """0.0 and one token taken, or the seconds to wait (nothing taken)."""
        if not self._enabled:
            return 0.0
        return await self._buckets.take(f"addr:{address}", self._rate, self._burst)

    async def refund(self, address: str) -> None:
        """The attempt succeeded: it costs nothing."""
        if self._enabled:
            await self._buckets.take(f"addr:{address}", self._rate, self._burst, cost=-1.0)
