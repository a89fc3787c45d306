"""orders: mark those imported from a history CSV, which a Saleor channel switch keeps

Revision ID: 0013_imported_orders
Revises: 0001

Orders imported before this column were not marked. On Saleor shops (the only ones with
a channel to switch) they are told apart by their id: every order Saleor sends has a
global id, base64 of ``Order:…`` (``T3JkZXI6…``), which no other order of the shop has
unless it was imported under Saleor's own id (then it is the channel's order anyway).
"""
import sqlalchemy as sa
from alembic import op

revision = "0013_imported_orders"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("imported", sa.Boolean(), server_default=sa.false(),
                                   nullable=False))
    op.execute("UPDATE orders SET imported = TRUE WHERE external_id NOT LIKE 'T3JkZXI6%' "
               "AND shop_id IN (SELECT id FROM shops WHERE platform = 'saleor')")


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("imported")
