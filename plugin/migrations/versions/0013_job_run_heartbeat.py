"""job runs: a heartbeat, so a run whose worker was killed is recorded as abandoned

Revision ID: 0013_job_run_heartbeat
Revises: 0009_operations
"""
import sqlalchemy as sa
from alembic import op

import plugin.models.types

revision = "0013_job_run_heartbeat"
down_revision = "0009_operations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job_runs") as batch:
        batch.add_column(sa.Column("heartbeat_at", plugin.models.types.UTCDateTime(),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job_runs") as batch:
        batch.drop_column("heartbeat_at")
