"""Central at scale: one process per service (``evpark central run --service NAME``) and a
gateway process, on PostgreSQL, NATS JetStream and Redis. Whole flows through the
gateway: events in -> reservation, charging history, analytics; isolation of sites.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from central.app import SERVICE_NAMES
from central.context import utc_now
from central.gateway.keys import KeyStore
from central.infra.db import create_engine
from tests.central.conftest import cloud_event, eventually
from tests.central.notification_fixtures import SmtpRecorder, smtp_server
from tests.harness.ports import free_port
from tests.harness.processes import DaemonProcess, central_run_command, stop_all

pytestmark = pytest.mark.services
__all__ = ["smtp_server"]  # a fixture, used by name


@dataclass
class Cluster:
    url: str
    env: dict[str, str]
    redis_namespace: str
    services: dict[str, str]

    async def key(
        self,
        scope: str,
        site: str | None = None,
        *,
        user: str | None = None,
        vehicles: tuple[str, ...] = (),
    ) -> dict[str, str]:
        """A key in the gateway's PostgreSQL database (what `keys create` does)."""
        engine = create_engine(self.env["EVPARK_CENTRAL_DATABASE_URL"])
        try:
            key = await KeyStore(engine, utc_now).create(
                scope, site, user_id=user, vehicle_ids=vehicles
            )
        finally:
            await engine.dispose()
        return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def cluster(
    tmp_path: Path,
    pg_url: str,
    nats_url: str,
    redis_url: str,
    nats_namespace: str,
    redis_namespace: str,
    smtp_server: SmtpRecorder,
) -> AsyncIterator[Cluster]:
    ports = {name: free_port() for name in (*SERVICE_NAMES, "gateway")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    services = {name: urls[name] for name in SERVICE_NAMES}
    env = {
        "EVPARK_CENTRAL_DATA_DIR": str(tmp_path / "data"),
        "EVPARK_CENTRAL_DATABASE_URL": pg_url,
        "EVPARK_CENTRAL_BUS_URL": nats_url,
        "EVPARK_CENTRAL_BUS_NAMESPACE": nats_namespace,
        "EVPARK_CENTRAL_CACHE_URL": redis_url,
        "EVPARK_CENTRAL_CACHE_NAMESPACE": redis_namespace,
        "EVPARK_CENTRAL_INTERNAL_TOKEN": "scale-test-token",
        # PostgreSQL's 100 clients are shared with the other tests running beside this one
        "EVPARK_CENTRAL_DATABASE_POOL_SIZE": "2",
        "EVPARK_CENTRAL_DATABASE_MAX_OVERFLOW": "4",
        "EVPARK_CENTRAL_SERVICE_URLS": json.dumps(services),
        "EVPARK_CENTRAL_NOTIFICATION__SMTP__HOST": "127.0.0.1",
        "EVPARK_CENTRAL_NOTIFICATION__SMTP__PORT": str(smtp_server.port),
    }
    daemons = {
        name: DaemonProcess(
            name, central_run_command(port, "--service", name), tmp_path / f"{name}.log", env
        )
        for name, port in ports.items()
    }
    try:
        for daemon in daemons.values():
            daemon.start()
        for name, daemon in daemons.items():
            # in a thread: the fixture's event loop is not blocked while they start
            await asyncio.to_thread(daemon.wait_healthy, f"{urls[name]}/healthz", within=30)
        yield Cluster(urls["gateway"], env, redis_namespace, services)
    finally:
        # side by side: their shutdowns overlap instead of adding up
        await asyncio.to_thread(stop_all, daemons.values(), within=15)


@pytest.mark.slow
async def test_whole_flows_across_processes(cluster: Cluster, smtp_server: SmtpRecorder) -> None:
    operator = await cluster.key("operator")
    driver = await cluster.key("driver", user="driver-1", vehicles=("car-1",))
    site_a, site_b = await cluster.key("site", "east"), await cluster.key("site", "west")
    now = datetime.now(UTC)
    async with httpx.AsyncClient(base_url=cluster.url, timeout=20) as http:
        lot = {"name": "East", "slots": [{"slot_id": "E1", "slot_type": "ev"}]}
        r = await http.put("/parking/lots/east", json=lot, headers=operator)
        assert r.status_code == 200, r.text
        rates = {"currency": "EUR", "energy_price_per_kwh": "0.50"}
        assert (
            await http.put("/charging/rates/east", json=rates, headers=operator)
        ).status_code == 200

        prefs = {
            "vehicle_ids": ["car-1"],
            "channels": {"email": {"address": "driver@example.com"}},
        }
        r = await http.put("/notifications/users/driver-1/preferences", json=prefs, headers=driver)
        assert r.status_code == 200, r.text

        r = await http.post(
            "/parking/reserve",
            json={
                "vehicle_id": "car-1",
                "site_id": "east",
                "slot_type": "ev",
                "duration_minutes": 90,
            },
            headers=driver,
        )
        assert r.status_code == 201, r.text
        reservation = r.json()
        # the parking process's command reaches the sync process over NATS
        commands: list[dict[str, Any]] = []

        async def reserve_queued() -> bool:
            r = await http.get("/sync/v1/commands", params={"wait": 5}, headers=site_a)
            commands[:] = r.json()["commands"]
            return any(c["type"] == "reserve" for c in commands)

        await eventually(reserve_queued, within=30)
        reserve_cmd = next(c for c in commands if c["type"] == "reserve")
        assert reserve_cmd["payload"]["reservation_id"] == reservation["id"]
        assert (await http.get("/sync/v1/commands", headers=site_b)).json() == {"commands": []}

        start = await http.post(
            "/charging/start",
            json={"site_id": "east", "charger_id": "CP1", "vehicle_id": "car-1"},
            headers=driver,
        )
        assert start.status_code == 202

        # the charging process's remote start carries its app token: the session the site
        # reports with it is car-1's
        async def start_queued() -> bool:
            r = await http.get("/sync/v1/commands", params={"wait": 5}, headers=site_a)
            commands[:] = r.json()["commands"]
            return any(c["type"] == "remote_start" for c in commands)

        await eventually(start_queued, within=30)
        app_token = next(c for c in commands if c["type"] == "remote_start")["payload"]["id_tag"]

        events = [
            (
                "parking.reserved",
                {
                    "slot_id": "E1",
                    "reservation_id": reservation["id"],
                    "vehicle_id": "car-1",
                    "starts_at": reservation["starts_at"],
                    "ends_at": reservation["ends_at"],
                    "command_id": reserve_cmd["id"],
                },
            ),
            (
                "parking.occupied",
                {
                    "slot_id": "E1",
                    "slot_type": "ev",
                    "visit_id": "v1",
                    "arrived_at": now.isoformat(),
                    "reservation_id": reservation["id"],
                },
            ),
            (
                "command.result",
                {
                    "command_id": start.json()["command_id"],
                    "command_type": "remote_start",
                    "status": "accepted",
                },
            ),
            (
                "charging.started",
                {
                    "session_id": "sess-1",
                    "charger_id": "CP1",
                    "evse_id": 1,
                    "connector_id": 1,
                    "id_tag": app_token,
                    "transaction_id": 1,
                    "meter_start_wh": 0,
                    "started_at": now.isoformat(),
                    "slot_id": "E1",
                    "vehicle_id": "car-1",
                },
            ),
            (
                "charging.completed",
                {
                    "session_id": "sess-1",
                    "charger_id": "CP1",
                    "evse_id": 1,
                    "id_tag": app_token,
                    "transaction_id": 1,
                    "energy_wh": 12000,
                    "started_at": now.isoformat(),
                    "stopped_at": (now + timedelta(hours=1)).isoformat(),
                    "reason": "EVDisconnected",
                    "inferred": False,
                    "slot_id": "E1",
                    "vehicle_id": "car-1",
                },
            ),
        ]
        batch = {
            "events": [
                cloud_event("east", seq, type_, data, time=now)
                for seq, (type_, data) in enumerate(events, start=1)
            ]
        }
        r = await http.post("/sync/v1/events", json=batch, headers=site_a)
        assert r.json() == {"stored": 5, "duplicates": 0, "last_sequence": 5}
        r = await http.post("/sync/v1/events", json=batch, headers=site_a)
        assert r.json() == {"stored": 0, "duplicates": 5, "last_sequence": 5}

        # cross-site writes and wrong keys are refused through the gateway too
        foreign = {"events": [cloud_event("east", 6, "parking.vacated", {"slot_id": "E1"})]}
        assert (await http.post("/sync/v1/events", json=foreign, headers=site_b)).status_code == 403
        assert (await http.post("/sync/v1/events", json=foreign, headers=driver)).status_code == 403
        assert (
            await http.get("/parking/status", headers={"Authorization": "Bearer x"})
        ).status_code == 401

        async def reservation_active() -> bool:
            r = await http.get(f"/parking/reservations/{reservation['id']}", headers=driver)
            return bool(r.json()["status"] == "active")

        async def charged() -> bool:
            r = await http.get("/charging/history/car-1", headers=driver)
            return bool(r.json()["items"])

        await eventually(reservation_active, within=30, every=0.2)
        await eventually(charged, within=30, every=0.2)
        (session,) = (await http.get("/charging/history/car-1", headers=driver)).json()["items"]
        assert session["cost"]["total"] == "6.00"
        r = await http.get(f"/charging/commands/{start.json()['command_id']}", headers=driver)
        assert r.json()["status"] == "accepted"

        # another driver sees and changes none of it through the gateway and the services
        bob = await cluster.key("driver", user="bob", vehicles=("car-b",))
        for path in (
            "/charging/history/car-1",
            f"/charging/commands/{start.json()['command_id']}",
            "/parking/history/car-1",
            f"/parking/reservations/{reservation['id']}",
            "/notifications/users/driver-1/preferences",
        ):
            assert (await http.get(path, headers=bob)).status_code == 403, path
        r = await http.delete(
            "/parking/release", params={"reservation_id": reservation["id"]}, headers=bob
        )
        assert r.status_code == 403
        listed = await http.get(
            "/charging/sessions", params={"site_id": "east", "limit": 1}, headers=operator
        )
        assert [(s["session_id"], s["vehicle_id"]) for s in listed.json()["items"]] == [
            ("sess-1", "car-1")
        ]
        # a body over a driver route's limit is refused at the gateway
        big = {"vehicle_id": "car-1", "site_id": "east", "note": "x" * 100_000}
        assert (await http.post("/parking/reserve", json=big, headers=driver)).status_code == 413

        status = (
            await http.get("/parking/status", params={"site_id": "east"}, headers=driver)
        ).json()
        assert status["sites"][0]["slot_types"][0]["occupied"] == 1

        async def counted() -> bool:
            r = await http.get("/analytics/usage", params={"site_id": "east"}, headers=operator)
            return r.status_code == 200 and "east" in r.text

        await eventually(counted, within=30, every=0.3)
        r = await http.get("/analytics/usage", headers=driver)
        assert r.status_code == 403

        async def emailed() -> bool:
            return any(rcpt == ["driver@example.com"] for _sender, rcpt in smtp_server.envelopes)

        await eventually(emailed, within=30, every=0.2)

        # a service run on its own trusts identity headers only with the internal token
        forged = {"X-Evpark-Key-Id": "x", "X-Evpark-Scope": "operator"}
        r = await http.get(f"{cluster.services['parking']}/parking/status", headers=forged)
        assert r.status_code == 401

        health = (await http.get("/healthz")).json()
        assert health["status"] == "ok"
        assert set(health["remote"].values()) == {"up"}
        paths = (await http.get("/openapi.json")).json()["paths"]
        assert {"/parking/reserve", "/charging/start", "/sync/v1/events"} <= set(paths)

    # the status answer was cached in Redis
    import redis.asyncio as redis_asyncio

    client = redis_asyncio.Redis.from_url(cluster.env["EVPARK_CENTRAL_CACHE_URL"])
    try:
        keys = [
            k async for k in client.scan_iter(match=f"{cluster.redis_namespace}parking:status:*")
        ]
    finally:
        await client.aclose()
    assert keys
