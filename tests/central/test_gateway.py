"""The gateway: keys from the CLI, rate limits, request ids, docs, a service that is down."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from central.app import create_app
from central.settings import CentralSettings
from tests.central.conftest import Central
from tests.harness.ports import free_port
from tests.harness.processes import create_site_key, run_evpark


async def test_rate_limit_per_key_answers_429_with_retry_after(central_factory: Any) -> None:
    limits = {"burst": 3, "driver_per_minute": 6, "operator_per_minute": 600, "site_per_minute": 60}
    async with central_factory(rate_limit=limits) as central:
        driver = await central.auth("driver")
        other = await central.auth("driver")
        codes = [
            (await central.client.get("/parking/status", headers=driver)).status_code
            for _ in range(4)
        ]
        assert codes == [200, 200, 200, 429]
        r = await central.client.get("/parking/status", headers=driver)
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1
        assert "rate limit" in r.json()["detail"]
        # limits are per key
        assert (await central.client.get("/parking/status", headers=other)).status_code == 200


async def test_request_ids_are_kept_or_made(central: Central) -> None:
    driver = await central.auth("driver")
    r = await central.client.get("/parking/status", headers={**driver, "X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = await central.client.get("/parking/status", headers=driver)
    assert len(r.headers["x-request-id"]) == 32
    r = await central.client.get("/parking/status")
    assert r.status_code == 401
    assert r.headers["x-request-id"]


async def test_docs_and_health_are_public_and_list_every_service(central: Central) -> None:
    r = await central.client.get("/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for path in (
        "/parking/reserve",
        "/parking/status",
        "/parking/slots/{slot_id}",
        "/parking/release",
        "/parking/history/{vehicle_id}",
        "/charging/start",
        "/charging/stop",
        "/charging/status/{vehicle_id}",
        "/charging/history/{vehicle_id}",
        "/charging/rates",
        "/sync/v1/events",
        "/sync/v1/commands",
    ):
        assert path in paths
    assert "ApiKey" in r.json()["components"]["securitySchemes"]
    assert (await central.client.get("/docs")).status_code == 200
    health = (await central.client.get("/healthz")).json()
    assert {"parking", "charging", "sync"} <= set(health["services"])


def test_keys_cli_creates_a_key_the_gateway_accepts(tmp_path: Path) -> None:
    env = {"EVPARK_CENTRAL_DATA_DIR": str(tmp_path)}
    key = create_site_key("north", env=env)
    assert key.startswith("evp_")
    bad = run_evpark("central", "keys", "create", "--scope", "site", env=env)
    assert bad.code == 2
    assert "needs --site" in bad.stderr
    listed = run_evpark("central", "keys", "list", env=env)
    assert listed.code == 0, listed.stderr
    assert key.split("_")[1] in listed.stdout
    assert key not in listed.stdout

    async def use_key() -> int:
        app = create_app(CentralSettings(data_dir=tmp_path))
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://central"
            ) as client,
        ):
            r = await client.get("/sync/v1/status", headers={"Authorization": f"Bearer {key}"})
            return r.status_code

    assert asyncio.run(use_key()) == 200


async def test_a_service_that_is_down_degrades_only_its_paths(central_factory: Any) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with central_factory(
        service_urls={"charging": dead},
        resilience={"timeout_s": 1, "retries": 1, "backoff_s": 0.01, "breaker_failures": 2},
    ) as central:
        driver = await central.auth("driver")
        r = await central.client.get("/charging/rates", headers=driver)
        assert r.status_code == 503
        assert r.json()["detail"] == "the charging service is unavailable, retry later"
        assert int(r.headers["retry-after"]) >= 1
        # the breaker is open now: refused at once, still a 503
        r = await central.client.get("/charging/rates", headers=driver)
        assert r.status_code == 503
        # the rest of central answers
        assert (await central.client.get("/parking/status", headers=driver)).status_code == 200
        health = (await central.client.get("/healthz")).json()
        assert health["status"] == "degraded"
        assert health["remote"]["charging"].startswith("down")
        # the docs show what is reachable
        paths = (await central.client.get("/openapi.json")).json()["paths"]
        assert "/parking/reserve" in paths
        assert "/charging/start" not in paths
