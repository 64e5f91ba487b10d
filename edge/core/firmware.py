"""A charger's firmware update as its status notifications move it: a pure state machine.

The site tracks the updates it asked for (an accepted UpdateFirmware / SignedUpdateFirmware),
one current update per charger. The charger's own status word (1.6 core, 1.6 Security
Whitepaper and 2.0.1 spell them alike) is kept beside one of six states:

    idle -> downloading -> downloaded -> installing -> installed
                 \\______________\\______________\\____> failed

A status naming another request id is for an update the site is not following (it is
recorded as a charger event elsewhere, not here). Unsigned 1.6 names none: it is taken as
the current update's. A charger that never says ``Installed`` but boots with another
firmware version while installing has installed it (:func:`booted`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Final

from common.timestamps import InvalidTimestamp, parse_timestamp


class FirmwareState(StrEnum):
    IDLE = "idle"
    DOWNLOADING = "downloading"
    DOWNLOADED = "downloaded"
    INSTALLING = "installing"
    INSTALLED = "installed"
    FAILED = "failed"


S = FirmwareState
STATES: Final[dict[str, FirmwareState]] = {
    "Idle": S.IDLE,
    "DownloadScheduled": S.DOWNLOADING,
    "Downloading": S.DOWNLOADING,
    "DownloadPaused": S.DOWNLOADING,
    "Downloaded": S.DOWNLOADED,
    "SignatureVerified": S.DOWNLOADED,
    "InstallScheduled": S.INSTALLING,
    "Installing": S.INSTALLING,
    "InstallRebooting": S.INSTALLING,
    "Installed": S.INSTALLED,
    "DownloadFailed": S.FAILED,
    "InvalidSignature": S.FAILED,
    "InstallationFailed": S.FAILED,
    "InstallVerificationFailed": S.FAILED,
}
FINISHED: Final = frozenset({S.INSTALLED, S.FAILED})


@dataclass(frozen=True, slots=True)
class FirmwareUpdate:
    """One update the site asked a charger for, and where the charger says it is."""

    charger_id: str
    request_id: int
    location: str
    signed: bool
    answer: str  # the charger's answer to the request: Accepted or AcceptedCanceled
    requested_at: datetime
    updated_at: datetime
    from_version: str  # the firmware the charger reported when asked
    retrieve_at: datetime | None = None
    state: FirmwareState = S.IDLE
    status: str | None = None  # the charger's own last word (Downloading, DownloadFailed, ...)
    to_version: str | None = None  # the firmware it booted with after installing

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


def requested(
    charger_id: str,
    request_id: int,
    location: str,
    *,
    signed: bool,
    answer: str,
    at: datetime,
    from_version: str,
    retrieve_at: datetime | None,
) -> FirmwareUpdate:
    """An update the charger accepted: idle until its first status."""
    return FirmwareUpdate(
        charger_id, request_id, location, signed, answer, at, at, from_version, retrieve_at
    )


def on_status(
    update: FirmwareUpdate, status: str, request_id: int | None, at: datetime
) -> FirmwareUpdate:
    """The update after the charger said ``status`` (the same object if it does not move
    it: another request's status, a word no version defines, or an ``Idle`` after the end,
    which is what a charger answers a trigger with once it is done)."""
    if request_id is not None and request_id != update.request_id:
        return update
    state = STATES.get(status)
    if state is None or (state is S.IDLE and update.finished):
        return update
    return replace(update, state=state, status=status, updated_at=at)


def on_boot(update: FirmwareUpdate, firmware_version: str, at: datetime) -> FirmwareUpdate:
    """A boot while installing with a firmware version other than the one asked from:
    installed (some chargers reboot into the new firmware and say nothing more). A boot
    with the old version proves nothing (the charger may still report a failure)."""
    if update.state is not S.INSTALLING or firmware_version in ("", update.from_version):
        return update
    return replace(update, state=S.INSTALLED, to_version=firmware_version, updated_at=at)


def next_request_id(last: int) -> int:
    """The next request id after ``last``: positive, within OCPP's 32-bit integers."""
    return last + 1 if 0 <= last < 2**31 - 1 else 1


# --- what a technician or central asks for --------------------------------------------

LOCATION_SCHEMES: Final = frozenset({"http", "https", "ftp", "ftps"})
MAX_LOCATION: Final = 512  # the 1.6 Security Whitepaper's and 2.0.1's limit
MAX_SIGNATURE: Final = 800
MAX_CERTIFICATE: Final = 5500
MAX_RETRIES: Final = 10
MAX_RETRY_INTERVAL: Final = 24 * 3600  # seconds


class BadOrder(ValueError):
    """An update request that cannot be sent; the message says why."""


@dataclass(frozen=True, slots=True)
class FirmwareOrder:
    """An update as asked for, before it gets a charger's request id."""

    location: str
    retrieve_at: datetime | None = None  # None: now
    retries: int | None = None
    retry_interval: int | None = None
    signature: str | None = None
    signing_certificate: str | None = None


def check_location(location: str) -> str:
    if not 0 < len(location) <= MAX_LOCATION:
        raise BadOrder(f"location: 1 to {MAX_LOCATION} characters")
    if any(c.isspace() or not c.isprintable() for c in location):
        raise BadOrder("location: no spaces or control characters")
    scheme, _, rest = location.partition("://")
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    if scheme.lower() not in LOCATION_SCHEMES or not host or host.startswith(":"):
        raise BadOrder("location: an http(s) or ftp(s) URL with a host")
    return location


def _bounded(name: str, value: int | None, high: int) -> int | None:
    if value is not None and not 0 <= value <= high:
        raise BadOrder(f"{name}: 0 to {high}")
    return value


def _text(name: str, value: str | None, high: int) -> str | None:
    if value is not None and not 0 < len(value) <= high:
        raise BadOrder(f"{name}: 1 to {high} characters")
    return value


def order(
    location: str,
    retrieve_at: str | None = None,
    retries: int | None = None,
    retry_interval: int | None = None,
    signature: str | None = None,
    signing_certificate: str | None = None,
) -> FirmwareOrder:
    """A checked :class:`FirmwareOrder` (:class:`BadOrder` names the first bad field)."""
    try:
        when = parse_timestamp(retrieve_at) if retrieve_at is not None else None
    except InvalidTimestamp as err:
        raise BadOrder(f"retrieve_at: an RFC 3339 time with its zone ({err.reason})") from err
    return FirmwareOrder(
        check_location(location),
        when,
        _bounded("retries", retries, MAX_RETRIES),
        _bounded("retry_interval", retry_interval, MAX_RETRY_INTERVAL),
        _text("signature", signature, MAX_SIGNATURE),
        _text("signing_certificate", signing_certificate, MAX_CERTIFICATE),
    )


def _optional_text(data: Mapping[str, object], name: str) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadOrder(f"{name}: text")
    return value


def _optional_int(data: Mapping[str, object], name: str) -> int | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadOrder(f"{name}: a whole number")
    return value


def order_from(data: Mapping[str, object]) -> FirmwareOrder:
    """An order from central's command payload or a UI form (numbers may come as text;
    empty fields are absent)."""
    location = _optional_text(data, "location")
    if location is None:
        raise BadOrder("location: required")
    return order(
        location.strip(),
        _optional_text(data, "retrieve_at"),
        _optional_int(data, "retries"),
        _optional_int(data, "retry_interval"),
        _optional_text(data, "signature"),
        _optional_text(data, "signing_certificate"),
    )
