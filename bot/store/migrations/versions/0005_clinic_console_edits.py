"""Clinic events an admin creates, edits, cancels or deletes in the console (kept from the file's refresh)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 09:10:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('clinic_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('file_key', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('status', sa.String(length=16), nullable=False, server_default='scheduled'))
        batch_op.add_column(sa.Column('edited_by', sa.String(length=64), nullable=True))
    # Until now only `community load` wrote clinic events: each row is its file entry's.
    op.execute("UPDATE clinic_events SET file_key = title")


def downgrade() -> None:
    with op.batch_alter_table('clinic_events', schema=None) as batch_op:
        batch_op.drop_column('edited_by')
        batch_op.drop_column('status')
        batch_op.drop_column('file_key')
