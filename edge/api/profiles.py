"""Local HTTP API of charging profiles: set, clear and read back what limits a charger
(both versions; docs/power.md). With load management on, the manager's own profiles
(ids 9100-9399, stack levels 0 and 1) are its to change: a technician's profile at a
higher stack level overrides them in the charger, and the manager then counts that
charger at what it draws."""

from __future__ import annotations

import itertools
import time
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import AwareDatetime, BaseModel, Field, model_validator

from edge.api.commands import command_answer
from edge.core.power.profiles import MAX_PROFILE_ID, SESSION_PROFILE_ID
from edge.core.profiles import (
    ChargingProfile,
    ClearChargingProfile,
    GetChargingProfiles,
    GetCompositeSchedule,
    SchedulePeriod,
    SetChargingProfile,
)
from edge.ocpp.server import OcppServer
from edge.services.site import Site

Purpose = Literal["max", "tx_default", "tx"]
MANAGER_IDS = range(MAX_PROFILE_ID, SESSION_PROFILE_ID + 100)


class PeriodBody(BaseModel):
    start_s: int = Field(ge=0, le=7 * 86_400)
    limit: float = Field(ge=0, le=1_000_000)  # A per phase, or W
    phases: Literal[1, 3] | None = None


class ProfileBody(BaseModel):
    evse_id: int = Field(default=0, ge=0, le=1000)
    profile_id: int = Field(ge=1, le=2**31 - 1)
    purpose: Purpose
    stack_level: int = Field(default=0, ge=0, le=100)
    unit: Literal["A", "W"] = "A"
    periods: list[PeriodBody] = Field(min_length=1, max_length=24)
    start: AwareDatetime | None = None  # unset: from the transaction's start (Relative)
    duration_s: int | None = Field(default=None, ge=1, le=7 * 86_400)
    valid_to: AwareDatetime | None = None
    transaction_id: str | None = Field(default=None, min_length=1, max_length=36)

    @model_validator(mode="after")
    def _consistent(self) -> ProfileBody:
        starts = [p.start_s for p in self.periods]
        if starts[0] != 0 or starts != sorted(set(starts)):
            raise ValueError("periods start at 0 s and each later than the one before")
        if self.purpose == "tx" and (self.evse_id == 0 or self.transaction_id is None):
            raise ValueError("a tx profile names its EVSE (> 0) and its transaction_id")
        if self.purpose == "max" and self.evse_id != 0:
            raise ValueError("a max profile is the whole charger's: evse_id 0")
        if self.purpose == "max" and self.start is None:
            raise ValueError("a max profile needs a start")
        if self.profile_id in MANAGER_IDS:
            raise ValueError(
                f"profile ids {MANAGER_IDS.start}-{MANAGER_IDS.stop - 1} are the load manager's"
            )
        return self


class ClearBody(BaseModel):
    profile_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    evse_id: int | None = Field(default=None, ge=0, le=1000)
    purpose: Purpose | None = None
    stack_level: int | None = Field(default=None, ge=0, le=100)


class CompositeBody(BaseModel):
    evse_id: int = Field(default=0, ge=0, le=1000)
    duration_s: int = Field(default=3600, ge=1, le=7 * 86_400)
    unit: Literal["A", "W"] | None = None


class ListBody(BaseModel):
    evse_id: int | None = Field(default=None, ge=0, le=1000)
    purpose: Purpose | None = None
    stack_level: int | None = Field(default=None, ge=0, le=100)


def profiles_router(site: Site, server: OcppServer) -> APIRouter:
    router = APIRouter(prefix="/api/chargers/{charger_id}", tags=["charging profiles"])
    # 2.0.1 reports name the request; unique enough across restarts
    request_ids = itertools.count(int(time.time()) % 1_000_000 * 1000)

    async def run(charger_id: str, command: Any) -> dict[str, Any]:
        return await command_answer(site, server, charger_id, command)

    @router.post("/charging-profile")
    async def set_profile(charger_id: str, body: ProfileBody) -> dict[str, Any]:
        profile = ChargingProfile(
            body.profile_id,
            body.purpose,
            body.stack_level,
            body.unit,
            tuple(SchedulePeriod(p.start_s, p.limit, p.phases) for p in body.periods),
            start=body.start,
            duration_s=body.duration_s,
            valid_to=body.valid_to,
            transaction_id=body.transaction_id,
        )
        return await run(charger_id, SetChargingProfile(body.evse_id, profile))

    @router.post("/clear-charging-profile")
    async def clear_profile(charger_id: str, body: ClearBody) -> dict[str, Any]:
        if body.profile_id in MANAGER_IDS:
            raise HTTPException(422, "that profile is the load manager's")
        command = ClearChargingProfile(
            body.profile_id, body.evse_id, body.purpose, body.stack_level
        )
        return await run(charger_id, command)

    @router.post("/composite-schedule")
    async def composite(charger_id: str, body: CompositeBody) -> dict[str, Any]:
        return await run(charger_id, GetCompositeSchedule(body.evse_id, body.duration_s, body.unit))

    @router.post("/charging-profiles")
    async def report(charger_id: str, body: ListBody) -> dict[str, Any]:
        """2.0.1: the charger reports them in ReportChargingProfiles (its charger events)."""
        request_id = next(request_ids)
        command = GetChargingProfiles(request_id, body.evse_id, body.purpose, body.stack_level)
        return {**await run(charger_id, command), "request_id": request_id}

    return router
