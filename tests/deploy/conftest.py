"""Fixtures of the deployment tests."""

from __future__ import annotations

import secrets

import pytest


@pytest.fixture
def mqtt_logins() -> dict[str, str]:
    """The site broker's password file as the operator makes it: the edge and sensors."""
    return {name: secrets.token_hex(8) for name in ("evpark-edge", "S-A1", "S-B1")}
