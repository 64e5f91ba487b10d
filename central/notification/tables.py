"""The notification service's own tables (its database only)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from central.infra.db import UTCDateTime

metadata = MetaData()

notifications = Table(
    "notifications",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("dedup_key", String(200), nullable=False, unique=True),
    Column("user_id", String(64), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("site_id", String(64), nullable=False),
    Column("channel", String(8), nullable=False),
    Column("address", String(512), nullable=False),
    Column("locale", String(16), nullable=False),
    Column("subject", String(512), nullable=False),
    Column("body", Text, nullable=False),
    Column("urgent", Boolean, nullable=False),
    Column("status", String(12), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("deliver_at", UTCDateTime(), nullable=False),
    Column("sent_at", UTCDateTime(), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_notifications_user_created", "user_id", "created_at"),
    Index("ix_notifications_event", "event_id"),
)

notification_queue = Table(
    "notification_queue",
    metadata,
    Column(
        "notification_id",
        String(36),
        ForeignKey("notifications.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("channel", String(8), nullable=False),
    Column("state", String(12), nullable=False),  # pending | dead
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("last_error", Text, nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_notification_queue_due", "state", "next_attempt_at"),
)

notification_templates = Table(
    "notification_templates",
    metadata,
    Column("event_type", String(64), primary_key=True),
    Column("channel", String(8), primary_key=True),
    Column("locale", String(16), primary_key=True),
    Column("subject", String(512), nullable=False),
    Column("body", Text, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

user_preferences = Table(
    "user_preferences",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("locale", String(16), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("email", String(512), nullable=True),
    Column("email_enabled", Boolean, nullable=False),
    Column("phone", String(32), nullable=True),
    Column("sms_enabled", Boolean, nullable=False),
    Column("push_token", String(512), nullable=True),
    Column("push_enabled", Boolean, nullable=False),
    Column("events", JSON, nullable=False),
    Column("quiet_start", String(5), nullable=True),
    Column("quiet_end", String(5), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# Which vehicles and id tags belong to a user: the lookup from an event to its recipients.
user_identities = Table(
    "notification_user_identities",
    metadata,
    Column("kind", String(8), primary_key=True),  # vehicle | id_tag
    Column("value", String(64), primary_key=True),
    Column(
        "user_id",
        String(64),
        ForeignKey("user_preferences.user_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Index("ix_notification_user_identities_user", "user_id"),
)
