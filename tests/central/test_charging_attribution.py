"""Whose a session is: decided by its id tag (a tag registered to the vehicle, or the tag
of the vehicle's remote start on that charger), never by a time window alone. Sessions
that belong to no vehicle stay visible, priced, to operators and in the site's listing."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tests.central.conftest import Central, FakeClock, cloud_event
from tests.central.test_charging_api import RATES, make_site


def _started(session: str, charger: str, tag: str, at: datetime, evse: int = 1) -> dict[str, Any]:
    return {
        "session_id": session,
        "charger_id": charger,
        "evse_id": evse,
        "connector_id": evse,
        "id_tag": tag,
        "transaction_id": session,
        "meter_start_wh": 0,
        "started_at": at.isoformat(),
    }


def _completed(session: str, charger: str, tag: str, at: datetime, evse: int = 1) -> dict[str, Any]:
    return {
        "session_id": session,
        "charger_id": charger,
        "evse_id": evse,
        "id_tag": tag,
        "transaction_id": session,
        "energy_wh": 5000,
        "started_at": at.isoformat(),
        "stopped_at": (at + timedelta(hours=1)).isoformat(),
        "reason": "EVDisconnected",
    }


async def _history(central: Central, vehicle: str, headers: dict[str, str]) -> list[str]:
    r = await central.client.get(f"/charging/history/{vehicle}", headers=headers)
    assert r.status_code == 200, r.text
    return [s["session_id"] for s in r.json()["items"]]


async def _listed(central: Central, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    r = await central.client.get("/charging/sessions", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def test_an_rfid_session_after_anothers_remote_start_is_not_theirs(
    central: Central, clock: FakeClock
) -> None:
    operator = await central.auth("operator")
    alice = await central.auth("driver", user="alice", vehicles=("car-a",))
    site = await make_site(central)
    assert (
        await central.client.put("/charging/rates/south", json=RATES, headers=operator)
    ).is_success
    r = await central.client.post(
        "/charging/start",
        json={"site_id": "south", "charger_id": "CP1", "evse_id": 1, "vehicle_id": "car-a"},
        headers=alice,
    )
    assert r.status_code == 202
    await central.settle()
    start = next(c for c in await site.commands() if c["type"] == "remote_start")
    # the charger accepts; alice's car never plugs in and the charger gives up
    await site.answer(start, "accepted")
    t0 = clock()

    # five minutes later a stranger's card starts a session on the same charger
    stranger_at = t0 + timedelta(minutes=5)
    await site.send("charging.started", _started("rfid-1", "CP1", "STRANGER-CARD", stranger_at))
    clock.advance(timedelta(hours=1, minutes=5))  # central gets the stop when it happens
    await site.send("charging.completed", _completed("rfid-1", "CP1", "STRANGER-CARD", stranger_at))
    await central.settle()
    assert await _history(central, "car-a", alice) == []
    (listed,) = await _listed(central, operator, site_id="south", charger_id="CP1")
    assert (listed["session_id"], listed["vehicle_id"]) == ("rfid-1", None)
    assert listed["cost"]["total"] == "3.00"  # priced all the same: 5 kWh x 0.40 + 1 h x 1.00

    # alice's own remote start, accepted: the session with its tag is hers
    clock.advance(timedelta(hours=2))
    r = await central.client.post(
        "/charging/start",
        json={"site_id": "south", "charger_id": "CP1", "vehicle_id": "car-a"},
        headers=alice,
    )
    await central.settle()
    start = next(c for c in await site.commands() if c["id"] == r.json()["command_id"])
    await site.answer(start, "accepted")
    mine_at = clock() + timedelta(seconds=20)
    await site.send(
        "charging.started", _started("remote-1", "CP1", start["payload"]["id_tag"], mine_at)
    )
    # and a stranger on the other evse of that charger a minute later is still not hers
    await site.send("charging.started", _started("rfid-2", "CP1", "OTHER-CARD", mine_at, evse=2))
    await site.send("charging.completed", _completed("remote-1", "CP1", "car-a", mine_at))
    await site.send("charging.completed", _completed("rfid-2", "CP1", "OTHER-CARD", mine_at, 2))
    await central.settle()
    assert await _history(central, "car-a", alice) == ["remote-1"]
    listed = await _listed(central, operator, site_id="south", charger_id="CP1")
    assert {(s["session_id"], s["vehicle_id"]) for s in listed} == {
        ("rfid-1", None),
        ("rfid-2", None),
        ("remote-1", "car-a"),
    }


async def test_a_registered_tag_names_its_vehicle_and_no_one_else_may_use_it(
    central: Central, clock: FakeClock
) -> None:
    operator = await central.auth("operator")
    alice = await central.auth("driver", user="alice", vehicles=("car-a",))
    bob = await central.auth("driver", user="bob", vehicles=("car-b",))
    site = await make_site(central)
    r = await central.client.put(
        "/charging/id-tags/CARD-B", json={"vehicle_id": "car-b"}, headers=operator
    )
    assert r.status_code == 200, r.text
    r = await central.client.put(
        "/charging/id-tags/CARD-B", json={"vehicle_id": "car-a"}, headers=operator
    )
    assert r.status_code == 409
    # a driver registers cards for its own vehicles only, and never takes another's card
    assert (
        await central.client.put(
            "/charging/id-tags/CARD-X", json={"vehicle_id": "car-b"}, headers=alice
        )
    ).status_code == 403
    r = await central.client.put(
        "/charging/id-tags/CARD-B", json={"vehicle_id": "car-a"}, headers=alice
    )
    assert r.status_code == 409
    assert "another vehicle" in r.json()["detail"]
    # alice cannot remote-start with bob's card to have his sessions named hers: the
    # tag she names is not used, the start carries a token of its own
    r = await central.client.post(
        "/charging/start",
        json={"site_id": "south", "charger_id": "CP2", "vehicle_id": "car-a", "id_tag": "CARD-B"},
        headers=alice,
    )
    assert r.status_code == 202
    await central.settle()
    (start,) = [c for c in await site.commands() if c["id"] == r.json()["command_id"]]
    assert start["payload"]["id_tag"] not in ("CARD-B", "car-a")

    at = clock()
    await site.send("charging.started", _started("card-1", "CP2", "CARD-B", at))
    await site.send("charging.completed", _completed("card-1", "CP2", "CARD-B", at))
    await central.settle()
    assert await _history(central, "car-b", bob) == ["card-1"]
    assert await _history(central, "car-a", alice) == []
    tags = (
        await central.client.get("/charging/id-tags", params={"vehicle_id": "car-b"}, headers=bob)
    ).json()
    assert [t["id_tag"] for t in tags["items"]] == ["CARD-B"]


async def test_events_arriving_late_after_an_outage_are_attributed_the_same(
    central: Central, clock: FakeClock
) -> None:
    operator = await central.auth("operator")
    alice = await central.auth("driver", user="alice", vehicles=("car-a",))
    site = await make_site(central)
    r = await central.client.post(
        "/charging/start",
        json={"site_id": "south", "charger_id": "CP1", "vehicle_id": "car-a"},
        headers=alice,
    )
    command_id = r.json()["command_id"]
    await central.settle()
    (start,) = [c for c in await site.commands() if c["id"] == command_id]
    token = start["payload"]["id_tag"]
    t0 = clock()
    # the uplink goes down; what happened at the site arrives two hours later in one
    # batch: a stranger's card first, alice's remote-started session, then the result
    clock.advance(timedelta(hours=2))
    happened = [
        ("charging.started", _started("rfid-9", "CP1", "STRANGER", t0 + timedelta(minutes=1), 2)),
        ("charging.started", _started("remote-9", "CP1", token, t0 + timedelta(minutes=2))),
        (
            "command.result",
            {"command_id": command_id, "command_type": "remote_start", "status": "accepted"},
        ),
        (
            "charging.completed",
            _completed("rfid-9", "CP1", "STRANGER", t0 + timedelta(minutes=1), 2),
        ),
        ("charging.completed", _completed("remote-9", "CP1", token, t0 + timedelta(minutes=2))),
    ]
    batch = []
    for type_, data in happened:
        site.sequence += 1
        batch.append(cloud_event("south", site.sequence, type_, data, time=t0))
    r = await central.client.post("/sync/v1/events", json={"events": batch}, headers=site.headers)
    assert r.json()["stored"] == 5
    await central.settle()
    assert await _history(central, "car-a", alice) == ["remote-9"]
    listed = await _listed(central, operator, charger_id="CP1")
    assert {(s["session_id"], s["vehicle_id"]) for s in listed} == {
        ("rfid-9", None),
        ("remote-9", "car-a"),
    }

    # a day later the same tag on that charger without a new remote start is no one's:
    # the token and the command had long expired
    clock.advance(timedelta(days=1))
    later = clock()
    await site.send("charging.started", _started("late-1", "CP1", token, later))
    await central.settle()
    (late,) = await _listed(central, operator, charger_id="CP1", status="active")
    assert (late["session_id"], late["vehicle_id"]) == ("late-1", None)
