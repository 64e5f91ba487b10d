"""The cache contract on Redis (at scale): JSON values under a key namespace."""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as redis_asyncio
import structlog
from redis.exceptions import RedisError

log = structlog.get_logger("central.infra.cache")


class RedisCache:
    """Reads that fail count as misses and writes that fail are logged: the cache may
    degrade, the service may not."""

    def __init__(self, client: redis_asyncio.Redis, namespace: str = "evpark:") -> None:
        self._client = client
        self._ns = namespace

    @classmethod
    def from_url(cls, url: str, namespace: str = "evpark:") -> RedisCache:
        """Connects lazily: a Redis that is down makes reads miss, not the service fail."""
        client = redis_asyncio.Redis.from_url(
            url, decode_responses=True, socket_timeout=2.0, socket_connect_timeout=2.0
        )
        return cls(client, namespace)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get(self, key: str) -> Any | None:
        try:
            raw = await self._client.get(self._ns + key)
        except RedisError as err:
            log.warning("cache.redis.get_failed", key=key, error=str(err))
            return None
        return None if raw is None else json.loads(raw)

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        text = json.dumps(value, default=str)
        try:
            if ttl is None:
                await self._client.set(self._ns + key, text)
            else:
                await self._client.set(self._ns + key, text, px=max(1, int(ttl * 1000)))
        except RedisError as err:
            log.warning("cache.redis.set_failed", key=key, error=str(err))

    async def delete(self, key: str) -> None:
        try:
            await self._client.delete(self._ns + key)
        except RedisError as err:
            log.warning("cache.redis.delete_failed", key=key, error=str(err))

    async def delete_prefix(self, prefix: str) -> None:
        pattern = self._ns + _escape(prefix) + "*"
        try:
            batch: list[str] = []
            async for key in self._client.scan_iter(match=pattern, count=500):
                batch.append(key)
                if len(batch) >= 500:
                    await self._client.delete(*batch)
                    batch.clear()
            if batch:
                await self._client.delete(*batch)
        except RedisError as err:
            log.warning("cache.redis.delete_failed", prefix=prefix, error=str(err))


def _escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
