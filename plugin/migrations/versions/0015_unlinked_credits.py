"""offer redemptions and click credits: a redaction of their order unlinks them

Revision ID: 0015_unlinked_credits
Revises: 0012_offers

``order_external_id`` may be NULL (the order was redacted); the order's currency and
cancellation, which the report read through that link, are kept beside it.
"""
import sqlalchemy as sa
from alembic import op

revision = "0015_unlinked_credits"
down_revision = "0012_offers"
branch_labels = None
depends_on = None

TABLES = ("offer_redemptions", "click_attributions")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column("order_external_id", existing_type=sa.String(length=255),
                               nullable=True)
            batch.add_column(sa.Column("order_currency", sa.String(length=3), nullable=True))
            batch.add_column(sa.Column("order_cancelled", sa.Boolean(),
                                       server_default=sa.false(), nullable=False))


def downgrade() -> None:
    for table in TABLES:
        # an unlinked credit cannot be linked again: it goes with the columns
        op.execute(f"DELETE FROM {table} WHERE order_external_id IS NULL")
        with op.batch_alter_table(table) as batch:
            batch.drop_column("order_cancelled")
            batch.drop_column("order_currency")
            batch.alter_column("order_external_id", existing_type=sa.String(length=255),
                               nullable=False)
