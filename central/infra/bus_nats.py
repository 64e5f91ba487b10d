"""The bus on NATS JetStream (at scale).

One stream per topic (``EVPARK_PARKING_EVENTS`` for ``parking.events``, ...), created on
first use, file storage, with a duplicate window so a republished event id is stored
once (``Nats-Msg-Id``). Its replicas and retention come from the settings
(``bus_stream_replicas``, ``bus_stream_max_age_days``); a stream found with others is
updated to them (JetStream may refuse a change of replicas: that is logged, not fatal).
Publishing several events sends them all and then waits for their acknowledgements
together. Each ``subscribe(topic, durable, handler, batch_handler)`` is a durable pull
consumer: replicas using the same durable name share the work, each name gets every
event. A fetch of up to ``fetch_batch`` events goes to the batch handler, acknowledged
once it returns; if it raises, the events go to ``handler`` one by one. A handler that
raises gets the event redelivered after a backoff (``nak`` with a delay); after
``max_deliver`` attempts JetStream stops redelivering it and it is logged as
dead-lettered. Events a killed process held are redelivered after ``ack_wait_s``. Fetch
loops live in the bus's TaskGroup: ``async with NatsBus(url) as bus``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import nats
import orjson
import structlog
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RetentionPolicy, StreamConfig
from nats.js.errors import APIError, BadRequestError, NotFoundError

from central.infra.bus import BATCH_SIZE, BatchHandler, EventHandler
from central.infra.bus_backlog import ConsumerBacklog, nats_backlog
from central.infra.metrics import CentralMetrics
from common.backoff import Backoff, backoff_delay
from common.masking import mask_url
from contract.envelope import CloudEvent
from contract.sync_api import EventBatch

log = structlog.get_logger("central.infra.bus")

FIRST_CONNECT_S = 15.0
PUBLISH_TIMEOUT_S = 5.0  # JetStream's acknowledgements of one publish_many
MESSAGE_BYTES = 512 * 1024  # a message of several events at most (NATS allows 1 MB)
MESSAGE_EVENTS = 500  # events in one message at most
BATCH_HEADER = "Evpark-Events"
FETCH_MORE_S = 0.05  # how long a fetch waits for more once it has one message
STREAM_EXISTS = 10058  # JetStream's error code: a stream of that name exists


class BusUnavailable(Exception):
    """The bus cannot be reached (transient: the caller may retry)."""


class StreamRefused(Exception):
    """JetStream refuses to create a stream as configured (permanent: a setting to change)."""


def stream_name(subject: str) -> str:
    return "EVPARK_" + re.sub(r"[^A-Za-z0-9]", "_", subject).upper()


def consumer_name(durable: str, topic: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{durable}__{topic}")


@dataclasses.dataclass(frozen=True)
class _Consumer:
    topic: str
    durable: str
    handler: EventHandler
    batch_handler: BatchHandler | None
    types: frozenset[str] | None = None  # the only types it is handed (None: all)


@dataclasses.dataclass(frozen=True)
class StreamLimits:
    replicas: int = 1
    max_age_s: float = 7 * 24 * 3600


class NatsBus:
    def __init__(
        self,
        url: str,
        namespace: str = "",
        max_deliver: int = 10,
        fetch_batch: int = BATCH_SIZE,
        ack_wait_s: float = 30.0,
        limits: StreamLimits | None = None,
        metrics: CentralMetrics | None = None,
        first_connect_s: float = FIRST_CONNECT_S,
    ) -> None:
        """``namespace`` prefixes subjects and stream names (``<ns>.parking.events``);
        ``first_connect_s``: how long the first connection may take before start fails."""
        self._url = url
        self._limits = limits or StreamLimits()
        self._metrics = metrics
        self._first_connect_s = first_connect_s
        self._consumers: list[tuple[str, str, str, str]] = []  # stream, name, topic, durable
        self._prefix = f"{namespace}." if namespace else ""
        self._max_deliver = max_deliver
        self._fetch_batch = fetch_batch
        self._ack_wait_s = ack_wait_s
        self._nc: Any = None
        self._js: Any = None
        self._streams: set[str] = set()
        self._tasks: asyncio.TaskGroup | None = None
        self._loops: list[asyncio.Task[None]] = []
        self._pending: list[_Consumer] = []

    async def __aenter__(self) -> Self:
        try:
            # reconnects are unbounded once connected; the first connect is not (nats-py
            # would retry it for ever: a start that hangs with no word of why)
            async with asyncio.timeout(self._first_connect_s):
                self._nc = await nats.connect(
                    self._url, connect_timeout=3, max_reconnect_attempts=-1, reconnect_time_wait=1
                )
        except (OSError, TimeoutError, NatsTimeoutError, nats.errors.NoServersError) as err:
            raise BusUnavailable(
                f"cannot connect to NATS at {mask_url(self._url)} (bus_url): {err!r}"
            ) from err
        self._js = self._nc.jetstream()
        self._tasks = asyncio.TaskGroup()
        await self._tasks.__aenter__()
        for consumer in self._pending:
            await self._start_consumer(consumer)
        self._pending.clear()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in self._loops:
            task.cancel()
        if self._tasks is not None:
            await self._tasks.__aexit__(exc_type, exc, tb)
        self._tasks = None
        self._loops.clear()
        if self._nc is not None:
            # every handled message is acked already; draining would wait for the
            # cancelled pull requests (up to its 30 s timeout)
            await self._nc.close()
            self._nc = None

    async def stop_delivery(self) -> None:
        """Stop fetching and wait until no handler runs (before the services' databases
        close); what was fetched and not acknowledged comes again after ``ack_wait_s``."""
        for task in self._loops:
            task.cancel()
        if self._loops:
            await asyncio.wait(self._loops)

    def subject(self, topic: str) -> str:
        return self._prefix + topic

    async def _ensure_stream(self, topic: str) -> str:
        subject = self.subject(topic)
        name = stream_name(subject)
        if name in self._streams:
            return name
        try:
            info = await self._js.stream_info(name)
        except NotFoundError:
            try:
                created = await self._js.add_stream(
                    StreamConfig(
                        name=name,
                        subjects=[subject],
                        retention=RetentionPolicy.LIMITS,
                        max_age=self._limits.max_age_s,
                        num_replicas=self._limits.replicas,
                        duplicate_window=600,
                    )
                )
                log.info(
                    "bus.nats.stream_created",
                    stream=name,
                    topic=topic,
                    replicas=created.config.num_replicas,
                    max_age_s=self._limits.max_age_s,
                )
                self._check_replicas(name, created.config)
            except BadRequestError as err:
                if err.err_code != STREAM_EXISTS:
                    raise StreamRefused(
                        f"NATS refuses stream {name} with {self._limits.replicas} replica(s), "
                        f"max age {self._limits.max_age_s:g} s: {err.description} (settings "
                        "bus_stream_replicas, bus_stream_max_age_days)"
                    ) from err
                # another process created it at the same moment
                info = await self._js.stream_info(name)
                await self._align_stream(name, info.config)
            except APIError as err:
                raise StreamRefused(
                    f"NATS refuses stream {name} with {self._limits.replicas} replica(s): "
                    f"{err.description} (setting bus_stream_replicas)"
                ) from err
        else:
            await self._align_stream(name, info.config)
        self._streams.add(name)
        return name

    async def _align_stream(self, name: str, config: StreamConfig) -> None:
        """Update a stream whose replicas or retention differ from the settings."""
        wanted = dataclasses.replace(
            config, num_replicas=self._limits.replicas, max_age=self._limits.max_age_s
        )
        if config.num_replicas == wanted.num_replicas and _same_age(config.max_age, wanted.max_age):
            return
        try:
            updated = await self._js.update_stream(wanted)
        except APIError as err:
            # e.g. more replicas than the cluster has nodes: the stream keeps working as it is
            log.warning(
                "bus.nats.stream_not_updated",
                stream=name,
                replicas=config.num_replicas,
                wanted_replicas=self._limits.replicas,
                max_age_s=config.max_age,
                wanted_max_age_s=self._limits.max_age_s,
                reason=err.description or str(err),
            )
            return
        log.info(
            "bus.nats.stream_updated",
            stream=name,
            replicas=updated.config.num_replicas,
            max_age_s=updated.config.max_age,
            was_replicas=config.num_replicas,
            was_max_age_s=config.max_age,
        )
        self._check_replicas(name, updated.config)

    def _check_replicas(self, name: str, config: StreamConfig) -> None:
        """A server that is not clustered keeps 1 replica whatever is asked: say so."""
        if (config.num_replicas or 1) != self._limits.replicas:
            log.warning(
                "bus.nats.stream_replicas_limited",
                stream=name,
                replicas=config.num_replicas or 1,
                wanted_replicas=self._limits.replicas,
                reason="the NATS server keeps fewer replicas (not clustered, or too few nodes)",
            )

    async def publish(self, topic: str, event: CloudEvent) -> None:
        await self.publish_many(topic, (event,))

    async def publish_many(self, topic: str, events: Sequence[CloudEvent]) -> None:
        """Send them in as few messages as fit (:func:`pack`), then wait for JetStream's
        acknowledgements together: one round trip per call, not per event (order is
        kept: one connection, one stream)."""
        if not events:
            return
        await self._ensure_stream(topic)
        subject = self.subject(topic)
        limit = min(MESSAGE_BYTES, int(getattr(self._nc, "max_payload", 0) or MESSAGE_BYTES))
        acks = [
            await self._js.publish_async(
                subject, payload, wait_stall=PUBLISH_TIMEOUT_S, headers=headers
            )
            for payload, headers in pack(events, limit)
        ]
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                await asyncio.gather(*acks)
        finally:
            for ack in acks:  # none left waiting for ever on a lost answer
                ack.cancel()
        if self._metrics is not None:
            self._metrics.bus_published.labels(topic).inc(len(events))

    def problem(self) -> str | None:
        """Why the bus cannot deliver now (for /readyz), or None."""
        if self._nc is None:
            return "not connected to NATS"
        if not self._nc.is_connected:
            return f"NATS connection lost ({self._url.rpartition('@')[2]}), reconnecting"
        return None

    async def pending(self) -> dict[tuple[str, str], int]:
        """Messages not yet handled per (topic, consumer): not yet delivered (num_pending)
        and delivered but not acknowledged (num_ack_pending). A message carries the
        events of one upload of a topic (up to ``MESSAGE_EVENTS``): zero means none waits."""
        out: dict[tuple[str, str], int] = {}
        for stream, name, topic, durable in self._consumers:
            info = await self._js.consumer_info(stream, name, timeout=2)
            out[(topic, durable)] = int(info.num_pending or 0) + int(info.num_ack_pending or 0)
        return out

    async def subscribe(
        self,
        topic: str,
        durable: str,
        handler: EventHandler,
        batch_handler: BatchHandler | None = None,
        types: frozenset[str] | None = None,
    ) -> None:
        consumer = _Consumer(topic, durable, handler, batch_handler, types)
        if self._tasks is None:
            self._pending.append(consumer)
            return
        await self._start_consumer(consumer)

    async def _start_consumer(self, consumer: _Consumer) -> None:
        assert self._tasks is not None
        topic, durable = consumer.topic, consumer.durable
        stream = await self._ensure_stream(topic)
        name = consumer_name(durable, topic)
        sub = await self._js.pull_subscribe(
            self.subject(topic),
            durable=name,
            stream=stream,
            config=ConsumerConfig(
                durable_name=name,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                max_deliver=self._max_deliver,
                ack_wait=self._ack_wait_s,
                # a batch in the hands of a replica that died is redelivered after
                # ack_wait; more than this in flight would only wait there
                max_ack_pending=max(1000, 4 * self._fetch_batch),
            ),
        )
        self._consumers.append((stream, name, topic, durable))
        task = self._tasks.create_task(
            self._fetch_loop(sub, consumer), name=f"bus:{topic}:{durable}"
        )
        self._loops.append(task)

    async def _fetch_loop(self, sub: Any, consumer: _Consumer) -> None:
        backoff = Backoff(base=0.2, cap=10.0)
        while True:
            try:
                messages = await self._fetch(sub)
            except (NatsTimeoutError, TimeoutError):
                # nothing to fetch (nats-py raises either): not a failure to back off from,
                # or an idle consumer would leave the next event waiting up to 10 s
                continue
            except (nats.errors.Error, OSError) as err:
                delay = backoff.next_delay()
                log.warning(
                    "bus.nats.fetch_failed", topic=consumer.topic, error=repr(err), retry_in=delay
                )
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            read = [(msg, await self._read(msg, consumer)) for msg in messages]
            for msg, events in read:
                if events == [] and not msg.is_acked:  # none of its types: handled as it is
                    await msg.ack()
            readable = [(msg, events) for msg, events in read if events]
            if (
                consumer.batch_handler is not None
                and sum(len(events) for _, events in readable) > 1
                and await self._handle_batch(readable, consumer)
            ):
                continue
            for msg, events in readable:
                await self._handle(msg, events, consumer)

    async def _fetch(self, sub: Any) -> list[Any]:
        """The next messages: the first as soon as it is there (waiting up to a second),
        then what else is waiting, up to ``fetch_batch``. One fetch of the whole batch
        would hold the first message until the batch is full or its wait is over (up to
        a second of lag on a quiet stream)."""
        messages: list[Any] = await sub.fetch(1, timeout=1.0)
        if self._fetch_batch > 1:
            with contextlib.suppress(NatsTimeoutError, TimeoutError):  # nothing else waits
                messages += await sub.fetch(self._fetch_batch - 1, timeout=FETCH_MORE_S)
        return messages

    async def _read(self, msg: Any, consumer: _Consumer) -> list[CloudEvent]:
        try:
            return unpack(msg.data, msg.headers, consumer.types)
        except ValueError as err:
            log.error("bus.event.unreadable", topic=consumer.topic, error=str(err))
            await msg.term()
            return []

    async def _handle_batch(
        self, readable: list[tuple[Any, list[CloudEvent]]], consumer: _Consumer
    ) -> bool:
        """Apply the fetched events at once and acknowledge them; ``False`` if the batch
        failed (nothing acknowledged: the caller hands them over one by one)."""
        assert consumer.batch_handler is not None
        events = [event for _, some in readable for event in some]
        try:
            await consumer.batch_handler(events)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001 - retried event by event
            log.warning(
                "bus.batch.failed",
                topic=consumer.topic,
                durable=consumer.durable,
                events=len(events),
                first_event_id=events[0].id,
                error=repr(err),
            )
            return False
        for msg, _ in readable:
            await msg.ack()
        self._count(consumer.topic, consumer.durable, "handled", len(events))
        return True

    async def _handle(self, msg: Any, events: list[CloudEvent], consumer: _Consumer) -> None:
        """Hand a message's events over one by one. If any fails, the message comes back
        after a backoff (those that succeeded are applied again, and ignored as handled);
        at its last delivery the ones that fail are dead-lettered and the rest kept."""
        topic, durable = consumer.topic, consumer.durable
        attempt = int(getattr(msg.metadata, "num_delivered", 1) or 1)
        failed: list[tuple[CloudEvent, Exception]] = []
        for event in events:
            try:
                await consumer.handler(event)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - a handler's failure must not stop the consumer
                failed.append((event, err))
        if not failed:
            await msg.ack()
            self._count(topic, durable, "handled", len(events))
            return
        last = attempt >= self._max_deliver
        self._count(topic, durable, "dead" if last else "failed", len(failed))
        if last:
            for event, problem in failed:
                log.error(
                    "bus.event.dead_lettered",
                    topic=topic,
                    durable=durable,
                    event_id=event.id,
                    error=repr(problem),
                )
            self._count(topic, durable, "handled", len(events) - len(failed))
            await msg.term()
            return
        delay = backoff_delay(attempt - 1, base=0.1, cap=10.0, jitter=0.5, rand=random.random())
        for event, problem in failed:
            log.warning(
                "bus.handler.failed",
                topic=topic,
                durable=durable,
                event_id=event.id,
                attempt=attempt,
                retry_in=round(delay, 3),
                error=repr(problem),
            )
        await msg.nak(delay=delay)

    async def backlog(self, topics: Iterable[str]) -> list[ConsumerBacklog]:
        """Every durable consumer of ``topics``' streams, those of other processes too."""
        return await nats_backlog(
            self._js,
            topics,
            lambda topic: stream_name(self.subject(topic)),
            lambda name: name.split("__", 1)[0],  # consumer_name() joined durable__topic
            datetime.now(UTC),  # the broker stamps messages with its wall clock
        )

    def _count(self, topic: str, durable: str, outcome: str, events: int = 1) -> None:
        if self._metrics is not None and events:
            self._metrics.bus_consumed.labels(topic, durable, outcome).inc(events)


def pack(
    events: Sequence[CloudEvent], limit: int = MESSAGE_BYTES
) -> list[tuple[bytes, dict[str, str]]]:
    """The messages that carry ``events`` in order: one event as itself, several as a
    batch (``{"events": [...]}``, header ``Evpark-Events``) of at most ``limit`` bytes.
    Each message's id (``Nats-Msg-Id``) names its events, so JetStream stores a message
    published again (a republish after a crash) once."""
    messages: list[tuple[bytes, dict[str, str]]] = []
    group: list[tuple[CloudEvent, bytes]] = []
    size = 0

    def flush() -> None:
        if len(group) == 1:
            event, body = group[0]
            messages.append((body, {"Nats-Msg-Id": event.id}))
        elif group:
            first, last = group[0][0], group[-1][0]
            payload = b'{"events":[' + b",".join(body for _, body in group) + b"]}"
            headers = {
                "Nats-Msg-Id": f"{first.id}..{last.id}/{len(group)}",
                BATCH_HEADER: str(len(group)),
            }
            messages.append((payload, headers))
        group.clear()

    for event in events:
        body = event.model_dump_json().encode()
        if group and (size + len(body) + 1 > limit - 32 or len(group) >= MESSAGE_EVENTS):
            flush()
            size = 0
        group.append((event, body))
        size += len(body) + 1
    flush()
    return messages


def unpack(
    data: bytes, headers: dict[str, str] | None, types: frozenset[str] | None = None
) -> list[CloudEvent]:
    """The events of a message :func:`pack` made (``ValueError`` if it is not one); with
    ``types``, only those of these types, the others left unvalidated (most consumers
    want a few types, most events are progress updates)."""
    if types is None:
        if headers and BATCH_HEADER in headers:
            return EventBatch.model_validate_json(data).events
        return [CloudEvent.model_validate_json(data)]
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as err:
        raise ValueError(f"not JSON: {err}") from err
    if not isinstance(raw, dict):
        raise ValueError("not an event nor a batch of events")
    items = raw.get("events") if headers and BATCH_HEADER in headers else [raw]
    if not isinstance(items, list):
        raise ValueError("a batch message without its events")
    return [
        CloudEvent.model_validate(item)
        for item in items
        if isinstance(item, dict) and item.get("type") in types
    ]


def _same_age(seconds: float | None, wanted: float | None) -> bool:
    return abs((seconds or 0.0) - (wanted or 0.0)) < 0.001  # JetStream keeps nanoseconds
