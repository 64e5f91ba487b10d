"""Log uploads of the simulated charger, as a real one does them: it answers the request
with a file name, says Uploading, PUTs the file (``location/filename``, as EVerest's
``curl -T`` does) with the retries asked for, then says Uploaded or that it failed.

The file is the charger's recent messages, one JSON line each; what was uploaded is kept
in :attr:`LogUploading.log_uploads` for tests and the demo."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

import httpx

from sim.charger.rpc import Reply

if TYPE_CHECKING:
    from sim.charger.core import SimCharger

RECENT: Final = 100  # messages in a log file
TIMEOUT: Final = 30.0


@dataclass(frozen=True, slots=True)
class Upload:
    url: str
    file_name: str
    content: bytes
    ok: bool


class LogUploading:
    """Mixed into both versions' charger: 1.6 GetDiagnostics is in its own module, the
    GetLog of 2.0.1 and of the 1.6 Security Whitepaper is the same message, here."""

    charger: SimCharger

    @cached_property
    def log_uploads(self) -> list[Upload]:
        return []

    def log_file(self, log_type: str) -> tuple[str, bytes]:
        """A file name and the content of a log of ``log_type``."""
        charger = self.charger
        kind = "security" if log_type == "SecurityLog" else "diagnostics"
        stamp = charger.clock.now().strftime("%Y%m%dT%H%M%SZ")
        lines = [
            json.dumps({"direction": e.direction, "action": e.action, "payload": e.payload})
            for e in charger.link.sent[-RECENT:]
        ]
        content = f"# {charger.id} {kind} log {stamp}\n" + "\n".join(lines) + "\n"
        return f"{kind}-{charger.id}-{stamp}.log"[:255], content.encode()

    async def upload_log(
        self, location: str, file_name: str, content: bytes, retries: int, interval: int
    ) -> bool:
        """PUT the file, trying ``retries`` more times ``interval`` seconds apart."""
        url = f"{location.rstrip('/')}/{quote(file_name)}"
        for attempt in range(retries + 1):
            if attempt:
                await asyncio.sleep(interval)
            try:
                async with httpx.AsyncClient(timeout=TIMEOUT) as client:
                    answer = await client.put(url, content=content)
            except httpx.HTTPError as err:
                self.charger.log.info("sim.charger.upload_failed", error=str(err))
                continue
            if answer.is_success:
                self.log_uploads.append(Upload(url, file_name, content, True))
                return True
            self.charger.log.info("sim.charger.upload_refused", status=answer.status_code)
        self.log_uploads.append(Upload(url, file_name, content, False))
        return False

    async def on_GetLog(self, payload: dict[str, Any]) -> Reply:
        request_id = payload["requestId"]
        file_name, content = self.log_file(payload["logType"])
        link = self.charger.link

        async def upload() -> None:
            status: dict[str, Any] = {"status": "Uploading", "requestId": request_id}
            await link.send_or_log("LogStatusNotification", status)
            ok = await self.upload_log(
                payload["log"]["remoteLocation"], file_name, content,
                min(payload.get("retries", 0), 5), payload.get("retryInterval", 1),
            )  # fmt: skip
            status["status"] = "Uploaded" if ok else "UploadFailure"
            await link.send_or_log("LogStatusNotification", status)

        return Reply({"status": "Accepted", "filename": file_name}, then=upload)
