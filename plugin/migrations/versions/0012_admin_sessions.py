"""admin sessions: server-side admin sign-ins and used sign-in links

Revision ID: 0012_admin_sessions
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

import plugin.models.types

revision = "0012_admin_sessions"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admin_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("shop_id", sa.String(length=32), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("created_at", plugin.models.types.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", plugin.models.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_admin_sessions_shop_id", "admin_sessions", ["shop_id"])
    op.create_index("ix_admin_sessions_last_seen", "admin_sessions", ["last_seen_at"])
    op.create_table(
        "admin_link_uses",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("shop_id", sa.String(length=32), nullable=False),
        sa.Column("expires_at", plugin.models.types.UTCDateTime(), nullable=False),
        sa.Column("used_at", plugin.models.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("nonce"),
    )
    op.create_index("ix_admin_link_uses_shop_id", "admin_link_uses", ["shop_id"])
    op.create_index("ix_admin_link_uses_expires_at", "admin_link_uses", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_admin_link_uses_expires_at", table_name="admin_link_uses")
    op.drop_index("ix_admin_link_uses_shop_id", table_name="admin_link_uses")
    op.drop_table("admin_link_uses")
    op.drop_index("ix_admin_sessions_last_seen", table_name="admin_sessions")
    op.drop_index("ix_admin_sessions_shop_id", table_name="admin_sessions")
    op.drop_table("admin_sessions")
