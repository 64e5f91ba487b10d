"""The site: live state of chargers and sessions, kept in memory and in the store.

Both OCPP handler modules call these methods with version-neutral values. Each method
applies one change to the in-memory state, writes it (and the events it causes for
central) as one unit, and returns once that unit is committed: a charger never gets an
answer for something the site has not stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from contract.events import ChargerStatus, ChargingCompleted, ChargingProgress, ChargingStarted
from edge.config import SiteConfig
from edge.core.ids import ChargerId, IdTag, SessionId, uuid7
from edge.core.meter import MeterReading
from edge.core.model import (
    AuthorizationStatus,
    BootStatus,
    Charger,
    ChargerInfo,
    ConnectorStatus,
    Evse,
    Session,
    SessionStatus,
)
from edge.core.sessions import ActiveSessions
from edge.storage import site_sql as repo
from edge.storage.sqlite import SqliteStore, Unit

log = structlog.get_logger(__name__)
Clock = Callable[[], datetime]

# A -1 transaction id is what chargers send when they never got one from us.
UNKNOWN_TRANSACTION = "-1"


@dataclass(frozen=True, slots=True)
class SiteChange:
    """What changed, for live views and the slot model (never persisted as such)."""

    kind: str  # "charger", "evse", "session" (started or ended), "meter" (new readings)
    charger_id: ChargerId
    evse_id: int | None = None
    session_id: SessionId | None = None


Observer = Callable[[SiteChange], None]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Site:
    def __init__(self, config: SiteConfig, store: SqliteStore, clock: Clock = utc_now) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.chargers: dict[ChargerId, Charger] = {}
        self.active = ActiveSessions()
        self.id_tags: dict[IdTag, repo.IdTagEntry] = {}
        self._next_transaction_id = 1
        self._observers: list[Observer] = []
        self._progress_every = timedelta(seconds=config.central.progress_interval)

    @property
    def site_id(self) -> str:
        return self.config.site.id

    @property
    def heartbeat_interval(self) -> int:
        return self.config.ocpp.heartbeat_interval

    # --- start-up ----------------------------------------------------------------------

    async def load(self) -> None:
        snap = await self.store.read(repo.load_snapshot)
        self.chargers = snap.chargers
        for charger in self.chargers.values():
            charger.connected = False
        self.active = ActiveSessions(snap.active_sessions)
        self.id_tags = snap.id_tags
        self._next_transaction_id = snap.last_numeric_transaction_id + 1
        unit = Unit()
        for tag in self.config.authorization.id_tags:
            entry = self.id_tags.get(IdTag(tag))
            if entry is None or entry.source == "config":
                self.id_tags[IdTag(tag)] = repo.IdTagEntry(
                    AuthorizationStatus.ACCEPTED, None, "config"
                )
                repo.save_id_tag(unit, IdTag(tag), AuthorizationStatus.ACCEPTED, None, "config")
        await self.store.write(unit)
        log.info(
            "site.loaded",
            chargers=len(self.chargers),
            active_sessions=len(self.active),
            id_tags=len(self.id_tags),
        )

    def observe(self, observer: Observer) -> None:
        self._observers.append(observer)

    def _notify(self, change: SiteChange) -> None:
        for observer in self._observers:
            observer(change)

    # --- connections -------------------------------------------------------------------

    def forget(self, charger_id: ChargerId) -> None:
        """Drop a charger removed from the site database (`evpark chargers remove`)."""
        if self.chargers.pop(charger_id, None) is not None:
            log.info("site.charger.forgotten", site=self.config.site.id, charger=charger_id)
            self._notify(SiteChange("charger", charger_id))

    async def connected(self, charger_id: ChargerId, version: str) -> Charger:
        now = self.clock()
        charger = self.chargers.get(charger_id)
        if charger is None:
            charger = Charger(
                id=charger_id,
                first_seen=now,
                auto_registered=self.config.charger(charger_id) is None,
            )
            self.chargers[charger_id] = charger
        charger.version = version
        unit = Unit()
        repo.save_charger(unit, charger)
        await self._connection_changed(unit, charger, now, online=True, version=version)
        return charger

    async def disconnected(self, charger_id: ChargerId, reason: str) -> None:
        charger = self.chargers.get(charger_id)
        if charger is None:
            return
        now = self.clock()
        unit = Unit()
        await self._connection_changed(unit, charger, now, online=False, reason=reason)

    async def _connection_changed(
        self, unit: Unit, charger: Charger, now: datetime, online: bool, **details: str
    ) -> None:
        charger.connected = online
        charger.last_seen = now
        repo.touch_charger(unit, charger)
        status = "connected" if online else "disconnected"
        repo.add_charger_event(unit, charger.id, now, status, details)
        repo.add_outbox_event(
            unit, ChargerStatus(charger_id=charger.id, status=status, online=online),
            charger.id, now,
        )  # fmt: skip
        await self.store.write(unit)
        self._notify(SiteChange("charger", charger.id))

    def seen(self, charger_id: ChargerId) -> None:
        """Any message counts as a sign of life (persisted with the next write)."""
        charger = self.chargers.get(charger_id)
        if charger is not None:
            charger.last_seen = self.clock()

    # --- boot, heartbeat, status -------------------------------------------------------

    async def boot(self, charger_id: ChargerId, info: ChargerInfo, reason: str) -> BootStatus:
        charger = self._charger(charger_id)
        now = self.clock()
        charger.info = info
        charger.last_boot = now
        charger.last_seen = now
        charger.boot_status = BootStatus.ACCEPTED
        unit = Unit()
        repo.save_charger(unit, charger)
        repo.add_charger_event(
            unit, charger_id, now, "boot",
            {"vendor": info.vendor, "model": info.model, "serial": info.serial,
             "firmware": info.firmware, "reason": reason},
        )  # fmt: skip
        await self.store.write(unit)
        self._notify(SiteChange("charger", charger_id))
        log.info("ocpp.boot.accepted", charger=charger_id, vendor=info.vendor, model=info.model)
        return BootStatus.ACCEPTED

    async def heartbeat(self, charger_id: ChargerId) -> datetime:
        charger = self._charger(charger_id)
        charger.last_seen = self.clock()
        unit = Unit()
        repo.touch_charger(unit, charger)
        await self.store.write(unit)
        return charger.last_seen

    async def connector_status(
        self,
        charger_id: ChargerId,
        evse_id: int,
        connector_id: int,
        status: ConnectorStatus,
        error_code: str | None = None,
        info: str | None = None,
        at: datetime | None = None,
    ) -> None:
        charger = self._charger(charger_id)
        evse = charger.evse(evse_id, connector_id)
        changed = evse.status is not status or evse.error_code != error_code
        evse.connector_id = connector_id
        evse.status = status
        evse.error_code = error_code
        evse.info = info
        evse.updated_at = at or self.clock()
        unit = Unit()
        repo.save_evse(unit, charger_id, evse)
        if changed:
            repo.add_outbox_event(
                unit,
                ChargerStatus(
                    charger_id=charger_id, evse_id=evse_id, connector_id=connector_id,
                    status=status.value, error_code=error_code, online=charger.connected,
                ),
                f"{charger_id}/{evse_id}", evse.updated_at,
            )  # fmt: skip
        await self.store.write(unit)
        self._notify(SiteChange("evse", charger_id, evse_id))

    async def charging_state(
        self, charger_id: ChargerId, evse_id: int, status: ConnectorStatus
    ) -> None:
        """2.0.1 reports the charging state with transactions, not with StatusNotification."""
        evse = self._charger(charger_id).evses.get(evse_id)
        if evse is None or evse.status is not status:
            connector = evse.connector_id if evse else 1
            await self.connector_status(charger_id, evse_id, connector, status)

    async def record_event(self, charger_id: ChargerId, kind: str, data: dict[str, Any]) -> None:
        """Messages kept for the technician: firmware, diagnostics, logs, security, reports."""
        unit = Unit()
        repo.add_charger_event(unit, charger_id, self.clock(), kind, data)
        await self.store.write(unit)

    # --- authorization -----------------------------------------------------------------

    def authorize(self, id_tag: str) -> AuthorizationStatus:
        if self.config.authorization.allow_any_id_tag:
            return AuthorizationStatus.ACCEPTED
        entry = self.id_tags.get(IdTag(id_tag))
        if entry is None:
            return AuthorizationStatus.INVALID
        if entry.expires_at is not None and entry.expires_at <= self.clock():
            return AuthorizationStatus.EXPIRED
        return entry.status

    def update_id_tags(
        self, unit: Unit, tags: list[tuple[str, AuthorizationStatus, datetime | None]], full: bool
    ) -> int:
        """Central's id tag list (the local authorization cache); ``full`` replaces it.

        Tags from the site config stay as they are. Written into ``unit``: the caller
        commits it with the command's result.
        """
        listed = {IdTag(t) for t, _, _ in tags}
        if full:
            for known, entry in list(self.id_tags.items()):
                if entry.source == "central" and known not in listed:
                    invalid = repo.IdTagEntry(AuthorizationStatus.INVALID, None, "central")
                    self.id_tags[known] = invalid
                    repo.save_id_tag(unit, known, AuthorizationStatus.INVALID, None, "central")
        for raw, status, expires_at in tags:
            tag = IdTag(raw)
            current = self.id_tags.get(tag)
            if current is not None and current.source == "config":
                continue
            self.id_tags[tag] = repo.IdTagEntry(status, expires_at, "central")
            repo.save_id_tag(unit, tag, status, expires_at, "central")
        return len(tags)

    # --- transactions ------------------------------------------------------------------

    def active_sessions(self) -> list[Session]:
        return list(self.active)

    def active_session_on(self, charger_id: ChargerId, evse_id: int) -> Session | None:
        return self.active.on(charger_id, evse_id)

    def active_session(self, session_id: str) -> Session | None:
        return self.active.by_id(session_id)

    def resolve_transaction(
        self, charger_id: ChargerId, transaction_id: str | None
    ) -> Session | None:
        if transaction_id is None:
            return None
        found = self.active.by_transaction(charger_id, transaction_id)
        if found is None and transaction_id == UNKNOWN_TRANSACTION:
            mine = self.active.of_charger(charger_id)
            found = mine[0] if len(mine) == 1 else None
        return found

    async def start_session(
        self,
        charger_id: ChargerId,
        evse_id: int,
        connector_id: int,
        id_tag: str | None,
        started_at: datetime,
        version: str,
        meter_start_wh: float | None = None,
        transaction_id: str | None = None,
        reservation_id: int | None = None,
    ) -> tuple[Session, AuthorizationStatus]:
        """Open a session; a replay of a start already recorded returns that session.

        1.6 chargers leave ``transaction_id`` None and get the next number from us; a
        2.0.1 charger names its own transaction.
        """
        status = self.authorize(id_tag) if id_tag else AuthorizationStatus.ACCEPTED
        replay = await self._find_replayed_start(
            charger_id, evse_id, connector_id, id_tag, started_at, transaction_id
        )
        if replay is not None:
            log.info(
                "ocpp.transaction.replayed", charger=charger_id,
                transaction=replay.transaction_id, session=replay.id,
            )  # fmt: skip
            return replay, AuthorizationStatus(replay.id_tag_status)
        unit = Unit()
        # A new start on a connector that still has an open session: the charger lost
        # that session's stop. Close it from what we know rather than keep it open forever.
        previous = self.active_session_on(charger_id, evse_id)
        if previous is not None:
            self._close(unit, previous, SessionStatus.INFERRED_STOPPED, "superseded", started_at)
        if transaction_id is None:
            transaction_id = str(self._next_transaction_id)
            self._next_transaction_id += 1
        session = Session(
            id=SessionId(uuid7()),
            charger_id=charger_id,
            evse_id=evse_id,
            connector_id=connector_id,
            transaction_id=transaction_id,
            id_tag=IdTag(id_tag) if id_tag else None,
            started_at=started_at,
            version=version,
            id_tag_status=status,
            meter_start_wh=meter_start_wh,
            meter_last_wh=meter_start_wh,
            last_update=started_at,
            reservation_id=reservation_id,
        )
        self.active.add(session)
        repo.save_session(unit, session)
        repo.add_outbox_event(
            unit,
            ChargingStarted(
                session_id=session.id, charger_id=charger_id, evse_id=evse_id,
                connector_id=connector_id, id_tag=id_tag, transaction_id=transaction_id,
                meter_start_wh=meter_start_wh, started_at=started_at,
                id_tag_status=status.value,
            ),
            session.id, started_at,
        )  # fmt: skip
        await self.store.write(unit)
        log.info(
            "ocpp.transaction.started", charger=charger_id, session=session.id,
            transaction=transaction_id, evse=evse_id, id_tag_status=status.value,
        )  # fmt: skip
        self._notify(SiteChange("session", charger_id, evse_id, session.id))
        return session, status

    async def _find_replayed_start(
        self,
        charger_id: ChargerId,
        evse_id: int,
        connector_id: int,
        id_tag: str | None,
        started_at: datetime,
        transaction_id: str | None,
    ) -> Session | None:
        if transaction_id is not None:
            known = self.active.by_transaction(charger_id, transaction_id)
            if known is not None:
                return known
            return await self.store.read(
                lambda c: repo.find_session_by_transaction(c, charger_id, transaction_id)
            )
        for session in self.active:
            if (
                session.charger_id == charger_id
                and session.connector_id == connector_id
                and session.evse_id == evse_id
                and session.id_tag == id_tag
                and session.started_at == started_at
            ):
                return session
        if id_tag is None:
            return None
        return await self.store.read(
            lambda c: repo.find_session_by_start(c, charger_id, connector_id, id_tag, started_at)
        )

    async def meter_values(
        self,
        charger_id: ChargerId,
        evse_id: int,
        readings: list[MeterReading],
        transaction_id: str | None = None,
    ) -> Session | None:
        session, stored = self.record_meter_values(charger_id, evse_id, readings, transaction_id)
        if stored is not None:
            await stored
        return session

    def record_meter_values(
        self,
        charger_id: ChargerId,
        evse_id: int,
        readings: list[MeterReading],
        transaction_id: str | None = None,
    ) -> tuple[Session | None, asyncio.Future[None] | None]:
        """``meter_values`` without the wait: the session is updated now, and the future
        (None when there was nothing to store) resolves once the samples are committed.
        This is the one write that comes all the time, hence a path of its own."""
        session = self.resolve_transaction(charger_id, transaction_id)
        if session is None and evse_id > 0:
            session = self.active_session_on(charger_id, evse_id)
        unit = Unit(durable=False)  # samples only: see edge.storage.sqlite on durability
        for reading in readings:
            repo.add_meter_reading(
                unit, charger_id, evse_id, session.id if session else None, reading
            )
            if session is not None:
                session.apply(reading)
        if session is not None and self._progress_due(session):
            self._add_progress(unit, session)
        stored = self.store.submit(unit) if unit.ops else None
        if session is not None:  # observers read the in-memory session, updated already
            self._notify(SiteChange("meter", charger_id, session.evse_id, session.id))
        return session, stored

    def _progress_due(self, session: Session) -> bool:
        if session.last_update is None:
            return False
        sent = session.progress_sent_at
        return sent is None or session.last_update - sent >= self._progress_every

    def _add_progress(self, unit: Unit, session: Session) -> None:
        """Tell central how a session is going, at most every ``central.progress_interval``."""
        at = session.last_update or self.clock()
        session.progress_sent_at = at
        unit.durable = True
        repo.add_outbox_event(
            unit,
            ChargingProgress(
                session_id=session.id, charger_id=session.charger_id,
                evse_id=session.evse_id, transaction_id=session.transaction_id,
                energy_wh=session.energy_wh, power_w=session.power_w, soc=session.soc, at=at,
            ),
            session.id, at,
        )  # fmt: skip

    async def stop_session(
        self,
        charger_id: ChargerId,
        transaction_id: str,
        stopped_at: datetime,
        reason: str | None,
        meter_stop_wh: float | None = None,
        id_tag: str | None = None,
        readings: list[MeterReading] | None = None,
        evse_id: int | None = None,
    ) -> Session:
        """Close a session. A stop for a transaction we never saw is recorded, not refused."""
        session = self.resolve_transaction(charger_id, transaction_id)
        unit = Unit()
        if session is None:
            done = await self.store.read(
                lambda c: repo.find_session_by_transaction(c, charger_id, transaction_id)
            )
            if done is not None:  # a replayed stop: already recorded
                return done
            session = Session(
                id=SessionId(uuid7()),
                charger_id=charger_id,
                evse_id=evse_id or 0,
                connector_id=1,
                transaction_id=transaction_id,
                id_tag=IdTag(id_tag) if id_tag else None,
                started_at=min([r.at for r in readings or []] + [stopped_at]),
                version=self._charger(charger_id).version or "",
                orphan=True,
            )
            log.warning(
                "ocpp.transaction.stop_unknown", charger=charger_id, transaction=transaction_id
            )
        for reading in readings or []:
            repo.add_meter_reading(unit, charger_id, session.evse_id, session.id, reading)
            session.apply(reading)
        if meter_stop_wh is not None:
            if session.meter_start_wh is None:
                session.meter_start_wh = meter_stop_wh
            session.meter_stop_wh = meter_stop_wh
        self._close(unit, session, SessionStatus.COMPLETED, reason or "Local", stopped_at)
        await self.store.write(unit)
        log.info(
            "ocpp.transaction.stopped", charger=charger_id, session=session.id,
            transaction=transaction_id, energy_wh=session.energy_wh, reason=reason,
        )  # fmt: skip
        self._notify(SiteChange("session", charger_id, session.evse_id, session.id))
        return session

    def _close(
        self, unit: Unit, session: Session, status: SessionStatus, reason: str, at: datetime
    ) -> None:
        session.status = status
        session.stop_reason = reason
        session.stopped_at = at
        self.active.remove(session)
        repo.save_session(unit, session)
        repo.add_outbox_event(
            unit,
            ChargingCompleted(
                session_id=session.id, charger_id=session.charger_id,
                evse_id=session.evse_id, id_tag=session.id_tag,
                transaction_id=session.transaction_id, energy_wh=session.energy_wh,
                started_at=session.started_at, stopped_at=at, reason=reason,
                inferred=status is SessionStatus.INFERRED_STOPPED,
            ),
            session.id, at,
        )  # fmt: skip

    async def infer_stops(self) -> int:
        """Close the sessions of chargers gone longer than ``ocpp.inferred_stop_after``."""
        now = self.clock()
        limit = timedelta(seconds=self.config.ocpp.inferred_stop_after)
        unit = Unit()
        closed: list[Session] = []
        for session in self.active:
            charger = self.chargers.get(session.charger_id)
            if charger is None or charger.connected:
                continue
            gone_since = charger.last_seen or session.last_update or session.started_at
            if now - gone_since >= limit:
                at = session.last_update or gone_since
                self._close(unit, session, SessionStatus.INFERRED_STOPPED, "ChargerVanished", at)
                closed.append(session)
        if closed:
            await self.store.write(unit)
            for session in closed:
                log.warning(
                    "ocpp.transaction.inferred_stopped",
                    charger=session.charger_id,
                    session=session.id,
                )
                self._notify(SiteChange("session", session.charger_id, session.evse_id, session.id))
        return len(closed)

    async def run_inferred_stops(self, every: float = 60.0) -> None:
        while True:
            await self.infer_stops()
            await asyncio.sleep(every)

    # --- helpers -----------------------------------------------------------------------

    def _charger(self, charger_id: ChargerId) -> Charger:
        charger = self.chargers.get(charger_id)
        if charger is None:  # a message before the connection was registered (tests, races)
            charger = self.chargers[charger_id] = Charger(id=charger_id, first_seen=self.clock())
        return charger

    def evse_of(self, charger_id: ChargerId, evse_id: int) -> Evse | None:
        charger = self.chargers.get(charger_id)
        return charger.evses.get(evse_id) if charger else None
