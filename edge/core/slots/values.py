"""The slot model's value types: ids, slot states, conditions, and aware times.

Kept apart from the model so that the sensor payloads and the storage can name a sensor or
a state without the machinery that derives them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import NewType

SensorId = NewType("SensorId", str)
EvseId = NewType("EvseId", int)
VisitId = NewType("VisitId", str)
ReservationId = NewType("ReservationId", str)


class SlotState(StrEnum):
    FREE = "free"
    OCCUPIED = "occupied"
    RESERVED = "reserved"
    OUT_OF_SERVICE = "out_of_service"
    UNKNOWN = "unknown"


class Condition(StrEnum):
    """Derived conditions of a slot with a charger (see :mod:`edge.core.slots.machine`)."""

    EV_SLOT_BLOCKED = "ev_slot_blocked"
    CHARGED_IDLE = "charged_idle"
    SENSOR_SUSPECT = "sensor_suspect"


def require_aware(moment: datetime) -> None:
    """Refuse a naive time: the model compares times from sensors, chargers and the clock."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: the slot model needs aware UTC times")
