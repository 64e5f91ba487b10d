"""``/readyz``: 200 when this process's databases answer and its bus delivers; 503 naming
what failed; a gateway reports its services' readiness without failing for them. Public
like ``/livez`` and ``/healthz``, which stay liveness. Against real PostgreSQL and real
``evpark central run`` processes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from central.app import SERVICE_NAMES
from central.infra.bus_url import make_bus
from tests.central.conftest import Central
from tests.harness.ports import free_port
from tests.harness.processes import DaemonProcess, central_run_command
from tests.harness.shared_services import PG_HOST, PG_PORT, PG_USER


async def test_all_in_one_is_ready_without_a_key(central: Central) -> None:
    r = await central.client.get("/readyz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ready"
    assert body["failed"] == []
    assert set(body["checks"]) == {"bus", *(f"database:{o}" for o in ("gateway", *SERVICE_NAMES))}


async def test_a_database_that_stops_answering_makes_it_not_ready(
    central_factory: Callable[..., Any], pg_url: str
) -> None:
    async with central_factory(database_urls={"parking": pg_url}) as central:
        assert (await central.client.get("/readyz")).status_code == 200
        await _drop(pg_url.rsplit("/", 1)[1])
        r = await central.client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["failed"] == ["database:parking"]
        assert r.json()["checks"]["database:charging"] == "ok"
        assert (await central.client.get("/healthz")).status_code == 200  # still alive


async def _drop(database: str) -> None:
    admin = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        await admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
    finally:
        await admin.close()


def test_a_bus_not_running_is_a_problem() -> None:
    assert make_bus("memory://").problem() is not None


async def test_on_nats_the_bus_is_checked(
    central_factory: Callable[..., Any], nats_url: str, nats_namespace: str
) -> None:
    async with central_factory(bus_url=nats_url, bus_namespace=nats_namespace) as central:
        r = await central.client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["checks"]["bus"] == "ok"


@pytest.fixture
def processes() -> Iterator[list[DaemonProcess]]:
    started: list[DaemonProcess] = []
    yield started
    for process in started:
        process.stop()


@pytest.mark.slow
def test_a_gateway_reports_the_readiness_of_the_services_it_routes_to(
    tmp_path: Path, processes: list[DaemonProcess]
) -> None:
    ports = {name: free_port() for name in SERVICE_NAMES}
    env = {
        "EVPARK_CENTRAL_DATA_DIR": str(tmp_path / "data"),
        "EVPARK_CENTRAL_SERVICE_PORTS": json.dumps(ports),
    }
    gateway_port = free_port()
    gateway = DaemonProcess(
        "gateway",
        central_run_command(gateway_port, "--service", "gateway"),
        tmp_path / "gateway.log",
        env,
    )
    processes.append(gateway)
    gateway.start()
    base = f"http://127.0.0.1:{gateway_port}"
    gateway.wait_healthy(f"{base}/healthz")
    # every service down: the gateway itself is ready (its keys' database, its bus) and says
    # which services are not; taking it out of the load balancer would help nobody
    r = httpx.get(f"{base}/readyz", timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["failed"] == []
    assert r.json()["checks"] == {"database:gateway": "ok", "bus": "ok"}
    assert set(r.json()["services"]) == set(SERVICE_NAMES)
    assert all(state != "ok" for state in r.json()["services"].values())
    assert httpx.get(f"{base}/livez", timeout=10).json() == {"status": "ok"}
    assert httpx.get(f"{base}/metrics", timeout=10).status_code == 200

    parking = DaemonProcess(
        "parking",
        central_run_command(ports["parking"], "--service", "parking"),
        tmp_path / "parking.log",
        env,
    )
    processes.append(parking)
    parking.start()
    parking.wait_healthy(f"http://127.0.0.1:{ports['parking']}/readyz")

    def parking_ready_at_the_gateway() -> bool:
        # the gateway's circuit breaker for parking, opened while it was down, lets a
        # trial through after breaker_reset_s
        services = httpx.get(f"{base}/readyz", timeout=30).json()["services"]
        return bool(services["parking"] == "ok")

    gateway.wait_until(parking_ready_at_the_gateway, "the gateway sees parking ready", within=60)
    services = httpx.get(f"{base}/readyz", timeout=30).json()["services"]
    assert [name for name, state in sorted(services.items()) if state == "ok"] == ["parking"]

    starting = [
        json.loads(line)
        for line in (tmp_path / "gateway.log").read_text().splitlines()
        if '"central.starting"' in line
    ]
    assert len(starting) == 1
    line = starting[0]
    assert line["services"] == ["gateway"]
    assert line["listen"] == f"127.0.0.1:{gateway_port}"
    assert line["routes_to"]["parking"] == f"http://127.0.0.1:{ports['parking']}"
    assert line["bus"] == "memory://"
    assert line["environment"] == "development"
