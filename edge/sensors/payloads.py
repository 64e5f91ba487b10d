"""Sensor topics and payloads of the MQTT contract (docs/mqtt.md), parsed without I/O.

Topics: ``evpark/<site_id>/sensors/<sensor_id>/state`` and ``.../status``.

State payloads: JSON ``{"occupied": true, "ts": "<RFC 3339>", "battery": 87, "rssi": -71}``
(only ``occupied`` is required; unknown keys are ignored), or the plain ``1``/``0`` and
``occupied``/``free``. Status payloads: ``online``/``offline``.

Every function returns either a typed value or a :class:`Rejected` with a machine-readable
reason (the label of ``evpark_mqtt_rejected_payloads_total``) and a human detail.

A ``ts`` is only checked for its form here: whether a sensor's clock can be believed is
:mod:`edge.sensors.clock`'s question, and a wrong clock never costs a reading.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

from common.timestamps import timestamp_or_none
from edge.core.slots.events import SensorReading
from edge.core.slots.values import SensorId

MAX_PAYLOAD_BYTES = 1024
BATTERY_RANGE = (0, 100)
RSSI_RANGE = (-200, 20)  # dBm; LoRa gateways report down to about -140

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,47}$")
_PLAIN = {"1": True, "0": False, "occupied": True, "free": False}
_STATUS = {"online": True, "offline": False}


class RejectReason(StrEnum):
    OTHER_SITE = "other_site"
    BAD_TOPIC = "bad_topic"
    BAD_SENSOR_ID = "bad_sensor_id"
    UNKNOWN_SENSOR = "unknown_sensor"
    EMPTY = "empty"
    TOO_LARGE = "too_large"
    NOT_UTF8 = "not_utf8"
    BAD_JSON = "bad_json"
    UNKNOWN_PAYLOAD = "unknown_payload"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    OUT_OF_RANGE = "out_of_range"
    BAD_TS = "bad_ts"


@dataclass(frozen=True)
class Rejected:
    reason: RejectReason
    detail: str


@dataclass(frozen=True)
class SensorTopic:
    site_id: str
    sensor_id: SensorId
    kind: Literal["state", "status"]


def state_topic_filter(site_id: str) -> str:
    return f"evpark/{site_id}/sensors/+/state"


def status_topic_filter(site_id: str) -> str:
    return f"evpark/{site_id}/sensors/+/status"


def parse_topic(topic: str, site_id: str) -> SensorTopic | Rejected:
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != "evpark" or parts[2] != "sensors":
        return Rejected(RejectReason.BAD_TOPIC, f"not a sensor topic: {topic[:120]!r}")
    _, site, _, sensor, kind = parts
    if site != site_id:
        return Rejected(RejectReason.OTHER_SITE, f"topic of site {site[:64]!r}")
    if not _ID.match(sensor):
        return Rejected(RejectReason.BAD_SENSOR_ID, f"sensor id {sensor[:64]!r}")
    if kind == "state":
        return SensorTopic(site, SensorId(sensor), "state")
    if kind == "status":
        return SensorTopic(site, SensorId(sensor), "status")
    return Rejected(RejectReason.BAD_TOPIC, f"unknown sensor sub-topic {kind[:32]!r}")


def _text(payload: bytes) -> str | Rejected:
    if len(payload) > MAX_PAYLOAD_BYTES:
        return Rejected(RejectReason.TOO_LARGE, f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        return Rejected(RejectReason.NOT_UTF8, "payload is not UTF-8")
    if not text:
        return Rejected(RejectReason.EMPTY, "empty payload")
    return text


def parse_state(payload: bytes) -> SensorReading | Rejected:
    """Parse a state payload; ``measured_at`` is its ``ts`` as sent (UTC), right or not."""
    text = _text(payload)
    if isinstance(text, Rejected):
        return text
    plain = _PLAIN.get(text.lower())
    if plain is not None:
        return SensorReading(occupied=plain)
    if not text.startswith("{"):
        return Rejected(RejectReason.UNKNOWN_PAYLOAD, f"not JSON nor a plain state: {text[:40]!r}")
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as err:
        return Rejected(RejectReason.BAD_JSON, f"invalid JSON: {str(err)[:80]}")
    if not isinstance(document, dict):
        return Rejected(RejectReason.WRONG_TYPE, "JSON payload is not an object")
    return _reading(document)


def _reading(document: dict[str, object]) -> SensorReading | Rejected:
    if "occupied" not in document:
        return Rejected(RejectReason.MISSING_FIELD, "no 'occupied'")
    occupied = document["occupied"]
    if not isinstance(occupied, bool):
        return Rejected(RejectReason.WRONG_TYPE, f"'occupied' is {type(occupied).__name__}")

    battery = _int_field(document, "battery", BATTERY_RANGE)
    if isinstance(battery, Rejected):
        return battery
    rssi = _int_field(document, "rssi", RSSI_RANGE)
    if isinstance(rssi, Rejected):
        return rssi

    measured_at: datetime | None = None
    ts = document.get("ts")
    if ts is not None:
        if not isinstance(ts, str):
            return Rejected(RejectReason.WRONG_TYPE, f"'ts' is {type(ts).__name__}")
        parsed = parse_rfc3339(ts)
        if parsed is None:
            return Rejected(RejectReason.BAD_TS, f"'ts' is not RFC 3339: {ts[:40]!r}")
        measured_at = parsed
    return SensorReading(occupied=occupied, measured_at=measured_at, battery=battery, rssi=rssi)


def _int_field(
    document: dict[str, object], name: str, bounds: tuple[int, int]
) -> int | Rejected | None:
    value = document.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return Rejected(RejectReason.WRONG_TYPE, f"{name!r} is {type(value).__name__}")
    if isinstance(value, float) and not value.is_integer():
        return Rejected(RejectReason.WRONG_TYPE, f"{name!r} is not a whole number")
    low, high = bounds
    if not low <= value <= high:
        return Rejected(RejectReason.OUT_OF_RANGE, f"{name!r}={value} outside {low}..{high}")
    return int(value)


def parse_rfc3339(text: str) -> datetime | None:
    """A sensor's ``ts``: an RFC 3339 date-time with an offset, in UTC; None if not one."""
    return timestamp_or_none(text)


def parse_status(payload: bytes) -> bool | Rejected:
    """``online`` -> True, ``offline`` -> False."""
    text = _text(payload)
    if isinstance(text, Rejected):
        return text
    status = _STATUS.get(text.lower())
    if status is None:
        return Rejected(RejectReason.UNKNOWN_PAYLOAD, f"status is {text[:40]!r}")
    return status
