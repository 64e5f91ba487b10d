"""The parking service's tables (no other service reads them)."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    false,
)

from central.infra.db import UTCDateTime

metadata = MetaData()

lot_configuration = Table(
    "lot_configuration",
    metadata,
    Column("site_id", String(64), primary_key=True),
    Column("name", String(128), nullable=False, server_default=""),
    Column("timezone", String(64), nullable=False, server_default="UTC"),
    Column("hold_minutes", Integer, nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
)

parking_slots = Table(
    "parking_slots",
    metadata,
    Column("site_id", String(64), nullable=False),
    Column("slot_id", String(64), nullable=False),
    Column("slot_type", String(32), nullable=False),
    Column("charger_id", String(64), nullable=True),
    Column("state", String(16), nullable=False, server_default="unknown"),
    Column("out_of_service", Boolean, nullable=False, server_default=false()),
    Column("sensor_online", Boolean, nullable=True),
    Column("state_changed_at", UTCDateTime(), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("site_id", "slot_id", name="pk_parking_slots"),
)

parking_reservations = Table(
    "parking_reservations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("site_id", String(64), nullable=False),
    Column("slot_id", String(64), nullable=False),
    Column("slot_type", String(32), nullable=False),
    Column("vehicle_id", String(64), nullable=False),
    Column("starts_at", UTCDateTime(), nullable=False),
    Column("ends_at", UTCDateTime(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("origin", String(8), nullable=False, server_default="api"),
    Column("command_id", String(64), nullable=True),
    Column("detail", String(256), nullable=False, server_default=""),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_parking_reservations_slot", "site_id", "slot_id", "status"),
    Index("ix_parking_reservations_vehicle", "vehicle_id", "status"),
    Index("ix_parking_reservations_status", "status", "starts_at"),
    Index("ix_parking_reservations_command", "command_id"),
)

parking_history = Table(
    "parking_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(96), nullable=False, unique=True),
    Column("site_id", String(64), nullable=False),
    Column("slot_id", String(64), nullable=True),
    Column("vehicle_id", String(64), nullable=True),
    Column("reservation_id", String(64), nullable=True),
    Column("kind", String(32), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("duration_s", Integer, nullable=True),
    Column("data", Text, nullable=False, server_default="{}"),
    Index("ix_parking_history_vehicle", "vehicle_id", "at"),
)
