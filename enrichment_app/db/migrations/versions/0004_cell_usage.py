"""cell usage per day (MAX_CELLS_PER_DAY)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('cell_usage',
    sa.Column('scope', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('cells', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('scope', 'day')
    )


def downgrade() -> None:
    op.drop_table('cell_usage')
