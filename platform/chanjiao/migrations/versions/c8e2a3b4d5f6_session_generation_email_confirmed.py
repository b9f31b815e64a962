"""sessions that end on the server (user.session_generation) and confirmed e-mail addresses

Revision ID: c8e2a3b4d5f6
Revises: b7d1f2a3c4e5
Create Date: 2026-12-01 17:00:00.000000

"""
from alembic import op
import sqlalchemy as sa
import chanjiao.models._common


# revision identifiers, used by Alembic.
revision = 'c8e2a3b4d5f6'
down_revision = 'b7d1f2a3c4e5'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_generation', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('email_confirmed_at', chanjiao.models._common.UTCDateTime(timezone=True), nullable=True))
    # Accounts that exist already were made by staff, by invitation or before confirmation
    # links existed: they keep logging in.
    op.execute('UPDATE "user" SET email_confirmed_at = created_at')


def downgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('email_confirmed_at')
        batch_op.drop_column('session_generation')
