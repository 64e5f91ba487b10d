"""Fixtures for the edge daemon: a real daemon on free ports in the test's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge.config import SiteConfig
from edge.daemon import EdgeDaemon
from edge.event_loop import LoopFactory, loop_factory, uvloop_installed
from ocpp_handlers.schemas import Version
from tests.services import free_port

PASSWORD = "secret-password-1"
# The OCPP endpoint's own tests run on both event loops the daemon may run on.
_BOTH_LOOPS = ("test_ocpp_conformance", "test_security_profiles", "test_ws_framing")


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, LoopFactory]:
    factories: dict[str, LoopFactory] = {"asyncio": asyncio.new_event_loop}
    module = getattr(item, "module", None)
    if module is not None and module.__name__.endswith(_BOTH_LOOPS) and uvloop_installed():
        factories["uvloop"] = loop_factory("uvloop")
    return factories


def make_config(data_dir: Path, **sections: Any) -> SiteConfig:
    base: dict[str, Any] = {
        "site": {"id": "test-site", "environment": "development"},
        "ocpp": {"host": "127.0.0.1", "port": 0, "auto_register": True, "call_timeout": 5},
        "http": {"host": "127.0.0.1", "port": 0},
        "storage": {"data_dir": data_dir},
        "authorization": {"id_tags": ["TAG-OK", "TAG-2"]},
        "chargers": [{"id": "CP-LOCKED", "password": PASSWORD}],
        # no broker there: tests that need MQTT start their own Mosquitto
        "mqtt": {"url": f"mqtt://127.0.0.1:{free_port()}", "embedded": False},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return SiteConfig(**base)


@pytest.fixture
def config_factory(tmp_path: Path) -> Callable[..., SiteConfig]:
    return lambda **sections: make_config(tmp_path / "data", **sections)


@pytest.fixture
async def edge(config_factory: Callable[..., SiteConfig]) -> AsyncIterator[EdgeDaemon]:
    async with EdgeDaemon(config_factory()) as daemon:
        yield daemon


def ocpp_url(daemon: EdgeDaemon) -> str:
    return f"ws://127.0.0.1:{daemon.ocpp_port}/ocpp"


@pytest.fixture
async def api(edge: EdgeDaemon) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{edge.http_port}", timeout=15
    ) as client:
        yield client


@pytest.fixture(params=[Version.V16, Version.V201], ids=["ocpp1.6", "ocpp2.0.1"])
def version(request: pytest.FixtureRequest) -> Version:
    return request.param  # type: ignore[no-any-return]
