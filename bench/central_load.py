"""Light simulated sites posting to central's ingest replicas as an edge's uplink does.

A :class:`SitePoster` keeps the site's events not yet acknowledged (its outbox) and posts
them in order, one batch in flight, up to ``batch`` events, gzip above the edge's
threshold, with the site's own key. An answer central failed to give (a refused
connection, a 5xx, a replica killed mid-request) is retried on the next replica, as an
edge behind a load balancer would; a 409 naming the expected sequence drops what central
already holds. Every acknowledged POST is recorded as a :class:`~bench.central_lag.Batch`.
"""

from __future__ import annotations

import asyncio
import gzip
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from bench.central_lag import Batch
from bench.central_sites import SiteEvents, topics_of
from contract.sync_api import EVENTS_PATH
from edge.uplink.sync import GZIP_ABOVE

RETRY_S = 0.2
POST_TIMEOUT_S = 120.0


@dataclass
class Posting:
    """What every site's POSTs gave: the acknowledged batches, and the failures retried."""

    batches: list[Batch] = field(default_factory=list)
    retries: dict[str, int] = field(default_factory=dict)  # why -> how many

    def retried(self, why: str) -> None:
        self.retries[why] = self.retries.get(why, 0) + 1

    def since(self, began: float) -> list[Batch]:
        return [b for b in self.batches if b.began >= began]


@dataclass
class SitePoster:
    events: SiteEvents
    key: str
    replica: int  # the ingest replica it posts to first
    pending: list[dict[str, Any]] = field(default_factory=list)  # made, not acknowledged

    def make(self, n: int) -> None:
        self.pending.extend(self.events.take(n, datetime.now(UTC)))

    async def flush(
        self,
        clients: Sequence[httpx.AsyncClient],
        batch: int,
        posting: Posting,
        deadline: float = math.inf,
    ) -> None:
        """Post everything pending, in order, one batch at a time, until the monotonic
        ``deadline``: a batch not answered by then is given up (stays pending). httpx's
        own timeout ends it, not a cancellation: a connection pool whose requests are
        cancelled in hundreds at once was seen to hang the next ones."""
        headers = {
            "Authorization": f"Bearer {self.key}",
            "Content-Type": "application/json",
        }
        while self.pending and (left := deadline - time.monotonic()) > 0:
            events = self.pending[:batch]
            body = orjson.dumps({"events": events})
            sent = dict(headers)
            if len(body) > GZIP_ABOVE:
                body = gzip.compress(body, compresslevel=5)
                sent["Content-Encoding"] = "gzip"
            began = time.monotonic()
            try:
                reply = await clients[self.replica].post(
                    EVENTS_PATH, content=body, headers=sent, timeout=min(left, POST_TIMEOUT_S)
                )
            except httpx.TimeoutException:
                if time.monotonic() >= deadline:
                    return
                await self._failover(posting, "timeout", len(clients))
                continue
            except httpx.TransportError as err:
                await self._failover(posting, type(err).__name__, len(clients))
                continue
            if reply.status_code == 200:
                last = int(reply.json()["last_sequence"])
                posting.batches.append(
                    Batch(began, time.monotonic(), len(events), topics_of(events))
                )
                self._acknowledged(last)
            elif reply.status_code == 409 and "expected_sequence" in reply.text:
                self._acknowledged(int(reply.json()["expected_sequence"]) - 1)
            elif reply.status_code >= 500 or reply.status_code in (409, 429):
                # 409 without a sequence: a batch of this site in flight elsewhere won a race
                await self._failover(posting, f"HTTP {reply.status_code}", len(clients))
            else:
                raise RuntimeError(f"{self.events.site_id}: HTTP {reply.status_code} {reply.text}")

    def _acknowledged(self, last: int) -> None:
        self.pending = [e for e in self.pending if e["sequence"] > last]

    async def _failover(self, posting: Posting, why: str, replicas: int) -> None:
        posting.retried(why)
        self.replica = (self.replica + 1) % replicas
        await asyncio.sleep(RETRY_S * (1 + random.random()))


async def steady(
    posters: Sequence[SitePoster],
    clients: Sequence[httpx.AsyncClient],
    *,
    rate: float,
    seconds: float,
    interval: float,
    batch: int,
    posting: Posting,
) -> None:
    """For ``seconds``, every site makes its share of ``rate`` events/s (0: as many as
    central acknowledges in full batches) and posts what is due every ``interval`` s.

    A site makes its events only as it posts them, at most ``batch`` at a time: when
    central falls behind, a site posts full batches back to back and the events it owes
    are never made (the offered rate is not reached, and the report shows it). The phase
    ends on time: a batch still in flight then is given up and stays pending (central may
    have stored it: sent again, it is answered as duplicates), as an edge's would."""
    per_site = rate / len(posters)
    started = time.monotonic()
    end = started + seconds

    async def site(poster: SitePoster) -> None:
        made = 0
        await asyncio.sleep(random.random() * interval)  # sites are not in step
        while (now := time.monotonic()) < end:
            owed = batch if rate <= 0 else int(per_site * (now - started)) - made
            count = min(owed, batch)
            poster.make(count)
            made += count
            await poster.flush(clients, batch, posting, deadline=end)
            if rate > 0 and owed <= batch:  # caught up: wait for the next events
                await asyncio.sleep(max(0.0, min(end, now + interval) - time.monotonic()))

    async with asyncio.TaskGroup() as tasks:
        for poster in posters:
            tasks.create_task(site(poster))


async def storm(
    posters: Sequence[SitePoster],
    clients: Sequence[httpx.AsyncClient],
    *,
    backlog: int,
    batch: int,
    posting: Posting,
    within: float,
) -> None:
    """Every site comes back at once with ``backlog`` more events and posts all it has;
    what is not acknowledged after ``within`` s is given up (stays pending)."""
    for poster in posters:
        poster.make(backlog)

    deadline = time.monotonic() + within
    async with asyncio.TaskGroup() as tasks:
        for poster in posters:
            tasks.create_task(poster.flush(clients, batch, posting, deadline=deadline))
