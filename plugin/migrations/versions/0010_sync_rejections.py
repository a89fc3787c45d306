"""sync: count and name the backfill records that could not be read

Revision ID: 0010_sync_rejections
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0010_sync_rejections"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sync_states") as batch:
        batch.add_column(sa.Column("skipped", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("rejected", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sync_states") as batch:
        batch.drop_column("rejected")
        batch.drop_column("skipped")
