"""charging tables

Revision ID: charging_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "charging_0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "charger_stations",
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("charger_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False, server_default="Unknown"),
        sa.Column("online", sa.Boolean, nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("evses", sa.Text, nullable=False, server_default="{}"),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("site_id", "charger_id", name="pk_charger_stations"),
    )
    op.create_table(
        "charging_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("charger_id", sa.String(64), nullable=False),
        sa.Column("evse_id", sa.Integer, nullable=True),
        sa.Column("vehicle_id", sa.String(64), nullable=True),
        sa.Column("id_tag", sa.String(64), nullable=True),
        sa.Column("transaction_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("stopped_at", TZ, nullable=True),
        sa.Column("energy_wh", sa.Integer, nullable=False, server_default="0"),
        sa.Column("power_w", sa.Integer, nullable=True),
        sa.Column("progress_at", TZ, nullable=True),
        sa.Column("charging_ended_at", TZ, nullable=True),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index("ix_charging_sessions_vehicle", "charging_sessions", ["vehicle_id", "status"])
    op.create_index(
        "ix_charging_sessions_charger", "charging_sessions", ["site_id", "charger_id", "status"]
    )
    op.create_table(
        "charging_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(96), nullable=False, unique=True),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=True),
        sa.Column("vehicle_id", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("energy_wh", sa.Integer, nullable=True),
        sa.Column("cost", sa.Text, nullable=True),
        sa.Column("data", sa.Text, nullable=False, server_default="{}"),
    )
    op.create_index("ix_charging_history_vehicle", "charging_history", ["vehicle_id", "at"])
    op.create_table(
        "charging_rates",
        sa.Column("site_id", sa.String(64), primary_key=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("energy_price_per_kwh", sa.String(32), nullable=False),
        sa.Column("parking_price_per_hour", sa.String(32), nullable=False),
        sa.Column("idle_fee_per_minute", sa.String(32), nullable=False),
        sa.Column("idle_grace_minutes", sa.Integer, nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("tou_windows", sa.Text, nullable=False, server_default="[]"),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "charging_commands",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("charger_id", sa.String(64), nullable=True),
        sa.Column("vehicle_id", sa.String(64), nullable=True),
        sa.Column("session_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("detail", sa.String(256), nullable=False, server_default=""),
        sa.Column("result", sa.Text, nullable=False, server_default="{}"),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index("ix_charging_commands_vehicle", "charging_commands", ["vehicle_id", "status"])


def downgrade() -> None:
    for table in (
        "charging_commands",
        "charging_rates",
        "charging_history",
        "charging_sessions",
        "charger_stations",
    ):
        op.drop_table(table)
