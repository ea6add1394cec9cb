"""api idempotency key

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_idempotency_key',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('fingerprint', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('job_created_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('skipped_active', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    with op.batch_alter_table('api_idempotency_key', schema=None) as batch_op:
        batch_op.create_index('ix_api_idempotency_key_created_at', ['created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('api_idempotency_key', schema=None) as batch_op:
        batch_op.drop_index('ix_api_idempotency_key_created_at')

    op.drop_table('api_idempotency_key')
