"""The analytics core: hour buckets, pricing with time-of-use and idle fee, rates,
usage counters from events, peak hours, reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from central.analytics.buckets import split_by_hour
from central.analytics.rates import KnownRate, rates_in, select_rate
from central.analytics.reports import align, revenue_report, usage_report
from central.analytics.revenue import UNPRICED, price_session, session_revenue
from central.analytics.usage import merge, peak_hours, usage_deltas
from central.published_rates import PublishedRate
from contract.envelope import CloudEvent

T0 = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # a Tuesday; Berlin is UTC+1
RECEIVED = T0 + timedelta(hours=3)  # when central got the events
BERLIN = ZoneInfo("Europe/Berlin")


def ev(type_: str, data: dict[str, Any], at: datetime = T0, site: str = "s1") -> CloudEvent:
    return CloudEvent(
        id=f"{type_}-{at.isoformat()}",
        source=f"/sites/{site}",
        type=type_,
        time=at,
        sequence=1,
        data=data,
    )


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


PEAK_RATE = PublishedRate.model_validate(
    {
        "rate_id": "peak",
        "currency": "EUR",
        "energy_per_kwh": "0.30",
        "session_fee": "1.00",
        "idle_fee_per_minute": "0.10",
        "idle_grace_minutes": 15,
        "idle_fee_cap": "2.00",
        "timezone": "Europe/Berlin",
        "time_of_use": [
            {"days": [0, 1, 2, 3, 4], "start": "17:00", "end": "21:00", "price_per_kwh": "0.50"}
        ],
    }
)


def test_split_by_hour() -> None:
    start = T0 + timedelta(minutes=30)
    assert split_by_hour(start, start + timedelta(hours=1, minutes=15)) == [
        (T0, 1800.0),
        (T0 + timedelta(hours=1), 2700.0),
    ]
    assert split_by_hour(start, start) == []


def test_price_session_across_a_peak_window_with_idle_fee_capped() -> None:
    price = price_session(
        PEAK_RATE,
        started_at=T0,  # 16:00 local
        stopped_at=T0 + timedelta(hours=2, minutes=40),
        idle_since=T0 + timedelta(hours=2),  # charged 16:00-18:00 local
        energy_wh=20_000,
    )
    assert price.energy == 800  # 10 kWh at 0.30 + 10 kWh at 0.50
    assert price.idle == 200  # 25 billable minutes at 0.10 = 2.50, capped at 2.00
    assert price.session_fee == 100
    assert price.time == 0
    assert price.total == 1100
    assert price.currency == "EUR"


def test_price_session_overnight_window_weekend_and_time_price() -> None:
    night = PublishedRate.model_validate(
        {
            "energy_per_kwh": "0.40",
            "time_per_hour": "1.20",
            "timezone": "Europe/Berlin",
            "windows": [{"start": "22:00", "end": "06:00", "energy_per_kwh": "0.20"}],
        }
    )
    start = datetime(2026, 3, 10, 20, 0, tzinfo=UTC)  # 21:00 local
    price = price_session(
        night, started_at=start, stopped_at=start + timedelta(hours=2), energy_wh=2000
    )
    assert price.energy == 60  # 1 kWh at 0.40 + 1 kWh at 0.20
    assert price.time == 240
    saturday = datetime(2026, 3, 14, 17, 0, tzinfo=UTC)  # 18:00 local, weekdays-only window
    weekend = price_session(
        PEAK_RATE, started_at=saturday, stopped_at=saturday + timedelta(hours=1), energy_wh=10_000
    )
    assert weekend.energy == 300
    assert weekend.idle == 0


def test_idle_within_grace_is_free_and_rates_refuse_nonsense() -> None:
    price = price_session(
        PEAK_RATE,
        started_at=T0,
        stopped_at=T0 + timedelta(minutes=70),
        idle_since=T0 + timedelta(minutes=56),
        energy_wh=1000,
    )
    assert price.idle == 0
    with pytest.raises(ValueError, match="before"):
        price_session(PEAK_RATE, started_at=T0, stopped_at=T0 - timedelta(1), energy_wh=1)
    with pytest.raises(ValueError, match="greater than or equal"):
        PublishedRate.model_validate({"energy_per_kwh": "-1"})
    with pytest.raises(ValueError, match="days"):
        PublishedRate.model_validate({"windows": [{"days": [7], "start": "01:00", "end": "02:00"}]})


@given(
    start_min=st.integers(0, 7 * 24 * 60),
    duration_min=st.integers(0, 30 * 60),
    energy=st.integers(0, 150_000),
)
def test_energy_cost_lies_between_cheapest_and_dearest_price(
    start_min: int, duration_min: int, energy: int
) -> None:
    start = T0 + timedelta(minutes=start_min)
    price = price_session(
        PEAK_RATE,
        started_at=start,
        stopped_at=start + timedelta(minutes=duration_min),
        energy_wh=energy,
    )
    kwh = Decimal(energy) / 1000
    assert kwh * 30 - 1 <= price.energy <= kwh * 50 + 1


def test_the_charging_services_rate_shape_is_understood() -> None:
    item = {
        "site_id": "s9",
        "currency": "EUR",
        "energy_price_per_kwh": "0.40",
        "parking_price_per_hour": "0.60",
        "idle_fee_per_minute": "0.05",
        "idle_grace_minutes": 10,
        "timezone": "Europe/Berlin",
        "tou_windows": [
            {"start": "00:00", "end": "06:00", "energy_price_per_kwh": "0.20", "days": []}
        ],
        "updated_at": "2026-03-01T00:00:00Z",
    }
    [(scope, rate)] = rates_in(ev("charging.rates_updated", {"rates": [item]}))
    assert scope == "s9"
    night = datetime(2026, 3, 14, 0, 0, tzinfo=UTC)  # a Saturday, 01:00 local
    price = price_session(
        rate,
        started_at=night,
        stopped_at=night + timedelta(hours=2),  # plugged in 2 h, charged 1 h
        idle_since=night + timedelta(hours=1),
        energy_wh=10_000,
    )
    assert price.energy == 200  # 10 kWh at the night price
    assert price.time == 120  # 2 h plugged in at 0.60
    assert price.idle == 250  # 50 billable minutes at 0.05


def test_select_rate_prefers_named_then_site_then_latest_valid() -> None:
    def known(site: str | None, rate_id: str, since: str | None, learnt: int) -> KnownRate:
        rate = PublishedRate.model_validate({"rate_id": rate_id, "valid_from": since})
        return KnownRate(site, rate, T0 + timedelta(minutes=learnt))

    rates = [
        known(None, "global", None, 0),
        known("s1", "site-old", "2026-01-01T00:00:00Z", 1),
        known("s1", "site-new", "2026-03-01T00:00:00Z", 2),
        known("s1", "future", "2026-04-01T00:00:00Z", 3),
        known("s2", "other-site", None, 4),
    ]

    def pick(site: str, rate_id: str | None = None) -> str | None:
        found = select_rate(rates, site_id=site, rate_id=rate_id, at=T0)
        return None if found is None else found.rate_id

    assert pick("s1") == "site-new"
    assert pick("s1", "site-old") == "site-old"
    assert pick("s1", "future") == "site-new"  # not in force yet
    assert pick("s3") == "global"
    assert select_rate(rates[1:4], site_id="s3", rate_id=None, at=T0) is None


def test_rates_from_events_and_revenue_of_a_session() -> None:
    announced = ev(
        "charging.rates_updated",
        {"rates": [PEAK_RATE.model_dump(mode="json"), {"energy_per_kwh": "x"}, 5]},
    )
    assert [(scope, r.rate_id) for scope, r in rates_in(announced)] == [("s1", "peak")]
    everywhere = ev("charging.rates_updated", {"all_sites": True, "rates": [{"rate_id": "g"}]})
    assert [scope for scope, _ in rates_in(everywhere)] == [None]
    accepted = ev(
        "command.result",
        {
            "command_id": "c1",
            "command_type": "update_rates",
            "status": "accepted",
            "result": {"rates": [{"rate_id": "r2"}]},
        },
    )
    assert [r.rate_id for _, r in rates_in(accepted)] == ["r2"]

    completed = ev(
        "charging.completed",
        {
            "energy_wh": 20_000,
            "started_at": iso(T0),
            "stopped_at": iso(T0 + timedelta(hours=2)),
        },
    )
    unpriced = session_revenue(completed, [], RECEIVED)
    assert unpriced is not None
    assert (unpriced.currency, unpriced.sessions, unpriced.total_minor) == (UNPRICED, 1, 0)
    priced = session_revenue(completed, [KnownRate("s1", PEAK_RATE, T0)], RECEIVED)
    assert priced is not None
    assert (priced.currency, priced.total_minor) == ("EUR", 900)
    assert priced.bucket == T0 + timedelta(hours=2)
    inline = ev("charging.completed", {**completed.data, "rate": {"energy_per_kwh": "1"}})
    assert session_revenue(inline, [KnownRate("s1", PEAK_RATE, T0)], RECEIVED).total_minor == 2000  # type: ignore[union-attr]


def test_usage_deltas_spread_durations_and_energy_over_hours() -> None:
    vacated = ev(
        "parking.vacated",
        {
            "slot_id": "A1",
            "visit_id": "v1",
            "arrived_at": iso(T0 + timedelta(minutes=30)),
            "departed_at": iso(T0 + timedelta(hours=2)),
            "duration_s": 5400,
        },
    )
    rows = merge(usage_deltas(vacated, RECEIVED))
    assert rows[("s1", T0)] == {"occupied_seconds": 1800.0}
    assert rows[("s1", T0 + timedelta(hours=1))] == {"occupied_seconds": 3600.0}
    assert rows[("s1", T0 + timedelta(hours=2))] == {"departures": 1}
    completed = ev(
        "charging.completed",
        {
            "energy_wh": 9000,
            "started_at": iso(T0 + timedelta(minutes=30)),
            "stopped_at": iso(T0 + timedelta(hours=2)),
        },
    )
    rows = merge(usage_deltas(completed, RECEIVED))
    assert rows[("s1", T0)]["energy_wh"] == pytest.approx(3000)
    assert rows[("s1", T0 + timedelta(hours=1))]["energy_wh"] == pytest.approx(6000)
    assert rows[("s1", T0 + timedelta(hours=2))] == {"sessions_completed": 1}
    assert usage_deltas(ev("charger.status", {"charger_id": "c"}), RECEIVED) == []
    garbage = ev("charging.completed", {"energy_wh": "lots", "started_at": 3})
    assert merge(usage_deltas(garbage, RECEIVED)) == {("s1", T0): {"sessions_completed": 1}}


def test_peak_hours_average_over_every_occurrence_of_the_hour() -> None:
    day = datetime(2026, 3, 9, 0, tzinfo=UTC)
    rows = [
        (day + timedelta(hours=17), {"occupied_seconds": 7200.0}),  # 2 slots busy
        (day + timedelta(days=1, hours=17), {"occupied_seconds": 3600.0}),
        (day + timedelta(hours=9), {"occupied_seconds": 1800.0}),
    ]
    hours = peak_hours(
        rows, start=day, end=day + timedelta(days=2), zone=BERLIN, metric="occupancy"
    )
    assert hours[0] == {"hour": 18, "average": 1.5, "total": 3.0}  # 17 UTC is 18 in Berlin
    assert hours[1]["hour"] == 10
    assert hours[1]["average"] == 0.25
    assert len(hours) == 24


def test_usage_and_revenue_reports() -> None:
    lo, hi = align(T0 - timedelta(minutes=10), T0 + timedelta(hours=2, minutes=5))
    assert (lo, hi) == (T0 - timedelta(hours=1), T0 + timedelta(hours=3))
    rows = {"s1": [(T0, {"occupied_seconds": 3600.0, "arrivals": 2.0, "sessions_completed": 1.0})]}
    open_visit = {"s1": [(T0 + timedelta(hours=1), None)]}
    sites = usage_report(
        rows,
        slots={"s1": 2},
        open_visits=open_visit,
        lo=lo,
        hi=hi,
        granularity="hour",
        zone=ZoneInfo("UTC"),
        now=T0 + timedelta(hours=1, minutes=30),
    )
    site = sites[0]
    assert site["occupied_now"] == 1
    assert site["totals"]["occupied_slot_hours"] == 1.5
    assert site["totals"]["occupancy"] == round(5400 / (2 * 4 * 3600), 4)
    assert [p["occupancy"] for p in site["periods"]] == [0.0, 0.5, 0.25, 0.0]
    assert site["totals"]["sessions"]["success_rate"] == 1.0

    revenue = revenue_report(
        [
            {
                "site_id": "s1",
                "bucket": T0,
                "currency": "EUR",
                "sessions": 2,
                "energy_wh": 30_000.0,
                "energy_minor": 1050,
                "time_minor": 0,
                "idle_minor": 250,
                "fee_minor": 200,
            },
            {
                "site_id": "s1",
                "bucket": T0,
                "currency": UNPRICED,
                "sessions": 1,
                "energy_wh": 5.0,
                "energy_minor": 0,
                "time_minor": 0,
                "idle_minor": 0,
                "fee_minor": 0,
            },
        ],
        lo=lo,
        hi=hi,
        granularity="total",
        zone=ZoneInfo("UTC"),
    )
    assert revenue[0]["unpriced_sessions"] == 1
    eur = revenue[0]["currencies"][0]
    assert (eur["total"], eur["energy"], eur["idle"], eur["energy_kwh"]) == (
        "15.00",
        "10.50",
        "2.50",
        30.0,
    )
