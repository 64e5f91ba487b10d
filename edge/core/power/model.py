"""What the load manager knows and what it decides, in watts and seconds.

A site has one connection limit (``site_w``), optionally a per-phase current limit and
nested circuits; each charger a maximum, its phases and a priority. A *session* is a car on
an EVSE; the manager offers each session a limit. Times are aware datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final, Literal

from edge.core.profiles import RateUnit

PHASE_VOLTAGE: Final = 230.0  # volts, nominal, line to neutral
MIN_CURRENT_A: Final = 6.0  # IEC 61851-1: below this a car may not charge at all
Phase = Literal["L1", "L2", "L3"]
PHASES: Final[tuple[Phase, ...]] = ("L1", "L2", "L3")


class Strategy(StrEnum):
    FAIR = "fair"  # equal shares
    PRIORITY = "priority"  # higher priority chargers are served first
    DEPARTURE = "departure"  # who leaves sooner with more energy to take gets more


class OfferState(StrEnum):
    CHARGING = "charging"  # offered at least the minimum
    QUEUED = "queued"  # offered nothing: waits its turn
    UNCONTROLLED = "uncontrolled"  # rejects or ignores limits: counted at its worst
    OFFLINE = "offline"  # its charger is not connected: it keeps its last limit
    RESTING = "resting"  # its car takes nothing (full): offered nothing for a while


def limit_in_force(configured_w: float, override_w: float | None) -> float:
    """The connection's limit now: a temporary limit may lower the configured one, never
    raise it (that one is the fuse)."""
    return configured_w if override_w is None else min(configured_w, override_w)


@dataclass(frozen=True, slots=True)
class Circuit:
    """A part of the site's wiring with its own limit (a row, a cable, a sub-board)."""

    id: str
    limit_w: float
    chargers: frozenset[str]


@dataclass(frozen=True, slots=True)
class SiteLimits:
    site_w: float
    min_session_w: float
    failsafe_w: float
    strategy: Strategy = Strategy.FAIR
    phase_a: float | None = None
    circuits: tuple[Circuit, ...] = ()
    react_s: float = 30.0  # how long a charger and its car get to follow a new limit
    rotate_s: float = 900.0  # a queued car takes a charging car's turn after this long
    stale_s: float = 120.0  # meter values older than this are not believed


@dataclass(frozen=True, slots=True)
class ChargerSpec:
    id: str
    max_w: float
    phases: Literal[1, 3] = 3
    phase: Phase | None = None  # the phase of a 1-phase charger, if known
    priority: int = 0
    unit: RateUnit = "A"  # what its charging profiles are written in
    controllable: bool = True  # False once it rejected a profile or ignored one
    connected: bool = True

    def current_a(self, power_w: float) -> float:
        """The current per phase it draws at ``power_w``."""
        return power_w / (PHASE_VOLTAGE * self.phases)

    def power_w(self, current_a: float) -> float:
        return current_a * PHASE_VOLTAGE * self.phases

    def phase_share(self, phase: Phase) -> float:
        """Amps on ``phase`` per watt drawn. A 1-phase charger on an unknown phase is
        counted on every phase: it may be on any of them."""
        if self.phases == 3:
            return 1.0 / (PHASE_VOLTAGE * 3)
        if self.phase is None or self.phase == phase:
            return 1.0 / PHASE_VOLTAGE
        return 0.0


@dataclass(frozen=True, slots=True)
class SessionLoad:
    """A car on an EVSE as the manager sees it this cycle."""

    session_id: str
    charger_id: str
    evse_id: int
    started_at: datetime
    measured_w: float | None = None  # from the charger's meter values
    measured_at: datetime | None = None
    offered_w: float | None = None  # the limit the charger last accepted
    offered_at: datetime | None = None
    departure: datetime | None = None  # from a reservation or the car's charging needs
    energy_needed_wh: float | None = None
    cap_w: float | None = None  # a limit another source set on this EVSE (an EMS, the DSO)


@dataclass(frozen=True, slots=True)
class Turn:
    """What the manager remembers of a session between cycles (its turn in the queue)."""

    charging_since: datetime | None = None
    queued_since: datetime | None = None
    over_since: datetime | None = None  # drawing more than offered since
    resting_since: datetime | None = None  # its car took nothing of its offer since


@dataclass(frozen=True, slots=True)
class PowerState:
    limits: SiteLimits
    chargers: tuple[ChargerSpec, ...]
    sessions: tuple[SessionLoad, ...]
    turns: dict[str, Turn] = field(default_factory=dict)  # by session id
    other_load_w: float = 0.0  # the building's own load behind the same connection
    # EVSEs without a session, by charger: a car plugged in there draws the failsafe limit
    # (the chargers' default profile) before the manager hears of it, so that is kept free.
    idle_evses: dict[str, int] = field(default_factory=dict)
    site_limit_override_w: float | None = None  # a technician's temporary limit


@dataclass(frozen=True, slots=True)
class Offer:
    session_id: str
    charger_id: str
    evse_id: int
    limit_w: float  # what to send, already rounded down to what the charger can be sent
    state: OfferState
    reason: str
    counted_w: float  # what the limits count for it (its offer, or its worst draw)


@dataclass(frozen=True, slots=True)
class Usage:
    """One limit and how much of it the offers take."""

    name: str
    limit: float
    used: float
    unit: RateUnit


@dataclass(frozen=True, slots=True)
class Decision:
    offers: tuple[Offer, ...]
    turns: dict[str, Turn]
    usage: tuple[Usage, ...]
    # chargers found drawing more than offered, that were not known to (controllable ones)
    alerts: tuple[str, ...] = ()

    def offer(self, session_id: str) -> Offer | None:
        return next((o for o in self.offers if o.session_id == session_id), None)
