"""The compose files of ``deploy/compose/`` as an operator fills them in: the env file
examples copied with real secrets, the files read with them, the evpark image's services
as :class:`ContainerSpec`s."""

from __future__ import annotations

import os
import pwd
import re
import secrets
import subprocess
from dataclasses import replace
from pathlib import Path

import aiomqtt

from tests.deploy.compose import Compose, read_compose, read_env_file
from tests.deploy.containers import ContainerSpec, is_evpark_image
from tests.deploy.local_run import LocalDeployment
from tests.services import require_binary

COMPOSE_DIR = Path(__file__).resolve().parents[2] / "deploy" / "compose"
CENTRAL_YAML = COMPOSE_DIR / "central.yaml"
EDGE_YAML = COMPOSE_DIR / "edge.yaml"
SITE_FILE = "/etc/evpark/site.toml"
MOSQUITTO_CONF = "/mosquitto/config/mosquitto.conf"
MQTT_PORT = 1883
SITE_ID = "my-site"  # edge/site.toml's


def filled_in(example: Path) -> dict[str, str]:
    """An env file example with every ``change-me`` replaced by a random secret, as the
    operator is told to do."""
    return {
        key: secrets.token_hex(16) if value == "change-me" else value
        for key, value in read_env_file(example).items()
    }


def evpark_specs(compose: Compose, instead: dict[str, Path] | None = None) -> list[ContainerSpec]:
    """The evpark image's services in start order (``instead``: see
    :meth:`Compose.environment`)."""
    return [
        compose.spec(name, instead)
        for name in compose.start_order()
        if is_evpark_image(compose.services[name])
    ]


def central_compose() -> tuple[Compose, dict[str, str]]:
    """central.yaml read with a filled-in central.env, and that env."""
    variables = filled_in(COMPOSE_DIR / "central.env.example")
    return read_compose(CENTRAL_YAML, variables), variables


def edge_compose() -> tuple[Compose, dict[str, Path]]:
    """edge.yaml, and its env_file read from the example (what its keys are)."""
    return read_compose(EDGE_YAML, {}), {"edge.env": COMPOSE_DIR / "edge.env.example"}


def init_script_databases() -> list[str]:
    """The databases PostgreSQL's init script of central.yaml creates."""
    script = (COMPOSE_DIR / "central" / "create-databases.sql").read_text()
    return re.findall(r"^CREATE DATABASE (\w+);", script, re.M)


def filled_edge_spec(workdir: Path, env: dict[str, str]) -> ContainerSpec:
    """edge.yaml's edge with edge.env (the example, ``env`` set in it) and site.toml's
    charger password filled in, as an operator does."""
    values = {**filled_in(COMPOSE_DIR / "edge.env.example"), **env}
    env_file = workdir / "edge.env"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    (spec,) = evpark_specs(read_compose(EDGE_YAML, {}), {"edge.env": env_file})
    site = spec.files[SITE_FILE].replace('"change-me"', f'"{secrets.token_hex(8)}"')
    return replace(spec, files={**spec.files, SITE_FILE: site})


def filled_mosquitto_spec(workdir: Path, logins: dict[str, str]) -> ContainerSpec:
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


async def sensor_reports(site: LocalDeployment, sensor: str, password: str, state: str) -> None:
    """A sensor of edge/site.toml's site, logged in as itself on the broker's published
    port, publishes its state (retained, as sensors do)."""
    async with aiomqtt.Client(
        "127.0.0.1", site.local_port("mosquitto", MQTT_PORT), username=sensor, password=password
    ) as client:
        await client.publish(f"evpark/{SITE_ID}/sensors/{sensor}/state", state, qos=1, retain=True)
