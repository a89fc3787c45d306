"""products, variants: prices in each currency the platform lists one in

Revision ID: 0017_catalogue_prices
Revises: 0016_product_available_from

A Vendure channel can sell several currencies, each variant priced in every one; only the
default currency's price was kept, so a cart in another was refused. Vendure products
stored before then are made older than any record (as 0016 did for Saleor), so the next
products pass, which lists the whole catalogue, writes them again with these prices.
"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import plugin.models.types

revision = "0017_catalogue_prices"
down_revision = "0016_product_available_from"
branch_labels = None
depends_on = None

NEVER = datetime(1970, 1, 1, tzinfo=UTC)


def upgrade() -> None:
    for table in ("products", "variants"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("prices", sa.JSON(), nullable=True))
    products = sa.table("products", sa.column("shop_id", sa.String()),
                        sa.column("deleted_at", plugin.models.types.UTCDateTime()),
                        sa.column("source_updated_at", plugin.models.types.UTCDateTime()))
    shops = sa.table("shops", sa.column("id", sa.String()), sa.column("platform", sa.String()))
    op.execute(products.update().where(
        products.c.shop_id.in_(sa.select(shops.c.id).where(shops.c.platform == "vendure")),
        products.c.deleted_at.is_(None)).values(source_updated_at=NEVER))


def downgrade() -> None:
    for table in ("variants", "products"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("prices")
