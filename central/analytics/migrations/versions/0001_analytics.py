"""analytics tables

Revision ID: analytics_0001
Revises:
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "analytics_0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _zero(name: str, type_: sa.types.TypeEngine[Any]) -> sa.Column[Any]:
    return sa.Column(name, type_, nullable=False, server_default="0")


def upgrade() -> None:
    op.create_table(
        "event_logs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(128), nullable=True),
        sa.Column("time", TS, nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("vehicle_id", sa.String(64), nullable=True),
        sa.Column("vehicle_type", sa.String(64), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("received_at", TS, nullable=False),
    )
    op.create_index("ix_event_logs_site_time", "event_logs", ["site_id", "time"])
    op.create_index("ix_event_logs_type_time", "event_logs", ["type", "time"])
    op.create_table(
        "usage_metrics",
        sa.Column("site_id", sa.String(64), primary_key=True),
        sa.Column("bucket", TS, primary_key=True),
        _zero("reservations", sa.Integer()),
        _zero("releases", sa.Integer()),
        _zero("arrivals", sa.Integer()),
        _zero("departures", sa.Integer()),
        _zero("occupied_seconds", sa.Float()),
        _zero("sessions_started", sa.Integer()),
        _zero("sessions_completed", sa.Integer()),
        _zero("sessions_failed", sa.Integer()),
        _zero("charging_seconds", sa.Float()),
        _zero("energy_wh", sa.Float()),
    )
    op.create_index("ix_usage_metrics_bucket", "usage_metrics", ["bucket"])
    op.create_table(
        "revenue_metrics",
        sa.Column("site_id", sa.String(64), primary_key=True),
        sa.Column("bucket", TS, primary_key=True),
        sa.Column("currency", sa.String(3), primary_key=True),
        _zero("sessions", sa.Integer()),
        _zero("energy_wh", sa.Float()),
        _zero("energy_minor", sa.BigInteger()),
        _zero("time_minor", sa.BigInteger()),
        _zero("idle_minor", sa.BigInteger()),
        _zero("fee_minor", sa.BigInteger()),
        _zero("total_minor", sa.BigInteger()),
    )
    op.create_index("ix_revenue_metrics_bucket", "revenue_metrics", ["bucket"])
    op.create_table(
        "system_health",
        sa.Column("component", sa.String(128), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("last_seen", TS, nullable=True),
        sa.Column("last_event_time", TS, nullable=True),
        _zero("events", sa.BigInteger()),
        sa.Column("lag_s", sa.Float(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
    )
    op.create_table(
        "analytics_slots",
        sa.Column("site_id", sa.String(64), primary_key=True),
        sa.Column("slot_id", sa.String(64), primary_key=True),
        sa.Column("slot_type", sa.String(32), nullable=True),
        sa.Column("first_seen", TS, nullable=False),
    )
    op.create_table(
        "analytics_visits",
        sa.Column("site_id", sa.String(64), primary_key=True),
        sa.Column("visit_id", sa.String(64), primary_key=True),
        sa.Column("slot_id", sa.String(64), nullable=True),
        sa.Column("arrived_at", TS, nullable=False),
        sa.Column("departed_at", TS, nullable=True),
    )
    op.create_index("ix_analytics_visits_open", "analytics_visits", ["site_id", "departed_at"])
    op.create_table(
        "analytics_rates",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("site_id", sa.String(64), nullable=True),
        sa.Column("rate_id", sa.String(64), nullable=False),
        sa.Column("rate", sa.JSON(), nullable=False),
        sa.Column("learnt_at", TS, nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
    )
    op.create_index("ix_analytics_rates_site", "analytics_rates", ["site_id"])


def downgrade() -> None:
    for table in (
        "analytics_rates",
        "analytics_visits",
        "analytics_slots",
        "system_health",
        "revenue_metrics",
        "usage_metrics",
        "event_logs",
    ):
        op.drop_table(table)
