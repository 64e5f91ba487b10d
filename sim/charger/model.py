"""Version-neutral state of a simulated charger: configuration, connectors,
transactions, reservations, the clock. Plain data, no I/O."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal, Protocol

from sim.charger.curve import ConnectorMeter, CurveKind, MeterSample
from sim.charger.schemas import OcppVersion

DEFAULT_ID_TAGS = ("DEMO-TAG-1", "DEMO-TAG-2", "DEMO-TAG-3")
DEFAULT_MEASURANDS = (
    "Energy.Active.Import.Register",
    "Power.Active.Import",
    "Current.Import",
    "Voltage",
    "SoC",
)
# Every measurand a simulated meter reports, with its unit (1.6 `unit`, 2.0.1 `unitOfMeasure`).
MEASURAND_UNITS = {
    "Energy.Active.Import.Register": "Wh",
    "Energy.Active.Import.Interval": "Wh",
    "Power.Active.Import": "W",
    "Power.Offered": "W",
    "Current.Import": "A",
    "Current.Offered": "A",
    "Voltage": "V",
    "SoC": "Percent",
}
SUPPORTED_MEASURANDS = frozenset(MEASURAND_UNITS)


class Clock(Protocol):
    """Wall time for timestamps, and waiting; injectable so tests control time."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True)
class MeterInterval:
    """The configured meter interval, kept exact: a 1.6 key or a 2.0.1 variable holds
    whole seconds, so a sub-second interval (tests, fast demos) is remembered here and
    used for as long as the setting still shows it rounded."""

    seconds: float

    @property
    def shown(self) -> str:
        """What the setting shows at first: whole seconds."""
        return str(max(0, round(self.seconds)))

    def current(self, value: str) -> float:
        """The interval to use while the setting holds ``value`` (0 means 60 s)."""
        if value == self.shown and self.seconds > 0:
            return self.seconds
        return float(int(value) or 60)


def comma_list(value: str) -> tuple[str, ...]:
    """The items of a comma-separated setting (1.6 keys and 2.0.1 list variables alike)."""
    return tuple(item.strip() for item in value.split(",") if item.strip())


@dataclass(frozen=True)
class SimChargerConfig:
    """One simulated charge point. ``url`` is the edge's base (``ws://host:9000/ocpp``);
    the charger connects to ``<url>/<charge_point_id>``."""

    charge_point_id: str
    url: str = "ws://127.0.0.1:9000/ocpp"
    version: OcppVersion = "1.6"
    password: str | None = None
    # TLS for wss:// URLs: security profile 2 (server CA) and 3 (plus a client certificate).
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    connectors: int = 1
    curve: CurveKind = "ac"
    max_power_w: float = 11_000.0
    start_register_wh: float = 0.0
    # Wall seconds between periodic meter values (MeterValueSampleInterval / TxUpdatedInterval).
    meter_interval: float = 60.0
    # Simulated seconds per wall second: energy and driver behaviour run this much faster.
    speed: float = 1.0
    # Send meter values on their own while a transaction runs (off for step-by-step tests).
    auto_meter_values: bool = True
    # Run the random driver-session loop on every connector.
    drive: bool = False
    # 2.0.1 TxStartPoint EVConnected: the transaction starts at plug-in without a token,
    # which follows in an Updated on authorization or remote start (off: PowerPathClosed).
    tx_start_at_plug_in: bool = False
    # How it treats charging profiles: "obey" them, "reject" them (answer Rejected), or
    # "ignore" them (answer Accepted and draw what the car wants), to test load management.
    profiles: Literal["obey", "reject", "ignore"] = "obey"
    id_tags: tuple[str, ...] = DEFAULT_ID_TAGS
    seed: int | None = None
    vendor: str = "evpark"
    model: str = "SimCharger"
    serial_number: str | None = None
    firmware_version: str = "sim-1.0"
    call_timeout: float = 30.0
    # Heartbeat and boot retry interval when the central system gives 0.
    default_interval: float = 300.0
    # Reconnect backoff (common.backoff): the first wait and the longest, in seconds.
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    offline_queue_size: int = 1000
    boot_on_reconnect: bool = True
    # A SecurityEventNotification after each accepted boot: StartupOfTheDevice after a
    # power-up, ResetOrReboot after a reset (1.6 Security Whitepaper and 2.0.1).
    security_event_at_boot: bool = True
    # Driver behaviour, in simulated seconds.
    idle_seconds: tuple[float, float] = (300.0, 1800.0)
    session_seconds: tuple[float, float] = (1800.0, 3 * 3600.0)
    session_energy_wh: tuple[float, float] = (5_000.0, 40_000.0)
    linger_seconds: tuple[float, float] = (60.0, 600.0)

    @property
    def subprotocol(self) -> str:
        return "ocpp1.6" if self.version == "1.6" else "ocpp2.0.1"

    @property
    def endpoint(self) -> str:
        return f"{self.url.rstrip('/')}/{self.charge_point_id}"


class ConnectorStatus(StrEnum):
    """1.6's connector states; 2.0.1 folds the plugged ones into `Occupied`."""

    AVAILABLE = "Available"
    PREPARING = "Preparing"
    CHARGING = "Charging"
    SUSPENDED_EV = "SuspendedEV"
    SUSPENDED_EVSE = "SuspendedEVSE"
    FINISHING = "Finishing"
    RESERVED = "Reserved"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"


# 1.6's stop reasons; sim.charger.v201 maps them onto 2.0.1's.
StopReason = Literal[
    "EmergencyStop",
    "EVDisconnected",
    "HardReset",
    "Local",
    "Other",
    "PowerLoss",
    "Reboot",
    "Remote",
    "SoftReset",
    "UnlockCommand",
    "DeAuthorized",
]


@dataclass
class Reservation:
    reservation_id: int
    id_tag: str
    expires_at: datetime


@dataclass
class Transaction:
    # 1.6: a local key mapped to the central system's id on delivery;
    # 2.0.1: the transactionId itself (a uuid the charger makes).
    key: str
    evse: int
    # None while a transaction begun at plug-in waits for its token
    id_tag: str | None
    started_at: datetime
    meter_start_wh: float
    remote_start_id: int | None = None
    reservation_id: int | None = None
    remote_id: int | None = None
    seq_no: int = 0
    last_sample: MeterSample | None = None
    stop_reason: StopReason | None = None
    charging_state: str = "Charging"

    def next_seq_no(self) -> int:
        seq = self.seq_no
        self.seq_no += 1
        return seq


def open_to_a_start(tx: Transaction | None) -> bool:
    """No transaction, or one begun at plug-in still waiting for its token: a start (a
    card, a remote start) may take the connector."""
    return tx is None or tx.id_tag is None


def energy_flows(tx: Transaction, settings: ChargerSettings) -> bool:
    """A transaction begun at plug-in charges once its token came, or at once on a
    free-vend charger; any other from its start."""
    return tx.id_tag is not None or settings.free_vend()


@dataclass
class Connector:
    evse: int
    meter: ConnectorMeter
    plugged: bool = False
    finished: bool = False
    transaction: Transaction | None = None
    operative: bool = True
    pending_operative: bool | None = None
    reservation: Reservation | None = None
    fault: str | None = None
    last_sent_status: str | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def status(self) -> ConnectorStatus:
        if self.fault is not None:
            return ConnectorStatus.FAULTED
        if self.transaction is not None:
            if self.meter.limit_w == 0:
                return ConnectorStatus.SUSPENDED_EVSE
            if self.meter.soc >= 100.0:
                return ConnectorStatus.SUSPENDED_EV
            return ConnectorStatus.CHARGING
        if not self.operative:
            return ConnectorStatus.UNAVAILABLE
        if self.plugged:
            return ConnectorStatus.FINISHING if self.finished else ConnectorStatus.PREPARING
        if self.reservation is not None:
            return ConnectorStatus.RESERVED
        return ConnectorStatus.AVAILABLE

    @property
    def can_start(self) -> bool:
        return self.operative and self.fault is None

    def take_reservation(self, tx: Transaction) -> None:
        """A transaction for the tag the connector was reserved for uses the reservation."""
        reservation = self.reservation
        if reservation is not None and tx.id_tag is not None and reservation.id_tag == tx.id_tag:
            tx.reservation_id = reservation.reservation_id
            self.reservation = None

    def notify(self) -> None:
        """Wake whoever waits for a change on this connector."""
        self.changed.set()
        self.changed = asyncio.Event()


class AuthLists:
    """The local authorization list (versioned, from the central system) and the
    authorization cache (what Authorize answered)."""

    def __init__(self) -> None:
        self.local_version = 0
        self.local: dict[str, str] = {}
        self.cache: dict[str, str] = {}

    def lookup(self, id_tag: str) -> str | None:
        return self.local.get(id_tag) or self.cache.get(id_tag)


class ChargerSettings(Protocol):
    """What the charger core reads from its version's configuration store (1.6 keys or
    2.0.1 device-model variables); the store stays the one source of truth."""

    def heartbeat_interval(self) -> float: ...

    def set_heartbeat_interval(self, seconds: int) -> None: ...

    def meter_interval(self) -> float: ...

    def measurands(self) -> tuple[str, ...]: ...

    def authorize_remote_start(self) -> bool: ...

    def local_authorize_offline(self) -> bool: ...

    def offline_tx_for_unknown_id(self) -> bool: ...

    def stop_on_invalid_id(self) -> bool: ...

    def tx_starts_at_plug_in(self) -> bool:
        """A transaction begins when the cable is plugged in, before any token (2.0.1
        TxStartPoint ``EVConnected``)."""
        ...

    def free_vend(self) -> bool:
        """Energy flows without authorization (2.0.1 ``AuthCtrlr.Enabled`` false)."""
        ...

    def tx_message_attempts(self) -> int: ...

    def tx_message_retry_interval(self) -> float: ...

    def password(self) -> str | None: ...
