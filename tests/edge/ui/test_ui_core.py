"""The UI's plain parts (power series, chart, alerts, login throttle, roles) and its live
hub inside a running daemon: events in order, slow clients dropped, shutdown with open
streams."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from edge.core.ids import ChargerId, SlotId
from edge.core.model import Charger, ConnectorStatus, Evse
from edge.core.slots.model import SlotView
from edge.core.slots.values import Condition, SensorId, SlotState
from edge.daemon import EdgeDaemon
from edge.services.users import Role
from edge.ui.alerts import site_alerts
from edge.ui.auth import LoginThrottle, is_loopback
from edge.ui.charger_events import describe
from edge.ui.live import QUEUE_SIZE
from edge.ui.power import (
    PowerPoint,
    PowerSample,
    bucket_ends,
    chart,
    power_series,
    with_now,
)
from tests.edge.ui.conftest import add_users, logged_in, ui_config
from tests.mosquitto import Mosquitto

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# --- power -----------------------------------------------------------------------------


def test_bucket_ends_are_aligned_and_end_now() -> None:
    ends = bucket_ends(at(2), at(17))
    assert ends == [at(5), at(10), at(15), at(17)]


def test_power_sums_the_latest_reading_of_each_running_session() -> None:
    samples = [
        PowerSample(at(1), "s1", 7000.0),
        PowerSample(at(4), "s1", 11000.0),  # the latest in its bucket counts
        PowerSample(at(6), "s2", 3000.0),
        PowerSample(at(12), "s2", -50.0),  # a negative reading counts as nothing
    ]
    stops = {"s1": at(9)}
    points = power_series(samples, stops, [at(5), at(10), at(15)], hold=timedelta(minutes=15))
    assert [p.power_w for p in points] == [11000.0, 3000.0, 0.0]


def test_power_forgets_a_silent_session_after_the_hold_time() -> None:
    samples = [PowerSample(at(0), "s1", 5000.0)]
    points = power_series(samples, {}, [at(10), at(20)], hold=timedelta(minutes=15))
    assert [p.power_w for p in points] == [5000.0, 0.0]


def test_chart_scales_to_a_round_top_and_describes_itself() -> None:
    points = [PowerPoint(at(m), w) for m, w in [(0, 0.0), (60, 18000.0), (120, 6000.0)]]
    drawn = chart(points, width=400, height=200)
    assert [t.label for t in drawn.y_ticks] == ["0", "10", "20"]
    assert drawn.peak_kw == 18.0
    assert drawn.latest_kw == 6.0
    assert drawn.line.startswith("M0.0,")
    assert [t.position for t in drawn.x_ticks] == [50.0, 100.0]  # percent of the plot
    assert [t.position for t in drawn.y_ticks] == [100.0, 50.0, 0.0]
    assert [t.label for t in drawn.x_ticks] == ["09:00", "10:00"]
    assert "peak 18.0 kW" in drawn.description
    assert chart([]).line == ""


def test_the_charts_now_is_the_live_figure() -> None:
    points = [PowerPoint(at(0), 7200.0), PowerPoint(at(5), 7200.0)]
    assert with_now(points, 0.0) == [PowerPoint(at(0), 7200.0), PowerPoint(at(5), 0.0)]
    assert chart(with_now(points, 11_000.0)).latest_kw == 11.0
    assert with_now([], 5.0) == []


def test_connector_faults_read_in_the_chargers_own_words() -> None:
    fault_16 = {"evse_id": 2, "connector_id": 2, "status": "Faulted",
                "error_code": "OverCurrentFailure", "info": "RCD tripped",
                "vendor_error_code": "E-0042"}  # fmt: skip
    assert describe("connector_fault", fault_16) == (
        "connector 2: OverCurrentFailure (RCD tripped) vendor code E-0042"
    )
    cleared = {**fault_16, "status": "Available", "error_code": None}
    assert describe("connector_fault_cleared", cleared) == (
        "connector 2: fault cleared, now Available"
    )
    problem = {"eventData": [{"component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
               "variable": {"name": "Problem"}, "actualValue": "true", "techCode": "GroundFailure",
               "techInfo": "RCD"}]}  # fmt: skip
    assert describe("notify_event", problem) == "Connector 1 Problem = true (GroundFailure, RCD)"
    assert describe("boot", {"vendor": "x"}) is None  # shown as its data


def test_chart_hours_are_the_sites_own_across_a_change_to_summer_time() -> None:
    # Berlin goes from 02:00 CET to 03:00 CEST at 01:00 UTC on 2026-03-29
    start = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)
    points = [PowerPoint(start + timedelta(minutes=30 * n), 1000.0) for n in range(8)]
    berlin = chart(points, zone=ZoneInfo("Europe/Berlin"))
    assert [t.label for t in berlin.x_ticks] == ["01:00", "03:00", "04:00", "05:00"]
    kolkata = chart(points, zone=ZoneInfo("Asia/Kolkata"))  # UTC+05:30
    assert [t.label for t in kolkata.x_ticks] == ["06:00", "07:00", "08:00"]
    assert [t.label for t in chart(points).x_ticks] == ["00:00", "01:00", "02:00", "03:00"]


# --- alerts ----------------------------------------------------------------------------


def view(slot: str, **changes: object) -> SlotView:
    base: dict[str, object] = dict(
        slot_id=SlotId(slot), slot_type="ev", state=SlotState.OCCUPIED, since=T0,
        conditions=(), sensor_id=SensorId(f"S-{slot}"), sensor_status="ok", battery=90,
        low_battery=False, charger_id=None, evse_id=None, connector_id=None,
        connector_status=None, visit_id=None, reservation_id=None, out_of_service_reason="",
    )  # fmt: skip
    base.update(changes)
    return SlotView(**base)  # type: ignore[arg-type]


def test_alerts_come_most_severe_first() -> None:
    faulted = Charger(ChargerId("CP-1"), connected=True)
    faulted.evses[1] = Evse(1, status=ConnectorStatus.FAULTED, error_code="GroundFailure")
    offline = Charger(ChargerId("CP-2"), connected=False, last_seen=T0)
    found = site_alerts(
        [
            view("A1", conditions=(Condition.EV_SLOT_BLOCKED,)),
            view("B1", sensor_status="offline", battery=9, low_battery=True),
            view("B2"),
        ],
        [faulted, offline],
        configured=["CP-1", "CP-2", "CP-3"],
    )
    assert [(a.severity, a.kind, a.subject) for a in found] == [
        ("critical", "evse_faulted", "CP-1"),
        ("warning", "ev_slot_blocked", "A1"),
        ("warning", "sensor_offline", "B1"),
        ("warning", "charger_offline", "CP-2"),
        ("warning", "charger_never_connected", "CP-3"),
        ("info", "low_battery", "B1"),
    ]
    assert "GroundFailure" in found[0].message


# --- login throttle and roles --------------------------------------------------------------


def test_throttle_blocks_a_guesser_for_the_window_only() -> None:
    throttle = LoginThrottle(limit=3, window=timedelta(minutes=5))
    for minute in range(3):
        assert throttle.retry_after("10.0.0.9", at(minute)) is None
        throttle.failed("10.0.0.9", at(minute))
    assert throttle.retry_after("10.0.0.9", at(3)) == pytest.approx(120.0)
    assert throttle.retry_after("10.0.0.8", at(3)) is None  # others are not affected
    assert throttle.retry_after("10.0.0.9", at(5)) is None  # the first failure aged out


def test_throttle_memory_is_bounded() -> None:
    throttle = LoginThrottle(limit=2, max_clients=10)
    for n in range(100):
        throttle.failed(f"10.0.0.{n}", at(n))
    assert len(throttle._failures) == 10


def test_roles_are_ordered() -> None:
    assert Role.ADMIN.allows(Role.TECHNICIAN)
    assert Role.TECHNICIAN.allows(Role.VIEWER)
    assert not Role.VIEWER.allows(Role.TECHNICIAN)
    assert not Role.TECHNICIAN.allows(Role.ADMIN)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False),
     ("10.0.0.5", False), ("edge.local", False)],
)  # fmt: skip
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


# --- the live hub in a running daemon ----------------------------------------------------


async def test_stream_carries_slot_changes_in_order(daemon: EdgeDaemon) -> None:
    async with logged_in(daemon, "tess") as tech, tech.http.stream("GET", "/ui/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.aiter_lines()
        seen: list[dict[str, object]] = []

        async def next_event() -> dict[str, object]:
            async for line in lines:
                if line.startswith("data: "):
                    event: dict[str, object] = json.loads(line[6:])
                    return event
            raise AssertionError("the stream ended")

        async with asyncio.timeout(10):
            assert (await next_event())["type"] == "hello"
            for action in ("out-of-service", "in-service"):
                reply = await tech.http.post(
                    "/ui/slots/B2/" + action, headers={"X-CSRF-Token": tech.csrf}
                )
                assert reply.status_code == 200
            while len([e for e in seen if e["type"] == "slot"]) < 2:
                seen.append(await next_event())
    states = [e["slot"]["state"] for e in seen if e["type"] == "slot"]  # type: ignore[index]
    assert states[0] == "out_of_service"
    assert states[1] != "out_of_service"
    assert any(e["type"] == "summary" for e in seen)


async def test_a_client_that_does_not_read_is_dropped(daemon: EdgeDaemon) -> None:
    hub = daemon.ui.hub
    async with hub.subscribe() as slow, hub.subscribe() as fast:
        for n in range(QUEUE_SIZE + 1):
            hub.broadcast({"type": "test", "n": n})
            if n % 100 == 0:
                while not fast.queue.empty():
                    fast.queue.get_nowait()
        assert slow.closed
        assert not fast.closed
        assert await slow.next(1.0) == b""  # its stream ends; the browser reconnects
        assert hub.subscribers == 1


async def test_daemon_stops_promptly_with_a_stream_open(tmp_path: Path, broker: Mosquitto) -> None:
    daemon = EdgeDaemon(ui_config(tmp_path / "data", broker))
    async with daemon:
        await add_users(daemon)
        async with logged_in(daemon, "vic") as viewer:
            client = httpx.AsyncClient(
                base_url=str(viewer.http.base_url), cookies=viewer.http.cookies
            )
            stream_cm = client.stream("GET", "/ui/events")
            stream = await stream_cm.__aenter__()
            lines = stream.aiter_lines()
            async with asyncio.timeout(5):
                async for line in lines:
                    if line.startswith("data: "):
                        break
    # the daemon has stopped (within the test's timeout): the stream was ended for it
    async with asyncio.timeout(5):
        rest = [line async for line in lines]
    assert not [line for line in rest if line.startswith("data: ")]
    await stream_cm.__aexit__(None, None, None)
    await client.aclose()
