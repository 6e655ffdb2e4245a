"""tailormade: custom field definitions, webhooks and their delivery log

Revision ID: 0001_tailormade
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001_tailormade"
down_revision = None
branch_labels = ("tailormade",)
depends_on = "0002_roles"

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table('tailormade_custom_fields',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('entity_type', sa.String(length=63), nullable=False),
    sa.Column('key', sa.String(length=63), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('type', sa.String(length=20), nullable=False),
    sa.Column('required', sa.Boolean(), nullable=False),
    sa.Column('is_unique', sa.Boolean(), nullable=False),
    sa.Column('default_value', JSON, nullable=True),
    sa.Column('choices', JSON, nullable=False),
    sa.Column('min_value', JSON, nullable=True),
    sa.Column('max_value', JSON, nullable=True),
    sa.Column('pattern', sa.String(length=500), nullable=True),
    sa.Column('target', sa.String(length=63), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('attributes', JSON, nullable=False),
    sa.CheckConstraint("type IN ('text', 'long_text', 'integer', 'decimal', 'boolean', 'date', 'datetime', 'single_choice', 'multiple_choice', 'email', 'url', 'phone', 'reference')", name=op.f('ck_tailormade_custom_fields_type')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_tailormade_custom_fields_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_tailormade_custom_fields')),
    sa.UniqueConstraint('tenant_id', 'entity_type', 'key', name=op.f('uq_tailormade_custom_fields_tenant_id_entity_type_key'))
    )
    op.create_table('tailormade_webhooks',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('events', JSON, nullable=False),
    sa.Column('secret', sa.String(length=200), nullable=False),
    sa.Column('description', sa.String(length=300), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('consecutive_failures', sa.Integer(), nullable=False),
    sa.Column('disabled_reason', sa.String(length=300), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('attributes', JSON, nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_tailormade_webhooks_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_tailormade_webhooks'))
    )
    op.create_table('tailormade_webhook_deliveries',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('webhook_id', sa.Uuid(), nullable=False),
    sa.Column('event', sa.String(length=100), nullable=False),
    sa.Column('entity_type', sa.String(length=63), nullable=False),
    sa.Column('entity_id', sa.Uuid(), nullable=True),
    sa.Column('customer_id', sa.Uuid(), nullable=True),
    sa.Column('payload', JSON, nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Uuid(), nullable=True),
    sa.Column('response_status', sa.Integer(), nullable=True),
    sa.Column('response_body', sa.Text(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=True),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('attributes', JSON, nullable=False),
    sa.CheckConstraint("status IN ('pending', 'retrying', 'succeeded', 'failed')", name=op.f('ck_tailormade_webhook_deliveries_status')),
    sa.ForeignKeyConstraint(['tenant_id', 'webhook_id'], ['tailormade_webhooks.tenant_id', 'tailormade_webhooks.id'], name=op.f('fk_tailormade_webhook_deliveries_tenant_id_webhook_id_tailormade_webhooks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_tailormade_webhook_deliveries_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_tailormade_webhook_deliveries'))
    )
    op.create_index('ix_tailormade_webhook_deliveries_tenant_customer', 'tailormade_webhook_deliveries', ['tenant_id', 'customer_id'], unique=False)
    op.create_index('ix_tailormade_webhook_deliveries_tenant_webhook', 'tailormade_webhook_deliveries', ['tenant_id', 'webhook_id', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index("ix_tailormade_webhook_deliveries_tenant_webhook",
                  table_name="tailormade_webhook_deliveries")
    op.drop_index("ix_tailormade_webhook_deliveries_tenant_customer",
                  table_name="tailormade_webhook_deliveries")
    op.drop_table("tailormade_webhook_deliveries")
    op.drop_table("tailormade_webhooks")
    op.drop_table("tailormade_custom_fields")
