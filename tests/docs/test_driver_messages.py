"""The message examples of docs/drivers.md are what the shipped templates write."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from central.notification.model import UserId
from central.notification.planning import plan
from central.notification.preferences import ChannelSetting, Preferences
from contract.events import (
    ChargingCompleted,
    ChargingFailed,
    ChargingStarted,
    EventData,
    ParkingReleased,
    ParkingReserved,
    new_event,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "drivers.md"
AT = datetime(2026, 12, 2, 13, 5, tzinfo=UTC)  # 14:05 in Berlin
ALICE = {"vehicle_id": "EV-1", "driver_id": "alice", "id_tag": "A7KQ2M9XT4BD6WR3JP5N"}
RATE = {"currency": "EUR", "energy_price_per_kwh": "0.40", "timezone": "Europe/Berlin"}

EXAMPLES: list[EventData] = [
    ParkingReserved(slot_id="A1", reservation_id="r-1", starts_at=AT,
                    ends_at=datetime(2026, 12, 2, 13, 35, tzinfo=UTC), **ALICE),
    ParkingReleased(slot_id="A1", reservation_id="r-1", reason="released", **ALICE),
    ChargingStarted(session_id="s-1", charger_id="CP-1", slot_id="A1",
                    started_at=datetime(2026, 12, 2, 13, 7, tzinfo=UTC), **ALICE),
    ChargingCompleted(session_id="s-1", charger_id="CP-1", slot_id="A1", energy_wh=7330,
                      started_at=datetime(2026, 12, 2, 13, 7, tzinfo=UTC),
                      stopped_at=datetime(2026, 12, 2, 13, 47, tzinfo=UTC), rate=RATE, **ALICE),
    ChargingFailed(charger_id="CP-2", code="TokenRefused", reason="card refused",
                   vehicle_id="EV-2", driver_id="alice", id_tag="BOB-CARD-9"),
]  # fmt: skip


def test_each_example_of_a_message_is_what_the_templates_write() -> None:
    doc = DOC.read_text(encoding="utf-8")
    prefs = Preferences(
        user_id=UserId("alice"),
        timezone="Europe/Berlin",
        channels={"sms": ChannelSetting(True, "+4915112345678")},
    )
    for data in EXAMPLES:
        event = new_event(data, site_id="demo-site", time=AT, sequence=1)
        [message] = plan(event, [prefs], {}, AT)
        row = f"| `{data.TYPE}` | {message.subject} | {message.body} |"
        assert row in doc, f"docs/drivers.md should show:\n{row}"
