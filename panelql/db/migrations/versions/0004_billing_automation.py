"""billing automation: policies, runs with a step per service, holds, switches (issue #21)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 01:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def _stamp(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True),
                     server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False)


def upgrade() -> None:
    op.create_table(
        'automation_policies',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('trigger', sa.String(length=32), nullable=False),
        sa.Column('overdue_days', sa.Integer(), nullable=False),
        sa.Column('kinds', sa.JSON(), nullable=True),
        sa.Column('unsuspend_on_payment', sa.Boolean(), nullable=False),
        sa.Column('terminate_after_days', sa.Float(), nullable=True),
        sa.Column('final_backup', sa.Boolean(), nullable=False),
        sa.Column('dry_run', sa.Boolean(), nullable=False),
        _stamp('created_at'), _stamp('updated_at'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name'),
    )
    op.create_table(
        'automation_runs',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('dedupe_key', sa.String(length=255), nullable=True),
        sa.Column('policy_id', sa.Integer(), nullable=False),
        sa.Column('policy_name', sa.String(length=128), nullable=False),
        sa.Column('customer_ref', sa.String(length=128), nullable=False),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('cause', sa.String(length=64), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('invoice_connection', sa.String(length=64), nullable=True),
        sa.Column('invoice_id', sa.String(length=191), nullable=True),
        sa.Column('invoice_number', sa.String(length=128), nullable=True),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('dry_run', sa.Boolean(), nullable=False),
        sa.Column('not_before', sa.DateTime(timezone=True), nullable=True),
        sa.Column('operation_id', sa.String(length=36), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('owner', sa.String(length=32), nullable=True),
        sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
        _stamp('created_at'), _stamp('updated_at'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('dedupe_key'),
    )
    op.create_index('ix_automation_runs_policy_id', 'automation_runs', ['policy_id'])
    op.create_index('ix_automation_runs_customer_ref', 'automation_runs', ['customer_ref'])
    op.create_index('ix_automation_runs_status', 'automation_runs', ['status'])
    op.create_table(
        'automation_steps',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('run_id', sa.String(length=36), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('connection', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('resource_type', sa.String(length=16), nullable=False),
        sa.Column('resource_id', sa.String(length=191), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('detail', sa.JSON(), nullable=False),
        _stamp('updated_at'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_automation_steps_run_id', 'automation_steps', ['run_id'])
    op.create_table(
        'service_holds',
        sa.Column('connection', sa.String(length=64), nullable=False),
        sa.Column('resource_type', sa.String(length=16), nullable=False),
        sa.Column('resource_id', sa.String(length=191), nullable=False),
        sa.Column('holder', sa.String(length=255), nullable=False),
        sa.Column('run_id', sa.String(length=36), nullable=True),
        sa.Column('reason', sa.Text(), nullable=True),
        _stamp('created_at'),
        sa.PrimaryKeyConstraint('connection', 'resource_type', 'resource_id', 'holder'),
    )
    op.create_table(
        'automation_switches',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('value', sa.Boolean(), nullable=False),
        sa.Column('updated_by', sa.String(length=128), nullable=True),
        _stamp('updated_at'),
        sa.PrimaryKeyConstraint('name'),
    )


def downgrade() -> None:
    op.drop_table('automation_switches')
    op.drop_table('service_holds')
    op.drop_index('ix_automation_steps_run_id', table_name='automation_steps')
    op.drop_table('automation_steps')
    for name in ('status', 'customer_ref', 'policy_id'):
        op.drop_index(f'ix_automation_runs_{name}', table_name='automation_runs')
    op.drop_table('automation_runs')
    op.drop_table('automation_policies')
