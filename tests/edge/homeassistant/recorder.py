"""What a broker holds and carries on some topics, as a Home Assistant instance sees it."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from types import TracebackType
from typing import Any, Self

import aiomqtt

from tests.mosquitto import Mosquitto

_SYNC = "evpark-test/sync"


class TopicRecorder:
    """Subscribes to ``filters``: ``latest`` is every topic's last payload (an empty one
    removes it, as the broker does a retained message); ``live`` lists what arrived after
    subscribing (not replayed from the broker's store), in order."""

    def __init__(self, broker: Mosquitto, *filters: str) -> None:
        self._client = aiomqtt.Client(broker.host, broker.port)
        self._filters = filters
        self.latest: dict[str, bytes] = {}
        self.live: list[tuple[str, bytes]] = []
        self._reader: asyncio.Task[None] | None = None
        self._syncs = itertools.count()
        self._synced: dict[str, asyncio.Event] = {}

    async def __aenter__(self) -> Self:
        await self._client.__aenter__()
        for topic_filter in (*self._filters, f"{_SYNC}/#"):
            await self._client.subscribe(topic_filter, qos=1)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._reader is not None
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self._client.__aexit__(t, e, tb)

    async def _read(self) -> None:
        async for message in self._client.messages:
            payload = message.payload
            data = payload if isinstance(payload, bytes) else str(payload or "").encode()
            topic = message.topic.value
            if topic in self._synced:
                self._synced.pop(topic).set()
                continue
            if not message.retain:
                self.live.append((topic, data))
            if data:
                self.latest[topic] = data
            else:
                self.latest.pop(topic, None)

    async def sync(self) -> None:
        """Until everything the broker had sent us when this was called has arrived: the
        broker forwards messages to one client in the order it received them."""
        topic = f"{_SYNC}/{next(self._syncs)}"
        arrived = self._synced[topic] = asyncio.Event()
        await self._client.publish(topic, b"sync", qos=1)
        async with asyncio.timeout(10):
            await arrived.wait()

    def json(self, topic: str) -> Any:
        return json.loads(self.latest[topic])

    def under(self, prefix: str) -> dict[str, bytes]:
        return {t: p for t, p in self.latest.items() if t.startswith(prefix)}
