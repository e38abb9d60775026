"""operations: owner, lease and how to resume them, so a replica takes over a dead one's

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 22:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('operations') as batch:
        batch.add_column(sa.Column('owner', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('follow', sa.JSON(), nullable=True))
        batch.create_index('ix_operations_lease_until', ['lease_until'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('operations') as batch:
        batch.drop_index('ix_operations_lease_until')
        batch.drop_column('follow')
        batch.drop_column('lease_until')
        batch.drop_column('owner')
