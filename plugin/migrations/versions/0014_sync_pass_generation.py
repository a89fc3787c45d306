"""sync: a products pass's start and each product's last listing, so a pass resumed over
several runs still tombstones what the platform no longer lists

Revision ID: 0014_sync_pass_generation
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

import plugin.models.types

revision = "0014_sync_pass_generation"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sync_states") as batch:
        batch.add_column(sa.Column("pass_started_at", plugin.models.types.UTCDateTime(),
                                   nullable=True))
    with op.batch_alter_table("products") as batch:
        batch.add_column(sa.Column("listed_at", plugin.models.types.UTCDateTime(),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("products") as batch:
        batch.drop_column("listed_at")
    with op.batch_alter_table("sync_states") as batch:
        batch.drop_column("pass_started_at")
