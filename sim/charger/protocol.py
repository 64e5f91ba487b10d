"""What the version-neutral charger core asks of a protocol version (1.6 or 2.0.1), and
what both versions share.

:class:`ChargerProtocol` is the contract: the messages a version builds for the core and
its answers to the central system's calls. :class:`ProtocolBase` holds what the two
versions do alike, so each version's package (:mod:`sim.charger.v16`,
:mod:`sim.charger.v201`) only says what differs.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from sim.charger.curve import MeterSample
from sim.charger.model import ChargerSettings, Connector, ConnectorStatus, StopReason, Transaction
from sim.charger.offline_queue import QueuedMessage
from sim.charger.rpc import Rejected, Reply

if TYPE_CHECKING:
    from sim.charger.core import SimCharger

Request = tuple[str, dict[str, Any]]

# DataTransfer: the one vendor and message the simulated chargers know (an echo).
VENDOR_ID = "evpark"
ECHO_MESSAGE = "echo"

# ReserveNow's answer by connector status (both versions use the same words).
_RESERVE_STATUS = {
    ConnectorStatus.AVAILABLE: "Accepted",
    ConnectorStatus.RESERVED: "Accepted",
    ConnectorStatus.FAULTED: "Faulted",
    ConnectorStatus.UNAVAILABLE: "Unavailable",
}


class ChargerProtocol(Protocol):
    @property
    def settings(self) -> ChargerSettings: ...

    def boot_request(self, reason: str) -> dict[str, Any]: ...

    def wire_status(self, connector: Connector) -> str: ...

    def station_requests(self, now: datetime) -> list[Request]:
        """Sent once after every accepted boot (1.6: connector 0's status)."""
        ...

    def status_requests(
        self, connector: Connector, previous: str | None, now: datetime
    ) -> list[Request]: ...

    def authorize_request(self, id_tag: str) -> dict[str, Any]: ...

    def authorize_status(self, response: dict[str, Any]) -> str: ...

    def new_transaction_key(self) -> str: ...

    def started(
        self, tx: Transaction, connector: Connector, trigger: str, now: datetime, offline: bool
    ) -> list[QueuedMessage]: ...

    def metered(
        self,
        tx: Transaction,
        connector: Connector,
        sample: MeterSample,
        now: datetime,
        offline: bool,
    ) -> list[QueuedMessage]: ...

    def ended(
        self,
        tx: Transaction,
        connector: Connector,
        sample: MeterSample,
        reason: StopReason,
        now: datetime,
        offline: bool,
    ) -> list[QueuedMessage]: ...

    def prepare(self, message: QueuedMessage) -> dict[str, Any] | None:
        """The payload to send now (1.6 rewrites transaction ids), None to drop it."""
        ...

    def delivered(self, message: QueuedMessage, response: dict[str, Any]) -> None: ...

    async def handle(self, action: str, payload: dict[str, Any]) -> Reply: ...


class ProtocolBase:
    """The part of a protocol version both versions share: calls from the central
    system go to the ``on_<Action>`` method of that name, and the answers that read the
    same in 1.6 and 2.0.1 are here."""

    def __init__(self, charger: SimCharger) -> None:
        self.charger = charger

    async def handle(self, action: str, payload: dict[str, Any]) -> Reply:
        handler = getattr(self, f"on_{action}", None)
        if handler is None:
            raise Rejected("NotSupported", f"{action} is not supported by this charger")
        reply: Reply = await handler(payload)
        return reply

    def known(self, evse: int) -> bool:
        return evse in self.charger.connectors

    def can_start(self, connector: Connector, id_tag: str) -> bool:
        """A remote start for ``id_tag`` fits the connector's state."""
        reservation = connector.reservation
        return (
            connector.transaction is None
            and connector.operative
            and connector.fault is None
            and (reservation is None or reservation.id_tag == id_tag)
        )

    async def stop_transaction(self, evse: int, key: str, reason: StopReason) -> None:
        """Stop the connector's transaction if it is still the one ``key`` names."""
        tx = self.charger.connectors[evse].transaction
        if tx is not None and tx.key == key:
            await self.charger.stop(evse, reason)

    def reserve_status(self, connector: Connector, reservation_id: int) -> str:
        """ReserveNow's answer: Accepted for a free connector, or a renewal of its own
        reservation; otherwise why not."""
        status = _RESERVE_STATUS.get(connector.status, "Occupied")
        existing = connector.reservation
        if existing is not None and existing.reservation_id != reservation_id:
            return "Occupied"
        return status

    def data_transfer_refusal(self, payload: dict[str, Any]) -> str | None:
        """DataTransfer's status when the vendor or message is unknown, else None."""
        if payload["vendorId"] != VENDOR_ID:
            return "UnknownVendorId"
        if payload.get("messageId") not in (None, ECHO_MESSAGE):
            return "UnknownMessageId"
        return None

    def limit_power(self, evse: int, limit: float, unit: str) -> None:
        """Honour a charging profile's first limit (``unit`` A or W) on ``evse`` (0: all):
        enough for load balancing to show in the meter values."""
        for n, connector in self.charger.connectors.items():
            if evse in (0, n):
                meter = connector.meter
                meter.limit_w = meter.watts_for_amps(limit) if unit == "A" else limit

    async def on_CancelReservation(self, payload: dict[str, Any]) -> Reply:
        charger = self.charger
        for connector in charger.connectors.values():
            reservation = connector.reservation
            if reservation is not None and reservation.reservation_id == payload["reservationId"]:
                connector.reservation = None
                return Reply(
                    {"status": "Accepted"}, then=partial(charger.publish_change, connector)
                )
        return Reply({"status": "Rejected"})

    async def on_ClearCache(self, payload: dict[str, Any]) -> Reply:
        self.charger.auth.cache.clear()
        return Reply({"status": "Accepted"})

    async def on_ClearChargingProfile(self, payload: dict[str, Any]) -> Reply:
        for connector in self.charger.connectors.values():
            connector.meter.limit_w = None
        return Reply({"status": "Accepted"})
