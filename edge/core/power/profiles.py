"""The charging profiles that carry the load manager's limits to a charger.

Three per charger, each at its own purpose so none replaces another:

- a maximum profile (stack 0): the charger's ``max_kw``, so a charger that loses every
  other profile still cannot take more than it is wired for;
- a default profile on EVSE 0 (stack 0): nothing for ``lease_s``, then the failsafe. A
  car plugged in waits for the manager's offer (one cycle: a new session wakes it), and
  a charger that lost the edge lets new cars take the failsafe once the lease is over.
  The manager renews it at half its lease; until it holds, it keeps the failsafe free
  for each idle EVSE;
- a transaction profile per session (stack 1): the manager's offer for ``lease_s``, then
  the failsafe. The manager renews it well before the lease ends, so a charger that
  loses the edge falls back to the failsafe by itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from edge.core.power.model import ChargerSpec
from edge.core.profiles import ChargingProfile, SchedulePeriod, SetChargingProfile

MAX_PROFILE_ID: Final = 9_100
DEFAULT_PROFILE_ID: Final = 9_200
SESSION_PROFILE_ID: Final = 9_300  # + the EVSE id: one per EVSE, replaced in place


def rate(spec: ChargerSpec, power_w: float) -> float:
    """A power as the charger's profiles are written: A per phase (0.1 A) or W."""
    if spec.unit == "A":
        return round(spec.current_a(power_w), 1)
    return float(round(power_w))


def _period(spec: ChargerSpec, start_s: int, power_w: float) -> SchedulePeriod:
    return SchedulePeriod(start_s, rate(spec, power_w), spec.phases if spec.unit == "A" else None)


def maximum_profile(spec: ChargerSpec, now: datetime) -> SetChargingProfile:
    """The charger's maximum, sent after every boot."""
    maximum = ChargingProfile(
        MAX_PROFILE_ID, "max", 0, spec.unit, (_period(spec, 0, spec.max_w),), start=now
    )
    return SetChargingProfile(0, maximum)


def default_profile(
    spec: ChargerSpec, failsafe_w: float, lease_s: int, now: datetime
) -> SetChargingProfile:
    """What a new car gets before its own offer: nothing during the lease, then the
    failsafe (the edge is gone)."""
    periods = (_period(spec, 0, 0.0), _period(spec, lease_s, min(failsafe_w, spec.max_w)))
    default = ChargingProfile(DEFAULT_PROFILE_ID, "tx_default", 0, spec.unit, periods, start=now)
    return SetChargingProfile(0, default)


def session_profile(
    spec: ChargerSpec,
    evse_id: int,
    transaction_id: str,
    limit_w: float,
    failsafe_w: float,
    lease_s: int,
    now: datetime,
) -> SetChargingProfile:
    """The offer for one transaction, falling to the failsafe after ``lease_s``."""
    periods = (
        _period(spec, 0, limit_w),
        # what every EVSE may draw once the edge is gone (the site's check keeps the sum
        # of failsafes within the site limit), queued cars included
        _period(spec, lease_s, min(failsafe_w, spec.max_w)),
    )
    profile = ChargingProfile(
        SESSION_PROFILE_ID + evse_id,
        "tx",
        1,
        spec.unit,
        periods,
        start=now,
        transaction_id=transaction_id,
    )
    return SetChargingProfile(evse_id, profile)
