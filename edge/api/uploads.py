"""The endpoint chargers upload their logs and diagnostics to:
``PUT``/``POST /ocpp-uploads/{token}[/{filename}]``, a raw body or one file in a
``multipart/form-data`` body.

No login: the one-time token of a log request (:mod:`edge.core.logs`) is the credential.
The body limit is ``[diagnostics] max_upload_mb`` (enforced by :class:`edge.api.limits.BodyLimit`
while the body streams in); the file is written to a hidden temporary file next to its
place, fsync'd, then linked into place (never over another file) under
``<data_dir>/uploads/<charger>/``. Whatever goes wrong midway, the temporary file is removed
and nothing is registered: the charger may upload again with the same token.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
from pathlib import Path
from typing import BinaryIO, Final

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, Counter
from starlette.requests import ClientDisconnect

from edge.api.limits import BodyTooLarge
from edge.api.multipart import MultipartError, MultipartFile, boundary_of
from edge.core import logs
from edge.services.logs import LogRequests

log = structlog.get_logger(__name__)
MAX_TOKEN: Final = 64


class UploadRefused(Exception):
    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail


def uploads_router(requests: LogRequests, registry: CollectorRegistry) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    refused = Counter(
        "evpark_log_uploads_refused",
        "Log uploads refused, by reason (unknown_token counts guesses too)",
        ["reason"],
        registry=registry,
    )
    received = Counter("evpark_log_uploads", "Log files received", registry=registry)
    busy: set[int] = set()  # requests with an upload going on

    async def upload(request: Request, token: str, filename: str | None) -> Response:
        found = await requests.by_token(token) if len(token) <= MAX_TOKEN else None
        try:
            if found is None:
                raise UploadRefused(404, "unknown_token", "no upload is expected here")
            match logs.upload_refusal(found, requests.clock()):
                case "expired":
                    raise UploadRefused(410, "expired", "this upload location has expired")
                case "used":
                    raise UploadRefused(410, "used", "a file was already uploaded here")
                case "closed":
                    raise UploadRefused(410, "closed", "the charger refused this request")
            if found.id in busy:
                raise UploadRefused(409, "busy", "an upload to this location is going on")
            busy.add(found.id)
            try:
                stored = await _receive(request, requests, found, filename)
            except BodyTooLarge:  # answered 413 by the body limit
                refused.labels("too_large").inc()
                log.warning("logs.upload.too_large", request=found.id, charger=found.charger_id)
                raise
            finally:
                busy.discard(found.id)
        except UploadRefused as err:
            refused.labels(err.reason).inc()
            log.warning("logs.upload.refused", reason=err.reason, status=err.status,
                        request=found.id if found else None,
                        charger=found.charger_id if found else None,
                        client=request.client.host if request.client else None)  # fmt: skip
            return JSONResponse({"detail": err.detail}, err.status)
        received.inc()
        await requests.file_received(found, stored)
        return JSONResponse(
            {"request_id": found.id, "name": stored.name, "size": stored.size,
             "sha256": stored.sha256}, 201,
        )  # fmt: skip

    @router.api_route(logs.UPLOAD_PREFIX + "{token}", methods=["PUT", "POST"])
    async def upload_to(token: str, request: Request) -> Response:
        return await upload(request, token, None)

    @router.api_route(logs.UPLOAD_PREFIX + "{token}/{filename}", methods=["PUT", "POST"])
    async def upload_named(token: str, filename: str, request: Request) -> Response:
        return await upload(request, token, filename)

    return router


def charger_folder(charger_id: str) -> str:
    """A charger's folder name: its id made safe as one path component (an id may be
    ``..``); distinct ids that look alike share a folder, their files' names differ."""
    return logs.safe_file_name(charger_id, 0).removeprefix("0-")


async def _receive(
    request: Request, requests: LogRequests, found: logs.LogRequest, filename: str | None
) -> logs.ReceivedFile:
    config = requests.config.diagnostics
    folder = requests.uploads_dir / charger_folder(found.charger_id)
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    free = (await asyncio.to_thread(shutil.disk_usage, folder)).free
    if free < config.min_free_mb * 2**20 + int(request.headers.get("content-length") or 0):
        raise UploadRefused(507, "disk_full", "the site has too little disk space left")
    try:
        boundary = boundary_of(request.headers.get("content-type", ""))
    except MultipartError as err:
        raise UploadRefused(400, "bad_body", str(err)) from err
    parser = MultipartFile(boundary) if boundary is not None else None
    partial = folder / f".{found.id}-{os.urandom(4).hex()}.part"
    digest, size = hashlib.sha256(), 0
    try:
        fd = await asyncio.to_thread(os.open, partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                data = parser.feed(chunk) if parser is not None else chunk
                if data:
                    digest.update(data)
                    size += len(data)
                    await asyncio.to_thread(out.write, data)
            if parser is not None:
                parser.finish()
            await asyncio.to_thread(_sync, out)
        name = logs.safe_file_name(
            filename or (parser.filename if parser else None) or found.file_name, found.id
        )
        final = await asyncio.to_thread(_place, partial, folder, name)
    except MultipartError as err:
        raise UploadRefused(400, "bad_body", str(err)) from err
    except ClientDisconnect as err:
        raise UploadRefused(400, "cut_off", "the upload was cut off") from err
    except OSError as err:  # the disk filled up or failed: the charger may try again later
        log.error("logs.upload.write_failed", request=found.id, error=str(err))
        raise UploadRefused(507, "write_failed", "the file could not be stored") from err
    finally:
        await asyncio.to_thread(_remove, partial)
    return logs.ReceivedFile(
        name=final.name,
        size=size,
        sha256=digest.hexdigest(),
        path=str(final.relative_to(requests.data_dir)),
        received_at=requests.clock(),
    )


def _place(partial: Path, folder: Path, name: str) -> Path:
    """Link the finished file into place under a name no other file has (a link never
    replaces a file), and make the folder entry durable."""
    for candidate in [name, *(f"{n}-{name}" for n in range(1, 100))]:
        with contextlib.suppress(FileExistsError):
            os.link(partial, folder / candidate)
            break
    else:
        raise UploadRefused(409, "name_taken", "no free file name for this upload")
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return folder / candidate


def _sync(out: BinaryIO) -> None:
    out.flush()
    os.fsync(out.fileno())


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
