"""The schema compiler judges OCPP payloads exactly as a general JSON Schema validator
does (fastjsonschema on the same official schemas), on valid messages and on every
single mutation of them: a key dropped, an unknown key added, a value of each wrong type,
an over-long string, a value outside an enum."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from importlib import resources
from typing import Any

import fastjsonschema
import pytest

from ocpp_handlers.schema_compiler import compile_schema
from ocpp_handlers.schemas import (
    SchemaViolation,
    Version,
    _schema_dir,
    _schema_file,
    known_actions,
    validator,
)

TS = "2026-11-24T08:00:00.000Z"
SAMPLE_16 = {
    "value": "1200",
    "measurand": "Energy.Active.Import.Register",
    "unit": "Wh",
    "context": "Sample.Periodic",
}
SAMPLE_201 = {
    "value": 1200.5,
    "measurand": "Energy.Active.Import.Register",
    "unitOfMeasure": {"unit": "Wh", "multiplier": 0},
}
CORPUS: list[tuple[Version, str, bool, dict[str, Any]]] = [
    (
        Version.V16,
        "BootNotification",
        False,
        {"chargePointVendor": "V", "chargePointModel": "M", "firmwareVersion": "1.0"},
    ),
    (
        Version.V16,
        "BootNotification",
        True,
        {"status": "Accepted", "currentTime": TS, "interval": 300},
    ),
    (
        Version.V16,
        "StatusNotification",
        False,
        {"connectorId": 1, "errorCode": "NoError", "status": "Charging", "timestamp": TS},
    ),
    (
        Version.V16,
        "MeterValues",
        False,
        {
            "connectorId": 1,
            "transactionId": 7,
            "meterValue": [
                {"timestamp": TS, "sampledValue": [SAMPLE_16, {**SAMPLE_16, "phase": "L1"}]}
            ],
        },
    ),
    (
        Version.V16,
        "StartTransaction",
        False,
        {"connectorId": 1, "idTag": "TAG", "meterStart": 0, "timestamp": TS, "reservationId": 3},
    ),
    (
        Version.V16,
        "StartTransaction",
        True,
        {"transactionId": 4, "idTagInfo": {"status": "Accepted", "expiryDate": TS}},
    ),
    (
        Version.V16,
        "StopTransaction",
        False,
        {
            "transactionId": 4,
            "meterStop": 10,
            "timestamp": TS,
            "reason": "Local",
            "transactionData": [{"timestamp": TS, "sampledValue": [SAMPLE_16]}],
        },
    ),
    (Version.V16, "ChangeConfiguration", False, {"key": "HeartbeatInterval", "value": "30"}),
    (
        Version.V16,
        "GetConfiguration",
        True,
        {"configurationKey": [{"key": "A", "readonly": True, "value": "1"}], "unknownKey": ["B"]},
    ),
    (
        Version.V201,
        "BootNotification",
        False,
        {
            "chargingStation": {"model": "M", "vendorName": "V", "modem": {"iccid": "1"}},
            "reason": "PowerUp",
        },
    ),
    (
        Version.V201,
        "TransactionEvent",
        False,
        {
            "eventType": "Updated",
            "timestamp": TS,
            "triggerReason": "MeterValuePeriodic",
            "seqNo": 3,
            "offline": False,
            "transactionInfo": {"transactionId": "tx-1", "chargingState": "Charging"},
            "evse": {"id": 1, "connectorId": 1},
            "idToken": {"idToken": "TAG", "type": "ISO14443"},
            "meterValue": [{"timestamp": TS, "sampledValue": [SAMPLE_201]}],
        },
    ),
    (
        Version.V201,
        "TransactionEvent",
        True,
        {"idTokenInfo": {"status": "Accepted"}, "totalCost": 1.5},
    ),
    (
        Version.V201,
        "StatusNotification",
        False,
        {"timestamp": TS, "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1},
    ),
    (
        Version.V201,
        "NotifyEvent",
        False,
        {
            "generatedAt": TS,
            "seqNo": 0,
            "eventData": [
                {
                    "eventId": 1,
                    "timestamp": TS,
                    "trigger": "Alerting",
                    "actualValue": "x",
                    "eventNotificationType": "HardWiredNotification",
                    "component": {"name": "C"},
                    "variable": {"name": "V"},
                }
            ],
        },
    ),
    (
        Version.V201,
        "SetVariables",
        False,
        {
            "setVariableData": [
                {
                    "attributeValue": "30",
                    "component": {"name": "C", "evse": {"id": 1}},
                    "variable": {"name": "V"},
                }
            ]
        },
    ),
    (
        Version.V201,
        "SetChargingProfile",
        False,
        {
            "evseId": 1,
            "chargingProfile": {
                "id": 1,
                "stackLevel": 0,
                "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": [
                    {
                        "id": 1,
                        "chargingRateUnit": "A",
                        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.1}],
                    }
                ],
            },
        },
    ),
]
WRONG_VALUES: list[Any] = [12345, 1.5, "x", None, [], {}, True, "y" * 3000, [1, 2]]


# formats are not what is compared here (the handlers parse timestamps themselves, and a
# general validator applies "date-time" unevenly across draft versions): both accept any
FORMATS: dict[str, Any] = {"date-time": lambda v: True, "uri": lambda v: True}


def _schema(version: Version, action: str, response: bool) -> dict[str, Any]:
    path = resources.files("ocpp").joinpath(
        _schema_dir(version), "schemas", _schema_file(version, action, response)
    )
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    schema.pop("$id", None)
    return schema


def _reference(version: Version, action: str, response: bool) -> Any:
    return fastjsonschema.compile(_schema(version, action, response), formats=FORMATS)


def _ours(version: Version, action: str, response: bool) -> Any:
    return compile_schema(
        _schema(version, action, response), lambda k, d: SchemaViolation(k, d), FORMATS
    )


def _mutations(payload: Any) -> Iterator[Any]:
    """Every payload one change away from ``payload``."""

    def walk(node: Any, path: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
        yield path
        if isinstance(node, dict):
            for key, value in node.items():
                yield from walk(value, (*path, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from walk(value, (*path, index))

    def at(root: Any, path: tuple[Any, ...]) -> Any:
        for step in path:
            root = root[step]
        return root

    for path in list(walk(payload, ())):
        target = at(payload, path)
        if isinstance(target, dict):
            for key in target:
                mutated = copy.deepcopy(payload)
                del at(mutated, path)[key]
                yield mutated
            mutated = copy.deepcopy(payload)
            at(mutated, path)["zzUnknown"] = 1
            yield mutated
        if path:
            for wrong in WRONG_VALUES:
                mutated = copy.deepcopy(payload)
                at(mutated, path[:-1])[path[-1]] = wrong
                yield mutated
        if isinstance(target, list):
            mutated = copy.deepcopy(payload)
            at(mutated, path).clear()
            yield mutated


def _accepts(check: Any, payload: Any, errors: tuple[type[Exception], ...]) -> bool:
    try:
        check(payload)
    except errors:
        return False
    return True


@pytest.mark.parametrize(
    ("version", "action", "response", "payload"), CORPUS, ids=lambda v: str(v)[:24]
)
def test_compiled_validator_agrees_with_a_general_one(
    version: Version, action: str, response: bool, payload: dict[str, Any]
) -> None:
    ours = _ours(version, action, response)
    assert _accepts(validator(version, action, response), payload, (SchemaViolation,))
    reference = _reference(version, action, response)
    assert _accepts(ours, payload, (SchemaViolation,)), "the valid message is refused"
    checked = 0
    for mutated in _mutations(payload):
        expected = _accepts(reference, mutated, (fastjsonschema.JsonSchemaException,))
        assert _accepts(ours, mutated, (SchemaViolation,)) == expected, mutated
        checked += 1
    assert checked > 20


def test_every_official_schema_compiles() -> None:
    for version in Version:
        for action in known_actions(version):
            validator(version, action, False)
            validator(version, action, True)
