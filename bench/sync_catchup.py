"""Catch-up after a long outage: how fast an edge drains a backlog into central.

Writes ``--events`` (default 100,000) events into a fresh edge outbox through the edge's
own store and repository functions, then starts central (``evpark central run``, on
SQLite, then on PostgreSQL) and the edge (``evpark edge run``) as processes, and measures
the events per second central acknowledges until the backlog is 0 (its sync status
holds the last sequence). Central's services consume the events meanwhile, as in
production.

    .venv/bin/python -m bench.sync_catchup                      # both backends, ~1-2 min
    .venv/bin/python -m bench.sync_catchup --backend sqlite --events 20000 --batch-size 1000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from contract.events import ChargerStatus, SensorStatus
from edge.storage import site_sql as repo
from edge.storage.sqlite import SqliteStore, Unit
from tests.harness.ports import free_port
from tests.harness.processes import (
    DaemonProcess,
    central_run_command,
    create_site_key,
    edge_run_command,
)
from tests.harness.site_config import write_site_toml

SITE = "catchup-site"
PG = os.environ.get("EVPARK_BENCH_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/{db}")


async def fill_outbox(db: Path, count: int) -> None:
    """``count`` events as the site would have written them while central was away."""
    start = datetime.now(UTC) - timedelta(hours=8)
    async with SqliteStore(db) as store:
        for first in range(0, count, 2000):
            unit = Unit(durable=False)  # filling a bench database: no disk sync per chunk
            for n in range(first, min(count, first + 2000)):
                at = start + timedelta(milliseconds=250 * n)
                if n % 2:
                    charger = ChargerStatus(
                        charger_id=f"CP-{n % 8}", evse_id=1, connector_id=1,
                        status=("Available", "Charging", "Finishing")[n % 3],
                        error_code="NoError", online=True,
                    )  # fmt: skip
                    repo.add_outbox_event(unit, charger, f"CP-{n % 8}/1", at)
                else:
                    sensor = SensorStatus(
                        sensor_id=f"S-{n % 16}", slot_id=f"B{n % 16}", online=True,
                        battery=80 + n % 20, rssi=-70,
                    )  # fmt: skip
                    repo.add_outbox_event(unit, sensor, f"S-{n % 16}", at)
            await store.write(unit)


def site_sections(http_port: int, batch_size: int) -> dict[str, Any]:
    """A site with nothing but its outbox to send (no broker: MQTT on a free port)."""
    return {
        "site": {"id": SITE, "environment": "development"},
        "ocpp": {"port": free_port()},
        "http": {"port": http_port},
        "mqtt": {"url": f"mqtt://127.0.0.1:{free_port()}"},
        "central": {"batch_size": batch_size, "batch_interval": 0.2},
    }


async def _pg_database() -> tuple[str, str]:
    name = f"evpark_catchup_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return name, PG.format(db=name)


async def _drop_pg(name: str) -> None:
    admin = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def run_once(backend: str, count: int, batch_size: int, workdir: Path) -> dict[str, float]:
    edge_dir = workdir / "edge"  # made by the caller
    filled = time.monotonic()
    await fill_outbox(edge_dir / "edge.sqlite3", count)
    fill_s = time.monotonic() - filled
    env: dict[str, str] = {}
    pg_name = None
    if backend == "postgresql":
        pg_name, env["EVPARK_CENTRAL_DATABASE_URL"] = await _pg_database()
    port, http_port = free_port(), free_port()
    central_dir = workdir / "central"
    central = DaemonProcess(
        "central",
        central_run_command(port, "--data-dir", str(central_dir)),
        workdir / "central.log",
        env,
    )
    config = write_site_toml(workdir / "site.toml", site_sections(http_port, batch_size))
    url = f"http://127.0.0.1:{port}"
    try:
        await asyncio.to_thread(central.start)
        await asyncio.to_thread(central.wait_healthy, f"{url}/healthz", within=30)
        key = await asyncio.to_thread(create_site_key, SITE, data_dir=central_dir, env=env)
        edge = DaemonProcess(
            "edge",
            edge_run_command(config, edge_dir, "--central-url", url),
            workdir / "edge.log",
            {"EVPARK_CENTRAL__SITE_KEY": key},
        )
        started = time.monotonic()
        await asyncio.to_thread(edge.start)
        first_ack: float | None = None
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=10
        ) as client:
            while True:
                held = int((await client.get("/sync/v1/status")).json()["last_sequence"])
                if held > 0 and first_ack is None:
                    first_ack, first_held = time.monotonic(), held
                if held >= count:
                    done = time.monotonic()
                    break
                if time.monotonic() - started > 170:
                    raise RuntimeError(f"only {held} of {count} events after 170 s")
                await asyncio.sleep(0.1)
        await asyncio.to_thread(edge.stop, 20.0)
    finally:
        await asyncio.to_thread(central.kill)
        if pg_name is not None:
            await _drop_pg(pg_name)
    assert first_ack is not None
    steady = (count - first_held) / max(done - first_ack, 1e-6)
    return {
        "events": count,
        "fill_s": fill_s,
        "total_s": done - started,
        "events_per_s_total": count / (done - started),
        "events_per_s_steady": steady,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=500, help="[central] batch_size")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    with tempfile.TemporaryDirectory(prefix="evpark-catchup-") as tmp:
        for backend in backends:
            (Path(tmp) / backend / "edge").mkdir(parents=True)
            figures = asyncio.run(
                run_once(backend, args.events, args.batch_size, Path(tmp) / backend)
            )
            print(
                f"{backend:10} {figures['events']:>7} events  batch {args.batch_size}  "
                f"drained in {figures['total_s']:.1f} s (edge start included): "
                f"{figures['events_per_s_total']:,.0f} events/s, "
                f"steady {figures['events_per_s_steady']:,.0f} events/s  "
                f"(outbox filled in {figures['fill_s']:.1f} s)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
