"""column width: the width a user dragged a column to, kept per table

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 05:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('table_column') as batch:
        batch.add_column(sa.Column('width', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('table_column') as batch:
        batch.drop_column('width')
