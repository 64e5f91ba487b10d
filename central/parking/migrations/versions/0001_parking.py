"""parking tables

Revision ID: parking_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "parking_0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "lot_configuration",
        sa.Column("site_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, server_default=""),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
        sa.Column("hold_minutes", sa.Integer, nullable=True),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "parking_slots",
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("slot_id", sa.String(64), nullable=False),
        sa.Column("slot_type", sa.String(32), nullable=False),
        sa.Column("charger_id", sa.String(64), nullable=True),
        sa.Column("state", sa.String(16), nullable=False, server_default="unknown"),
        sa.Column("out_of_service", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("sensor_online", sa.Boolean, nullable=True),
        sa.Column("state_changed_at", TZ, nullable=True),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("site_id", "slot_id", name="pk_parking_slots"),
    )
    op.create_table(
        "parking_reservations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("slot_id", sa.String(64), nullable=False),
        sa.Column("slot_type", sa.String(32), nullable=False),
        sa.Column("vehicle_id", sa.String(64), nullable=False),
        sa.Column("starts_at", TZ, nullable=False),
        sa.Column("ends_at", TZ, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("origin", sa.String(8), nullable=False, server_default="api"),
        sa.Column("command_id", sa.String(64), nullable=True),
        sa.Column("detail", sa.String(256), nullable=False, server_default=""),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index(
        "ix_parking_reservations_slot", "parking_reservations", ["site_id", "slot_id", "status"]
    )
    op.create_index(
        "ix_parking_reservations_vehicle", "parking_reservations", ["vehicle_id", "status"]
    )
    op.create_index(
        "ix_parking_reservations_status", "parking_reservations", ["status", "starts_at"]
    )
    op.create_index("ix_parking_reservations_command", "parking_reservations", ["command_id"])
    op.create_table(
        "parking_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(96), nullable=False, unique=True),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("slot_id", sa.String(64), nullable=True),
        sa.Column("vehicle_id", sa.String(64), nullable=True),
        sa.Column("reservation_id", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("duration_s", sa.Integer, nullable=True),
        sa.Column("data", sa.Text, nullable=False, server_default="{}"),
    )
    op.create_index("ix_parking_history_vehicle", "parking_history", ["vehicle_id", "at"])


def downgrade() -> None:
    op.drop_table("parking_history")
    op.drop_table("parking_reservations")
    op.drop_table("parking_slots")
    op.drop_table("lot_configuration")
