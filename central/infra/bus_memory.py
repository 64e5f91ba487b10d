"""The in-process bus (the default, one process).

Each ``(topic, durable)`` pair is one consumer group with its own queue and one worker
task, so a group sees a topic's events in publish order. A handler that raises gets the
event again after a backoff (``max_attempts`` in all); after that the event is logged as
dead-lettered and the group moves on. Worker tasks live in the bus's TaskGroup: use the
bus as ``async with MemoryBus() as bus``.

Not durable across a crash: events queued but not handled are lost with the process. The
sync ingest republishes stored-but-unpublished events at start, which covers events from
sites; at scale use NATS JetStream (:mod:`central.infra.bus_nats`).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable
from types import TracebackType
from typing import Self

import structlog

from central.infra.bus import EventHandler
from central.infra.bus_backlog import ConsumerBacklog, memory_backlog
from central.infra.metrics import CentralMetrics
from common.backoff import backoff_delay
from contract.envelope import CloudEvent

log = structlog.get_logger("central.infra.bus")

RETRY_CAP_S = 5.0  # the longest wait before a handler gets an event again


class MemoryBus:
    def __init__(
        self, max_attempts: int = 8, base_delay: float = 0.05, metrics: CentralMetrics | None = None
    ) -> None:
        if not 0 < base_delay <= RETRY_CAP_S:
            raise ValueError(f"need 0 < base_delay <= {RETRY_CAP_S}")
        self._groups: dict[tuple[str, str], asyncio.Queue[CloudEvent]] = {}
        self._handlers: dict[tuple[str, str], list[EventHandler]] = {}
        self._tasks: asyncio.TaskGroup | None = None
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._workers: list[asyncio.Task[None]] = []
        self._in_flight = 0
        self._unhandled: dict[tuple[str, str], int] = {}  # per group: queued or in a handler
        self._metrics = metrics

    async def __aenter__(self) -> Self:
        self._tasks = asyncio.TaskGroup()
        await self._tasks.__aenter__()
        for key in self._groups:
            self._start_worker(key)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._tasks is not None
        for task in self._workers:
            task.cancel()
        await self._tasks.__aexit__(exc_type, exc, tb)
        self._tasks = None
        self._workers.clear()

    def _start_worker(self, key: tuple[str, str]) -> None:
        assert self._tasks is not None
        task = self._tasks.create_task(self._work(key), name=f"bus:{key[0]}:{key[1]}")
        self._workers.append(task)

    def problem(self) -> str | None:
        """Why the bus cannot deliver now (for /readyz), or None."""
        return None if self._tasks is not None else "the in-process bus is not running"

    async def pending(self) -> dict[tuple[str, str], int]:
        """Events not yet handled per (topic, consumer): queued, or in its handler."""
        return {key: self._unhandled.get(key, 0) for key in self._groups}

    async def publish(self, topic: str, event: CloudEvent) -> None:
        if self._metrics is not None:
            self._metrics.bus_published.labels(topic).inc()
        for key, queue in self._groups.items():
            if key[0] == topic:
                self._in_flight += 1
                self._unhandled[key] = self._unhandled.get(key, 0) + 1
                queue.put_nowait(event)

    async def subscribe(self, topic: str, durable: str, handler: EventHandler) -> None:
        key = (topic, durable)
        if key in self._groups:
            # same durable name again (a second replica in one process): share the work
            self._handlers[key].append(handler)
            return
        self._groups[key] = asyncio.Queue()
        self._handlers[key] = [handler]
        if self._tasks is not None:
            self._start_worker(key)

    async def idle(self) -> None:
        """Wait until every queue is empty and no handler runs (for tests and shutdown)."""
        while self._in_flight:
            for queue in list(self._groups.values()):
                await queue.join()

    async def _work(self, key: tuple[str, str]) -> None:
        queue = self._groups[key]
        turn = 0
        while True:
            event = await queue.get()
            try:
                handlers = self._handlers[key]
                handler = handlers[turn % len(handlers)]
                turn += 1
                await self._deliver(key, handler, event)
            finally:
                self._in_flight -= 1
                self._unhandled[key] -= 1
                queue.task_done()

    async def _deliver(
        self, key: tuple[str, str], handler: EventHandler, event: CloudEvent
    ) -> None:
        for attempt in range(1, self._max_attempts + 1):
            try:
                await handler(event)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - a handler's failure must not stop the bus
                last = attempt == self._max_attempts
                self._count(key, "dead" if last else "failed")
                if last:
                    log.error(
                        "bus.event.dead_lettered",
                        topic=key[0],
                        durable=key[1],
                        event_id=event.id,
                        event_type=event.type,
                        error=repr(err),
                    )
                    return
                delay = backoff_delay(
                    attempt - 1,
                    base=self._base_delay,
                    cap=RETRY_CAP_S,
                    jitter=0.5,
                    rand=random.random(),
                )
                log.warning(
                    "bus.handler.failed",
                    topic=key[0],
                    durable=key[1],
                    event_id=event.id,
                    attempt=attempt,
                    retry_in=round(delay, 3),
                    error=repr(err),
                )
                await asyncio.sleep(delay)
            else:
                self._count(key, "handled")
                return

    def _count(self, key: tuple[str, str], outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.bus_consumed.labels(key[0], key[1], outcome).inc()

    async def backlog(self, topics: Iterable[str]) -> list[ConsumerBacklog]:
        """Every consumer group of ``topics``: all of them live in this process."""
        return memory_backlog(await self.pending(), topics)
