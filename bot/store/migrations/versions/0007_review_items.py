"""Review items: groups of residents' messages for admins to label (issue 9)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 07:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'review_items',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('examples', sa.JSON(), nullable=False),
        sa.Column('suggestion', sa.String(length=64), nullable=False),
        sa.Column('confidence', sa.Float(), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('flags', sa.JSON(), nullable=False),
        sa.Column('source', sa.String(length=200), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('intent', sa.String(length=64), nullable=True),
        sa.Column('entities', sa.JSON(), nullable=False),
        sa.Column('reviewer_id', sa.Integer(), nullable=True),
        sa.Column('reviewed_at', sa.DateTime(), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['reviewer_id'], ['staff.id'], name=op.f('fk_review_items_reviewer_id_staff')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_review_items')),
        sa.UniqueConstraint('key', name='uq_review_items_key'),
    )


def downgrade() -> None:
    op.drop_table('review_items')
