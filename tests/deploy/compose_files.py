"""The compose files of ``deploy/compose/`` as an operator fills them in: the env file
examples copied with real secrets, the files read with them, the evpark image's services
as :class:`ContainerSpec`s."""

from __future__ import annotations

import re
import secrets
from dataclasses import replace
from pathlib import Path

from tests.deploy.compose import Compose, read_compose, read_env_file
from tests.deploy.containers import ContainerSpec, is_evpark_image

COMPOSE_DIR = Path(__file__).resolve().parents[2] / "deploy" / "compose"
CENTRAL_YAML = COMPOSE_DIR / "central.yaml"
EDGE_YAML = COMPOSE_DIR / "edge.yaml"
SITE_FILE = "/etc/evpark/site.toml"


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
