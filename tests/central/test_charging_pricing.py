"""Session pricing without I/O: energy, time-of-use windows, parking time, idle fee."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from central.pricing import Rate, TouWindow, energy_price_at, price_session

D = Decimal
START = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)  # a Monday


def test_flat_energy_price() -> None:
    rate = Rate("EUR", D("0.30"))
    cost = price_session(rate, START, START + timedelta(hours=2), 20_000)
    assert (cost.energy, cost.parking, cost.idle, cost.total) == (D("6.00"), 0, 0, D("6.00"))


def test_time_of_use_splits_energy_evenly_over_the_charging_time() -> None:
    night = TouWindow(time(21, 0), time(6, 0), D("0.10"))  # over midnight
    rate = Rate("EUR", D("0.40"), tou=(night,))
    # 20:00-22:00: half the energy at 0.40, half at 0.10
    cost = price_session(rate, START, START + timedelta(hours=2), 10_000)
    assert cost.energy == D("2.50")


def test_time_of_use_in_the_site_time_zone_and_on_given_days() -> None:
    # 09:00-12:00 local in Berlin (UTC+1 in March) on weekdays only
    morning = TouWindow(time(9, 0), time(12, 0), D("0.50"), frozenset(range(5)))
    rate = Rate("EUR", D("0.20"), timezone="Europe/Berlin", tou=(morning,))
    monday_8_30_utc = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)  # 09:30 in Berlin
    assert energy_price_at(rate, monday_8_30_utc) == D("0.50")
    assert energy_price_at(rate, monday_8_30_utc - timedelta(hours=1)) == D("0.20")
    sunday = monday_8_30_utc - timedelta(days=1)
    assert energy_price_at(rate, sunday) == D("0.20")


def test_parking_time_and_idle_fee_after_the_grace_period() -> None:
    rate = Rate(
        "EUR",
        D("0.30"),
        parking_price_per_hour=D("1.00"),
        idle_fee_per_minute=D("0.10"),
        idle_grace_minutes=15,
    )
    charged_until = START + timedelta(hours=1)
    left = charged_until + timedelta(minutes=45)  # 30 minutes beyond the grace period
    cost = price_session(rate, START, left, 10_000, charging_ended_at=charged_until)
    assert cost.energy == D("3.00")
    assert cost.parking == D("1.75")
    assert (cost.idle_minutes, cost.idle) == (30, D("3.00"))
    assert cost.total == D("7.75")


def test_no_idle_fee_within_the_grace_period_and_odd_inputs() -> None:
    rate = Rate("EUR", D("0.30"), idle_fee_per_minute=D("0.10"), idle_grace_minutes=15)
    end = START + timedelta(hours=1)
    cost = price_session(rate, START, end + timedelta(minutes=10), 1000, charging_ended_at=end)
    assert cost.idle == 0
    # a stop before the start and negative energy price nothing, not an error
    odd = price_session(rate, START, START - timedelta(minutes=5), -5)
    assert odd.total == 0
