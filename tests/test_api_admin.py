"""Users, roles, tokens, audit and password sessions, through HTTP on both backends."""

from __future__ import annotations

import pytest

from clientela.core import migrations, services, tenancy
from clientela.core.app import create_app
from clientela.core.db import db


def test_users_create_change_and_deactivate(api):
    created = api.post("/api/v1/users", json={"email": "Nina@Example.com", "name": "Nina",
                                              "roles": ["sales"], "password": "long-password-1"})
    assert created.status_code == 201, created.json
    assert created.json["email"] == "nina@example.com" and "password" not in created.json
    uid = created.json["id"]
    assert api.post("/api/v1/users", json={"email": "nina@example.com",
                                           "roles": ["sales"]}).status_code == 409
    bad = api.post("/api/v1/users", json={"email": "x@example.com", "roles": ["wizard"]})
    assert bad.status_code == 422 and "roles" in bad.json["errors"]["json"]
    changed = api.patch(f"/api/v1/users/{uid}", json={"roles": ["sales", "marketing"]})
    assert changed.json["roles"] == ["sales", "marketing"]
    # a deactivated user's tokens stop working
    user = services.find_user("nina@example.com")
    _, token = services.create_token(user)
    db.session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    assert api.client.get("/api/v1/me", headers=headers).status_code == 200
    api.patch(f"/api/v1/users/{uid}", json={"is_active": False})
    assert api.client.get("/api/v1/me", headers=headers).status_code == 401


def test_admin_cannot_lock_themselves_out(api):
    me = api.users["admin"].id
    assert api.patch(f"/api/v1/users/{me}", json={"roles": ["sales"]}).status_code == 409
    assert api.patch(f"/api/v1/users/{me}", json={"is_active": False}).status_code == 409


def test_custom_roles(api):
    roles = {r["name"]: r for r in api.get("/api/v1/roles").json}
    assert roles["admin"]["builtin"] and roles["sales"]["permissions"]["customers:write"] == "own"
    bad = api.post("/api/v1/roles", json={"name": "x", "permissions": {"nope:read": "all"}})
    assert bad.status_code == 422
    bad = api.post("/api/v1/roles", json={"name": "y", "permissions": {"customers:read": "some"}})
    assert bad.status_code == 422
    assert api.post("/api/v1/roles", json={"name": "admin", "permissions": {}}).status_code == 409
    role = api.post("/api/v1/roles", json={"name": "reader", "permissions": {
        "customers:read": "all"}}).json
    api.post("/api/v1/users", json={"email": "r@example.com", "roles": ["reader"]})
    assert api.delete(f"/api/v1/roles/{role['id']}").status_code == 409
    changed = api.patch(f"/api/v1/roles/{role['id']}", json={"permissions": {
        "customers:read": "all", "interactions:read": "all"}})
    assert changed.json["permissions"]["interactions:read"] == "all"


def test_me_shows_permissions_and_tenant(api):
    me = api.get("/api/v1/me", role="sales").json
    assert me["roles"] == ["sales"]
    assert me["permissions"]["customers:write"] == "own"
    assert "users:write" not in me["permissions"]
    assert me["tenant"]["slug"] == api.tenant.slug


def test_every_write_through_the_api_is_audited_with_who_and_what(api):
    customer = api.customer(first_name="Audited", role="sales")
    api.patch(f"/api/v1/customers/{customer['id']}", json={"stage": "prospect"}, role="sales")
    events = api.get(f"/api/v1/audit?entity_id={customer['id']}").json
    assert [e["action"] for e in events] == ["update", "insert"]
    assert all(e["actor_id"] == str(api.users["sales"].id) for e in events)
    assert all(e["origin"] == "api" for e in events)
    assert events[0]["changes"] == {"stage": ["lead", "prospect"]}
    filtered = api.get("/api/v1/audit?entity_type=customers&action=update").json
    assert [e["entity_id"] for e in filtered] == [customer["id"]]


# --- password sessions -------------------------------------------------------------


@pytest.fixture
def single_tenant_app(backend, fresh_database_url, tmp_path):
    """A fresh on-premise instance with one tenant and an admin with a password."""
    app = create_app("onprem", DATABASE_URL=fresh_database_url(backend), HOME=str(tmp_path),
                     SECRET_KEY="test", LOGIN_RATE_LIMIT="3 per minute")
    with app.app_context():
        migrations.upgrade(app)
        tenant = services.create_tenant("solo")
        with tenancy.tenant_context(tenant.id):
            services.create_user("boss@example.com", roles=["admin"], password="correct-horse-1")
            db.session.commit()
    yield app
    with app.app_context():
        db.engine.dispose()


def test_password_login_opens_a_session_that_needs_csrf_for_writes(single_tenant_app):
    client = single_tenant_app.test_client()
    response = client.post("/api/v1/auth/login", json={"email": "boss@example.com",
                                                       "password": "correct-horse-1"})
    assert response.status_code == 200, response.json
    csrf = response.json["csrf_token"]
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/api/v1/me").json["email"] == "boss@example.com"
    refused = client.post("/api/v1/customers", json={"first_name": "NoCsrf"})
    assert refused.status_code == 403
    created = client.post("/api/v1/customers", json={"first_name": "Csrf"},
                          headers={"X-CSRF-Token": csrf})
    assert created.status_code == 201
    assert client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert client.get("/api/v1/me").status_code == 401


def test_failed_logins_are_audited_and_rate_limited(single_tenant_app):
    client = single_tenant_app.test_client()
    for _ in range(3):
        response = client.post("/api/v1/auth/login", json={"email": "boss@example.com",
                                                           "password": "wrong"})
        assert response.status_code == 401
        assert response.json["message"] == "invalid e-mail or password"
    limited = client.post("/api/v1/auth/login", json={"email": "boss@example.com",
                                                      "password": "correct-horse-1"})
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0
    with single_tenant_app.app_context():
        tenant = services.get_tenant("solo")
        with tenancy.tenant_context(tenant.id):
            from clientela.core.models import AuditEvent

            failures = db.session.execute(
                db.select(AuditEvent).where(AuditEvent.action == "login_failed")
            ).scalars().all()
            assert len(failures) == 3
            assert failures[0].changes["email"] == [None, "boss@example.com"]


def test_unknown_user_login_is_the_same_401(single_tenant_app):
    client = single_tenant_app.test_client()
    response = client.post("/api/v1/auth/login", json={"email": "ghost@example.com",
                                                       "password": "whatever-1"})
    assert response.status_code == 401
    assert response.json["message"] == "invalid e-mail or password"
