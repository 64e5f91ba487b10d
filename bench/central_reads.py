"""API reads timed while the central scale bench loads central: what a driver's app asks
(``GET /parking/status`` of a site, ``GET /charging/status/{vehicle}``), at a fixed rate
whatever the answers take (open loop: a slow answer does not hold the next read back),
each given up after ``READ_TIMEOUT_S`` (counted unanswered)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from bench.central_lag import weighted_percentile

VEHICLE: Final = "bench-car"
READ_TIMEOUT_S: Final = 10.0


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


@dataclass
class Reads:
    """Route -> seconds of each answer, failures, and reads asked."""

    times: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    asked: dict[str, int] = field(default_factory=dict)
    timed_out: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        out = {}
        for route, asked in self.asked.items():
            timed = [(t, 1) for t in self.times.get(route, [])]
            out[route] = {
                "requests": asked,
                "p50_ms": ms(weighted_percentile(timed, 0.5)),
                "p99_ms": ms(weighted_percentile(timed, 0.99)),
                "errors": self.errors.get(route, 0),
                # given up after READ_TIMEOUT_S: slower than anything timed
                "unanswered": self.timed_out.get(route, 0),
            }
        return out


async def read_api(
    urls: Sequence[str],
    key: str,
    sites: Sequence[str],
    rate: float,
    reads: Reads,
    stop: asyncio.Event,
) -> None:
    """``rate`` reads/s until ``stop`` is set (then the reads in flight end), by turns the
    parking status of a random site and the vehicle's charging status, spread over
    ``urls`` (the ingest replicas), on clients of their own."""
    headers = {"Authorization": f"Bearer {key}"}

    async def read(client: httpx.AsyncClient, route: str, path: str) -> None:
        reads.asked[route] = reads.asked.get(route, 0) + 1
        began = time.monotonic()
        try:
            ok = (await client.get(path, headers=headers)).status_code == 200
        except httpx.TimeoutException:
            reads.timed_out[route] = reads.timed_out.get(route, 0) + 1
            return
        except httpx.TransportError:
            ok = False
        reads.times.setdefault(route, []).append(time.monotonic() - began)
        if not ok:
            reads.errors[route] = reads.errors.get(route, 0) + 1

    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=READ_TIMEOUT_S))
            for url in urls
        ]
        async with asyncio.TaskGroup() as tasks:
            turn = 0
            while not stop.is_set():
                client = clients[turn % len(clients)]
                if turn % 2 == 0:
                    path = f"/parking/status?site_id={random.choice(sites)}"
                    tasks.create_task(read(client, "GET /parking/status", path))
                else:
                    path = f"/charging/status/{VEHICLE}"
                    tasks.create_task(read(client, "GET /charging/status/{vehicle}", path))
                turn += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1 / rate)
