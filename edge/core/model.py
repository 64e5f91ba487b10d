"""The version-neutral site model: chargers, EVSEs/connectors and charging sessions.

Both OCPP handler modules translate into these types; nothing here knows a protocol
version's wire format, a socket or SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, TypedDict

from edge.core.firmware import FirmwareUpdate
from edge.core.ids import ChargerId, IdTag, SessionId
from edge.core.meter import MeterReading


class ConnectorStatus(StrEnum):
    AVAILABLE = "available"
    OCCUPIED = "occupied"  # a vehicle is plugged in, not (yet) charging
    CHARGING = "charging"
    SUSPENDED_EV = "suspended_ev"
    SUSPENDED_EVSE = "suspended_evse"
    FINISHING = "finishing"
    RESERVED = "reserved"
    UNAVAILABLE = "unavailable"
    FAULTED = "faulted"
    UNKNOWN = "unknown"


# the statuses in which a vehicle is plugged in
PLUGGED_IN = frozenset(
    {
        ConnectorStatus.OCCUPIED,
        ConnectorStatus.CHARGING,
        ConnectorStatus.SUSPENDED_EV,
        ConnectorStatus.SUSPENDED_EVSE,
        ConnectorStatus.FINISHING,
    }
)


class SessionStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    # The charger vanished mid-session; closed from the last data we had, never with a
    # fabricated StopTransaction.
    INFERRED_STOPPED = "inferred_stopped"


class AuthorizationStatus(StrEnum):
    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    CONCURRENT_TX = "ConcurrentTx"
    UNKNOWN = "Unknown"


class BootStatus(StrEnum):
    ACCEPTED = "Accepted"
    PENDING = "Pending"
    REJECTED = "Rejected"


@dataclass(slots=True)
class ChargerInfo:
    vendor: str = ""
    model: str = ""
    serial: str = ""
    firmware: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Evse:
    """An EVSE (2.0.1) or connector (1.6); ``evse_id`` 0 is the charger as a whole."""

    evse_id: int
    connector_id: int = 1
    status: ConnectorStatus = ConnectorStatus.UNKNOWN
    error_code: str | None = None
    info: str | None = None
    updated_at: datetime | None = None


@dataclass(slots=True)
class Charger:
    id: ChargerId
    version: str | None = None
    info: ChargerInfo = field(default_factory=ChargerInfo)
    connected: bool = False
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    last_boot: datetime | None = None
    boot_status: BootStatus | None = None
    auto_registered: bool = False
    evses: dict[int, Evse] = field(default_factory=dict)
    firmware_update: FirmwareUpdate | None = None  # the latest accepted (edge.core.firmware)

    def evse(self, evse_id: int, connector_id: int = 1) -> Evse:
        found = self.evses.get(evse_id)
        if found is None:
            found = self.evses[evse_id] = Evse(evse_id=evse_id, connector_id=connector_id)
        return found


class SubjectFields(TypedDict):
    vehicle_id: str | None
    driver_id: str | None
    id_tag: str | None


@dataclass(frozen=True, slots=True)
class Subject:
    """Who an event is about (the contract's ``SUBJECT``); None where the site does not know."""

    vehicle_id: str | None = None
    driver_id: str | None = None
    id_tag: str | None = None

    def fields(self) -> SubjectFields:
        """The subject as keyword arguments of a version-2 event model (``**subject.fields()``)."""
        return {"vehicle_id": self.vehicle_id, "driver_id": self.driver_id, "id_tag": self.id_tag}


@dataclass(slots=True)
class Session:
    id: SessionId
    charger_id: ChargerId
    evse_id: int
    connector_id: int
    transaction_id: str
    id_tag: IdTag | None
    started_at: datetime
    version: str
    id_tag_status: AuthorizationStatus = AuthorizationStatus.ACCEPTED
    meter_start_wh: float | None = None
    meter_last_wh: float | None = None
    meter_stop_wh: float | None = None
    power_w: float | None = None
    soc: float | None = None
    stopped_at: datetime | None = None
    last_update: datetime | None = None
    status: SessionStatus = SessionStatus.ACTIVE
    stop_reason: str | None = None
    reservation_id: int | None = None
    # when the charger reported a stop for a transaction we never saw start
    orphan: bool = False
    # who charges: the vehicle and driver the id tag belonged to when the session began
    vehicle_id: str | None = None
    driver_id: str | None = None
    # a 2.0.1 transaction started at plug-in without a token, not yet announced to central:
    # it waits for its token (and so its driver), its first energy, or its end
    awaiting_token: bool = False
    # when central was last told how the session is going (not stored: after a restart
    # the next meter value tells it again)
    progress_sent_at: datetime | None = None
    # what the car said it needs (2.0.1 NotifyEVChargingNeeds), for load management; not
    # stored: the car tells it again at its next plug-in
    departure: datetime | None = None
    energy_target_wh: float | None = None  # the session's energy once the car has enough
    # the charging.failed codes central was told of for this session (not stored: one
    # fault reported again after a restart is better than one never reported)
    failures_reported: set[str] = field(default_factory=set)

    @property
    def refused(self) -> bool:
        """The id tag was refused: the site keeps the record, central hears no session."""
        return self.id_tag_status is not AuthorizationStatus.ACCEPTED

    @property
    def subject(self) -> Subject:
        return Subject(self.vehicle_id, self.driver_id, self.id_tag)

    @property
    def energy_wh(self) -> float:
        return session_energy_wh(self)

    def apply(self, reading: MeterReading) -> None:
        """Take in a meter reading: the first register seen is the start if none was given."""
        if reading.energy_wh is not None:
            if self.meter_start_wh is None:
                self.meter_start_wh = reading.energy_wh
            self.meter_last_wh = reading.energy_wh
        if reading.power_w is not None:
            self.power_w = reading.power_w
        if reading.soc is not None:
            self.soc = reading.soc
        if self.last_update is None or reading.at > self.last_update:
            self.last_update = reading.at


def session_energy_wh(session: Session) -> float:
    """Energy delivered: last register minus the first; 0 if we never saw a register.

    One rule for both versions: registers are already in Wh (see :mod:`edge.core.meter`); a
    register that went backwards (meter swap, bad sample) counts as no energy, not as
    negative energy.
    """
    start = session.meter_start_wh
    end = session.meter_stop_wh if session.meter_stop_wh is not None else session.meter_last_wh
    if start is None or end is None:
        return 0.0
    return max(0.0, end - start)
