"""Fixtures: an app per database backend (SQLite and PostgreSQL), tenants, a CLI runner.

Every test that touches data runs on both backends. Each test run gets fresh
databases (one SQLite file and one PostgreSQL database per xdist worker), built
once per session through the real migrations; tests isolate themselves by creating
their own tenants, which the tenancy layer keeps apart.

PostgreSQL is found at ``CLIENTELA_TEST_PG`` (default: the local server, user
postgres). When it is unreachable the PostgreSQL half is skipped, except under
``CI=true``, where that is a failure.
"""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa

PG_SERVER = os.environ.get(
    "CLIENTELA_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ["sqlite", "postgresql"]

# the tests choose their own configuration: nothing from the developer's shell
for _var in ("CLIENTELA_HOME", "CLIENTELA_PROFILE", "DATABASE_URL", "REDIS_URL",
             "CLIENTELA_PLUGINS_DISABLED", "CLIENTELA_PLUGINS_ENABLED", "CLIENTELA_SECRET_KEY"):
    os.environ.pop(_var, None)


def _pg_reachable() -> str | None:
    try:
        engine = sa.create_engine(PG_SERVER, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means unreachable
        return f"{type(exc).__name__}: {exc}".splitlines()[0]


_PG_PROBLEM = _pg_reachable()


def require_postgresql() -> None:
    if _PG_PROBLEM is None:
        return
    message = f"PostgreSQL unreachable at {PG_SERVER}: {_PG_PROBLEM}"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI requires it)", pytrace=False)
    pytest.skip(message)


class PostgresDatabases:
    """Creates uniquely named databases on the test server and drops them at the end."""

    def __init__(self) -> None:
        self.created: list[str] = []

    def create(self, label: str = "t") -> str:
        require_postgresql()
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        name = f"clientela_{label}_{worker}_{uuid.uuid4().hex[:10]}"
        engine = sa.create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine.dispose()
        self.created.append(name)
        return sa.engine.make_url(PG_SERVER).set(database=name).render_as_string(
            hide_password=False
        )

    def drop_all(self) -> None:
        if not self.created:
            return
        engine = sa.create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            for name in self.created:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        engine.dispose()


@pytest.fixture(scope="session")
def pg_databases():
    dbs = PostgresDatabases()
    yield dbs
    dbs.drop_all()


@pytest.fixture
def fresh_database_url(request, tmp_path, pg_databases):
    """A factory of empty databases for the backend the test is parametrised with."""

    def make(backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / f'{uuid.uuid4().hex[:8]}.db'}"
        return pg_databases.create("fresh")

    return make


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request) -> str:
    if request.param == "postgresql":
        require_postgresql()
    return request.param


@pytest.fixture(scope="session")
def app(backend, tmp_path_factory, pg_databases):
    """The application on a database built once per session by the real migrations."""
    from clientela.core import migrations
    from clientela.core.app import create_app

    home = tmp_path_factory.mktemp(f"home-{backend}")
    if backend == "sqlite":
        url = f"sqlite:///{home / 'clientela.db'}"
    else:
        url = pg_databases.create("app")
    app = create_app("onprem", DATABASE_URL=url, HOME=str(home), SECRET_KEY="test-secret")
    app.config["TESTING"] = True
    with app.app_context():
        migrations.upgrade(app)
    yield app
    with app.app_context():
        from clientela.core.db import db

        db.engine.dispose()


@pytest.fixture
def app_ctx(app):
    from clientela.core.db import db

    with app.app_context():
        yield app
        db.session.rollback()
        db.session.remove()


def new_slug(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_tenant(app_ctx):
    from clientela.core import services

    def make(prefix: str = "t"):
        return services.create_tenant(new_slug(prefix))

    return make


@pytest.fixture
def tenant(make_tenant):
    """A fresh tenant, set as the current one for the test."""
    from clientela.core import tenancy

    t = make_tenant("a")
    with tenancy.tenant_context(t.id):
        yield t


@pytest.fixture
def client(app):
    return app.test_client()
