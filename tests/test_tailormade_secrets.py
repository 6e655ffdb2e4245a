"""Webhook secrets are stored encrypted at rest (Fernet, keyed by SECRET_KEY), the
migration encrypts the secrets of existing webhooks, and signatures still verify — on both
backends."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from test_tailormade import Receiver, delivery_jobs, run_job, subscribe, verify

from clientela.core import encryption, jobs, migrations, tenancy
from clientela.core.app import create_app
from clientela.core.db import db

SECRET = "a-shared-secret-of-ours-1234"


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _no_leftover_jobs(app):
    yield
    jobs.queue_for(app).flush()


def stored(webhook_id) -> str:
    """The column as the database holds it."""
    table = sa.table("tailormade_webhooks", sa.column("id", sa.Uuid),
                     sa.column("secret_encrypted"))
    value = db.session.execute(sa.select(table.c.secret_encrypted).where(
        table.c.id == webhook_id)).scalar_one()
    db.session.rollback()
    return value


def test_a_webhook_secret_is_stored_encrypted_and_signatures_still_verify(app, api, receiver):
    import uuid

    given = subscribe(api, receiver, ["customers.insert"], secret=SECRET)
    made = subscribe(api, receiver, ["customers.insert"])
    for webhook, secret in ((given, SECRET), (made, made["secret"])):
        raw = stored(uuid.UUID(webhook["id"]))
        assert secret not in raw and raw.startswith("gAAAAA")  # a Fernet token
        assert encryption.decrypt(raw, "webhook secrets") == secret
    # the audit trail holds no form of it
    trail = api.get(f"/api/v1/audit?entity_id={given['id']}")
    assert trail.status_code == 200 and len(trail.json) == 1, trail.json
    assert SECRET not in str(trail.json)
    assert trail.json[0]["changes"]["secret_encrypted"] == [None, "[redacted]"]

    api.customer(first_name="Signed")
    for job in delivery_jobs(api.tenant.id):
        assert run_job(app, api.tenant.id, job.id) == "succeeded"
    assert len(receiver.requests) == 2
    secrets = {given["id"]: SECRET, made["id"]: made["secret"]}
    for request in receiver.requests:
        delivery = request["headers"]["X-Clientela-Delivery"]
        owner = next(w for w in secrets if any(
            d["id"] == delivery for d in api.get(f"/api/v1/webhooks/{w}/deliveries").json))
        verify(request, secrets[owner])

    # a new secret is stored encrypted too, and signs from then on
    changed = api.patch(f"/api/v1/webhooks/{given['id']}", json={"secret": SECRET + "-new"})
    assert changed.status_code == 200, changed.json
    assert SECRET not in stored(uuid.UUID(given["id"]))
    assert encryption.decrypt(stored(uuid.UUID(given["id"])), "webhook secrets") == \
        SECRET + "-new"


def test_a_secret_that_no_longer_decrypts_fails_the_delivery_with_the_reason(app, api,
                                                                               receiver,
                                                                               monkeypatch):
    webhook = subscribe(api, receiver, ["customers.insert"], secret=SECRET)
    api.customer(first_name="Unsigned")
    (job,) = delivery_jobs(api.tenant.id)
    monkeypatch.setitem(app.config, "SECRET_KEY", "another-key-than-before")
    assert run_job(app, api.tenant.id, job.id) == "succeeded"  # nothing to retry
    log = api.get(f"/api/v1/webhooks/{webhook['id']}/deliveries").json
    assert log[0]["status"] == "failed" and "cannot be decrypted" in log[0]["error"]
    assert receiver.requests == []


def test_the_migration_encrypts_the_secrets_of_existing_webhooks(backend, fresh_database_url,
                                                                 tmp_path):
    from clientela.core import services
    from clientela.plugins.tailormade import webhooks
    from clientela.plugins.tailormade.models import Webhook

    app = create_app("onprem", DATABASE_URL=fresh_database_url(backend), HOME=str(tmp_path),
                     SECRET_KEY="the-instance-key")
    with app.app_context():
        migrations.upgrade(app)
        tenant_id = services.create_tenant("migrated").id
        db.session.commit()
        with tenancy.tenant_context(tenant_id):
            webhook = Webhook(url="https://example.com/hook", events=["*"], secret=SECRET)
            db.session.add(webhook)
            db.session.commit()
            webhook_id = webhook.id
        db.session.remove()
        table = sa.table("tailormade_webhooks", sa.column("id", sa.Uuid),
                         sa.column("secret"), sa.column("secret_encrypted"))

        # back to the revision before: the secret is in plaintext there
        command.downgrade(migrations.alembic_config(app), "0003_tailormade_automations")
        with db.engine.connect() as conn:
            assert conn.execute(sa.select(table.c.secret)).scalar_one() == SECRET
            assert "secret_encrypted" not in {
                c["name"] for c in sa.inspect(conn).get_columns("tailormade_webhooks")}
        # and forward again: encrypted, the same secret, the same signatures
        migrations.upgrade(app)
        with db.engine.connect() as conn:
            raw = conn.execute(sa.select(table.c.secret_encrypted)).scalar_one()
            assert "secret" not in {
                c["name"] for c in sa.inspect(conn).get_columns("tailormade_webhooks")}
        assert SECRET not in raw
        with tenancy.tenant_context(tenant_id):
            again = db.session.execute(sa.select(Webhook).where(Webhook.id == webhook_id)
                                       ).scalar_one()
            assert again.secret == SECRET
            assert webhooks.sign(again.secret, "1", b"{}") == webhooks.sign(SECRET, "1", b"{}")
            db.session.rollback()
        db.session.remove()
        db.engine.dispose()
