"""Model registry: trained models, deployments and rollbacks, what each Rasa worker serves (issue 9)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 11:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'model_versions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('file', sa.String(length=200), nullable=False),
        sa.Column('path', sa.Text(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('data_hash', sa.String(length=64), nullable=False),
        sa.Column('gate_passed', sa.Boolean(), nullable=True),
        sa.Column('metrics', sa.JSON(), nullable=False),
        sa.Column('report', sa.Text(), nullable=True),
        sa.Column('gated_against_id', sa.Integer(), nullable=True),
        sa.Column('registered_by', sa.String(length=64), nullable=False),
        sa.Column('registered_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['gated_against_id'], ['model_versions.id'],
                                name=op.f('fk_model_versions_gated_against_id_model_versions')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_model_versions')),
        sa.UniqueConstraint('sha256', name='uq_model_versions_sha256'),
    )
    op.create_table(
        'model_deployments',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('model_id', sa.Integer(), nullable=False),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('actor', sa.String(length=64), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('rolled_back_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['model_id'], ['model_versions.id'],
                                name=op.f('fk_model_deployments_model_id_model_versions')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_model_deployments')),
    )
    op.create_table(
        'model_workers',
        sa.Column('worker', sa.String(length=120), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=True),
        sa.Column('fetching', sa.String(length=64), nullable=True),
        sa.Column('seen_at', sa.DateTime(), nullable=False),
        sa.Column('fetched_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('worker', name=op.f('pk_model_workers')),
    )


def downgrade() -> None:
    op.drop_table('model_workers')
    op.drop_table('model_deployments')
    op.drop_table('model_versions')
