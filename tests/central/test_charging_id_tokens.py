"""The drivers' id tokens at central: who registers which card, how every site learns
them, the per-session app token of a remote start, and how a start that does not begin
a session is reported (``rejected``/``failed``, ``charging.failed``), never ``accepted``."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from tests.central.conftest import Central, FakeClock
from tests.central.test_charging_api import Site, make_site


async def _tag_lists(site: Site) -> list[dict[str, Any]]:
    """The ``update_id_tags`` payloads queued for the site by version (the order in which
    they apply); acknowledged."""
    found = []
    for command in await site.commands():
        if command["type"] == "update_id_tags":
            found.append(command["payload"])
            r = await site.central.client.post(
                f"/sync/v1/commands/{command['id']}/ack", headers=site.headers
            )
            assert r.status_code == 204
    return sorted(found, key=lambda payload: int(payload["version"]))


async def _hello(site: Site) -> None:
    """The site sends charging an event, so charging knows it."""
    await site.send(
        "charger.status",
        {"charger_id": "CP1", "evse_id": 0, "connector_id": 0, "status": "Available",
         "online": True},
    )  # fmt: skip
    await site.central.settle()


async def test_a_driver_registers_a_card_and_every_site_receives_it(central: Central) -> None:
    operator = await central.auth("operator")
    ann = await central.auth("driver", user="ann", vehicles=("car-a",))
    north = await make_site(central, "north")
    await _hello(north)
    assert await _tag_lists(north) == []  # nothing to accept yet: nothing sent

    r = await central.client.put(
        "/charging/id-tags/CARD-1", json={"vehicle_id": "car-a"}, headers=ann
    )
    assert r.status_code == 200, r.text
    assert {k: r.json()[k] for k in ("vehicle_id", "driver_id", "kind", "status")} == {
        "vehicle_id": "car-a", "driver_id": "ann", "kind": "rfid", "status": "Accepted",
    }  # fmt: skip
    await central.settle()
    (change,) = await _tag_lists(north)
    assert change["full"] is False
    assert change["tags"] == [
        {"id_tag": "CARD-1", "status": "Accepted", "expires_at": None, "vehicle_id": "car-a",
         "driver_id": "ann"},
    ]  # fmt: skip

    # a site charging sees later gets the full list once, with a newer version
    south = await make_site(central, "south")
    await _hello(south)
    await _hello(south)
    (full,) = await _tag_lists(south)
    assert full["full"] is True
    assert [t["id_tag"] for t in full["tags"]] == ["CARD-1"]
    assert full["version"] > change["version"]

    # an operator blocks it for ann; ann removes it: both sites are told each time
    r = await central.client.put(
        "/charging/id-tags/CARD-1",
        json={"vehicle_id": "car-a", "driver_id": "ann", "status": "Blocked"},
        headers=operator,
    )
    assert r.status_code == 200, r.text
    assert (await central.client.delete("/charging/id-tags/CARD-1", headers=ann)).status_code == 204
    await central.settle()
    for site in (north, south):
        blocked, removed = await _tag_lists(site)
        assert (blocked["tags"][0]["status"], removed["tags"][0]["status"]) == (
            "Blocked", "Invalid",
        )  # fmt: skip
        assert full["version"] < blocked["version"] < removed["version"]


async def test_operators_may_do_everything_drivers_only_for_their_own(central: Central) -> None:
    operator = await central.auth("operator")
    ann = await central.auth("driver", user="ann", vehicles=("car-a",))
    bob = await central.auth("driver", user="bob", vehicles=("car-b",))
    c = central.client

    async def put(tag: str, headers: dict[str, str], **body: Any) -> int:
        return (await c.put(f"/charging/id-tags/{tag}", json=body, headers=headers)).status_code

    assert await put("ANN-1", ann, vehicle_id="car-a") == 200
    assert await put("ANN-1", ann, vehicle_id="car-a") == 200  # again: no change
    assert await put("ANN-2", ann, vehicle_id="car-b") == 403  # not her vehicle
    assert await put("ANN-3", ann, vehicle_id="car-a", driver_id="bob") == 403  # not as bob
    assert await put("ANN-1", bob, vehicle_id="car-b") == 409  # her card
    assert await put("FLEET-1", operator, vehicle_id="car-b", driver_id="bob") == 200
    assert await put("FLEET-2", operator, vehicle_id="car-b") == 200  # no driver known

    listed = (await c.get("/charging/id-tags", headers=ann)).json()
    assert [t["id_tag"] for t in listed["items"]] == ["ANN-1"]
    listed = (await c.get("/charging/id-tags", headers=operator)).json()
    assert [t["id_tag"] for t in listed["items"]] == ["ANN-1", "FLEET-1", "FLEET-2"]
    assert (
        await c.get("/charging/id-tags", params={"vehicle_id": "car-a"}, headers=bob)
    ).status_code == 403

    # bob may not remove ann's card, nor learn whether a card exists
    assert (await c.delete("/charging/id-tags/ANN-1", headers=bob)).status_code == 403
    assert (await c.delete("/charging/id-tags/NONE", headers=bob)).status_code == 403
    assert (await c.delete("/charging/id-tags/NONE", headers=operator)).status_code == 404
    assert (await c.delete("/charging/id-tags/ANN-1", headers=operator)).status_code == 204

    # an operator's start for bob's car names the driver of its card
    r = await c.post(
        "/charging/start",
        json={"site_id": "south", "charger_id": "CP1", "vehicle_id": "car-b"},
        headers=operator,
    )
    assert r.status_code == 202, r.text
    site = await make_site(central)
    await central.settle()
    (start,) = [x for x in await site.commands() if x["type"] == "remote_start"]
    assert (start["payload"]["vehicle_id"], start["payload"]["driver_id"]) == ("car-b", "bob")
    # an app token is not a card: no one registers it
    token = start["payload"]["id_tag"]
    assert await put(token, operator, vehicle_id="car-b") == 409
    tokens = (await c.get("/charging/id-tags", params={"vehicle_id": "car-b"}, headers=bob)).json()
    assert {t["id_tag"]: t["kind"] for t in tokens["items"]}[token] == "app"


async def test_a_started_remote_start_is_accepted_with_its_session(
    central: Central, clock: FakeClock
) -> None:
    ann = await central.auth("driver", user="ann", vehicles=("car-a",))
    site = await make_site(central)

    async def edge() -> None:
        (command,) = [c for c in await site.commands(wait=10) if c["type"] == "remote_start"]
        token = command["payload"]["id_tag"]
        await site.send(
            "charging.started",
            {"session_id": "s-1", "charger_id": "CP1", "evse_id": 1, "connector_id": 1,
             "id_tag": token, "transaction_id": 4, "started_at": clock().isoformat(),
             "vehicle_id": "car-a", "driver_id": "ann"},
        )  # fmt: skip
        await site.answer(command, "accepted", session_id="s-1", charger_status="Accepted")

    edge_task = asyncio.create_task(edge())
    r = await central.client.post(
        "/charging/start",
        params={"wait": 10},
        json={"site_id": "south", "charger_id": "CP1", "vehicle_id": "car-a"},
        headers=ann,
    )
    await edge_task
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["result"]["session_id"]) == ("accepted", "s-1")
    await central.settle()
    status = (await central.client.get("/charging/status/car-a", headers=ann)).json()
    assert status["charging"] is True
    assert (status["session"]["session_id"], status["session"]["driver_id"]) == ("s-1", "ann")
    assert status["last_failure"] is None


async def test_a_refused_remote_start_is_rejected_and_the_driver_sees_why(
    central: Central, clock: FakeClock
) -> None:
    ann = await central.auth("driver", user="ann", vehicles=("car-a",))
    site = await make_site(central)

    async def edge() -> None:
        (command,) = [c for c in await site.commands(wait=10) if c["type"] == "remote_start"]
        await site.answer(command, "rejected", charger_status="Rejected")
        await site.send(
            "charging.failed",
            {"charger_id": "CP1", "evse_id": 1, "code": "RemoteStartRejected",
             "reason": "The charger refused to start charging.", "command_id": command["id"],
             "vehicle_id": "car-a", "driver_id": "ann", "id_tag": command["payload"]["id_tag"]},
        )  # fmt: skip

    edge_task = asyncio.create_task(edge())
    r = await central.client.post(
        "/charging/start",
        params={"wait": 10},
        json={"site_id": "south", "charger_id": "CP1", "vehicle_id": "car-a"},
        headers=ann,
    )
    await edge_task
    assert (r.status_code, r.json()["status"]) == (200, "rejected"), r.text
    await central.settle()
    command = (
        await central.client.get(f"/charging/commands/{r.json()['command_id']}", headers=ann)
    ).json()
    assert (command["status"], command["failure_code"]) == ("rejected", "RemoteStartRejected")
    status = (await central.client.get("/charging/status/car-a", headers=ann)).json()
    assert status["charging"] is False
    failure = status["last_failure"]
    assert (failure["code"], failure["command_id"]) == (
        "RemoteStartRejected",
        command["command_id"],
    )
    assert failure["reason"] == "The charger refused to start charging."


async def test_a_start_whose_token_is_refused_fails_with_its_session(
    central: Central, clock: FakeClock
) -> None:
    """The charger accepted the remote start, then its StartTransaction was refused: the
    command was never accepted; it fails, and the refused session is kept as failed."""
    ann = await central.auth("driver", user="ann", vehicles=("car-a",))
    site = await make_site(central)
    r = await central.client.post(
        "/charging/start",
        json={"site_id": "south", "charger_id": "CP1", "vehicle_id": "car-a"},
        headers=ann,
    )
    await central.settle()
    (command,) = [c for c in await site.commands() if c["type"] == "remote_start"]
    clock.advance(timedelta(seconds=20))
    await site.send(
        "charging.failed",
        {"charger_id": "CP1", "evse_id": 1, "code": "TokenRefused",
         "reason": "Your token was refused.", "command_id": command["id"], "session_id": "s-9",
         "vehicle_id": "car-a", "driver_id": "ann", "id_tag": command["payload"]["id_tag"]},
    )  # fmt: skip
    await site.answer(command, "failed")
    await central.settle()
    answer = (
        await central.client.get(f"/charging/commands/{r.json()['command_id']}", headers=ann)
    ).json()
    assert (answer["status"], answer["failure_code"]) == ("failed", "TokenRefused")
    history = (await central.client.get("/charging/history/car-a", headers=ann)).json()
    (session,) = history["items"]
    assert (session["session_id"], session["status"], session["reason"]) == (
        "s-9", "failed", "TokenRefused",
    )  # fmt: skip
    assert (session["energy_wh"], session["driver_id"]) == (0, "ann")


async def test_a_session_ended_before_charging_is_failed_not_active(
    central: Central, clock: FakeClock
) -> None:
    ann = await central.auth("driver", user="ann", vehicles=("car-a",))
    site = await make_site(central)
    r = await central.client.put(
        "/charging/id-tags/ANN-CARD", json={"vehicle_id": "car-a"}, headers=ann
    )
    assert r.status_code == 200
    t0 = clock()
    subject = {"vehicle_id": "car-a", "driver_id": "ann", "id_tag": "ANN-CARD"}
    await site.send(
        "charging.started",
        {"session_id": "s-2", "charger_id": "CP1", "evse_id": 1, "started_at": t0.isoformat(),
         **subject},
    )  # fmt: skip
    clock.advance(timedelta(minutes=1))
    await site.send(
        "charging.failed",
        {"charger_id": "CP1", "evse_id": 1, "code": "EndedBeforeCharging", "session_id": "s-2",
         "reason": "The cable was unplugged before charging began.", **subject},
    )  # fmt: skip
    await central.settle()
    status = (await central.client.get("/charging/status/car-a", headers=ann)).json()
    assert (status["charging"], status["last_failure"]["code"]) == (False, "EndedBeforeCharging")
    history = (await central.client.get("/charging/history/car-a", headers=ann)).json()
    assert [(s["session_id"], s["status"], s["driver_id"]) for s in history["items"]] == [
        ("s-2", "failed", "ann")
    ]
