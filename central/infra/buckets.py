"""Token buckets by name: the contract rate limits are counted through, and its
in-process implementation.

``take(name, rate, burst, cost)`` answers 0.0 when ``cost`` tokens were taken, else the
seconds until they would be there (nothing taken); a negative ``cost`` gives tokens back
(never above ``burst``). In one process the buckets live in a dict
(:class:`LocalBuckets`); with Redis configured, gateway replicas share them
(:mod:`central.infra.buckets_redis`), so a client gets its limit once, not per replica.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from central.infra.resilience import Bucket, bucket_take

MAX_LOCAL_BUCKETS = 100_000  # then the full ones are forgotten (a full bucket is no bucket)


class Buckets(Protocol):
    async def take(self, name: str, rate: float, burst: int, cost: float = 1.0) -> float: ...

    async def aclose(self) -> None: ...


class LocalBuckets:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._buckets: dict[str, tuple[Bucket, float]] = {}  # name -> (bucket, seconds to fill)

    async def take(self, name: str, rate: float, burst: int, cost: float = 1.0) -> float:
        return self.take_now(name, rate, burst, cost)

    def take_now(self, name: str, rate: float, burst: int, cost: float = 1.0) -> float:
        now = self._monotonic()
        held = self._buckets.get(name)
        bucket, wait = bucket_take(held[0] if held else None, now, rate, burst, max(cost, 0.0))
        if cost < 0:
            bucket = Bucket(tokens=min(float(burst), bucket.tokens - cost), updated=now)
        self._buckets[name] = (bucket, burst / rate)
        if len(self._buckets) > MAX_LOCAL_BUCKETS:
            self._buckets = {
                k: (b, fill) for k, (b, fill) in self._buckets.items() if now - b.updated < fill
            }
        return wait

    async def aclose(self) -> None:
        self._buckets.clear()


def make_buckets(cache_url: str, namespace: str) -> Buckets:
    """Shared through Redis when the cache is Redis, else this process's own."""
    if cache_url.startswith(("redis://", "rediss://")):
        from central.infra.buckets_redis import RedisBuckets

        return RedisBuckets.from_url(cache_url, namespace)
    return LocalBuckets()
