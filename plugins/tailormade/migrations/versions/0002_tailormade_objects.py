"""tailormade: custom objects and their records (one table, values in attributes)

Revision ID: 0002_tailormade_objects
Revises: 0001_tailormade
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002_tailormade_objects"
down_revision = "0001_tailormade"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table('tailormade_custom_objects',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('key', sa.String(length=40), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('plural_label', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('attributes', JSON, nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_tailormade_custom_objects_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_tailormade_custom_objects')),
    sa.UniqueConstraint('tenant_id', 'key', name=op.f('uq_tailormade_custom_objects_tenant_id_key'))
    )
    op.create_table('tailormade_custom_records',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('object_id', sa.Uuid(), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=True),
    sa.Column('owner_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('attributes', JSON, nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'customer_id'], ['customers.tenant_id', 'customers.id'], name=op.f('fk_tailormade_custom_records_tenant_id_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'object_id'], ['tailormade_custom_objects.tenant_id', 'tailormade_custom_objects.id'], name=op.f('fk_tailormade_custom_records_tenant_id_object_id_tailormade_custom_objects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'owner_id'], ['users.tenant_id', 'users.id'], name=op.f('fk_tailormade_custom_records_tenant_id_owner_id_users')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_tailormade_custom_records_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_tailormade_custom_records'))
    )
    op.create_index('ix_tailormade_custom_records_tenant_customer', 'tailormade_custom_records', ['tenant_id', 'customer_id'], unique=False)
    op.create_index('ix_tailormade_custom_records_tenant_object_title', 'tailormade_custom_records', ['tenant_id', 'object_id', 'title'], unique=False)
    op.create_index('ix_tailormade_custom_records_tenant_owner', 'tailormade_custom_records', ['tenant_id', 'owner_id'], unique=False)


def downgrade() -> None:
    op.drop_index("ix_tailormade_custom_records_tenant_owner",
                  table_name="tailormade_custom_records")
    op.drop_index("ix_tailormade_custom_records_tenant_object_title",
                  table_name="tailormade_custom_records")
    op.drop_index("ix_tailormade_custom_records_tenant_customer",
                  table_name="tailormade_custom_records")
    op.drop_table("tailormade_custom_records")
    op.drop_table("tailormade_custom_objects")
