"""Vulnerable residents: flagged on their tickets and profiles; the neighbourhood-help team is marked

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-10 10:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('vulnerability', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('vulnerability_note', sa.String(length=200), nullable=True))
    with op.batch_alter_table('residents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('vulnerability', sa.JSON(), nullable=False, server_default='[]'))
    with op.batch_alter_table('volunteer_teams', schema=None) as batch_op:
        batch_op.add_column(sa.Column('handles_help', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('volunteer_teams', schema=None) as batch_op:
        batch_op.drop_column('handles_help')
    with op.batch_alter_table('residents', schema=None) as batch_op:
        batch_op.drop_column('vulnerability')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_column('vulnerability_note')
        batch_op.drop_column('vulnerability')
