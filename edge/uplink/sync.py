"""The edge's link to central: events up from the outbox, commands down.

The edge opens every connection (sites sit behind NAT):

* **Uploader**: reads the outbox after the last sequence central acknowledged, posts
  batches (gzip) in order, and records central's answer (``BatchAck.last_sequence``) in
  the store. A crash anywhere only means a batch is sent again, which central ignores
  (idempotent by event id). Network errors and 5xx back off exponentially with jitter;
  a 429 or 503 with ``Retry-After`` (central shedding load) waits as long as it says,
  plus jitter; a 409 sequence gap re-reads from where central says it stands.
* **Downlink**: long-polls central for commands, stores each one before acknowledging it
  (so a command is neither lost nor run twice), then a worker carries them out in order
  (``edge.uplink.commands``); results go up as ``command.result`` events.

With central down the site keeps working on its own; the backlog is a metric, part of
``/healthz``, and logged loudly as it grows towards ``central.retention_events``.
"""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

import httpx
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from common.backoff import Backoff
from contract.envelope import site_source
from contract.sync_api import COMMANDS_PATH, EVENTS_PATH, STATUS_PATH, BatchAck, CommandList
from edge.config import SiteConfig
from edge.storage.sqlite import SqliteStore, Unit
from edge.storage.sync_sql import (
    StoredCommand,
    batch_json,
    continue_after,
    fence_restored,
    outbox_state,
    prune_acked,
    save_acked,
    save_received,
    unfenced_restore,
    unfinished_commands,
)
from edge.uplink.commands import CloudCommandRunner

log = structlog.get_logger(__name__)
Clock = Callable[[], datetime]

LONG_POLL: Final = 25.0
KEEP_ACKED: Final = 10_000  # acknowledged events kept locally, for the technician
BACKLOG_WARNINGS: Final = (0.5, 0.8, 0.95)
GZIP_ABOVE: Final = 2048
BUSY_CAP_S: Final = 300.0  # the longest Retry-After obeyed


class SyncMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.backlog = Gauge(
            "evpark_sync_backlog_events",
            "Events not yet acknowledged by central",
            registry=registry,
        )
        self.uploaded = Counter(
            "evpark_sync_events_uploaded", "Events central acknowledged", registry=registry
        )
        self.last_upload = Gauge(
            "evpark_sync_last_upload_timestamp_seconds",
            "Unix time of the last batch central acknowledged",
            registry=registry,
        )
        self.errors = Counter(
            "evpark_sync_errors", "Failed exchanges with central", ["kind"], registry=registry
        )
        self.commands = Counter(
            "evpark_sync_commands", "Commands from central by outcome", ["type", "status"],
            registry=registry,
        )  # fmt: skip


class CentralSync:
    def __init__(
        self,
        config: SiteConfig,
        store: SqliteStore,
        runner: CloudCommandRunner,
        registry: CollectorRegistry,
        clock: Clock,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        central = config.central
        assert central.url is not None, "no central URL configured"
        self.config = config
        self.store = store
        self.runner = runner
        self.clock = clock
        self.metrics = SyncMetrics(registry)
        self.source = site_source(config.site.id)
        self.acked = 0
        self.backlog = 0
        self._last_written = 0
        self._fenced = False
        self.last_upload: float | None = None
        self.online = False
        self._warned = 0.0
        self._commands: asyncio.Queue[StoredCommand] = asyncio.Queue()
        self._client = httpx.AsyncClient(
            base_url=central.url.rstrip("/"),
            headers={"Authorization": f"Bearer {central.site_key or ''}"},
            timeout=httpx.Timeout(10.0, read=LONG_POLL + 10),
            transport=transport,
        )

    async def run(self) -> None:
        log.info("sync.starting", central=self.config.central.url)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._upload_loop(), name="sync-upload")
                group.create_task(self._command_loop(), name="sync-commands")
                group.create_task(self._command_worker(), name="sync-worker")
        finally:
            await self._client.aclose()

    def health(self) -> dict[str, Any]:
        return {
            "central": self.config.central.url,
            "online": self.online,
            "backlog": self.backlog,
            "acked_sequence": self.acked,
            "last_upload": self.last_upload,
        }

    # --- events up ---------------------------------------------------------------------

    async def _upload_loop(self) -> None:
        backoff = Backoff(base=0.5, cap=30.0)
        state = await self.store.read(outbox_state)
        self.acked = state.acked
        central = self.config.central
        while True:
            try:
                more = await self._upload_once(central.batch_size)
            except _CentralBusy as busy:
                log.info("sync.upload.central_busy", status=busy.status, retry_after=busy.wait)
                self.metrics.errors.labels("busy").inc()
                await asyncio.sleep(busy.wait + backoff.next_delay())
                continue
            except httpx.HTTPError as err:
                self._offline("upload", err)
                await asyncio.sleep(backoff.next_delay())
                continue
            except _CentralRefused as err:
                log.error("sync.upload.refused", status=err.status, detail=err.detail[:200])
                self.metrics.errors.labels("refused").inc()
                await asyncio.sleep(min(300.0, backoff.next_delay() * 4))
                continue
            except ValueError as err:  # an answer that is not central's (a proxy's page)
                log.error("sync.upload.bad_answer", error=str(err)[:200])
                self.metrics.errors.labels("bad_answer").inc()
                await asyncio.sleep(backoff.next_delay())
                continue
            backoff.reset()
            if not more:
                await asyncio.sleep(central.batch_interval)

    async def _upload_once(self, limit: int) -> bool:
        """Send the next batch; True if a full batch went (more may be waiting)."""
        if not self._fenced:  # once a start: a restore happens while the daemon is stopped
            restored_last = await self.store.read(unfenced_restore)
            if restored_last is not None:
                await self._fence_restore(restored_last)
            self._fenced = True
        body, count, _ = await self.store.read(
            lambda c: batch_json(c, self.source, self.acked, limit)
        )
        state = await self.store.read(outbox_state)
        self._last_written = state.last
        self._track_backlog(state.last - self.acked)
        if count == 0:
            if not self.online:
                await self._check_status()
            return False
        headers = {"Content-Type": "application/json"}
        if len(body) > GZIP_ABOVE:
            body = gzip.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        reply = await self._client.post(EVENTS_PATH, content=body, headers=headers)
        if reply.status_code == 409 and "expected_sequence" in reply.text:
            expected = int(reply.json()["expected_sequence"])
            await self._gap(expected)
            return True
        wait = busy_wait(reply.status_code, reply.headers.get("retry-after"))
        if wait is not None:
            raise _CentralBusy(reply.status_code, wait)
        if reply.status_code >= 500:
            raise httpx.HTTPStatusError("central failed", request=reply.request, response=reply)
        if reply.status_code != 200:
            raise _CentralRefused(reply.status_code, reply.text)
        ack = BatchAck.model_validate_json(reply.content)
        await self._acknowledged(ack.last_sequence)
        self.metrics.uploaded.inc(ack.stored)
        self._online()
        log.debug("sync.upload.batch", events=count, stored=ack.stored, last=ack.last_sequence)
        return count == limit

    async def _check_status(self) -> None:
        held = await self._central_holds()
        if held > self.acked:
            await self._acknowledged(held)

    async def _central_holds(self) -> int:
        """The last sequence central holds of this site."""
        reply = await self._client.get(STATUS_PATH)
        if reply.status_code >= 500:
            raise httpx.HTTPStatusError("central failed", request=reply.request, response=reply)
        if reply.status_code != 200:
            raise _CentralRefused(reply.status_code, reply.text)
        self._online()
        return int(reply.json().get("last_sequence", 0))

    async def _fence_restore(self, restored_last: int) -> None:
        """After a restore that did not ask central (``--offline``): ask it now, before
        anything is sent, and move the events written since the restore past what it
        holds (they would claim sequences central holds under other events)."""
        held = await self._central_holds()
        unit = Unit()
        fence_restored(unit, restored_last, held)
        await self.store.write(unit)
        log.warning("sync.restore.fenced", central_has=held, restored_last=restored_last)
        if held > self.acked:
            await self._acknowledged(held)

    async def _gap(self, expected: int) -> None:
        if expected - 1 > self.acked:
            # central holds more than we knew (our last ack was lost): skip ahead
            log.info("sync.upload.ahead", central_has=expected - 1, acked=self.acked)
            await self._acknowledged(expected - 1)
        else:
            # central lost events we still have: send them again from there
            log.error("sync.upload.central_behind", central_has=expected - 1, acked=self.acked)
            self.acked = expected - 1

    async def _acknowledged(self, sequence: int) -> None:
        if sequence <= self.acked:
            return
        unit = Unit()
        state = await self.store.read(outbox_state)
        if sequence > state.last:
            # Central holds events this database never wrote: it was restored from an
            # older backup without asking central (`evpark edge restore --offline`). Number
            # the next events after central's, or they would be taken for those.
            log.error("sync.central_ahead_of_site", central_has=sequence, site_last=state.last)
            continue_after(unit, sequence)
        save_acked(unit, sequence)
        prune_acked(unit, sequence, KEEP_ACKED)
        await self.store.write(unit)
        self.acked = sequence
        self._track_backlog(max(0, self._last_written - sequence))
        self.last_upload = time.time()
        self.metrics.last_upload.set(self.last_upload)

    def _track_backlog(self, backlog: int) -> None:
        self.backlog = backlog
        self.metrics.backlog.set(backlog)
        limit = self.config.central.retention_events
        share = backlog / limit
        crossed = max((w for w in BACKLOG_WARNINGS if share >= w), default=0.0)
        if crossed > self._warned:
            log.warning(
                "sync.backlog.growing", backlog=backlog, limit=limit, share=round(share, 2),
                hint="central is unreachable or refuses the site; nothing is dropped, "
                "but the disk fills",
            )  # fmt: skip
        self._warned = crossed

    def _online(self) -> None:
        if not self.online:
            log.info("sync.central.reachable", central=self.config.central.url)
        self.online = True

    def _offline(self, what: str, err: Exception) -> None:
        if self.online:
            log.warning("sync.central.unreachable", during=what, error=str(err)[:200])
        self.online = False
        self.metrics.errors.labels(type(err).__name__).inc()

    # --- commands down -----------------------------------------------------------------

    async def _command_loop(self) -> None:
        for command in await self.store.read(unfinished_commands):
            self._commands.put_nowait(command)
        backoff = Backoff(base=0.5, cap=30.0)
        while True:
            try:
                reply = await self._client.get(COMMANDS_PATH, params={"wait": LONG_POLL})
                if reply.status_code != 200:
                    if reply.status_code < 500:
                        raise _CentralRefused(reply.status_code, reply.text)
                    raise httpx.HTTPStatusError(
                        "central failed", request=reply.request, response=reply
                    )
                listed = CommandList.model_validate_json(reply.content)
                await self._receive([c.model_dump(mode="json") for c in listed.commands])
                backoff.reset()
            except httpx.HTTPError as err:
                self._offline("commands", err)
                await asyncio.sleep(backoff.next_delay())
            except _CentralRefused as err:
                log.error("sync.commands.refused", status=err.status, detail=err.detail[:200])
                await asyncio.sleep(min(300.0, backoff.next_delay() * 4))
            except ValueError as err:  # an answer that is not central's
                log.error("sync.commands.bad_answer", error=str(err)[:200])
                await asyncio.sleep(backoff.next_delay())

    async def _receive(self, commands: list[dict[str, Any]]) -> None:
        if not commands:
            return
        unit = Unit()
        now = self.clock()
        for command in commands:
            save_received(unit, command, now)
        await self.store.write(unit)  # stored before central may forget them
        stored = {c.id: c for c in await self.store.read(unfinished_commands)}
        for command in commands:
            reply = await self._client.post(f"{COMMANDS_PATH}/{command['id']}/ack")
            if reply.status_code not in (204, 404):
                log.warning(
                    "sync.commands.ack_failed", command=command["id"], status=reply.status_code
                )
            known = stored.pop(command["id"], None)
            if known is not None:
                self._commands.put_nowait(known)

    async def _command_worker(self) -> None:
        """Commands in the order received; one that waits for a charger's session (a
        remote start) runs beside the queue, so a reservation is not held up behind it."""
        running: set[str] = set()
        beside: set[asyncio.Task[None]] = set()  # held here: the loop keeps weak references
        try:
            while True:
                command = await self._commands.get()
                if command.id in running:
                    continue
                running.add(command.id)
                if self.runner.waits_long(command):
                    task = asyncio.create_task(self._run(command), name=f"command-{command.id}")
                    beside.add(task)
                    task.add_done_callback(beside.discard)
                else:
                    await self._run(command)
        finally:  # unfinished ones run again after a restart (they are still "received")
            for task in beside:
                task.cancel()

    async def _run(self, command: StoredCommand) -> None:
        result = await self.runner.run(command)
        self.metrics.commands.labels(command.type, result.status).inc()


def busy_wait(status: int, retry_after: str | None) -> float | None:
    """Seconds central asks to wait (429/503 with ``Retry-After`` in seconds), capped;
    None if it did not ask."""
    if status not in (429, 503) or retry_after is None:
        return None
    try:
        seconds = float(retry_after)
    except ValueError:
        return None  # an HTTP date: not one central sends
    return min(max(seconds, 0.0), BUSY_CAP_S)


class _CentralBusy(Exception):
    def __init__(self, status: int, wait: float) -> None:
        super().__init__(f"{status}: retry after {wait:g} s")
        self.status = status
        self.wait = wait


class _CentralRefused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
