"""The analytics service's own tables (its database only).

``event_logs`` keeps every event once (by id); ``usage_metrics`` and ``revenue_metrics``
are hourly counters per site moved in the same transaction, so a redelivered event
counts once. ``system_health`` keeps the last contact of each site and bus topic and the
last probe of each service. The ``analytics_*`` tables hold what analytics learns from
events: slots seen, open visits, rates.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
)

from central.infra.db import UTCDateTime

metadata = MetaData()

event_logs = Table(
    "event_logs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("site_id", String(64), nullable=False),
    Column("type", String(64), nullable=False),
    Column("subject", String(128), nullable=True),
    Column("time", UTCDateTime(), nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("vehicle_id", String(64), nullable=True),
    Column("vehicle_type", String(64), nullable=True),
    Column("data", JSON, nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Index("ix_event_logs_site_time", "site_id", "time"),
    Index("ix_event_logs_type_time", "type", "time"),
)

usage_metrics = Table(
    "usage_metrics",
    metadata,
    Column("site_id", String(64), primary_key=True),
    Column("bucket", UTCDateTime(), primary_key=True),
    Column("reservations", Integer, nullable=False, server_default="0"),
    Column("releases", Integer, nullable=False, server_default="0"),
    Column("arrivals", Integer, nullable=False, server_default="0"),
    Column("departures", Integer, nullable=False, server_default="0"),
    Column("occupied_seconds", Float, nullable=False, server_default="0"),
    Column("sessions_started", Integer, nullable=False, server_default="0"),
    Column("sessions_completed", Integer, nullable=False, server_default="0"),
    Column("sessions_failed", Integer, nullable=False, server_default="0"),
    Column("charging_seconds", Float, nullable=False, server_default="0"),
    Column("energy_wh", Float, nullable=False, server_default="0"),
    # reported times central corrected (central.reported_times), by where it placed them
    Column("clock_problems", Integer, nullable=False, server_default="0"),
    Index("ix_usage_metrics_bucket", "bucket"),
)

revenue_metrics = Table(
    "revenue_metrics",
    metadata,
    Column("site_id", String(64), primary_key=True),
    Column("bucket", UTCDateTime(), primary_key=True),
    Column("currency", String(3), primary_key=True),  # "" for sessions without a rate
    Column("sessions", Integer, nullable=False, server_default="0"),
    Column("energy_wh", Float, nullable=False, server_default="0"),
    Column("energy_minor", BigInteger, nullable=False, server_default="0"),
    Column("time_minor", BigInteger, nullable=False, server_default="0"),
    Column("idle_minor", BigInteger, nullable=False, server_default="0"),
    Column("fee_minor", BigInteger, nullable=False, server_default="0"),
    Column("total_minor", BigInteger, nullable=False, server_default="0"),
    Index("ix_revenue_metrics_bucket", "bucket"),
)

system_health = Table(
    "system_health",
    metadata,
    Column("component", String(128), primary_key=True),  # site:<id> | topic:<t> | service:<n>
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("last_seen", UTCDateTime(), nullable=True),
    Column("last_event_time", UTCDateTime(), nullable=True),
    Column("events", BigInteger, nullable=False, server_default="0"),
    Column("lag_s", Float, nullable=True),
    Column("detail", JSON, nullable=True),
)

slots = Table(
    "analytics_slots",
    metadata,
    Column("site_id", String(64), primary_key=True),
    Column("slot_id", String(64), primary_key=True),
    Column("slot_type", String(32), nullable=True),
    Column("first_seen", UTCDateTime(), nullable=False),
)

visits = Table(
    "analytics_visits",
    metadata,
    Column("site_id", String(64), primary_key=True),
    Column("visit_id", String(64), primary_key=True),
    Column("slot_id", String(64), nullable=True),
    Column("arrived_at", UTCDateTime(), nullable=False),
    Column("departed_at", UTCDateTime(), nullable=True),
    Index("ix_analytics_visits_open", "site_id", "departed_at"),
)

rates = Table(
    "analytics_rates",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("site_id", String(64), nullable=True),  # None: all sites
    Column("rate_id", String(64), nullable=False),
    Column("rate", JSON, nullable=False),
    Column("learnt_at", UTCDateTime(), nullable=False),
    Column("event_id", String(64), nullable=False),
    Index("ix_analytics_rates_site", "site_id"),
)
