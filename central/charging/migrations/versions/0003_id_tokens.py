"""id tokens of drivers: RFID cards and per-session app tokens, pushed to the sites;
sessions and history name their driver; a command's failure code

Revision ID: charging_0003
Revises: charging_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "charging_0003"
down_revision = "charging_0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("charging_id_tags") as batch:
        batch.add_column(sa.Column("driver_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("kind", sa.String(8), nullable=False, server_default="rfid"))
        batch.add_column(
            sa.Column("status", sa.String(16), nullable=False, server_default="Accepted")
        )
        batch.add_column(sa.Column("expires_at", TZ, nullable=True))
        batch.add_column(sa.Column("site_id", sa.String(64), nullable=True))
    op.create_index("ix_charging_id_tags_kind", "charging_id_tags", ["kind", "expires_at"])
    with op.batch_alter_table("charging_sessions") as batch:
        batch.add_column(sa.Column("driver_id", sa.String(64), nullable=True))
    with op.batch_alter_table("charging_history") as batch:
        batch.add_column(sa.Column("driver_id", sa.String(64), nullable=True))
    with op.batch_alter_table("charging_commands") as batch:
        batch.add_column(sa.Column("failure_code", sa.String(32), nullable=True))
        batch.add_column(sa.Column("failure_reason", sa.String(256), nullable=True))
    op.create_table(
        "charging_id_tag_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id_tag", sa.String(64), nullable=False),
        sa.Column("change", sa.String(16), nullable=False),
        sa.Column("at", TZ, nullable=False),
    )
    op.create_table(
        "charging_sites",
        sa.Column("site_id", sa.String(64), primary_key=True),
        sa.Column("first_seen_at", TZ, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("charging_sites")
    op.drop_table("charging_id_tag_changes")
    with op.batch_alter_table("charging_commands") as batch:
        batch.drop_column("failure_reason")
        batch.drop_column("failure_code")
    with op.batch_alter_table("charging_history") as batch:
        batch.drop_column("driver_id")
    with op.batch_alter_table("charging_sessions") as batch:
        batch.drop_column("driver_id")
    op.drop_index("ix_charging_id_tags_kind", "charging_id_tags")
    with op.batch_alter_table("charging_id_tags") as batch:
        batch.drop_column("site_id")
        batch.drop_column("expires_at")
        batch.drop_column("status")
        batch.drop_column("kind")
        batch.drop_column("driver_id")
