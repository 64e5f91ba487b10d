"""deploy/compose/edge.yaml, run: both its containers as local processes, with what
compose gives them. Mosquitto runs its mounted config (logins, the ACL, the health
check's own listener) with a password file made as the docs say; the edge its command,
environment (its env file filled in) and mounted site file. Both pass their health
checks, an admin made inside the edge's container gets an API token, and a sensor's
message reaches the edge's API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import httpx
import pytest

from tests.deploy.compose_files import (
    MQTT_PORT,
    SITE_FILE,
    filled_edge_spec,
    filled_mosquitto_spec,
    sensor_reports,
)
from tests.deploy.local_run import LocalDeployment
from tests.polling import eventually

HTTP_PORT = 8080


@pytest.fixture
async def edge(tmp_path: Path, mqtt_logins: dict[str, str]) -> AsyncIterator[LocalDeployment]:
    specs = [
        filled_mosquitto_spec(tmp_path, mqtt_logins),
        filled_edge_spec(tmp_path, {"EVPARK_MQTT__PASSWORD": mqtt_logins["evpark-edge"]}),
    ]
    async with LocalDeployment(tmp_path, specs) as deployment:
        await deployment.up()
        yield deployment


@pytest.mark.slow
async def test_edge_compose_serves_a_sensor_reading(
    edge: LocalDeployment, mqtt_logins: dict[str, str]
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

        mqtt_port = edge.local_port("mosquitto", MQTT_PORT)
        with pytest.raises(aiomqtt.MqttError):  # the broker wants a login
            async with aiomqtt.Client("127.0.0.1", mqtt_port):
                pass
        await sensor_reports(edge, "S-A1", mqtt_logins["S-A1"], '{"occupied": true}')

        async def occupied() -> bool:
            r = await http.get("/api/slots/A1")
            assert r.status_code == 200, r.text
            return bool(r.json()["state"] == "occupied")

        # the slot model debounces a reading for [slot_timing] debounce (5 s)
        await eventually(occupied, "slot A1 occupied", within=30)
    assert edge.healthy("edge")
    assert edge.healthy("mosquitto")
    # docker compose stop: SIGTERM, a clean exit well within stop_grace_period
    assert await edge.stop(within=30) == {"mosquitto": 0, "edge": 0}
