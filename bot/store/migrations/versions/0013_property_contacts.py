"""Each community's own property contacts (物业联系方式), one line per estate, for the property-phone answer: a
resident of one community is never given another community's property phones (issue 10)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 23:50:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('communities') as batch:
        batch.add_column(sa.Column('property_contacts', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('communities') as batch:
        batch.drop_column('property_contacts')
