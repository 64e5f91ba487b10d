"""Hypothesis strategies for schema-valid but extreme OCPP messages from a charger.

Every payload is derived from the official JSON schema the ``ocpp`` package ships (the
same files the edge validates against) by a small schema -> strategy walk that is biased
toward the values that break software: integer bounds (2^31, 2^53, 2^63, 2^64 and
beyond where no maximum is set), floats at the edges of IEEE 754, strings exactly at
``maxLength`` (64 KiB where there is none) made of NUL, RTL marks, emoji, combining marks,
noncharacters, an escaped lone surrogate now and then, free JSON nested hundreds deep
where the schema leaves an object open (2.0.1 ``customData``, ``DataTransfer.data``),
timestamps in year 1 and year 9999 with +-14:00 (and +23:59) offsets and leap seconds,
and arrays empty or at ``maxItems``.

Used by ``tests/edge/ocpp/test_ocpp_fuzz.py`` (bounded, in CI) and ``bench/ocpp_fuzz.py``
(long runs); hypothesis-jsonschema was not used: it generates valid data but has no
bias toward these extremes, which is the whole point here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Final, NamedTuple

import fastjsonschema
from hypothesis import strategies as st

from ocpp_handlers.schemas import Version

Payload = dict[str, Any]
Draw = Callable[[st.SearchStrategy[Any]], Any]

# Every request a charger sends to the central system, per version (OCPP 1.6 with the
# security whitepaper's messages; OCPP 2.0.1 part 2, "Messages from the Charging Station").
CHARGER_ACTIONS: Final[dict[Version, tuple[str, ...]]] = {
    Version.V16: (
        "Authorize",
        "BootNotification",
        "DataTransfer",
        "DiagnosticsStatusNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "MeterValues",
        "StartTransaction",
        "StatusNotification",
        "StopTransaction",
        "LogStatusNotification",
        "SecurityEventNotification",
        "SignCertificate",
        "SignedFirmwareStatusNotification",
    ),
    Version.V201: (
        "Authorize",
        "BootNotification",
        "ClearedChargingLimit",
        "DataTransfer",
        "FirmwareStatusNotification",
        "Get15118EVCertificate",
        "GetCertificateStatus",
        "Heartbeat",
        "LogStatusNotification",
        "MeterValues",
        "NotifyChargingLimit",
        "NotifyCustomerInformation",
        "NotifyDisplayMessages",
        "NotifyEVChargingNeeds",
        "NotifyEVChargingSchedule",
        "NotifyEvent",
        "NotifyMonitoringReport",
        "NotifyReport",
        "PublishFirmwareStatusNotification",
        "ReportChargingProfiles",
        "ReservationStatusUpdate",
        "SecurityEventNotification",
        "SignCertificate",
        "StatusNotification",
        "TransactionEvent",
    ),
}

# The CALLERROR codes each version defines (1.6 section 4.2.3, with its spelling
# "OccurenceConstraintViolation"; 2.0.1 part 4, section 4.3).
SPEC_ERROR_CODES: Final[dict[Version, frozenset[str]]] = {
    Version.V16: frozenset(
        {
            "NotImplemented",
            "NotSupported",
            "InternalError",
            "ProtocolError",
            "SecurityError",
            "FormationViolation",
            "PropertyConstraintViolation",
            "OccurenceConstraintViolation",
            "TypeConstraintViolation",
            "GenericError",
        }
    ),
    Version.V201: frozenset(
        {
            "FormatViolation",
            "GenericError",
            "InternalError",
            "MessageTypeNotSupported",
            "NotImplemented",
            "NotSupported",
            "OccurrenceConstraintViolation",
            "PropertyConstraintViolation",
            "ProtocolError",
            "RpcFrameworkError",
            "SecurityError",
            "TypeConstraintViolation",
        }
    ),
}

# The edge refuses frames above 256 KiB (close 1009): payloads stay well below, so every
# message the fuzz sends is one the edge must answer.
PAYLOAD_BUDGET: Final = 160 * 1024
FREE_STRING_MAX: Final = 64 * 1024  # strings whose schema sets no maxLength

INT_EDGES: Final = (
    0,
    1,
    -1,
    2**31 - 1,
    2**31,
    -(2**31),
    -(2**31) - 1,
    2**32 - 1,
    2**32,
    2**53,
    2**53 + 1,
    -(2**53) - 1,
    2**63 - 1,
    2**63,
    -(2**63),
    -(2**63) - 1,
    2**64 - 1,
    2**64,
    -(2**64),
    10**30,
)
FLOAT_EDGES: Final = (
    0.0,
    -0.0,
    0.1,
    1e-7,
    5e-324,
    -5e-324,
    2.2250738585072014e-308,
    1e308,
    -1e308,
    1.7976931348623157e308,
    2.0**53,
    2.0**63,
    2.0**64,
)
# Pieces of text that trip encoders, databases, terminals and log parsers.
TEXT_EDGES: Final = (
    "\x00",
    "\x1f",
    "\x7f",
    "\u202e",  # right-to-left override
    "\u200f",
    "\u200b",
    "\ufeff",
    "e\u0301",  # a combining mark
    "\u0301\u0301\u0301",
    "\U0001f600",
    "\U0001f469\u200d\U0001f4bb",  # a ZWJ sequence
    "\U0001f1e9\U0001f1ea",  # a flag
    "\uffff",
    "\U0010ffff",
    "\u2028",
    '"',
    "\\",
    "'; DROP TABLE sessions; --",
    "%s%n",
    "{{7*7}}",
    "<script>",
    "\r\n",
    "null",
    "-1",
    "9" * 30,
)
LONE_SURROGATES: Final = ("\ud800", "\udfff")
FILL_CHARS: Final = ("A", "é", "\U0001f600", "\x00", "\u202e", "\u0301", "\U0010ffff", "\ufeff")
FIXED_TIMES: Final = (
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00-14:00",
    "9999-12-31T23:59:59.999999Z",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59+14:00",
    "1970-01-01T00:00:00Z",
    "1969-12-31T23:59:59.999Z",
    "2016-12-31T23:59:60Z",  # a real leap second
    "2026-06-30T23:59:60+00:00",
    "2038-01-19T03:14:08Z",
    "2106-02-07T06:28:16Z",
    "2026-03-29T02:30:00+23:59",
    "2026-01-01t00:00:00z",
    "2026-01-01T00:00:00.000000001Z",
    "2026-01-01T00:00:00.123456789012345678Z",
)
DEEP_LEVELS: Final = (8, 16, 28, 30, 31, 32, 33, 64, 100, 253, 254, 255, 256, 500)

_RFC3339: Final = re.compile(
    r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)"
    r"(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)"
)


@dataclass(slots=True)
class _Budget:
    """What one payload may still spend (characters), and which rare extremes it has."""

    left: int
    surrogates: bool
    deep: bool

    def take(self, wanted: int) -> int:
        granted = max(0, min(wanted, self.left))
        self.left -= granted
        return granted


@cache
def request_schema(version: Version, action: str) -> dict[str, Any]:
    """The official schema of a charger's request (as the ``ocpp`` package ships it)."""
    folder = "v16" if version is Version.V16 else "v201"
    name = f"{action}.json" if version is Version.V16 else f"{action}Request.json"
    path = resources.files("ocpp").joinpath(folder, "schemas", name)
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema


def is_rfc3339(value: str) -> bool:
    return _RFC3339.fullmatch(value) is not None


@cache
def _independent_validator(version: Version, action: str) -> Callable[[Any], Any]:
    schema = dict(request_schema(version, action))
    schema.pop("$id", None)
    formats = {"date-time": is_rfc3339, "uri": lambda value: True}
    check: Callable[[Any], Any] = fastjsonschema.compile(schema, formats=formats)
    return check


def schema_errors(version: Version, action: str, payload: Payload) -> str | None:
    """Why ``payload`` breaks its schema (checked by fastjsonschema, not by the edge's
    own compiled validators), or None if it is valid."""
    try:
        _independent_validator(version, action)(payload)
    except fastjsonschema.JsonSchemaValueException as err:
        return str(err)
    return None


# The messages of a charging session, fuzzed as sequences that refer to one another.
SESSION_ACTIONS: Final[dict[Version, tuple[str, ...]]] = {
    Version.V16: ("StartTransaction", "MeterValues", "StopTransaction", "StatusNotification"),
    Version.V201: ("TransactionEvent", "MeterValues", "StatusNotification"),
}
SESSION_TRANSACTIONS: Final = ("FUZZ-TX-1", "FUZZ-TX-2")  # 2.0.1: chosen by the station


class Step(NamedTuple):
    """One message of a sequence; ``linked``: it is about the session the sequence runs
    (1.6: the harness puts in the transactionId the edge gave at StartTransaction)."""

    action: str
    payload: Payload
    linked: bool


@st.composite
def session_steps(draw: Draw, version: Version) -> list[Step]:
    """2 to 6 extreme messages of a charging session, most of them about one session."""
    steps = []
    for _ in range(draw(st.integers(2, 6))):
        action = draw(st.sampled_from(SESSION_ACTIONS[version]))
        payload = draw(payloads(version, action))
        linked = draw(st.integers(0, 3)) > 0
        if linked:
            _link(draw, version, payload)
        steps.append(Step(action, payload, linked))
    return steps


def _link(draw: Draw, version: Version, payload: Payload) -> None:
    """Point a message at EVSE 1 and, in 2.0.1, at one of two transactions."""
    if "connectorId" in payload and version is Version.V16:
        payload["connectorId"] = 1
    if "evseId" in payload:
        payload["evseId"] = 1
    if isinstance(payload.get("evse"), dict):
        payload["evse"]["id"] = 1
    info = payload.get("transactionInfo")
    if isinstance(info, dict):
        info["transactionId"] = draw(st.sampled_from(SESSION_TRANSACTIONS))


def payloads(version: Version, action: str) -> st.SearchStrategy[Payload]:
    """Schema-valid, extreme payloads of one charger request."""
    return _payload(version, action)


@st.composite
def _payload(draw: Draw, version: Version, action: str) -> Payload:
    schema = request_schema(version, action)
    # One message in ten may carry an (escaped) lone surrogate: valid JSON text, not
    # valid Unicode; one in ten may nest deep where the schema leaves values free. The
    # edge must answer them all the same, and refuses them as a whole: the other eight
    # in ten get through to the handlers.
    budget = _Budget(
        PAYLOAD_BUDGET,
        surrogates=draw(st.integers(0, 9)) == 9,
        deep=draw(st.integers(0, 9)) == 9,
    )
    value = _value(draw, schema, schema, budget)
    assert isinstance(value, dict)
    return value


def _value(draw: Draw, node: dict[str, Any], root: dict[str, Any], budget: _Budget) -> Any:
    if "$ref" in node:
        name = node["$ref"].removeprefix("#/definitions/")
        node = root["definitions"][name]
    if "enum" in node:
        return draw(st.sampled_from(node["enum"]))
    kind = node.get("type")
    if kind == "object":
        return _object(draw, node, root, budget)
    if kind == "array":
        return _array(draw, node, root, budget)
    if kind == "string":
        if node.get("format") == "date-time":
            return draw(timestamps())
        return _string(draw, node.get("maxLength"), budget)
    if kind == "integer":
        return draw(integers(node.get("minimum"), node.get("maximum")))
    if kind == "number":
        return _number(draw, node)
    if kind == "boolean":
        return draw(st.booleans())
    if kind is None:  # no type at all: any JSON value (2.0.1 DataTransfer.data)
        return _free(draw, budget, depth=0)
    raise ValueError(f"schema type {kind!r} is not generated")


def _object(draw: Draw, node: dict[str, Any], root: dict[str, Any], budget: _Budget) -> Payload:
    properties: dict[str, Any] = node.get("properties", {})
    required = set(node.get("required", ()))
    optional = draw(st.sampled_from(("some", "none", "all")))
    out: Payload = {}
    for name, child in properties.items():
        if name in required or optional == "all" or (optional == "some" and draw(st.booleans())):
            out[name] = _value(draw, child, root, budget)
    if node.get("additionalProperties", True) is not False:
        extras = draw(st.integers(0, 3))
        for _ in range(extras):
            key = _string(draw, 64, budget)
            if key not in properties:
                out[key] = _free(draw, budget, depth=0)
    return out


def _array(draw: Draw, node: dict[str, Any], root: dict[str, Any], budget: _Budget) -> list[Any]:
    low: int = node.get("minItems", 0)
    high: int | None = node.get("maxItems")
    mode = draw(st.sampled_from(("few", "min", "max")))
    if mode == "min" and low == 0:
        return []
    items: dict[str, Any] = node.get("items", {})
    first = _value(draw, items, root, budget)
    if mode == "min":
        return [first] + [_value(draw, items, root, budget) for _ in range(low - 1)]
    if mode == "few":
        more = draw(st.integers(0, max(0, min(3, (high or 4) - 1))))
        rest = [_value(draw, items, root, budget) for _ in range(max(more, low - 1))]
        return [first, *rest]
    # as many as allowed (or a few hundred), copies of one drawn item, within the budget
    size = _encoded_size(first) + 1
    wanted = high if high is not None else 500
    count = max(low, 1 + budget.take(size * (wanted - 1)) // size)
    return [first] * count


def _string(draw: Draw, max_length: int | None, budget: _Budget) -> str:
    cap = FREE_STRING_MAX if max_length is None else max_length
    mode = draw(st.sampled_from(("text", "edges", "full", "empty")))
    if mode == "empty":
        return ""
    if mode == "text":
        text = str(draw(st.text(max_size=min(cap, 24))))
    elif mode == "edges":
        text = "".join(draw(st.lists(st.sampled_from(TEXT_EDGES), min_size=1, max_size=6)))
        if budget.surrogates:  # first, so that truncating to maxLength keeps it
            text = draw(st.sampled_from(LONE_SURROGATES)) + text
    else:
        fill = str(draw(st.sampled_from(FILL_CHARS)))
        cost = _encoded_size(fill)  # per character, in the frame
        text = fill * max(1, budget.take(cap * cost) // cost)
    text = text[:cap]
    budget.take(_encoded_size(text))
    return text


def _encoded_size(value: Any) -> int:
    """The most ``value`` can take in a frame (every non-ASCII character escaped)."""
    return len(json.dumps(value, ensure_ascii=True)) - (2 if isinstance(value, str) else 0)


def integers(minimum: float | None = None, maximum: float | None = None) -> st.SearchStrategy[int]:
    """Integers within the schema's bounds, most often one of the classic edges."""
    low = None if minimum is None else int(minimum)
    high = None if maximum is None else int(maximum)
    inside = [e for e in INT_EDGES if (low is None or e >= low) and (high is None or e <= high)] + [
        b for b in (low, high) if b is not None
    ]
    return st.one_of(st.sampled_from(inside), st.integers(low, high))


def _number(draw: Draw, node: dict[str, Any]) -> float | int:
    low, high = node.get("minimum"), node.get("maximum")
    if "multipleOf" in node:  # only in the central system's messages
        raise ValueError("multipleOf is not generated")
    edges = [
        e
        for e in (*FLOAT_EDGES, *INT_EDGES)
        if (low is None or e >= low) and (high is None or e <= high)
    ]
    floats = st.floats(low, high, allow_nan=False, allow_infinity=False)
    value: float | int = draw(st.one_of(st.sampled_from(edges), floats))
    return value


def _free(draw: Draw, budget: _Budget, depth: int) -> Any:
    """Any JSON value: scalars at their edges, small containers, or deep nesting."""
    roll = draw(st.integers(0, 9))
    kind = "deep" if roll == 9 else "container" if roll >= 5 else "scalar"
    if kind == "deep" and depth == 0 and budget.deep:
        levels = draw(st.sampled_from(DEEP_LEVELS))
        inner: Any = draw(st.sampled_from((None, 0, "x", 2**63, -0.0, "\u202e")))
        as_list = draw(st.booleans())
        for _ in range(levels):
            inner = [inner] if as_list else {"a": inner}
        budget.take(4 * levels)
        return inner
    if kind == "container" and depth < 3:
        size = draw(st.integers(0, 3))
        if draw(st.booleans()):
            return [_free(draw, budget, depth + 1) for _ in range(size)]
        return {_string(draw, 32, budget): _free(draw, budget, depth + 1) for _ in range(size)}
    scalar = draw(st.sampled_from(("int", "float", "string", "bool", "null")))
    if scalar == "int":
        return draw(integers())
    if scalar == "float":
        return draw(st.sampled_from(FLOAT_EDGES))
    if scalar == "string":
        return _string(draw, None, budget)
    return draw(st.booleans()) if scalar == "bool" else None


@st.composite
def free_values(draw: Draw) -> Any:
    """Any JSON value, as the payloads put where a schema leaves the value free."""
    return _free(draw, _Budget(PAYLOAD_BUDGET, surrogates=True, deep=True), depth=0)


@st.composite
def timestamps(draw: Draw) -> str:
    """RFC 3339 date-times from year 1 to 9999, any offset, any number of decimals."""
    if draw(st.booleans()):
        return str(draw(st.sampled_from(FIXED_TIMES)))
    year = draw(st.sampled_from((1, 1970, 2000, 2026, 2038, 9999)) | st.integers(1, 9999))
    month, day = draw(st.integers(1, 12)), draw(st.integers(1, 28))
    hour, minute, second = (
        draw(st.integers(0, 23)),
        draw(st.integers(0, 59)),
        draw(st.integers(0, 60)),
    )
    digits = draw(st.sampled_from((0, 3, 6, 9)))
    fraction = "." + "7" * digits if digits else ""
    offset_minutes = draw(st.sampled_from((0, 840, -840, 1439, -1439)) | st.integers(-1439, 1439))
    if offset_minutes == 0 and draw(st.booleans()):
        offset = "Z"
    else:
        sign = "-" if offset_minutes < 0 else "+"
        offset = f"{sign}{abs(offset_minutes) // 60:02d}:{abs(offset_minutes) % 60:02d}"
    return (
        f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{fraction}{offset}"
    )


def encode_call(unique_id: str, action: str, payload: Payload) -> str:
    """A CALL frame as text; an escaped lone surrogate where the payload has one.

    The standard library's encoder is used on purpose: orjson refuses nesting deeper
    than 254 and lone surrogates, both of which the fuzz must be able to send.
    """
    frame = [2, unique_id, action, payload]
    text = json.dumps(frame, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: only its \\u escape is JSON text
        text = json.dumps(frame, ensure_ascii=True, separators=(",", ":"))
    return text


def has_lone_surrogate(payload: Any) -> bool:
    """True if a string anywhere in ``payload`` cannot be encoded as UTF-8."""
    try:
        json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
