"""The charging API on the all-in-one app: commands to the site, results, sessions, cost."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

from common.timestamps import format_timestamp
from tests.central.conftest import Central, FakeClock, cloud_event

RATES = {
    "currency": "EUR",
    "energy_price_per_kwh": "0.40",
    "parking_price_per_hour": "1.00",
    "idle_fee_per_minute": "0.10",
    "idle_grace_minutes": 10,
    "timezone": "UTC",
    "tou_windows": [],
}


class Site:
    """Plays the edge of one site over the sync API."""

    def __init__(self, central: Central, site_id: str, headers: dict[str, str]) -> None:
        self.central = central
        self.site_id = site_id
        self.headers = headers
        self.sequence = 0

    async def send(self, type_: str, data: dict[str, Any], time: Any = None) -> None:
        self.sequence += 1
        event = cloud_event(self.site_id, self.sequence, type_, data, time=time)
        r = await self.central.client.post(
            "/sync/v1/events", json={"events": [event]}, headers=self.headers
        )
        assert r.status_code == 200, r.text

    async def commands(self, wait: float = 0) -> list[dict[str, Any]]:
        r = await self.central.client.get(
            "/sync/v1/commands", params={"wait": wait}, headers=self.headers
        )
        assert r.status_code == 200, r.text
        return list(r.json()["commands"])

    async def answer(self, command: dict[str, Any], status: str, **result: Any) -> None:
        await self.send(
            "command.result",
            {
                "command_id": command["id"],
                "command_type": command["type"],
                "status": status,
                "result": result,
            },
        )


async def make_site(central: Central, site_id: str = "south") -> Site:
    return Site(central, site_id, await central.auth("site", site_id))


APP_TOKEN = re.compile(r"^A[A-Z2-7]{19}$")


async def test_start_is_a_pending_command_until_the_site_answers(
    central: Central, clock: FakeClock
) -> None:
    driver = await central.auth("driver", user="ann", vehicles=("ev-1",))
    site = await make_site(central)
    r = await central.client.post(
        "/charging/start",
        json={"site_id": "south", "charger_id": "CP1", "vehicle_id": "ev-1"},
        headers=driver,
    )
    assert r.status_code == 202
    started = r.json()
    assert started["status"] == "pending"
    await central.settle()
    (command,) = await site.commands()
    assert command["id"] == started["command_id"]
    assert command["type"] == "remote_start"
    # a per-session app token for the vehicle and its driver, valid ten minutes
    token = command["payload"]["id_tag"]
    assert APP_TOKEN.match(token), token
    assert command["payload"] == {
        "charger_id": "CP1",
        "id_tag": token,
        "vehicle_id": "ev-1",
        "driver_id": "ann",
        "token_expires_at": format_timestamp(clock() + timedelta(minutes=10)),
    }
    r = await central.client.post(f"/sync/v1/commands/{command['id']}/ack", headers=site.headers)
    assert r.status_code == 204
    assert await site.commands() == []  # acknowledged: not delivered again

    # the site answers once the session has begun with the token
    await site.answer(command, "accepted", session_id="s-17", transaction_id=17)
    await central.settle()
    r = await central.client.get(f"/charging/commands/{command['id']}", headers=driver)
    assert r.status_code == 200
    assert r.json()["status"] == "accepted"
    assert r.json()["result"] == {"session_id": "s-17", "transaction_id": 17}


async def test_start_waits_for_the_chargers_answer(central: Central) -> None:
    driver = await central.auth("driver", vehicles=("ev-2",))
    site = await make_site(central)

    async def edge() -> None:
        (command,) = await site.commands(wait=10)
        await site.answer(command, "rejected")

    edge_task = asyncio.create_task(edge())
    r = await central.client.post(
        "/charging/start",
        params={"wait": 10},
        json={"site_id": "south", "charger_id": "CP1", "vehicle_id": "ev-2"},
        headers=driver,
    )
    await edge_task
    assert r.status_code == 200
    assert r.json()["status"] == "rejected"


async def test_unanswered_commands_expire(central: Central, clock: FakeClock) -> None:
    driver = await central.auth("driver", vehicles=("ev-3",))
    r = await central.client.post(
        "/charging/start",
        json={"site_id": "south", "charger_id": "CP1", "vehicle_id": "ev-3"},
        headers=driver,
    )
    command_id = r.json()["command_id"]
    clock.advance(timedelta(seconds=central.settings.command_ttl_s + 1))
    r = await central.client.get(f"/charging/commands/{command_id}", headers=driver)
    assert r.json()["status"] == "expired"
    site = await make_site(central)
    await central.settle()
    assert await site.commands() == []


async def test_session_energy_cost_history_and_stop(central: Central, clock: FakeClock) -> None:
    operator = await central.auth("operator")
    driver = await central.auth("driver", user="dee", vehicles=("ev-4",))
    site = await make_site(central)
    r = await central.client.put("/charging/rates/south", json=RATES, headers=operator)
    assert r.status_code == 200, r.text
    r = await central.client.get("/charging/rates", params={"site_id": "south"}, headers=driver)
    assert r.json()["items"][0]["energy_price_per_kwh"] == "0.40"

    r = await central.client.post(
        "/charging/start",
        json={"site_id": "south", "charger_id": "CP1", "vehicle_id": "ev-4"},
        headers=driver,
    )
    await central.settle()
    commands = await site.commands()
    start_cmd = next(c for c in commands if c["type"] == "remote_start")
    assert any(c["type"] == "update_rates" for c in commands)
    token = start_cmd["payload"]["id_tag"]
    t0 = clock()
    await site.send(
        "charging.started",
        {
            "session_id": "s-1",
            "charger_id": "CP1",
            "evse_id": 1,
            "connector_id": 1,
            "id_tag": token,
            "transaction_id": 5,
            "meter_start_wh": 1000,
            "started_at": t0.isoformat(),
        },
    )
    await site.answer(start_cmd, "accepted", session_id="s-1")
    await site.send(
        "charging.progress",
        {
            "session_id": "s-1",
            "energy_wh": 7000,
            "power_w": 7000,
            "at": (t0 + timedelta(hours=1)).isoformat(),
        },
    )
    await site.send(
        "charging.progress",
        {
            "session_id": "s-1",
            "energy_wh": 10000,
            "power_w": 0,
            "at": (t0 + timedelta(hours=2)).isoformat(),
        },
    )
    await central.settle()
    clock.advance(timedelta(hours=2, minutes=30))
    status = (await central.client.get("/charging/status/ev-4", headers=driver)).json()
    assert status["charging"] is True
    assert status["session"]["energy_wh"] == 10000
    assert status["session"]["driver_id"] == "dee"
    assert Decimal(status["session"]["cost"]["idle"]) == Decimal("2.00")  # 30 min - 10 grace

    r = await central.client.post("/charging/stop", json={"vehicle_id": "ev-4"}, headers=driver)
    assert r.status_code == 202
    await central.settle()
    stop_cmd = next(c for c in await site.commands() if c["type"] == "remote_stop")
    assert stop_cmd["payload"]["session_id"] == "s-1"
    assert stop_cmd["payload"]["transaction_id"] == "5"
    await site.send(
        "charging.completed",
        {
            "session_id": "s-1",
            "charger_id": "CP1",
            "evse_id": 1,
            "id_tag": token,
            "transaction_id": 5,
            "energy_wh": 10000,
            "started_at": t0.isoformat(),
            "stopped_at": (t0 + timedelta(hours=2, minutes=30)).isoformat(),
            "reason": "Remote",
            "inferred": False,
        },
    )
    await central.settle()
    history = (await central.client.get("/charging/history/ev-4", headers=driver)).json()
    (session,) = history["items"]
    assert (session["status"], session["driver_id"]) == ("completed", "dee")
    cost = {
        k: Decimal(v) for k, v in session["cost"].items() if k not in ("currency", "idle_minutes")
    }
    # 10 kWh x 0.40 + 2.5 h x 1.00 + 20 idle minutes x 0.10
    assert cost == {
        "energy_kwh": Decimal(10),
        "energy": Decimal("4.00"),
        "parking": Decimal("2.50"),
        "idle": Decimal("2.00"),
        "total": Decimal("8.50"),
    }
    status = (await central.client.get("/charging/status/ev-4", headers=driver)).json()
    assert status["charging"] is False
    r = await central.client.post("/charging/stop", json={"vehicle_id": "ev-4"}, headers=driver)
    assert r.status_code == 404


async def test_charger_status_and_refusals(central: Central) -> None:
    driver = await central.auth("driver", vehicles=("ev-5",))
    site = await make_site(central)
    await site.send(
        "charger.status",
        {
            "charger_id": "CP9",
            "evse_id": 0,
            "connector_id": 0,
            "status": "Unavailable",
            "online": False,
        },
    )
    await central.settle()
    stations = (
        await central.client.get("/charging/stations", params={"site_id": "south"}, headers=driver)
    ).json()
    assert stations["items"][0]["online"] is False
    r = await central.client.post(
        "/charging/start",
        json={"site_id": "south", "charger_id": "CP9", "vehicle_id": "ev-5"},
        headers=driver,
    )
    assert r.status_code == 409
    assert "offline" in r.json()["detail"]
    r = await central.client.put("/charging/rates/south", json=RATES, headers=driver)
    assert r.status_code == 403
    bad = {**RATES, "timezone": "Mars/Olympus", "energy_price_per_kwh": "-1"}
    r = await central.client.put(
        "/charging/rates/south", json=bad, headers=await central.auth("operator")
    )
    assert r.status_code == 422
    r = await central.client.post("/charging/stop", json={}, headers=driver)
    assert r.status_code == 422
    r = await central.client.get("/charging/commands/none", headers=driver)
    assert r.status_code == 404
