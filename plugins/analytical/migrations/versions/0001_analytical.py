"""analytical: saved segments and import mappings

Revision ID: 0001_analytical
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001_analytical"
down_revision = None
branch_labels = ("analytical",)
depends_on = "0002_roles"


def _entity_columns():
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("attributes", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                  nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "analytical_segments",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("rules", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                  nullable=False),
        *_entity_columns(),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"],
                                name=op.f("fk_analytical_segments_tenant_id_tenants"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_analytical_segments")),
        sa.UniqueConstraint("tenant_id", "name",
                            name=op.f("uq_analytical_segments_tenant_id_name")),
    )
    op.create_table(
        "analytical_import_mappings",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("columns", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                  nullable=False),
        sa.Column("options", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                  nullable=False),
        *_entity_columns(),
        sa.CheckConstraint("kind IN ('transactions', 'attributes')",
                           name=op.f("ck_analytical_import_mappings_kind")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"],
                                name=op.f("fk_analytical_import_mappings_tenant_id_tenants"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_analytical_import_mappings")),
        sa.UniqueConstraint("tenant_id", "kind", "name",
                            name=op.f("uq_analytical_import_mappings_tenant_id_kind_name")),
    )


def downgrade() -> None:
    op.drop_table("analytical_import_mappings")
    op.drop_table("analytical_segments")
