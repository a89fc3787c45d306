"""offer idempotency: when a discount was asked of the platform without a recorded answer

Revision ID: 0012_offers
Revises: 0007_offers
"""
import sqlalchemy as sa
from alembic import op

import plugin.models.types

revision = "0012_offers"
down_revision = "0007_offers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("offers") as batch:
        batch.add_column(sa.Column("creating_since", plugin.models.types.UTCDateTime(),
                                   nullable=True))
        batch.create_index("ix_offers_shop_creating", ["shop_id", "creating_since"])


def downgrade() -> None:
    with op.batch_alter_table("offers") as batch:
        batch.drop_index("ix_offers_shop_creating")
        batch.drop_column("creating_since")
