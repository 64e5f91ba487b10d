"""Fixtures of the deployment tests: a Mosquitto with the logins and ACL the compose
setup of a site has (tests/deploy/test_compose_edge_run.py, test_compose_central_run.py)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mosquitto import Mosquitto

ACL = Path(__file__).resolve().parents[2] / "config" / "mosquitto" / "acl"


@pytest.fixture
def mqtt_logins() -> dict[str, str]:
    """The broker's password file as the operator makes it: the edge and the sensors."""
    return {name: secrets.token_hex(8) for name in ("evpark-edge", "S-A1", "S-B1")}


@pytest.fixture
def broker(tmp_path: Path, mqtt_logins: dict[str, str]) -> Iterator[Mosquitto]:
    workdir = tmp_path / "mosquitto"
    workdir.mkdir()
    mosquitto = Mosquitto(workdir, users=mqtt_logins, acl_file=ACL)
    mosquitto.start()
    try:
        yield mosquitto
    finally:
        mosquitto.stop()
