"""The event contract: every type round-trips through the wire, and both sides use it."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from contract.envelope import EVENT_TOPICS, CloudEvent
from contract.events import (
    DATA_MODELS,
    ChargingCompleted,
    ChargingStarted,
    ParkingOccupied,
    WrongEventType,
    data_json,
    dataschema,
    new_event,
    parse_data,
)
from contract.sync_api import EventBatch

ROOT = Path(__file__).resolve().parents[2]
AT = datetime(2026, 12, 2, 14, 18, 52, 123000, tzinfo=UTC)

# One full example of each type's data: every field set, as a producer would.
EXAMPLES: dict[str, dict[str, Any]] = {
    "parking.reserved": {
        "slot_id": "A-1", "reservation_id": "r-1", "vehicle_id": "EV-1", "starts_at": AT,
        "ends_at": AT, "slot_type": "ev", "command_id": "c-1", "charger_status": "Accepted",
        "vehicle_type": "van", "driver_id": "u-1", "id_tag": "ATOKEN",
    },
    "parking.released": {
        "reservation_id": "r-1", "slot_id": "A-1", "vehicle_id": "EV-1", "reason": "expired",
        "driver_id": "u-1", "id_tag": None,
    },
    "parking.occupied": {
        "slot_id": "A-1", "slot_type": "ev", "visit_id": "v-1", "arrived_at": AT,
        "reservation_id": "r-1", "vehicle_id": "EV-1", "vehicle_type": "van",
        "driver_id": "u-1", "id_tag": None,
    },
    "parking.vacated": {
        "slot_id": "A-1", "slot_type": "ev", "visit_id": "v-1", "arrived_at": AT,
        "departed_at": AT, "duration_s": 3600.0, "session_id": "s-1", "reservation_id": "r-1",
        "vehicle_id": "EV-1", "driver_id": "u-1", "id_tag": None,
    },
    "parking.condition": {
        "slot_id": "A-1", "condition": "ev_slot_blocked", "active": True, "since": AT,
    },
    "parking.slot_state": {
        "slot_id": "A-1", "slot_type": "ev", "state": "occupied", "previous": "free",
        "since": AT,
    },
    "sensor.status": {
        "sensor_id": "S-1", "slot_id": "A-1", "online": False, "battery": 12, "rssi": -71,
        "low_battery": True, "last_heard": AT,
    },
    "charging.started": {
        "session_id": "s-1", "charger_id": "CP-1", "evse_id": 1, "connector_id": 1,
        "id_tag": "TAG-1", "id_tag_status": "Accepted", "transaction_id": 7,
        "meter_start_wh": 1000.0, "started_at": AT, "slot_id": "A-1", "vehicle_id": "EV-1",
        "vehicle_type": "van", "driver_id": "u-1",
    },
    "charging.progress": {
        "session_id": "s-1", "charger_id": "CP-1", "evse_id": 1, "transaction_id": "tx-7",
        "energy_wh": 1234.5, "power_w": 7200.0, "soc": 55.0, "at": AT,
        "vehicle_id": "EV-1", "driver_id": "u-1", "id_tag": "TAG-1",
    },
    "charging.completed": {
        "session_id": "s-1", "charger_id": "CP-1", "evse_id": 1, "id_tag": "",
        "transaction_id": 7, "energy_wh": 9000.0, "started_at": AT, "stopped_at": AT,
        "reason": "EVDisconnected", "inferred": True, "slot_id": "A-1", "vehicle_id": "EV-1",
        "idle_since": AT, "charging_ended_at": AT, "rate_id": "r-day",
        "rate": {"id": "r-day", "price_per_kwh": 0.3}, "driver_id": "u-1",
    },
    "charging.failed": {
        "charger_id": "CP-1", "evse_id": 1, "id_tag": "TAG-1", "vehicle_id": "EV-1",
        "reason": "The charger refused to start charging.", "command_id": "c-1",
        "code": "RemoteStartRejected", "session_id": None, "driver_id": "u-1",
    },
    "charger.status": {
        "charger_id": "CP-1", "evse_id": 1, "connector_id": 1, "status": "Faulted",
        "error_code": "GroundFailure", "online": True,
    },
    "charger.security_event": {
        "charger_id": "CP-1", "event_type": "TamperDetectionActivated", "occurred_at": AT,
        "tech_info": "enclosure opened",
    },
    "charger.firmware_status": {"charger_id": "CP-1", "status": "Downloading", "request_id": 7},
    "charger.log_status": {"charger_id": "CP-1", "status": "Uploaded", "request_id": 8},
    "power.limit_changed": {
        "limit_kw": 22.0, "configured_kw": 44.0, "until": AT, "set_by": "local-api",
    },
    "power.overshoot": {
        "charger_id": "CP-1", "reason": "draws more than its limit", "measured_kw": 16.2,
        "offered_kw": 7.4,
    },
    "charging.rates_updated": {
        "rates": [{"id": "r-day", "price_per_kwh": 0.3}], "all_sites": True,
    },
    "command.result": {
        "command_id": "c-1", "command_type": "remote_start", "status": "accepted",
        "detail": "", "result": {"session_id": "s-1"},
    },
}  # fmt: skip


def test_every_type_has_a_model_an_example_and_a_topic() -> None:
    assert set(EXAMPLES) == set(DATA_MODELS)
    # every type the bus routes by name is one the contract defines
    assert set(EVENT_TOPICS) <= set(DATA_MODELS)


@pytest.mark.parametrize("event_type", sorted(EXAMPLES))
def test_every_type_round_trips_through_the_wire(event_type: str) -> None:
    model = DATA_MODELS[event_type]
    data = model.model_validate(EXAMPLES[event_type])
    # every field of the example is set: nothing is dropped on the way
    assert set(EXAMPLES[event_type]) <= set(data.model_fields_set)
    event = new_event(data, site_id="site-1", time=AT, sequence=3, subject="x")

    wire = EventBatch(events=[event]).model_dump_json()  # as the sync API carries it
    received = EventBatch.model_validate_json(wire).events[0]

    assert received.type == event_type
    assert received.dataschema == f"urn:evpark:event:{event_type}:{model.VERSION}"
    assert received.dataschema == dataschema(event_type)
    assert received.site_id == "site-1"
    assert received.sequence == 3
    parsed = parse_data(model, received)
    assert parsed == data
    assert data_json(parsed) == received.data


def test_times_are_utc_with_milliseconds_and_parse_back_from_any_offset() -> None:
    data = ParkingOccupied(
        slot_id="A-1", arrived_at=datetime.fromisoformat("2026-12-02T15:18:52.123+01:00"),
        vehicle_id=None, driver_id=None, id_tag=None,
    )  # fmt: skip
    assert data_json(data)["arrived_at"] == "2026-12-02T14:18:52.123Z"


def test_a_naive_time_or_a_missing_field_is_refused() -> None:
    with pytest.raises(ValidationError):
        ChargingStarted(session_id="s", charger_id="CP", started_at=datetime(2026, 1, 1))
    with pytest.raises(ValidationError):
        ChargingCompleted.model_validate({"session_id": "s", "charger_id": "CP"})


def test_a_newer_producers_extra_field_is_ignored_and_a_wrong_type_refused() -> None:
    event = CloudEvent(
        id="e-1", source="/sites/site-1", type="parking.occupied", time=AT, sequence=1,
        data={"slot_id": "A-1", "colour": "blue"},
    )  # fmt: skip
    # a version-1 event (no dataschema): the subject it could not name is not known
    assert parse_data(ParkingOccupied, event) == ParkingOccupied(
        slot_id="A-1", vehicle_id=None, driver_id=None, id_tag=None
    )
    with pytest.raises(WrongEventType):
        parse_data(ChargingCompleted, event)
    # a version-2 event must name its subject, if only as unknown
    current = event.model_copy(update={"dataschema": dataschema("parking.occupied")})
    with pytest.raises(ValidationError):
        parse_data(ParkingOccupied, current)


def test_the_edge_outbox_writes_events_central_reads() -> None:
    """The edge writes its batches as text (edge.storage.sync_sql); central parses them with
    the contract's models: an outbox row of each type must come out as the same data."""
    import sqlite3

    from edge.storage.site_sql import add_outbox_event
    from edge.storage.sqlite import Unit
    from edge.storage.sync_sql import batch_json

    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE TABLE outbox (sequence INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT, type TEXT,"
        " subject TEXT, time TEXT, data TEXT)"
    )
    for event_type, example in EXAMPLES.items():
        unit = Unit()
        add_outbox_event(unit, DATA_MODELS[event_type].model_validate(example), "subject", AT)
        for statement, params in unit.ops:
            db.execute(statement, params)
    body, count, last = batch_json(db, "/sites/site-1", 0, 100)
    events = EventBatch.model_validate_json(body).events
    assert count == len(EXAMPLES) == last
    for event in events:
        model = DATA_MODELS[event.type]
        assert parse_data(model, event) == model.model_validate(EXAMPLES[event.type])
        assert event.dataschema == dataschema(event.type)


def _string_constants(package: str) -> set[str]:
    found: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(node.value)
    return found


def test_edge_producers_name_no_event_type_outside_the_contract() -> None:
    """Producers build events through the contract's models, not as dict literals."""
    literals = _string_constants("edge") & set(DATA_MODELS)
    assert literals == set(), f"event types written by hand in edge/: {sorted(literals)}"
