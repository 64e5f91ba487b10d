"""Log and diagnostics requests: what the site asked a charger to upload, what the charger
said about it, and the files it sent. Plain typed data and rules, no I/O.

A request carries a one-time upload token (only its SHA-256 is kept): the charger is told
an upload location with the token in it, and the upload endpoint
(:mod:`edge.api.uploads`) accepts one complete file for it until it expires.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final, Literal

from common.timestamps import format_timestamp
from edge.core.ids import ChargerId

# where chargers upload (edge.api.uploads): ``<public url>/ocpp-uploads/<token>``
UPLOAD_PREFIX: Final = "/ocpp-uploads/"

LogType = Literal["DiagnosticsLog", "SecurityLog"]
LOG_TYPES: Final[tuple[LogType, ...]] = ("DiagnosticsLog", "SecurityLog")

# The charger's words after which no upload follows (1.6 and 2.0.1 spell failure apart).
FINAL_STATUSES: Final = frozenset(
    {"Uploaded", "UploadFailed", "UploadFailure", "BadMessage", "NotSupportedOperation",
     "PermissionDenied", "AcceptedCanceled"}
)  # fmt: skip
# Answers to the command that mean no upload will come ("NotSent": the charger was offline
# or could not be asked).
NOT_SENT: Final = "NotSent"
REFUSED_ANSWERS: Final = frozenset({"Rejected", NOT_SENT})

_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME: Final = 100


@dataclass(frozen=True, slots=True)
class StatusChange:
    status: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ReceivedFile:
    name: str  # the safe name it is stored under
    size: int
    sha256: str
    path: str  # relative to the data directory
    received_at: datetime


@dataclass(frozen=True, slots=True)
class LogRequest:
    id: int  # the OCPP requestId, unique on the site
    charger_id: ChargerId
    log_type: LogType
    token_hash: str
    created_at: datetime
    expires_at: datetime
    answer: str | None = None  # the charger's answer to the command
    file_name: str | None = None  # the name the charger announced
    statuses: tuple[StatusChange, ...] = ()
    files: tuple[ReceivedFile, ...] = ()

    @property
    def status(self) -> str | None:
        return self.statuses[-1].status if self.statuses else None

    def is_open(self, now: datetime) -> bool:
        """Still waiting for the charger: not refused, not finished, not expired."""
        return (
            now < self.expires_at
            and self.answer not in REFUSED_ANSWERS
            and self.status not in FINAL_STATUSES
        )


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def answered(request: LogRequest, answer: str, file_name: str | None) -> LogRequest:
    return replace(request, answer=answer, file_name=file_name)


def with_status(request: LogRequest, status: str, at: datetime) -> LogRequest:
    return replace(request, statuses=(*request.statuses, StatusChange(status, at)))


def with_file(request: LogRequest, received: ReceivedFile) -> LogRequest:
    return replace(request, files=(*request.files, received))


UploadRefusal = Literal["expired", "used", "closed"]


def upload_refusal(request: LogRequest, now: datetime) -> UploadRefusal | None:
    """Why an upload for ``request`` is refused now, or None. One complete file per
    token: an upload cut off midway stores nothing, so the charger may try again."""
    if request.files:
        return "used"
    if request.answer in REFUSED_ANSWERS:
        return "closed"
    if now >= request.expires_at:
        return "expired"
    return None


def latest_open(requests: list[LogRequest], log_type: LogType, now: datetime) -> LogRequest | None:
    """The newest open request of ``log_type``: a 1.6 DiagnosticsStatusNotification
    names no request, it is about the charger's latest diagnostics request."""
    found = [r for r in requests if r.log_type == log_type and r.is_open(now)]
    return max(found, key=lambda r: r.id, default=None)


def safe_file_name(raw: str | None, request_id: int) -> str:
    """A name that is safe as one path component: the last component of ``raw`` with
    anything but letters, digits, ``.``, ``-`` and ``_`` replaced; never hidden, never
    empty, never longer than :data:`MAX_NAME`; prefixed with the request id."""
    base = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE.sub("_", base).lstrip(".")[:MAX_NAME] or "upload.bin"
    return f"{request_id}-{base}"


def document(request: LogRequest, now: datetime) -> dict[str, object]:
    """A request as the local API and the UI show it (never its token)."""
    return {
        "id": request.id,
        "charger_id": request.charger_id,
        "log_type": request.log_type,
        "created_at": format_timestamp(request.created_at),
        "expires_at": format_timestamp(request.expires_at),
        "answer": request.answer,
        "file_name": request.file_name,
        "status": request.status,
        "open": request.is_open(now),
        "statuses": [{"status": s.status, "at": format_timestamp(s.at)} for s in request.statuses],
        "files": [
            {
                "name": f.name,
                "size": f.size,
                "sha256": f.sha256,
                "received_at": format_timestamp(f.received_at),
            }
            for f in request.files
        ],
    }
