"""usage_metrics.clock_problems: reported times central corrected

Revision ID: analytics_0002
Revises: analytics_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "analytics_0002"
down_revision = "analytics_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "usage_metrics",
        sa.Column("clock_problems", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    with op.batch_alter_table("usage_metrics") as batch:
        batch.drop_column("clock_problems")
