"""The meter reading quirks catalogue (ocpp_handlers.quirks), each from a real frame."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ocpp_handlers import v16
from ocpp_handlers.quirks import QUIRKS_KEY, Oddity
from ocpp_handlers.schemas import SchemaViolation, Version, validate, validator

# Alfen Eve Pro, 1.6 (lbbrhzn/ocpp #361), as received
ALFEN: dict[str, Any] = {
    "connectorId": 1, "transactionId": 9223372036854775807,
    "meterValue": [{"timestamp": "2020-09-19T15:14:23Z", "sampledValue": [
        {"value": "15.630", "context": "Sample.Periodic", "unit": "A"},
        {"value": "16.000", "context": "CurrentMax", "unit": "A"},
    ]}],
}  # fmt: skip
# an ESP32 charger, 1.6 (mobilityhouse/ocpp #377): values as JSON numbers
NUMBERS: dict[str, Any] = {
    "connectorId": 1,
    "meterValue": [{"timestamp": "2022-10-03T16:15:53.000Z", "sampledValue": [
        {"value": 10, "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
    ]}],
}  # fmt: skip


def tolerated(version: Version, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    message = copy.deepcopy(payload)
    validate(version, action, message)
    return message


def test_alfen_current_max_is_the_current_offered() -> None:
    message = tolerated(Version.V16, "MeterValues", ALFEN)
    samples = message["meterValue"][0]["sampledValue"]
    assert samples == [
        {"value": "15.630", "context": "Sample.Periodic", "unit": "A"},
        {"value": "16.000", "measurand": "Current.Offered", "unit": "A"},
    ]
    assert message[QUIRKS_KEY] == [Oddity("context", "CurrentMax", kept=True)]
    del message[QUIRKS_KEY]
    validator(Version.V16, "MeterValues", False)(message)  # strictly valid now


def test_1_6_numbers_are_made_strings_when_the_message_fails_as_sent() -> None:
    message = copy.deepcopy(NUMBERS)
    with pytest.raises(SchemaViolation) as refused:
        validate(Version.V16, "MeterValues", message)
    assert refused.value.code == "TypeConstraintViolation"
    assert v16.fix_quirks("MeterValues", message)
    validate(Version.V16, "MeterValues", message)
    assert message["meterValue"][0]["sampledValue"][0]["value"] == "10"


def _sample(**fields: Any) -> dict[str, Any]:
    return {"value": "1", "measurand": "Energy.Active.Import.Register", **fields}


@pytest.mark.parametrize(
    ("odd", "kept"),
    [
        ({"context": "Sample.Hourly"}, True),  # descriptive: the reading stays
        ({"location": "Wall"}, True),
        ({"measurand": "Energy.Total"}, False),  # what the number is: the sample goes
        ({"unit": "kWH"}, False),
        ({"phase": "L1L2"}, False),
        ({"format": "Plain"}, False),
    ],
)
def test_an_odd_word_keeps_the_other_readings(odd: dict[str, Any], kept: bool) -> None:
    good = _sample(unit="kWh")
    payload = {"connectorId": 1, "meterValue": [
        {"timestamp": "2026-11-24T08:00:00Z", "sampledValue": [good, _sample(**odd)]},
    ]}  # fmt: skip
    message = tolerated(Version.V16, "MeterValues", payload)
    samples = message["meterValue"][0]["sampledValue"]
    field, word = next(iter(odd.items()))
    assert samples[0] == good
    assert len(samples) == (2 if kept else 1)
    assert message[QUIRKS_KEY] == [Oddity(field, word, kept)]


def test_an_odd_context_without_a_measurand_is_not_read_as_energy() -> None:
    payload = {"connectorId": 1, "meterValue": [
        {"timestamp": "2026-11-24T08:00:00Z", "sampledValue": [{"value": "5", "context": "Max"}]},
    ]}  # fmt: skip
    message = tolerated(Version.V16, "MeterValues", payload)
    assert message["meterValue"] == []  # nothing sound is left, and nothing is invented


def test_2_0_1_transaction_event_and_stop_transaction_are_tolerated_too() -> None:
    event = {
        "eventType": "Updated", "timestamp": "2026-11-24T08:00:00Z",
        "triggerReason": "MeterValuePeriodic", "seqNo": 1,
        "transactionInfo": {"transactionId": "tx-1"},
        "meterValue": [{"timestamp": "2026-11-24T08:00:00Z", "sampledValue": [
            {"value": 1200.5, "measurand": "Energy.Active.Import.Register"},
            {"value": 3.0, "measurand": "Current.Import", "phase": "L1-L2-L3"},
        ]}],
    }  # fmt: skip
    message = tolerated(Version.V201, "TransactionEvent", event)
    assert message["meterValue"][0]["sampledValue"] == [event["meterValue"][0]["sampledValue"][0]]
    assert message[QUIRKS_KEY] == [Oddity("phase", "L1-L2-L3", kept=False)]
    stop = {"transactionId": 1, "meterStop": 5, "timestamp": "2026-11-24T08:00:00Z",
            "transactionData": [{"timestamp": "2026-11-24T08:00:00Z",
                                 "sampledValue": [_sample(context="Periodic")]}]}  # fmt: skip
    message = tolerated(Version.V16, "StopTransaction", stop)
    assert message["transactionData"][0]["sampledValue"] == [_sample()]


@pytest.mark.parametrize(
    "broken",
    [
        {"measurand": "Odd"},  # and no value: a missing required field
        {"value": "1", "context": "Odd", "colour": "red"},  # a field no schema has
        {"value": ["1"], "context": "Odd"},  # a wrong type
    ],
)
def test_a_structural_error_is_still_refused(broken: dict[str, Any]) -> None:
    payload = {"connectorId": 1, "meterValue": [
        {"timestamp": "2026-11-24T08:00:00Z", "sampledValue": [_sample(), broken]},
    ]}  # fmt: skip
    message = copy.deepcopy(payload)
    with pytest.raises(SchemaViolation):
        validate(Version.V16, "MeterValues", message)
    assert message == payload  # refused as it came, nothing half repaired


def test_a_valid_message_is_left_alone_and_other_actions_are_strict() -> None:
    payload = {"connectorId": 1, "meterValue": [
        {"timestamp": "2026-11-24T08:00:00Z", "sampledValue": [_sample(context="Trigger")]},
    ]}  # fmt: skip
    assert tolerated(Version.V16, "MeterValues", payload) == payload
    with pytest.raises(SchemaViolation):
        validate(Version.V16, "StatusNotification", {"connectorId": 1, "errorCode": "Odd",
                                                     "status": "Available"})  # fmt: skip
    with pytest.raises(SchemaViolation):  # an answer is never tolerated
        validate(Version.V16, "MeterValues", {"odd": 1}, response=True)
