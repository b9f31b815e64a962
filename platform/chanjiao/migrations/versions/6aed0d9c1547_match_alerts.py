"""match alerts: subscriptions on a demand or programme and the postings each has reported

Revision ID: 6aed0d9c1547
Revises: 501cdced0bcc
Create Date: 2026-12-01 11:07:29.032308

"""
from alembic import op
import sqlalchemy as sa
import chanjiao.models._common


# revision identifiers, used by Alembic.
revision = '6aed0d9c1547'
down_revision = '501cdced0bcc'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('match_alert',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('demand_id', sa.Integer(), nullable=True),
    sa.Column('programme_id', sa.Integer(), nullable=True),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', chanjiao.models._common.UTCDateTime(timezone=True), nullable=False),
    sa.Column('cancelled_by_id', sa.Integer(), nullable=True),
    sa.Column('cancelled_at', chanjiao.models._common.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('(demand_id IS NULL) <> (programme_id IS NULL)', name=op.f('ck_match_alert_one_posting')),
    sa.ForeignKeyConstraint(['cancelled_by_id'], ['user.id'], name=op.f('fk_match_alert_cancelled_by_id_user')),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_match_alert_created_by_id_user')),
    sa.ForeignKeyConstraint(['demand_id'], ['demand.id'], name=op.f('fk_match_alert_demand_id_demand')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_match_alert_organisation_id_organisation')),
    sa.ForeignKeyConstraint(['programme_id'], ['programme.id'], name=op.f('fk_match_alert_programme_id_programme')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_match_alert'))
    )
    with op.batch_alter_table('match_alert', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_match_alert_organisation_id'), ['organisation_id'], unique=False)
        batch_op.create_index('uq_match_alert_active_demand', ['demand_id'], unique=True, sqlite_where=sa.text('cancelled_at IS NULL'), postgresql_where=sa.text('cancelled_at IS NULL'))
        batch_op.create_index('uq_match_alert_active_programme', ['programme_id'], unique=True, sqlite_where=sa.text('cancelled_at IS NULL'), postgresql_where=sa.text('cancelled_at IS NULL'))

    op.create_table('match_alert_delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=False),
    sa.Column('found_programme_id', sa.Integer(), nullable=True),
    sa.Column('found_demand_id', sa.Integer(), nullable=True),
    sa.Column('probability', sa.Float(), nullable=False),
    sa.Column('created_at', chanjiao.models._common.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('(found_demand_id IS NULL) <> (found_programme_id IS NULL)', name=op.f('ck_match_alert_delivery_one_posting')),
    sa.ForeignKeyConstraint(['alert_id'], ['match_alert.id'], name=op.f('fk_match_alert_delivery_alert_id_match_alert')),
    sa.ForeignKeyConstraint(['found_demand_id'], ['demand.id'], name=op.f('fk_match_alert_delivery_found_demand_id_demand')),
    sa.ForeignKeyConstraint(['found_programme_id'], ['programme.id'], name=op.f('fk_match_alert_delivery_found_programme_id_programme')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_match_alert_delivery')),
    sa.UniqueConstraint('alert_id', 'found_demand_id', name='uq_match_alert_delivery_demand'),
    sa.UniqueConstraint('alert_id', 'found_programme_id', name='uq_match_alert_delivery_programme')
    )
    with op.batch_alter_table('match_alert_delivery', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_match_alert_delivery_alert_id'), ['alert_id'], unique=False)



def downgrade():
    with op.batch_alter_table('match_alert_delivery', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_match_alert_delivery_alert_id'))

    op.drop_table('match_alert_delivery')
    with op.batch_alter_table('match_alert', schema=None) as batch_op:
        batch_op.drop_index('uq_match_alert_active_programme', sqlite_where=sa.text('cancelled_at IS NULL'), postgresql_where=sa.text('cancelled_at IS NULL'))
        batch_op.drop_index('uq_match_alert_active_demand', sqlite_where=sa.text('cancelled_at IS NULL'), postgresql_where=sa.text('cancelled_at IS NULL'))
        batch_op.drop_index(batch_op.f('ix_match_alert_organisation_id'))

    op.drop_table('match_alert')
