"""What to store from a batch of a site's events (plain code, no I/O).

Rules: an event whose id central already holds is a duplicate (answered, not stored
again). The new ones must continue the site's sequence without a gap: sorted by
``sequence`` they must run ``last_sequence + 1, + 2, ...``. A new event claiming a
sequence central already holds under another id is a conflict, not a duplicate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from contract.envelope import CloudEvent


@dataclass(frozen=True)
class BatchPlan:
    new: tuple[CloudEvent, ...]
    duplicates: int

    @property
    def last_sequence(self) -> int | None:
        return self.new[-1].sequence if self.new else None


class BatchRejected(ValueError):
    """The batch cannot be stored as sent (permanent for this batch)."""


class SequenceGapError(BatchRejected):
    def __init__(self, expected: int, got: int) -> None:
        super().__init__(f"sequence gap: expected {expected}, got {got}")
        self.expected = expected


class SequenceConflict(BatchRejected):
    pass


def plan_batch(
    events: Sequence[CloudEvent], last_sequence: int, known_ids: Iterable[str]
) -> BatchPlan:
    known = set(known_ids)
    seen: set[str] = set()
    duplicates = 0
    fresh: list[CloudEvent] = []
    for event in events:
        if event.id in known or event.id in seen:
            duplicates += 1
            continue
        seen.add(event.id)
        fresh.append(event)
    fresh.sort(key=lambda e: e.sequence)
    expected = last_sequence + 1
    for event in fresh:
        if event.sequence < expected:
            raise SequenceConflict(
                f"event {event.id} claims sequence {event.sequence}, which central already "
                f"holds under another event id"
            )
        if event.sequence > expected:
            raise SequenceGapError(expected, event.sequence)
        expected += 1
    return BatchPlan(new=tuple(fresh), duplicates=duplicates)


def published_runs(published: Iterable[tuple[str, int]]) -> list[tuple[str, int, int]]:
    """(site, sequence) pairs put on the bus, as each site's unbroken runs ``(site, first,
    last)`` in order: a site's mark moves over a run only from just before its first."""
    by_site: dict[str, list[int]] = {}
    for site_id, sequence in published:
        by_site.setdefault(site_id, []).append(sequence)
    runs: list[tuple[str, int, int]] = []
    for site_id, sequences in sorted(by_site.items()):
        ordered = sorted(set(sequences))
        first = previous = ordered[0]
        for sequence in ordered[1:]:
            if sequence != previous + 1:
                runs.append((site_id, first, previous))
                first = sequence
            previous = sequence
        runs.append((site_id, first, previous))
    return runs
