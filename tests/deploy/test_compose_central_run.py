"""deploy/compose/central.yaml, run: every command and environment it gives central's
containers, as local processes on this machine's PostgreSQL, NATS JetStream and Redis,
started in its order, each passing its health check; then a whole flow through the
gateway, with keys made as the docs tell operators to make them, and a site run from
deploy/compose/edge.yaml reporting to it."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.central.conftest import cloud_event, eventually
from tests.deploy.compose_files import (
    SITE_ID,
    central_compose,
    evpark_specs,
    filled_edge_spec,
    filled_mosquitto_spec,
    init_script_databases,
    sensor_reports,
)
from tests.deploy.containers import External
from tests.deploy.local_run import LocalDeployment
from tests.harness.shared_services import NATS_PORT, REDIS_PORT

# six processes start side by side: on a busy 2-core machine that takes a while
pytestmark = [pytest.mark.services, pytest.mark.timeout(600)]

GATEWAY_PORT = 8000


@pytest.fixture
async def central(tmp_path: Path) -> AsyncIterator[LocalDeployment]:
    compose, _ = central_compose()
    deployment = LocalDeployment(
        tmp_path,
        evpark_specs(compose),
        externals=[External("nats", 4222, NATS_PORT), External("redis", 6379, REDIS_PORT)],
        postgres_host="postgres",
        databases=init_script_databases(),
    )
    async with deployment:
        await deployment.up()
        yield deployment


async def key(central: LocalDeployment, *args: str) -> dict[str, str]:
    """``docker compose run --rm gateway central keys create ...``, as a header."""
    ran = await central.run_in("gateway", "central", "keys", "create", *args)
    assert ran.code == 0, ran.stderr
    return {"Authorization": f"Bearer {ran.stdout.strip().splitlines()[-1]}"}


@pytest.mark.slow
async def test_central_compose_serves_a_site_and_a_driver(
    central: LocalDeployment, mqtt_logins: dict[str, str], tmp_path: Path
) -> None:
    operator = await key(central, "--scope", "operator")
    site = await key(central, "--scope", "site", "--site", "east")
    driver = await key(central, "--scope", "driver", "--user", "driver-1", "--vehicle", "car-1")
    gateway = central.url("gateway", GATEWAY_PORT)
    async with httpx.AsyncClient(base_url=gateway, timeout=20) as http:
        lot = {
            "name": "East",
            "slots": [
                {"slot_id": "E1", "slot_type": "ev"},
                {"slot_id": "S1", "slot_type": "standard"},
            ],
        }
        r = await http.put("/parking/lots/east", json=lot, headers=operator)
        assert r.status_code == 200, r.text

        reserve = {
            "vehicle_id": "car-1",
            "site_id": "east",
            "slot_type": "ev",
            "duration_minutes": 60,
        }
        r = await http.post("/parking/reserve", json=reserve, headers=driver)
        assert r.status_code == 201, r.text

        # the parking process's command reaches the sync process over NATS
        async def reserve_sent() -> bool:
            r = await http.get("/sync/v1/commands", params={"wait": 2}, headers=site)
            return any(c["type"] == "reserve" for c in r.json()["commands"])

        await eventually(reserve_sent, within=90)

        # the site reports a car in S1: the sync process -> NATS -> parking's status
        occupied = {"slot_id": "S1", "slot_type": "standard", "visit_id": "v1"}
        occupied["arrived_at"] = datetime.now(UTC).isoformat()
        batch = {"events": [cloud_event("east", 1, "parking.occupied", occupied)]}
        r = await http.post("/sync/v1/events", json=batch, headers=site)
        assert r.json() == {"stored": 1, "duplicates": 0, "last_sequence": 1}

        async def standard_occupied() -> bool:
            r = await http.get("/parking/status", params={"site_id": "east"}, headers=operator)
            assert r.status_code == 200, r.text
            (east,) = r.json()["sites"]
            by_type = {t["slot_type"]: t for t in east["slot_types"]}
            return bool(by_type["standard"]["occupied"] == 1 and by_type["ev"]["reserved"] == 1)

        # every 0.5 s: well within the operator key's rate limit
        await eventually(standard_occupied, within=90, every=0.5)

        # a site from edge.yaml, its edge.env pointing at this central with its own key
        lot = {"name": "Mine", "slots": [{"slot_id": "B1", "slot_type": "standard"}]}
        r = await http.put(f"/parking/lots/{SITE_ID}", json=lot, headers=operator)
        assert r.status_code == 200, r.text
        site_key = (await key(central, "--scope", "site", "--site", SITE_ID))["Authorization"]
        edge_env = {
            "EVPARK_MQTT__PASSWORD": mqtt_logins["evpark-edge"],
            "EVPARK_CENTRAL__URL": gateway,
            "EVPARK_CENTRAL__SITE_KEY": site_key.removeprefix("Bearer "),
        }
        site_specs = [
            filled_mosquitto_spec(tmp_path, mqtt_logins),
            filled_edge_spec(tmp_path, edge_env),
        ]
        async with LocalDeployment(tmp_path / "site", site_specs) as site:
            await site.up()
            await sensor_reports(site, "S-B1", mqtt_logins["S-B1"], "occupied")

            async def site_occupied() -> bool:
                r = await http.get("/parking/status", params={"site_id": SITE_ID}, headers=operator)
                (mine,) = r.json()["sites"]
                return bool(mine["slot_types"][0]["occupied"] == 1)

            # the edge debounces the reading (5 s), then syncs it up through the gateway
            await eventually(site_occupied, within=90, every=0.5)

    # an upgrade runs the migrations one-shot again: nothing to do, nothing broken
    ran = await central.run(central.spec("migrate"))
    assert ran.code == 0, ran.stderr
    assert "parking: up to date" in ran.stdout
    assert all(central.healthy(name) for name in central.daemons)
    # docker compose stop: every service ends by itself on SIGTERM within its grace
    # period (uvicorn ends its graceful shutdown by re-raising the signal: -15)
    codes = await central.stop(within=30)
    assert set(codes.values()) <= {0, -signal.SIGTERM}, codes
