"""scheduler lease: a generation, the fencing token a job's commits check

Revision ID: 0018_lease_generation
Revises: 0013_job_run_heartbeat

A job stopped at its next ``checkpoint`` once its worker lost the lease, but the unit of
work running then still committed beside the new leader's. Each commit of a job now
checks, in its own transaction, that the lease still has the holder and generation the
job started under (``plugin.lease.fence``).
"""
import sqlalchemy as sa
from alembic import op

revision = "0018_lease_generation"
down_revision = "0013_job_run_heartbeat"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scheduler_leases") as batch:
        batch.add_column(sa.Column("generation", sa.Integer(), server_default="0",
                                   nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("scheduler_leases") as batch:
        batch.drop_column("generation")
