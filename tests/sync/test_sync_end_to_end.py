"""The whole path: a site's edge, central, chargers and sensors, over real sockets.

Events reach central exactly once and in order; drivers' commands at central reach the
chargers and come back with the chargers' answers; central down and site down.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from central.site_commands import new_command, send_command
from tests.polling import eventually
from tests.sync.conftest import SITE, CentralServer, SiteRig


async def assert_central_holds_the_outbox(site: SiteRig) -> None:
    """Every event the edge wrote is in central once, same ids, sequences 1..N."""

    async def drained() -> bool:
        return await site.backlog() == 0

    await eventually(drained, "the edge's backlog drained into central", within=30)
    outbox = await site.outbox()
    held = await site.central.stored_events()
    assert [s for s, _, _ in held] == list(range(1, len(held) + 1))
    assert len({i for _, i, _ in held}) == len(held)
    assert held == outbox  # nothing pruned locally in these short runs


async def post(
    central: CentralServer, path: str, headers: dict[str, str], **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    async with central.client() as client:
        reply = await client.post(path, headers=headers, **kwargs)
    return reply.status_code, reply.json()


async def put(
    central: CentralServer, path: str, headers: dict[str, str], **body: Any
) -> tuple[int, dict[str, Any]]:
    async with central.client() as client:
        reply = await client.put(path, headers=headers, json=body)
    return reply.status_code, reply.json()


async def get(central: CentralServer, path: str, headers: dict[str, str], **kwargs: Any) -> Any:
    async with central.client() as client:
        reply = await client.get(path, headers=headers, **kwargs)
    assert reply.status_code in (200, 202), reply.text
    return reply.json()


async def test_events_reach_central_once_and_in_order(site: SiteRig) -> None:
    assert site.cp16 is not None
    assert site.sensors is not None
    await site.sensors.arrive("S1")
    await site.sensors.arrive("E1")
    await site.cp16.plug_in(1)
    assert await site.cp16.authorize("TAG-OK") == "Accepted"
    await site.cp16.start(1, "TAG-OK")
    await site.cp16.send_meter_values(1, n=3)
    await site.cp16.stop(1, "Local")
    await site.cp16.unplug(1)
    await site.sensors.leave("E1")
    await site.sensors.leave("S1")
    await assert_central_holds_the_outbox(site)
    types = {t for _, _, t in await site.outbox()}
    assert {"charging.started", "charging.completed", "parking.occupied"} <= types
    health = await site.health()
    assert health["sync"]["online"] is True
    assert health["sync"]["backlog"] == 0


async def test_start_and_stop_charging_from_central(site: SiteRig) -> None:
    central = site.central
    assert site.cp201 is not None
    driver = await central.auth("driver", vehicles=("EV-7",))
    await site.cp201.plug_in(1)
    # accepted only once the session has begun with the start's app token
    code, body = await post(
        central,
        "/charging/start",
        driver,
        params={"wait": 20},
        json={"site_id": SITE, "charger_id": "CP-201", "vehicle_id": "EV-7"},
    )
    assert (code, body["status"], body["site_online"]) == (200, "accepted", True), body
    session_id = body["result"]["session_id"]

    async def charging() -> bool:
        status = await get(central, "/charging/status/EV-7", driver)
        return (
            bool(status["charging"])
            and site.cp201 is not None
            and (site.cp201.transaction(1) is not None)
        )

    await eventually(charging, "central shows EV-7 charging on the simulated charger")

    status = await get(central, "/charging/status/EV-7", driver)
    session = status["session"]
    assert (session["session_id"], session["charger_id"], session["site_id"]) == (
        session_id, "CP-201", SITE,
    )  # fmt: skip
    assert session["driver_id"] == "driver"

    code, body = await post(
        central, "/charging/stop", driver, params={"wait": 5}, json={"vehicle_id": "EV-7"}
    )
    assert (code, body["status"]) == (200, "accepted"), body

    async def finished() -> bool:
        history = await get(central, "/charging/history/EV-7", driver)
        return [s["status"] for s in history["items"]] == ["completed"]

    await eventually(finished, "the stopped session is in central's history")
    edge_sessions = await site.edge.store.read(  # type: ignore[union-attr]
        lambda c: [tuple(r) for r in c.execute("SELECT id, energy_wh FROM sessions")]
    )
    history = await get(central, "/charging/history/EV-7", driver)
    assert [(s["session_id"], s["energy_wh"]) for s in history["items"]] == [
        (sid, round(energy_wh)) for sid, energy_wh in edge_sessions
    ]
    await assert_central_holds_the_outbox(site)


async def test_reservations_are_confirmed_or_rejected_by_the_site(site: SiteRig) -> None:
    central = site.central
    assert site.cp16 is not None
    assert site.sensors is not None
    driver = await central.auth("driver", vehicles=("EV-RES", "CAR-9"))
    other = await central.auth("driver", vehicles=("EV-OTHER",), user="other-driver")
    code, booked = await post(
        central,
        "/parking/reserve",
        driver,
        json={"site_id": SITE, "slot_id": "E1", "vehicle_id": "EV-RES", "duration_minutes": 60},
    )
    assert code == 201, booked
    assert (booked["status"], booked["site_online"]) == ("booked", True)

    async def confirmed() -> bool:
        found = await get(central, f"/parking/reservations/{booked['id']}", driver)
        return bool(found["status"] == "confirmed")

    await eventually(confirmed, "the site confirmed the reservation")
    reserve_now = await site.cp16.wait_for_command("ReserveNow")
    assert reserve_now.payload["idTag"] == "EV-RES"
    async with site.api() as api:
        slot = (await api.get("/api/slots/E1")).json()
    assert slot["state"] == "reserved"

    # the reserved charger refuses another driver's remote start: the charger's own
    # answer, and the driver's status says why
    code, body = await post(
        central,
        "/charging/start",
        other,
        params={"wait": 5},
        json={"site_id": SITE, "charger_id": "CP-16", "vehicle_id": "EV-OTHER"},
    )
    assert (code, body["status"]) == (200, "rejected"), body

    async def told_why() -> bool:
        status = await get(central, "/charging/status/EV-OTHER", other)
        failure = status["last_failure"]
        return failure is not None and failure["code"] == "RemoteStartRejected"

    await eventually(told_why, "the driver's status shows the refused start")

    # a slot taken at the site: central books it for later, the site refuses it
    await site.sensors.arrive("S1")

    async def occupied() -> bool:
        status = await get(central, "/parking/slots/S1", driver, params={"site_id": SITE})
        return bool(status["state"] == "occupied")

    await eventually(occupied, "central knows S1 is occupied")
    later = datetime.now(UTC) + timedelta(minutes=30)
    code, refused = await post(
        central,
        "/parking/reserve",
        driver,
        json={
            "site_id": SITE, "slot_id": "S1", "vehicle_id": "CAR-9",
            "starts_at": later.isoformat(), "duration_minutes": 30,
        },
    )  # fmt: skip
    assert code == 201, refused

    async def rejected() -> bool:
        found = await get(central, f"/parking/reservations/{refused['id']}", driver)
        return bool(found["status"] == "rejected")

    await eventually(rejected, "the site rejected the reservation of an occupied slot")
    found = await get(central, f"/parking/reservations/{refused['id']}", driver)
    assert "occupied" in found["detail"]

    status = await get(central, "/parking/status", driver, params={"site_id": SITE})
    (mine,) = status["sites"]
    by_type = {t["slot_type"]: t for t in mine["slot_types"]}
    assert by_type["ev"]["reserved"] == 1
    assert by_type["standard"]["occupied"] == 1
    await assert_central_holds_the_outbox(site)


async def test_central_down_the_site_keeps_working_and_catches_up(site: SiteRig) -> None:
    central = site.central
    assert site.cp16 is not None
    # central's id tag list reaches the site's cache and the chargers' local lists
    bus = central.app.state.bus
    command = new_command(
        SITE,
        "update_id_tags",
        {"version": 3, "full": False, "tags": [{"id_tag": "FLEET-1", "status": "Accepted"}]},
        datetime.now(UTC),
        60,
    )
    await send_command(bus, command)
    local_list = await site.cp16.wait_for_command("SendLocalList")
    assert local_list.payload["listVersion"] == 3
    assert local_list.payload["localAuthorizationList"] == [
        {"idTag": "FLEET-1", "idTagInfo": {"status": "Accepted"}}
    ]
    assert site.cp201 is not None
    list201 = await site.cp201.wait_for_command("SendLocalList")
    assert list201.payload["versionNumber"] == 3
    await assert_central_holds_the_outbox(site)

    await central.stop()
    # the charger asks the edge (not its own list): the site's cache answers
    await site.cp16.plug_in(1)
    assert await site.cp16.authorize("FLEET-1") == "Accepted"
    await site.cp16.start(1, "FLEET-1")
    await site.cp16.send_meter_values(1, n=2)
    await site.cp16.stop(1, "Local")

    async def piling_up() -> bool:
        health = await site.health()
        return health["sync"]["online"] is False and await site.backlog() > 0

    await eventually(piling_up, "the edge reports central unreachable and a backlog")

    await central.start()
    await assert_central_holds_the_outbox(site)
    types = [t for _, _, t in await central.stored_events()]
    assert types.count("charging.completed") == 1
    health = await site.health()
    assert health["sync"]["online"] is True


async def test_site_down_central_answers_at_once_and_keeps_sites_apart(site: SiteRig) -> None:
    central = site.central
    operator = await central.auth("operator")
    driver = await central.auth("driver", vehicles=("EV-9", "CAR-1"))
    await assert_central_holds_the_outbox(site)

    async def site_listed(status: str) -> bool:
        health = await get(central, "/metrics/health", operator)
        return any(s["site_id"] == SITE and s["status"] == status for s in health["sites"])

    await site.stop()
    await eventually(lambda: site_listed("offline"), "/metrics/health shows the site offline")
    code, body = await post(
        central,
        "/charging/start",
        driver,
        params={"wait": 30},
        json={"site_id": SITE, "charger_id": "CP-16", "vehicle_id": "EV-9"},
    )
    assert (code, body["status"], body["site_online"]) == (202, "pending", False), body
    assert "offline" in body["detail"]
    code, booked = await post(
        central,
        "/parking/reserve",
        driver,
        json={"site_id": SITE, "slot_type": "standard", "vehicle_id": "CAR-1",
              "duration_minutes": 30},
    )  # fmt: skip
    assert (code, booked["status"], booked["site_online"]) == (201, "booked", False), booked

    # another site's key neither sees nor acknowledges this site's commands
    other = await central.auth("site", "other-site")
    async with central.client() as client:
        listed = (await client.get("/sync/v1/commands", headers=other)).json()
        assert listed == {"commands": []}
        ack = await client.post(f"/sync/v1/commands/{body['command_id']}/ack", headers=other)
        assert ack.status_code == 404
        mine = await central.auth("site", SITE)
        status = (await client.get("/sync/v1/status", headers=mine)).json()
        assert status["pending_commands"] == 2

    # back: the queued commands reach the site and are answered
    await site.start()
    await eventually(lambda: site_listed("online"), "/metrics/health shows the site back")

    async def answered() -> bool:
        command = await get(central, f"/charging/commands/{body['command_id']}", driver)
        reservation = await get(central, f"/parking/reservations/{booked['id']}", driver)
        return command["status"] != "pending" and reservation["status"] == "confirmed"

    await eventually(answered, "the site carried out what was queued while it was down")
    await assert_central_holds_the_outbox(site)


async def test_an_expired_command_is_answered_expired(site: SiteRig) -> None:
    central = site.central
    driver = await central.auth("driver", vehicles=("EV-X",))
    # the site's clock runs ahead of central's: by its clock the command has expired
    site.clock.offset = timedelta(hours=1)
    code, body = await post(
        central,
        "/charging/start",
        driver,
        params={"wait": 5},
        json={"site_id": SITE, "charger_id": "CP-16", "vehicle_id": "EV-X"},
    )
    assert (code, body["status"]) == (200, "expired"), body
    assert "expired" in body["detail"]
    assert site.cp16 is not None
    assert not any(e.action == "RemoteStartTransaction" for e in site.cp16.received)


async def test_a_drivers_card_reaches_the_site_and_names_its_sessions(site: SiteRig) -> None:
    central = site.central
    assert site.cp16 is not None
    driver = await central.auth("driver", vehicles=("EV-CARD",), user="carla")

    async def known() -> bool:
        # the site's chargers have reported: charging knows the site
        stations = await get(central, "/charging/stations", driver, params={"site_id": SITE})
        return bool(stations["items"])

    await eventually(known, "central's charging service knows the site")
    code, tag = await put(central, "/charging/id-tags/CARLA-CARD", driver, vehicle_id="EV-CARD")
    assert (code, tag["driver_id"]) == (200, "carla"), tag
    local_list = await site.cp16.wait_for_command("SendLocalList")
    assert {e["idTag"] for e in local_list.payload["localAuthorizationList"]} == {"CARLA-CARD"}

    # at the charger the card is accepted, and its session is carla's
    await site.cp16.plug_in(1)
    assert await site.cp16.authorize("CARLA-CARD") == "Accepted"
    await site.cp16.start(1, "CARLA-CARD")
    await site.cp16.send_meter_values(1, n=2)
    await site.cp16.stop(1, "Local")

    async def in_history() -> bool:
        history = await get(central, "/charging/history/EV-CARD", driver)
        return [(s["status"], s["driver_id"]) for s in history["items"]] == [("completed", "carla")]

    await eventually(in_history, "the card's session is in carla's history")
    await assert_central_holds_the_outbox(site)
