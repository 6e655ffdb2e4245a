"""customer search indexes

Revision ID: 0006_search
Revises: 0005_hosted
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0006_search'
down_revision = '0005_hosted'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
