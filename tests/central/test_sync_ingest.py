"""The sync API for edges: idempotent ordered ingest, per-site isolation, commands."""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any

import httpx

from central.site_commands import new_command, send_command
from tests.central.conftest import Central, cloud_event


def batch(site: str, first: int, count: int, type_: str = "sensor.status") -> dict[str, Any]:
    return {
        "events": [
            cloud_event(site, seq, type_, {"sensor_id": f"s{seq}", "slot_id": "A1", "online": True})
            for seq in range(first, first + count)
        ]
    }


async def post(central: Central, body: Any, headers: dict[str, str]) -> httpx.Response:
    return await central.client.post("/sync/v1/events", json=body, headers=headers)


async def test_ingest_is_idempotent_ordered_and_answers_what_it_holds(central: Central) -> None:
    site = await central.auth("site", "alpha")
    first = batch("alpha", 1, 5)
    r = await post(central, first, site)
    assert r.json() == {"stored": 5, "duplicates": 0, "last_sequence": 5}
    # the same batch again (the edge lost our answer), plus two more
    more = {"events": first["events"][3:] + batch("alpha", 6, 2)["events"]}
    r = await post(central, more, site)
    assert r.json() == {"stored": 2, "duplicates": 2, "last_sequence": 7}
    # a gap is refused with where to resume
    r = await post(central, batch("alpha", 9, 1), site)
    assert r.status_code == 409
    assert r.json()["expected_sequence"] == 8
    # a different event claiming a stored sequence is a conflict
    r = await post(central, batch("alpha", 7, 1), site)
    assert r.status_code == 409
    status = (await central.client.get("/sync/v1/status", headers=site)).json()
    assert status["last_sequence"] == 7


async def test_out_of_order_batches_are_sorted(central: Central) -> None:
    site = await central.auth("site", "beta")
    events = batch("beta", 1, 4)["events"]
    r = await post(central, {"events": list(reversed(events))}, site)
    assert r.json()["last_sequence"] == 4


async def test_a_site_cannot_write_another_sites_events(central: Central) -> None:
    site_a = await central.auth("site", "alpha")
    r = await post(central, batch("beta", 1, 1), site_a)
    assert r.status_code == 403
    assert "cannot write events of /sites/beta" in r.json()["detail"]
    mixed = {"events": batch("alpha", 1, 1)["events"] + batch("beta", 2, 1)["events"]}
    r = await post(central, mixed, site_a)
    assert r.status_code == 403
    # nothing of the refused batch was stored
    status = (await central.client.get("/sync/v1/status", headers=site_a)).json()
    assert status["last_sequence"] == 0
    # an event id another site already used is refused too
    site_b = await central.auth("site", "beta")
    taken = batch("beta", 1, 1)
    assert (await post(central, taken, site_b)).status_code == 200
    stolen = {"events": [{**taken["events"][0], "source": "/sites/alpha"}]}
    r = await post(central, stolen, site_a)
    assert r.status_code == 409


async def test_wrong_keys_are_refused(central: Central) -> None:
    body = batch("alpha", 1, 1)
    assert (await post(central, body, {})).status_code == 401
    r = await post(central, body, {"Authorization": "Bearer evp_0000_nope"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    driver = await central.auth("driver")
    assert (await post(central, body, driver)).status_code == 403
    operator = await central.auth("operator")
    assert (await post(central, body, operator)).status_code == 403
    # forged identity headers are stripped by the gateway
    forged = {**driver, "X-Evpark-Scope": "site", "X-Evpark-Site": "alpha"}
    assert (await post(central, body, forged)).status_code == 403
    # a revoked key stops working
    key = await central.make_key("site", "alpha")
    await central.keys.revoke(key.split("_")[1])
    r = await post(central, body, {"Authorization": f"Bearer {key}"})
    assert r.status_code == 401


async def test_gzip_batches_and_malformed_bodies(central: Central) -> None:
    site = await central.auth("site", "gamma")
    raw = gzip.compress(json.dumps(batch("gamma", 1, 3)).encode())
    r = await central.client.post(
        "/sync/v1/events",
        content=raw,
        headers={**site, "Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert r.json()["stored"] == 3
    r = await central.client.post(
        "/sync/v1/events",
        content=b"not gzip",
        headers={**site, "Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    bad_events = [
        {**batch("gamma", 4, 1)["events"][0], "time": "2026-01-01T00:00:00"},  # naive time
        {**batch("gamma", 4, 1)["events"][0], "sequence": 0},
        {**batch("gamma", 4, 1)["events"][0], "source": "gamma"},
    ]
    for event in bad_events:
        r = await post(central, {"events": [event]}, site)
        assert r.status_code == 422, event


async def test_ingested_events_reach_both_topics_in_order(central: Central) -> None:
    seen: list[tuple[str, int]] = []

    async def record(event: Any) -> None:
        seen.append((event.type, event.sequence))

    bus = central.app.state.bus
    await bus.subscribe("parking.events", "test-probe", record)
    await bus.subscribe("charging.events", "test-probe", record)
    site = await central.auth("site", "delta")
    events = [
        cloud_event("delta", 1, "parking.occupied", {"slot_id": "A1", "slot_type": "ev"}),
        cloud_event("delta", 2, "charger.status", {"charger_id": "CP1", "status": "Available"}),
        cloud_event("delta", 3, "parking.vacated", {"slot_id": "A1", "slot_type": "ev"}),
    ]
    assert (await post(central, {"events": events}, site)).status_code == 200
    await central.settle()
    assert [s for s in seen if s[0].startswith("parking")] == [
        ("parking.occupied", 1),
        ("parking.vacated", 3),
    ]
    assert ("charger.status", 2) in seen


async def test_commands_are_per_site_delivered_until_acked(central: Central) -> None:
    site_a = await central.auth("site", "alpha")
    site_b = await central.auth("site", "beta")
    bus = central.app.state.bus
    command = new_command(
        "alpha", "update_id_tags", {"version": 1, "tags": [], "full": True}, central.clock(), 60
    )
    await send_command(bus, command)
    await send_command(bus, command)  # a redelivery is queued once
    await central.settle()
    assert (await central.client.get("/sync/v1/commands", headers=site_b)).json() == {
        "commands": []
    }
    for _ in range(2):  # not acknowledged: delivered again
        got = (await central.client.get("/sync/v1/commands", headers=site_a)).json()["commands"]
        assert [c["id"] for c in got] == [command.id]
    # another site cannot acknowledge it
    r = await central.client.post(f"/sync/v1/commands/{command.id}/ack", headers=site_b)
    assert r.status_code == 404
    r = await central.client.post(f"/sync/v1/commands/{command.id}/ack", headers=site_a)
    assert r.status_code == 204
    r = await central.client.post(f"/sync/v1/commands/{command.id}/ack", headers=site_a)
    assert r.status_code == 204
    assert (await central.client.get("/sync/v1/commands", headers=site_a)).json() == {
        "commands": []
    }


async def test_long_poll_returns_when_a_command_arrives(central: Central) -> None:
    site = await central.auth("site", "alpha")
    poll = asyncio.create_task(
        central.client.get("/sync/v1/commands", params={"wait": 20}, headers=site)
    )
    await asyncio.sleep(0.2)
    assert not poll.done()
    command = new_command("alpha", "remote_stop", {"charger_id": "CP1"}, central.clock(), 60)
    await send_command(central.app.state.bus, command)
    r = await poll
    assert [c["id"] for c in r.json()["commands"]] == [command.id]
