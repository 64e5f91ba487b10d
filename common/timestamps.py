"""RFC 3339 timestamps: the one parser for times that come from outside (chargers, sensors,
event data, stored rows).

Python's ``datetime.fromisoformat`` reads most of RFC 3339 but not all of it: a lower-case
``t``/``z`` and a leap second (``:60``) are made readable here, and a time that has no UTC
equivalent a ``datetime`` can hold (year 1 at +14:00) is refused rather than raising later.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

MAX_LENGTH = 64  # longer than any RFC 3339 date-time; refuses a flood before parsing it


class InvalidTimestamp(ValueError):
    """Not an RFC 3339 date-time (or one out of the range of a time); ``reason`` says which,
    without the value (for answers that must not echo input)."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(f"{reason}: {text[:MAX_LENGTH]!r}")
        self.reason = reason


def parse_timestamp(text: str, *, naive_is_utc: bool = False) -> datetime:
    """An aware datetime in UTC. A time without an offset is refused, or taken as UTC when
    ``naive_is_utc`` (some chargers send one; our own stored rows are UTC without one)."""
    if len(text) > MAX_LENGTH or "T" not in text.upper():
        raise InvalidTimestamp("not an RFC 3339 time", text)
    candidate = text.upper()
    leap = candidate[16:19] == ":60"
    if leap:  # 23:59:60 is the second before the next minute's first
        candidate = f"{candidate[:17]}59{candidate[19:]}"
    try:
        moment = datetime.fromisoformat(candidate)
    except ValueError as err:
        raise InvalidTimestamp("not an RFC 3339 time", text) from err
    if moment.tzinfo is None:
        if not naive_is_utc:
            raise InvalidTimestamp("no UTC offset", text)
        moment = moment.replace(tzinfo=UTC)
    try:  # year 1 at +14:00 or year 9999 at -14:00 has no UTC time a datetime can hold
        if leap:
            moment = moment.replace(microsecond=0) + timedelta(seconds=1)
        return moment.astimezone(UTC)
    except OverflowError as err:
        raise InvalidTimestamp("out of the range of a time", text) from err


def timestamp_or_none(value: object) -> datetime | None:
    """A time from loosely typed data (event ``data``, a sensor payload): an RFC 3339 string
    with an offset or an aware datetime, in UTC; anything else is None."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return None
        try:  # year 1 at +14:00 has no UTC time a datetime can hold
            return value.astimezone(UTC)
        except OverflowError:
            return None
    if not isinstance(value, str):
        return None
    try:
        return parse_timestamp(value)
    except InvalidTimestamp:
        return None


def format_timestamp(moment: datetime) -> str:
    """``2026-12-02T14:18:52.123Z``: RFC 3339 in UTC with milliseconds, the one form evpark
    writes (so stored text sorts by time, years before 1000 included)."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    # by hand: half the time of isoformat(timespec=...) and a slice, for every sample stored
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (  # noqa: UP031
        moment.year, moment.month, moment.day,
        moment.hour, moment.minute, moment.second, moment.microsecond // 1000,
    )  # fmt: skip
