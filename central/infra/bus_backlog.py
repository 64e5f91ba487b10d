"""Every durable consumer's backlog on the bus: what is not yet applied, and since when.

``/metrics/health`` needs the lag of all consumers, not only its own process's: on NATS
JetStream each stream's consumers are listed, whichever process runs them; the
in-process bus holds all its groups itself, with the time each event was published.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from nats.js.errors import NotFoundError


@dataclass(frozen=True)
class ConsumerBacklog:
    topic: str
    consumer: str  # the durable name (``parking``, ``analytics``, ``sync``...)
    pending: int  # events not yet applied: not delivered, or delivered and not acknowledged
    oldest_age_s: float | None = None  # since the oldest of them reached the bus, if known


@runtime_checkable
class BacklogSource(Protocol):
    async def backlog(self, topics: Iterable[str]) -> list[ConsumerBacklog]:
        """Every durable consumer of ``topics``, in this process or not."""
        ...


def memory_backlog(
    pending: Mapping[tuple[str, str], int],
    topics: Iterable[str],
    ages: Mapping[tuple[str, str], float] | None = None,
) -> list[ConsumerBacklog]:
    """``ages``: per group, seconds since its oldest unhandled event was published."""
    wanted = set(topics)
    return [
        ConsumerBacklog(topic, consumer, waiting, (ages or {}).get((topic, consumer)))
        for (topic, consumer), waiting in sorted(pending.items())
        if topic in wanted
    ]


async def nats_backlog(
    js: Any,
    topics: Iterable[str],
    stream_of: Callable[[str], str],
    durable_of: Callable[[str], str],
    now: datetime,
) -> list[ConsumerBacklog]:
    """``stream_of(topic)``: the topic's stream; ``durable_of(consumer name)``: the durable
    name it was made from. A stream not created yet has no consumers."""
    out: list[ConsumerBacklog] = []
    for topic in topics:
        stream = stream_of(topic)
        try:
            consumers = await js.consumers_info(stream)
        except NotFoundError:
            continue
        for info in consumers:
            pending = int(info.num_pending or 0) + int(info.num_ack_pending or 0)
            age = None
            if pending:
                # every event up to the ack floor is applied: the next one is the oldest not
                floor = info.ack_floor.stream_seq if info.ack_floor is not None else 0
                age = await _age(js, stream, floor + 1, now)
            out.append(ConsumerBacklog(topic, durable_of(info.name), pending, age))
    return sorted(out, key=lambda b: (b.topic, b.consumer))


async def _age(js: Any, stream: str, seq: int, now: datetime) -> float | None:
    try:
        message = await js.get_msg(stream, seq)
    except NotFoundError:
        return None  # gone (retention) since the consumer info was read
    stored: datetime | None = message.time  # when it reached the stream
    return None if stored is None else max(0.0, (now - stored).total_seconds())
