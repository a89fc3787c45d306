"""interactions: an index on (shop_id, subprofile_id) for a sub-profile's rows

Revision ID: 0019_interactions_subprofile
Revises: 0001

A sub-profile's list reads its rows by ``subprofile_id`` (``plugin.subprofiles.recs``:
its seeds, what was bought for it), which had no index: each read went through every
interaction of the shop.
"""
from alembic import op

revision = "0019_interactions_subprofile"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_interactions_shop_subprofile", "interactions",
                    ["shop_id", "subprofile_id"])


def downgrade() -> None:
    op.drop_index("ix_interactions_shop_subprofile", table_name="interactions")
