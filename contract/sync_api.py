"""The sync API between an edge and central: its paths and the bodies each way.

The edge and central share this package and nothing else (docs/architecture.md), so it
depends on pydantic and the standard library only. Events travel in the envelope of
:mod:`contract.envelope`, their ``data`` as :mod:`contract.events` defines it.

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

from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from contract.envelope import CloudEvent

EVENTS_PATH: Final = "/sync/v1/events"
COMMANDS_PATH: Final = "/sync/v1/commands"
STATUS_PATH: Final = "/sync/v1/status"


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
    "update_firmware",
    "set_site_limit",
]


class Command(BaseModel):
    """A command from central to one site, delivered until acknowledged or expired.

    ``payload`` by type:
    * reserve: {reservation_id, slot_id?, slot_type?, vehicle_id, driver_id?, id_tag?,
      starts_at, ends_at}
    * cancel_reservation: {reservation_id}
    * remote_start: {charger_id, evse_id?, id_tag, vehicle_id?, driver_id?, token_expires_at?}:
      ``id_tag`` is a per-session app token the site accepts for that vehicle and driver
      until ``token_expires_at`` (docs/drivers.md); the result is ``accepted`` only once a
      session began with it (``result.session_id``)
    * remote_stop: {charger_id?, session_id?, transaction_id?, vehicle_id?}
    * update_rates: {rates: [...]} as central's ``GET /charging/rates`` items
    * update_id_tags: {version, tags: [{id_tag, status, expires_at?, vehicle_id?, driver_id?}],
      full: bool}: a list older than one the site applied is acknowledged and ignored
    * set_site_limit: {site_limit_kw: float | null, until: RFC 3339 | null}: a temporary
      site limit for load management (null: back to the configured one, docs/power.md);
      the result holds the limit in force, ``rejected`` where load management is off
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
