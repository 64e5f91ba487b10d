"""The compose files of ``deploy/compose/`` as an operator fills them in: the env file
examples copied with real secrets, the files read with them, the evpark image's services
as :class:`ContainerSpec`s."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from tests.deploy.compose import Compose, read_compose, read_env_file
from tests.deploy.containers import ContainerSpec

COMPOSE_DIR = Path(__file__).resolve().parents[2] / "deploy" / "compose"
CENTRAL_YAML = COMPOSE_DIR / "central.yaml"
EDGE_YAML = COMPOSE_DIR / "edge.yaml"
EVPARK_IMAGE = "evpark"


def filled_in(example: Path) -> dict[str, str]:
    """An env file example with every ``change-me`` replaced by a random secret, as the
    operator is told to do."""
    return {
        key: secrets.token_hex(16) if value == "change-me" else value
        for key, value in read_env_file(example).items()
    }


def is_ours(service: dict[str, object]) -> bool:
    """Does the service run the evpark image (whatever its tag or registry)?"""
    image = str(service.get("image", ""))
    return image.split(":")[0].rsplit("/", 1)[-1] == EVPARK_IMAGE


def evpark_specs(compose: Compose, env_files: dict[str, Path] | None = None) -> list[ContainerSpec]:
    """The evpark image's services in start order."""
    return [
        compose.spec(name, env_files)
        for name in compose.start_order()
        if is_ours(compose.services[name])
    ]


def central_compose() -> tuple[Compose, dict[str, str]]:
    """central.yaml read with a filled-in central.env, and that env."""
    variables = filled_in(COMPOSE_DIR / "central.env.example")
    return read_compose(CENTRAL_YAML, variables), variables


def init_script_databases() -> list[str]:
    """The databases PostgreSQL's init script of central.yaml creates."""
    script = (COMPOSE_DIR / "central" / "create-databases.sql").read_text()
    return re.findall(r"^CREATE DATABASE (\w+);", script, re.M)
