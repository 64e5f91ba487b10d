"""A simulated charger's firmware update, as a real one runs it.

After accepting an UpdateFirmware (1.6 plain or signed, 2.0.1) the charger waits until the
retrieve time (at most :data:`MAX_WAIT` seconds: a simulator should not sleep for days),
downloads the file with an HTTP GET (http and https; any other scheme fails, as FTP has no
client here), retrying as asked, then checks the signature of a signed update, installs,
reboots into the new firmware (version: the file's name and the start of its SHA-256) and
says Installed. Test hooks: a signature that is the literal ``invalid`` fails the check;
a signing certificate that is the literal ``invalid`` is refused (``InvalidCertificate``).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import httpx

from common.timestamps import parse_timestamp
from sim.charger.rpc import Reply

if TYPE_CHECKING:
    from sim.charger.core import SimCharger

MAX_WAIT: Final = 60.0  # seconds until the retrieve time, at most
MAX_RETRY_WAIT: Final = 5.0  # seconds between download attempts, at most
MAX_SIZE: Final = 64 * 2**20  # a firmware image larger than this fails to download
DOWNLOAD_TIMEOUT: Final = 30.0
REBOOT_TIMEOUT: Final = 30.0  # to be back online after installing, before saying Installed
INVALID: Final = "invalid"  # test hooks: this signature never verifies; this certificate
# is refused with the request (InvalidCertificate)

Notify = Callable[[str], Awaitable[None]]


class DownloadFailed(Exception):
    pass


@dataclass(frozen=True, slots=True)
class FirmwareJob:
    """An accepted update. ``rich``: the charger may say the words 1.6 core lacks
    (DownloadScheduled, SignatureVerified, InstallRebooting: signed 1.6 and 2.0.1)."""

    location: str
    retrieve_at: datetime
    retries: int
    retry_interval: float
    signature: str | None
    rich: bool

    @classmethod
    def of(cls, payload: dict[str, Any], firmware: dict[str, Any], rich: bool) -> FirmwareJob:
        """From the CALL's ``payload`` and its firmware part (1.6 plain: the payload)."""
        when = firmware.get("retrieveDateTime") or firmware["retrieveDate"]
        return cls(
            location=str(firmware["location"]),
            retrieve_at=parse_timestamp(when, naive_is_utc=True),
            retries=max(0, min(int(payload.get("retries", 0)), 10)),
            retry_interval=float(payload.get("retryInterval", 1)),
            signature=firmware.get("signature"),
            rich=rich,
        )


async def download(location: str) -> bytes:
    if urlsplit(location).scheme.lower() not in ("http", "https"):
        raise DownloadFailed(f"no client for {location.split(':', 1)[0]!r}")
    try:
        async with (
            httpx.AsyncClient(timeout=DOWNLOAD_TIMEOUT, follow_redirects=True) as client,
            client.stream("GET", location) as response,
        ):
            if response.status_code != 200:
                raise DownloadFailed(f"HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_SIZE:
                    raise DownloadFailed("larger than the charger can hold")
            return bytes(body)
    except httpx.HTTPError as err:
        raise DownloadFailed(type(err).__name__) from err


def new_version(location: str, image: bytes) -> str:
    """The firmware version the image installs: its file name and a digest prefix."""
    name = PurePosixPath(urlsplit(location).path).stem or "firmware"
    return f"{name[:36]}-{hashlib.sha256(image).hexdigest()[:8]}"


def accept_with_request_id(charger: SimCharger, payload: dict[str, Any], message: str) -> Reply:
    """Accept a 1.6 SignedUpdateFirmware or a 2.0.1 UpdateFirmware; its statuses go out as
    ``message`` naming the request."""
    if payload["firmware"].get("signingCertificate") == INVALID:
        return Reply({"status": "InvalidCertificate"})
    job = FirmwareJob.of(payload, payload["firmware"], rich=True)
    request_id = int(payload["requestId"])

    async def notify(status: str) -> None:
        await charger.link.send_or_log(message, {"status": status, "requestId": request_id})

    return Reply({"status": "Accepted"}, then=lambda: run(charger, job, notify))


async def run(charger: SimCharger, job: FirmwareJob, notify: Notify) -> None:
    """The update from waiting to Installed (or the failure that ends it)."""
    log = charger.log.bind(firmware=job.location)
    wait = (job.retrieve_at - charger.clock.now()).total_seconds()
    if wait > 0:
        if job.rich:
            await notify("DownloadScheduled")
        await asyncio.sleep(min(wait, MAX_WAIT))
    await notify("Downloading")
    image: bytes | None = None
    for attempt in range(job.retries + 1):
        try:
            image = await download(job.location)
            break
        except DownloadFailed as err:
            log.info("sim.firmware.download_failed", attempt=attempt + 1, error=str(err))
            if attempt < job.retries:
                await asyncio.sleep(min(max(job.retry_interval, 0.0), MAX_RETRY_WAIT))
    if image is None:
        await notify("DownloadFailed")
        return
    await notify("Downloaded")
    if job.signature is not None:
        if job.signature == INVALID:
            await notify("InvalidSignature")
            return
        await notify("SignatureVerified")
    await notify("Installing")
    version = new_version(job.location, image)
    log.info("sim.firmware.installing", version=version, size=len(image))
    if job.rich:
        await notify("InstallRebooting")
    charger.config = replace(charger.config, firmware_version=version)
    await charger.reboot("Reboot", "FirmwareUpdate")
    try:
        async with asyncio.timeout(REBOOT_TIMEOUT):
            await charger.link.wait_offline()
            await charger.link.wait_online()
    except TimeoutError:  # it comes back later; the boot tells the new version
        log.warning("sim.firmware.not_back_online", version=version)
        return
    await notify("Installed")
