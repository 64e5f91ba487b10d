"""Sensor topics and payloads: what is accepted, what is rejected and why."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.core.slots.events import SensorReading
from edge.core.slots.values import SensorId
from edge.sensors.payloads import (
    MAX_PAYLOAD_BYTES,
    Rejected,
    RejectReason,
    SensorTopic,
    parse_state,
    parse_status,
    parse_topic,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"1", SensorReading(True)),
        (b"0", SensorReading(False)),
        (b"occupied", SensorReading(True)),
        (b"free", SensorReading(False)),
        (b" FREE\n", SensorReading(False)),
        (b'{"occupied": true}', SensorReading(True)),
        (
            b'{"occupied": false, "ts": "2025-03-01T11:59:00Z", "battery": 87, "rssi": -71}',
            SensorReading(False, datetime(2025, 3, 1, 11, 59, tzinfo=UTC), 87, -71),
        ),
        (
            b'{"occupied": true, "ts": "2025-03-01T13:00:00+01:00", "battery": 20.0}',
            SensorReading(True, datetime(2025, 3, 1, 12, 0, tzinfo=UTC), 20, None),
        ),
        (b'{"occupied": true, "firmware": "1.2"}', SensorReading(True)),  # extra keys ignored
        (b'{"occupied": true, "battery": null}', SensorReading(True)),
    ],
)
def test_accepted_state_payloads(payload: bytes, expected: SensorReading) -> None:
    assert parse_state(payload) == expected


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", RejectReason.EMPTY),
        (b"   ", RejectReason.EMPTY),
        (b"\xff\xfe", RejectReason.NOT_UTF8),
        (b"x" * (MAX_PAYLOAD_BYTES + 1), RejectReason.TOO_LARGE),
        (b"maybe", RejectReason.UNKNOWN_PAYLOAD),
        (b"true", RejectReason.UNKNOWN_PAYLOAD),
        (b"2", RejectReason.UNKNOWN_PAYLOAD),
        (b"[1]", RejectReason.UNKNOWN_PAYLOAD),
        (b"{occupied: true}", RejectReason.BAD_JSON),
        (b'{"occupied": true', RejectReason.BAD_JSON),
        (b"{" * 500 + b"}" * 500, RejectReason.BAD_JSON),
        (b'{"occupied": true, "battery": NaN}', RejectReason.WRONG_TYPE),
        (b"{}", RejectReason.MISSING_FIELD),
        (b'{"battery": 50}', RejectReason.MISSING_FIELD),
        (b'{"occupied": 1}', RejectReason.WRONG_TYPE),
        (b'{"occupied": "yes"}', RejectReason.WRONG_TYPE),
        (b'{"occupied": null}', RejectReason.WRONG_TYPE),
        (b'{"occupied": true, "battery": "87"}', RejectReason.WRONG_TYPE),
        (b'{"occupied": true, "battery": true}', RejectReason.WRONG_TYPE),
        (b'{"occupied": true, "battery": 87.5}', RejectReason.WRONG_TYPE),
        (b'{"occupied": true, "battery": 101}', RejectReason.OUT_OF_RANGE),
        (b'{"occupied": true, "battery": -1}', RejectReason.OUT_OF_RANGE),
        (b'{"occupied": true, "rssi": 50}', RejectReason.OUT_OF_RANGE),
        (b'{"occupied": true, "battery": 1e400}', RejectReason.WRONG_TYPE),
        (b'{"occupied": true, "ts": 1740830400}', RejectReason.WRONG_TYPE),
        (b'{"occupied": true, "ts": "yesterday"}', RejectReason.BAD_TS),
        (b'{"occupied": true, "ts": "2025-03-01T11:59:00"}', RejectReason.BAD_TS),  # no offset
        (b'{"occupied": true, "ts": "2025-13-01T00:00:00Z"}', RejectReason.BAD_TS),
        (b'{"occupied": true, "ts": "0001-01-01T00:30:00+01:00"}', RejectReason.BAD_TS),
        (b'{"occupied": true, "ts": "9999-12-31T23:30:00-01:00"}', RejectReason.BAD_TS),
    ],
)
def test_rejected_state_payloads(payload: bytes, reason: RejectReason) -> None:
    result = parse_state(payload)
    assert isinstance(result, Rejected)
    assert result.reason == reason
    assert result.detail


@pytest.mark.parametrize(
    "ts",
    ["1970-01-01T00:00:00Z", "2000-01-01T00:00:00Z", "2099-01-01T00:00:00Z", NOW.isoformat()],
)
def test_a_wrong_clock_is_not_a_wrong_payload(ts: str) -> None:
    """Whether a ts is believed is edge.sensors.clock's question: the reading stands."""
    result = parse_state(f'{{"occupied": true, "ts": "{ts}"}}'.encode())
    assert result == SensorReading(True, datetime.fromisoformat(ts.replace("Z", "+00:00")))


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"online", True),
        (b"offline", False),
        (b"OFFLINE\n", False),
        (b"", Rejected(RejectReason.EMPTY, "empty payload")),
        (b"dead", Rejected(RejectReason.UNKNOWN_PAYLOAD, "status is 'dead'")),
    ],
)
def test_status_payloads(payload: bytes, expected: bool | Rejected) -> None:
    assert parse_status(payload) == expected


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("evpark/site-1/sensors/S-A1/state", SensorTopic("site-1", SensorId("S-A1"), "state")),
        ("evpark/site-1/sensors/S-A1/status", SensorTopic("site-1", SensorId("S-A1"), "status")),
        ("evpark/site-2/sensors/S-A1/state", RejectReason.OTHER_SITE),
        ("evpark/site-1/sensors/S-A1/battery", RejectReason.BAD_TOPIC),
        ("evpark/site-1/sensors/S-A1", RejectReason.BAD_TOPIC),
        ("evpark/site-1/slots/A1/state", RejectReason.BAD_TOPIC),
        ("other/site-1/sensors/S-A1/state", RejectReason.BAD_TOPIC),
        ("evpark/site-1/sensors/S A1/state", RejectReason.BAD_SENSOR_ID),
        ("evpark/site-1/sensors/" + "x" * 49 + "/state", RejectReason.BAD_SENSOR_ID),
    ],
)
def test_topics(topic: str, expected: SensorTopic | RejectReason) -> None:
    result = parse_topic(topic, "site-1")
    if isinstance(expected, SensorTopic):
        assert result == expected
    else:
        assert isinstance(result, Rejected)
        assert result.reason == expected


@given(st.binary(max_size=2048))
def test_any_bytes_give_a_reading_or_a_rejection(payload: bytes) -> None:
    assert isinstance(parse_state(payload), SensorReading | Rejected)
    assert isinstance(parse_status(payload), bool | Rejected)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
        max_leaves=20,
    )
)
def test_any_json_gives_a_reading_or_a_rejection(document: object) -> None:
    import json

    payload = json.dumps({"occupied": document, "battery": document, "ts": document})
    assert isinstance(parse_state(payload.encode()), SensorReading | Rejected)
