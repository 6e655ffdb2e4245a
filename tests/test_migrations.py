"""Migrations build, on an empty SQLite and an empty PostgreSQL database, exactly the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from clientela.core import migrations
from clientela.core.app import create_app
from clientela.core.db import db


def test_migrations_build_exactly_the_models(backend, fresh_database_url, tmp_path):
    app = create_app("onprem", DATABASE_URL=fresh_database_url(backend), HOME=str(tmp_path))
    with app.app_context():
        branches = migrations.branches(app)
        assert branches[0] == "core"
        assert migrations.pending_heads(app) == branches
        assert migrations.upgrade(app) == branches
        with db.engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(
                    conn, opts={"include_object": migrations.include_object}
                ),
                db.metadata,
            )
        assert diff == []
        assert migrations.pending_heads(app) == []
        # applying again changes nothing
        migrations.upgrade(app)
        # a branch head another branch depends on (prm's 0001_prm on 0001_operational) is
        # recorded through its dependant: Alembic keeps only the outermost revisions
        assert migrations.pending_heads(app) == []
        assert migrations.applied_heads(app) <= set(migrations.expected_heads(app).values())
        db.engine.dispose()


def test_readyz_reports_pending_migrations_then_ready(backend, fresh_database_url, tmp_path):
    app = create_app("onprem", DATABASE_URL=fresh_database_url(backend), HOME=str(tmp_path))
    client = app.test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    pending = response.json["checks"]["migrations"]
    assert response.json["checks"]["database"] == "ok" and pending.startswith("pending: core")
    with app.app_context():
        migrations.upgrade(app)
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "checks": {"database": "ok", "migrations": "ok"}}
    with app.app_context():
        db.engine.dispose()


def test_readyz_reports_an_unreachable_database(tmp_path):
    app = create_app("onprem", DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/none",
                     HOME=str(tmp_path))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"] == {"database": "unreachable"}


def test_healthz_answers(client):
    assert client.get("/healthz").json == {"status": "ok"}
