"""The charging service's tables (no other service reads them)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from central.infra.db import UTCDateTime

metadata = MetaData()

charger_stations = Table(
    "charger_stations",
    metadata,
    Column("site_id", String(64), nullable=False),
    Column("charger_id", String(64), nullable=False),
    Column("status", String(32), nullable=False, server_default="Unknown"),
    Column("online", Boolean, nullable=True),
    Column("error_code", String(64), nullable=True),
    Column("evses", Text, nullable=False, server_default="{}"),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("site_id", "charger_id", name="pk_charger_stations"),
)

charging_sessions = Table(
    "charging_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("site_id", String(64), nullable=False),
    Column("charger_id", String(64), nullable=False),
    Column("evse_id", Integer, nullable=True),
    Column("vehicle_id", String(64), nullable=True),
    Column("id_tag", String(64), nullable=True),
    Column("transaction_id", String(64), nullable=True),
    Column("status", String(16), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("stopped_at", UTCDateTime(), nullable=True),
    Column("energy_wh", Integer, nullable=False, server_default="0"),
    Column("power_w", Integer, nullable=True),
    Column("progress_at", UTCDateTime(), nullable=True),
    Column("charging_ended_at", UTCDateTime(), nullable=True),
    Column("reason", String(64), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("driver_id", String(64), nullable=True),
    Index("ix_charging_sessions_vehicle", "vehicle_id", "status"),
    Index("ix_charging_sessions_charger", "site_id", "charger_id", "status"),
    Index("ix_charging_sessions_site_started", "site_id", "started_at"),
)

charging_history = Table(
    "charging_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(96), nullable=False, unique=True),
    Column("site_id", String(64), nullable=False),
    Column("session_id", String(64), nullable=True),
    Column("vehicle_id", String(64), nullable=True),
    Column("kind", String(32), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("energy_wh", Integer, nullable=True),
    Column("cost", Text, nullable=True),
    Column("data", Text, nullable=False, server_default="{}"),
    Column("driver_id", String(64), nullable=True),
    Index("ix_charging_history_vehicle", "vehicle_id", "at"),
)

charging_rates = Table(
    "charging_rates",
    metadata,
    Column("site_id", String(64), primary_key=True),
    Column("currency", String(3), nullable=False),
    Column("energy_price_per_kwh", String(32), nullable=False),
    Column("parking_price_per_hour", String(32), nullable=False),
    Column("idle_fee_per_minute", String(32), nullable=False),
    Column("idle_grace_minutes", Integer, nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("tou_windows", Text, nullable=False, server_default="[]"),
    Column("updated_at", UTCDateTime(), nullable=False),
)

charging_commands = Table(
    "charging_commands",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("site_id", String(64), nullable=False),
    Column("type", String(32), nullable=False),
    Column("charger_id", String(64), nullable=True),
    Column("vehicle_id", String(64), nullable=True),
    Column("session_id", String(64), nullable=True),
    Column("id_tag", String(64), nullable=True),
    Column("evse_id", Integer, nullable=True),
    Column("status", String(16), nullable=False),
    Column("detail", String(256), nullable=False, server_default=""),
    Column("result", Text, nullable=False, server_default="{}"),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    # why the charge failed (a site's charging.failed naming the command): code and reason
    Column("failure_code", String(32), nullable=True),
    Column("failure_reason", String(256), nullable=True),
    Index("ix_charging_commands_vehicle", "vehicle_id", "status"),
    Index("ix_charging_commands_tag", "site_id", "charger_id", "id_tag"),
)

# id tokens a site accepts, each for one vehicle (and its driver, where known): RFID cards
# registered by operators and drivers, and the per-session app tokens central makes for a
# remote start (kind "app", valid until expires_at, for one site). A session started with
# one of them belongs to that vehicle and driver.
charging_id_tags = Table(
    "charging_id_tags",
    metadata,
    Column("id_tag", String(64), primary_key=True),
    Column("vehicle_id", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("driver_id", String(64), nullable=True),
    Column("kind", String(8), nullable=False, server_default="rfid"),
    Column("status", String(16), nullable=False, server_default="Accepted"),
    Column("expires_at", UTCDateTime(), nullable=True),
    Column("site_id", String(64), nullable=True),  # an app token's site
    Index("ix_charging_id_tags_vehicle", "vehicle_id"),
    Index("ix_charging_id_tags_kind", "kind", "expires_at"),
)

# every change to the RFID cards, in order: its id is the version of the id tag list the
# sites are sent (a version only grows)
charging_id_tag_changes = Table(
    "charging_id_tag_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("id_tag", String(64), nullable=False),
    Column("change", String(16), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
)

# the sites charging has seen an event from since it pushes id tags: each got the full
# list once, then every change
charging_sites = Table(
    "charging_sites",
    metadata,
    Column("site_id", String(64), primary_key=True),
    Column("first_seen_at", UTCDateTime(), nullable=False),
)

# each site's limit in force as it last reported it (power.limit_changed): the newest by
# the site's event sequence wins, so a redelivered or late older event changes nothing
charging_power_limits = Table(
    "charging_power_limits",
    metadata,
    Column("site_id", String(64), primary_key=True),
    Column("limit_kw", Float, nullable=False),
    Column("configured_kw", Float, nullable=False),
    Column("until", UTCDateTime(), nullable=True),
    Column("set_by", String(64), nullable=False),
    Column("reported_at", UTCDateTime(), nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("event_id", String(96), nullable=False),
)

# chargers that refused or ignored the limit the site's load manager sent (power.overshoot)
charging_power_alerts = Table(
    "charging_power_alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(96), nullable=False, unique=True),
    Column("site_id", String(64), nullable=False),
    Column("charger_id", String(64), nullable=False),
    Column("reason", String(255), nullable=False),
    Column("measured_kw", Float, nullable=True),
    Column("offered_kw", Float, nullable=True),
    Column("at", UTCDateTime(), nullable=False),
    Index("ix_charging_power_alerts_site", "site_id", "at", "id"),
)
