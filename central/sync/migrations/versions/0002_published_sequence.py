"""a site's events are published up to a sequence (one row per upload), not flagged one
by one (an update of every event row, and of an index, per event)

Revision ID: sync_0002
Revises: sync_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "sync_0002"
down_revision = "sync_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sync_sites") as batch:
        batch.add_column(
            sa.Column("published_sequence", sa.Integer, nullable=False, server_default="0")
        )
    # published up to just before the first event not yet published, else all
    op.execute(
        "UPDATE sync_sites SET published_sequence = COALESCE("
        "(SELECT MIN(e.sequence) - 1 FROM sync_events e"
        " WHERE e.site_id = sync_sites.site_id AND e.published = false),"
        " last_sequence)"
    )
    op.drop_index("ix_sync_events_unpublished", table_name="sync_events")
    with op.batch_alter_table("sync_events") as batch:
        batch.drop_column("published")


def downgrade() -> None:
    with op.batch_alter_table("sync_events") as batch:
        batch.add_column(
            sa.Column("published", sa.Boolean, nullable=False, server_default=sa.true())
        )
    op.execute(
        "UPDATE sync_events SET published = false WHERE sequence > "
        "(SELECT s.published_sequence FROM sync_sites s WHERE s.site_id = sync_events.site_id)"
    )
    op.create_index("ix_sync_events_unpublished", "sync_events", ["published", "received_at"])
    with op.batch_alter_table("sync_sites") as batch:
        batch.drop_column("published_sequence")
