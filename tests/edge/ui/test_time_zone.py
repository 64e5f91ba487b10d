"""The site's time zone: the pages show local times with the zone's name; the APIs stay UTC."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from edge.daemon import EdgeDaemon
from ocpp_handlers.schemas import Version
from tests.edge.conftest import make_config, ocpp_url
from tests.edge.ui.conftest import add_users, logged_in
from tests.mosquitto import Mosquitto
from tests.ocpp_client import RawCharger
from tests.ocpp_flows import flow_for

BERLIN = ZoneInfo("Europe/Berlin")
TIME = re.compile(r'<time datetime="([^"]+)"[^>]*>([^<]+)</time>')


@pytest.fixture
async def berlin_daemon(tmp_path: Path, broker: Mosquitto) -> AsyncIterator[EdgeDaemon]:
    config = make_config(
        tmp_path / "data",
        site={"id": "test-site", "environment": "development", "timezone": "Europe/Berlin"},
        chargers=[{"id": "CP-1"}],
        mqtt={"url": broker.url, "embedded": False},
    )
    async with EdgeDaemon(config) as running:
        await add_users(running)
        yield running


async def test_pages_show_the_sites_local_time_and_the_api_utc(berlin_daemon: EdgeDaemon) -> None:
    async with RawCharger(ocpp_url(berlin_daemon), "CP-1", Version.V16) as charger:
        await flow_for(charger).boot()
    async with logged_in(berlin_daemon, "vic") as ui:
        page = (await ui.http.get("/chargers")).text
        shown = TIME.findall(page)
        assert shown, page
        for moment, text in shown:
            local = datetime.fromisoformat(moment).astimezone(BERLIN)
            assert text == local.strftime("%Y-%m-%d %H:%M:%S %Z")
            assert text.endswith((" CET", " CEST"))
        power = (await ui.http.get("/")).text  # the overview draws the site power
        assert "times in Europe/Berlin" in power

    base = f"http://127.0.0.1:{berlin_daemon.http_port}"
    async with httpx.AsyncClient(base_url=base) as api:
        listed = (await api.get("/api/chargers")).json()
    last_seen = next(c["last_seen"] for c in listed if c["id"] == "CP-1")
    assert last_seen.endswith("Z")  # the API answers in UTC whatever the site's zone
    assert datetime.fromisoformat(last_seen).utcoffset() == timedelta(0)
