"""The sites' load management at central, on SQLite and on PostgreSQL: an operator's
``PUT /charging/sites/{id}/power/limit`` becomes the site's ``set_site_limit`` command
and its answer comes back; the sites' ``power.limit_changed`` and ``power.overshoot``
are kept (the newest limit by sequence, each alert once) and shown, paged, by
``GET /charging/sites/{id}/power``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from common.timestamps import format_timestamp
from contract.envelope import CloudEvent
from tests.central.conftest import Central, FakeClock, cloud_event
from tests.central.notification_fixtures import database_url
from tests.central.test_charging_api import make_site

__all__ = ["database_url"]  # the fixture: SQLite, then PostgreSQL


@pytest.fixture
async def central(database_url: str, central_factory: Callable[..., Any]) -> AsyncIterator[Central]:
    """Central all-in-one with every service on one SQLite file, then on PostgreSQL."""
    async with central_factory(database_url=database_url) as running:
        yield running


def limit_changed(limit_kw: float, until: datetime | None, by: str) -> dict[str, Any]:
    until_text = None if until is None else format_timestamp(until)
    return {"limit_kw": limit_kw, "configured_kw": 22, "until": until_text, "set_by": by}


def overshoot(charger_id: str, measured_kw: float | None = 11.5) -> dict[str, Any]:
    return {
        "charger_id": charger_id,
        "reason": "answered Rejected to a charging profile",
        "measured_kw": measured_kw,
        "offered_kw": 4.2,
    }


async def test_an_operators_limit_reaches_the_site_and_its_answer_comes_back(
    central: Central, clock: FakeClock
) -> None:
    operator = await central.auth("operator")
    site = await make_site(central)
    until = clock() + timedelta(hours=2)
    r = await central.client.put(
        "/charging/sites/south/power/limit",
        json={"site_limit_kw": 11, "until": until.isoformat()},
        headers=operator,
    )
    assert r.status_code == 202, r.text
    assert (r.json()["status"], r.json()["type"]) == ("pending", "set_site_limit")
    (command,) = await site.commands()
    assert command["type"] == "set_site_limit"
    assert command["payload"] == {"site_limit_kw": 11, "until": format_timestamp(until)}
    in_force = {"site_limit_kw": 11, "configured_kw": 22, "override": {"limit_kw": 11}}
    await site.answer(command, "accepted", **in_force)
    await central.settle()
    done = await central.client.get(f"/charging/commands/{command['id']}", headers=operator)
    assert (done.json()["status"], done.json()["result"]) == ("accepted", in_force)

    # null: back to the configured limit
    r = await central.client.put(
        "/charging/sites/south/power/limit", json={"site_limit_kw": None}, headers=operator
    )
    assert r.status_code == 202, r.text
    (back,) = [c for c in await site.commands() if c["id"] != command["id"]]
    assert back["payload"] == {"site_limit_kw": None, "until": None}
    await site.answer(back, "rejected", why="load management is off")
    await central.settle()
    done = await central.client.get(f"/charging/commands/{back['id']}", headers=operator)
    assert done.json()["status"] == "rejected"


async def test_only_operators_and_good_limits(central: Central, clock: FakeClock) -> None:
    body = {"site_limit_kw": 11, "until": None}
    for scope, site_id in (("driver", None), ("site", "south")):
        caller = await central.auth(scope, site_id, vehicles=("ev-1",) if site_id is None else ())
        r = await central.client.put("/charging/sites/south/power/limit", json=body, headers=caller)
        assert r.status_code == 403, (scope, r.text)
        r = await central.client.get("/charging/sites/south/power", headers=caller)
        assert r.status_code == 403, (scope, r.text)
    operator = await central.auth("operator")
    for bad in (
        {"site_limit_kw": 0},
        {"site_limit_kw": -3},
        {"site_limit_kw": 100_001},
        {"site_limit_kw": "lots"},
        {"until": None},  # no site_limit_kw at all: not the same as null
        {"site_limit_kw": 11, "until": "2030-01-01T00:00:00"},  # no offset
        {"site_limit_kw": 11, "until": format_timestamp(clock() - timedelta(seconds=1))},
        {"site_limit_kw": 11, "until": format_timestamp(clock())},
        {"site_limit_kw": None, "until": format_timestamp(clock() + timedelta(hours=1))},
        {"site_limit_kw": 11, "set_by": "me"},
    ):
        r = await central.client.put(
            "/charging/sites/south/power/limit", json=bad, headers=operator
        )
        assert r.status_code == 422, (bad, r.text)
    r = await central.client.put("/charging/sites/s%20uth/power/limit", json=body, headers=operator)
    assert r.status_code == 422
    # an id other APIs take (':') but no site can have: refused, not a server error
    for path in ("/charging/sites/so:uth/power/limit", "/charging/sites/so:uth/power"):
        r = await central.client.request(
            "PUT" if path.endswith("limit") else "GET", path, json=body, headers=operator
        )
        assert r.status_code == 422, (path, r.text)
    site = await make_site(central)
    assert await site.commands() == []


async def test_the_sites_limit_and_alerts_are_kept_and_paged(
    central: Central, clock: FakeClock
) -> None:
    operator = await central.auth("operator")
    r = await central.client.get("/charging/sites/south/power", headers=operator)
    assert r.json() == {
        "site_id": "south",
        "limit": None,
        "alerts": {"items": [], "next_cursor": None},
    }
    south, north = await make_site(central), await make_site(central, "north")
    until = clock() + timedelta(hours=1)
    await south.send("power.limit_changed", limit_changed(11, until, "central"))
    for n in range(3):
        await south.send(
            "power.overshoot", overshoot(f"CP{n}"), time=clock() + timedelta(seconds=n)
        )
    await north.send("power.overshoot", overshoot("N1", None))
    await central.settle()

    r = await central.client.get(
        "/charging/sites/south/power", params={"limit": 2}, headers=operator
    )
    assert r.status_code == 200, r.text
    power = r.json()
    assert power["limit"] == {
        "limit_kw": 11,
        "configured_kw": 22,
        "until": until.isoformat().replace("+00:00", "Z"),
        "set_by": "central",
        "reported_at": power["limit"]["reported_at"],
        "expired": False,
    }
    assert [a["charger_id"] for a in power["alerts"]["items"]] == ["CP2", "CP1"]
    assert power["alerts"]["items"][0] == {
        "charger_id": "CP2",
        "reason": "answered Rejected to a charging profile",
        "measured_kw": 11.5,
        "offered_kw": 4.2,
        "at": power["alerts"]["items"][0]["at"],
    }
    r = await central.client.get(
        "/charging/sites/south/power",
        params={"limit": 2, "cursor": power["alerts"]["next_cursor"]},
        headers=operator,
    )
    assert [a["charger_id"] for a in r.json()["alerts"]["items"]] == ["CP0"]
    assert r.json()["alerts"]["next_cursor"] is None
    bad = await central.client.get(
        "/charging/sites/south/power", params={"cursor": "nonsense"}, headers=operator
    )
    assert bad.status_code == 400
    north_power = (await central.client.get("/charging/sites/north/power", headers=operator)).json()
    assert north_power["limit"] is None
    assert [a["charger_id"] for a in north_power["alerts"]["items"]] == ["N1"]

    # past its end the site is back on its configured limit (and reports it when it runs)
    clock.advance(timedelta(hours=1))
    r = await central.client.get("/charging/sites/south/power", headers=operator)
    assert r.json()["limit"]["expired"] is True
    await south.send("power.limit_changed", limit_changed(22, None, "expiry"))
    await central.settle()
    limit = (await central.client.get("/charging/sites/south/power", headers=operator)).json()
    assert (limit["limit"]["limit_kw"], limit["limit"]["set_by"]) == (22, "expiry")
    assert limit["limit"]["expired"] is False


async def test_an_older_or_repeated_event_changes_nothing(central: Central) -> None:
    """The bus may redeliver, or deliver a site's events late: the limit is the one of the
    site's newest event, an alert is kept once."""
    operator = await central.auth("operator")
    events = central.service("charging").events
    newer = CloudEvent.model_validate(
        cloud_event("south", 7, "power.limit_changed", limit_changed(5, None, "local-api"))
    )
    older = CloudEvent.model_validate(
        cloud_event("south", 6, "power.limit_changed", limit_changed(9, None, "central"))
    )
    alert = CloudEvent.model_validate(cloud_event("south", 8, "power.overshoot", overshoot("CP1")))
    for event in (newer, older, newer, alert, alert):
        await events.handle(event)
    power = (await central.client.get("/charging/sites/south/power", headers=operator)).json()
    assert (power["limit"]["limit_kw"], power["limit"]["set_by"]) == (5, "local-api")
    assert len(power["alerts"]["items"]) == 1
    # an event that does not fit its type is dropped, not kept
    broken = cloud_event("south", 9, "power.overshoot", {"charger_id": "CP2", "reason": "x",
                                                          "measured_kw": -1})  # fmt: skip
    await events.handle(CloudEvent.model_validate(broken))
    power = (await central.client.get("/charging/sites/south/power", headers=operator)).json()
    assert len(power["alerts"]["items"]) == 1
