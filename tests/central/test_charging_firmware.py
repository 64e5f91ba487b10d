"""Central's firmware campaign: ``POST /charging/firmware`` becomes the site's
``update_firmware`` command, and the site's answer names each charger's."""

from __future__ import annotations

from tests.central.conftest import Central
from tests.central.test_charging_api import make_site

CAMPAIGN = {
    "site_id": "south",
    "chargers": ["CP1", "CP2"],
    "location": "https://fw.example/evpark-2.1.bin",
    "retrieve_at": "2026-12-03T02:00:00+01:00",
    "retries": 3,
}


async def test_an_operators_campaign_reaches_the_site_and_its_answer_comes_back(
    central: Central,
) -> None:
    operator = await central.auth("operator")
    site = await make_site(central)
    r = await central.client.post("/charging/firmware", json=CAMPAIGN, headers=operator)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "pending"
    assert r.json()["type"] == "update_firmware"
    (command,) = await site.commands()
    assert command["type"] == "update_firmware"
    assert command["payload"] == {
        "chargers": ["CP1", "CP2"],
        "location": "https://fw.example/evpark-2.1.bin",
        "retrieve_at": "2026-12-03T02:00:00+01:00",
        "retries": 3,
    }
    answers = {"CP1": {"status": "Accepted", "request_id": 1}, "CP2": {"status": "offline"}}
    await site.answer(command, "accepted", chargers=answers)
    await central.settle()
    done = await central.client.get(f"/charging/commands/{command['id']}", headers=operator)
    assert done.json()["status"] == "accepted"
    assert done.json()["result"]["chargers"] == answers


async def test_only_operators_and_good_bodies(central: Central) -> None:
    driver = await central.auth("driver", vehicles=("ev-1",))
    refused = await central.client.post("/charging/firmware", json=CAMPAIGN, headers=driver)
    assert refused.status_code == 403
    operator = await central.auth("operator")
    for bad in (
        {"location": "file:///etc/passwd"},
        {"location": "https://"},
        {"retrieve_at": "2026-12-03T02:00:00"},
        {"retries": 11},
        {"chargers": []},
        {"signature": ""},
    ):
        r = await central.client.post(
            "/charging/firmware", json={**CAMPAIGN, **bad}, headers=operator
        )
        assert r.status_code == 422, (bad, r.text)
    site = await make_site(central)
    assert await site.commands() == []
