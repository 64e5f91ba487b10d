"""The in-process bus (the default, one process).

Each ``(topic, durable)`` pair is one consumer group with its own bounded queue and one
worker task, so a group sees a topic's events in publish order. The worker takes what is
waiting (up to ``batch_size``) and gives it to the group's batch handler, if it has one,
else event by event. A handler that raises gets the event again after a backoff
(``max_attempts`` in all); after that the event is logged as dead-lettered and the group
moves on; a batch that fails is handed over again event by event. Worker tasks live in
the bus's TaskGroup: use the bus as ``async with MemoryBus() as bus``.

A full queue makes ``publish`` wait (back-pressure: the sync ingest then answers its
sites later instead of the process growing without limit).

Not durable across a crash: events queued but not handled are lost with the process. The
sync ingest marks events published only once every group has handled them
(:meth:`MemoryBus.caught_up`) and republishes the others at start; at scale use NATS
JetStream (:mod:`central.infra.bus_nats`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import structlog

from central.infra.bus import BATCH_SIZE, BatchHandler, EventHandler
from central.infra.bus_backlog import ConsumerBacklog, memory_backlog
from central.infra.metrics import CentralMetrics
from common.backoff import backoff_delay
from contract.envelope import CloudEvent

log = structlog.get_logger("central.infra.bus")

RETRY_CAP_S = 5.0  # the longest wait before a handler gets an event again
QUEUE_SIZE = 20_000  # events a group may have waiting before publishers wait


@dataclass
class _Group:
    """One durable consumer of a topic: its queue, handlers and progress."""

    queue: asyncio.Queue[CloudEvent]
    handlers: list[tuple[EventHandler, BatchHandler | None]]
    types: frozenset[str] | None = None  # the only types it is handed (None: all)
    published_at: deque[float] = field(default_factory=deque)  # of those not handled yet
    published: int = 0  # events put in the queue, ever
    handled: int = 0  # events taken out and handled (or dead-lettered), ever
    turn: int = 0
    progress: asyncio.Condition = field(default_factory=asyncio.Condition)


class MemoryBus:
    def __init__(
        self,
        max_attempts: int = 8,
        base_delay: float = 0.05,
        metrics: CentralMetrics | None = None,
        *,
        batch_size: int = BATCH_SIZE,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        if not 0 < base_delay <= RETRY_CAP_S:
            raise ValueError(f"need 0 < base_delay <= {RETRY_CAP_S}")
        if batch_size < 1 or queue_size < 1:
            raise ValueError("need batch_size >= 1 and queue_size >= 1")
        self._groups: dict[tuple[str, str], _Group] = {}
        self._tasks: asyncio.TaskGroup | None = None
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._batch_size = batch_size
        self._queue_size = queue_size
        self._workers: list[asyncio.Task[None]] = []
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

    async def stop_delivery(self) -> None:
        """Stop handing events to the consumers and wait until no handler runs (before
        the services' databases close: a handler cut off later would use a closed one)."""
        for task in self._workers:
            task.cancel()
        if self._workers:
            await asyncio.wait(self._workers)

    def _start_worker(self, key: tuple[str, str]) -> None:
        assert self._tasks is not None
        task = self._tasks.create_task(self._work(key), name=f"bus:{key[0]}:{key[1]}")
        self._workers.append(task)

    def problem(self) -> str | None:
        """Why the bus cannot deliver now (for /readyz), or None."""
        return None if self._tasks is not None else "the in-process bus is not running"

    async def pending(self) -> dict[tuple[str, str], int]:
        """Events not yet handled per (topic, consumer): queued, or in its handler."""
        return {key: group.published - group.handled for key, group in self._groups.items()}

    async def publish(self, topic: str, event: CloudEvent) -> None:
        await self.publish_many(topic, (event,))

    async def publish_many(self, topic: str, events: Sequence[CloudEvent]) -> None:
        if self._metrics is not None:
            self._metrics.bus_published.labels(topic).inc(len(events))
        for key, group in self._groups.items():
            if key[0] == topic:
                for event in events:
                    if group.types is not None and event.type not in group.types:
                        continue
                    await group.queue.put(event)  # waits while the group is full
                    group.published += 1
                    group.published_at.append(time.monotonic())

    async def subscribe(
        self,
        topic: str,
        durable: str,
        handler: EventHandler,
        batch_handler: BatchHandler | None = None,
        types: frozenset[str] | None = None,
    ) -> None:
        key = (topic, durable)
        group = self._groups.get(key)
        if group is not None:
            # same durable name again (a second replica in one process): share the work
            group.handlers.append((handler, batch_handler))
            return
        self._groups[key] = _Group(
            asyncio.Queue(self._queue_size), [(handler, batch_handler)], types
        )
        if self._tasks is not None:
            self._start_worker(key)

    async def caught_up(self) -> None:
        """Wait until every group has handled what was published before this call
        (events published meanwhile do not make it wait longer)."""
        marks = [(group, group.published) for group in self._groups.values()]
        for group, mark in marks:
            async with group.progress:
                while group.handled < mark:
                    await group.progress.wait()

    async def idle(self) -> None:
        """Wait until every queue is empty and no handler runs (for tests and shutdown)."""
        while any(g.handled < g.published for g in self._groups.values()):
            await self.caught_up()

    async def _work(self, key: tuple[str, str]) -> None:
        group = self._groups[key]
        while True:
            batch = [await group.queue.get()]
            while len(batch) < self._batch_size and not group.queue.empty():
                batch.append(group.queue.get_nowait())
            try:
                handler, batch_handler = group.handlers[group.turn % len(group.handlers)]
                group.turn += 1
                if (
                    batch_handler is None
                    or len(batch) == 1
                    or not await self._deliver_batch(key, batch_handler, batch)
                ):
                    for event in batch:
                        await self._deliver(key, handler, event)
            finally:
                for _ in batch:
                    group.queue.task_done()
                group.handled += len(batch)
                for _ in batch:
                    group.published_at.popleft()
                async with group.progress:
                    group.progress.notify_all()

    async def _deliver_batch(
        self, key: tuple[str, str], batch_handler: BatchHandler, batch: list[CloudEvent]
    ) -> bool:
        """Hand the batch over at once; ``False`` if it failed (then event by event)."""
        try:
            await batch_handler(batch)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001 - retried event by event
            log.warning(
                "bus.batch.failed",
                topic=key[0],
                durable=key[1],
                events=len(batch),
                first_event_id=batch[0].id,
                error=repr(err),
            )
            return False
        if self._metrics is not None:
            self._metrics.bus_consumed.labels(key[0], key[1], "handled").inc(len(batch))
        return True

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
        now = time.monotonic()
        ages = {
            key: now - group.published_at[0]
            for key, group in self._groups.items()
            if group.published_at
        }
        return memory_backlog(await self.pending(), topics, ages)
