"""account ledger for panels that cannot list accounts (NextPanel, issue #13)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 22:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'account_slot_counts',
        sa.Column('connection', sa.String(length=64), nullable=False),
        sa.Column('baseline', sa.Integer(), nullable=False),
        sa.Column('used', sa.Integer(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True),
                  server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.PrimaryKeyConstraint('connection'),
    )
    op.create_table(
        'ledger_accounts',
        sa.Column('connection', sa.String(length=64), nullable=False),
        sa.Column('account_id', sa.String(length=191), nullable=False),
        sa.Column('username', sa.String(length=191), nullable=False),
        sa.Column('email', sa.String(length=255), nullable=True),
        sa.Column('external_ref', sa.String(length=191), nullable=True),
        sa.Column('status', sa.String(length=32), nullable=False),
        sa.Column('suspension_reason', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True),
                  server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.PrimaryKeyConstraint('connection', 'account_id'),
    )


def downgrade() -> None:
    op.drop_table('ledger_accounts')
    op.drop_table('account_slot_counts')
