"""The sync service's tables: per-site sequence (stored and published), the event log,
the command queue."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from central.infra.db import UTCDateTime

metadata = MetaData()

sites = Table(
    "sync_sites",
    metadata,
    Column("site_id", String(64), primary_key=True),
    Column("last_sequence", Integer, nullable=False, server_default="0"),
    Column("last_seen_at", UTCDateTime(), nullable=True),
    # every event of the site up to this sequence is on the bus (central.sync.service)
    Column("published_sequence", Integer, nullable=False, server_default="0"),
)

events = Table(
    "sync_events",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("site_id", String(64), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("type", String(64), nullable=False),
    Column("time", UTCDateTime(), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("body", Text, nullable=False),
    UniqueConstraint("site_id", "sequence", name="uq_sync_events_site_sequence"),
)

commands = Table(
    "sync_commands",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("site_id", String(64), nullable=False),
    Column("type", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("delivered_at", UTCDateTime(), nullable=True),
    Column("deliveries", Integer, nullable=False, server_default="0"),
    Column("acked_at", UTCDateTime(), nullable=True),
    Index("ix_sync_commands_pending", "site_id", "acked_at", "expires_at"),
)
