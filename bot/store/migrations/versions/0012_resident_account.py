"""Residents remember the Official Account they write to (a community's own account, or the shared one), so every
later message to them goes out through it (issue 10)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 19:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('residents') as batch:
        batch.add_column(sa.Column('wechat_appid', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('residents') as batch:
        batch.drop_column('wechat_appid')
