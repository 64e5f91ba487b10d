"""What each event's ``data`` holds: one typed model per event type, for producers and consumers.

Producers (the edge's outbox, central's services) build events only through these models
(:func:`new_event`, :func:`event_row`); consumers read ``data`` only through them
(:func:`parse_data`). The models say what a field *is*; what a consumer believes of it (a
reported time far in the future, an energy figure out of range) is that consumer's rule.

Compatibility: a model ignores fields it does not know (a newer producer may add some) and
every field added later must have a default, so an older consumer keeps working. A change
that breaks that contract is a new ``VERSION`` of the type, named in the envelope's
``dataschema`` (``urn:evpark:event:<type>:<version>``).

Version 2 of the events a driver cares about (``SUBJECT``: charging started, progress,
completed and failed; parking reserved, released, occupied, vacated) names its subject:
``vehicle_id``, ``driver_id`` and ``id_tag`` have no default, so a producer that forgets
one makes a type error, not an event nobody can be told of (None says "not known"). A
version 1 event (no ``dataschema``, or ``:1``) is read with them as None.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, ClassVar, Final, Literal, TypeVar, cast

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer

from common.timestamps import format_timestamp
from contract.envelope import CloudEvent, site_source
from contract.sync_api import CommandResult

# Times are RFC 3339 in UTC with milliseconds, as everything evpark writes (common.timestamps).
Time = Annotated[AwareDatetime, PlainSerializer(format_timestamp, return_type=str)]
Id = Annotated[str, Field(min_length=1, max_length=64)]
# what a driver presents; a 2.0.1 charger sends "" for a charge that needs no authorization
IdTag = Annotated[str, Field(max_length=64)]
Energy = Annotated[float, Field(allow_inf_nan=False)]  # Wh; a consumer judges its range
TransactionId = str | int  # 1.6 chargers number transactions, 2.0.1 ones name them

SCHEMA_PREFIX: Final = "urn:evpark:event:"


class EventData(BaseModel):
    """The ``data`` of one event type; ``TYPE`` and ``VERSION`` name it on the wire."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1


# --- parking.events ------------------------------------------------------------------------


class ParkingReserved(EventData):
    """A slot is held for a vehicle (by central's API, or by the site carrying out a command)."""

    VERSION: ClassVar[int] = 2
    TYPE: ClassVar[str] = "parking.reserved"
    slot_id: Id
    reservation_id: Id
    starts_at: Time | None = None
    ends_at: Time | None = None
    slot_type: Annotated[str, Field(max_length=32)] | None = None
    command_id: Id | None = None
    charger_status: Annotated[str, Field(max_length=32)] | None = None  # the charger's answer
    vehicle_type: Annotated[str, Field(max_length=32)] | None = None  # for analytics
    # the subject (version 2): who the event is about, None where the site does not know
    vehicle_id: Id | None
    driver_id: Id | None
    id_tag: IdTag | None


class ParkingReleased(EventData):
    """A reservation ended before it was used (cancelled, expired)."""

    VERSION: ClassVar[int] = 2
    TYPE: ClassVar[str] = "parking.released"
    reservation_id: Id
    slot_id: Id | None = None
    reason: Annotated[str, Field(max_length=64)] = ""
    # the subject (version 2): who the event is about, None where the site does not know
    vehicle_id: Id | None
    driver_id: Id | None
    id_tag: IdTag | None


class ParkingOccupied(EventData):
    """A vehicle arrived in a slot (a visit started)."""

    VERSION: ClassVar[int] = 2
    TYPE: ClassVar[str] = "parking.occupied"
    slot_id: Id
    slot_type: Annotated[str, Field(max_length=32)] | None = None
    visit_id: Id | None = None
    arrived_at: Time | None = None
    reservation_id: Id | None = None
    vehicle_type: Annotated[str, Field(max_length=32)] | None = None  # for analytics
    # the subject (version 2): who the event is about, None where the site does not know
    vehicle_id: Id | None
    driver_id: Id | None
    id_tag: IdTag | None


class ParkingVacated(EventData):
    """A vehicle left its slot (a visit ended)."""

    VERSION: ClassVar[int] = 2
    TYPE: ClassVar[str] = "parking.vacated"
    slot_id: Id
    slot_type: Annotated[str, Field(max_length=32)] | None = None
    visit_id: Id | None = None
    arrived_at: Time | None = None
    departed_at: Time | None = None
    duration_s: Annotated[float, Field(allow_inf_nan=False)] | None = None
    session_id: Id | None = None
    reservation_id: Id | None = None
    # the subject (version 2): who the event is about, None where the site does not know
    vehicle_id: Id | None
    driver_id: Id | None
    id_tag: IdTag | None


class ParkingCondition(EventData):
    """A slot condition began or ended (an EV slot blocked, a charged car idle, a doubtful sensor)."""

    TYPE: ClassVar[str] = "parking.condition"
    slot_id: Id
    condition: Annotated[str, Field(max_length=32)]
    active: bool
    since: Time | None = None


class ParkingSlotState(EventData):
    """A slot's derived state changed (free, occupied, reserved, out of service, unknown)."""

    TYPE: ClassVar[str] = "parking.slot_state"
    slot_id: Id
    slot_type: Annotated[str, Field(max_length=32)] | None = None
    state: Annotated[str, Field(max_length=32)]
    previous: Annotated[str, Field(max_length=32)] | None = None
    since: Time | None = None


class SensorStatus(EventData):
    """A sensor went silent, or its battery is low."""

    TYPE: ClassVar[str] = "sensor.status"
    sensor_id: Id
    slot_id: Id | None = None
    online: bool
    battery: Annotated[int, Field(ge=0, le=100)] | None = None
    rssi: int | None = None
    low_battery: bool = False
    last_heard: Time | None = None


# --- charging.events -----------------------------------------------------------------------


class ChargingStarted(EventData):
    """A charging session began on an EVSE."""

    VERSION: ClassVar[int] = 2
    TYPE: ClassVar[str] = "charging.started"
    session_id: Id
    charger_id: Id
    evse_id: int | None = None
    connector_id: int | None = None
    id_tag_status: Annotated[str, Field(max_length=32)] | None = None
    transaction_id: TransactionId | None = None
    meter_start_wh: Energy | None = None
    started_at: Time
    slot_id: Id | None = None
    vehicle_type: Annotated[str, Field(max_length=32)] | None = None  # for analytics
    # the subject (version 2): who the event is about, None where the site does not know
    vehicle_id: Id | None
    driver_id: Id | None
    id_tag: IdTag | None


class ChargingProgress(EventData):
    """How a session is going, at most every ``central.progress_interval``."""

    VERSION: ClassVar[int] = 2
    TYPE: ClassVar[str] = "charging.progress"
    session_id: Id
    charger_id: Id | None = None
    evse_id: int | None = None
    transaction_id: TransactionId | None = None
    energy_wh: Energy
    power_w: Annotated[float, Field(allow_inf_nan=False)] | None = None
    soc: Annotated[float, Field(allow_inf_nan=False)] | None = None
    at: Time
    # the subject (version 2): who the event is about, None where the site does not know
    vehicle_id: Id | None
    driver_id: Id | None
    id_tag: IdTag | None


class ChargingCompleted(EventData):
    """A session ended; ``inferred`` when the site closed it for a charger that vanished."""

    VERSION: ClassVar[int] = 2
    TYPE: ClassVar[str] = "charging.completed"
    session_id: Id
    charger_id: Id
    evse_id: int | None = None
    transaction_id: TransactionId | None = None
    energy_wh: Energy
    started_at: Time
    stopped_at: Time
    reason: Annotated[str, Field(max_length=64)] = ""
    inferred: bool = False
    slot_id: Id | None = None
    # when the car stopped drawing power (an idle fee runs from then); either name is read
    idle_since: Time | None = None
    charging_ended_at: Time | None = None
    rate_id: Id | None = None  # the rate the session ran under, or the rate itself
    rate: dict[str, Any] | None = None
    # the subject (version 2): who the event is about, None where the site does not know
    vehicle_id: Id | None
    driver_id: Id | None
    id_tag: IdTag | None


class ChargingFailed(EventData):
    """A charge that was asked for did not happen (a refused remote start, a fault)."""

    VERSION: ClassVar[int] = 2
    TYPE: ClassVar[str] = "charging.failed"
    charger_id: Id
    evse_id: int | None = None
    reason: Annotated[str, Field(max_length=256)] = ""  # for a person: what went wrong
    command_id: Id | None = None
    # for a program: one of FAILURE_CODES
    code: Annotated[str, Field(max_length=32)] = "Other"
    session_id: Id | None = None  # the session it ended, if one had begun
    # the subject (version 2): who the event is about, None where the site does not know
    vehicle_id: Id | None
    driver_id: Id | None
    id_tag: IdTag | None


class ChargingRatesUpdated(EventData):
    """The rates in force changed, for one site or (``all_sites``) for every site; each rate
    as central's ``GET /charging/rates`` lists it, checked by its reader one by one (a bad
    rate does not lose the others)."""

    TYPE: ClassVar[str] = "charging.rates_updated"
    rates: list[Any]
    all_sites: bool = False


class ChargerStatus(EventData):
    """A charger connected or disconnected (``evse_id`` 0), or an EVSE's status changed."""

    TYPE: ClassVar[str] = "charger.status"
    charger_id: Id
    evse_id: int = 0
    connector_id: int = 0
    status: Annotated[str, Field(max_length=32)]
    error_code: Annotated[str, Field(max_length=64)] | None = None
    online: bool


# --- charger reports: what a charger says of itself, in its own words ----------------------
# (OCPP's words are kept as sent: a consumer that knows the version reads them; the edge
# does not translate them into a vocabulary of its own.)

Word = Annotated[str, Field(max_length=64)]  # an OCPP status or type word, as sent


class ChargerSecurityEvent(EventData):
    """A charger's security event (OCPP 1.6 Security Whitepaper / 2.0.1
    SecurityEventNotification): ``event_type`` as the charger names it (e.g.
    ``TamperDetectionActivated``), at the charger's own time."""

    TYPE: ClassVar[str] = "charger.security_event"
    charger_id: Id
    event_type: Word
    occurred_at: Time
    tech_info: Annotated[str, Field(max_length=255)] | None = None


class ChargerFirmwareStatus(EventData):
    """A firmware update's progress as the charger reports it (``Downloading``,
    ``Installed``, ``InstallationFailed``...); ``request_id`` names the update where the
    charger gives one (1.6 signed updates and 2.0.1)."""

    TYPE: ClassVar[str] = "charger.firmware_status"
    charger_id: Id
    status: Word
    request_id: int | None = None


class ChargerLogStatus(EventData):
    """A diagnostics or log upload's progress as the charger reports it (1.6
    DiagnosticsStatusNotification and LogStatusNotification, 2.0.1 LogStatusNotification)."""

    TYPE: ClassVar[str] = "charger.log_status"
    charger_id: Id
    status: Word
    request_id: int | None = None


class PowerLimitChanged(EventData):
    """The site limit in force changed: a technician's or central's temporary limit set,
    removed or expired (load management, docs/power.md)."""

    TYPE: ClassVar[str] = "power.limit_changed"
    limit_kw: Annotated[float, Field(ge=0, le=100_000)]
    configured_kw: Annotated[float, Field(ge=0, le=100_000)]
    until: Time | None = None
    set_by: Annotated[str, Field(max_length=64)]


class PowerOvershoot(EventData):
    """A charger refused or ignored the limit the load manager sent it: from now on it is
    counted at its worst and the others are lowered (docs/power.md)."""

    TYPE: ClassVar[str] = "power.overshoot"
    charger_id: Id
    reason: Annotated[str, Field(max_length=255)]
    measured_kw: Annotated[float, Field(ge=0, le=100_000)] | None = None
    offered_kw: Annotated[float, Field(ge=0, le=100_000)] | None = None


class CommandResultData(CommandResult):
    """``command.result``: what the site did with one of central's commands."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    TYPE: ClassVar[str] = "command.result"
    VERSION: ClassVar[int] = 1


Data = EventData | CommandResultData
DATA_MODELS: Final[dict[str, type[Data]]] = {
    model.TYPE: model
    for model in (
        ParkingReserved,
        ParkingReleased,
        ParkingOccupied,
        ParkingVacated,
        ParkingCondition,
        ParkingSlotState,
        SensorStatus,
        ChargingStarted,
        ChargingProgress,
        ChargingCompleted,
        ChargingFailed,
        ChargingRatesUpdated,
        ChargerStatus,
        ChargerSecurityEvent,
        ChargerFirmwareStatus,
        ChargerLogStatus,
        PowerLimitChanged,
        PowerOvershoot,
        CommandResultData,
    )
}
EventType = Literal[
    "parking.reserved",
    "parking.released",
    "parking.occupied",
    "parking.vacated",
    "parking.condition",
    "parking.slot_state",
    "sensor.status",
    "charging.started",
    "charging.progress",
    "charging.completed",
    "charging.failed",
    "charging.rates_updated",
    "charger.status",
    "charger.security_event",
    "charger.firmware_status",
    "charger.log_status",
    "power.limit_changed",
    "power.overshoot",
    "command.result",
]


SUBJECT: Final = ("vehicle_id", "driver_id", "id_tag")

# Why a charge failed (charging.failed ``code``), each with the driver's words in the
# notification templates.
FAILURE_CODES: Final = (
    "RemoteStartRejected",  # the charger refused the app's start
    "RemoteStartTimeout",  # the charger did not answer, or no charge began in time
    "ChargerOffline",  # the charger was not connected when the app asked
    "TokenRefused",  # the card or token was refused (unknown, blocked, expired)
    "ConnectorFault",  # the connector or charger reported a fault during the charge
    "EVError",  # the car reported an error or stopped communicating
    "EndedBeforeCharging",  # unplugged, power loss or emergency stop before any energy
    "Other",
)


class WrongEventType(ValueError):
    """An event was read as a type it is not."""


def dataschema(event_type: str) -> str | None:
    """The ``dataschema`` of a type this contract defines, None for any other."""
    model = DATA_MODELS.get(event_type)
    return None if model is None else f"{SCHEMA_PREFIX}{event_type}:{model.VERSION}"


def data_json(data: Data) -> dict[str, Any]:
    """``data`` as the wire carries it (JSON types, times in RFC 3339)."""
    return data.model_dump(mode="json")


D = TypeVar("D", bound=Data)


_ABSENT_SUBJECT: dict[type[BaseModel], dict[str, None]] = {}


def _absent_subject(model: type[BaseModel]) -> dict[str, None]:
    """The subject fields of ``model``, as an older producer leaves them: unknown
    (worked out once per type: it is read for every event)."""
    absent = _ABSENT_SUBJECT.get(model)
    if absent is None:
        absent = _ABSENT_SUBJECT[model] = {n: None for n in SUBJECT if n in model.model_fields}
    return absent


def parse_data(model: type[D], event: CloudEvent) -> D:
    """``event.data`` as ``model``; :class:`pydantic.ValidationError` if it does not fit."""
    if event.type != model.TYPE:
        raise WrongEventType(f"{event.type} is not {model.TYPE}")
    if model.VERSION > 1 and event.dataschema != dataschema(model.TYPE):
        # an older producer's event: the subject it could not name is not known
        return cast(D, model.model_validate({**_absent_subject(model), **event.data}))
    parsed = model.model_validate(event.data)
    return cast(D, parsed)


def new_event(
    data: Data,
    *,
    site_id: str,
    time: datetime,
    sequence: int,
    subject: str | None = None,
    event_id: str | None = None,
) -> CloudEvent:
    """A whole event around ``data`` (central's own producers; the edge goes through its
    outbox, which numbers its events at commit: see :func:`event_row`)."""
    return CloudEvent(
        id=event_id or str(uuid.uuid4()),
        source=site_source(site_id),
        type=data.TYPE,
        dataschema=dataschema(data.TYPE),
        time=time,
        subject=subject,
        sequence=sequence,
        data=data_json(data),
    )


def event_row(data: Data) -> tuple[str, dict[str, Any]]:
    """``(type, data)`` of an event the edge stores in its outbox before it has a sequence."""
    return data.TYPE, data_json(data)
