"""Central's sync ingest: events acknowledged per second, on SQLite and on PostgreSQL.

Starts central all-in-one (``evpark central run``) as a subprocess on a free port, with
its databases on SQLite files in a temporary directory or in a fresh PostgreSQL
database, creates one site key per simulated site, and has every site post batches of
CloudEvents (``POST /sync/v1/events``, one batch in flight per site, gap-free sequences)
for a fixed time. Prints events/s (events central stored and acknowledged), batches/s
and the p50/p99 batch latency. The in-process bus delivers the events to the services
at the same time, as in production.

    python -m bench.central_ingest                      # both backends, 10 s each
    python -m bench.central_ingest --backend sqlite --sites 16 --batch 200 --seconds 20
    python -m bench.central_ingest --pg-dsn postgresql://postgres@127.0.0.1:5432/postgres

Each run takes about ``--seconds`` plus start-up (a few seconds) per backend.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.harness.ports import free_port
from tests.harness.processes import (
    DaemonProcess,
    ProcessFailed,
    central_run_command,
    create_site_key,
)


def make_batch(site: str, first: int, size: int) -> bytes:
    now = datetime.now(UTC).isoformat()
    events = [
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": f"/sites/{site}",
            "type": "sensor.status",
            "time": now,
            "sequence": seq,
            "data": {"sensor_id": f"sensor-{seq % 50}", "slot_id": f"S{seq % 50}", "online": True},
        }
        for seq in range(first, first + size)
    ]
    return json.dumps({"events": events}).encode()


async def run_site(
    client: httpx.AsyncClient,
    site: str,
    key: str,
    batch: int,
    stop_at: float,
    sequence: int = 1,
) -> tuple[int, list[float]]:
    """Post batches until ``stop_at`` (at least one), starting at ``sequence``."""
    stored, latencies = 0, []
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    while True:
        body = make_batch(site, sequence, batch)
        started = time.perf_counter()
        r = await client.post("/sync/v1/events", content=body, headers=headers)
        latencies.append(time.perf_counter() - started)
        r.raise_for_status()
        stored += r.json()["stored"]
        sequence += batch
        if time.monotonic() >= stop_at:
            return stored, latencies


def create_db(dsn: str) -> tuple[str, str]:
    """A fresh database next to ``dsn``: (SQLAlchemy URL, name)."""
    import asyncpg

    name = f"evpark_bench_{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    base = dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}", name


def drop_db(dsn: str, name: str) -> None:
    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


def bench(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="evpark-bench-") as tmp:
        env = {
            "EVPARK_CENTRAL_DATA_DIR": tmp,
            "EVPARK_CENTRAL_RATE_LIMIT__ENABLED": "false",
            "EVPARK_LOG_FORMAT": "json",
        }
        db_name = None
        if backend == "postgres":
            database_url, db_name = create_db(args.pg_dsn)
            env["EVPARK_CENTRAL_DATABASE_URL"] = database_url
        try:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            central = DaemonProcess(
                "central", central_run_command(port), Path(tmp) / "central.log", env
            )
            try:
                keys = {
                    site: create_site_key(site, env=env)
                    for site in (f"bench-{i}" for i in range(args.sites))
                }
                central.start()
                central.wait_healthy(f"{url}/healthz", within=60)
                return asyncio.run(measure(url, keys, args))
            except ProcessFailed as err:
                raise SystemExit(str(err)) from None
            finally:
                central.stop(within=20)
        finally:
            if db_name is not None:
                drop_db(args.pg_dsn, db_name)


async def measure(url: str, keys: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=len(keys) + 2)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        # warm-up: one small batch per site
        for site, key in keys.items():
            await run_site(client, site, key, 1, 0.0)
        started = time.monotonic()
        stop_at = started + args.seconds
        results = await asyncio.gather(
            *(run_site(client, site, key, args.batch, stop_at, 2) for site, key in keys.items())
        )
        elapsed = time.monotonic() - started
    stored = sum(r[0] for r in results)
    latencies = sorted(lat for r in results for lat in r[1])
    return {
        "events_per_s": round(stored / elapsed),
        "batches_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
        "events": stored,
        "seconds": round(elapsed, 1),
        "sites": len(keys),
        "batch": args.batch,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--sites", type=int, default=8, help="concurrent sites")
    parser.add_argument("--batch", type=int, default=100, help="events per batch")
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring time per backend")
    parser.add_argument(
        "--pg-dsn",
        default=os.environ.get(
            "EVPARK_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="an admin connection; a temporary database is created next to it",
    )
    parser.add_argument("--json", action="store_true", help="one JSON line per backend")
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for backend in backends:
        result = {"backend": backend, **bench(backend, args)}
        if args.json:
            sys.stdout.write(json.dumps(result) + "\n")
        else:
            sys.stdout.write(
                f"{backend:9s} {result['events_per_s']:>7} events/s  "
                f"{result['batches_per_s']:>6} batches/s  p50 {result['p50_ms']} ms  "
                f"p99 {result['p99_ms']} ms  ({result['events']} events, {result['sites']} "
                f"sites x {result['batch']}/batch, {result['seconds']} s)\n"
            )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
