"""Charging profiles the site sends to chargers, version-neutral (smart charging).

A profile limits an EVSE (0: the whole charger) over a schedule of periods, in A per
phase or in W. Its purpose says what it limits: ``max`` the charger as a whole (1.6
ChargePointMaxProfile, 2.0.1 ChargingStationMaxProfile), ``tx_default`` every session
without a profile of its own, ``tx`` one transaction. ``ocpp_handlers.profiles`` writes
these as each version's CALLs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

ProfilePurpose = Literal["max", "tx_default", "tx"]
RateUnit = Literal["A", "W"]

PURPOSE_NAMES_16: Final[dict[ProfilePurpose, str]] = {
    "max": "ChargePointMaxProfile",
    "tx_default": "TxDefaultProfile",
    "tx": "TxProfile",
}
PURPOSE_NAMES_201: Final[dict[ProfilePurpose, str]] = {
    "max": "ChargingStationMaxProfile",
    "tx_default": "TxDefaultProfile",
    "tx": "TxProfile",
}


@dataclass(frozen=True, slots=True)
class SchedulePeriod:
    start_s: int  # from the schedule's start
    limit: float  # A per phase, or W
    phases: int | None = None


@dataclass(frozen=True, slots=True)
class ChargingProfile:
    """``start`` set: the schedule runs from that moment (Absolute); None: from the start
    of the transaction (Relative, not for a ``max`` profile)."""

    profile_id: int
    purpose: ProfilePurpose
    stack_level: int
    unit: RateUnit
    periods: tuple[SchedulePeriod, ...]
    start: datetime | None = None
    duration_s: int | None = None
    valid_to: datetime | None = None
    transaction_id: str | None = None


@dataclass(frozen=True, slots=True)
class SetChargingProfile:
    evse_id: int
    profile: ChargingProfile


@dataclass(frozen=True, slots=True)
class ClearChargingProfile:
    """Remove the profiles matching every criterion given (none: all of them)."""

    profile_id: int | None = None
    evse_id: int | None = None
    purpose: ProfilePurpose | None = None
    stack_level: int | None = None


@dataclass(frozen=True, slots=True)
class GetCompositeSchedule:
    """What the charger will let an EVSE take over the next ``duration_s``, all its
    profiles combined."""

    evse_id: int
    duration_s: int
    unit: RateUnit | None = None


@dataclass(frozen=True, slots=True)
class GetChargingProfiles:
    """2.0.1: the charger reports the matching profiles in ReportChargingProfiles."""

    request_id: int
    evse_id: int | None = None
    purpose: ProfilePurpose | None = None
    stack_level: int | None = None


ProfileCommand = (
    SetChargingProfile | ClearChargingProfile | GetCompositeSchedule | GetChargingProfiles
)
