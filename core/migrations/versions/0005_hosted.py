"""hosted tenancy: plans, quotas, usage

Revision ID: 0005_hosted
Revises: 0004_imports
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0005_hosted'
down_revision = '0004_imports'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('plans',
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('plugins', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True),
    sa.Column('max_records', sa.Integer(), nullable=True),
    sa.Column('api_requests_per_minute', sa.Integer(), nullable=True),
    sa.Column('max_storage_bytes', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_plans'))
    )
    op.create_table('tenant_usage',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('api_calls', sa.BigInteger(), nullable=False),
    sa.Column('records', sa.BigInteger(), nullable=False),
    sa.Column('storage_bytes', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_tenant_usage_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'day', name=op.f('pk_tenant_usage'))
    )


def downgrade() -> None:
    op.drop_table('tenant_usage')
    op.drop_table('plans')
