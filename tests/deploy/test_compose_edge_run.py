"""deploy/compose/edge.yaml, run: both its containers as local processes, with what
compose gives them. Mosquitto runs its mounted config (logins, the ACL, the health
check's own listener) with a password file made as the docs say; the edge its command,
environment (its env file filled in) and mounted site file. Both pass their health
checks, an admin made inside the edge's container gets an API token, and a sensor's
message reaches the edge's API."""

from __future__ import annotations

import os
import pwd
import subprocess
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiomqtt
import httpx
import pytest

from tests.deploy.compose import read_compose
from tests.deploy.compose_files import EDGE_YAML, SITE_FILE, filled_edge_spec
from tests.deploy.containers import ContainerSpec
from tests.deploy.local_run import LocalDeployment
from tests.polling import eventually
from tests.services import require_binary

HTTP_PORT = 8080
MQTT_PORT = 1883
MOSQUITTO_CONF = "/mosquitto/config/mosquitto.conf"


def mosquitto_spec(workdir: Path, logins: dict[str, str]) -> ContainerSpec:
    """edge.yaml's mosquitto, its password file made with mosquitto_passwd."""
    passwords = workdir / "mosquitto.passwd"
    passwords.touch(mode=0o600)
    for user, password in logins.items():
        subprocess.run(
            [require_binary("mosquitto_passwd"), "-b", str(passwords), user, password],
            check=True,
            capture_output=True,
        )
    spec = read_compose(EDGE_YAML, {}).spec("mosquitto", {"./edge/mosquitto.passwd": passwords})
    # started as root (as tests may be), Mosquitto would switch to its own user, who
    # cannot read the test's directory; in its image it runs as that user from the start
    config = spec.files[MOSQUITTO_CONF] + f"user {pwd.getpwuid(os.getuid()).pw_name}\n"
    return replace(spec, files={**spec.files, MOSQUITTO_CONF: config})


@pytest.fixture
async def edge(tmp_path: Path, mqtt_logins: dict[str, str]) -> AsyncIterator[LocalDeployment]:
    specs = [
        mosquitto_spec(tmp_path, mqtt_logins),
        filled_edge_spec(tmp_path, {"EVPARK_MQTT__PASSWORD": mqtt_logins["evpark-edge"]}),
    ]
    async with LocalDeployment(tmp_path, specs) as deployment:
        await deployment.up()
        yield deployment


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
        # a sensor, logged in as itself on the published MQTT port
        async with aiomqtt.Client(
            "127.0.0.1",
            mqtt_port,
            username="S-A1",
            password=mqtt_logins["S-A1"],
        ) as sensor:
            await sensor.publish(
                "evpark/my-site/sensors/S-A1/state", '{"occupied": true}', qos=1, retain=True
            )

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
