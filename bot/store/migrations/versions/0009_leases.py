"""Leases: one dispatcher leads, a second stands by and takes over (issue 10)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 14:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'leases',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('holder', sa.String(length=120), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('acquired_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_leases')),
    )


def downgrade() -> None:
    op.drop_table('leases')
