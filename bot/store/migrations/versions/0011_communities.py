"""Communities: one deployment serves a street office's communities; every row that belongs to one carries its key
(issue 10)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 21:30:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

DEFAULT = 'default'
# Every table whose rows belong to one community; existing rows go to the default community.
OWNED = ('estates', 'chat_groups', 'staff', 'grids', 'volunteer_teams', 'duty_shifts', 'clinic_events', 'tickets',
         'residents', 'handoffs', 'announcements')


def upgrade() -> None:
    communities = op.create_table(
        'communities',
        sa.Column('key', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('office_phone', sa.String(length=32), nullable=True),
        sa.Column('office_hours', sa.String(length=128), nullable=True),
        sa.Column('wechat_account', sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_communities')),
    )
    op.bulk_insert(communities, [{'key': DEFAULT, 'name': '社区'}])
    for table in OWNED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('community_key', sa.String(length=32), nullable=False,
                                          server_default=DEFAULT))
            batch_op.create_foreign_key(op.f(f'fk_{table}_community_key_communities'), 'communities',
                                        ['community_key'], ['key'])
            batch_op.create_index(op.f(f'ix_{table}_community_key'), ['community_key'], unique=False)
    # Team numbers and names are the community's own: two communities may both have a 1号队.
    with op.batch_alter_table('volunteer_teams', schema=None) as batch_op:
        batch_op.drop_constraint('uq_volunteer_teams_name', type_='unique')
        batch_op.drop_constraint('uq_volunteer_teams_number', type_='unique')
        batch_op.create_unique_constraint('uq_volunteer_teams_community_number', ['community_key', 'number'])
        batch_op.create_unique_constraint('uq_volunteer_teams_community_name', ['community_key', 'name'])


def downgrade() -> None:
    with op.batch_alter_table('volunteer_teams', schema=None) as batch_op:
        batch_op.drop_constraint('uq_volunteer_teams_community_name', type_='unique')
        batch_op.drop_constraint('uq_volunteer_teams_community_number', type_='unique')
        batch_op.create_unique_constraint('uq_volunteer_teams_number', ['number'])
        batch_op.create_unique_constraint('uq_volunteer_teams_name', ['name'])
    for table in reversed(OWNED):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(op.f(f'ix_{table}_community_key'))
            batch_op.drop_constraint(op.f(f'fk_{table}_community_key_communities'), type_='foreignkey')
            batch_op.drop_column('community_key')
    op.drop_table('communities')
