"""Drivers see and change only their own data; operators see everything; a site key only
its own site. Through the real gateway and services (all-in-one app)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from central import cli
from central.app import create_app
from central.settings import CentralSettings
from tests.central.conftest import Central
from tests.central.test_charging_api import RATES

LOT = {"name": "North", "slots": [{"slot_id": "E1", "slot_type": "ev", "charger_id": "CP1"}]}


async def _setup(central: Central) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    operator = await central.auth("operator")
    r = await central.client.put("/parking/lots/north", json=LOT, headers=operator)
    assert r.status_code == 200, r.text
    alice = await central.auth("driver", user="alice", vehicles=("car-a",))
    bob = await central.auth("driver", user="bob", vehicles=("car-b",))
    return operator, alice, bob


def _forbidden(r: Any) -> None:
    assert r.status_code == 403, r.text
    assert r.headers["content-type"] == "application/json"
    assert "may not access" in r.json()["detail"] or "not one of" in r.json()["detail"]


async def test_a_driver_cannot_read_or_change_another_drivers_parking(central: Central) -> None:
    operator, alice, bob = await _setup(central)
    c = central.client
    booked = await c.post(
        "/parking/reserve",
        json={"site_id": "north", "vehicle_id": "car-a", "slot_type": "ev", "duration_minutes": 60},
        headers=alice,
    )
    assert booked.status_code == 201, booked.text
    rid = booked.json()["id"]

    # bob: neither alice's history, reservation, nor reserving or releasing for her car
    _forbidden(await c.get("/parking/history/car-a", headers=bob))
    _forbidden(await c.get(f"/parking/reservations/{rid}", headers=bob))
    _forbidden(await c.get("/parking/reservations", params={"vehicle_id": "car-a"}, headers=bob))
    _forbidden(await c.get("/parking/reservations", headers=bob))  # all of them: no
    _forbidden(await c.delete("/parking/release", params={"reservation_id": rid}, headers=bob))
    _forbidden(await c.delete("/parking/release", params={"vehicle_id": "car-a"}, headers=bob))
    body = {"site_id": "north", "vehicle_id": "car-a", "slot_type": "ev", "duration_minutes": 30}
    _forbidden(await c.post("/parking/reserve", json=body, headers=bob))
    # the slot shows alice's reservation to alice and the operator, not to bob
    slot = (await c.get("/parking/slots/E1", headers=bob)).json()
    assert slot["upcoming"] == []
    assert [
        r["id"] for r in (await c.get("/parking/slots/E1", headers=alice)).json()["upcoming"]
    ] == [rid]
    # the reservation is still alive: bob's attempt changed nothing
    assert (await c.get(f"/parking/reservations/{rid}", headers=alice)).json()["status"] == "booked"

    # alice sees her own; the operator sees everyone's and may release it
    history = (await c.get("/parking/history/car-a", headers=alice)).json()
    assert [e["kind"] for e in history["items"]] == ["booked"]
    assert (await c.get("/parking/history/car-a", headers=operator)).status_code == 200
    listed = (await c.get("/parking/reservations", headers=operator)).json()
    assert [r["id"] for r in listed["items"]] == [rid]
    r = await c.delete("/parking/release", params={"reservation_id": rid}, headers=operator)
    assert r.status_code == 200
    assert r.json()["status"] == "cancelled"


async def test_a_driver_cannot_read_or_stop_another_drivers_charging(central: Central) -> None:
    operator, alice, bob = await _setup(central)
    c = central.client
    start = {"site_id": "north", "charger_id": "CP1", "vehicle_id": "car-a"}
    r = await c.post("/charging/start", json=start, headers=alice)
    assert r.status_code == 202, r.text
    command_id = r.json()["command_id"]
    _forbidden(await c.post("/charging/start", json=start, headers=bob))
    _forbidden(await c.get(f"/charging/commands/{command_id}", headers=bob))
    _forbidden(await c.get("/charging/history/car-a", headers=bob))
    _forbidden(await c.get("/charging/status/car-a", headers=bob))
    _forbidden(await c.post("/charging/stop", json={"vehicle_id": "car-a"}, headers=bob))
    _forbidden(await c.get("/charging/id-tags", params={"vehicle_id": "car-a"}, headers=bob))
    # the site and charger listing is for operators and the site
    assert (await c.get("/charging/sessions", headers=bob)).status_code == 403
    assert (await c.get("/charging/history/car-a", headers=alice)).status_code == 200
    assert (await c.get(f"/charging/commands/{command_id}", headers=alice)).status_code == 202
    assert (await c.get("/charging/history/car-a", headers=operator)).status_code == 200
    assert (await c.get(f"/charging/commands/{command_id}", headers=operator)).status_code == 202


async def test_a_driver_cannot_read_or_change_another_users_preferences(
    central: Central,
) -> None:
    operator, alice, bob = await _setup(central)
    c = central.client
    prefs = {"vehicle_ids": ["car-a"], "channels": {"email": {"address": "alice@example.com"}}}
    r = await c.put("/notifications/users/alice/preferences", json=prefs, headers=alice)
    assert r.status_code == 200, r.text
    hijack = {"vehicle_ids": ["car-a"], "channels": {"email": {"address": "bob@example.com"}}}
    _forbidden(await c.put("/notifications/users/alice/preferences", json=hijack, headers=bob))
    _forbidden(await c.get("/notifications/users/alice/preferences", headers=bob))
    _forbidden(await c.delete("/notifications/users/alice/preferences", headers=bob))
    _forbidden(await c.get("/notifications/users/alice", headers=bob))
    # nor be told about alice's car under his own name, nor about a stranger's card
    _forbidden(await c.put("/notifications/users/bob/preferences", json=hijack, headers=bob))
    r = await c.put(
        "/notifications/users/bob/preferences", json={"id_tags": ["CARD-9"]}, headers=bob
    )
    _forbidden(r)
    kept = (await c.get("/notifications/users/alice/preferences", headers=alice)).json()
    assert kept["channels"]["email"]["address"] == "alice@example.com"
    # the operator manages anyone's
    r = await c.put("/notifications/users/alice/preferences", json=hijack, headers=operator)
    assert r.status_code == 200
    assert (await c.get("/notifications/users/alice", headers=operator)).status_code == 200


async def test_a_site_key_reads_no_drivers_data_and_only_its_own_sessions(
    central: Central,
) -> None:
    await _setup(central)
    c = central.client
    north = await central.auth("site", "north")
    for path in (
        "/parking/history/car-a",
        "/parking/reservations",
        "/charging/history/car-a",
        "/charging/status/car-a",
        "/notifications/users/alice",
        "/notifications/users/alice/preferences",
    ):
        assert (await c.get(path, headers=north)).status_code == 403, path
    assert (await c.get("/charging/sessions", headers=north)).status_code == 200
    r = await c.get("/charging/sessions", params={"site_id": "north"}, headers=north)
    assert r.status_code == 200
    r = await c.get("/charging/sessions", params={"site_id": "south"}, headers=north)
    assert r.status_code == 403


async def test_a_driver_key_without_vehicles_sees_none(central: Central) -> None:
    await _setup(central)
    nobody = await central.auth("driver", user="carol")
    _forbidden(await central.client.get("/charging/history/car-a", headers=nobody))
    _forbidden(await central.client.get("/parking/history/car-b", headers=nobody))
    # the public views still answer
    assert (await central.client.get("/parking/status", headers=nobody)).status_code == 200


def test_driver_keys_and_vehicles_from_the_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"EVPARK_CENTRAL_DATA_DIR": str(tmp_path)}

    def evpark(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli.app, list(args), env=env)
        assert result.exit_code == code, result.output
        return result.output

    assert "needs --user" in evpark("keys", "create", "--scope", "driver", code=2)
    assert "only driver keys" in evpark(
        "keys", "create", "--scope", "operator", "--user", "x", code=2
    )
    alice = evpark("keys", "create", "--scope", "driver", "--user", "alice", "--vehicle", "car-a")
    evpark("vehicles", "add", "alice", "car-a2")
    assert "belongs to another user" in evpark("vehicles", "add", "bob", "car-a", code=2)
    assert evpark("vehicles", "list", "alice").split() == ["car-a", "car-a2"]
    evpark("vehicles", "remove", "alice", "car-a2")
    evpark("vehicles", "remove", "alice", "car-a2", code=1)
    assert "\talice\t" in evpark("keys", "list")

    async def codes() -> list[int]:
        app = create_app(CentralSettings(data_dir=tmp_path))
        headers = {"Authorization": f"Bearer {alice.strip()}"}
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://central"
            ) as client,
        ):
            return [
                (await client.get(f"/charging/history/{v}", headers=headers)).status_code
                for v in ("car-a", "car-a2")
            ]

    assert asyncio.run(codes()) == [200, 403]


async def test_subject_ids_are_whole_ids(central: Central) -> None:
    """A trailing newline is not part of an id (a regex ``$`` would let it through)."""
    from central.gateway.keys import InvalidKeyRequest

    for scope, site, user, vehicles in (
        ("driver", None, "alice\n", ()),
        ("driver", None, "alice", ("car-a\n",)),
        ("site", "north\n", None, ()),
    ):
        with pytest.raises(InvalidKeyRequest):
            await central.keys.create(scope, site, user_id=user, vehicle_ids=vehicles)
    await central.keys.create("driver", user_id="alice@example.com", vehicle_ids=("car-a",))


async def test_no_route_takes_a_site_id_no_site_can_have(central: Central) -> None:
    """Site ids follow the sync contract (no ':'): a write to such a "site" would be a row
    no edge can ever read, and a command to it a 500."""
    operator = await central.auth("operator")
    for method, path, body in (
        ("PUT", "/parking/lots/so:uth", LOT),
        ("GET", "/parking/lots/so:uth", None),
        ("PUT", "/charging/rates/so:uth", RATES),
        ("GET", "/parking/status?site_id=so:uth", None),
        ("GET", "/charging/stations?site_id=so:uth", None),
    ):
        r = await central.client.request(method, path, json=body, headers=operator)
        assert r.status_code == 422, (method, path, r.text)
        assert [e["loc"][-1] for e in r.json()["detail"]] == ["site_id"], r.text
    # the same bodies are fine for a site that can exist
    assert (
        await central.client.put("/charging/rates/south", json=RATES, headers=operator)
    ).is_success
