"""The production overlay's containers run as local processes against this machine's
PostgreSQL, NATS and Redis: each Deployment's command and environment (its ConfigMap and
Secret keys resolved; the Secret from secrets.env.example with real values), the
migrations Job twice, every probe path answered, and a real flow through the gateway: an
operator's lot, a site's event batch, the slot occupied in parking's status and counted
by analytics."""

from __future__ import annotations

import asyncio
import re
import secrets
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from central.app import SERVICE_NAMES
from tests.central.conftest import cloud_event, eventually
from tests.deploy.containers import ContainerSpec, External
from tests.deploy.k8s_containers import deployment_specs, job_spec, probe_urls
from tests.deploy.local_run import LocalDeployment
from tests.deploy.manifests import PRODUCTION, SECRETS_EXAMPLE, build, read_env_file
from tests.harness.shared_services import NATS_PORT, REDIS_PORT

pytestmark = [pytest.mark.services, pytest.mark.timeout(300)]

DATABASES = ("gateway", *SERVICE_NAMES)
# the one PostgreSQL host name the local run points at this machine's server
LOCAL_POSTGRES = "postgres"
STREAM_REPLICAS = "EVPARK_CENTRAL_BUS_STREAM_REPLICAS"


def local_secrets() -> dict[str, str]:
    """central-secrets as an operator fills in secrets.env.example: a real internal token;
    each service's database URL as the example has it, its host the local run's name for
    PostgreSQL (the run gives the user, the port and a database of its own)."""
    example = read_env_file(SECRETS_EXAMPLE)
    filled = {
        key: re.sub(r"@postgres-\w+:", f"@{LOCAL_POSTGRES}:", url) for key, url in example.items()
    }
    filled["internal_token"] = secrets.token_hex(32)
    return filled


def database_names(specs: list[ContainerSpec]) -> list[str]:
    """The databases the example's URLs name (evpark_<service>), to be created."""
    return sorted(
        {
            url.rsplit("/", 1)[1]
            for spec in specs
            for key, url in spec.env.items()
            if key.startswith("EVPARK_CENTRAL_DATABASE_URL")
        }
    )


def one_node_nats(spec: ContainerSpec) -> ContainerSpec:
    """``spec`` for this machine's NATS, one node: the manifests' streams have 2 replicas
    (a 2-node cluster), which a single server refuses to create."""
    assert spec.env.get(STREAM_REPLICAS) == "2", spec.name
    return replace(spec, env={**spec.env, STREAM_REPLICAS: "1"})


@pytest.mark.slow
async def test_the_overlays_containers_run_a_working_central(tmp_path: Path) -> None:
    manifests = build(PRODUCTION)
    values = local_secrets()
    servers = [one_node_nats(spec) for spec in deployment_specs(manifests, values)]
    migrations = job_spec(manifests, "migrations", values)
    assert [spec.name for spec in servers] == [*sorted(SERVICE_NAMES), "gateway"]
    databases = database_names([migrations, *servers])
    assert databases == sorted(f"evpark_{name}" for name in DATABASES)
    externals = [External("nats", 4222, NATS_PORT), External("redis-primary", 6379, REDIS_PORT)]
    async with LocalDeployment(
        tmp_path,
        [migrations, *servers],
        externals=externals,
        postgres_host=LOCAL_POSTGRES,
        databases=databases,
    ) as run:
        # the Job twice, as a retried or repeated Job runs: the second finds every database
        # at the latest revision and succeeds too
        for _ in range(2):
            ran = await run.run(migrations)
            assert ran.code == 0, ran.stderr[-2000:]
            assert sorted(ran.stdout.split()) == sorted(
                [*(f"{name}:" for name in DATABASES), *["up", "to", "date"] * len(DATABASES)]
            )
        # the services side by side (as a rollout starts them), then the gateway
        *services, gateway = servers
        for spec in services:
            run.start(spec)
        for spec in services:
            await run.wait_healthy(spec.name)
        run.start(gateway)
        await run.wait_healthy(gateway.name)
        async with httpx.AsyncClient(timeout=10) as http:
            for spec in servers:
                for probe, url in probe_urls(manifests, spec.name).items():
                    await probe_passes(http, run.view(spec).text(url), f"{spec.name} {probe}")
        await drive_a_flow(run)


async def probe_passes(http: httpx.AsyncClient, url: str, what: str, within: float = 30) -> None:
    """``url`` answers 200, asked as the kubelet asks (again after a failure): a readiness
    check that times out once on a busy machine is not a failed probe."""
    deadline = asyncio.get_running_loop().time() + within
    while (r := await http.get(url)).status_code != 200:
        assert asyncio.get_running_loop().time() < deadline, (
            f"{what} {url}: {r.status_code} {r.text[:300]}"
        )
        await asyncio.sleep(1)


async def drive_a_flow(run: LocalDeployment) -> None:
    """An operator configures a lot, the site reports a car in a slot: parking's status and
    analytics see it, every request through the gateway."""
    operator = await key(run, "--scope", "operator")
    site_id = f"k8s-{uuid.uuid4().hex[:8]}"
    site = await key(run, "--scope", "site", "--site", site_id)
    async with httpx.AsyncClient(base_url=run.url("gateway", 8000), timeout=20) as http:
        lot = {"name": "K8s", "slots": [{"slot_id": "A1", "slot_type": "ev"}]}
        r = await http.put(f"/parking/lots/{site_id}", json=lot, headers=operator)
        assert r.status_code == 200, r.text
        occupied = {
            "slot_id": "A1",
            "slot_type": "ev",
            "visit_id": "v1",
            "arrived_at": datetime.now(UTC).isoformat(),
        }
        batch = {"events": [cloud_event(site_id, 1, "parking.occupied", occupied)]}
        r = await http.post("/sync/v1/events", json=batch, headers=site)
        assert r.json() == {"stored": 1, "duplicates": 0, "last_sequence": 1}, r.text

        async def slot_occupied() -> bool:
            r = await http.get("/parking/status", params={"site_id": site_id}, headers=operator)
            return bool(
                r.status_code == 200 and r.json()["sites"][0]["slot_types"][0]["occupied"] == 1
            )

        async def counted() -> bool:
            r = await http.get("/analytics/usage", params={"site_id": site_id}, headers=operator)
            return r.status_code == 200 and site_id in r.text

        await eventually(slot_occupied, within=30, every=0.2)
        await eventually(counted, within=30, every=0.3)


async def key(run: LocalDeployment, *args: str) -> dict[str, str]:
    """``evpark central keys create`` in the gateway's container (its env and database)."""
    ran = await run.run_in("gateway", "central", "keys", "create", *args)
    assert ran.code == 0, ran.stderr[-1000:]
    return {"Authorization": f"Bearer {ran.stdout.strip().splitlines()[-1]}"}
