"""Batch planning without I/O: duplicates, order, gaps and conflicts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from central.sync.batches import SequenceConflict, SequenceGapError, plan_batch
from contract.envelope import CloudEvent


def ev(seq: int, eid: str | None = None) -> CloudEvent:
    return CloudEvent(
        id=eid or f"e{seq}",
        source="/sites/S1",
        type="parking.occupied",
        time=datetime(2026, 1, 1, tzinfo=UTC),
        sequence=seq,
    )


def test_new_events_are_stored_in_sequence_order() -> None:
    plan = plan_batch([ev(3), ev(1), ev(2)], last_sequence=0, known_ids=[])
    assert [e.sequence for e in plan.new] == [1, 2, 3]
    assert plan.last_sequence == 3
    assert plan.duplicates == 0


def test_a_resent_batch_is_answered_with_duplicates() -> None:
    plan = plan_batch([ev(1), ev(2), ev(3)], last_sequence=2, known_ids=["e1", "e2"])
    assert [e.sequence for e in plan.new] == [3]
    assert plan.duplicates == 2
    again = plan_batch([ev(1), ev(1)], last_sequence=3, known_ids=["e1"])
    assert again.new == ()
    assert again.duplicates == 2


def test_a_gap_is_refused_with_the_expected_sequence() -> None:
    with pytest.raises(SequenceGapError) as info:
        plan_batch([ev(5)], last_sequence=3, known_ids=[])
    assert info.value.expected == 4
    with pytest.raises(SequenceGapError):
        plan_batch([ev(1), ev(3)], last_sequence=0, known_ids=[])


def test_a_new_event_reusing_a_stored_sequence_is_a_conflict() -> None:
    with pytest.raises(SequenceConflict):
        plan_batch([ev(2, "other")], last_sequence=2, known_ids=["e1", "e2"])
