"""The staff UI on the hosted profile (PostgreSQL with Row-Level Security): a tenant is
addressed by its subdomain, and the pages of plugins outside its plan do not exist for it."""

from __future__ import annotations

import re

import sqlalchemy as sa

from test_hosted import Hosted, hosted, slug  # noqa: F401 (fixture)

from clientela.core import security, services, tenancy
from clientela.core.db import db
from clientela.core.models import Tenant

PASSWORD = "correct-horse-battery-9"


def _login(app, base: str, email: str):
    client = app.test_client()
    page = client.get("/app/login", base_url=base)
    assert page.status_code == 200
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    answer = client.post("/app/login", base_url=base,
                         data={"email": email, "password": PASSWORD, "csrf_token": csrf})
    assert answer.status_code == 302, answer.text
    return client


def test_pages_of_plugins_outside_the_plan_answer_404(hosted):
    plan = slug("analytics-only")
    assert hosted("plans", "create", plan, "--plugins", "analytical").exit_code == 0
    narrow, full = slug("narrow"), slug("full")
    for s, args in ((narrow, ("--plan", plan)), (full, ())):
        hosted.tenant(s, "--admin-email", f"admin@{s}.example", *args)
    app = hosted.app
    app.config["BASE_DOMAIN"] = "crm.example.test"
    saved = app.config["LOGIN_RATE_LIMIT"]
    app.config["LOGIN_RATE_LIMIT"] = "1000 per minute"
    try:
        with app.app_context():
            for s in (narrow, full):
                tenant_id = db.session.execute(
                    sa.select(Tenant.id).where(Tenant.slug == s)).scalar_one()
                with tenancy.tenant_context(tenant_id):
                    services.find_user(f"admin@{s}.example").password_hash = \
                        security.hash_password(PASSWORD)
                    db.session.commit()
        clients = {s: (_login(app, f"http://{s}.crm.example.test", f"admin@{s}.example"),
                       f"http://{s}.crm.example.test") for s in (narrow, full)}
        client, base = clients[narrow]
        dashboard = client.get("/app/", base_url=base).text
        assert "/app/analytics/" in dashboard
        for absent in ("/app/deals", "/app/partners", "/app/inbox", "/app/settings/custom-fields"):
            assert absent not in dashboard, absent
        for path in ("/app/deals", "/app/cases", "/app/partners/", "/app/inbox"):
            assert client.get(path, base_url=base).status_code == 404, path
        assert client.get("/app/analytics/segments", base_url=base).status_code == 200
        # the tenant with every plugin has those pages
        client, base = clients[full]
        assert "/app/deals" in client.get("/app/", base_url=base).text
        for path in ("/app/deals", "/app/cases", "/app/partners/", "/app/inbox"):
            assert client.get(path, base_url=base).status_code == 200, path
        # a session is bound to its tenant: the narrow tenant's cookie means nothing on the
        # other subdomain
        client, _ = clients[narrow]
        answer = client.get("/app/", base_url=f"http://{full}.crm.example.test")
        assert answer.status_code == 302 and "/app/login" in answer.headers["Location"]
    finally:
        app.config.pop("BASE_DOMAIN")
        app.config["LOGIN_RATE_LIMIT"] = saved
