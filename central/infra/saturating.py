"""Datetime arithmetic that never overflows: at the ends of ``datetime`` (year 1, year
9999) it saturates instead of raising.

Times sites report can be anything a clock shows (a charger reset to year 1, one run ahead
to 9999); converting such a time to UTC, moving it, or showing it in a zone must not crash
a handler or a database write. :mod:`central.reported_times` builds its rules on these;
:mod:`central.infra.db` stores every time through :func:`utc`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final

EARLIEST: Final = datetime.min.replace(tzinfo=UTC)
LATEST: Final = datetime.max.replace(tzinfo=UTC)


def utc(at: datetime) -> datetime:
    """``at`` in UTC; an offset that pushes it past the ends of ``datetime`` saturates."""
    if at.tzinfo is None:
        raise ValueError("aware datetimes only")
    try:
        return at.astimezone(UTC)
    except OverflowError:
        return EARLIEST if at.year == EARLIEST.year else LATEST


def shift(at: datetime, delta: timedelta) -> datetime:
    """``at + delta``, saturating at the ends of ``datetime`` instead of raising."""
    try:
        return at + delta
    except OverflowError:
        return LATEST if delta > timedelta(0) else EARLIEST


def in_zone(at: datetime, zone: tzinfo) -> datetime:
    """``at`` in ``zone`` for display; as given where the zone's offset would overflow."""
    try:
        return at.astimezone(zone)
    except OverflowError:
        return at
