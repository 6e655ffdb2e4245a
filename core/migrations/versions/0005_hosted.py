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
    pass


def downgrade() -> None:
    pass
