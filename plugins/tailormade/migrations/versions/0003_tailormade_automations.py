"""tailormade: automation rules and their execution log

Revision ID: 0003_tailormade_automations
Revises: 0002_tailormade_objects
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003_tailormade_automations"
down_revision = "0002_tailormade_objects"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table('tailormade_automation_rules',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('trigger', sa.String(length=30), nullable=False),
    sa.Column('entity_type', sa.String(length=63), nullable=False),
    sa.Column('trigger_field', sa.String(length=100), nullable=True),
    sa.Column('offset_days', sa.Integer(), nullable=False),
    sa.Column('conditions', JSON, nullable=False),
    sa.Column('actions', JSON, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('attributes', JSON, nullable=False),
    sa.CheckConstraint("trigger IN ('created', 'updated', 'stage_changed', 'interaction_recorded', 'date_reached')", name=op.f('ck_tailormade_automation_rules_trigger')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_tailormade_automation_rules_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_tailormade_automation_rules'))
    )
    op.create_table('tailormade_automation_runs',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('rule_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('event', sa.String(length=100), nullable=False),
    sa.Column('entity_type', sa.String(length=63), nullable=True),
    sa.Column('entity_id', sa.Uuid(), nullable=True),
    sa.Column('depth', sa.Integer(), nullable=False),
    sa.Column('trigger_key', sa.String(length=200), nullable=True),
    sa.Column('results', JSON, nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('job_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('attributes', JSON, nullable=False),
    sa.CheckConstraint("status IN ('succeeded', 'failed', 'not_matched', 'skipped')", name=op.f('ck_tailormade_automation_runs_status')),
    sa.ForeignKeyConstraint(['tenant_id', 'rule_id'], ['tailormade_automation_rules.tenant_id', 'tailormade_automation_rules.id'], name=op.f('fk_tailormade_automation_runs_tenant_id_rule_id_tailormade_automation_rules'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_tailormade_automation_runs_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_tailormade_automation_runs'))
    )
    op.create_index('ix_tailormade_automation_runs_tenant_rule', 'tailormade_automation_runs', ['tenant_id', 'rule_id', 'created_at'], unique=False)
    op.create_index('ix_tailormade_automation_runs_tenant_trigger_key', 'tailormade_automation_runs', ['tenant_id', 'trigger_key'], unique=False)


def downgrade() -> None:
    op.drop_index("ix_tailormade_automation_runs_tenant_trigger_key",
                  table_name="tailormade_automation_runs")
    op.drop_index("ix_tailormade_automation_runs_tenant_rule",
                  table_name="tailormade_automation_runs")
    op.drop_table("tailormade_automation_runs")
    op.drop_table("tailormade_automation_rules")
