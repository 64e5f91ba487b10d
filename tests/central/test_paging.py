"""Paging on every list endpoint of central: one shape (``items``, ``next_cursor``), a
stable order, a bad cursor is a 400, and following the cursor to the end while rows are
being inserted gives every row that was there exactly once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from central import cli
from tests.central.conftest import Central, FakeClock
from tests.central.test_charging_api import make_site

LIST_PATHS = [
    "/charging/sessions",
    "/charging/history/car-1",
    "/charging/rates",
    "/charging/stations",
    "/charging/id-tags",
    "/parking/history/car-1",
    "/parking/reservations",
    "/notifications/users/alice",
    "/notifications/dead-letters",
]


@pytest.mark.parametrize("path", LIST_PATHS)
async def test_every_list_has_one_shape_and_refuses_a_bad_cursor(
    central: Central, path: str
) -> None:
    operator = await central.auth("operator")
    r = await central.client.get(path, headers=operator)
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"items", "next_cursor"}
    for bad in ("not-a-cursor", "eyJ4IjoxfQ", "W10"):
        r = await central.client.get(path, params={"cursor": bad}, headers=operator)
        assert r.status_code == 400, (bad, r.text)
        assert "invalid cursor" in r.json()["detail"]
    assert (
        await central.client.get(path, params={"limit": 0}, headers=operator)
    ).status_code == 422


async def _follow(
    central: Central,
    path: str,
    headers: dict[str, str],
    key: str,
    between: Callable[[int], Awaitable[None]],
    **params: Any,
) -> list[str]:
    """Every page of ``path`` two at a time, calling ``between(page)`` after each."""
    seen: list[str] = []
    cursor = None
    for page in range(100):
        query = {**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await central.client.get(path, params=query, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= 2
        seen += [item[key] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
        await between(page)
    raise AssertionError("the cursor never ended")


async def test_sessions_of_a_site_page_without_duplicates_or_gaps_under_inserts(
    central: Central, clock: FakeClock
) -> None:
    operator = await central.auth("operator")
    site = await make_site(central)
    t0 = clock()

    async def start(n: int, charger: str = "CP1") -> None:
        await site.send(
            "charging.started",
            {
                "session_id": f"s-{n:02d}",
                "charger_id": charger,
                "evse_id": 1,
                "id_tag": f"T{n}",
                "started_at": (t0 + timedelta(minutes=n % 3)).isoformat(),  # ties on purpose
            },
        )

    for n in range(7):
        await start(n)
    await start(50, "CP2")
    await central.settle()
    before = {f"s-{n:02d}" for n in range(7)}

    async def insert(page: int) -> None:
        await start(20 + page)  # new sessions (some newer, some as old) while paging
        await central.settle()

    seen = await _follow(
        central, "/charging/sessions", operator, "session_id", insert,
        site_id="south", charger_id="CP1",
    )  # fmt: skip
    assert len(seen) == len(set(seen)), seen
    assert before <= set(seen)
    assert "s-50" not in seen  # another charger
    assert all(s in before or s.startswith("s-2") for s in seen)

    site_key = site.headers
    mine = await _follow(
        central, "/charging/sessions", site_key, "session_id", _nothing, site_id="south"
    )
    assert "s-50" in mine


async def _nothing(_page: int) -> None:
    return None


async def test_reservations_and_parking_history_page_under_inserts(
    central: Central, clock: FakeClock
) -> None:
    operator = await central.auth("operator")
    lot = {"slots": [{"slot_id": f"S{i}", "slot_type": "standard"} for i in range(20)]}
    assert (await central.client.put("/parking/lots/north", json=lot, headers=operator)).is_success
    vehicles = tuple(f"car-{i}" for i in range(20))
    driver = await central.auth("driver", vehicles=vehicles)

    async def reserve(vehicle: str, minutes: int) -> str:
        r = await central.client.post(
            "/parking/reserve",
            json={
                "site_id": "north",
                "vehicle_id": vehicle,
                "starts_at": (clock() + timedelta(minutes=minutes)).isoformat(),
                "duration_minutes": 30,
            },
            headers=driver,
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    before = {await reserve(f"car-{i}", i % 2) for i in range(7)}

    async def insert(page: int) -> None:
        await reserve(f"car-{10 + page}", page % 2)

    seen = await _follow(central, "/parking/reservations", operator, "id", insert)
    assert len(seen) == len(set(seen))
    assert before <= set(seen)

    # a vehicle's history: the same one vehicle booked and released over and over
    for _ in range(3):
        rid = await reserve("car-19", 0)
        r = await central.client.delete(
            "/parking/release", params={"reservation_id": rid}, headers=driver
        )
        assert r.status_code == 200
    kinds = await _follow(central, "/parking/history/car-19", driver, "kind", _nothing)
    assert kinds == ["released", "booked"] * 3


def test_the_keys_listing_pages(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"EVPARK_CENTRAL_DATA_DIR": str(tmp_path)}

    def evpark(*args: str) -> str:
        result = runner.invoke(cli.app, list(args), env=env)
        assert result.exit_code == 0, result.output
        return result.stdout

    made = [evpark("keys", "create", "--scope", "operator").strip().split("_")[1] for _ in range(3)]
    listed: list[str] = []
    args = ["keys", "list", "--limit", "2"]
    for _ in range(5):
        lines = evpark(*args).splitlines()
        listed += [line.split("\t")[0] for line in lines if not line.startswith("#")]
        more = [line for line in lines if line.startswith("# more: ")]
        if not more:
            break
        args = ["keys", "list", "--limit", "2", "--cursor", more[0].split()[-1]]
    assert listed == made
    bad = runner.invoke(cli.app, ["keys", "list", "--cursor", "nope"], env=env)
    assert bad.exit_code == 2


def test_cursors_round_trip_and_refuse_what_they_did_not_make() -> None:
    from datetime import UTC, datetime

    from central.infra.paging import BadCursor, decode_cursor, encode_cursor

    at = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    cursor = encode_cursor("sessions", (at, "s-1"))
    assert decode_cursor("sessions", cursor, (datetime, str)) == (at, "s-1")
    for kind, text, types in (
        ("history", cursor, (datetime, str)),  # another list's
        ("sessions", cursor, (datetime, int)),  # another key shape
        ("sessions", cursor, (datetime,)),
        ("sessions", cursor[:-3], (datetime, str)),  # cut
        ("sessions", encode_cursor("sessions", ("2026-12-02", "s-1")), (datetime, str)),
        ("sessions", encode_cursor("sessions", (True, "x")), (int, str)),  # bool is no int
    ):
        with pytest.raises(BadCursor):
            decode_cursor(kind, text, types)
    naive = encode_cursor("x", (datetime(2026, 1, 1),))
    with pytest.raises(BadCursor):
        decode_cursor("x", naive, (datetime,))
