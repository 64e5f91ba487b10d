"""The site: its chargers and their connections, statuses and id tags, and its sessions.

Both OCPP handler modules call these methods (the port :class:`edge.core.site_port.SitePort`)
with version-neutral values. Each method applies one change to the in-memory state, writes
it (and the events it causes for central) as one unit, and returns once that unit is
committed: a charger never gets an answer for something the site has not stored.

:class:`Site` holds the chargers and the local authorization itself; the charging sessions
are :class:`~edge.services.sessions.ChargingSessions`'s, whose calls it passes on, so that
the handlers, the API and the UI keep one object to ask.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from contract.events import (
    ChargerFirmwareStatus,
    ChargerLogStatus,
    ChargerSecurityEvent,
    ChargerStatus,
)
from edge.config import SiteConfig
from edge.core import commands as cmd
from edge.core.documents import charger_documents
from edge.core.ids import ChargerId, IdTag
from edge.core.model import (
    AuthorizationStatus,
    BootStatus,
    Charger,
    ChargerInfo,
    ConnectorStatus,
    Evse,
)
from edge.core.rates import RateInForce, rate_in_force
from edge.core.sessions import ActiveSessions
from edge.services import failures
from edge.services.changes import Observer, SiteChange
from edge.services.firmware import FirmwareUpdates
from edge.services.logs import LogRequests
from edge.services.provisioning import Provisioning
from edge.services.sessions import ChargingSessions
from edge.storage import site_sql as repo
from edge.storage.sqlite import SqliteStore, Unit

# an expired tag of central's still answers "Expired" this long, then is forgotten
STALE_TAGS_KEPT = timedelta(days=1)
log = structlog.get_logger(__name__)
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Site:
    def __init__(self, config: SiteConfig, store: SqliteStore, clock: Clock = utc_now) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.chargers: dict[ChargerId, Charger] = {}
        self.id_tags: dict[IdTag, repo.IdTagEntry] = {}
        self.rates: object = []  # as central last pushed them (meta ``central.rates``)
        self.id_tags_version = 0  # the newest numbered id tag list from central applied
        self._observers: list[Observer] = []
        self.logs = LogRequests(config, store, clock)
        self.sessions = ChargingSessions(
            config, store, clock, authorize=self.authorize, id_tag_entry=self.id_tag_entry,
            rate=self.rate_in_force, charger=self._charger, notify=self._notify,
        )  # fmt: skip
        # The port's session calls are ChargingSessions' own methods, not copies of their
        # signatures (and no extra call on the meter-value path).
        sessions = self.sessions
        self.session_failed = sessions.session_failed
        self.active_sessions = sessions.active_sessions
        self.active_session_on = sessions.active_session_on
        self.active_session = sessions.active_session
        self.resolve_transaction = sessions.resolve_transaction
        self.start_session = sessions.start_session
        self.token_arrived = sessions.token_arrived
        self.meter_values = sessions.meter_values
        self.record_meter_values = sessions.record_meter_values
        self.stop_session = sessions.stop_session
        # limits other sources (an EMS, the grid operator) set on a station, in W, by
        # (charger, EVSE; 0 the whole station): load management offers no more there
        self.external_limits: dict[tuple[ChargerId, int], float] = {}
        self.firmware = FirmwareUpdates(store, clock, self._charger, self._notify)
        # what a charger holds and how applying the site's keys went (docs/provisioning.md)
        self.provisioning = Provisioning(config, store, clock)
        self.notify_report = self.provisioning.notify_report

    @property
    def site_id(self) -> str:
        return self.config.site.id

    @property
    def heartbeat_interval(self) -> int:
        return self.config.ocpp.heartbeat_interval

    @property
    def pending_interval(self) -> int:
        return self.config.ocpp.pending_interval

    @property
    def active(self) -> ActiveSessions:
        return self.sessions.active

    # --- start-up ----------------------------------------------------------------------

    async def load(self) -> None:
        snap = await self.store.read(repo.load_snapshot)
        self.chargers = snap.chargers
        for charger in self.chargers.values():
            charger.connected = False
        self.sessions.restore(snap.active_sessions, snap.last_numeric_transaction_id)
        self.id_tags = snap.id_tags
        self.rates = snap.rates
        self.id_tags_version = snap.id_tags_version
        await self.firmware.load(self.chargers)
        unit = Unit()
        for tag in self.config.authorization.id_tags:
            entry = self.id_tags.get(IdTag(tag))
            if entry is None or entry.source == "config":
                entry = repo.IdTagEntry(AuthorizationStatus.ACCEPTED, None, "config")
                self.id_tags[IdTag(tag)] = entry
                repo.save_id_tag(unit, IdTag(tag), entry)
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
        status = await self.provisioning.boot_status(charger_id, charger.version or "")
        charger.boot_status = status
        unit = Unit()
        repo.save_charger(unit, charger)
        repo.add_charger_event(
            unit, charger_id, now, "boot",
            {"vendor": info.vendor, "model": info.model, "serial": info.serial,
             "firmware": info.firmware, "reason": reason},
        )  # fmt: skip
        self.firmware.booted(unit, charger, now)
        await self.store.write(unit)
        self._notify(SiteChange("charger", charger_id))
        log.info("ocpp.boot." + status.value.lower(), charger=charger_id, vendor=info.vendor,
                 model=info.model)  # fmt: skip
        return status

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
        vendor_error_code: str | None = None,
    ) -> None:
        charger = self._charger(charger_id)
        evse = charger.evse(evse_id, connector_id)
        changed = evse.status is not status or evse.error_code != error_code
        was_faulted = evse.status is ConnectorStatus.FAULTED or evse.error_code is not None
        evse.connector_id = connector_id
        evse.status = status
        evse.error_code = error_code
        evse.info = " ".join(p for p in (info, vendor_error_code) if p) or None
        evse.updated_at = at or self.clock()
        unit = Unit()
        repo.save_evse(unit, charger_id, evse)
        faulted = status is ConnectorStatus.FAULTED or error_code is not None
        if changed and (faulted or was_faulted):
            # the connector's fault history, with the charger's own words for it
            fault = {"evse_id": evse_id, "connector_id": connector_id, "status": status.value,
                     "error_code": error_code, "info": info, "vendor_error_code": vendor_error_code}  # fmt: skip
            kind = "connector_fault" if faulted else "connector_fault_cleared"
            repo.add_charger_event(unit, charger_id, evse.updated_at, kind, fault)
        failure = failures.status_failure(status, error_code) if changed else None
        session = self.active_session_on(charger_id, evse_id) if failure else None
        if failure and session is not None:
            detail = " ".join(p for p in (error_code, info) if p)
            self.sessions.add_failure(unit, session, failure, detail)
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
        await self._charger_report(charger_id, kind, data, None)

    async def ev_charging_needs(
        self,
        charger_id: ChargerId,
        evse_id: int,
        departure: datetime | None,
        energy_wh: float | None,
        data: dict[str, Any],
    ) -> bool:
        session = self.active_session_on(charger_id, evse_id)
        if session is not None:
            session.departure = departure
            if energy_wh is not None:  # what it needs from now on, on top of what it has
                session.energy_target_wh = energy_wh + session.energy_wh
        await self.record_event(charger_id, "ev_charging_needs", data)
        self._notify(SiteChange("session", charger_id, evse_id, session.id if session else None))
        return self.config.power.enabled

    async def charging_limit(
        self,
        charger_id: ChargerId,
        evse_id: int | None,
        source: str,
        limit_w: float | None,
        data: dict[str, Any],
    ) -> None:
        key = (charger_id, evse_id or 0)
        if limit_w is None:
            self.external_limits.pop(key, None)
        else:
            self.external_limits[key] = limit_w
        kind = "charging_limit" if limit_w is not None else "charging_limit_cleared"
        await self.record_event(charger_id, kind, data)
        log.info("ocpp.charging_limit", charger=charger_id, evse=evse_id, source=source,
                 limit_w=limit_w)  # fmt: skip
        self._notify(SiteChange("charger", charger_id))

    async def security_event(
        self,
        charger_id: ChargerId,
        event_type: str,
        at: datetime,
        tech_info: str | None,
        data: dict[str, Any],
    ) -> None:
        event = ChargerSecurityEvent(
            charger_id=charger_id, event_type=event_type, occurred_at=at, tech_info=tech_info
        )
        await self._charger_report(charger_id, "security_event", data, event)

    async def firmware_status(
        self, charger_id: ChargerId, status: str, request_id: int | None, data: dict[str, Any]
    ) -> None:
        event = ChargerFirmwareStatus(charger_id=charger_id, status=status, request_id=request_id)
        unit = Unit()
        self.firmware.status(unit, self._charger(charger_id), status, request_id, self.clock())
        await self._charger_report(charger_id, "firmware_status", data, event, unit)
        self._notify(SiteChange("charger", charger_id))

    async def log_status(
        self,
        charger_id: ChargerId,
        status: str,
        request_id: int | None,
        data: dict[str, Any],
        kind: str = "log_status",
    ) -> None:
        event = ChargerLogStatus(charger_id=charger_id, status=status, request_id=request_id)
        await self._charger_report(charger_id, kind, data, event)
        await self.logs.status(charger_id, status, request_id)

    async def _charger_report(
        self,
        charger_id: ChargerId,
        kind: str,
        data: dict[str, Any],
        upstream: ChargerSecurityEvent | ChargerFirmwareStatus | ChargerLogStatus | None,
        unit: Unit | None = None,
    ) -> None:
        """One charger event, and its event for central if it has one, as one unit
        (``unit``: with what the caller wrote into it)."""
        now = self.clock()
        unit = unit if unit is not None else Unit()
        repo.add_charger_event(unit, charger_id, now, kind, data)
        if upstream is not None:
            repo.add_outbox_event(unit, upstream, charger_id, now)
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

    def id_tag_entry(self, id_tag: str | None) -> repo.IdTagEntry | None:
        """What the site knows of ``id_tag`` (its vehicle and driver among it), or None."""
        return self.id_tags.get(IdTag(id_tag)) if id_tag else None

    def update_id_tags(self, unit: Unit, tags: dict[IdTag, repo.IdTagEntry], full: bool) -> int:
        """Central's id tag list (the local authorization cache); ``full`` replaces it.

        Tags from the site config stay as they are. Written into ``unit``: the caller
        commits it with the command's result.
        """
        if full:
            for known, entry in list(self.id_tags.items()):
                if entry.source == "central" and known not in tags:
                    invalid = repo.IdTagEntry(AuthorizationStatus.INVALID, None, "central")
                    self.id_tags[known] = invalid
                    repo.save_id_tag(unit, known, invalid)
        for tag, entry in tags.items():
            current = self.id_tags.get(tag)
            if current is not None and current.source == "config":
                continue
            self.id_tags[tag] = entry
            repo.save_id_tag(unit, tag, entry)
        return len(tags)

    async def grant_id_tag(self, id_tag: str, entry: repo.IdTagEntry) -> None:
        """One tag central granted outside its lists (a remote start's app token), stored
        now: the charger may present it at once. Tags of central's that expired a day ago
        go at the same time, so one token per remote start does not pile up."""
        unit = Unit()
        stale_before = self.clock() - STALE_TAGS_KEPT
        stale = [
            tag
            for tag, known in self.id_tags.items()
            if known.source == "central"
            and known.expires_at is not None
            and known.expires_at < stale_before
        ]
        for tag in stale:
            del self.id_tags[tag]
        repo.forget_id_tags(unit, stale)
        self.update_id_tags(unit, {IdTag(id_tag): entry}, full=False)
        await self.store.write(unit)

    # --- rates ---------------------------------------------------------------------------

    def rate_in_force(self) -> RateInForce:
        """This site's rate among those central pushed, and its id (None, None: no rate)."""
        return rate_in_force(self.rates, self.site_id)

    async def infer_stops(self) -> int:
        """Close the sessions of chargers gone longer than ``ocpp.inferred_stop_after``."""
        return await self.sessions.infer_stops(self.chargers)

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

    def charger_documents(self) -> list[dict[str, Any]]:
        """Every charger as the API and the UI list it, configured ones never seen included."""
        configured = (c.id for c in self.config.chargers)
        return charger_documents(self.chargers.values(), configured, self.active.of_charger)


def local_list(
    version: int, full: bool, tags: Mapping[IdTag, repo.IdTagEntry]
) -> cmd.SendLocalList:
    """``tags`` as an OCPP local list: what a charger may accept while the site is away."""
    entries = tuple(
        cmd.LocalListEntry(tag, entry.status.value, entry.expires_at) for tag, entry in tags.items()
    )
    return cmd.SendLocalList(version, full, entries)
