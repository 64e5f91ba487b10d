"""Commands the site sends to chargers, version-neutral.

Each OCPP handler module turns these into its version's CALL and reads the answer back
into a :class:`CommandOutcome`; the command service (``edge.command_service``) does the
sending and the waiting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from edge.core.profiles import ProfileCommand


@dataclass(frozen=True, slots=True)
class RemoteStart:
    id_tag: str
    evse_id: int | None = None
    remote_start_id: int | None = None


@dataclass(frozen=True, slots=True)
class RemoteStop:
    transaction_id: str


@dataclass(frozen=True, slots=True)
class Reset:
    hard: bool = False


@dataclass(frozen=True, slots=True)
class Unlock:
    evse_id: int
    connector_id: int = 1


@dataclass(frozen=True, slots=True)
class ChangeAvailability:
    operative: bool
    evse_id: int = 0  # 0: the whole charger


@dataclass(frozen=True, slots=True)
class TriggerMessage:
    """``extended``: 1.6 sends the Security Whitepaper's ExtendedTriggerMessage (chosen
    anyway for the messages only it can trigger); 2.0.1 has one TriggerMessage for all."""

    message: str
    evse_id: int | None = None
    extended: bool = False


@dataclass(frozen=True, slots=True)
class GetConfiguration:
    keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ChangeConfiguration:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class VariableRef:
    component: str
    variable: str
    evse_id: int | None = None
    instance: str | None = None
    value: str | None = None  # for SetVariables


@dataclass(frozen=True, slots=True)
class GetVariables:
    variables: tuple[VariableRef, ...]


@dataclass(frozen=True, slots=True)
class SetVariables:
    variables: tuple[VariableRef, ...]


@dataclass(frozen=True, slots=True)
class ReserveNow:
    reservation_id: int
    evse_id: int
    id_tag: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class CancelReservation:
    reservation_id: int


@dataclass(frozen=True, slots=True)
class LocalListEntry:
    """One id tag of a charger's local authorization list; ``status`` None removes it
    (in a differential update)."""

    id_tag: str
    status: str | None = "Accepted"
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SendLocalList:
    """Replace (``full``) or update a charger's local authorization list to ``version``."""

    version: int
    full: bool
    entries: tuple[LocalListEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class GetLocalListVersion:
    """Ask a charger which local authorization list version it holds (0: none)."""


@dataclass(frozen=True, slots=True)
class ClearCache:
    """Empty a charger's authorization cache (not its local list)."""


@dataclass(frozen=True, slots=True)
class DataTransfer:
    """A vendor-specific message; the charger answers a status and, maybe, data."""

    vendor_id: str
    message_id: str | None = None
    data: str | None = None


@dataclass(frozen=True, slots=True)
class GetTransactionStatus:
    """2.0.1: is a transaction still going on, and are its messages still queued?
    Without an id: are any transaction messages queued at all."""

    transaction_id: str | None = None


@dataclass(frozen=True, slots=True)
class GetLog:
    """Upload a log of ``log_type`` (DiagnosticsLog or SecurityLog) to ``location``.
    1.6 asks a DiagnosticsLog with GetDiagnostics (what every 1.6 charger knows) and a
    SecurityLog with the Security Whitepaper's GetLog; 2.0.1 has GetLog for both."""

    log_type: str
    request_id: int
    location: str
    oldest: datetime | None = None
    latest: datetime | None = None
    retries: int | None = None
    retry_interval: int | None = None


@dataclass(frozen=True, slots=True)
class UpdateFirmware:
    """Download the firmware at ``location`` from ``retrieve_at`` on and install it.

    With ``signature`` and ``signing_certificate`` (both or neither) 1.6 sends the Security
    Whitepaper's SignedUpdateFirmware; 2.0.1 has one UpdateFirmware for both. ``request_id``
    names the update in the charger's status notifications (unsigned 1.6 sends none).
    """

    location: str
    retrieve_at: datetime
    request_id: int
    retries: int | None = None
    retry_interval: int | None = None  # seconds
    install_at: datetime | None = None
    signature: str | None = None
    signing_certificate: str | None = None

    @property
    def signed(self) -> bool:
        return self.signature is not None or self.signing_certificate is not None


Command = (
    RemoteStart
    | RemoteStop
    | Reset
    | Unlock
    | ChangeAvailability
    | TriggerMessage
    | GetConfiguration
    | ChangeConfiguration
    | GetVariables
    | SetVariables
    | ReserveNow
    | CancelReservation
    | SendLocalList
    | GetLocalListVersion
    | ClearCache
    | DataTransfer
    | GetTransactionStatus
    | GetLog
    | ProfileCommand
    | UpdateFirmware
)


def call_of_both_versions(command: Command) -> tuple[str, dict[str, Any]] | None:
    """The CALL of a command that 1.6 and 2.0.1 spell alike; None for any other."""
    match command:
        case GetLocalListVersion():
            return "GetLocalListVersion", {}
        case ClearCache():
            return "ClearCache", {}
        case DataTransfer(vendor_id=vendor_id, message_id=message_id, data=data):
            payload: dict[str, Any] = {"vendorId": vendor_id}
            if message_id is not None:
                payload["messageId"] = message_id
            if data is not None:
                payload["data"] = data
            return "DataTransfer", payload
    return None


def log_call(command: GetLog) -> tuple[str, dict[str, Any]]:
    """The GetLog CALL, spelt alike by 2.0.1 and the 1.6 Security Whitepaper."""
    log: dict[str, Any] = {"remoteLocation": command.location}
    if command.oldest is not None:
        log["oldestTimestamp"] = command.oldest.isoformat()
    if command.latest is not None:
        log["latestTimestamp"] = command.latest.isoformat()
    payload: dict[str, Any] = {"logType": command.log_type, "requestId": command.request_id}
    payload["log"] = log
    if command.retries is not None:
        payload["retries"] = command.retries
    if command.retry_interval is not None:
        payload["retryInterval"] = command.retry_interval
    return "GetLog", payload


def log_outcome(response: dict[str, Any]) -> CommandOutcome:
    """A GetLog answer: its status, and ``file_name`` the file it will upload."""
    detail = {**response, "file_name": response.get("filename")}
    return CommandOutcome(str(response.get("status", "Rejected")), detail)


class UnsupportedCommand(Exception):
    """The charger's protocol version has no such command."""


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    """A charger's answer: ``status`` as it said it (Accepted, Rejected, ...)."""

    status: str
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.status == "Accepted"
