"""API reads timed while the central scale bench loads central: what a driver's app asks
(``GET /parking/status`` of a site, ``GET /charging/status/{vehicle}``), at a fixed rate
whatever the answers take (open loop: a slow answer does not hold the next read back)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from bench.central_lag import weighted_percentile

VEHICLE: Final = "bench-car"


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


@dataclass
class Reads:
    """Route -> seconds of each answer, failures, and reads asked."""

    times: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    asked: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        out = {}
        for route, asked in self.asked.items():
            timed = [(t, 1) for t in self.times.get(route, [])]
            out[route] = {
                "requests": asked,
                "p50_ms": ms(weighted_percentile(timed, 0.5)),
                "p99_ms": ms(weighted_percentile(timed, 0.99)),
                "errors": self.errors.get(route, 0),
                # still waiting when the load ended: slower than anything timed
                "unanswered": asked - len(timed),
            }
        return out


async def read_api(
    clients: Sequence[httpx.AsyncClient],
    key: str,
    sites: Sequence[str],
    rate: float,
    reads: Reads,
) -> None:
    """Until cancelled: ``rate`` reads/s, by turns the parking status of a random site and
    the vehicle's charging status, spread over ``clients`` (the ingest replicas)."""
    headers = {"Authorization": f"Bearer {key}"}

    async def read(client: httpx.AsyncClient, route: str, path: str) -> None:
        reads.asked[route] = reads.asked.get(route, 0) + 1
        began = time.monotonic()
        try:
            ok = (await client.get(path, headers=headers)).status_code == 200
        except httpx.TransportError:
            ok = False
        reads.times.setdefault(route, []).append(time.monotonic() - began)
        if not ok:
            reads.errors[route] = reads.errors.get(route, 0) + 1

    async with asyncio.TaskGroup() as tasks:
        turn = 0
        while True:
            client = clients[turn % len(clients)]
            if turn % 2 == 0:
                site = random.choice(sites)
                tasks.create_task(
                    read(client, "GET /parking/status", f"/parking/status?site_id={site}")
                )
            else:
                path = f"/charging/status/{VEHICLE}"
                tasks.create_task(read(client, "GET /charging/status/{vehicle}", path))
            turn += 1
            await asyncio.sleep(1 / rate)
