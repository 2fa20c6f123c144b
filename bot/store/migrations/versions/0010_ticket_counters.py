"""Ticket counters: one row per day hands out ticket numbers under concurrency (issue 10)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 14:30:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'ticket_counters',
        sa.Column('day', sa.String(length=8), nullable=False),
        sa.Column('last', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('day', name=op.f('pk_ticket_counters')),
    )


def downgrade() -> None:
    op.drop_table('ticket_counters')
