"""How far central's consumers are, seen from NATS JetStream, and the end-to-end lag of the
batches sites posted: no change to central needed.

:class:`BusWatch` samples, every ``interval`` s, each topic's stream (its last sequence)
and every durable consumer on it (``ack_floor.stream_seq``, pending, ack-pending).
:func:`batch_lags` then gives each acknowledged batch its lag: sync publishes a batch
before it answers, so once the answer is in, the batch's events lie at or below the
stream's last sequence sampled next; the batch is applied when the slowest consumer's ack
floor reaches that sequence on every topic the batch went to. Lag = the first sample that
shows it applied (when that answer arrived) - when the site began the POST: an upper
bound, at a resolution of about one interval.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self

from central.infra.bus_nats import stream_name
from contract.envelope import CHARGING_TOPIC, PARKING_TOPIC

TOPICS: Final = (PARKING_TOPIC, CHARGING_TOPIC)


@dataclass(frozen=True)
class TopicState:
    last_seq: int  # the stream's last message
    floor: int  # the slowest consumer's ack floor
    waiting: int  # not delivered + delivered not acked, over every consumer
    consumers: int


@dataclass(frozen=True)
class Sample:
    asked: float  # monotonic time the questions were sent
    answered: float  # ... and the last answer came
    topics: Mapping[str, TopicState]

    def applied(self) -> bool:
        """Every consumer of every topic has acknowledged everything in its stream."""
        return all(s.waiting == 0 and s.floor >= s.last_seq for s in self.topics.values())


@dataclass(frozen=True)
class Batch:
    """One acknowledged POST: when it began and was answered, its events, their topics."""

    began: float
    acked: float
    events: int
    topics: frozenset[str]


class BusWatch:
    """``async with BusWatch(nats_url, namespace) as watch``: a NATS connection of its own;
    :meth:`sample` asks once, :meth:`run` samples until cancelled into ``samples``."""

    def __init__(self, url: str, namespace: str, interval: float = 0.1) -> None:
        self._url = url
        self._streams = {
            topic: stream_name(f"{namespace}.{topic}" if namespace else topic) for topic in TOPICS
        }
        self.interval = interval
        self.samples: list[Sample] = []
        self._nc: Any = None
        self._js: Any = None

    async def __aenter__(self) -> Self:
        import nats

        self._nc = await nats.connect(self._url, connect_timeout=3)
        self._js = self._nc.jetstream()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._nc.close()

    async def sample(self) -> Sample:
        from nats.js.errors import NotFoundError

        asked = time.monotonic()
        topics = {}
        for topic, stream in self._streams.items():
            try:
                info = await self._js.stream_info(stream)
                consumers = await self._js.consumers_info(stream)
            except NotFoundError:  # nothing published to it yet
                topics[topic] = TopicState(0, 0, 0, 0)
                continue
            floors = [c.ack_floor.stream_seq or 0 for c in consumers]
            waiting = sum((c.num_pending or 0) + (c.num_ack_pending or 0) for c in consumers)
            topics[topic] = TopicState(
                info.state.last_seq or 0, min(floors, default=0), waiting, len(consumers)
            )
        return Sample(asked, time.monotonic(), topics)

    async def run(self) -> None:
        while True:
            self.samples.append(await self.sample())
            await asyncio.sleep(self.interval)

    async def until_applied(self, within: float) -> Sample | None:
        """The first sample showing everything applied; None after ``within`` s."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            sample = await self.sample()
            self.samples.append(sample)
            if sample.applied():
                return sample
            await asyncio.sleep(self.interval)
        return None


def batch_lags(batches: Iterable[Batch], samples: Sequence[Sample]) -> list[tuple[float, int]]:
    """(lag s, events) of every batch the samples show applied."""
    asked = [s.asked for s in samples]
    # the floors as seen so far (a floor does not go back; a running max makes it sure),
    # so the sample where one passes a sequence is a bisection
    floors: dict[str, list[int]] = {}
    for topic in TOPICS:
        seen, highest = [], 0
        for sample in samples:
            highest = max(highest, sample.topics[topic].floor)
            seen.append(highest)
        floors[topic] = seen
    out = []
    for batch in batches:
        first = bisect.bisect_left(asked, batch.acked)  # asked after the answer was in
        if first >= len(samples):
            continue
        applied = max(
            bisect.bisect_left(floors[t], samples[first].topics[t].last_seq, lo=first)
            for t in batch.topics
        )
        if applied < len(samples):
            out.append((samples[applied].answered - batch.began, batch.events))
    return out


def weighted_percentile(values: Sequence[tuple[float, int]], q: float) -> float | None:
    """The ``q`` (0..1) quantile of values weighted by their counts; None when empty."""
    ordered = sorted(values)
    total = sum(weight for _, weight in ordered)
    if total == 0:
        return None
    rank, seen = q * total, 0
    for value, weight in ordered:
        seen += weight
        if seen >= rank:
            return value
    return ordered[-1][0]


def applied_events(first: Sample, last: Sample) -> int:
    """Messages the slowest consumer of each topic acknowledged between two samples (a
    message carries the events of one upload of one topic)."""
    return sum(last.topics[t].floor - first.topics[t].floor for t in TOPICS if t in first.topics)
