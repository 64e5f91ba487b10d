"""sync tables

Revision ID: sync_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "sync_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_sites",
        sa.Column("site_id", sa.String(64), primary_key=True),
        sa.Column("last_sequence", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "sync_events",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("body", sa.Text, nullable=False),
        sa.UniqueConstraint("site_id", "sequence", name="uq_sync_events_site_sequence"),
    )
    op.create_index("ix_sync_events_unpublished", "sync_events", ["published", "received_at"])
    op.create_table(
        "sync_commands",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deliveries", sa.Integer, nullable=False, server_default="0"),
        sa.Column("acked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_sync_commands_pending", "sync_commands", ["site_id", "acked_at", "expires_at"]
    )


def downgrade() -> None:
    op.drop_table("sync_commands")
    op.drop_table("sync_events")
    op.drop_table("sync_sites")
