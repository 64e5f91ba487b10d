"""Token buckets in Redis, shared by every gateway replica: one Lua script takes (or gives
back) tokens atomically, on Redis's own clock (``TIME``), so replicas whose clocks differ
still agree. A bucket expires once it would be full again.

Redis unreachable: the buckets fall back to this process's (:class:`LocalBuckets`), a
warning is logged once, and Redis is tried again every ``retry_s`` seconds: a rate limit
that fails open per replica is better than a gateway that refuses everyone, or waits on
a dead Redis for every request. Limits are per replica until Redis is back.
"""

from __future__ import annotations

import time
from typing import Any, Final

import redis.asyncio as redis_asyncio
import structlog
from redis.exceptions import RedisError

from central.infra.buckets import LocalBuckets

log = structlog.get_logger("central.infra.buckets")

TAKE: Final = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local held = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens, updated = tonumber(held[1]), tonumber(held[2])
if tokens == nil or updated == nil then tokens, updated = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
local wait = 0
if cost < 0 then
  tokens = math.min(burst, tokens - cost)
elseif tokens >= cost then
  tokens = tokens - cost
else
  wait = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst / rate) * 1000) + 1000)
return tostring(wait)
"""


class RedisBuckets:
    def __init__(
        self, client: redis_asyncio.Redis, namespace: str = "evpark:", retry_s: float = 5.0
    ) -> None:
        self._client = client
        self._prefix = f"{namespace}bucket:"
        self._script: Any = client.register_script(TAKE)
        self._local = LocalBuckets()
        self._retry_s = retry_s
        self._down_until: float | None = None  # while set: Redis failed, use local buckets

    @classmethod
    def from_url(cls, url: str, namespace: str = "evpark:") -> RedisBuckets:
        """Short timeouts: every request waits on this call."""
        client = redis_asyncio.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        return cls(client, namespace)

    async def take(self, name: str, rate: float, burst: int, cost: float = 1.0) -> float:
        if self._down_until is not None and time.monotonic() < self._down_until:
            return self._local.take_now(name, rate, burst, cost)
        try:
            answer = await self._script(keys=[self._prefix + name], args=[rate, burst, cost])
        except (RedisError, OSError) as err:
            if self._down_until is None:
                log.warning(
                    "ratelimit.redis.unavailable",
                    error=str(err),
                    fallback="per-process limits until Redis answers",
                )
            self._down_until = time.monotonic() + self._retry_s
            return self._local.take_now(name, rate, burst, cost)
        if self._down_until is not None:
            log.info("ratelimit.redis.back")
            self._down_until = None
        return float(answer.decode() if isinstance(answer, bytes) else answer)

    async def aclose(self) -> None:
        await self._client.aclose()
