"""Sensor clocks (edge.sensors.clock): a wrong clock is named, never costs a reading; only an
older retained replay is dropped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.sensors.clock import ClockProblem, ClockVerdict, SensorClocks

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
S = "S-A1"


def t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def live(clocks: SensorClocks, ts: datetime | None, at: datetime) -> ClockVerdict:
    return clocks.judge(S, ts, at, replayed=False)


def test_a_reading_without_ts_is_taken_as_it_comes() -> None:
    assert live(SensorClocks(), None, T0) == ClockVerdict(True, None)


@pytest.mark.parametrize(
    ("ts", "problem"),
    [
        (t(0), None),
        (t(299), None),
        (t(-299), None),
        (t(301), ClockProblem.FUTURE),
        (t(86_400 * 365 * 70), ClockProblem.FUTURE),
        (t(-301), ClockProblem.PAST),
        (datetime(2020, 1, 1, tzinfo=UTC), ClockProblem.PAST),
        (datetime(2019, 12, 31, 23, 59, tzinfo=UTC), ClockProblem.RESET),
        (datetime(2000, 1, 1, tzinfo=UTC), ClockProblem.RESET),
        (datetime(1970, 1, 1, tzinfo=UTC), ClockProblem.RESET),
        (datetime(1, 1, 1, tzinfo=UTC), ClockProblem.RESET),
    ],
)
def test_each_live_reading_is_accepted_and_dated_by_a_believable_clock_only(
    ts: datetime, problem: ClockProblem | None
) -> None:
    verdict = live(SensorClocks(), ts, T0)
    assert verdict.accepted
    assert verdict.problem == problem
    assert verdict.skew == ts - T0
    assert verdict.measured_at == (ts if problem is None else T0)


def test_a_clock_that_ran_fast_and_was_corrected_is_heard_all_along() -> None:
    clocks = SensorClocks()
    fast = [live(clocks, t(n + 3600), t(n)) for n in (0, 10, 20)]
    assert [(v.accepted, v.problem, v.measured_at) for v in fast] == [
        (True, ClockProblem.FUTURE, t(0)),
        (True, ClockProblem.FUTURE, t(10)),
        (True, ClockProblem.FUTURE, t(20)),
    ]
    corrected = [live(clocks, t(n), t(n)) for n in (30, 40)]
    assert [(v.accepted, v.problem, v.measured_at) for v in corrected] == [
        (True, None, t(30)),
        (True, None, t(40)),
    ]
    # and a replay after a reconnect is not judged against the fast clock's times
    assert clocks.judge(S, t(40), t(90), replayed=True) == ClockVerdict(
        True, t(40), None, timedelta(seconds=-50)
    )


def test_a_clock_set_back_a_little_is_counted_and_still_heard() -> None:
    clocks = SensorClocks()
    live(clocks, t(240), t(0))  # 4 minutes fast: within the tolerance, believed
    verdict = live(clocks, t(10), t(10))  # corrected: "older" than the last one
    assert verdict == ClockVerdict(True, t(10), ClockProblem.BACKWARDS, timedelta(0))
    assert live(clocks, t(20), t(20)).problem is None


def test_a_clock_reset_to_2000_is_heard_and_named_every_time() -> None:
    clocks = SensorClocks()
    live(clocks, t(0), t(0))
    for n in (10, 20):
        verdict = live(clocks, datetime(2000, 1, 1, 0, 0, n, tzinfo=UTC), t(n))
        assert (verdict.accepted, verdict.problem, verdict.measured_at) == (
            True,
            ClockProblem.RESET,
            t(n),
        )


def test_only_an_older_retained_replay_is_dropped() -> None:
    clocks = SensorClocks()
    live(clocks, t(0), t(0))
    # the same message again on reconnect: applied (it is the current state)
    assert clocks.judge(S, t(0), t(60), replayed=True).accepted
    # a broker restored from an older save: not news
    dropped = clocks.judge(S, t(-1800), t(120), replayed=True)
    assert dropped == ClockVerdict(False, None, ClockProblem.STALE_REPLAY, t(-1920) - T0)
    # a retained message may be old without anything being wrong with the clock
    fresh = SensorClocks()
    assert fresh.judge(S, t(-3600), t(0), replayed=True) == ClockVerdict(
        True, t(-3600), None, timedelta(hours=-1)
    )
    # a live message is what the sensor says now, however old its ts
    assert live(clocks, t(-1800), t(130)).accepted


def test_sensors_are_judged_each_on_its_own() -> None:
    clocks = SensorClocks()
    clocks.judge("S-1", t(100), t(100), replayed=False)
    assert clocks.judge("S-2", t(0), t(100), replayed=True).accepted


def test_the_tolerance_is_configurable_and_positive() -> None:
    assert live(SensorClocks(timedelta(hours=1)), t(3000), T0).problem is None
    with pytest.raises(ValueError, match="positive"):
        SensorClocks(timedelta(0))


times = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)


@given(st.lists(st.tuples(st.none() | times, st.booleans()), max_size=30))
def test_live_readings_are_never_dropped_and_times_stay_sane(
    readings: list[tuple[datetime | None, bool]],
) -> None:
    clocks = SensorClocks()
    for n, (ts, replayed) in enumerate(readings):
        received = t(n)
        verdict = clocks.judge(S, ts, received, replayed=replayed)
        if not replayed:
            assert verdict.accepted
        if verdict.measured_at is not None and not replayed:
            # a live reading is never dated further than the tolerance from its arrival
            assert abs(verdict.measured_at - received) <= clocks.tolerance
        if not verdict.accepted:
            assert verdict.problem is ClockProblem.STALE_REPLAY
