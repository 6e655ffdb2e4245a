"""tailormade: webhook secrets encrypted at rest

Revision ID: 0004_tailormade_webhook_secrets
Revises: 0003_tailormade_automations
Create Date: 2026-12-03

The plaintext column ``secret`` becomes ``secret_encrypted`` (Fernet, key derived from the
instance's SECRET_KEY by ``clientela.core.encryption``); existing secrets are encrypted in
place, so receivers keep verifying signatures with the secret they have.
"""

import sqlalchemy as sa
from alembic import op

from clientela.core import encryption

revision = "0004_tailormade_webhook_secrets"
down_revision = "0003_tailormade_automations"
branch_labels = None
depends_on = None

PURPOSE = "webhook secrets"  # models.WEBHOOK_SECRETS, frozen here as this revision uses it


def _rewrite(source: str, target: str, change) -> None:
    webhooks = sa.table("tailormade_webhooks", sa.column("tenant_id", sa.Uuid),
                        sa.column("id", sa.Uuid), sa.column(source, sa.Text),
                        sa.column(target, sa.Text))
    bind = op.get_bind()
    rows = bind.execute(sa.select(webhooks.c.tenant_id, webhooks.c.id,
                                  webhooks.c[source])).all()
    for tenant_id, webhook_id, value in rows:
        bind.execute(sa.update(webhooks).where(webhooks.c.tenant_id == tenant_id,
                                               webhooks.c.id == webhook_id)
                     .values({target: change(value)}))


def upgrade() -> None:
    with op.batch_alter_table("tailormade_webhooks") as batch_op:
        batch_op.add_column(sa.Column("secret_encrypted", sa.Text(), nullable=True))
    _rewrite("secret", "secret_encrypted", lambda v: encryption.encrypt(v, PURPOSE))
    with op.batch_alter_table("tailormade_webhooks") as batch_op:
        batch_op.alter_column("secret_encrypted", existing_type=sa.Text(), nullable=False)
        batch_op.drop_column("secret")


def downgrade() -> None:
    with op.batch_alter_table("tailormade_webhooks") as batch_op:
        batch_op.add_column(sa.Column("secret", sa.String(length=200), nullable=True))
    _rewrite("secret_encrypted", "secret", lambda v: encryption.decrypt(v, PURPOSE))
    with op.batch_alter_table("tailormade_webhooks") as batch_op:
        batch_op.alter_column("secret", existing_type=sa.String(length=200), nullable=False)
        batch_op.drop_column("secret_encrypted")
