"""Charging profiles from the local API, both versions, against simulated chargers that
obey them: a default profile limits the charge, the composite schedule reads it back,
clearing lifts it, 2.0.1 reports its profiles; bodies that make no sense are refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from edge.daemon import EdgeDaemon
from ocpp_handlers.schemas import Version
from sim.charger import SimCharger
from tests.edge.conftest import sim_charger_config
from tests.edge.site_commands import wire
from tests.polling import eventually


@pytest.fixture
async def post(edge: EdgeDaemon) -> AsyncIterator[Callable[..., Any]]:
    base = f"http://127.0.0.1:{edge.http_port}/api/chargers/CP-PRO"
    async with httpx.AsyncClient(base_url=base, timeout=10) as api:

        async def send(path: str, body: dict[str, Any]) -> httpx.Response:
            return await api.post(path, json=body)

        yield send


async def test_a_profile_set_read_back_and_cleared(
    edge: EdgeDaemon, version: Version, post: Callable[..., Any]
) -> None:
    settings = sim_charger_config(edge, "CP-PRO", wire(version), max_power_w=22_000.0)
    async with SimCharger(settings) as cp:
        async with asyncio.timeout(10):
            await cp.wait_online()
        await cp.plug_in(1)
        await cp.start(1, "TAG-OK")
        body = {
            "evse_id": 1, "profile_id": 7, "purpose": "tx_default", "unit": "A",
            "periods": [{"start_s": 0, "limit": 10}],
            "start": datetime.now(UTC).isoformat(),
        }  # fmt: skip
        answer = await post("/charging-profile", body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "Accepted"
        assert cp.connectors[1].meter.limit_w == pytest.approx(10 * 230 * 3)
        composite = await post(
            "/composite-schedule", {"evse_id": 1, "duration_s": 600, "unit": "A"}
        )
        assert composite.json()["status"] == "Accepted"
        response = composite.json()["response"]
        schedule = response["chargingSchedule"] if version is Version.V16 else response["schedule"]
        assert schedule["chargingSchedulePeriod"][0]["limit"] == 10.0
        if version is Version.V201:
            listed = await post("/charging-profiles", {"purpose": "tx_default"})
            assert listed.json()["status"] == "Accepted"
            request_id = listed.json()["request_id"]

            async def reported() -> bool:
                base = f"http://127.0.0.1:{edge.http_port}"
                async with httpx.AsyncClient(base_url=base) as api:
                    events = (await api.get("/api/chargers/CP-PRO/events")).json()
                return any(
                    e["kind"] == "report_charging_profiles" and e["data"]["requestId"] == request_id
                    for e in events
                )  # fmt: skip

            await eventually(reported, "the charger's report kept as a charger event")
        else:
            refused = await post("/charging-profiles", {})
            assert refused.status_code == 422  # GetChargingProfiles is 2.0.1 only
        cleared = await post("/clear-charging-profile", {"profile_id": 7})
        assert cleared.json()["status"] == "Accepted"
        assert cp.connectors[1].meter.limit_w is None


@pytest.mark.parametrize(
    "body",
    [
        {"profile_id": 1, "purpose": "tx_default", "periods": []},
        {"profile_id": 1, "purpose": "tx_default", "periods": [{"start_s": 60, "limit": 6}]},
        {"profile_id": 1, "purpose": "tx_default",
         "periods": [{"start_s": 0, "limit": 6}, {"start_s": 0, "limit": 8}]},
        {"profile_id": 1, "purpose": "tx", "evse_id": 1, "periods": [{"start_s": 0, "limit": 6}]},
        {"profile_id": 1, "purpose": "max", "evse_id": 2, "periods": [{"start_s": 0, "limit": 6}]},
        {"profile_id": 9_300, "purpose": "tx_default", "periods": [{"start_s": 0, "limit": 6}]},
        {"profile_id": 1, "purpose": "tx_default", "periods": [{"start_s": 0, "limit": -1}]},
    ],
)  # fmt: skip
async def test_a_profile_that_makes_no_sense_is_refused(
    edge: EdgeDaemon, post: Callable[..., Any], body: dict[str, Any]
) -> None:
    answer = await post("/charging-profile", body)
    assert answer.status_code == 422, answer.text
