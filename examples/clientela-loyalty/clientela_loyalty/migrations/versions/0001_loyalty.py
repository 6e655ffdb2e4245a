"""loyalty: the points ledger

Revision ID: 0001_loyalty
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001_loyalty"
down_revision = None
branch_labels = ("loyalty",)
depends_on = "0002_roles"


def upgrade() -> None:
    op.create_table(
        "loyalty_entries",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("description", sa.String(length=300), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("settled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("attributes", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                  nullable=False),
        sa.CheckConstraint("kind IN ('purchase', 'interaction', 'redemption', 'expiry')",
                           name=op.f("ck_loyalty_entries_kind")),
        sa.ForeignKeyConstraint(["tenant_id", "customer_id"],
                                ["customers.tenant_id", "customers.id"],
                                name=op.f("fk_loyalty_entries_tenant_id_customer_id_customers"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"],
                                name=op.f("fk_loyalty_entries_tenant_id_tenants"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_loyalty_entries")),
    )
    op.create_index("ix_loyalty_entries_tenant_customer", "loyalty_entries",
                    ["tenant_id", "customer_id", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_loyalty_entries_tenant_customer", table_name="loyalty_entries")
    op.drop_table("loyalty_entries")
