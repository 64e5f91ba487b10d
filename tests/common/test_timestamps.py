"""The one RFC 3339 parser: what chargers, sensors and event data send, and what it refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from common.timestamps import (
    InvalidTimestamp,
    format_timestamp,
    parse_timestamp,
    timestamp_or_none,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-02T14:18:52Z", datetime(2026, 12, 2, 14, 18, 52, tzinfo=UTC)),
        ("2026-12-02t14:18:52.5z", datetime(2026, 12, 2, 14, 18, 52, 500000, tzinfo=UTC)),
        ("2026-12-02T15:18:52+01:00", datetime(2026, 12, 2, 14, 18, 52, tzinfo=UTC)),
        ("2026-12-31T23:59:60Z", datetime(2027, 1, 1, tzinfo=UTC)),  # a leap second
        # nanoseconds, as some chargers write: read to the microsecond
        ("2026-12-02T14:18:52.123456789Z", datetime(2026, 12, 2, 14, 18, 52, 123456, tzinfo=UTC)),
    ],
)
def test_rfc3339_as_devices_write_it(text: str, expected: datetime | None) -> None:
    if expected is None:
        with pytest.raises(InvalidTimestamp):
            parse_timestamp(text)
        return
    parsed = parse_timestamp(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    ["", "yesterday", "2026-12-02", "2026-13-02T00:00:00Z", "0001-01-01T00:00:00+14:00",
     "9999-12-31T23:59:59-14:00", "2026-12-02T14:18:52Z" + " " * 100],
)  # fmt: skip
def test_what_is_not_a_time_is_refused_with_a_clear_error(text: str) -> None:
    with pytest.raises(InvalidTimestamp):
        parse_timestamp(text)
    assert timestamp_or_none(text) is None


def test_a_time_without_offset_is_refused_unless_it_is_known_to_be_utc() -> None:
    with pytest.raises(InvalidTimestamp, match="no UTC offset"):
        parse_timestamp("2026-12-02T14:18:52")
    assert parse_timestamp("2026-12-02T14:18:52", naive_is_utc=True) == datetime(
        2026, 12, 2, 14, 18, 52, tzinfo=UTC
    )


def test_loose_data_gives_a_time_or_none() -> None:
    aware = datetime(2026, 12, 2, 15, 0, tzinfo=timezone(timedelta(hours=1)))
    assert timestamp_or_none(aware) == datetime(2026, 12, 2, 14, 0, tzinfo=UTC)
    assert timestamp_or_none(datetime(2026, 12, 2)) is None
    assert timestamp_or_none(1_700_000_000) is None
    assert timestamp_or_none(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))) is None
    assert timestamp_or_none(None) is None


def test_the_written_form_is_utc_milliseconds_and_sorts_as_text() -> None:
    times = [datetime(1, 1, 1, tzinfo=UTC), datetime(999, 5, 1, tzinfo=UTC), aware_now()]
    written = [format_timestamp(t) for t in times]
    assert written[0] == "0001-01-01T00:00:00.000Z"
    assert written == sorted(written)
    assert all(parse_timestamp(w) == t.replace(microsecond=t.microsecond // 1000 * 1000)
               for w, t in zip(written, times, strict=True))  # fmt: skip


def aware_now() -> datetime:
    return datetime.now(timezone(timedelta(hours=-5)))
