"""The grid meter on the site's broker: what the building draws is taken off the site
limit before the chargers share it, and a meter message that is not a power is refused
and counted, never used. A real Mosquitto, ``mosquitto_pub`` publishing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from edge.config import SiteConfig
from edge.daemon import EdgeDaemon
from edge.sensors.grid import BadGridReading, grid_watts
from sim.charger import SimCharger
from tests.edge.conftest import sim_charger_config
from tests.mosquitto import Mosquitto, mosquitto_pub, running_mosquitto
from tests.polling import eventually


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with running_mosquitto(tmp_path / "mosquitto") as mosquitto:
        yield mosquitto


@pytest.mark.parametrize(
    ("payload", "watts"), [(b"18450", 18450.0), (b'{"power_w": 900.5}', 900.5), (b"-300", -300.0)]
)
def test_a_grid_reading_is_a_number_of_watts(payload: bytes, watts: float) -> None:
    assert grid_watts(payload) == watts


@pytest.mark.parametrize(
    "payload", [b"", b"lots", b"NaN", b"1e400", b"true", b'{"power": 5}', b"[1]", b"1e12"]
)
def test_anything_else_is_refused(payload: bytes) -> None:
    with pytest.raises(BadGridReading):
        grid_watts(payload)


async def test_the_buildings_load_is_taken_off_the_limit(
    config_factory: Callable[..., SiteConfig], broker: Mosquitto
) -> None:
    config = config_factory(
        mqtt={"url": broker.url, "embedded": False},
        chargers=[{"id": "CP-A", "max_kw": 22}],
        power={"site_limit_kw": 22, "failsafe_kw": 1.0, "cycle_seconds": 1,
               "grid_meter": "building"},
    )  # fmt: skip
    async with (
        EdgeDaemon(config) as edge,
        SimCharger(sim_charger_config(edge, "CP-A", "1.6", max_power_w=22_000.0)) as cp,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{edge.http_port}") as api,
    ):
        await edge.mqtt.wait_connected()
        async with asyncio.timeout(10):
            await cp.wait_online()
        await cp.plug_in(1)
        await cp.start(1, "TAG-OK")
        topic = f"evpark/{config.site.id}/grid/power"
        await mosquitto_pub(broker, topic, "15000")

        async def making_room() -> bool:
            limit = cp.connectors[1].meter.limit_w
            return limit is not None and 0 < limit <= 22_000 - 15_000

        await eventually(making_room, "the charger limited to what the building leaves")
        await mosquitto_pub(broker, topic, "not a number")
        await mosquitto_pub(broker, topic, "1e12")
        await mosquitto_pub(broker, topic, "2000")

        async def freed() -> bool:
            return (cp.connectors[1].meter.limit_w or 0) > 22_000 - 2_000 - 700

        await eventually(freed, "the charger given what the building no longer draws")
        shown = (await api.get("/api/power")).json()
        assert shown["grid_meter"]["last_kw"] == 2.0
        metrics = (await api.get("/metrics")).text
        assert 'evpark_mqtt_rejected_payloads_total{reason="bad_grid_reading"} 2.0' in metrics
