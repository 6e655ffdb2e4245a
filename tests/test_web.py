"""The web UI's foundations through HTTP (Flask test client), on SQLite and PostgreSQL:
login and sessions, CSRF, the Content-Security-Policy, error pages, languages."""

from __future__ import annotations

import os
import re

import pytest

import clientela.core
from clientela.core.web import messages

ROOT = os.path.dirname(os.path.dirname(clientela.core.__file__))
TRANSLATED = ["core/web"] + [
    os.path.join("plugins", name) for name in sorted(os.listdir(os.path.join(ROOT, "plugins")))
    if os.path.exists(os.path.join(ROOT, "plugins", name, "__init__.py"))
] + ["deployments/hosted", "deployments/onprem"]


@pytest.mark.parametrize("package", TRANSLATED)
def test_every_string_has_an_italian_and_a_spanish_translation(package):
    problems = messages.missing(os.path.join(ROOT, package))
    assert not problems, "\n".join(f"{locale}: {line}" for locale, lines in problems.items()
                                   for line in lines)


def test_the_check_finds_a_missing_translation(tmp_path):
    (tmp_path / "templates" / "x").mkdir(parents=True)
    (tmp_path / "templates" / "x" / "page.html").write_text('{{ _("A brand new string") }}')
    (tmp_path / "view.py").write_text('from clientela.core.web.i18n import _\n_("Another")\n')
    problems = messages.missing(str(tmp_path))
    assert set(problems) == {"it", "es"}
    assert any("A brand new string" in line for line in problems["it"])
    assert any("Another" in line for line in problems["es"])
    messages.update(str(tmp_path))
    po = (tmp_path / "translations" / "it.po").read_text()
    assert 'msgid "A brand new string"' in po
    po = po.replace('msgid "A brand new string"\nmsgstr ""',
                    'msgid "A brand new string"\nmsgstr "Una stringa nuova"')
    (tmp_path / "translations" / "it.po").write_text(po)
    problems = messages.missing(str(tmp_path))
    assert "it" in problems and not any("brand new" in line for line in problems["it"])


def _token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_login_needs_the_csrf_token_and_the_right_password(clientela_site):
    client = clientela_site.app.test_client()
    page = client.get("/app/login")
    assert page.status_code == 200
    email = clientela_site.email("admin")
    good = {"email": email, "password": clientela_site.password}
    assert client.post("/app/login", data=good).status_code == 403
    wrong = client.post("/app/login", data={**good, "password": "nope", "csrf_token": _token(page.text)})
    assert wrong.status_code == 401 and "Wrong e-mail or password" in wrong.text
    done = client.post("/app/login?next=//evil.example/x", data={**good, "csrf_token": _token(page.text)})
    assert done.status_code == 302 and done.headers["Location"] == "/app/"  # stays on the site
    cookie = done.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/app/").status_code == 200


def test_pages_need_a_session(clientela_site):
    client = clientela_site.app.test_client()
    answer = client.get("/app/customers?q=x")
    assert answer.status_code == 302 and "/app/login?next=" in answer.headers["Location"]
    assert client.post("/app/locale", data={"locale": "it"}).status_code == 401
    # an API token is no way into the pages' unsafe methods without the session's token
    assert client.get("/").headers["Location"].endswith("/app/")


def test_unsafe_requests_need_the_sessions_csrf_token(clientela_site):
    # a user of its own: the language it chooses is stored on the user
    import uuid

    email = f"locale-{uuid.uuid4().hex[:8]}@demo.example"
    clientela_site.add_user(email, ["analyst"])
    client = clientela_site.client(email=email)
    assert client.post("/app/locale", data={"locale": "es"}).status_code == 403
    assert client.post("/app/locale", data={"locale": "es", "csrf_token": "forged"}).status_code == 403
    answer = client.post("/app/locale", data={"locale": "es", "csrf_token": client.csrf,
                                              "next": "/app/"})
    assert answer.status_code == 302
    assert "Clientes por etapa" in client.get("/app/").text
    bad = client.post("/app/locale", data={"locale": "fr", "csrf_token": client.csrf})
    assert bad.status_code == 422 and "Elige uno de los idiomas" in bad.text
    client.post("/app/locale", data={"locale": "en", "csrf_token": client.csrf})


def test_every_page_has_a_csp_without_inline_script(clientela_site):
    client = clientela_site.client("admin")
    for path in ("/app/", "/app/customers", "/app/settings/plugins", "/app/login"):
        answer = client.get(path)
        csp = answer.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, path
        assert answer.headers["X-Frame-Options"] == "DENY"
        html = answer.text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), f"inline script on {path}"
        assert not re.search(r"\sstyle=", html), f"inline style on {path}"
        assert not re.search(r"\son[a-z]+=", html), f"inline handler on {path}"


def test_errors_are_pages_not_tracebacks(clientela_site):
    client = clientela_site.client("admin")
    missing = client.get("/app/customers/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    assert "does not exist" in missing.text
    assert client.get("/app/customers/not-an-id").status_code == 404
    assert client.get("/app/no-such-page").status_code == 404
    # the API still answers JSON
    assert client.get("/api/v1/no-such-route").mimetype == "application/json"


def test_a_role_without_the_permission_gets_403(clientela_site):
    client = clientela_site.client("sales")
    answer = client.get("/app/settings/plugins")
    assert answer.status_code == 403 and "not allowed" in answer.text
    nav = client.get("/app/").text
    assert "/app/settings/plugins" not in nav  # not offered either


def test_dates_and_numbers_follow_the_language(clientela_site):
    import datetime as dt

    from clientela.core.web import i18n

    app = clientela_site.app
    moment = dt.datetime(2026, 3, 4, 15, 30, tzinfo=dt.timezone.utc)
    shown = {}
    for locale in ("en", "it", "es"):
        with app.test_request_context("/app/", headers={"Accept-Language": locale}):
            shown[locale] = (i18n.format_money(1234.5, "EUR"), i18n.format_date(moment),
                             i18n.format_number(1234567.891, 2))
    assert shown["en"] == ("€1,234.50", "Mar 4, 2026", "1,234,567.89")
    assert shown["it"] == ("1.234,50\xa0€", "4 mar 2026", "1.234.567,89")
    assert shown["es"][0] == "1.234,50\xa0€" and shown["es"][2] == "1.234.567,89"
    assert shown["es"][1] == "4 mar 2026"


def test_a_string_has_one_translation_across_packages():
    """The catalogues of the core and the plugins are merged into one per language: the
    same English string must not be translated two ways (the product's words stay one)."""
    from babel.messages.pofile import read_po

    for locale in ("it", "es"):
        seen: dict[str, dict[str, str]] = {}
        for package in TRANSLATED:
            path = os.path.join(ROOT, package, "translations", f"{locale}.po")
            if not os.path.exists(path):
                continue
            with open(path, "rb") as fh:
                for message in read_po(fh, locale=locale):
                    if message.id and isinstance(message.id, str) and message.string:
                        seen.setdefault(message.id, {})[package] = message.string
        clashes = {msgid: where for msgid, where in seen.items() if len(set(where.values())) > 1}
        assert not clashes, f"{locale}: {clashes}"


def test_a_disabled_plugins_pages_disappear(backend, fresh_database_url, tmp_path):
    """With the PRM and analytical plugins disabled their pages answer 404, and neither
    their navigation entries nor their dashboard widgets are offered."""
    from clientela.core import services, tenancy
    from clientela.core.db import db
    from clientela.testing import LiveSite, build_app

    app = build_app(fresh_database_url(backend), str(tmp_path),
                    PLUGINS_DISABLED=["prm", "analytical"], LOGIN_RATE_LIMIT="1000 per minute")
    with app.app_context():
        tenant = services.create_tenant("default")
        site = LiveSite(app=app, url="", tenant_id=tenant.id, backend=backend)
        with tenancy.tenant_context(tenant.id):
            services.create_user("admin@demo.example", roles=["admin"], password=site.password)
            db.session.commit()
        site.users["admin"] = "admin@demo.example"
    client = site.client("admin")
    dashboard = client.get("/app/").text
    assert "/app/deals" in dashboard  # operational is still there
    for gone in ("/app/partners", "/app/analytics"):
        assert gone not in dashboard
    assert "RFM" not in dashboard
    assert client.get("/app/partners/").status_code == 404
    assert client.get("/app/analytics/segments").status_code == 404
    assert client.get("/partner/").status_code == 404
    with app.app_context():
        db.engine.dispose()


def test_a_web_worker_leaves_the_serving_commands_application_context(app):
    """`clientela serve` runs inside an application context; a gunicorn worker that kept it
    would serve every request in one context (one ``g``, one session). Seen in a served
    instance: the language of one request stuck to the next."""
    from flask import g, has_app_context

    from flask.globals import _cv_app

    from clientela.core.commands import prepare_worker, restore_worker_contexts

    outer = app.app_context()
    outer.push()
    g.left_over = "a principal of an earlier request"
    app.app_context().push()
    prepare_worker(app)
    assert not has_app_context()
    with app.test_request_context("/app/"):
        assert "left_over" not in g
    # and when the worker exits, the contexts are back for the command's frames to pop
    # (they popped nothing: a LookupError traceback and exit code 1 for every worker)
    restore_worker_contexts()
    _cv_app.get().pop()  # the inner one, then the outer one with its g
    assert g.left_over == "a principal of an earlier request"
    outer.pop()
    assert not has_app_context()


def test_one_web_worker_takes_the_embedded_job_queue(tmp_path):
    """`clientela serve` runs the embedded queue's consumer threads in one gunicorn worker,
    never in the master: a worker forked while a master's job thread held a lock (Huey's
    storage lock, taken by every poll) hung on its first request. The lock file elects the
    worker; a second worker does not start consumers; once freed, the next one does."""
    import threading

    from clientela.core import migrations
    from clientela.core.app import create_app
    from clientela.core.commands import start_jobs_in_worker, stop_jobs_in_worker
    from clientela.core.db import db

    app = create_app("onprem", DATABASE_URL=f"sqlite:///{tmp_path / 'c.db'}",
                     HOME=str(tmp_path), SECRET_KEY="test")
    with app.app_context():
        migrations.upgrade(app)
    before = {t.ident for t in threading.enumerate()}
    first = start_jobs_in_worker(app)
    try:
        assert first is not None
        assert {t.ident for t in threading.enumerate()} - before  # its threads run
        assert start_jobs_in_worker(app) is None  # another worker: the lock is taken
    finally:
        stop_jobs_in_worker()
    again = start_jobs_in_worker(app)
    try:
        assert again is not None
    finally:
        stop_jobs_in_worker()
    with app.app_context():
        db.engine.dispose()
