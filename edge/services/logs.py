"""Log and diagnostics requests over the store: created with their upload token, the
charger's answer and status words recorded, the uploaded file stored and registered."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import structlog

from edge.config import HttpSection, SiteConfig
from edge.core import commands as cmd
from edge.core import logs
from edge.core.ids import ChargerId
from edge.core.paging import Key
from edge.storage import logs_sql as sql
from edge.storage.sqlite import SqliteStore, Unit

log = structlog.get_logger(__name__)
WILDCARDS = frozenset({"", "0.0.0.0", "::", "[::]"})


class NoPublicUrl(Exception):
    """The edge does not know the address chargers reach it at."""


def public_base(http: HttpSection, port: int) -> str | None:
    """The edge's address as chargers reach it: ``[http] public_url``, else the HTTP
    server's own address unless that is a wildcard (which address would it be?)."""
    if http.public_url:
        return http.public_url.rstrip("/")
    if http.host in WILDCARDS:
        return None
    host = f"[{http.host}]" if ":" in http.host else http.host
    return f"http://{host}:{port}"


class LogRequests:
    def __init__(
        self, config: SiteConfig, store: SqliteStore, clock: Callable[[], datetime]
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self._last_id: int | None = None
        self._ids = asyncio.Lock()
        # the edge's address for chargers: set by the daemon once its HTTP port is known
        self.base: Callable[[], str | None] = lambda: None

    @property
    def data_dir(self) -> Path:
        return self.config.storage.data_dir

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    async def create(
        self, charger_id: ChargerId, log_type: logs.LogType
    ) -> tuple[logs.LogRequest, str]:
        """A new request and its upload token (128 bits; only its hash is kept)."""
        token = secrets.token_urlsafe(16)
        now = self.clock()
        async with self._ids:
            if self._last_id is None:
                self._last_id = await self.store.read(sql.last_id)
            self._last_id += 1
            request = logs.LogRequest(
                id=self._last_id,
                charger_id=charger_id,
                log_type=log_type,
                token_hash=logs.token_hash(token),
                created_at=now,
                expires_at=now + timedelta(seconds=self.config.diagnostics.token_ttl),
            )
            unit = Unit()
            sql.add_request(unit, request)
            await self.store.write(unit)
        log.info("logs.request.created", charger=charger_id, request=request.id, log_type=log_type)
        return request, token

    async def start(
        self,
        charger_id: ChargerId,
        log_type: logs.LogType,
        since: datetime | None = None,
        until: datetime | None = None,
        retries: int | None = None,
        retry_interval: int | None = None,
    ) -> tuple[logs.LogRequest, cmd.GetLog]:
        """A new request and the command that asks the charger for it; the caller sends
        it and records the answer (:meth:`answered`, or ``NOT_SENT``)."""
        root = self.base()
        if root is None:
            raise NoPublicUrl("set [http] public_url: the address chargers reach this edge at")
        request, token = await self.create(charger_id, log_type)
        location = f"{root}{logs.UPLOAD_PREFIX}{token}"
        command = cmd.GetLog(log_type, request.id, location, since, until, retries, retry_interval)
        return request, command

    async def answered(self, request: logs.LogRequest, answer: str, file_name: str | None) -> None:
        unit = Unit()
        sql.set_answer(unit, logs.answered(request, answer, file_name))
        await self.store.write(unit)

    async def status(self, charger_id: ChargerId, status: str, request_id: int | None) -> None:
        """A status word from the charger, on the request it names or (1.6 diagnostics)
        on its latest open diagnostics request; a request it does not know is ignored."""
        now = self.clock()
        if request_id is not None:
            found = await self.store.read(lambda c: sql.by_id(c, charger_id, request_id))
        else:
            recent = await self.store.read(lambda c: sql.of_charger(c, charger_id, 20))
            found = logs.latest_open(recent, "DiagnosticsLog", now)
        if found is None:
            log.info("logs.status.unmatched", charger=charger_id, status=status, request=request_id)
            return
        unit = Unit()
        sql.add_status(unit, found.id, logs.StatusChange(status, now))
        await self.store.write(unit)

    async def by_token(self, token: str) -> logs.LogRequest | None:
        hashed = logs.token_hash(token)
        return await self.store.read(lambda c: sql.by_token(c, hashed))

    async def get(self, charger_id: str, request_id: int) -> logs.LogRequest | None:
        return await self.store.read(lambda c: sql.by_id(c, charger_id, request_id))

    async def of_charger(
        self, charger_id: str, limit: int, after: Key | None = None
    ) -> list[logs.LogRequest]:
        return await self.store.read(lambda c: sql.of_charger(c, charger_id, limit, after))

    async def file_received(self, request: logs.LogRequest, received: logs.ReceivedFile) -> None:
        unit = Unit()
        sql.add_file(unit, request.id, received)
        await self.store.write(unit)
        log.info("logs.file.received", charger=request.charger_id, request=request.id,
                 name=received.name, size=received.size)  # fmt: skip
