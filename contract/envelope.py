"""The CloudEvents 1.0 envelope of every event between an edge and central, and the topics
of central's bus.

Events are JSON with one extension attribute, ``sequence``: a per-site, gap-free, strictly
increasing integer starting at 1. ``source`` is ``/sites/<site_id>``. What each type's
``data`` holds is :mod:`contract.events`.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SPEC_VERSION: Final = "1.0"
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

SITE_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_SITE_ID = re.compile(SITE_ID_PATTERN)


def valid_site_id(site_id: str) -> bool:
    return bool(_SITE_ID.fullmatch(site_id))


def site_source(site_id: str) -> str:
    return f"{SOURCE_PREFIX}{site_id}"


@functools.lru_cache(maxsize=16384)  # read for every event, by every consumer: few sites
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
    # urn:evpark:event:<type>:<version> (contract.events); None from edges older than it
    dataschema: str | None = Field(default=None, max_length=128)
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
