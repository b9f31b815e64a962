"""two-factor sign-in: TOTP credentials and recovery codes

Revision ID: b7d1f2a3c4e5
Revises: e7f44662991c
Create Date: 2026-12-01 16:30:00.000000

"""
from alembic import op
import sqlalchemy as sa
import chanjiao.models._common


# revision identifiers, used by Alembic.
revision = 'b7d1f2a3c4e5'
down_revision = 'e7f44662991c'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('two_factor_credential',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('secret', sa.String(length=64), nullable=False),
    sa.Column('created_at', chanjiao.models._common.UTCDateTime(timezone=True), nullable=False),
    sa.Column('confirmed_at', chanjiao.models._common.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_used_timestep', sa.Integer(), nullable=True),
    sa.Column('pending_login_nonce', sa.String(length=32), nullable=True),
    sa.Column('wrong_codes', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_two_factor_credential_user_id_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_two_factor_credential')),
    sa.UniqueConstraint('user_id', name=op.f('uq_two_factor_credential_user_id'))
    )
    op.create_table('two_factor_recovery_code',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', chanjiao.models._common.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', chanjiao.models._common.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_two_factor_recovery_code_user_id_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_two_factor_recovery_code')),
    sa.UniqueConstraint('code_hash', name=op.f('uq_two_factor_recovery_code_code_hash'))
    )
    with op.batch_alter_table('two_factor_recovery_code', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_two_factor_recovery_code_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('two_factor_recovery_code', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_two_factor_recovery_code_user_id'))

    op.drop_table('two_factor_recovery_code')
    op.drop_table('two_factor_credential')
