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

BACKENDS = ["sqlite", "postgresql"]

# the tests choose their own configuration: nothing from the developer's shell
for _var in ("CLIENTELA_HOME", "CLIENTELA_PROFILE", "DATABASE_URL", "REDIS_URL",
             "CLIENTELA_PLUGINS_DISABLED", "CLIENTELA_PLUGINS_ENABLED", "CLIENTELA_SECRET_KEY"):
    os.environ.pop(_var, None)
# the browser tests write the screenshots that docs/ui.md shows when CLIENTELA_SCREENSHOTS
# names a folder (`make screenshots`); `make test` leaves docs/ alone (a test run must not
# change tracked files)

# the same helpers plugin authors get from the clientela.testing pytest plugin
from clientela.testing import PostgresDatabases, require_postgresql  # noqa: E402


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


ROLES = ("admin", "manager", "sales", "marketing", "service", "analyst")


class ApiTenant:
    """A tenant with one user (and API token) per built-in role, and a test client."""

    def __init__(self, app, tenant):
        from clientela.core import services, tenancy
        from clientela.core.db import db

        self.app = app
        self.tenant = tenant
        self.client = app.test_client()
        self.users = {}
        self.tokens = {}
        with tenancy.tenant_context(tenant.id):
            for role in ROLES:
                # no password: argon2 is slow on purpose, and tokens are what tests use
                user = services.create_user(f"{role}@{tenant.slug}.example", roles=[role])
                _, raw = services.create_token(user, name="test")
                self.users[role] = user
                self.tokens[role] = raw
            db.session.commit()

    def headers(self, role: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def get(self, path, role="admin", **kw):
        return self.client.get(path, headers=self.headers(role), **kw)

    def post(self, path, json=None, role="admin", **kw):
        return self.client.post(path, json=json, headers=self.headers(role), **kw)

    def patch(self, path, json=None, role="admin", **kw):
        return self.client.patch(path, json=json, headers=self.headers(role), **kw)

    def delete(self, path, role="admin", **kw):
        return self.client.delete(path, headers=self.headers(role), **kw)

    def customer(self, role="admin", **data) -> dict:
        data.setdefault("first_name", "Test")
        response = self.post("/api/v1/customers", json=data, role=role)
        assert response.status_code == 201, response.json
        return response.json


@pytest.fixture
def api(app, tenant):
    """Tenant A, with users of every role, driven through HTTP."""
    return ApiTenant(app, tenant)


@pytest.fixture
def other_api(app, make_tenant):
    """Tenant B, the one that must never see A's data."""
    return ApiTenant(app, make_tenant("b"))
