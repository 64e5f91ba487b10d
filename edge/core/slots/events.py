"""What goes into the slot model and what comes out of it.

Inputs (``SlotEvent``) are what the shell heard: sensor readings, connector statuses,
sessions, reservations, the technician's flag, and ``Tick`` to move the timers. Outputs
(``SlotOutput``) are past-tense facts for the shell to persist, publish and send to
central. Plain frozen values, so that a test can compare them and a replay repeat them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from edge.core.ids import ChargerId, SessionId, SlotId
from edge.core.model import ConnectorStatus
from edge.core.slots.values import Condition, EvseId, ReservationId, SensorId, SlotState, VisitId

# ---------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class SensorReading:
    """What one sensor message said (parsed by the MQTT adapter, edge.sensors.payloads)."""

    occupied: bool
    measured_at: datetime | None = None
    battery: int | None = None
    rssi: int | None = None


@dataclass(frozen=True)
class SensorReported:
    """A valid reading; ``measured_at``: when it was taken, if the sensor said so and its
    clock is believed (see edge.sensors.clock), else None (now)."""

    sensor_id: SensorId
    occupied: bool
    battery: int | None = None
    rssi: int | None = None
    measured_at: datetime | None = None


@dataclass(frozen=True)
class SensorAvailability:
    sensor_id: SensorId
    online: bool


@dataclass(frozen=True)
class ConnectorReported:
    """A charger's connector status; ``evse_id`` is the 2.0.1 EVSE id or 1.6 connector id."""

    charger_id: ChargerId
    evse_id: EvseId
    status: ConnectorStatus


@dataclass(frozen=True)
class SessionLinked:
    slot_id: SlotId
    session_id: SessionId


@dataclass(frozen=True)
class SessionEnded:
    """The charging session ended; the visit keeps its id, the slot forgets it."""

    slot_id: SlotId
    session_id: SessionId


@dataclass(frozen=True)
class ReservationSet:
    slot_id: SlotId
    reservation_id: ReservationId
    until: datetime | None = None


@dataclass(frozen=True)
class ReservationCleared:
    slot_id: SlotId
    reservation_id: ReservationId


@dataclass(frozen=True)
class OutOfServiceSet:
    slot_id: SlotId
    on: bool
    reason: str = ""


@dataclass(frozen=True)
class Tick:
    at: datetime


SlotEvent = (
    SensorReported
    | SensorAvailability
    | ConnectorReported
    | SessionLinked
    | SessionEnded
    | ReservationSet
    | ReservationCleared
    | OutOfServiceSet
    | Tick
)


# ---------------------------------------------------------------------------- outputs


@dataclass(frozen=True)
class SlotStateChanged:
    slot_id: SlotId
    state: SlotState
    previous: SlotState
    since: datetime


@dataclass(frozen=True)
class VisitStarted:
    visit_id: VisitId
    slot_id: SlotId
    arrived_at: datetime
    reservation_id: ReservationId | None


@dataclass(frozen=True)
class VisitEnded:
    visit_id: VisitId
    slot_id: SlotId
    arrived_at: datetime
    departed_at: datetime
    duration: timedelta
    reservation_id: ReservationId | None
    session_id: SessionId | None


@dataclass(frozen=True)
class VisitSessionLinked:
    """A charging session was tied to the slot's current visit."""

    visit_id: VisitId
    slot_id: SlotId
    session_id: SessionId


@dataclass(frozen=True)
class ConditionRaised:
    slot_id: SlotId
    condition: Condition
    since: datetime  # when its facts started to hold
    at: datetime  # when it was raised (since + the condition's time, or later)


@dataclass(frozen=True)
class ConditionCleared:
    slot_id: SlotId
    condition: Condition
    since: datetime
    at: datetime


@dataclass(frozen=True)
class SensorLowBattery:
    sensor_id: SensorId
    slot_id: SlotId
    battery: int
    at: datetime


@dataclass(frozen=True)
class SensorWentStale:
    sensor_id: SensorId
    slot_id: SlotId
    last_heard: datetime | None  # None: never heard since the model started
    at: datetime


@dataclass(frozen=True)
class SlotViewChanged:
    """Something the slot's view shows changed (the connector's status, a reservation, the
    sensor's battery...) with no other output saying so: the site republishes the slot.
    Never sent to central."""

    slot_id: SlotId


SlotOutput = (
    SlotStateChanged
    | VisitStarted
    | VisitEnded
    | VisitSessionLinked
    | ConditionRaised
    | ConditionCleared
    | SensorLowBattery
    | SensorWentStale
    | SlotViewChanged
)
