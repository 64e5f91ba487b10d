"""The parking API on the all-in-one app (SQLite, in-process bus), driven over HTTP."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from structlog.testing import capture_logs

from tests.central.conftest import Central, FakeClock, cloud_event

LOT = {
    "name": "Garage North",
    "hold_minutes": 10,
    "slots": [
        {"slot_id": "E1", "slot_type": "ev", "charger_id": "CP1"},
        {"slot_id": "E2", "slot_type": "ev", "charger_id": "CP2"},
        {"slot_id": "S1", "slot_type": "standard"},
    ],
}


async def setup_lot(central: Central, site: str = "north") -> dict[str, str]:
    operator = await central.auth("operator")
    r = await central.client.put(f"/parking/lots/{site}", json=LOT, headers=operator)
    assert r.status_code == 200, r.text
    return await central.auth("driver", vehicles=tuple(f"car-{i}" for i in range(10)))


async def reserve(central: Central, headers: dict[str, str], **body: Any) -> Any:
    payload = {"site_id": "north", "duration_minutes": 60, **body}
    return await central.client.post("/parking/reserve", json=payload, headers=headers)


async def test_reserve_by_type_then_no_double_booking(central: Central) -> None:
    driver = await setup_lot(central)
    first = await reserve(central, driver, vehicle_id="car-1", slot_type="ev")
    assert first.status_code == 201, first.text
    second = await reserve(central, driver, vehicle_id="car-2", slot_type="ev")
    assert second.status_code == 201
    assert {first.json()["slot_id"], second.json()["slot_id"]} == {"E1", "E2"}
    third = await reserve(central, driver, vehicle_id="car-3", slot_type="ev")
    assert third.status_code == 409
    assert "no ev is free" in third.json()["detail"]
    again = await reserve(central, driver, vehicle_id="car-1", slot_type="standard")
    assert again.status_code == 409
    assert "already holds" in again.json()["detail"]


async def test_concurrent_requests_for_one_slot_book_it_once(central: Central) -> None:
    driver = await setup_lot(central)
    answers = await asyncio.gather(
        *(reserve(central, driver, vehicle_id=f"car-{i}", slot_id="S1") for i in range(8))
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] + [409] * 7


async def test_status_per_type_follows_reservations_and_events(central: Central) -> None:
    driver = await setup_lot(central)
    site_key = await central.auth("site", "north")
    r = await central.client.get("/parking/status", params={"site_id": "north"}, headers=driver)
    assert r.status_code == 200
    (site,) = r.json()["sites"]
    assert site["name"] == "Garage North"
    ev = next(t for t in site["slot_types"] if t["slot_type"] == "ev")
    assert (ev["total"], ev["reserved"], ev["occupied"]) == (2, 0, 0)

    assert (await reserve(central, driver, vehicle_id="car-1", slot_id="E1")).status_code == 201
    events = [
        cloud_event("north", 1, "parking.occupied", {"slot_id": "E2", "slot_type": "ev"}),
        cloud_event("north", 2, "parking.vacated", {"slot_id": "S1", "slot_type": "standard"}),
    ]
    r = await central.client.post("/sync/v1/events", json={"events": events}, headers=site_key)
    assert r.status_code == 200
    await central.settle()
    r = await central.client.get(
        "/parking/status", params={"site_id": "north", "slot_type": "ev"}, headers=driver
    )
    (ev,) = r.json()["sites"][0]["slot_types"]
    assert (ev["reserved"], ev["occupied"], ev["free"]) == (1, 1, 0)
    r = await central.client.get("/parking/slots/S1", headers=driver)
    assert r.json()["state"] == "free"


async def test_reservation_lifecycle_from_site_events_and_history(central: Central) -> None:
    driver = await setup_lot(central)
    site_key = await central.auth("site", "north")
    booked = (await reserve(central, driver, vehicle_id="car-7", slot_type="ev")).json()
    assert booked["status"] == "booked"
    # the site got a reserve command for it
    commands = (await central.client.get("/sync/v1/commands", headers=site_key)).json()
    (command,) = commands["commands"]
    assert command["type"] == "reserve"
    assert command["payload"]["reservation_id"] == booked["id"]
    assert command["id"] == booked["command_id"]

    slot = booked["slot_id"]
    events = [
        cloud_event(
            "north",
            1,
            "parking.reserved",
            {
                "slot_id": slot,
                "reservation_id": booked["id"],
                "vehicle_id": "car-7",
                "starts_at": booked["starts_at"],
                "ends_at": booked["ends_at"],
                "command_id": command["id"],
            },
        ),
        cloud_event(
            "north",
            2,
            "parking.occupied",
            {"slot_id": slot, "slot_type": "ev", "reservation_id": booked["id"]},
        ),
        cloud_event(
            "north", 3, "parking.vacated", {"slot_id": slot, "slot_type": "ev", "duration_s": 1800}
        ),
    ]
    # sent twice: handled once
    for _ in range(2):
        r = await central.client.post("/sync/v1/events", json={"events": events}, headers=site_key)
        assert r.status_code == 200
    await central.settle()
    r = await central.client.get(f"/parking/reservations/{booked['id']}", headers=driver)
    assert r.json()["status"] == "completed"
    history = (await central.client.get("/parking/history/car-7", headers=driver)).json()
    assert [e["kind"] for e in history["items"]] == ["vacated", "occupied", "reserved", "booked"]
    assert history["items"][0]["duration_s"] == 1800
    assert history["next_cursor"] is None
    r = await central.client.get(
        "/parking/reservations", params={"vehicle_id": "car-7"}, headers=driver
    )
    assert [x["id"] for x in r.json()["items"]] == [booked["id"]]


async def test_a_reservation_made_at_the_site_appears_centrally(central: Central) -> None:
    driver = await setup_lot(central)
    site_key = await central.auth("site", "north")
    now = central.clock()
    event = cloud_event(
        "north",
        1,
        "parking.reserved",
        {
            "slot_id": "S1",
            "reservation_id": "local-42",
            "vehicle_id": "car-9",
            "starts_at": now.isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
        },
    )
    r = await central.client.post("/sync/v1/events", json={"events": [event]}, headers=site_key)
    assert r.status_code == 200
    await central.settle()
    r = await central.client.get("/parking/reservations/local-42", headers=driver)
    assert r.json()["status"] == "confirmed"
    assert r.json()["origin"] == "site"
    # and it blocks the slot
    r = await reserve(central, driver, vehicle_id="car-1", slot_id="S1")
    assert r.status_code == 409


async def test_a_site_reservation_without_its_window_is_dropped(central: Central) -> None:
    """The contract leaves a reservation's window optional; one central has not seen needs
    it, so the event is dropped as invalid, before anything is recorded."""
    driver = await setup_lot(central)
    site_key = await central.auth("site", "north")
    event = cloud_event(
        "north",
        1,
        "parking.reserved",
        {"slot_id": "S1", "reservation_id": "local-43", "vehicle_id": "car-9"},
    )
    with capture_logs() as logs:
        r = await central.client.post("/sync/v1/events", json={"events": [event]}, headers=site_key)
        assert r.status_code == 200
        await central.settle()
    (invalid,) = [e for e in logs if e["event"] == "parking.event.invalid"]
    assert "starts_at" in invalid["error"]
    r = await central.client.get("/parking/reservations/local-43", headers=driver)
    assert r.status_code == 404
    history = (await central.client.get("/parking/history/car-9", headers=driver)).json()
    assert history["items"] == []


async def test_release_and_expiry(central: Central, clock: FakeClock) -> None:
    driver = await setup_lot(central)
    site_key = await central.auth("site", "north")
    kept = (await reserve(central, driver, vehicle_id="car-1", slot_id="E1")).json()
    dropped = (await reserve(central, driver, vehicle_id="car-2", slot_id="E2")).json()

    r = await central.client.delete(
        "/parking/release", params={"reservation_id": dropped["id"]}, headers=driver
    )
    assert r.status_code == 200
    assert r.json()["status"] == "cancelled"
    r = await central.client.delete(
        "/parking/release", params={"reservation_id": dropped["id"]}, headers=driver
    )
    assert r.status_code == 409
    r = await central.client.delete(
        "/parking/release", params={"reservation_id": "nope"}, headers=driver
    )
    assert r.status_code == 404
    r = await central.client.delete(
        "/parking/release", params={"vehicle_id": "car-2"}, headers=driver
    )
    assert r.status_code == 404
    assert (await central.client.delete("/parking/release", headers=driver)).status_code == 422
    third = (await reserve(central, driver, vehicle_id="car-9", slot_id="S1")).json()
    r = await central.client.delete(
        "/parking/release", params={"vehicle_id": "car-9", "site_id": "north"}, headers=driver
    )
    assert r.json()["id"] == third["id"]
    assert r.json()["status"] == "cancelled"

    bookings = central.service("parking").bookings
    clock.advance(timedelta(minutes=9))
    assert await bookings.expire_due() == 0
    clock.advance(timedelta(minutes=2))  # past the lot's 10-minute hold
    assert await bookings.expire_due() == 1
    r = await central.client.get(f"/parking/reservations/{kept['id']}", headers=driver)
    assert r.json()["status"] == "expired"
    await central.settle()
    commands = (await central.client.get("/sync/v1/commands", headers=site_key)).json()
    cancels = [c for c in commands["commands"] if c["type"] == "cancel_reservation"]
    assert {c["payload"]["reservation_id"] for c in cancels} == {
        kept["id"],
        dropped["id"],
        third["id"],
    }
    # the slot is free again
    assert (await reserve(central, driver, vehicle_id="car-3", slot_id="E1")).status_code == 201


async def test_a_site_refusing_a_reservation_rejects_it(central: Central) -> None:
    driver = await setup_lot(central)
    site_key = await central.auth("site", "north")
    booked = (await reserve(central, driver, vehicle_id="car-1", slot_id="E1")).json()
    result = cloud_event(
        "north",
        1,
        "command.result",
        {
            "command_id": booked["command_id"],
            "command_type": "reserve",
            "status": "rejected",
            "detail": "slot blocked",
        },
    )
    r = await central.client.post("/sync/v1/events", json={"events": [result]}, headers=site_key)
    assert r.status_code == 200
    await central.settle()
    r = await central.client.get(f"/parking/reservations/{booked['id']}", headers=driver)
    assert r.json()["status"] == "rejected"
    assert r.json()["detail"] == "slot blocked"


async def test_bad_input_is_a_clear_4xx(central: Central) -> None:
    driver = await setup_lot(central)
    cases = [
        {"vehicle_id": "car 1!", "slot_type": "ev"},
        {"vehicle_id": "car-1", "slot_type": "ev", "starts_at": "2026-01-01T10:00:00"},
        {"vehicle_id": "car-1", "slot_type": "ev", "duration_minutes": 1},
        {"vehicle_id": "car-1", "ends_at": "2026-01-01T10:00:00Z", "duration_minutes": 60},
    ]
    for body in cases:
        r = await central.client.post(
            "/parking/reserve", json={"site_id": "north", **body}, headers=driver
        )
        assert r.status_code == 422, (body, r.text)
    r = await reserve(central, driver, vehicle_id="car-1", site_id="nowhere")
    assert r.status_code == 404
    r = await central.client.get("/parking/slots/zz", headers=driver)
    assert r.status_code == 404
    # a driver may not configure lots
    r = await central.client.put("/parking/lots/north", json=LOT, headers=driver)
    assert r.status_code == 403


async def test_the_reserve_command_names_the_driver(central: Central) -> None:
    await setup_lot(central)
    ann = await central.auth("driver", user="ann", vehicles=("car-a",))
    operator = await central.auth("operator")
    site_key = await central.auth("site", "north")
    mine = (await reserve(central, ann, vehicle_id="car-a", slot_type="ev")).json()
    theirs = (await reserve(central, operator, vehicle_id="car-b", slot_type="standard")).json()
    commands = (await central.client.get("/sync/v1/commands", headers=site_key)).json()
    drivers = {
        c["payload"]["reservation_id"]: c["payload"]["driver_id"] for c in commands["commands"]
    }
    # the caller's user; an operator booking for a vehicle is no driver
    assert drivers == {mine["id"]: "ann", theirs["id"]: None}
