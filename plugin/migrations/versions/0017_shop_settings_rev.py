"""shops: a revision of the settings, so writers replacing the JSON dict lose no update

Revision ID: 0017_shop_settings_rev
Revises: 0001

Several writers (the admin form, the sync's currencies and time zone, training's history
mark) replace ``shops.settings`` whole; each now writes only where the revision is still
the one it read (``plugin.shops.update_settings``).
"""
import sqlalchemy as sa
from alembic import op

revision = "0017_shop_settings_rev"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("shops") as batch:
        batch.add_column(sa.Column("settings_rev", sa.Integer(), server_default="0",
                                   nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("shops") as batch:
        batch.drop_column("settings_rev")
