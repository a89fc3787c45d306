"""sync: an epoch bumped when a sync is made to start over, checked by a run under way

Revision ID: 0014_sync_epoch
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0014_sync_epoch"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sync_states") as batch:
        batch.add_column(sa.Column("epoch", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("sync_states") as batch:
        batch.drop_column("epoch")
