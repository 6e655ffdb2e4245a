"""customer imports

Revision ID: 0004_imports
Revises: 0003_jobs
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0004_imports'
down_revision = '0003_jobs'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
