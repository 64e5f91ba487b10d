"""Hour buckets: the grain of ``usage_metrics`` and ``revenue_metrics``. No I/O."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from central.infra.saturating import LATEST, shift, utc

HOUR = timedelta(hours=1)


def hour_floor(at: datetime) -> datetime:
    return utc(at).replace(minute=0, second=0, microsecond=0)


def hours_between(start: datetime, end: datetime) -> Iterator[datetime]:
    """The hour buckets (UTC) that ``[start, end)`` touches."""
    bucket = hour_floor(start)
    while bucket < end:
        yield bucket
        if LATEST - bucket < HOUR:  # the last hour a datetime can hold
            return
        bucket += HOUR


def split_by_hour(start: datetime, end: datetime) -> list[tuple[datetime, float]]:
    """Seconds of ``[start, end)`` falling into each hour bucket (empty if ``end <= start``)."""
    found: list[tuple[datetime, float]] = []
    for bucket in hours_between(start, end):
        overlap = min(end, shift(bucket, HOUR)) - max(start, bucket)
        seconds = overlap.total_seconds()
        if seconds > 0:
            found.append((bucket, seconds))
    return found
