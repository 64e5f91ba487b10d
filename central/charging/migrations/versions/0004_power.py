"""load management at the sites: each site's limit in force as last reported, and the
chargers that refused or ignored their limit

Revision ID: charging_0004
Revises: charging_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "charging_0004"
down_revision = "charging_0003"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "charging_power_limits",
        sa.Column("site_id", sa.String(64), primary_key=True),
        sa.Column("limit_kw", sa.Float, nullable=False),
        sa.Column("configured_kw", sa.Float, nullable=False),
        sa.Column("until", TZ, nullable=True),
        sa.Column("set_by", sa.String(64), nullable=False),
        sa.Column("reported_at", TZ, nullable=False),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("event_id", sa.String(96), nullable=False),
    )
    op.create_table(
        "charging_power_alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(96), nullable=False, unique=True),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("charger_id", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(255), nullable=False),
        sa.Column("measured_kw", sa.Float, nullable=True),
        sa.Column("offered_kw", sa.Float, nullable=True),
        sa.Column("at", TZ, nullable=False),
    )
    op.create_index(
        "ix_charging_power_alerts_site", "charging_power_alerts", ["site_id", "at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_charging_power_alerts_site", "charging_power_alerts")
    op.drop_table("charging_power_alerts")
    op.drop_table("charging_power_limits")
