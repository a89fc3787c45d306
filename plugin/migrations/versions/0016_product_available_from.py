"""products: a scheduled launch time, before which a product is not available

Revision ID: 0016_product_available_from
Revises: 0014_sync_pass_generation

Saleor products stored before then lack it (a product published from a future date
counted as available; one sold from a future date stayed unavailable after it): they are
made older than any record, as a channel change does, so the next products pass, which
lists the whole catalogue, overwrites them with their dates.
"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import plugin.models.types

revision = "0016_product_available_from"
down_revision = "0014_sync_pass_generation"
branch_labels = None
depends_on = None

NEVER = datetime(1970, 1, 1, tzinfo=UTC)


def upgrade() -> None:
    with op.batch_alter_table("products") as batch:
        batch.add_column(sa.Column("available_from", plugin.models.types.UTCDateTime(),
                                   nullable=True))
    products = sa.table("products", sa.column("shop_id", sa.String()),
                        sa.column("deleted_at", plugin.models.types.UTCDateTime()),
                        sa.column("source_updated_at", plugin.models.types.UTCDateTime()))
    shops = sa.table("shops", sa.column("id", sa.String()), sa.column("platform", sa.String()))
    op.execute(products.update().where(
        products.c.shop_id.in_(sa.select(shops.c.id).where(shops.c.platform == "saleor")),
        products.c.deleted_at.is_(None)).values(source_updated_at=NEVER))


def downgrade() -> None:
    with op.batch_alter_table("products") as batch:
        batch.drop_column("available_from")
