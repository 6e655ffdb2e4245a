"""The operator console of the hosted profile (/console/) through the Flask test client,
on a hosted instance (PostgreSQL, Row-Level Security, an application role that owns
nothing): login with an operator token, tenants with plan and usage, suspend, resume,
change plan, CSRF; the on-premise profile has no console."""

from __future__ import annotations

import re

import pytest

from test_hosted import Hosted, hosted, operator_token, slug  # noqa: F401 (fixture)

from clientela.core import services
from clientela.core.db import db


def console_client(app, token: str):
    client = app.test_client()
    page = client.get("/console/login").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    answer = client.post("/console/login", data={"token": token, "csrf_token": csrf})
    assert answer.status_code == 302, answer.text
    page = client.get("/console/").text
    client.csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    return client


@pytest.fixture
def console(hosted):
    app = hosted.app
    app.config["LOGIN_RATE_LIMIT"] = "10000 per minute"
    token = operator_token(hosted)
    return app, token


def test_console_needs_an_operator_token(console, hosted):
    app, token = console
    client = app.test_client()
    answer = client.get("/console/")
    assert answer.status_code == 302 and "/console/login" in answer.headers["Location"]
    page = client.get("/console/login")
    assert page.status_code == 200 and 'name="token"' in page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    # no CSRF token: refused
    assert client.post("/console/login", data={"token": token}).status_code == 403
    # a wrong token, a tenant's API token: refused
    assert client.post("/console/login", data={"token": "clo_nope", "csrf_token": csrf}
                       ).status_code == 401
    tenant_slug = slug("c")
    output = hosted.tenant(tenant_slug, "--admin-email", f"admin@{tenant_slug}.example")
    tenant_token = re.search(r"(cla_\S+)", output)
    if tenant_token:
        assert client.post("/console/login", data={"token": tenant_token.group(1),
                                                   "csrf_token": csrf}).status_code == 401
    answer = client.post("/console/login?next=/console/", data={"token": token,
                                                                "csrf_token": csrf})
    assert answer.status_code == 302
    assert client.get("/console/").status_code == 200
    # the session holds no token
    with client.session_transaction() as stored:
        assert token not in str(dict(stored))
    # revoking the token ends the session
    name = None
    with app.app_context():
        from clientela.deployments.hosted import services as hosted_services
        for row in hosted_services.list_operator_tokens():
            if token.startswith(row.prefix):
                name = row.name
        hosted_services.revoke_operator_token(name)
    answer = client.get("/console/")
    assert answer.status_code == 302 and "/console/login" in answer.headers["Location"]


def test_tenants_list_suspend_resume_change_plan(console, hosted):
    app, token = console
    tenant_slug = slug("c")
    hosted.tenant(tenant_slug)
    plan = slug("plan")
    result = hosted("plans", "create", plan, "--plugins", "operational")
    assert result.exit_code == 0, result.output
    client = console_client(app, token)
    page = client.get("/console/")
    assert page.status_code == 200 and tenant_slug in page.text
    assert "API calls today" in page.text
    detail = client.get(f"/console/tenants/{tenant_slug}")
    assert detail.status_code == 200 and "<svg" in detail.text
    # CSRF on every write
    assert client.post(f"/console/tenants/{tenant_slug}/suspend").status_code == 403
    assert client.post(f"/console/tenants/{tenant_slug}/suspend",
                       data={"csrf_token": client.csrf}).status_code == 302
    with app.app_context():
        assert services.get_tenant(tenant_slug).status == "suspended"
    assert client.post(f"/console/tenants/{tenant_slug}/resume",
                       data={"csrf_token": client.csrf, "back": "tenant"}).status_code == 302
    with app.app_context():
        assert services.get_tenant(tenant_slug).status == "active"
    assert client.post(f"/console/tenants/{tenant_slug}/plan",
                       data={"csrf_token": client.csrf, "plan": plan}).status_code == 302
    with app.app_context():
        assert services.get_tenant(tenant_slug).plan == plan
        db.session.remove()
    answer = client.post(f"/console/tenants/{tenant_slug}/plan",
                         data={"csrf_token": client.csrf, "plan": "no-such-plan"})
    assert answer.status_code == 422 and 'id="plan-errors"' in answer.text
    assert client.post(f"/console/tenants/{tenant_slug}/plan",
                       data={"csrf_token": client.csrf, "plan": ""}).status_code == 302
    with app.app_context():
        assert services.get_tenant(tenant_slug).plan is None
    # an unknown tenant is a 404 page
    assert client.get("/console/tenants/no-such-tenant").status_code == 404
    assert client.post("/console/tenants/no-such-tenant/suspend",
                       data={"csrf_token": client.csrf}).status_code == 404


def test_a_tenant_users_session_does_not_open_the_console(console, hosted):
    app, _token = console
    client = app.test_client()
    with client.session_transaction() as stored:
        stored["user_id"] = "00000000-0000-0000-0000-000000000000"
        stored["tenant_id"] = "00000000-0000-0000-0000-000000000000"
    answer = client.get("/console/")
    assert answer.status_code == 302 and "/console/login" in answer.headers["Location"]


def test_on_premise_has_no_console(clientela_site):
    client = clientela_site.app.test_client()
    assert client.get("/console/").status_code == 404
    assert client.get("/console/login").status_code == 404
