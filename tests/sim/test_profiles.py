"""The simulated charger's charging profiles, as the spec has them: stack levels, the
three purposes, Absolute, Recurring and Relative schedules, A and W, and the composite
schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sim.charger.profiles import ProfileStore, Running, profile_v16, profile_v201

T0 = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


def v16(pid: int, purpose: str, level: int, limit: float, **more: object) -> dict[str, object]:
    schedule: dict[str, object] = {
        "chargingRateUnit": more.pop("unit", "A"),
        "chargingSchedulePeriod": more.pop("periods", [{"startPeriod": 0, "limit": limit}]),
    }
    for key in ("startSchedule", "duration"):
        if key in more:
            schedule[key] = more.pop(key)
    return {
        "chargingProfileId": pid,
        "stackLevel": level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": more.pop("kind", "Absolute"),
        "chargingSchedule": schedule,
        **more,
    }


def test_the_highest_stack_level_in_effect_wins_and_the_max_profile_caps_it() -> None:
    store = ProfileStore(phases=3)
    store.install(profile_v16(1, v16(1, "TxDefaultProfile", 0, 16)))
    assert store.limit_w(1, T0, None) == 16 * 230 * 3
    until = (T0 + timedelta(hours=1)).isoformat()
    store.install(profile_v16(1, v16(2, "TxDefaultProfile", 1, 10, validTo=until)))
    assert store.limit_w(1, T0, None) == 10 * 230 * 3
    assert store.limit_w(1, T0 + timedelta(hours=2), None) == 16 * 230 * 3  # level 1 expired
    store.install(profile_v16(0, v16(3, "ChargePointMaxProfile", 0, 6000, unit="W")))
    assert store.limit_w(1, T0, None) == 6000


def test_a_tx_profile_beats_the_default_while_its_transaction_runs_and_ends_with_it() -> None:
    store = ProfileStore(phases=3)
    store.install(profile_v16(0, v16(1, "TxDefaultProfile", 0, 32)))
    store.install(profile_v16(1, v16(2, "TxProfile", 0, 8, transactionId=7, kind="Relative")))
    running = Running("7", T0)
    assert store.limit_w(1, T0, running) == 8 * 230 * 3
    assert store.limit_w(1, T0, Running("8", T0)) == 32 * 230 * 3  # another transaction
    store.transaction_ended("7")
    assert store.limit_w(1, T0, running) == 32 * 230 * 3


def test_periods_phases_and_a_daily_recurring_schedule() -> None:
    store = ProfileStore(phases=3)
    periods = [
        {"startPeriod": 0, "limit": 32},
        {"startPeriod": 3600, "limit": 10, "numberPhases": 1},
    ]
    store.install(
        profile_v16(
            1,
            v16(1, "TxDefaultProfile", 0, 0, kind="Recurring", recurrencyKind="Daily",
                startSchedule=T0.isoformat(), periods=periods),
        )
    )  # fmt: skip
    assert store.limit_w(1, T0 + timedelta(minutes=30), None) == 32 * 230 * 3
    assert store.limit_w(1, T0 + timedelta(hours=2), None) == 10 * 230 * 1
    next_day = T0 + timedelta(days=1, minutes=5)
    assert store.limit_w(1, next_day, None) == 32 * 230 * 3
    composite = store.composite(1, T0, 3 * 3600, None)
    assert composite == [(0, 32 * 230 * 3), (3600, 10 * 230)]


def test_replacing_and_clearing_as_the_spec_says() -> None:
    store = ProfileStore()
    store.install(profile_v16(1, v16(1, "TxDefaultProfile", 0, 16)))
    store.install(profile_v16(1, v16(9, "TxDefaultProfile", 0, 20)))  # same level: replaced
    assert [p.id for p in store.profiles] == [9]
    store.install(profile_v16(2, v16(4, "TxDefaultProfile", 0, 20)))
    assert store.clear(purpose_name="TxDefaultProfile", evse=2) == 1
    assert store.clear(profile_id=9) == 1
    assert store.limit_w(1, T0, None) is None


def test_a_201_profile_reads_the_same() -> None:
    store = ProfileStore(phases=3)
    profile = {
        "id": 5,
        "stackLevel": 0,
        "chargingProfilePurpose": "ChargingStationMaxProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": [
            {
                "id": 1,
                "chargingRateUnit": "W",
                "startSchedule": T0.isoformat(),
                "duration": 600,
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11000}],
            }
        ],
    }
    store.install(profile_v201(0, profile))
    assert store.limit_w(2, T0 + timedelta(minutes=5), None) == 11000
    assert store.limit_w(2, T0 + timedelta(minutes=11), None) is None  # its duration is over
