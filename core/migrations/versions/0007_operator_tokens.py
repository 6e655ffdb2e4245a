"""hosted operator API: operator tokens

Revision ID: 0007_operator_tokens
Revises: 0006_search
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa

revision = '0007_operator_tokens'
down_revision = '0006_search'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('operator_tokens',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operator_tokens')),
    sa.UniqueConstraint('name', name=op.f('uq_operator_tokens_name')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_operator_tokens_token_hash'))
    )


def downgrade() -> None:
    op.drop_table('operator_tokens')
