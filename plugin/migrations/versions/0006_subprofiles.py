"""subprofiles: who a shopper buys for, and the per-shopper prompt state

Revision ID: 0006_subprofiles
Revises: 0001
Create Date: 2026-11-23 06:30:00
"""
from alembic import op
import sqlalchemy as sa
import plugin.models.types


revision = '0006_subprofiles'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('subprofiles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('shop_id', sa.String(length=32), nullable=False),
    sa.Column('owner_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('age_band', sa.String(length=8), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('created_at', plugin.models.types.UTCDateTime(), nullable=False),
    sa.Column('updated_at', plugin.models.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('shop_id', 'owner_id', 'name', name='uq_subprofiles_owner_name')
    )
    with op.batch_alter_table('subprofiles', schema=None) as batch_op:
        batch_op.create_index('ix_subprofiles_shop_owner', ['shop_id', 'owner_id'], unique=False)

    op.create_table('subprofile_prompts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('shop_id', sa.String(length=32), nullable=False),
    sa.Column('shopper_id', sa.String(length=255), nullable=False),
    sa.Column('last_asked_at', plugin.models.types.UTCDateTime(), nullable=True),
    sa.Column('never_ask', sa.Boolean(), nullable=False),
    sa.Column('active_subprofile_id', sa.Integer(), nullable=True),
    sa.Column('pending', sa.JSON(), nullable=False),
    sa.Column('updated_at', plugin.models.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['active_subprofile_id'], ['subprofiles.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('shop_id', 'shopper_id', name='uq_subprofile_prompts_shopper')
    )


def downgrade() -> None:
    op.drop_table('subprofile_prompts')
    with op.batch_alter_table('subprofiles', schema=None) as batch_op:
        batch_op.drop_index('ix_subprofiles_shop_owner')
    op.drop_table('subprofiles')
