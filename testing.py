"""``clientela.testing``: a pytest plugin with fixtures for plugin authors.

Installed with Clientela and registered under ``pytest11``, so a plugin's own tests get:

- ``clientela_app``: the application with every installed plugin enabled (yours too), its
  database built by the real migrations, once per session, on SQLite and — when a server
  is reachable — on PostgreSQL (the tests run on both);
- ``clientela_tenant``: a fresh tenant, set as the current one for the test;
- ``clientela_admin``: an admin user of that tenant with an API token (``.headers``);
- ``clientela_client``: a Flask test client;
- ``clientela_smtp``: a real SMTP server (aiosmtpd) on a free local port for the test;
  ``.messages`` holds what it received, ``.configure(app)`` points the app's mail driver
  at it for the test;
- ``assert_tenant_isolated(app, path, make_record)``: proves that a record of one tenant
  answers 404, for every method of the route, to another tenant's admin;
- ``clientela_site``: the product with demo data served over HTTP on a local port (its own
  database, one per session and backend), users of every staff role; ``.login(page, role)``
  logs a browser tab in, ``.client(role)`` is a Flask test client logged in through the form;
- ``clientela_browser`` / ``clientela_page``: headless Chromium (Debian's ``/usr/bin/chromium``)
  driven by Playwright, a fresh tab per test that records script errors and CSP violations
  in ``page.clientela_console_errors``; ``save_screenshot(page, name, site)``.

PostgreSQL is found at ``CLIENTELA_TEST_PG`` (default: ``postgresql+psycopg://postgres@
127.0.0.1:5432/postgres``); each session creates its own databases and drops them. When no
server answers the PostgreSQL half is skipped, except under ``CI=true``, where that fails.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Callable

import pytest
import sqlalchemy as sa

PG_SERVER_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def pg_server() -> str:
    return os.environ.get("CLIENTELA_TEST_PG", PG_SERVER_DEFAULT)


def postgresql_problem() -> str | None:
    """Why PostgreSQL cannot be used for tests, or ``None`` when it can."""
    try:
        engine = sa.create_engine(pg_server(), connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means unreachable
        return f"{type(exc).__name__}: {exc}".splitlines()[0]


def require_postgresql() -> None:
    """Skip the test when PostgreSQL is unreachable, or fail under ``CI=true``."""
    problem = postgresql_problem()
    if problem is None:
        return
    message = f"PostgreSQL unreachable at {pg_server()}: {problem}"
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
        engine = sa.create_engine(pg_server(), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine.dispose()
        self.created.append(name)
        return sa.engine.make_url(pg_server()).set(database=name).render_as_string(
            hide_password=False
        )

    def drop_all(self) -> None:
        if not self.created:
            return
        engine = sa.create_engine(pg_server(), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            for name in self.created:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        engine.dispose()
        self.created.clear()


def build_app(database_url: str, home: str, **config):
    """An on-premise app on ``database_url``, migrated to the current schema."""
    from clientela.core import migrations
    from clientela.core.app import create_app

    app = create_app("onprem", DATABASE_URL=database_url, HOME=home,
                     SECRET_KEY="test-secret", **config)
    app.config["TESTING"] = True
    with app.app_context():
        migrations.upgrade(app)
    return app


def invoke_cli(args, env: dict[str, str] | None = None):
    """Run ``clientela ARGS`` in-process with ``env`` (click's ``CliRunner``) and return the
    result; then close the database connections of every app the command built, so that
    a PostgreSQL server shared with parallel test workers is not left with idle ones."""
    from click.testing import CliRunner

    import clientela.core.app as app_module
    from clientela.cli import cli
    from clientela.core.db import db

    made = []
    original = app_module.create_app

    def tracking(*a, **k):
        made.append(original(*a, **k))
        return made[-1]

    app_module.create_app = tracking
    try:
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    finally:
        app_module.create_app = original
        for built in made:
            with built.app_context():
                db.engine.dispose()


@dataclasses.dataclass
class Admin:
    """An admin user of a tenant with an API token."""

    tenant: object
    user: object
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_admin(tenant, email: str | None = None) -> Admin:
    from clientela.core import services, tenancy
    from clientela.core.db import db

    with tenancy.tenant_context(tenant.id):
        user = services.create_user(email or f"admin@{tenant.slug}.example", roles=["admin"])
        _, token = services.create_token(user, name="test")
        db.session.commit()
    return Admin(tenant=tenant, user=user, token=token)


def new_tenant(prefix: str = "t"):
    from clientela.core import services

    return services.create_tenant(f"{prefix}-{uuid.uuid4().hex[:12]}")


def assert_tenant_isolated(app, path: str, make_record: Callable[[Admin], str],
                           methods=("GET", "PATCH", "PUT", "DELETE", "POST"), body=None) -> None:
    """Assert that another tenant's admin gets 404 for ``path`` on a record of this tenant.

    :param path: the route with ``{id}`` where the record's id goes.
    :param make_record: called with the owning tenant's ``Admin``; returns the record id.
    :param methods: the methods to try; those the route does not have are skipped (405).
    """
    with app.app_context():
        owner, intruder = make_admin(new_tenant("own")), make_admin(new_tenant("other"))
        record_id = make_record(owner)
        client = app.test_client()
        tried = 0
        for method in methods:
            response = client.open(path.format(id=record_id), method=method,
                                   headers=intruder.headers,
                                   json=body if method in ("POST", "PATCH", "PUT") else None)
            if response.status_code == 405:
                continue
            tried += 1
            assert response.status_code == 404, (
                f"{method} {path} answered {response.status_code} to another tenant"
            )
        assert tried, f"no method of {path} could be tried"
        owner_view = client.get(path.format(id=record_id), headers=owner.headers)
        assert owner_view.status_code != 404 or "GET" not in methods, (
            f"the owning tenant cannot see its own record at {path}"
        )


# --- the pytest plugin -----------------------------------------------------------


def pytest_addoption(parser):
    parser.addini("clientela_backends", "database backends to test on "
                  "(default: sqlite postgresql)", type="args", default=["sqlite", "postgresql"])


@pytest.fixture(scope="session")
def clientela_pg_databases():
    dbs = PostgresDatabases()
    yield dbs
    dbs.drop_all()


def pytest_generate_tests(metafunc):
    if "clientela_backend" in metafunc.fixturenames:
        backends = metafunc.config.getini("clientela_backends")
        metafunc.parametrize("clientela_backend", backends, scope="session", indirect=True)


@pytest.fixture(scope="session")
def clientela_backend(request) -> str:
    if request.param == "postgresql":
        require_postgresql()
    return request.param


@pytest.fixture(scope="session")
def clientela_app(clientela_backend, tmp_path_factory, clientela_pg_databases):
    """The application, with its database migrated, once per session and backend."""
    from clientela.core.db import db

    home = tmp_path_factory.mktemp(f"clientela-{clientela_backend}")
    if clientela_backend == "sqlite":
        url = f"sqlite:///{home / 'clientela.db'}"
    else:
        url = clientela_pg_databases.create("plugin")
    app = build_app(url, str(home))
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def clientela_tenant(clientela_app):
    """A fresh tenant, current for the test (inside an app context)."""
    from clientela.core import tenancy
    from clientela.core.db import db

    with clientela_app.app_context():
        tenant = new_tenant()
        with tenancy.tenant_context(tenant.id):
            yield tenant
        db.session.rollback()
        db.session.remove()


@pytest.fixture
def clientela_admin(clientela_tenant) -> Admin:
    """An admin of ``clientela_tenant`` with an API token."""
    return make_admin(clientela_tenant)


@pytest.fixture
def clientela_client(clientela_app):
    return clientela_app.test_client()


class SmtpServer:
    """A real SMTP server in the test process (aiosmtpd), collecting what it receives."""

    def __init__(self) -> None:
        import socket

        from aiosmtpd.controller import Controller

        self.messages: list = []
        self.envelopes: list = []
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.host = "127.0.0.1"
        self._controller = Controller(self, hostname=self.host, port=self.port)
        self._saved: list = []
        self._running = False

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        import email
        from email import policy

        self.envelopes.append(envelope)
        self.messages.append(email.message_from_bytes(envelope.original_content or
                                                      envelope.content, policy=policy.default))
        return "250 OK"

    @property
    def settings(self) -> dict:
        return {"host": self.host, "port": self.port, "security": "none"}

    def configure(self, app) -> None:
        """Send the app's mail here until the fixture ends."""
        values = {"MAIL_DRIVER": "smtp", "MAIL_SMTP_HOST": self.host,
                  "MAIL_SMTP_PORT": self.port, "MAIL_SMTP_SECURITY": "none"}
        self._saved.append((app, {k: app.config.get(k, _MISSING) for k in values}))
        app.config.update(values)

    def start(self) -> "SmtpServer":
        self._controller.start()
        self._running = True
        return self

    def stop(self) -> None:
        if self._running:
            self._running = False
            self._controller.stop()
        for app, saved in reversed(self._saved):
            for key, value in saved.items():
                if value is _MISSING:
                    app.config.pop(key, None)
                else:
                    app.config[key] = value


_MISSING = object()


@pytest.fixture
def clientela_smtp():
    """A real SMTP server for the test; see :class:`SmtpServer`."""
    server = SmtpServer().start()
    yield server
    server.stop()


# --- the web UI in a real browser -------------------------------------------------------

#: Debian's Chromium; ``make install-test`` installs it when missing
CHROMIUM = os.environ.get("CLIENTELA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
#: the staff users of ``clientela_site``: role -> e-mail (password: ``site.password``)
SITE_ROLES = ("admin", "manager", "sales", "marketing", "service", "analyst")


@dataclasses.dataclass
class LiveSite:
    """The product served over HTTP from a thread, on its own database with demo data."""

    app: object
    url: str
    tenant_id: object
    backend: str
    password: str = "correct-horse-battery-9"
    users: dict = dataclasses.field(default_factory=dict)

    def email(self, role: str) -> str:
        return self.users[role]

    def login(self, page, role: str = "admin", email: str | None = None) -> None:
        """Log ``page`` in as the site's user of ``role`` (through the real login form)."""
        page.goto(self.url + "/app/login")
        page.get_by_label("E-mail").fill(email or self.email(role))
        page.get_by_label("Password").fill(self.password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(lambda url: "/app/login" not in url)

    def client(self, role: str = "admin", email: str | None = None):
        """A Flask test client logged in through the login form; ``client.csrf`` holds the
        session's CSRF token for the forms it posts."""
        import re

        client = self.app.test_client()
        page = client.get("/app/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        answer = client.post("/app/login", data={"email": email or self.email(role),
                                                  "password": self.password,
                                                  "csrf_token": token})
        assert answer.status_code == 302, f"login as {role} failed: {answer.status_code}"
        page = client.get("/app/").text
        client.csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
        return client

    def add_user(self, email: str, roles: list[str]) -> object:
        from clientela.core import services, tenancy
        from clientela.core.db import db

        with self.app.app_context(), tenancy.tenant_context(self.tenant_id):
            user = services.create_user(email, roles=roles, password=self.password)
            db.session.commit()
            self.users[email] = email
            return user.id


def start_live_server(app):
    """Serve ``app`` on a free local port from a daemon thread; returns (server, url)."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, f"http://127.0.0.1:{server.server_port}"


@pytest.fixture(scope="session")
def clientela_site(clientela_backend, tmp_path_factory, clientela_pg_databases) -> LiveSite:
    """The on-premise product with demo data, served on a local port: one per session and
    backend, its own database (not ``clientela_app``'s). Users of every staff role."""
    from clientela.core import services, tenancy
    from clientela.core.db import db

    home = tmp_path_factory.mktemp(f"site-{clientela_backend}")
    if clientela_backend == "sqlite":
        url = f"sqlite:///{home / 'clientela.db'}"
    else:
        url = clientela_pg_databases.create("site")
    # the tests log in many times from one address: the login rate limit is tested elsewhere
    app = build_app(url, str(home), LOGIN_RATE_LIMIT="10000 per minute")
    app.config["TESTING"] = False  # errors are answered as users see them
    with app.app_context():
        tenant = services.create_tenant("default", name="Demo company")
        site = LiveSite(app=app, url="", tenant_id=tenant.id, backend=clientela_backend)
        with tenancy.tenant_context(tenant.id):
            for role in SITE_ROLES:
                email = f"{role}@demo.example"
                services.create_user(email, roles=[role], password=site.password)
                site.users[role] = email
            app.extensions["clientela"].plugins.call_in_order("clientela_demo_data",
                                                               tenant=tenant)
            db.session.commit()
        db.session.remove()
    server, site.url = start_live_server(app)
    yield site
    server.shutdown()
    with app.app_context():
        db.engine.dispose()


def _chromium_missing() -> str | None:
    if os.path.exists(CHROMIUM):
        return None
    return f"no Chromium at {CHROMIUM} (make install-test installs Debian's chromium)"


@pytest.fixture(scope="session")
def clientela_browser():
    """Headless Chromium driven by Playwright (Debian's browser, not a downloaded one)."""
    problem = _chromium_missing()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture
def clientela_page(clientela_browser, clientela_site):
    """A fresh browser tab (its own cookies), English, tablet-and-up viewport."""
    context = clientela_browser.new_context(locale="en-GB", viewport={"width": 1280,
                                                                      "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    # script errors and CSP violations (a page's own 4xx answers are not errors here)
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error"
            and not msg.text.startswith("Failed to load resource") else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.clientela_console_errors = errors
    yield page
    context.close()


def save_screenshot(page, name: str, site: LiveSite | None = None) -> None:
    """Write ``docs/screenshots/<name>.png`` (from the SQLite run only: one picture per page)
    when ``CLIENTELA_SCREENSHOTS`` names the folder; the project's tests set it."""
    folder = os.environ.get("CLIENTELA_SCREENSHOTS")
    if not folder or (site is not None and site.backend != "sqlite"):
        return
    os.makedirs(folder, exist_ok=True)
    page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=True)
