"""Provisioning as the daemon runs it: each charger's last known configuration and the
outcome of applying the site's keys, in memory and in the store, and the 2.0.1
NotifyReport parts a configuration read is waiting for.

The decisions are :mod:`edge.core.provisioning`'s; the OCPP calls are
:mod:`edge.ocpp.provisioning`'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Final

import structlog

from edge.config import SiteConfig
from edge.core import provisioning as core
from edge.core.ids import ChargerId
from edge.core.model import BootStatus
from edge.storage import provisioning_sql as sql
from edge.storage import site_sql as repo
from edge.storage.sqlite import SqliteStore, Unit

log = structlog.get_logger(__name__)
# A report is kept up to so many parts and variables; what comes beyond is dropped, and
# the read fails at its timeout (a faulty or hostile station must not fill the memory).
MAX_REPORT_PARTS: Final = 1000
MAX_REPORT_ENTRIES: Final = 20_000


class ReportParts:
    """The parts of one 2.0.1 report (NotifyReport by requestId), in seqNo order."""

    def __init__(self) -> None:
        self.parts: dict[int, list[dict[str, Any]]] = {}
        self.last: int | None = None
        self.entries = 0
        self.complete: asyncio.Future[list[dict[str, Any]]] = (
            asyncio.get_running_loop().create_future()
        )

    def add(self, seq_no: int, tbc: bool, data: list[dict[str, Any]]) -> None:
        self.entries += len(data)
        if (
            self.complete.done()
            or len(self.parts) >= MAX_REPORT_PARTS
            or self.entries > MAX_REPORT_ENTRIES
        ):
            return
        self.parts[seq_no] = data
        if not tbc:
            self.last = seq_no
        if self.last is not None and all(n in self.parts for n in range(self.last + 1)):
            self.complete.set_result([d for n in range(self.last + 1) for d in self.parts[n]])


class Provisioning:
    def __init__(
        self, config: SiteConfig, store: SqliteStore, clock: Callable[[], datetime]
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self._outcomes: dict[ChargerId, core.Outcome | None] = {}
        self._reports: dict[tuple[ChargerId, int], ReportParts] = {}

    async def last(self, charger_id: ChargerId) -> core.Outcome | None:
        if charger_id not in self._outcomes:
            self._outcomes[charger_id] = await self.store.read(
                lambda c: sql.load_outcome(c, charger_id)
            )
        return self._outcomes[charger_id]

    async def boot_status(self, charger_id: ChargerId, version: str) -> BootStatus:
        setup = self.config.charger_setup(charger_id)
        return core.boot_status(setup, version, await self.last(charger_id))

    async def needs_run(self, charger_id: ChargerId, version: str) -> bool:
        setup = self.config.charger_setup(charger_id)
        return core.needs_run(setup, version, await self.last(charger_id))

    # --- 2.0.1 reports ------------------------------------------------------------------

    @contextmanager
    def expect_report(self, charger_id: ChargerId, request_id: int) -> Iterator[ReportParts]:
        parts = ReportParts()
        self._reports[(charger_id, request_id)] = parts
        try:
            yield parts
        finally:
            del self._reports[(charger_id, request_id)]

    async def notify_report(self, charger_id: ChargerId, data: dict[str, Any]) -> None:
        """A NotifyReport: a part of a read the site waits for, or kept as a charger event."""
        parts = self._reports.get((charger_id, data["requestId"]))
        if parts is not None:
            parts.add(data["seqNo"], bool(data.get("tbc", False)), data.get("reportData", []))
            return
        unit = Unit()
        repo.add_charger_event(unit, charger_id, self.clock(), "notify_report", data)
        await self.store.write(unit)

    # --- storing ------------------------------------------------------------------------

    async def save_read(
        self, charger_id: ChargerId, entries: list[sql.ConfigEntry], source: str
    ) -> None:
        unit = Unit()
        sql.save_configuration(unit, charger_id, entries, source, self.clock())
        await self.store.write(unit)

    async def finish(
        self, charger_id: ChargerId, outcome: core.Outcome, values: dict[str, str]
    ) -> None:
        """Keep how provisioning went (and the values the charger took), with a charger
        event for the technician."""
        now = self.clock()
        unit = Unit()
        sql.save_values(unit, charger_id, values)
        sql.save_outcome(unit, charger_id, outcome, now)
        repo.add_charger_event(unit, charger_id, now, "provisioning", outcome_document(outcome))
        await self.store.write(unit)
        self._outcomes[charger_id] = outcome
        if outcome.state is core.State.DONE:
            log.info("ocpp.provisioning.done", charger=charger_id, applied=list(outcome.applied),
                     pending_reboot=list(outcome.pending_reboot))  # fmt: skip
        else:
            log.warning("ocpp.provisioning." + outcome.state.value, charger=charger_id,
                        failed=[k for k, _ in outcome.failed], reason=outcome.reason)  # fmt: skip

    async def stored(self, charger_id: ChargerId) -> sql.StoredConfiguration:
        return await self.store.read(lambda c: sql.load_configuration(c, charger_id))

    async def document(self, charger_id: ChargerId, version: str | None) -> dict[str, Any]:
        """The configuration last read from the charger and how applying the site's keys
        went, as the API and the UI show it (``read_at`` None: never read)."""
        stored = await self.stored(charger_id)
        listed = "keys" if version == "ocpp1.6" else "variables"
        return {
            "charger_id": charger_id,
            "read_at": stored.read_at,
            "source": stored.source,
            "provisioning": outcome_document(stored.outcome),
            listed: [entry.document() for entry in stored.entries],
        }


def outcome_document(outcome: core.Outcome | None) -> dict[str, Any]:
    if outcome is None:
        return {"state": core.State.NONE.value, "applied": [], "failed": [], "pending_reboot": []}
    shown: dict[str, Any] = {
        "state": outcome.state.value,
        "applied": list(outcome.applied),
        "failed": [{"key": key, "status": status} for key, status in outcome.failed],
        "pending_reboot": list(outcome.pending_reboot),
    }
    if outcome.reason is not None:
        shown["reason"] = outcome.reason
    return shown
