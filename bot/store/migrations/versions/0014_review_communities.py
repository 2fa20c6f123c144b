"""Review items know the communities whose residents wrote them: an admin reviews only their own community's
residents' messages, the street office every community's (issue 10). Items collected before this stay with every
admin (no community recorded).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 17:40:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('review_items') as batch:
        batch.add_column(sa.Column('communities', sa.JSON(), nullable=False, server_default='[]'))


def downgrade() -> None:
    with op.batch_alter_table('review_items') as batch:
        batch.drop_column('communities')
