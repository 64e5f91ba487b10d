"""The site's charging sessions: started, metered, stopped, and closed when lost.

:class:`ChargingSessions` keeps the sessions in progress in memory (indexed by
:class:`~edge.core.sessions.ActiveSessions`) and writes each change, with the events it
causes for central, as one unit: a charger never gets an answer for something the site has
not stored. Chargers repeat themselves and lose messages, so a start or a stop already
recorded is answered with what was recorded, a stop for a transaction never seen is
recorded anyway, and a session whose charger vanished is closed as inferred.

A 2.0.1 station whose transaction starts at plug-in (TxStartPoint ``EVConnected``) names
the token only later, in an ``Updated``. Such a session is recorded at once but announced
to central (``charging.started``) only when it can say who charges: when its token comes
and is accepted (:meth:`ChargingSessions.token_arrived`), or, for a session that never
gets one (free vend), when energy first flows, a failure is reported, or it ends. A
refused late token makes it a refused session like one refused at the start.

The site service (:class:`edge.services.site.Site`) owns one and answers the OCPP
handlers' session calls with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

import structlog

from contract.events import ChargingCompleted, ChargingProgress, ChargingStarted
from edge.config import SiteConfig
from edge.core.ids import ChargerId, IdTag, SessionId, uuid7
from edge.core.meter import MeterReading
from edge.core.model import AuthorizationStatus, Charger, Session, SessionStatus, Subject
from edge.core.rates import RateInForce
from edge.core.sessions import ActiveSessions
from edge.services import failures
from edge.services.changes import Observer, SiteChange
from edge.services.remote_starts import RemoteStarts
from edge.storage import site_sql as repo
from edge.storage.sqlite import SqliteStore, Unit

log = structlog.get_logger(__name__)

# A -1 transaction id is what chargers send when they never got one from us.
UNKNOWN_TRANSACTION = "-1"


class ChargingSessions:
    def __init__(
        self,
        config: SiteConfig,
        store: SqliteStore,
        clock: Callable[[], datetime],
        *,
        authorize: Callable[[str], AuthorizationStatus],
        id_tag_entry: Callable[[str | None], repo.IdTagEntry | None],
        rate: Callable[[], RateInForce],
        charger: Callable[[ChargerId], Charger],
        notify: Observer,
    ) -> None:
        """``authorize`` judges an id tag and ``id_tag_entry`` says whose it is; ``rate``
        is the site's rate in force; ``charger`` is the site's charger of an id,
        registered if unknown; ``notify`` tells the site's observers of a change."""
        self.config = config
        self.store = store
        self.clock = clock
        self.active = ActiveSessions()
        self.remote_starts = RemoteStarts()
        self._authorize = authorize
        self._id_tag_entry = id_tag_entry
        self._rate = rate
        self._charger = charger
        self._notify = notify
        self._next_transaction_id = 1
        self._progress_every = timedelta(seconds=config.central.progress_interval)

    def restore(self, active: list[Session], last_numeric_transaction_id: int) -> None:
        """The sessions in progress and the transaction numbers used, as stored."""
        self.active = ActiveSessions(active)
        self._next_transaction_id = last_numeric_transaction_id + 1

    # --- lookups -----------------------------------------------------------------------

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

    # --- start -------------------------------------------------------------------------

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
        announce: bool = True,
    ) -> tuple[Session, AuthorizationStatus]:
        """Open a session; a replay of a start already recorded returns that session.

        1.6 chargers leave ``transaction_id`` None and get the next number from us; a
        2.0.1 charger names its own transaction. The session takes the vehicle and driver
        of its id tag. A refused tag's session is kept (the charger's later messages name
        it) but central hears only ``charging.failed`` (``TokenRefused``) of it. A
        session opened without a tag and ``announce`` False waits for its token before
        central hears of it (see the module's docstring).
        """
        status = self._authorize(id_tag) if id_tag else AuthorizationStatus.ACCEPTED
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
            awaiting_token=id_tag is None and not announce,
        )
        self._take_subject(session, id_tag)
        self.active.add(session)
        if session.refused:
            self._add_refusal(unit, session, started_at)
        elif not session.awaiting_token:
            self._add_started(unit, session)
        repo.save_session(unit, session)
        await self.store.write(unit)
        self.remote_starts.began(session)
        log.info(
            "ocpp.transaction.started", charger=charger_id, session=session.id,
            transaction=transaction_id, evse=evse_id, id_tag_status=status.value,
        )  # fmt: skip
        self._notify(SiteChange("session", charger_id, evse_id, session.id))
        return session, status

    def _take_subject(self, session: Session, id_tag: str | None) -> None:
        """``session`` charges for the vehicle and driver of ``id_tag``, if the site knows them."""
        entry = self._id_tag_entry(id_tag)
        if entry is not None:
            session.vehicle_id, session.driver_id = entry.vehicle_id, entry.driver_id

    def _add_refusal(
        self, unit: Unit, session: Session, at: datetime, session_id: SessionId | None = None
    ) -> None:
        """Central hears of a refused token only as ``charging.failed`` (``TokenRefused``),
        naming the remote start that sent the token, if one did, and ``session_id`` when
        the session had begun before its token came."""
        session.failures_reported.add("TokenRefused")
        refused = failures.charging_failed(
            session.charger_id, session.evse_id, "TokenRefused", session.subject,
            detail=session.id_tag_status.value,
            session_id=session_id,
            command_id=self.remote_starts.command_of(session.id_tag),
        )  # fmt: skip
        repo.add_outbox_event(unit, refused, session.id, at)

    def _add_started(self, unit: Unit, session: Session) -> None:
        """``charging.started`` for ``session``, as of its start (also when announced late)."""
        session.awaiting_token = False
        started = ChargingStarted(
            session_id=session.id, charger_id=session.charger_id, evse_id=session.evse_id,
            connector_id=session.connector_id, transaction_id=session.transaction_id,
            meter_start_wh=session.meter_start_wh, started_at=session.started_at,
            id_tag_status=session.id_tag_status.value, **session.subject.fields(),
        )  # fmt: skip
        repo.add_outbox_event(unit, started, session.id, session.started_at)

    def _announce_if_waiting(self, unit: Unit, session: Session) -> None:
        """A session still waiting for its token is announced now, without a subject."""
        if session.awaiting_token and not session.refused:
            unit.durable = True
            self._add_started(unit, session)
            repo.save_session(unit, session)

    async def token_arrived(
        self, session: Session, id_tag: str, at: datetime
    ) -> AuthorizationStatus:
        """The token of a session that began without one (2.0.1, in an ``Updated`` or
        ``Ended``), judged like one at the start.

        Accepted: the session takes the tag and its vehicle and driver, is announced if
        it was waiting, and a remote start waiting for the tag is satisfied by it.
        Refused while waiting: central hears only ``charging.failed`` (``TokenRefused``)
        of it. Refused once announced (its energy flowed already): the refusal is told,
        and the session goes on as the free vend it was.
        """
        status = self._authorize(id_tag)
        unit = Unit()
        if status is AuthorizationStatus.ACCEPTED or session.awaiting_token:
            session.id_tag, session.id_tag_status = IdTag(id_tag), status
            self._take_subject(session, id_tag)
        if session.refused:
            self._add_refusal(unit, session, at, session.id)
            session.awaiting_token = False
        elif status is not AuthorizationStatus.ACCEPTED:
            refused = failures.charging_failed(
                session.charger_id, session.evse_id, "TokenRefused", Subject(id_tag=id_tag),
                detail=status.value, session_id=session.id,
                command_id=self.remote_starts.command_of(id_tag),
            )  # fmt: skip
            repo.add_outbox_event(unit, refused, session.id, at)
        elif session.awaiting_token:
            self._add_started(unit, session)
        repo.save_session(unit, session)
        await self.store.write(unit)
        if session.id_tag == id_tag:
            self.remote_starts.began(session)
        log.info(
            "ocpp.transaction.token", charger=session.charger_id, session=session.id,
            transaction=session.transaction_id, id_tag_status=status.value,
        )  # fmt: skip
        self._notify(SiteChange("session", session.charger_id, session.evse_id, session.id))
        return status

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

    # --- meter values ------------------------------------------------------------------

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
        if session is not None and session.awaiting_token and session.energy_wh > 0:
            self._announce_if_waiting(unit, session)  # free vend: no token, but a charge
        if (
            session is not None
            and not session.refused
            and not session.awaiting_token
            and self._progress_due(session)
        ):
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
                **session.subject.fields(),
            ),
            session.id, at,
        )  # fmt: skip

    # --- stop --------------------------------------------------------------------------

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
            entry = self._id_tag_entry(id_tag)
            if entry is not None:
                session.vehicle_id, session.driver_id = entry.vehicle_id, entry.driver_id
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
        """End ``session``: ``charging.completed`` for central, or ``charging.failed``
        instead when it ended before any energy flowed, and nothing for a refused tag."""
        session.status = status
        session.stop_reason = reason
        session.stopped_at = at
        self.active.remove(session)
        self._announce_if_waiting(unit, session)  # a session is never lost
        repo.save_session(unit, session)
        failure = failures.stop_failure(session, reason)
        failed = failures.session_failed(session, failure, reason) if failure else None
        if failed is not None:
            repo.add_outbox_event(unit, failed, session.id, at)
        if session.refused or failure == "EndedBeforeCharging":
            return
        rate, rate_id = self._rate()
        completed = ChargingCompleted(
            session_id=session.id, charger_id=session.charger_id, evse_id=session.evse_id,
            transaction_id=session.transaction_id, energy_wh=session.energy_wh,
            started_at=session.started_at, stopped_at=at, reason=reason,
            inferred=status is SessionStatus.INFERRED_STOPPED, rate=rate, rate_id=rate_id,
            **session.subject.fields(),
        )  # fmt: skip
        repo.add_outbox_event(unit, completed, session.id, at)

    def add_failure(self, unit: Unit, session: Session, code: str, detail: str) -> bool:
        """Tell central, in ``unit``, that ``session`` failed (a fault, an EV error) unless
        it was told already; True if it will be."""
        self._announce_if_waiting(unit, session)
        failed = failures.session_failed(session, code, detail)
        if failed is not None:
            repo.add_outbox_event(unit, failed, session.id, self.clock())
        return failed is not None

    async def session_failed(self, session: Session, code: str, detail: str) -> None:
        """:meth:`add_failure`, stored now."""
        unit = Unit()
        if self.add_failure(unit, session, code, detail):
            await self.store.write(unit)

    async def infer_stops(self, chargers: Mapping[ChargerId, Charger]) -> int:
        """Close the sessions of those ``chargers`` gone longer than
        ``ocpp.inferred_stop_after`` (a charger not among them is left alone)."""
        now = self.clock()
        limit = timedelta(seconds=self.config.ocpp.inferred_stop_after)
        unit = Unit()
        closed: list[Session] = []
        for session in self.active:
            charger = chargers.get(session.charger_id)
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
