"""The cache contract and its in-process implementation.

Values are JSON (dicts, lists, str, numbers, bool, None); a missing or expired key reads
as ``None``. Entries are short-lived copies of data a service owns (slot status, rates);
the owner deletes them when an event or a write changes the data (``delete`` or
``delete_prefix``). At scale the same contract is served by Redis
(:mod:`central.infra.cache_redis`); :func:`make_cache` picks the implementation by URL.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Protocol


class Cache(Protocol):
    async def get(self, key: str) -> Any | None: ...

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store ``value`` (JSON-serialisable) for ``ttl`` seconds (``None``: until deleted)."""
        ...

    async def delete(self, key: str) -> None: ...

    async def delete_prefix(self, prefix: str) -> None: ...


class MemoryCache:
    """A dict with expiry; values are stored as JSON text so callers never share objects."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._entries: dict[str, tuple[str, float | None]] = {}
        self._monotonic = monotonic

    async def get(self, key: str) -> Any | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        text, expires = entry
        if expires is not None and self._monotonic() >= expires:
            del self._entries[key]
            return None
        return json.loads(text)

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        expires = None if ttl is None else self._monotonic() + ttl
        self._entries[key] = (json.dumps(value, default=str), expires)

    async def delete(self, key: str) -> None:
        self._entries.pop(key, None)

    async def delete_prefix(self, prefix: str) -> None:
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]

    async def aclose(self) -> None:
        self._entries.clear()


class ManagedCache(Cache, Protocol):
    async def aclose(self) -> None: ...


def make_cache(url: str, namespace: str = "evpark:") -> ManagedCache:
    """``memory://`` or ``redis://host:port/db``; the composition root calls ``aclose()``."""
    if url.startswith("memory://"):
        return MemoryCache()
    if url.startswith(("redis://", "rediss://")):
        from central.infra.cache_redis import RedisCache

        return RedisCache.from_url(url, namespace)
    raise ValueError(f"unsupported cache URL {url!r}")
