"""anonymous links: which customer signed in with a shop's anonymous browser id

Revision ID: 0011_anonymous_links
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

import plugin.models.types

revision = "0011_anonymous_links"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "anonymous_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.String(length=32), nullable=False),
        sa.Column("anonymous_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=True),
        sa.Column("linked_at", plugin.models.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shop_id", "anonymous_id", name="uq_anonymous_links_shop_anon"),
    )
    op.create_index("ix_anonymous_links_shop_customer", "anonymous_links",
                    ["shop_id", "customer_id"])


def downgrade() -> None:
    op.drop_index("ix_anonymous_links_shop_customer", table_name="anonymous_links")
    op.drop_table("anonymous_links")
