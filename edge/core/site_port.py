"""What the OCPP handlers may ask of the site: the port between protocol and site model.

``ocpp_handlers`` translates messages of either OCPP version into these calls and depends on
nothing else of the edge but the core (docs/architecture.md); the site service
(:class:`edge.services.site.Site`) is what answers them in the daemon, and a test may answer
them with anything that has these methods.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Protocol

from edge.core.ids import ChargerId
from edge.core.meter import MeterReading
from edge.core.model import (
    AuthorizationStatus,
    BootStatus,
    ChargerInfo,
    ConnectorStatus,
    Evse,
    Session,
)


class SitePort(Protocol):
    @property
    def heartbeat_interval(self) -> int:
        """Seconds between a charger's heartbeats, as BootNotification tells it."""
        ...

    @property
    def pending_interval(self) -> int:
        """Seconds a charger whose boot is Pending waits before it boots again."""
        ...

    @property
    def site_id(self) -> str: ...

    def clock(self) -> datetime: ...

    def seen(self, charger_id: ChargerId) -> None:
        """Any message from a charger is a sign of life."""
        ...

    async def boot(self, charger_id: ChargerId, info: ChargerInfo, reason: str) -> BootStatus: ...

    async def heartbeat(self, charger_id: ChargerId) -> datetime: ...

    async def notify_report(self, charger_id: ChargerId, data: dict[str, Any]) -> None:
        """A 2.0.1 NotifyReport: a part of a configuration read, or kept for the technician."""
        ...

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
    ) -> None: ...

    async def charging_state(
        self, charger_id: ChargerId, evse_id: int, status: ConnectorStatus
    ) -> None: ...

    async def record_event(self, charger_id: ChargerId, kind: str, data: dict[str, Any]) -> None:
        """A message kept for the technician (the charger's events), as it came."""
        ...

    # The reports central hears of too: each is kept like record_event (``data``, the
    # message as it came) and sent upstream in the charger's own words.
    async def security_event(
        self,
        charger_id: ChargerId,
        event_type: str,
        at: datetime,
        tech_info: str | None,
        data: dict[str, Any],
    ) -> None: ...

    async def firmware_status(
        self, charger_id: ChargerId, status: str, request_id: int | None, data: dict[str, Any]
    ) -> None: ...

    async def log_status(
        self,
        charger_id: ChargerId,
        status: str,
        request_id: int | None,
        data: dict[str, Any],
        kind: str = "log_status",
    ) -> None:
        """A log upload's status; ``kind`` ``diagnostics_status`` for 1.6 diagnostics."""
        ...

    async def ev_charging_needs(
        self,
        charger_id: ChargerId,
        evse_id: int,
        departure: datetime | None,
        energy_wh: float | None,
        data: dict[str, Any],
    ) -> bool:
        """What the car on ``evse_id`` needs (kept as a charger event and for load
        management); True if the site will send it a charging schedule."""
        ...

    async def charging_limit(
        self,
        charger_id: ChargerId,
        evse_id: int | None,
        source: str,
        limit_w: float | None,
        data: dict[str, Any],
    ) -> None:
        """2.0.1: a limit set on the station by another source (an EMS, the grid
        operator), on one EVSE or the whole station (None); ``limit_w`` None: cleared."""
        ...

    def authorize(self, id_tag: str) -> AuthorizationStatus: ...

    def evse_of(self, charger_id: ChargerId, evse_id: int) -> Evse | None: ...

    def active_session_on(self, charger_id: ChargerId, evse_id: int) -> Session | None: ...

    def resolve_transaction(
        self, charger_id: ChargerId, transaction_id: str | None
    ) -> Session | None: ...

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
    ) -> tuple[Session, AuthorizationStatus]: ...

    async def token_arrived(
        self, session: Session, id_tag: str, at: datetime
    ) -> AuthorizationStatus:
        """The token of a session that began without one (2.0.1), judged like one at
        the start; see :meth:`edge.services.sessions.ChargingSessions.token_arrived`."""
        ...

    async def session_failed(self, session: Session, code: str, detail: str) -> None:
        """Central is told that ``session`` failed (``code`` of
        ``contract.events.FAILURE_CODES``), once per code and session."""
        ...

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
    ) -> Session: ...

    async def meter_values(
        self,
        charger_id: ChargerId,
        evse_id: int,
        readings: list[MeterReading],
        transaction_id: str | None = None,
    ) -> Session | None: ...

    def record_meter_values(
        self,
        charger_id: ChargerId,
        evse_id: int,
        readings: list[MeterReading],
        transaction_id: str | None = None,
    ) -> tuple[Session | None, asyncio.Future[None] | None]: ...
