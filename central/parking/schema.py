"""The parking API's request and answer bodies: what its OpenAPI schema shows.

They live apart from the routes (:mod:`central.parking.api`) because the bookings
(:mod:`central.parking.bookings`) take and give the same bodies, and the routes call the
bookings: one module of bodies keeps the imports one way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field, model_validator

from central.api_types import SiteId, SlotId, SlotType, VehicleId
from central.parking.reservations import ReservationStatus


class ReserveRequest(BaseModel):
    vehicle_id: VehicleId
    site_id: SiteId
    slot_id: SlotId | None = Field(default=None, description="a given slot, or")
    slot_type: SlotType | None = Field(default=None, description="any slot of this type")
    starts_at: AwareDatetime | None = Field(default=None, description="default: now")
    ends_at: AwareDatetime | None = None
    duration_minutes: int | None = Field(default=None, ge=5, le=7 * 24 * 60)

    @model_validator(mode="after")
    def _window(self) -> ReserveRequest:
        if (self.ends_at is None) == (self.duration_minutes is None):
            raise ValueError("give exactly one of ends_at and duration_minutes")
        return self


class Reservation(BaseModel):
    id: str
    site_id: str
    slot_id: str
    slot_type: str
    vehicle_id: str
    starts_at: datetime
    ends_at: datetime
    status: ReservationStatus
    origin: str
    command_id: str | None
    detail: str
    created_at: datetime
    updated_at: datetime
    site_online: bool | None = Field(
        default=None,
        description="on a new reservation, false: the site is offline; it stays 'booked' "
        "(central holds the slot) until the site confirms or rejects it when back",
    )

    @classmethod
    def of_row(cls, row: Any) -> Reservation:
        """A ``parking_reservations`` row as an answer."""
        return cls.model_validate(row._mapping, from_attributes=False)


class TypeStatus(BaseModel):
    slot_type: str
    total: int
    free: int
    occupied: int
    reserved: int
    out_of_service: int
    unknown: int


class SiteStatus(BaseModel):
    site_id: str
    name: str
    slot_types: list[TypeStatus]


class StatusAnswer(BaseModel):
    at: datetime
    sites: list[SiteStatus]


class SlotAnswer(BaseModel):
    site_id: str
    slot_id: str
    slot_type: str
    charger_id: str | None
    state: str
    out_of_service: bool
    sensor_online: bool | None
    state_changed_at: datetime | None
    upcoming: list[Reservation]


class HistoryEntry(BaseModel):
    at: datetime
    kind: str
    site_id: str
    slot_id: str | None
    reservation_id: str | None
    duration_s: int | None


class SlotConfig(BaseModel):
    slot_id: SlotId
    slot_type: SlotType = "standard"
    charger_id: SlotId | None = None
    out_of_service: bool = False


class LotConfig(BaseModel):
    name: str = Field(default="", max_length=128)
    timezone: str = Field(default="UTC", max_length=64, pattern=r"^[A-Za-z_]+(/[A-Za-z0-9_+-]+)*$")
    hold_minutes: int | None = Field(default=None, ge=0, le=24 * 60)
    slots: list[SlotConfig] = Field(default_factory=list, max_length=5000)


class LotAnswer(LotConfig):
    site_id: str
    updated_at: datetime
