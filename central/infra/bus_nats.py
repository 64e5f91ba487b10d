"""The bus on NATS JetStream (at scale).

One stream per topic (``EVPARK_PARKING_EVENTS`` for ``parking.events``, ...), created on
first use, file storage, with a duplicate window so a republished event id is stored
once (``Nats-Msg-Id``). Its replicas and retention come from the settings
(``bus_stream_replicas``, ``bus_stream_max_age_days``); a stream found with others is
updated to them (JetStream may refuse a change of replicas: that is logged, not fatal). Each ``subscribe(topic, durable, handler)`` is a durable pull
consumer: replicas using the same durable name share the work, each name gets every
event. A handler that raises gets the event redelivered after a backoff (``nak`` with a
delay); after ``max_deliver`` attempts JetStream stops redelivering it and it is logged as
dead-lettered. Fetch loops live in the bus's TaskGroup: ``async with NatsBus(url) as bus``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import nats
import structlog
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RetentionPolicy, StreamConfig
from nats.js.errors import APIError, BadRequestError, NotFoundError

from central.infra.bus import EventHandler
from central.infra.bus_backlog import ConsumerBacklog, nats_backlog
from central.infra.metrics import CentralMetrics
from common.backoff import Backoff, backoff_delay
from common.masking import mask_url
from contract.envelope import CloudEvent

log = structlog.get_logger("central.infra.bus")

FIRST_CONNECT_S = 15.0
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
class StreamLimits:
    replicas: int = 1
    max_age_s: float = 7 * 24 * 3600


class NatsBus:
    def __init__(
        self,
        url: str,
        namespace: str = "",
        max_deliver: int = 10,
        fetch_batch: int = 64,
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
        self._nc: Any = None
        self._js: Any = None
        self._streams: set[str] = set()
        self._tasks: asyncio.TaskGroup | None = None
        self._loops: list[asyncio.Task[None]] = []
        self._pending: list[tuple[str, str, EventHandler]] = []

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
        for topic, durable, handler in self._pending:
            await self._start_consumer(topic, durable, handler)
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
        await self._ensure_stream(topic)
        await self._js.publish(
            self.subject(topic),
            event.model_dump_json().encode(),
            headers={"Nats-Msg-Id": event.id},
            timeout=5,
        )
        if self._metrics is not None:
            self._metrics.bus_published.labels(topic).inc()

    def problem(self) -> str | None:
        """Why the bus cannot deliver now (for /readyz), or None."""
        if self._nc is None:
            return "not connected to NATS"
        if not self._nc.is_connected:
            return f"NATS connection lost ({self._url.rpartition('@')[2]}), reconnecting"
        return None

    async def pending(self) -> dict[tuple[str, str], int]:
        """Events not yet handled per (topic, consumer): not yet delivered (num_pending)
        and delivered but not acknowledged (num_ack_pending)."""
        out: dict[tuple[str, str], int] = {}
        for stream, name, topic, durable in self._consumers:
            info = await self._js.consumer_info(stream, name, timeout=2)
            out[(topic, durable)] = int(info.num_pending or 0) + int(info.num_ack_pending or 0)
        return out

    async def subscribe(self, topic: str, durable: str, handler: EventHandler) -> None:
        if self._tasks is None:
            self._pending.append((topic, durable, handler))
            return
        await self._start_consumer(topic, durable, handler)

    async def _start_consumer(self, topic: str, durable: str, handler: EventHandler) -> None:
        assert self._tasks is not None
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
                ack_wait=30,
            ),
        )
        self._consumers.append((stream, name, topic, durable))
        task = self._tasks.create_task(
            self._fetch_loop(sub, topic, durable, handler), name=f"bus:{topic}:{durable}"
        )
        self._loops.append(task)

    async def _fetch_loop(self, sub: Any, topic: str, durable: str, handler: EventHandler) -> None:
        backoff = Backoff(base=0.2, cap=10.0)
        while True:
            try:
                messages = await sub.fetch(self._fetch_batch, timeout=1.0)
            except NatsTimeoutError:
                continue
            except (nats.errors.Error, OSError) as err:
                delay = backoff.next_delay()
                log.warning("bus.nats.fetch_failed", topic=topic, error=str(err), retry_in=delay)
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            for msg in messages:
                await self._handle(msg, topic, durable, handler)

    async def _handle(self, msg: Any, topic: str, durable: str, handler: EventHandler) -> None:
        try:
            event = CloudEvent.model_validate_json(msg.data)
        except ValueError as err:
            log.error("bus.event.unreadable", topic=topic, error=str(err))
            await msg.term()
            return
        attempt = int(getattr(msg.metadata, "num_delivered", 1) or 1)
        try:
            await handler(event)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001 - a handler's failure must not stop the consumer
            self._count(topic, durable, "dead" if attempt >= self._max_deliver else "failed")
            if attempt >= self._max_deliver:
                log.error(
                    "bus.event.dead_lettered",
                    topic=topic,
                    durable=durable,
                    event_id=event.id,
                    error=repr(err),
                )
                await msg.term()
                return
            delay = backoff_delay(attempt - 1, base=0.1, cap=10.0, jitter=0.5, rand=random.random())
            log.warning(
                "bus.handler.failed",
                topic=topic,
                durable=durable,
                event_id=event.id,
                attempt=attempt,
                retry_in=round(delay, 3),
                error=repr(err),
            )
            await msg.nak(delay=delay)
            return
        await msg.ack()
        self._count(topic, durable, "handled")

    def _count(self, topic: str, durable: str, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.bus_consumed.labels(topic, durable, outcome).inc()

    async def backlog(self, topics: Iterable[str]) -> list[ConsumerBacklog]:
        """Every durable consumer of ``topics``' streams, those of other processes too."""
        return await nats_backlog(
            self._js,
            topics,
            lambda topic: stream_name(self.subject(topic)),
            lambda name: name.split("__", 1)[0],  # consumer_name() joined durable__topic
            datetime.now(UTC),  # the broker stamps messages with its wall clock
        )


def _same_age(seconds: float | None, wanted: float | None) -> bool:
    return abs((seconds or 0.0) - (wanted or 0.0)) < 0.001  # JetStream keeps nanoseconds
