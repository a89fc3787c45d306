"""redacted orders: order ids a privacy redaction erased, so later deliveries are ignored

Revision ID: 0013_redacted_orders
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

import plugin.models.types

revision = "0013_redacted_orders"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "redacted_orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.String(length=32), nullable=False),
        sa.Column("order_external_id", sa.String(length=255), nullable=False),
        sa.Column("redacted_at", plugin.models.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shop_id", "order_external_id",
                            name="uq_redacted_orders_shop_order"),
    )


def downgrade() -> None:
    op.drop_table("redacted_orders")
