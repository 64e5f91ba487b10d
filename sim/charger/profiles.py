"""Charging profiles as a real charger keeps and obeys them: plain code, no I/O.

Both versions' profiles are read into one shape (:class:`Profile`). At any moment an
EVSE's limit is the composite of three purposes: the charger's maximum (1.6
ChargePointMaxProfile, 2.0.1 ChargingStationMaxProfile and ExternalConstraints) caps
everything; a TxProfile of the running transaction, else a TxDefaultProfile of the EVSE,
else one of the whole charger (EVSE 0), says what the session may take. Within a purpose
the highest stack level in effect wins. Limits in A are per phase (``numberPhases``, else
the charger's phases).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from common.timestamps import parse_timestamp

Purpose = Literal["max", "tx_default", "tx"]
_PURPOSES: dict[str, Purpose] = {
    "ChargePointMaxProfile": "max",
    "ChargingStationMaxProfile": "max",
    "ChargingStationExternalConstraints": "max",
    "TxDefaultProfile": "tx_default",
    "TxProfile": "tx",
}
_RECURRENCE = {"Daily": timedelta(days=1), "Weekly": timedelta(days=7)}


@dataclass(frozen=True, slots=True)
class Period:
    start_s: int
    limit: float
    phases: int | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    id: int
    evse: int
    stack_level: int
    purpose: Purpose
    kind: str  # Absolute, Recurring, Relative
    unit: str  # A or W
    periods: tuple[Period, ...]
    recurrency: str | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    start: datetime | None = None
    duration_s: int | None = None
    transaction_id: str | None = None
    purpose_name: str = ""  # as the central system named it
    raw: dict[str, Any] = field(default_factory=dict, compare=False)  # as it came


def _time(value: object) -> datetime | None:
    return parse_timestamp(value) if isinstance(value, str) else None


def _profile(evse: int, p: dict[str, Any], schedule: dict[str, Any], tx_key: str) -> Profile:
    periods = tuple(
        Period(int(q["startPeriod"]), float(q["limit"]), q.get("numberPhases"))
        for q in schedule["chargingSchedulePeriod"]
    )
    tx = p.get(tx_key)
    return Profile(
        id=int(p["id"] if "id" in p else p["chargingProfileId"]),
        evse=evse,
        stack_level=int(p["stackLevel"]),
        purpose=_PURPOSES[p["chargingProfilePurpose"]],
        kind=str(p["chargingProfileKind"]),
        unit=str(schedule["chargingRateUnit"]),
        periods=tuple(sorted(periods, key=lambda q: q.start_s)),
        recurrency=p.get("recurrencyKind"),
        valid_from=_time(p.get("validFrom")),
        valid_to=_time(p.get("validTo")),
        start=_time(schedule.get("startSchedule")),
        duration_s=schedule.get("duration"),
        transaction_id=None if tx is None else str(tx),
        purpose_name=str(p["chargingProfilePurpose"]),
        raw=p,
    )


def profile_v16(connector_id: int, p: dict[str, Any]) -> Profile:
    """A 1.6 ``csChargingProfiles`` (SetChargingProfile, RemoteStartTransaction)."""
    return _profile(connector_id, p, p["chargingSchedule"], "transactionId")


def profile_v201(evse_id: int, p: dict[str, Any]) -> Profile:
    """A 2.0.1 ``chargingProfile``; of its schedules, the first is obeyed."""
    return _profile(evse_id, p, p["chargingSchedule"][0], "transactionId")


@dataclass(frozen=True, slots=True)
class Running:
    """The transaction on an EVSE, which TxProfiles and Relative profiles refer to."""

    transaction_id: str
    started_at: datetime


class ProfileStore:
    """The profiles a charger holds; ``phases`` and ``voltage`` turn amps into watts."""

    def __init__(self, phases: int = 3, voltage: float = 230.0) -> None:
        self.phases = phases
        self.voltage = voltage
        self.profiles: list[Profile] = []

    def install(self, profile: Profile) -> None:
        """As the spec says: a profile with the same id, or the same EVSE, purpose and
        stack level, is replaced."""
        self.profiles = [
            p
            for p in self.profiles
            if p.id != profile.id
            and (p.evse, p.purpose, p.stack_level)
            != (profile.evse, profile.purpose, profile.stack_level)
        ]
        self.profiles.append(profile)

    def clear(
        self,
        profile_id: int | None = None,
        evse: int | None = None,
        purpose_name: str | None = None,
        stack_level: int | None = None,
    ) -> int:
        """Remove the profiles matching every criterion given; how many went."""
        kept = [
            p
            for p in self.profiles
            if not (
                (profile_id is None or p.id == profile_id)
                and (evse is None or p.evse == evse)
                and (purpose_name is None or _PURPOSES.get(purpose_name) == p.purpose)
                and (stack_level is None or p.stack_level == stack_level)
            )
        ]
        removed = len(self.profiles) - len(kept)
        self.profiles = kept
        return removed

    def transaction_ended(self, transaction_id: str) -> None:
        """A TxProfile lives as long as its transaction."""
        self.profiles = [
            p
            for p in self.profiles
            if not (p.purpose == "tx" and p.transaction_id in (None, transaction_id))
        ]

    def limit_w(self, evse: int, at: datetime, running: Running | None) -> float | None:
        """The EVSE's composite limit in watts at ``at``; None: no profile limits it."""
        cap = self._highest(self._of("max", (0, evse)), at, running)
        session = None
        if running is not None:
            mine = [
                p
                for p in self._of("tx", (evse,))
                if p.transaction_id in (None, running.transaction_id)
            ]
            session = self._highest(mine, at, running)
        if session is None:
            session = self._highest(self._of("tx_default", (evse,)), at, running)
        if session is None:
            session = self._highest(self._of("tx_default", (0,)), at, running)
        found = [w for w in (cap, session) if w is not None]
        return min(found) if found else None

    def composite(
        self, evse: int, start: datetime, duration_s: int, running: Running | None
    ) -> list[tuple[int, float | None]]:
        """The composite schedule from ``start``: (offset in s, limit in W or None), one
        entry per change, as GetCompositeSchedule reports it."""
        end = start + timedelta(seconds=duration_s)
        moments = {start}
        for p in self.profiles:
            moments |= {m for m in self._boundaries(p, start, end, running) if start <= m < end}
        schedule: list[tuple[int, float | None]] = []
        for moment in sorted(moments):
            limit = self.limit_w(evse, moment, running)
            if not schedule or schedule[-1][1] != limit:
                schedule.append((int((moment - start).total_seconds()), limit))
        return schedule

    def _of(self, purpose: Purpose, evses: Iterable[int]) -> list[Profile]:
        wanted = set(evses)
        return [p for p in self.profiles if p.purpose == purpose and p.evse in wanted]

    def _highest(
        self, profiles: list[Profile], at: datetime, running: Running | None
    ) -> float | None:
        for p in sorted(profiles, key=lambda p: p.stack_level, reverse=True):
            watts = self._limit_of(p, at, running)
            if watts is not None:
                return watts
        return None

    def _schedule_start(self, p: Profile, at: datetime, running: Running | None) -> datetime | None:
        if p.kind == "Relative":
            return running.started_at if running is not None else None
        origin = p.start or p.valid_from
        if origin is None:
            return None
        step = _RECURRENCE.get(p.recurrency or "") if p.kind == "Recurring" else None
        if step is not None and at >= origin:
            return origin + step * ((at - origin) // step)
        return origin

    def _limit_of(self, p: Profile, at: datetime, running: Running | None) -> float | None:
        if (p.valid_from is not None and at < p.valid_from) or (
            p.valid_to is not None and at >= p.valid_to
        ):
            return None
        # Without a start (an Absolute profile with none, a Relative one before its
        # transaction) the schedule is read from its first period.
        begin = self._schedule_start(p, at, running) or at
        if at < begin:
            return None
        offset = (at - begin).total_seconds()
        if p.duration_s is not None and offset >= p.duration_s:
            return None
        current = [q for q in p.periods if q.start_s <= offset]
        if not current:
            return None
        period = current[-1]
        if p.unit == "A":
            return period.limit * self.voltage * (period.phases or self.phases)
        return period.limit

    def _boundaries(
        self, p: Profile, start: datetime, end: datetime, running: Running | None
    ) -> set[datetime]:
        found = {m for m in (p.valid_from, p.valid_to) if m is not None}
        begin = self._schedule_start(p, start, running) or start
        step = _RECURRENCE.get(p.recurrency or "") if p.kind == "Recurring" else None
        while begin < end:
            found |= {begin + timedelta(seconds=q.start_s) for q in p.periods}
            if p.duration_s is not None:
                found.add(begin + timedelta(seconds=p.duration_s))
            if step is None:
                break
            begin += step
        return found
