"""background jobs

Revision ID: 0003_jobs
Revises: 0002_roles
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0003_jobs'
down_revision = '0002_roles'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
