"""The published wire schema between an edge and central (the sync API).

This module is the only part of ``central`` the edge imports, so it depends on pydantic
and the standard library only.

Events are CloudEvents 1.0 in JSON with one extension attribute, ``sequence``: a per-site,
gap-free, strictly increasing integer starting at 1. ``source`` is ``/sites/<site_id>``.

Uplink (edge -> central), authenticated with the site's API key (``Authorization: Bearer``):

* ``POST /sync/v1/events`` with an :class:`EventBatch` (optionally ``Content-Encoding:
  gzip``); central stores every event it has not seen (idempotent by ``id``), in sequence
  order, and answers with a :class:`BatchAck`. Central refuses a batch with a gap after
  the last sequence it holds (HTTP 409 with ``expected_sequence``), so order is kept.
* ``GET /sync/v1/commands?wait=SECONDS`` long-polls for the site's pending
  :class:`Command` list; the edge reports each command's outcome as a ``command.result``
  event whose ``data`` is a :class:`CommandResult`.
* ``POST /sync/v1/commands/{command_id}/ack`` tells central the edge has stored the
  command durably, so it is not delivered again.
* ``GET /sync/v1/status`` answers a :class:`SyncStatus`: the last sequence central holds
  for the site (where an edge resumes after losing its own record of it).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SPEC_VERSION: Final = "1.0"
EVENTS_PATH: Final = "/sync/v1/events"
COMMANDS_PATH: Final = "/sync/v1/commands"
STATUS_PATH: Final = "/sync/v1/status"
SOURCE_PREFIX: Final = "/sites/"

PARKING_TOPIC: Final = "parking.events"
CHARGING_TOPIC: Final = "charging.events"

# Event types and the topic each goes to on central's bus.  ``data`` shapes are
# documented next to each type; all energies are in Wh, all times RFC 3339 UTC.
EVENT_TOPICS: Final[dict[str, str]] = {
    # {slot_id, reservation_id, vehicle_id, starts_at, ends_at, command_id?}
    "parking.reserved": PARKING_TOPIC,
    # {slot_id, reservation_id, vehicle_id, reason}
    "parking.released": PARKING_TOPIC,
    # {slot_id, slot_type, visit_id, arrived_at, reservation_id?}
    "parking.occupied": PARKING_TOPIC,
    # {slot_id, slot_type, visit_id, arrived_at, departed_at, duration_s, session_id?}
    "parking.vacated": PARKING_TOPIC,
    # {slot_id, condition: ev_slot_blocked|charged_idle|sensor_suspect, active: bool, since}
    "parking.condition": PARKING_TOPIC,
    # {session_id, charger_id, evse_id, connector_id, id_tag, transaction_id, meter_start_wh,
    #  started_at, slot_id?, vehicle_id?}
    "charging.started": CHARGING_TOPIC,
    # {session_id, charger_id, evse_id, transaction_id, energy_wh, power_w, at}
    "charging.progress": CHARGING_TOPIC,
    # {session_id, charger_id, evse_id, id_tag, transaction_id, energy_wh, started_at,
    #  stopped_at, reason, inferred: bool, slot_id?, vehicle_id?}
    "charging.completed": CHARGING_TOPIC,
    # {charger_id, evse_id?, id_tag?, reason, command_id?}
    "charging.failed": CHARGING_TOPIC,
    # {charger_id, evse_id, connector_id, status, error_code?, online: bool}
    "charger.status": CHARGING_TOPIC,
    # {sensor_id, slot_id, online: bool, battery?, rssi?}
    "sensor.status": PARKING_TOPIC,
    # CommandResult
    "command.result": CHARGING_TOPIC,
}

_SITE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def valid_site_id(site_id: str) -> bool:
    return bool(_SITE_ID.fullmatch(site_id))


def site_source(site_id: str) -> str:
    return f"{SOURCE_PREFIX}{site_id}"


def site_of_source(source: str) -> str | None:
    if not source.startswith(SOURCE_PREFIX):
        return None
    site_id = source[len(SOURCE_PREFIX) :]
    return site_id if valid_site_id(site_id) else None


def topic_for(event_type: str) -> str:
    """The bus topic of an event type; unknown types go by their prefix."""
    if event_type in EVENT_TOPICS:
        return EVENT_TOPICS[event_type]
    return PARKING_TOPIC if event_type.startswith("parking.") else CHARGING_TOPIC


class CloudEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"] = SPEC_VERSION
    id: str = Field(min_length=1, max_length=64)
    source: str = Field(min_length=1, max_length=128)
    type: str = Field(min_length=1, max_length=64, pattern=r"^[a-z]+(\.[a-z_]+)+$")
    time: datetime
    subject: str | None = Field(default=None, max_length=128)
    datacontenttype: Literal["application/json"] = "application/json"
    sequence: int = Field(ge=1)
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("time must carry a UTC offset (RFC 3339)")
        return value

    @field_validator("source")
    @classmethod
    def _site_source(cls, value: str) -> str:
        if site_of_source(value) is None:
            raise ValueError("source must be /sites/<site_id>")
        return value

    @property
    def site_id(self) -> str:
        site_id = site_of_source(self.source)
        assert site_id is not None  # checked by the validator
        return site_id


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[CloudEvent] = Field(max_length=5000)


class BatchAck(BaseModel):
    """What central holds after a batch: the edge may drop its outbox up to ``last_sequence``."""

    stored: int = Field(description="events newly stored from this batch")
    duplicates: int = Field(description="events of this batch central already had")
    last_sequence: int = Field(description="highest gap-free sequence central holds for the site")


class SyncStatus(BaseModel):
    """What central holds for the calling site."""

    site_id: str
    last_sequence: int = Field(description="highest gap-free sequence central holds")
    pending_commands: int = Field(description="commands not yet acknowledged nor expired")


class SequenceGap(BaseModel):
    """Body of a 409 answer: the batch does not start where central's sequence ends."""

    detail: str
    expected_sequence: int


CommandType = Literal[
    "reserve",
    "cancel_reservation",
    "remote_start",
    "remote_stop",
    "update_rates",
    "update_id_tags",
]


class Command(BaseModel):
    """A command from central to one site, delivered until acknowledged or expired.

    ``payload`` by type:
    * reserve: {reservation_id, slot_id?, slot_type?, vehicle_id, id_tag?, starts_at, ends_at}
    * cancel_reservation: {reservation_id}
    * remote_start: {charger_id, evse_id?, id_tag, vehicle_id?}
    * remote_stop: {charger_id?, session_id?, transaction_id?, vehicle_id?}
    * update_rates: {rates: [...]} as central's ``GET /charging/rates`` items
    * update_id_tags: {version, tags: [{id_tag, status, expires_at?}], full: bool}
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    site_id: str
    type: CommandType
    payload: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    expires_at: datetime


class CommandList(BaseModel):
    commands: list[Command]


CommandStatus = Literal["accepted", "rejected", "failed", "expired", "timeout", "unknown"]


class CommandResult(BaseModel):
    """``data`` of a ``command.result`` event."""

    command_id: str
    command_type: CommandType
    status: CommandStatus
    detail: str = ""
    result: dict[str, Any] = Field(default_factory=dict)
