"""idempotency claim token

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_idempotency_key', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('claim_token', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table('api_idempotency_key', schema=None) as batch_op:
        batch_op.drop_column('claim_token')
