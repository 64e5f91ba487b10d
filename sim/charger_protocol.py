"""What the version-neutral charger core asks of a protocol version (1.6 or 2.0.1)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sim.charger_model import ChargerSettings, Connector, StopReason, Transaction
from sim.charger_rpc import Reply
from sim.curve import MeterSample
from sim.offline_queue import QueuedMessage

Request = tuple[str, dict[str, Any]]


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
