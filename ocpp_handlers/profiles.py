"""Charging profile commands (:mod:`edge.core.profiles`) as each version's CALL."""

from __future__ import annotations

from typing import Any

from edge.core import commands as cmd
from edge.core.profiles import (
    PURPOSE_NAMES_16,
    PURPOSE_NAMES_201,
    ChargingProfile,
    ClearChargingProfile,
    GetChargingProfiles,
    GetCompositeSchedule,
    SchedulePeriod,
    SetChargingProfile,
)

Payload = dict[str, Any]


def _periods(periods: tuple[SchedulePeriod, ...]) -> list[Payload]:
    found = []
    for period in periods:
        item: Payload = {"startPeriod": period.start_s, "limit": round(period.limit, 1)}
        if period.phases is not None:
            item["numberPhases"] = period.phases
        found.append(item)
    return found


def _schedule(profile: ChargingProfile) -> Payload:
    schedule: Payload = {
        "chargingRateUnit": profile.unit,
        "chargingSchedulePeriod": _periods(profile.periods),
    }
    if profile.start is not None:
        schedule["startSchedule"] = profile.start.isoformat()
    if profile.duration_s is not None:
        schedule["duration"] = profile.duration_s
    return schedule


def _kind(profile: ChargingProfile) -> str:
    if profile.start is not None:
        return "Absolute"
    if profile.purpose == "max":
        raise cmd.UnsupportedCommand("a charger's maximum profile needs a start (Absolute)")
    return "Relative"


def _common(profile: ChargingProfile, names: dict[Any, str]) -> Payload:
    payload: Payload = {
        "stackLevel": profile.stack_level,
        "chargingProfilePurpose": names[profile.purpose],
        "chargingProfileKind": _kind(profile),
    }
    if profile.valid_to is not None:
        payload["validTo"] = profile.valid_to.isoformat()
    return payload


def to_call_v16(command: object) -> tuple[str, Payload] | None:
    match command:
        case SetChargingProfile(evse_id=evse_id, profile=profile):
            body = {"chargingProfileId": profile.profile_id, **_common(profile, PURPOSE_NAMES_16)}
            if profile.transaction_id is not None:
                if not profile.transaction_id.lstrip("-").isdigit():
                    raise cmd.UnsupportedCommand("an OCPP 1.6 transaction id is a number")
                body["transactionId"] = int(profile.transaction_id)
            body["chargingSchedule"] = _schedule(profile)
            return "SetChargingProfile", {"connectorId": evse_id, "csChargingProfiles": body}
        case ClearChargingProfile(
            profile_id=profile_id, evse_id=evse_id, purpose=purpose, stack_level=level
        ):
            payload: Payload = {}
            if profile_id is not None:
                payload["id"] = profile_id
            if evse_id is not None:
                payload["connectorId"] = evse_id
            if purpose is not None:
                payload["chargingProfilePurpose"] = PURPOSE_NAMES_16[purpose]
            if level is not None:
                payload["stackLevel"] = level
            return "ClearChargingProfile", payload
        case GetCompositeSchedule(evse_id=evse_id, duration_s=duration, unit=unit):
            payload = {"connectorId": evse_id, "duration": duration}
            if unit is not None:
                payload["chargingRateUnit"] = unit
            return "GetCompositeSchedule", payload
        case GetChargingProfiles():
            raise cmd.UnsupportedCommand(
                "GetChargingProfiles is OCPP 2.0.1; ask a 1.6 charger for its composite schedule"
            )
    return None


def to_call_v201(command: object) -> tuple[str, Payload] | None:
    match command:
        case SetChargingProfile(evse_id=evse_id, profile=profile):
            body = {"id": profile.profile_id, **_common(profile, PURPOSE_NAMES_201)}
            if profile.transaction_id is not None:
                body["transactionId"] = profile.transaction_id
            body["chargingSchedule"] = [{"id": profile.profile_id, **_schedule(profile)}]
            return "SetChargingProfile", {"evseId": evse_id, "chargingProfile": body}
        case ClearChargingProfile(
            profile_id=profile_id, evse_id=evse_id, purpose=purpose, stack_level=level
        ):
            payload: Payload = {}
            if profile_id is not None:
                payload["chargingProfileId"] = profile_id
            criteria: Payload = {}
            if evse_id is not None:
                criteria["evseId"] = evse_id
            if purpose is not None:
                criteria["chargingProfilePurpose"] = PURPOSE_NAMES_201[purpose]
            if level is not None:
                criteria["stackLevel"] = level
            if criteria:
                payload["chargingProfileCriteria"] = criteria
            return "ClearChargingProfile", payload
        case GetCompositeSchedule(evse_id=evse_id, duration_s=duration, unit=unit):
            payload = {"evseId": evse_id, "duration": duration}
            if unit is not None:
                payload["chargingRateUnit"] = unit
            return "GetCompositeSchedule", payload
        case GetChargingProfiles(
            request_id=request_id, evse_id=evse_id, purpose=purpose, stack_level=level
        ):
            wanted: Payload = {}
            if purpose is not None:
                wanted["chargingProfilePurpose"] = PURPOSE_NAMES_201[purpose]
            if level is not None:
                wanted["stackLevel"] = level
            payload = {"requestId": request_id, "chargingProfile": wanted}
            if evse_id is not None:
                payload["evseId"] = evse_id
            return "GetChargingProfiles", payload
    return None
