"""What the version-neutral charger core asks of a protocol version (1.6 or 2.0.1), and
what both versions share.

:class:`ChargerProtocol` is the contract: the messages a version builds for the core and
its answers to the central system's calls. :class:`ProtocolBase` holds what the two
versions do alike, so each version's package (:mod:`sim.charger.v16`,
:mod:`sim.charger.v201`) only says what differs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from common.timestamps import parse_timestamp
from sim.charger.curve import MeterSample
from sim.charger.model import (
    ChargerSettings,
    Connector,
    ConnectorStatus,
    Reservation,
    StopReason,
    Transaction,
    open_to_a_start,
)
from sim.charger.offline_queue import QueuedMessage
from sim.charger.profiles import Profile, Running
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

    def authorized(
        self, tx: Transaction, connector: Connector, trigger: str, now: datetime, offline: bool
    ) -> list[QueuedMessage]:
        """The token of a transaction begun at plug-in, now that it came."""
        ...

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

    def profile_transaction_id(self, tx: Transaction) -> str | None:
        """The transaction's id as the central system names it in a TxProfile."""
        ...

    async def handle(self, action: str, payload: dict[str, Any]) -> Reply: ...


class ProtocolBase(ABC):
    """The part of a protocol version both versions share: calls from the central
    system go to the ``on_<Action>`` method of that name, and what the answers of 1.6
    and 2.0.1 have in common is here, in the versions' own terms passed in."""

    def __init__(self, charger: SimCharger) -> None:
        self.charger = charger

    @abstractmethod
    def boot_request(self, reason: str) -> dict[str, Any]: ...

    @abstractmethod
    def read_profile(self, evse: int, profile: dict[str, Any]) -> Profile:
        """A charging profile in the version's words, for the charger's store."""

    @abstractmethod
    def profile_transaction_id(self, tx: Transaction) -> str | None: ...

    @abstractmethod
    def composite_reply(self, evse: int, start: datetime, schedule: dict[str, Any]) -> Reply:
        """GetCompositeSchedule's answer around ``schedule`` (duration, unit, periods)."""

    async def handle(self, action: str, payload: dict[str, Any]) -> Reply:
        handler = getattr(self, f"on_{action}", None)
        if handler is None:
            raise Rejected("NotSupported", f"{action} is not supported by this charger")
        reply: Reply = await handler(payload)
        return reply

    def known(self, evse: int) -> bool:
        return evse in self.charger.connectors

    async def stop_transaction(self, evse: int, key: str, reason: StopReason) -> None:
        """Stop the connector's transaction if it is still the one ``key`` names."""
        tx = self.charger.connectors[evse].transaction
        if tx is not None and tx.key == key:
            await self.charger.stop(evse, reason)

    def remote_start(
        self,
        evse: int | None,
        id_tag: str,
        remote_start_id: int | None,
        profile: dict[str, Any] | None,
    ) -> Reply:
        """A remote start on ``evse`` (None: any free one), accepted when the connector
        can start for ``id_tag``; the driver is there as soon as the answer is sent."""
        charger = self.charger
        evse = evse or charger.free_connector(id_tag)
        if not charger.online or evse is None or not self.known(evse):
            return Reply({"status": "Rejected"})
        connector = charger.connectors[evse]
        reservation = connector.reservation
        if (
            not open_to_a_start(connector.transaction)
            or not connector.operative
            or connector.fault is not None
            or (reservation is not None and reservation.id_tag != id_tag)
        ):
            return Reply({"status": "Rejected"})
        if profile is not None:
            self.set_profile(evse, profile)
        return Reply(
            {"status": "Accepted"}, then=lambda: charger.remote_start(evse, id_tag, remote_start_id)
        )

    def remote_stop(self, tx: Transaction | None) -> Reply:
        if tx is None:
            return Reply({"status": "Rejected"})
        return Reply(
            {"status": "Accepted"}, then=lambda: self.stop_transaction(tx.evse, tx.key, "Remote")
        )

    def availability(self, evse: int | None, operative: bool) -> str:
        """ChangeAvailability's status for ``evse`` (None or 0: the whole charger): going
        inoperative waits for running sessions to end."""
        busy = any(
            c.transaction is not None
            for n, c in self.charger.connectors.items()
            if evse in (None, 0, n)
        )
        return "Scheduled" if busy and not operative else "Accepted"

    async def send_triggered(self, what: str) -> bool:
        """Send a triggered message both versions send alike; False for the others."""
        link = self.charger.link
        if what == "BootNotification":
            if not link.online:
                link.trigger_boot()  # still Pending: boot again at once
            else:
                await link.send_or_log("BootNotification", self.boot_request("Triggered"))
        elif what == "Heartbeat":
            await link.send_or_log("Heartbeat", {})
        elif what == "FirmwareStatusNotification":
            await link.send_or_log("FirmwareStatusNotification", {"status": "Idle"})
        else:
            return False
        return True

    def reserve(self, evse: int, reservation_id: int, id_tag: str, expiry: str) -> Reply:
        """ReserveNow: Accepted for a free connector, or a renewal of its own reservation;
        otherwise why not."""
        connector = self.charger.connectors[evse]
        status = _RESERVE_STATUS.get(connector.status, "Occupied")
        existing = connector.reservation
        if existing is not None and existing.reservation_id != reservation_id:
            status = "Occupied"
        if status != "Accepted":
            return Reply({"status": status})
        expires_at = parse_timestamp(expiry, naive_is_utc=True)
        connector.reservation = Reservation(reservation_id, id_tag, expires_at)
        return Reply({"status": "Accepted"}, then=partial(self.charger.publish_change, connector))

    def update_local_list(
        self,
        version: int,
        update_type: str,
        entries: Sequence[tuple[str, str | None]],
        max_entries: int | None = None,
    ) -> str:
        """SendLocalList: ``entries`` are (id tag, status); no status removes the tag."""
        auth = self.charger.auth
        if update_type == "Differential" and version <= auth.local_version:
            return "VersionMismatch"
        if max_entries is not None and len(entries) > max_entries:
            return "Failed"
        if update_type == "Full":
            auth.local.clear()
        for id_tag, status in entries:
            if status is None:
                auth.local.pop(id_tag, None)
            else:
                auth.local[id_tag] = status
        auth.local_version = version
        return "Accepted"

    def data_transfer_refusal(self, payload: dict[str, Any]) -> str | None:
        """DataTransfer's status when the vendor or message is unknown, else None."""
        if payload["vendorId"] != VENDOR_ID:
            return "UnknownVendorId"
        if payload.get("messageId") not in (None, ECHO_MESSAGE):
            return "UnknownMessageId"
        return None

    def set_profile(self, evse: int, profile: dict[str, Any]) -> Reply:
        """SetChargingProfile of either version: kept and obeyed at once, or, as the
        charger is configured (``profiles``), rejected or accepted and ignored."""
        behaviour = self.charger.config.profiles
        if (evse != 0 and not self.known(evse)) or behaviour == "reject":
            return Reply({"status": "Rejected"})
        if behaviour == "obey":
            self.charger.profiles.install(self.read_profile(evse, profile))
            self.charger.apply_limits()
        return Reply({"status": "Accepted"})

    async def on_ClearChargingProfile(self, payload: dict[str, Any]) -> Reply:
        criteria = payload.get("chargingProfileCriteria", payload)  # 2.0.1 nests them
        removed = self.charger.profiles.clear(
            payload.get("id", payload.get("chargingProfileId")),
            criteria.get("connectorId", criteria.get("evseId")),
            criteria.get("chargingProfilePurpose"),
            criteria.get("stackLevel"),
        )
        self.charger.apply_limits()
        return Reply({"status": "Accepted" if removed else "Unknown"})

    async def on_GetCompositeSchedule(self, payload: dict[str, Any]) -> Reply:
        charger = self.charger
        evse = int(payload.get("connectorId", payload.get("evseId", 0)))
        if evse != 0 and not self.known(evse):
            return Reply({"status": "Rejected"})
        duration = int(payload["duration"])
        unit = payload.get("chargingRateUnit", "W")
        start = charger.clock.now()
        tx = charger.connectors[evse].transaction if evse else None
        running = None
        if tx is not None:
            running = Running(self.profile_transaction_id(tx) or "", tx.started_at)
        store = charger.profiles
        periods = []
        for offset, limit_w in store.composite(evse, start, duration, running):
            watts = charger.config.max_power_w if limit_w is None else limit_w
            limit = watts if unit == "W" else watts / (store.voltage * store.phases)
            periods.append({"startPeriod": offset, "limit": round(limit, 1)})
        schedule = {
            "duration": duration,
            "chargingRateUnit": unit,
            "chargingSchedulePeriod": periods,
        }
        return self.composite_reply(evse, start, schedule)

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
