"""Times a site reports are untrusted: a charger whose clock was reset (to year 1, to
2000) or runs to 9999 must neither stall central, nor overflow a consumer into the dead
letters, nor lose its energy or money from the figures."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from structlog.testing import capture_logs

from central.analytics.tables import usage_metrics
from central.infra.db import create_engine
from central.infra.saturating import EARLIEST, LATEST, shift, utc
from central.notification.templates import template_context
from central.pricing import Rate, price_reported_session
from central.reported_times import ClockPolicy, anchor, bounded_span, reported_seconds
from tests.central.conftest import Central, FakeClock
from tests.central.notification_fixtures import database_url
from tests.central.test_charging_api import RATES, make_site

__all__ = ["database_url"]  # a fixture, used by name

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
POLICY = ClockPolicy()
YEAR_1 = datetime(1, 1, 1, tzinfo=UTC)
LAST_HOUR = datetime(9999, 12, 31, 23, 0, tzinfo=UTC)
END_OF_TIME = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
Y2K = datetime(2000, 1, 1, tzinfo=UTC)


# ---- the rule, as plain code ---------------------------------------------------------


def test_arithmetic_on_reported_times_saturates() -> None:
    assert shift(YEAR_1, -timedelta(minutes=2)) == EARLIEST
    assert shift(END_OF_TIME, timedelta(minutes=2)) == LATEST
    assert shift(NOW, timedelta(hours=1)) == NOW + timedelta(hours=1)
    # an offset that pushes a time past either end of datetime
    assert utc(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))) == EARLIEST
    assert utc(datetime(9999, 12, 31, 23, 30, tzinfo=timezone(-timedelta(hours=12)))) == LATEST


def test_instants_beyond_belief_are_placed_at_reception() -> None:
    assert anchor(NOW - timedelta(hours=3), NOW) == anchor(NOW - timedelta(hours=3), NOW)
    assert anchor(NOW - timedelta(hours=3), NOW).problem is None
    assert anchor(NOW + timedelta(minutes=5), NOW).problem is None  # within the tolerance
    assert (anchor(END_OF_TIME, NOW).at, anchor(END_OF_TIME, NOW).problem) == (NOW, "future")
    assert (anchor(Y2K, NOW).at, anchor(Y2K, NOW).problem) == (NOW, "past")


@pytest.mark.parametrize(
    ("started", "stopped", "span", "problem"),
    [
        # the fuzz's session: year 1 to 9999 -> the longest believable span, ending now
        (YEAR_1, END_OF_TIME, (NOW - POLICY.max_duration, NOW), "future"),
        # a clock reset to 2000, then corrected before the stop: cut to its last week
        (Y2K, NOW - timedelta(hours=1),
         (NOW - timedelta(hours=1) - POLICY.max_duration, NOW - timedelta(hours=1)), "too_long"),
        # all in 9999's last hour: its length kept, placed at reception
        (LAST_HOUR, END_OF_TIME, (NOW - timedelta(minutes=59, seconds=59), NOW), "future"),
        # all at year 1: its length kept, placed at reception
        (YEAR_1, YEAR_1 + timedelta(minutes=30), (NOW - timedelta(minutes=30), NOW), "past"),
        # a stop before the start: an instant at the stop
        (NOW - timedelta(hours=1), NOW - timedelta(hours=2), (NOW - timedelta(hours=2),) * 2,
         "end_before_start"),
        # no length at all is fine
        (NOW - timedelta(hours=1), NOW - timedelta(hours=1), (NOW - timedelta(hours=1),) * 2,
         None),
        (NOW - timedelta(hours=2), NOW - timedelta(hours=1),
         (NOW - timedelta(hours=2), NOW - timedelta(hours=1)), None),
    ],
)  # fmt: skip
def test_spans_are_bounded_and_placed(
    started: datetime, stopped: datetime, span: tuple[datetime, ...], problem: str | None
) -> None:
    found = bounded_span(started, stopped, NOW, POLICY)
    assert (found.start, found.end) == span
    assert found.problem == problem
    assert found.end - found.start <= POLICY.max_duration


def test_untrusted_sessions_are_priced_by_their_energy_only() -> None:
    rate = Rate("EUR", Decimal("0.40"), Decimal("1.00"), Decimal("0.10"))
    cost, problem = price_reported_session(
        rate, YEAR_1, END_OF_TIME, 10_000, None, received=NOW, policy=POLICY
    )
    assert problem == "future"
    assert (cost.energy, cost.parking, cost.idle, cost.total) == (
        Decimal("4.00"),
        Decimal(0),
        Decimal(0),
        Decimal("4.00"),
    )
    cost, problem = price_reported_session(
        rate, NOW - timedelta(hours=2), NOW, 10_000, None, received=NOW, policy=POLICY
    )
    assert (problem, cost.total) == (None, Decimal("6.00"))  # 4.00 energy + 2 h parking


def test_durations_and_displayed_times_never_overflow() -> None:
    assert reported_seconds(5400.7) == 5400
    assert [reported_seconds(v) for v in (None, -1.0, float("inf"), float("nan"), 3.2e11)] == [
        None
    ] * 5
    context = template_context(
        event_type="charging.completed",
        site_id="s1",
        event_time=END_OF_TIME,
        data={"started_at": "0001-01-01T00:00:00Z", "stopped_at": "9999-12-31T23:59:59Z"},
        user_id="u1",
        timezone="Europe/Berlin",  # +1 h past 9999-12-31 23:59 would overflow
    )
    assert context["stopped_at"] == "9999-12-31 23:59 UTC"  # no Berlin time then: said in UTC
    assert context["started_at"] == "0001-01-01 00:53 LMT"  # Berlin's local mean time then


# ---- through the real ingest ---------------------------------------------------------

ENERGY_WH = 10_000
BAD_SESSIONS: dict[str, tuple[str, str]] = {
    "year-1-to-9999": ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"),
    "reset-to-2000": ("2000-01-01T00:00:00Z", "NOW-1h"),
    "last-hour-of-9999": ("9999-12-31T23:10:00Z", "9999-12-31T23:59:59Z"),
    "year-1": ("0001-01-01T00:00:00Z", "0001-01-01T00:30:00Z"),
    "year-1-east": ("0001-01-01T00:00:00+14:00", "0001-01-01T00:30:00+14:00"),
    "end-before-start": ("NOW-1h", "NOW-2h"),
}
GOOD_SESSIONS: dict[str, tuple[str, str]] = {
    "zero-length": ("NOW-1h", "NOW-1h"),
    "two-hours": ("NOW-3h", "NOW-1h"),
}


def _time(spec: str, now: datetime) -> str:
    if spec.startswith("NOW"):
        return (now - timedelta(hours=int(spec[4:-1]))).isoformat()
    return spec


async def test_sessions_with_broken_clocks_are_kept_counted_and_bounded(
    central_factory: Callable[..., Any], database_url: str, clock: FakeClock
) -> None:
    """On SQLite and on PostgreSQL (whose timestamps hold year 1 and 9999 differently)."""
    async with central_factory(database_url=database_url, rate_limit={"burst": 1000}) as central:
        await _broken_clocks(central, clock)


async def _broken_clocks(central: Central, clock: FakeClock) -> None:
    now = clock()
    operator = await central.auth("operator")
    r = await central.client.put("/charging/rates/south", json=RATES, headers=operator)
    assert r.status_code == 200, r.text
    site = await make_site(central)
    await site.send(
        "charging.rates_updated",
        {"rates": [{"rate_id": "std", "currency": "EUR", "price_per_kwh": "0.40"}]},
    )
    sessions = {**BAD_SESSIONS, **GOOD_SESSIONS}
    with capture_logs() as logs:
        for n, (name, (started, stopped)) in enumerate(sessions.items()):
            common: dict[str, Any] = {"session_id": name, "charger_id": f"CP{n}", "evse_id": 1}
            await site.send(
                "charging.started",
                {**common, "id_tag": "card", "started_at": _time(started, now)},
                time=datetime.fromisoformat(_time(started, now)),
            )
            await site.send(
                "charging.completed",
                {
                    **common,
                    "id_tag": "card",
                    "energy_wh": ENERGY_WH,
                    "started_at": _time(started, now),
                    "stopped_at": _time(stopped, now),
                    "reason": "Local",
                },
                time=datetime.fromisoformat(_time(stopped, now)),
            )
        await site.send(
            "parking.occupied",
            {"slot_id": "A1", "visit_id": "v1", "arrived_at": "0001-01-01T00:00:00Z"},
        )
        await site.send(
            "parking.vacated",
            {
                "slot_id": "A1",
                "visit_id": "v1",
                "arrived_at": "0001-01-01T00:00:00Z",
                "departed_at": "9999-12-31T23:59:59Z",
                "duration_s": 3.2e11,
            },
        )
        async with asyncio.timeout(30):  # the fuzz's session took minutes and gigabytes
            await central.settle()
        assert (await central.client.get("/healthz")).status_code == 200

    failures = [
        entry
        for entry in logs
        if entry["event"] in ("bus.handler.failed", "bus.event.dead_lettered")
        or entry["event"].endswith(".event.invalid")
    ]
    assert failures == []
    noted = [e for e in logs if e["event"] == "charging.session.clock_problem"]
    assert sorted(e["session"] for e in noted) == sorted(BAD_SESSIONS)

    # every session is in the charging history with its times as reported, priced by energy
    r = await central.client.get(
        "/charging/sessions", params={"site_id": "south", "limit": 100}, headers=operator
    )
    assert r.status_code == 200, r.text
    listed = {s["session_id"]: s for s in r.json()["items"]}
    assert set(listed) == set(sessions)
    year_1 = listed["year-1-to-9999"]
    assert datetime.fromisoformat(year_1["started_at"]) == YEAR_1
    assert datetime.fromisoformat(year_1["stopped_at"]) == END_OF_TIME
    assert year_1["status"] == "completed"
    for name in BAD_SESSIONS:
        assert Decimal(listed[name]["cost"]["total"]) == Decimal("4.00"), name
    assert Decimal(listed["two-hours"]["cost"]["total"]) == Decimal("6.00")  # + 2 h parking

    # analytics counts every session's energy and money, and how many times it corrected
    window = {
        "from": (now - timedelta(days=30)).isoformat(),
        "to": (now + timedelta(hours=1)).isoformat(),
        "granularity": "total",
        "site_id": "south",
    }
    r = await central.client.get("/analytics/usage", params=window, headers=operator)
    assert r.status_code == 200, r.text
    (totals,) = [s["totals"] for s in r.json()["sites"]]
    assert totals["sessions"]["completed"] == len(sessions)
    assert totals["energy_kwh"] == len(sessions) * ENERGY_WH / 1000
    assert totals["departures"] == 1
    # each bad session once (its completion), the starts at year 1, 2000 or 9999 once more
    # each (placed at reception), the visit's arrival and its span
    assert totals["clock_problems"] == len(BAD_SESSIONS) + 5 + 2
    r = await central.client.get("/analytics/revenue", params=window, headers=operator)
    assert r.status_code == 200, r.text
    (revenue,) = r.json()["sites"]
    (eur,) = revenue["currencies"]
    assert (eur["currency"], eur["sessions"]) == ("EUR", len(sessions))
    assert eur["total_minor"] == len(sessions) * 400

    # the site's last event is not one stamped 9999
    r = await central.client.get("/metrics/health", headers=operator)
    (health,) = [s for s in r.json()["sites"] if s["site_id"] == "south"]
    assert datetime.fromisoformat(health["last_event_time"]) <= now + POLICY.future_tolerance

    # and the number of hour buckets written stays bounded, all near now
    engine = create_engine(central.settings.database_url_for("analytics"))
    try:
        async with engine.connect() as conn:
            count, first, last = (
                await conn.execute(
                    select(
                        func.count(),
                        func.min(usage_metrics.c.bucket),
                        func.max(usage_metrics.c.bucket),
                    )
                )
            ).one()
    finally:
        await engine.dispose()
    assert count <= 2 * (POLICY.max_duration // timedelta(hours=1) + 2)
    assert now - POLICY.max_duration - timedelta(hours=2) <= first
    assert last <= now


async def test_a_reading_from_9999_does_not_freeze_a_live_session(
    central: Central, clock: FakeClock
) -> None:
    now = clock()
    operator = await central.auth("operator")
    site = await make_site(central)
    started = (now - timedelta(hours=1)).isoformat()
    await site.send(
        "charging.started",
        {"session_id": "live", "charger_id": "CP1", "evse_id": 1, "started_at": started},
    )
    for energy, at in ((1000, "9999-12-31T23:59:59Z"), (2000, now.isoformat())):
        await site.send(
            "charging.progress",
            {"session_id": "live", "energy_wh": energy, "power_w": 7000, "at": at},
        )
    await central.settle()
    r = await central.client.get(
        "/charging/sessions", params={"site_id": "south"}, headers=operator
    )
    (session,) = r.json()["items"]
    assert (session["status"], session["energy_wh"]) == ("active", 2000)
    # and a report asked for at the end of time is refused, not a server error
    r = await central.client.get(
        "/analytics/usage",
        params={"from": "9999-12-31T00:00:00Z", "to": "9999-12-31T23:59:59Z"},
        headers=operator,
    )
    assert r.status_code == 422, r.text


async def test_energy_no_meter_delivers_is_kept_as_zero_not_dead_lettered(
    central: Central, clock: FakeClock
) -> None:
    now = clock()
    operator = await central.auth("operator")
    site = await make_site(central)
    common: dict[str, Any] = {"session_id": "meter", "charger_id": "CP1", "evse_id": 1}
    started, stopped = (now - timedelta(hours=2)).isoformat(), (now - timedelta(hours=1))
    with capture_logs() as logs:
        await site.send("charging.started", {**common, "started_at": started})
        await site.send(
            "charging.progress",
            {"session_id": "meter", "energy_wh": 1e300, "power_w": -1e300, "at": started},
        )
        await site.send(
            "charging.completed",
            {
                **common,
                "energy_wh": 1e19,  # more than an int64, let alone PostgreSQL's INTEGER
                "started_at": started,
                "stopped_at": stopped.isoformat(),
            },
        )
        await central.settle()
    assert [
        e for e in logs if e["event"] in ("bus.handler.failed", "bus.event.dead_lettered")
    ] == []
    assert {e["event"] for e in logs} >= {
        "charging.session.meter_problem",
        "analytics.meter_problem",
    }
    r = await central.client.get(
        "/charging/sessions", params={"site_id": "south"}, headers=operator
    )
    (session,) = r.json()["items"]
    assert (session["status"], session["energy_wh"]) == ("completed", 0)
    window = {"from": (now - timedelta(days=1)).isoformat(), "to": now.isoformat()}
    r = await central.client.get(
        "/analytics/usage", params={**window, "granularity": "total"}, headers=operator
    )
    (totals,) = [s["totals"] for s in r.json()["sites"]]
    assert (totals["sessions"]["completed"], totals["energy_kwh"]) == (1, 0)


async def test_a_fractional_energy_is_rounded_as_the_edge_shows_it(
    central: Central, clock: FakeClock
) -> None:
    """366.6 Wh is 367 on the site's screen and must be 367 in the driver's history, not
    a truncated 366 (seen as a mismatch between a session's two records)."""
    now = clock()
    operator = await central.auth("operator")
    site = await make_site(central)
    common: dict[str, Any] = {"session_id": "frac", "charger_id": "CP1", "evse_id": 1}
    started, stopped = (now - timedelta(hours=2)).isoformat(), (now - timedelta(hours=1))
    await site.send("charging.started", {**common, "started_at": started})
    await site.send(
        "charging.progress",
        {"session_id": "frac", "energy_wh": 120.5001, "power_w": 7199.7, "at": started},
    )
    await central.settle()
    r = await central.client.get(
        "/charging/sessions", params={"site_id": "south"}, headers=operator
    )
    (session,) = r.json()["items"]
    assert (session["energy_wh"], session["power_w"]) == (121, 7200)
    await site.send(
        "charging.completed",
        {**common, "energy_wh": 366.6, "started_at": started, "stopped_at": stopped.isoformat()},
    )
    await central.settle()
    r = await central.client.get(
        "/charging/sessions", params={"site_id": "south"}, headers=operator
    )
    (session,) = r.json()["items"]
    assert (session["status"], session["energy_wh"]) == ("completed", 367)
