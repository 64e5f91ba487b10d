"""sessions attributed by id tag: registered tags, the tag and evse of remote starts

Revision ID: charging_0002
Revises: charging_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "charging_0002"
down_revision = "charging_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("charging_commands") as batch:
        batch.add_column(sa.Column("id_tag", sa.String(64), nullable=True))
        batch.add_column(sa.Column("evse_id", sa.Integer, nullable=True))
    op.create_index(
        "ix_charging_commands_tag", "charging_commands", ["site_id", "charger_id", "id_tag"]
    )
    op.create_index("ix_charging_sessions_site_started", "charging_sessions", ["site_id", "started_at"])
    op.create_table(
        "charging_id_tags",
        sa.Column("id_tag", sa.String(64), primary_key=True),
        sa.Column("vehicle_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_charging_id_tags_vehicle", "charging_id_tags", ["vehicle_id"])


def downgrade() -> None:
    op.drop_table("charging_id_tags")
    op.drop_index("ix_charging_sessions_site_started", "charging_sessions")
    op.drop_index("ix_charging_commands_tag", "charging_commands")
    with op.batch_alter_table("charging_commands") as batch:
        batch.drop_column("evse_id")
        batch.drop_column("id_tag")
