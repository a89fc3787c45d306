"""erased exports: data-request exports an erasure deleted, so a file its commit outlived
is neither listed nor served and is swept

Revision ID: 0016_erased_exports
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

import plugin.models.types

revision = "0016_erased_exports"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erased_exports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("erased_at", plugin.models.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shop_id", "name", name="uq_erased_exports_shop_name"),
    )


def downgrade() -> None:
    op.drop_table("erased_exports")
