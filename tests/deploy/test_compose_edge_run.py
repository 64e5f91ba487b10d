"""deploy/compose/edge.yaml, run: the edge container's command, environment (its env
file filled in as the docs say) and mounted site file as a local process, its MQTT broker
a real Mosquitto with the compose setup's logins and ACL. It passes its health check, an
admin made inside the container gets an API token, and a sensor's message reaches the
edge's API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.deploy.compose_files import SITE_FILE, filled_edge_spec
from tests.deploy.containers import External
from tests.deploy.local_run import LocalDeployment
from tests.mosquitto import Mosquitto, mosquitto_pub
from tests.polling import eventually

HTTP_PORT = 8080


@pytest.fixture
async def edge(
    tmp_path: Path, broker: Mosquitto, mqtt_logins: dict[str, str]
) -> AsyncIterator[LocalDeployment]:
    spec = filled_edge_spec(tmp_path, {"EVPARK_MQTT__PASSWORD": mqtt_logins["evpark-edge"]})
    deployment = LocalDeployment(
        tmp_path, [spec], externals=[External("mosquitto", 1883, broker.port)]
    )
    async with deployment:
        await deployment.up()
        yield deployment


async def test_edge_compose_serves_a_sensor_reading(
    edge: LocalDeployment, broker: Mosquitto, mqtt_logins: dict[str, str]
) -> None:
    api = edge.url("edge", HTTP_PORT)
    async with httpx.AsyncClient(base_url=api, timeout=10) as http:
        # on 0.0.0.0 nothing is local: the API wants a login
        assert (await http.get("/api/slots/A1")).status_code == 401

        # docker compose exec edge evpark users create / token
        made = await edge.run_in(
            "edge", "users", "create", "--config", SITE_FILE, "--username", "admin",
            "--role", "admin", "--password-stdin", stdin="a-long-admin-password\n",
        )  # fmt: skip
        assert made.code == 0, made.stderr
        token = await edge.run_in("edge", "users", "token", "--config", SITE_FILE, "-u", "admin")
        assert token.code == 0, token.stderr
        http.headers["Authorization"] = f"Bearer {token.stdout.strip().splitlines()[-1]}"

        await mosquitto_pub(
            broker,
            "evpark/my-site/sensors/S-A1/state",
            '{"occupied": true}',
            retain=True,
            user=("S-A1", mqtt_logins["S-A1"]),
        )

        async def occupied() -> bool:
            r = await http.get("/api/slots/A1")
            assert r.status_code == 200, r.text
            return bool(r.json()["state"] == "occupied")

        # the slot model debounces a reading for [slot_timing] debounce (5 s)
        await eventually(occupied, "slot A1 occupied", within=30)
    assert edge.healthy("edge")
    # docker compose stop: SIGTERM, a clean exit well within stop_grace_period
    assert await edge.stop(within=30) == {"edge": 0}
