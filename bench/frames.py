"""Pre-encoded OCPP frames for the load generator.

Each frame is encoded once with orjson, with named markers where the per-message parts go
(message id, timestamps, meter readings); the hot path only fills those in with one
``bytes % tuple`` operation. Every template is checked against the official JSON schemas
shipped with the ``ocpp`` library before a run starts (:func:`validate_all`), so the bench
never measures a daemon that is busy rejecting malformed input.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from operator import itemgetter
from pathlib import Path
from typing import Any, Final, Literal

import orjson

Version = Literal["1.6", "2.0.1"]
SUBPROTOCOL: Final[dict[Version, str]] = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1"}

CALL: Final = 2
CALLRESULT: Final = 3
CALLERROR: Final = 4

_MARKER = re.compile(rb'"@@(\w+):num@@"|@@(\w+)@@')


@dataclass(frozen=True, slots=True)
class FrameTemplate:
    """An encoded CALL with ``%s`` holes; ``slots`` names the holes in order."""

    action: str
    fmt: bytes
    slots: tuple[str, ...]

    @classmethod
    def build(cls, action: str, payload: Mapping[str, Any]) -> FrameTemplate:
        """Encode ``[2, "@@id@@", action, payload]``.

        In ``payload``, ``"@@name@@"`` inside a string is a hole filled with raw text;
        the whole string ``"@@name:num@@"`` is a hole for a JSON number (quotes dropped).
        """
        raw = orjson.dumps([CALL, "@@id@@", action, payload]).replace(b"%", b"%%")
        slots: list[str] = []

        def hole(match: re.Match[bytes]) -> bytes:
            slots.append((match.group(1) or match.group(2)).decode())
            return b"%s"

        fmt = _MARKER.sub(hole, raw)
        return cls(action, fmt, tuple(slots))

    def bind(self, **values: bytes) -> FrameTemplate:
        """A template with some holes filled once (e.g. a charger's transaction id)."""
        keep: list[str] = []
        pieces = self.fmt.split(b"%s")
        out = [pieces[0]]
        for name, piece in zip(self.slots, pieces[1:], strict=True):
            if name in values:
                out.append(values[name].replace(b"%", b"%%"))
            else:
                out.append(b"%s")
                keep.append(name)
            out.append(piece)
        return FrameTemplate(self.action, b"".join(out), tuple(keep))

    def getter(self) -> itemgetter[Any]:
        """``getter()(values)`` picks the values for the holes, in order."""
        return _getter(self.slots)

    def render(self, values: Mapping[str, bytes]) -> bytes:
        if not self.slots:
            return self.fmt % ()
        picked = self.getter()(values)
        return self.fmt % (picked if len(self.slots) > 1 else (picked,))


@cache
def _getter(slots: tuple[str, ...]) -> itemgetter[Any]:
    return itemgetter(*slots)


class Timestamps:
    """RFC 3339 UTC timestamps, re-rendered at most once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._text = b""

    def now(self) -> bytes:
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)).encode()
        return self._text


# --- the frames ---------------------------------------------------------------------------

VENDOR = "evpark-bench"


def _sampled_16(value: str, measurand: str, unit: str, **extra: str) -> dict[str, str]:
    return {
        "value": f"@@{value}@@",
        "context": "Sample.Periodic",
        "measurand": measurand,
        "location": "Outlet",
        "unit": unit,
        **extra,
    }


def _sampled_201(value: str, measurand: str, unit: str, **extra: str) -> dict[str, Any]:
    return {
        "value": f"@@{value}:num@@",
        "context": "Sample.Periodic",
        "measurand": measurand,
        "location": "Outlet",
        "unitOfMeasure": {"unit": unit},
        **extra,
    }


def _four_16() -> list[dict[str, str]]:
    return [
        _sampled_16("energy", "Energy.Active.Import.Register", "Wh"),
        _sampled_16("power", "Power.Active.Import", "W"),
        _sampled_16("current", "Current.Import", "A", phase="L1"),
        _sampled_16("voltage", "Voltage", "V", phase="L1-N"),
    ]


def _four_201() -> list[dict[str, Any]]:
    return [
        _sampled_201("energy", "Energy.Active.Import.Register", "Wh"),
        _sampled_201("power", "Power.Active.Import", "W"),
        _sampled_201("current", "Current.Import", "A", phase="L1"),
        _sampled_201("voltage", "Voltage", "V", phase="L1-N"),
    ]


@dataclass(frozen=True, slots=True)
class Frames16:
    boot: FrameTemplate
    status: FrameTemplate
    start_transaction: FrameTemplate
    meter_values: FrameTemplate


@dataclass(frozen=True, slots=True)
class Frames201:
    boot: FrameTemplate
    status: FrameTemplate
    transaction_started: FrameTemplate
    transaction_updated: FrameTemplate
    meter_values: FrameTemplate


@cache
def frames_16() -> Frames16:
    return Frames16(
        boot=FrameTemplate.build(
            "BootNotification",
            {
                "chargePointVendor": VENDOR,
                "chargePointModel": "bench-16",
                "chargePointSerialNumber": "@@serial@@",
                "firmwareVersion": "1.0.0",
            },
        ),
        status=FrameTemplate.build(
            "StatusNotification",
            {
                "connectorId": 1,
                "errorCode": "NoError",
                "status": "@@status@@",
                "timestamp": "@@ts@@",
            },
        ),
        start_transaction=FrameTemplate.build(
            "StartTransaction",
            {
                "connectorId": 1,
                "idTag": "@@idtag@@",
                "meterStart": "@@energy:num@@",
                "timestamp": "@@ts@@",
            },
        ),
        meter_values=FrameTemplate.build(
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": "@@tx:num@@",
                "meterValue": [{"timestamp": "@@ts@@", "sampledValue": _four_16()}],
            },
        ),
    )


@cache
def frames_201() -> Frames201:
    transaction = {"transactionId": "@@tx@@", "chargingState": "Charging"}
    return Frames201(
        boot=FrameTemplate.build(
            "BootNotification",
            {
                "reason": "PowerUp",
                "chargingStation": {
                    "model": "bench-201",
                    "vendorName": VENDOR,
                    "serialNumber": "@@serial@@",
                    "firmwareVersion": "1.0.0",
                },
            },
        ),
        status=FrameTemplate.build(
            "StatusNotification",
            {"timestamp": "@@ts@@", "connectorStatus": "@@status@@", "evseId": 1, "connectorId": 1},
        ),
        transaction_started=FrameTemplate.build(
            "TransactionEvent",
            {
                "eventType": "Started",
                "timestamp": "@@ts@@",
                "triggerReason": "Authorized",
                "seqNo": 0,
                "transactionInfo": transaction,
                "evse": {"id": 1, "connectorId": 1},
                "idToken": {"idToken": "@@idtag@@", "type": "ISO14443"},
                "meterValue": [
                    {
                        "timestamp": "@@ts@@",
                        "sampledValue": [
                            {
                                "value": "@@energy:num@@",
                                "context": "Transaction.Begin",
                                "measurand": "Energy.Active.Import.Register",
                                "unitOfMeasure": {"unit": "Wh"},
                            }
                        ],
                    }
                ],
            },
        ),
        transaction_updated=FrameTemplate.build(
            "TransactionEvent",
            {
                "eventType": "Updated",
                "timestamp": "@@ts@@",
                "triggerReason": "MeterValuePeriodic",
                "seqNo": "@@seq:num@@",
                "transactionInfo": transaction,
                "meterValue": [{"timestamp": "@@ts@@", "sampledValue": _four_201()}],
            },
        ),
        meter_values=FrameTemplate.build(
            "MeterValues",
            {"evseId": 1, "meterValue": [{"timestamp": "@@ts@@", "sampledValue": _four_201()}]},
        ),
    )


# --- answers to calls the CSMS makes ------------------------------------------------------

_ACCEPTED: Final = {"status": "Accepted"}
_REJECTED: Final = {"status": "Rejected"}

_ANSWERS_16: Final[dict[str, dict[str, Any]]] = {
    "ChangeAvailability": _ACCEPTED,
    "ChangeConfiguration": _ACCEPTED,
    "ClearCache": _REJECTED,
    "ClearChargingProfile": {"status": "Unknown"},
    "DataTransfer": {"status": "UnknownVendorId"},
    "GetConfiguration": {"configurationKey": [], "unknownKey": []},
    "GetLocalListVersion": {"listVersion": 0},
    "RemoteStartTransaction": _REJECTED,
    "RemoteStopTransaction": _REJECTED,
    "Reset": _REJECTED,
    "SendLocalList": {"status": "NotSupported"},
    "SetChargingProfile": _ACCEPTED,
    "TriggerMessage": _REJECTED,
    "UnlockConnector": {"status": "NotSupported"},
}

_ANSWERS_201: Final[dict[str, dict[str, Any]]] = {
    "ChangeAvailability": _ACCEPTED,
    "ClearCache": _REJECTED,
    "ClearChargingProfile": {"status": "Unknown"},
    "DataTransfer": {"status": "UnknownVendorId"},
    "GetBaseReport": {"status": "NotSupported"},
    "GetLocalListVersion": {"versionNumber": 0},
    "RequestStartTransaction": _REJECTED,
    "RequestStopTransaction": _REJECTED,
    "Reset": _REJECTED,
    "SendLocalList": {"status": "Failed"},
    "SetChargingProfile": _ACCEPTED,
    "TriggerMessage": _REJECTED,
    "UnlockConnector": {"status": "UnknownConnector"},
}


def answer_payload(version: Version, action: str, request: Any) -> dict[str, Any] | None:
    """A minimal schema-valid answer to a CSMS-initiated CALL, or None (NotImplemented)."""
    if version == "2.0.1" and isinstance(request, dict):
        if action == "SetVariables":
            return {
                "setVariableResult": [
                    {
                        "attributeStatus": "Rejected",
                        "component": item.get("component", {}),
                        "variable": item.get("variable", {}),
                    }
                    for item in request.get("setVariableData", [])
                ]
            }
        if action == "GetVariables":
            return {
                "getVariableResult": [
                    {
                        "attributeStatus": "UnknownVariable",
                        "component": item.get("component", {}),
                        "variable": item.get("variable", {}),
                    }
                    for item in request.get("getVariableData", [])
                ]
            }
    table = _ANSWERS_16 if version == "1.6" else _ANSWERS_201
    return table.get(action)


# --- schema validation ----------------------------------------------------------------------


def _schema_dir(version: Version) -> Path:
    import ocpp

    sub = "v16" if version == "1.6" else "v201"
    return Path(ocpp.__file__).parent / sub / "schemas"


def _schema_file(version: Version, action: str, response: bool) -> Path:
    if version == "1.6":
        name = f"{action}Response.json" if response else f"{action}.json"
    else:
        name = f"{action}{'Response' if response else 'Request'}.json"
    return _schema_dir(version) / name


def check_payload(version: Version, action: str, payload: Any, *, response: bool = False) -> None:
    """Raise ``ValueError`` if ``payload`` is not valid against the official schema."""
    import jsonschema  # type: ignore[import-untyped]

    path = _schema_file(version, action, response)
    schema = orjson.loads(path.read_bytes())
    validator_cls = jsonschema.validators.validator_for(schema)
    validator = validator_cls(schema, format_checker=validator_cls.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(payload), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].path) or "(root)"
        raise ValueError(f"OCPP {version} {action}: {where}: {errors[0].message}")
    _check_timestamps(payload, f"OCPP {version} {action}")


def _check_timestamps(node: Any, where: str) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "timestamp":
                datetime.fromisoformat(value)  # raises on a malformed date-time
            else:
                _check_timestamps(value, where)
    elif isinstance(node, list):
        for item in node:
            _check_timestamps(item, where)


SAMPLE_VALUES: Final[dict[str, bytes]] = {
    "id": b"1",
    "ts": b"2025-01-01T12:00:00Z",
    "serial": b"BENCH-0001",
    "status": b"Available",
    "idtag": b"BENCH0001",
    "energy": b"12345",
    "power": b"11040.0",
    "current": b"16.0",
    "voltage": b"230.0",
    "tx": b"42",
    "seq": b"1",
}


def _check_template(version: Version, template: FrameTemplate, values: Mapping[str, bytes]) -> None:
    frame = orjson.loads(template.render(values))
    if not (isinstance(frame, list) and len(frame) == 4 and frame[0] == CALL):
        raise ValueError(f"{template.action}: not a CALL frame: {frame!r}")
    check_payload(version, template.action, frame[3])


def validate_all() -> None:
    """Check every frame and every canned answer against the official schemas."""
    f16 = frames_16()
    for tpl in (f16.boot, f16.status, f16.start_transaction, f16.meter_values):
        _check_template("1.6", tpl, SAMPLE_VALUES)
    f201 = frames_201()
    v201 = {**SAMPLE_VALUES, "status": b"Occupied", "tx": b"bench-tx-0001"}
    for tpl in (
        f201.boot,
        f201.status,
        f201.transaction_started,
        f201.transaction_updated,
        f201.meter_values,
    ):
        _check_template("2.0.1", tpl, v201)
    for action, payload in _ANSWERS_16.items():
        check_payload("1.6", action, payload, response=True)
    for action, payload in _ANSWERS_201.items():
        check_payload("2.0.1", action, payload, response=True)
    item = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
    for action, key in (("SetVariables", "setVariableData"), ("GetVariables", "getVariableData")):
        request = {key: [{**item, "attributeValue": "60"} if action == "SetVariables" else item]}
        check_payload("2.0.1", action, answer_payload("2.0.1", action, request), response=True)
