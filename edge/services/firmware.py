"""Chargers' firmware updates as the site follows them: request ids, the current update of
each charger (kept on :attr:`edge.core.model.Charger.firmware_update`) and its row.

The moves are :mod:`edge.core.firmware`'s; this keeps them in memory and in the store.
Status notifications and boots are written in the site's own unit (the charger event and
the event for central commit with them); an accepted request is written here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog

from edge.core import commands as cmd
from edge.core import firmware as fw
from edge.core.ids import ChargerId
from edge.core.model import Charger
from edge.services.changes import SiteChange
from edge.storage import firmware_sql as sql
from edge.storage import site_sql as repo
from edge.storage.sqlite import SqliteStore, Unit

log = structlog.get_logger(__name__)
ACCEPTED = frozenset({"Accepted", "AcceptedCanceled"})  # AcceptedCanceled: replaces one


class FirmwareUpdates:
    def __init__(
        self,
        store: SqliteStore,
        clock: Callable[[], datetime],
        charger: Callable[[ChargerId], Charger],
        notify: Callable[[SiteChange], None],
    ) -> None:
        self.store = store
        self.clock = clock
        self._charger = charger
        self._notify = notify
        self._last_ids: dict[str, int] = {}

    async def load(self, chargers: dict[ChargerId, Charger]) -> None:
        current = await self.store.read(sql.current_updates)
        self._last_ids = await self.store.read(sql.last_request_ids)
        for charger_id, update in current.items():
            charger = chargers.get(ChargerId(charger_id))
            if charger is not None:
                charger.firmware_update = update

    def command(self, charger_id: ChargerId, order: fw.FirmwareOrder) -> cmd.UpdateFirmware:
        """The UpdateFirmware for ``order`` with a request id of its own (unique per
        charger, also for requests that were refused or not answered)."""
        request_id = fw.next_request_id(self._last_ids.get(charger_id, 0))
        self._last_ids[charger_id] = request_id
        return cmd.UpdateFirmware(
            location=order.location,
            retrieve_at=order.retrieve_at or self.clock(),
            request_id=request_id,
            retries=order.retries,
            retry_interval=order.retry_interval,
            signature=order.signature,
            signing_certificate=order.signing_certificate,
        )

    async def answered(
        self, charger_id: ChargerId, command: cmd.UpdateFirmware, answer: str
    ) -> fw.FirmwareUpdate | None:
        """The charger answered ``command``: an accepted update becomes its current one
        (and None for any other answer, which changes nothing)."""
        if answer not in ACCEPTED:
            log.info("firmware.update.refused", charger=charger_id, answer=answer)
            return None
        charger = self._charger(charger_id)
        now = self.clock()
        update = fw.requested(
            charger_id, command.request_id, command.location, signed=command.signed,
            answer=answer, at=now, from_version=charger.info.firmware,
            retrieve_at=command.retrieve_at,
        )  # fmt: skip
        charger.firmware_update = update
        unit = Unit()
        sql.save_update(unit, update)
        repo.add_charger_event(
            unit, charger_id, now, "firmware_update",
            {"request_id": update.request_id, "location": update.location, "answer": answer},
        )  # fmt: skip
        await self.store.write(unit)
        self._notify(SiteChange("charger", charger_id))
        log.info("firmware.update.accepted", charger=charger_id, request=update.request_id)
        return update

    def status(
        self, unit: Unit, charger: Charger, status: str, request_id: int | None, at: datetime
    ) -> None:
        """A status notification, into ``unit`` if it moves the current update."""
        self._move(unit, charger, lambda u: fw.on_status(u, status, request_id, at))

    def booted(self, unit: Unit, charger: Charger, at: datetime) -> None:
        """A BootNotification (``charger.info`` already the booted one), into ``unit``."""
        self._move(unit, charger, lambda u: fw.on_boot(u, charger.info.firmware, at))

    def _move(
        self,
        unit: Unit,
        charger: Charger,
        move: Callable[[fw.FirmwareUpdate], fw.FirmwareUpdate],
    ) -> None:
        current = charger.firmware_update
        if current is None:
            return
        moved = move(current)
        if moved is not current:
            charger.firmware_update = moved
            sql.save_update(unit, moved)
            log.info(
                "firmware.update.moved", charger=charger.id, request=moved.request_id,
                state=moved.state.value, status=moved.status,
            )  # fmt: skip
