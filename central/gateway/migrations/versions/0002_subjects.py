"""driver keys bound to a user; the vehicle registry

Revision ID: gateway_0002
Revises: gateway_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "gateway_0002"
down_revision = "gateway_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gateway_api_keys") as batch:
        batch.add_column(sa.Column("user_id", sa.String(64), nullable=True))
    op.create_index("ix_gateway_api_keys_user", "gateway_api_keys", ["user_id"])
    op.create_table(
        "gateway_vehicles",
        sa.Column("vehicle_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_gateway_vehicles_user", "gateway_vehicles", ["user_id"])


def downgrade() -> None:
    op.drop_table("gateway_vehicles")
    op.drop_index("ix_gateway_api_keys_user", "gateway_api_keys")
    with op.batch_alter_table("gateway_api_keys") as batch:
        batch.drop_column("user_id")
