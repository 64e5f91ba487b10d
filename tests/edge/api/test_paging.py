"""Paging of every list of the local API, against a running daemon: ``limit`` and an
opaque ``cursor``, a stable order, the next page in a ``Link`` header, 400 for bad ones."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from common.timestamps import format_timestamp
from contract.events import ChargingStarted, Data, ParkingOccupied
from edge.config import SiteConfig
from edge.core.ids import ChargerId, SessionId
from edge.core.model import Session, SessionStatus, Subject
from edge.core.paging import encode_cursor
from edge.daemon import EdgeDaemon
from edge.storage import site_sql as repo
from edge.storage.sqlite import Unit
from ocpp_handlers.schemas import Version
from tests.edge.conftest import ocpp_url
from tests.edge.ui.conftest import add_users, logged_in
from tests.ocpp_client import RawCharger
from tests.ocpp_flows import flow_for

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
CHARGERS_CURSOR = encode_cursor("chargers", ("CP-1",))

NOBODY = Subject().fields()  # the subject of events no driver is behind


async def all_pages(api: httpx.AsyncClient, path: str, **params: Any) -> list[list[Any]]:
    pages: list[list[Any]] = []
    reply = await api.get(path, params=params)
    while True:
        assert reply.status_code == 200, reply.text
        pages.append(reply.json())
        following = reply.links.get("next")
        if following is None:
            return pages
        assert following["url"].startswith(path + "?")  # relative, same list
        assert len(pages) < 100, "the pages do not end"
        reply = await api.get(following["url"])


async def add_sessions(daemon: EdgeDaemon, count: int) -> None:
    unit = Unit()
    for n in range(count):
        started = T0 + timedelta(seconds=n // 2)  # two at each second: ties broken by id
        repo.save_session(
            unit,
            Session(
                id=SessionId(f"S-{n:05d}"),
                charger_id=ChargerId("CP-A" if n % 2 else "CP-B"),
                evse_id=1,
                connector_id=1,
                transaction_id=str(n),
                id_tag=None,
                started_at=started,
                version="ocpp1.6",
                stopped_at=started + timedelta(minutes=30),
                status=SessionStatus.COMPLETED,
            ),
        )
    await daemon.store.write(unit)


async def test_more_than_a_thousand_sessions_page_through_in_a_stable_order(
    edge: EdgeDaemon, api: httpx.AsyncClient
) -> None:
    await add_sessions(edge, 1_205)
    first = await api.get("/api/sessions")
    assert len(first.json()) == 50  # the default page
    assert "next" in first.links
    pages = await all_pages(api, "/api/sessions", limit=500)
    assert [len(p) for p in pages] == [500, 500, 205]
    seen = [s for page in pages for s in page]
    assert len({s["id"] for s in seen}) == 1_205
    keys = [(s["started_at"], s["id"]) for s in seen]
    assert keys == sorted(keys, reverse=True)
    only_a = [s for page in await all_pages(api, "/api/sessions", charger="CP-A", limit=250)
              for s in page]  # fmt: skip
    assert len(only_a) == 602
    assert {s["charger_id"] for s in only_a} == {"CP-A"}
    # rows added meanwhile do not shift a page: keyset, not offset
    middle = await api.get("/api/sessions", params={"limit": 10})
    await add_sessions_later(edge)
    after = await api.get(middle.links["next"]["url"])
    assert after.json()[0]["id"] == seen[10]["id"]


async def add_sessions_later(daemon: EdgeDaemon) -> None:
    unit = Unit()
    later = T0 + timedelta(days=1)
    repo.save_session(
        unit,
        Session(id=SessionId("S-NEW"), charger_id=ChargerId("CP-A"), evse_id=1, connector_id=1,
                transaction_id="new", id_tag=None, started_at=later, version="ocpp1.6",
                status=SessionStatus.COMPLETED),
    )  # fmt: skip
    await daemon.store.write(unit)


@pytest.mark.parametrize(
    ("params", "message"),
    [({"limit": "0"}, "limit"), ({"limit": "501"}, "limit"), ({"limit": "ten"}, "limit"),
     ({"limit": "-1"}, "limit"), ({"limit": "1.5"}, "limit"),
     ({"cursor": "not-a-cursor"}, "cursor"), ({"cursor": "!!!"}, "cursor"),
     ({"cursor": CHARGERS_CURSOR}, "cursor"),
     ({"cursor": encode_cursor("sessions", (1, 2))}, "cursor"),
     ({"cursor": encode_cursor("sessions", ("x",))}, "cursor"),
     ({"cursor": "A" * 2000}, "cursor")],
)  # fmt: skip
async def test_bad_limits_and_cursors_are_a_400_that_says_which(
    api: httpx.AsyncClient, params: dict[str, str], message: str
) -> None:
    for path in ("/api/sessions", "/api/chargers", "/api/visits", "/api/slots", "/api/events"):
        if path == "/api/chargers" and params.get("cursor") == CHARGERS_CURSOR:
            continue  # a good one there
        reply = await api.get(path, params=params)
        assert reply.status_code == 400, (path, reply.text)
        assert message in reply.json()["detail"]


async def test_active_sessions_chargers_and_their_events_page_too(
    edge: EdgeDaemon, api: httpx.AsyncClient
) -> None:
    for n in range(3):
        async with RawCharger(ocpp_url(edge), f"CP-{n}", Version.V16) as charger:
            flow = flow_for(charger)
            await flow.boot()
            await flow.plug(1)
            await flow.start(1, "TAG-OK", 0.0, T0 + timedelta(minutes=n))
            await flow.plug(2)
            await flow.start(2, "TAG-OK", 0.0, T0 + timedelta(minutes=n))
    chargers = await all_pages(api, "/api/chargers", limit=2)
    # the configured charger that never connected is listed too, in its place by id
    assert [[c["id"] for c in p] for p in chargers] == [["CP-0", "CP-1"], ["CP-2", "CP-LOCKED"]]
    states = {c["id"]: (c["state"], c["connected"]) for p in chargers for c in p}
    assert states == {
        "CP-0": ("offline", False),
        "CP-1": ("offline", False),
        "CP-2": ("offline", False),
        "CP-LOCKED": ("never_connected", False),
    }
    active = await all_pages(api, "/api/sessions", status="active", limit=4)
    assert [len(p) for p in active] == [4, 2]
    flat = [s for p in active for s in p]
    assert len({s["id"] for s in flat}) == 6
    keys = [(s["started_at"], s["id"]) for s in flat]
    assert keys == sorted(keys, reverse=True)
    events = await all_pages(api, "/api/chargers/CP-0/events", limit=1)
    assert len(events) >= 2
    ids = [e["id"] for p in events for e in p]
    assert ids == sorted(ids, reverse=True)
    assert (await api.get("/api/chargers/NOPE/events")).status_code == 404


async def test_site_events_visits_and_slots_page(
    config_factory: Callable[..., SiteConfig],
) -> None:
    slots = [{"id": f"P{n}", "type": "standard"} for n in range(5)]
    async with (
        EdgeDaemon(config_factory(slots=slots)) as daemon,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.http_port}", timeout=15) as api,
    ):
        unit = Unit()
        for n in range(120):
            data: Data = (
                ChargingStarted(session_id=f"S-{n}", charger_id="CP-1", started_at=T0, **NOBODY)
                if n % 2
                else ParkingOccupied(slot_id="P1", visit_id=f"V-{n}", **NOBODY)
            )
            repo.add_outbox_event(unit, data, f"X-{n}", T0 + timedelta(seconds=n))
        for n in range(7):
            unit.add(
                "INSERT INTO visits (visit_id, slot_id, arrived_at) VALUES (?,?,?)",
                (f"V-{n}", "P1", format_timestamp(T0 + timedelta(minutes=n // 2))),
            )
        await daemon.store.write(unit)
        events = await all_pages(api, "/api/events", limit=50)
        assert [len(p) for p in events] == [50, 50, 20]
        sequences = [e["sequence"] for p in events for e in p]
        assert sequences == sorted(sequences, reverse=True)
        charging = [e for p in await all_pages(api, "/api/events", kind="charging") for e in p]
        assert len(charging) == 60
        assert {e["type"] for e in charging} == {"charging.started"}
        assert (await api.get("/api/events", params={"kind": "x%"})).status_code == 422
        visits = await all_pages(api, "/api/visits", slot="P1", limit=3)
        assert [len(p) for p in visits] == [3, 3, 1]
        keys = [(v["arrived_at"], v["visit_id"]) for p in visits for v in p]
        assert keys == sorted(keys, reverse=True)
        assert len(set(keys)) == 7
        pages = await all_pages(api, "/api/slots", limit=2)
        assert [[s["slot_id"] for s in p] for p in pages] == [["P0", "P1"], ["P2", "P3"], ["P4"]]
        assert len((await api.get("/api/slots")).json()) == 5  # small lists: one page


async def test_the_ui_history_pages_link_to_older_ones(edge: EdgeDaemon) -> None:
    await add_sessions(edge, 60)
    unit = Unit()
    for n in range(30):
        started = ChargingStarted(session_id=f"S-{n}", charger_id="CP-1", started_at=T0, **NOBODY)
        repo.add_outbox_event(unit, started, f"X-{n}", T0)
    await edge.store.write(unit)
    await add_users(edge)
    async with logged_in(edge, "vic") as viewer:
        rows: list[int] = []
        page = await viewer.http.get("/sessions", params={"charger": "CP-A", "limit": 12})
        while True:
            assert page.status_code == 200
            rows.append(page.text.count('<td data-label="Charger"><a href="/chargers/CP-A">'))
            older = re.search(r'<a href="([^"]+)" rel="next">Older sessions</a>', page.text)
            if older is None:
                break
            assert "charger=CP-A" in older.group(1)
            page = await viewer.http.get(html.unescape(older.group(1)))
        assert rows == [12, 12, 6]  # the 30 sessions of CP-A
        events = await viewer.http.get("/events", params={"limit": 20})
        older = re.search(r'<a href="([^"]+)" rel="next">Older events</a>', events.text)
        assert older is not None
        rest = await viewer.http.get(html.unescape(older.group(1)))
        assert rest.text.count('data-type="charging.started"') == 10
        assert "Older events" not in rest.text
        bad = await viewer.http.get("/sessions", params={"cursor": "nonsense"})
        assert bad.status_code == 400
