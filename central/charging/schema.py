"""The charging API's request and answer bodies (what its OpenAPI schema shows), and each
answer built from a row of the service's tables.

They live apart from the routes (:mod:`central.charging.api`) because the commands
(:mod:`central.charging.commands`) and the priced sessions
(:mod:`central.charging.sessions`) take and give the same bodies, and the routes call
them: one module of bodies keeps the imports one way.
"""

from __future__ import annotations

import json
from datetime import datetime, time
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from central.api_types import ID_PATTERN, ChargerId, IdTag, SiteId, VehicleId
from central.infra.paging import Page
from central.pricing import Cost, Rate, TouWindow

Money = Annotated[Decimal, Field(ge=0, le=10_000, max_digits=12, decimal_places=6)]
SessionId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
UserId = Annotated[str, Field(pattern=ID_PATTERN, max_length=64)]


class StartRequest(BaseModel):
    site_id: SiteId
    charger_id: ChargerId
    evse_id: int | None = Field(default=None, ge=1, le=64)
    vehicle_id: VehicleId
    id_tag: IdTag | None = Field(
        default=None,
        deprecated=True,
        description="ignored: central makes a per-session app token for every remote start",
    )


class StopRequest(BaseModel):
    vehicle_id: VehicleId | None = None
    session_id: SessionId | None = None


class FirmwareRequest(BaseModel):
    """A firmware campaign on one site: the site's ``update_firmware`` command
    (docs/firmware.md). The site answers with each charger's own answer."""

    site_id: SiteId
    chargers: list[ChargerId] | None = Field(
        default=None, min_length=1, max_length=1000, description="absent: every charger"
    )
    location: str = Field(
        max_length=512,
        pattern=r"^(?i:https?|ftps?)://[^\s/:@]+[^\s]*$",
        description="where the chargers download the firmware: an http(s) or ftp(s) URL",
    )
    retrieve_at: AwareDatetime | None = Field(default=None, description="absent: now")
    retries: int | None = Field(default=None, ge=0, le=10)
    retry_interval: int | None = Field(default=None, ge=0, le=86_400, description="seconds")
    signature: str | None = Field(default=None, min_length=1, max_length=800)
    signing_certificate: str | None = Field(default=None, min_length=1, max_length=5500)


class SiteLimitRequest(BaseModel):
    """A temporary site limit for the site's load management: the site's
    ``set_site_limit`` command (docs/power-central.md)."""

    model_config = ConfigDict(extra="forbid")

    site_limit_kw: float | None = Field(
        gt=0,
        le=100_000,
        description="kW, at most the site's configured limit (a higher one leaves that one "
        "in force); null: back to the configured limit",
    )
    until: AwareDatetime | None = Field(
        default=None, description="when it ends (in the future); absent: until removed"
    )

    @model_validator(mode="after")
    def _until_needs_a_limit(self) -> SiteLimitRequest:
        if self.site_limit_kw is None and self.until is not None:
            raise ValueError("until goes with a site_limit_kw, not with null")
        return self


class CommandAnswer(BaseModel):
    command_id: str
    type: str
    site_id: str
    status: Literal["pending", "accepted", "rejected", "failed", "expired", "timeout", "unknown"]
    detail: str
    result: dict[str, Any]
    created_at: datetime
    expires_at: datetime
    site_online: bool | None = Field(
        default=None,
        description="false: the site is offline; a pending command waits for it until "
        "expires_at, then becomes expired",
    )
    failure_code: str | None = Field(
        default=None, description="why the charge failed (charging.failed code), if it did"
    )
    failure_reason: str | None = None


# a session's central.pricing.Cost as the API shows it (a comment: a docstring would
# change the OpenAPI schema)
class CostAnswer(BaseModel):
    currency: str
    energy_kwh: Decimal
    energy: Decimal
    parking: Decimal
    idle: Decimal
    idle_minutes: int
    total: Decimal


class SessionAnswer(BaseModel):
    session_id: str
    site_id: str
    charger_id: str
    evse_id: int | None
    vehicle_id: str | None
    driver_id: str | None
    status: str
    started_at: datetime
    stopped_at: datetime | None
    energy_wh: int
    power_w: int | None
    reason: str | None
    cost: CostAnswer | None


# a site's charging.failed for the vehicle (a comment: a docstring would change the
# OpenAPI schema)
class FailureAnswer(BaseModel):
    code: str
    reason: str
    at: datetime
    charger_id: str | None
    command_id: str | None
    session_id: str | None


class VehicleStatus(BaseModel):
    vehicle_id: str
    charging: bool
    session: SessionAnswer | None
    pending_commands: list[CommandAnswer]
    last_failure: FailureAnswer | None = Field(
        default=None, description="the latest charge of the vehicle that failed, and why"
    )


class IdTagAnswer(BaseModel):
    id_tag: str
    vehicle_id: str
    driver_id: str | None
    kind: Literal["rfid", "app"]
    status: str
    expires_at: datetime | None
    created_at: datetime


class IdTagRequest(BaseModel):
    vehicle_id: VehicleId
    driver_id: UserId | None = Field(
        default=None, description="operators: the card's driver; a driver registers as itself"
    )
    status: Literal["Accepted", "Blocked"] = "Accepted"
    expires_at: AwareDatetime | None = None


class TouWindowModel(BaseModel):
    start: time
    end: time
    energy_price_per_kwh: Money
    days: list[int] = Field(default_factory=list, max_length=7, description="0=Monday")

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[int]) -> list[int]:
        if any(d < 0 or d > 6 for d in value):
            raise ValueError("days are 0 (Monday) to 6 (Sunday)")
        return value

    @field_validator("start", "end")
    @classmethod
    def _naive_time(cls, value: time) -> time:
        return value.replace(tzinfo=None)


class RateModel(BaseModel):
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    energy_price_per_kwh: Money
    parking_price_per_hour: Money = Decimal(0)
    idle_fee_per_minute: Money = Decimal(0)
    idle_grace_minutes: int = Field(default=0, ge=0, le=24 * 60)
    timezone: str = Field(default="UTC", max_length=64)
    tou_windows: list[TouWindowModel] = Field(default_factory=list, max_length=48)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if value not in _zones():
            raise ValueError(f"unknown time zone {value!r}")
        return value

    def to_rate(self) -> Rate:
        """This rate for the pricing engine (:mod:`central.pricing`)."""
        return Rate(
            currency=self.currency,
            energy_price_per_kwh=self.energy_price_per_kwh,
            parking_price_per_hour=self.parking_price_per_hour,
            idle_fee_per_minute=self.idle_fee_per_minute,
            idle_grace_minutes=self.idle_grace_minutes,
            timezone=self.timezone,
            tou=tuple(
                TouWindow(w.start, w.end, w.energy_price_per_kwh, frozenset(w.days))
                for w in self.tou_windows
            ),
        )


class SiteRate(RateModel):
    site_id: str
    updated_at: datetime


class StationAnswer(BaseModel):
    site_id: str
    charger_id: str
    status: str
    online: bool | None
    error_code: str | None
    evses: dict[str, Any]
    updated_at: datetime


class ReportedLimit(BaseModel):
    """The site limit in force as the site last reported it (power.limit_changed)."""

    limit_kw: float
    configured_kw: float
    until: datetime | None
    set_by: str = Field(description="local-api, central, expiry, ...")
    reported_at: datetime
    expired: bool = Field(
        description="until has passed: the site is back on configured_kw and reports "
        "it when it next runs"
    )


class PowerAlert(BaseModel):
    """A charger that refused or ignored its limit (power.overshoot)."""

    charger_id: str
    reason: str
    measured_kw: float | None
    offered_kw: float | None
    at: datetime


class SitePower(BaseModel):
    site_id: str
    limit: ReportedLimit | None = Field(description="null: the site never reported one")
    alerts: Page[PowerAlert] = Field(description="newest first, paged by limit and cursor")


_ZONES: set[str] = set()


def _zones() -> set[str]:
    if not _ZONES:
        _ZONES.update(available_timezones())
        _ZONES.add("UTC")
    return _ZONES


# ---- answers from rows of central.charging.tables -------------------------------------


def site_rate(row: Any) -> SiteRate:
    return SiteRate(
        site_id=row.site_id,
        currency=row.currency,
        energy_price_per_kwh=Decimal(row.energy_price_per_kwh),
        parking_price_per_hour=Decimal(row.parking_price_per_hour),
        idle_fee_per_minute=Decimal(row.idle_fee_per_minute),
        idle_grace_minutes=row.idle_grace_minutes,
        timezone=row.timezone,
        tou_windows=[TouWindowModel.model_validate(w) for w in json.loads(row.tou_windows)],
        updated_at=row.updated_at,
    )


def command_answer(row: Any, now: datetime) -> CommandAnswer:
    state = row.status
    if state == "pending" and now >= row.expires_at:
        state = "expired"
    return CommandAnswer(
        command_id=row.id,
        type=row.type,
        site_id=row.site_id,
        status=state,
        detail=row.detail,
        result=json.loads(row.result),
        created_at=row.created_at,
        expires_at=row.expires_at,
        failure_code=row.failure_code,
        failure_reason=row.failure_reason,
    )


def failure_answer(row: Any) -> FailureAnswer:
    """A ``charging_history`` row of kind ``failed`` (its data as the site reported it)."""
    data = json.loads(row.data)
    return FailureAnswer(
        code=str(data.get("code") or "Other"),
        reason=str(data.get("reason") or ""),
        at=row.at,
        charger_id=data.get("charger_id"),
        command_id=data.get("command_id"),
        session_id=row.session_id,
    )


def session_answer(row: Any, cost: Cost | None) -> SessionAnswer:
    return SessionAnswer(
        session_id=row.id,
        site_id=row.site_id,
        charger_id=row.charger_id,
        evse_id=row.evse_id,
        vehicle_id=row.vehicle_id,
        driver_id=row.driver_id,
        status=row.status,
        started_at=row.started_at,
        stopped_at=row.stopped_at,
        energy_wh=row.energy_wh,
        power_w=row.power_w,
        reason=row.reason,
        cost=None if cost is None else CostAnswer.model_validate(cost, from_attributes=True),
    )


def station_answer(row: Any) -> StationAnswer:
    return StationAnswer(
        site_id=row.site_id,
        charger_id=row.charger_id,
        status=row.status,
        online=row.online,
        error_code=row.error_code,
        evses=json.loads(row.evses),
        updated_at=row.updated_at,
    )


def tag_answer(row: Any) -> IdTagAnswer:
    return IdTagAnswer(
        id_tag=row.id_tag,
        vehicle_id=row.vehicle_id,
        driver_id=row.driver_id,
        kind=row.kind,
        status=row.status,
        expires_at=row.expires_at,
        created_at=row.created_at,
    )
