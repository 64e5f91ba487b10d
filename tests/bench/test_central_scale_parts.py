"""The central scale bench's plain parts: the sites' events (valid, gap-free, sessions in
order, the mix of the table) and the lag arithmetic. No services needed."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from bench.central_lag import Batch, Sample, TopicState, batch_lags, weighted_percentile
from bench.central_sites import PROGRESS_PER_SESSION, SESSION_MIX, SiteEvents, check_events
from contract.envelope import CHARGING_TOPIC, PARKING_TOPIC

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_events_fit_the_contract_and_are_numbered_gap_free() -> None:
    site = SiteEvents("east", chargers=4)
    events = site.take(700, NOW) + site.take(300, NOW + timedelta(seconds=1))
    check_events(events)
    assert [e["sequence"] for e in events] == list(range(1, 1001))
    assert len({e["id"] for e in events}) == 1000
    assert {e["source"] for e in events} == {"/sites/east"}
    assert site.made == 1000
    assert sum(site.counts.values()) == 1000


def test_each_session_starts_before_its_progress_and_completes_after() -> None:
    site = SiteEvents("east", chargers=3, progress_per_session=5)
    seen: dict[str, list[str]] = {}
    for event in site.take(400, NOW):
        session = event["data"].get("session_id")
        if session is not None:
            seen.setdefault(session, []).append(event["type"])
    under_way = 0  # found running when the site began: no start of their own
    for session, types in seen.items():
        if "charging.started" in types:
            assert types[0] == "charging.started", session
        else:
            under_way += "charging.completed" in types
        if "charging.completed" in types:
            assert types[-1] == "charging.completed"
            assert types.count("charging.completed") == 1
        assert set(types[1:-1]) <= {"charging.progress"}
    assert under_way == site.unseen_starts


def test_a_site_begins_with_its_chargers_at_random_points_of_their_sessions() -> None:
    site = SiteEvents("east", chargers=50)
    first = Counter(e["type"] for e in site.take(50, NOW))
    assert first["charging.progress"] > 25  # mostly under way, as at any other moment
    assert first["parking.occupied"] + first["charging.started"] < 10


def test_progress_times_move_forward_within_a_session() -> None:
    site = SiteEvents("east", chargers=1, progress_per_session=10)
    progress = [e for e in site.take(200, NOW) if e["type"] == "charging.progress"]
    by_session: dict[str, list[str]] = {}
    for event in progress:
        by_session.setdefault(event["data"]["session_id"], []).append(event["data"]["at"])
    for times in by_session.values():
        assert times == sorted(times)
        assert len(set(times)) == len(times)


def test_the_mix_over_whole_sessions_is_the_table() -> None:
    site = SiteEvents("east", chargers=2)
    per_session = sum(count for _, count, _ in SESSION_MIX)
    site.take(per_session * 2 * 20, NOW)  # twenty whole sessions per charger and more
    share = site.counts["charging.progress"] / site.made
    assert share == pytest.approx(PROGRESS_PER_SESSION / per_session, abs=0.02)
    assert site.counts["charging.started"] >= site.counts["charging.completed"]


def _sample(t: float, parking: tuple[int, int], charging: tuple[int, int]) -> Sample:
    return Sample(
        t,
        t + 0.01,
        {
            PARKING_TOPIC: TopicState(parking[0], parking[1], parking[0] - parking[1], 3),
            CHARGING_TOPIC: TopicState(charging[0], charging[1], charging[0] - charging[1], 4),
        },
    )


def test_a_batch_is_applied_when_the_slowest_topic_floor_passes_its_sequence() -> None:
    samples = [
        _sample(1.0, (10, 0), (100, 0)),
        _sample(2.0, (10, 10), (100, 50)),  # parking done, charging half
        _sample(3.0, (10, 10), (100, 99)),
        _sample(4.0, (10, 10), (100, 100)),
    ]
    both = Batch(0.5, 0.9, 40, frozenset({PARKING_TOPIC, CHARGING_TOPIC}))
    parking_only = Batch(0.6, 0.9, 5, frozenset({PARKING_TOPIC}))
    never_sampled = Batch(4.5, 4.6, 7, frozenset({PARKING_TOPIC}))
    lags = batch_lags([both, parking_only, never_sampled], samples)
    assert lags == [(pytest.approx(4.01 - 0.5), 40), (pytest.approx(2.01 - 0.6), 5)]


def test_a_floor_seen_lower_later_does_not_undo_an_applied_batch() -> None:
    samples = [_sample(1.0, (5, 5), (0, 0)), _sample(2.0, (5, 3), (0, 0))]
    assert batch_lags([Batch(0.0, 0.5, 1, frozenset({PARKING_TOPIC}))], samples) == [
        (pytest.approx(1.01), 1)
    ]


def test_weighted_percentiles() -> None:
    values = [(0.1, 98), (5.0, 2)]
    assert weighted_percentile(values, 0.5) == 0.1
    assert weighted_percentile(values, 0.98) == 0.1
    assert weighted_percentile(values, 0.99) == 5.0
    assert weighted_percentile([], 0.5) is None
