"""interactions: an index on (shop_id, subprofile_id) for a sub-profile's rows

Revision ID: 0019_interactions_subprofile
Revises: 0001

A sub-profile's list reads its rows by ``subprofile_id`` (``plugin.subprofiles.recs``:
its seeds, what was bought for it), which had no index: each read went through every
interaction of the shop.

``interactions`` is the largest table a shop has: a plain CREATE INDEX holds a SHARE lock
on it for the whole build, so every interaction recorded meanwhile (views, purchases, the
storefront's events) waits. On PostgreSQL the index is built CONCURRENTLY (outside the
upgrade's transaction, in an autocommit block: the migrations before it are committed
first); SQLite has no such build and keeps the plain one. An invalid index left by a
concurrent build that failed (cancelled, a deadlock, the node stopped) is dropped and
built again, rather than kept by IF NOT EXISTS.
"""
import sqlalchemy as sa
from alembic import op

revision = "0019_interactions_subprofile"
down_revision = "0001"
branch_labels = None
depends_on = None

INDEX = "ix_interactions_shop_subprofile"


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if not _postgresql():
        op.create_index(INDEX, "interactions", ["shop_id", "subprofile_id"])
        return
    with op.get_context().autocommit_block():
        invalid = op.get_bind().scalar(sa.text(
            "SELECT NOT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE c.relname = :name AND pg_table_is_visible(c.oid)"), {"name": INDEX})
        if invalid:
            op.drop_index(INDEX, table_name="interactions", postgresql_concurrently=True,
                          if_exists=True)
        op.create_index(INDEX, "interactions", ["shop_id", "subprofile_id"],
                        postgresql_concurrently=True, if_not_exists=True)


def downgrade() -> None:
    if not _postgresql():
        op.drop_index(INDEX, table_name="interactions")
        return
    with op.get_context().autocommit_block():
        op.drop_index(INDEX, table_name="interactions", postgresql_concurrently=True,
                      if_exists=True)
