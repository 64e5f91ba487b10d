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
from sim.charger import OcppVersion, SimChargerConfig
from tests.harness.ports import free_port
from tests.harness.site_config import write_site_toml

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


def site_file(tmp_path: Path, config: SiteConfig) -> Path:
    """The site file an admin would have for ``config``, for the `evpark` commands that read
    it (`users`, `chargers`) next to a running daemon: its id, environment, data directory
    and chargers."""
    return write_site_toml(
        tmp_path / "site.toml",
        {
            "site": {"id": config.site.id, "environment": config.site.environment},
            "storage": {"data_dir": config.storage.data_dir},
            "chargers": [{"id": c.id, "password": c.password} for c in config.chargers],
        },
    )


@pytest.fixture
def config_factory(tmp_path: Path) -> Callable[..., SiteConfig]:
    return lambda **sections: make_config(tmp_path / "data", **sections)


@pytest.fixture
async def edge(config_factory: Callable[..., SiteConfig]) -> AsyncIterator[EdgeDaemon]:
    async with EdgeDaemon(config_factory()) as daemon:
        yield daemon


def ocpp_url(daemon: EdgeDaemon) -> str:
    return f"ws://127.0.0.1:{daemon.ocpp_port}/ocpp"


def sim_charger_config(
    daemon: EdgeDaemon, charger_id: str, version: OcppVersion, **settings: Any
) -> SimChargerConfig:
    """A simulated charger for ``daemon``: meter values only when the test sends them, a
    simulated minute each second, quick reconnects; ``settings`` change any of that."""
    defaults: dict[str, Any] = {
        "url": ocpp_url(daemon),
        "version": version,
        "auto_meter_values": False,
        "id_tags": ("TAG-OK",),
        "speed": 60.0,
        "meter_interval": 1.0,
        "seed": 7,
        "call_timeout": 5.0,
        "backoff_initial": 0.05,
        "backoff_max": 0.2,
    }
    return SimChargerConfig(charger_id, **{**defaults, **settings})


@pytest.fixture
async def api(edge: EdgeDaemon) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{edge.http_port}", timeout=15
    ) as client:
        yield client


@pytest.fixture(params=[Version.V16, Version.V201], ids=["ocpp1.6", "ocpp2.0.1"])
def version(request: pytest.FixtureRequest) -> Version:
    return request.param  # type: ignore[no-any-return]
