"""Isolation and permissions through HTTP: every route that takes an id, every role."""

from __future__ import annotations

import hashlib
import re

import pytest
import sqlalchemy as sa

from clientela.core import tenancy
from clientela.core.db import db

# --- tenant isolation: the list of routes is read from the app -----------------------

ID_PARAM = re.compile(r"<(?:uuid:)?(\w+)>")


def _record_modules():
    """``tests/security_records/*.py``: one module per plugin (and the core), run in ORDER.

    Each has ``ORDER`` (an int), ``make(api, records) -> dict`` (the ids of one record of
    each kind its routes name, made in ``api``'s tenant; ``records`` holds what earlier
    modules made, e.g. ``customer_id``) and ``BODIES`` (``{(method, rule): body}`` valid
    enough to get past input validation, so that the answer is about the id).
    """
    import importlib.util
    import pathlib

    modules = []
    for path in sorted((pathlib.Path(__file__).parent / "security_records").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"security_records_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        modules.append(module)
    return sorted(modules, key=lambda m: m.ORDER)


RECORD_MODULES = _record_modules()
BODIES = {key: body for m in RECORD_MODULES for key, body in m.BODIES.items()}


def make_records(api) -> dict[str, str]:
    """One record of each kind a route can name, in ``api``'s tenant."""
    records: dict[str, str] = {}
    for module in RECORD_MODULES:
        records.update(module.make(api, records))
    return records


def tenant_snapshot(tenant_id) -> dict[str, str]:
    """A checksum of every row the tenant owns, table by table."""
    result = {}
    existing = set(sa.inspect(db.engine).get_table_names())
    with tenancy.unscoped():
        for table in db.metadata.sorted_tables:
            if "tenant_id" not in table.c or table.name == "audit_events" or (
                table.name not in existing
            ):
                continue
            rows = db.session.execute(
                sa.select(table).where(table.c.tenant_id == tenant_id).order_by(*table.primary_key)
            ).all()
            result[table.name] = hashlib.sha256(repr(rows).encode()).hexdigest()
    db.session.rollback()
    return result


def id_routes(app):
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/") and ID_PARAM.search(rule.rule):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield method, rule.rule


def test_every_route_with_an_id_answers_404_across_tenants_and_changes_nothing(api, other_api):
    records = make_records(api)
    intruder_customer = other_api.customer(first_name="Intruder")
    before = tenant_snapshot(api.tenant.id)
    checked = 0
    for method, rule in id_routes(api.app):
        params = ID_PARAM.findall(rule)
        for name in params:
            assert name in records, f"add a record factory for <{name}> (route {rule})"
        path = ID_PARAM.sub(lambda m: records[m.group(1)], rule)
        body = BODIES.get((method, rule), {})
        if body == "merge":
            body = {"other_id": intruder_customer["id"]}
        response = other_api.client.open(path, method=method, headers=other_api.headers("admin"),
                                         json=body if method in ("POST", "PATCH", "PUT") else None)
        assert response.status_code == 404, (method, rule, response.status_code, response.json)
        assert "secret" not in response.get_data(as_text=True).lower()
        checked += 1
    assert checked >= 15
    assert tenant_snapshot(api.tenant.id) == before


def test_lists_never_show_another_tenants_rows(api, other_api):
    make_records(api)
    for path in ("/api/v1/customers", "/api/v1/interactions", "/api/v1/users", "/api/v1/roles",
                 "/api/v1/tokens", "/api/v1/audit", "/api/v1/customers/duplicates",
                 "/api/v1/customers?q=secret"):
        response = other_api.get(path)
        assert response.status_code == 200, path
        assert "secret" not in response.get_data(as_text=True).lower(), path
        assert api.tenant.slug not in response.get_data(as_text=True), path


def test_a_token_cannot_be_pointed_at_another_tenant(api, other_api):
    customer = api.customer(first_name="Target")
    # no header or parameter chooses the tenant: the token alone decides
    response = other_api.client.get(
        f"/api/v1/customers/{customer['id']}",
        headers={**other_api.headers(), "X-Tenant": api.tenant.slug, "X-Tenant-Id": str(api.tenant.id)},
        query_string={"tenant": api.tenant.slug, "tenant_id": str(api.tenant.id)},
    )
    assert response.status_code == 404


# --- the permission matrix: every role x every core route ----------------------------

ALL = {"admin", "manager", "sales", "marketing", "service", "analyst"}
WRITERS = {"admin", "manager", "sales", "marketing", "service"}

#: (method, path, body, roles allowed); everyone else gets 403 (the record is visible)
MATRIX = [
    ("GET", "/api/v1/customers", None, ALL),
    ("POST", "/api/v1/customers", {"first_name": "New"}, WRITERS),
    ("GET", "/api/v1/customers/{admin_customer}", None, ALL),
    ("GET", "/api/v1/customers/duplicates", None, ALL),
    ("GET", "/api/v1/customers/{admin_customer}/profile", None, ALL),
    ("PATCH", "/api/v1/customers/{admin_customer}", {"stage": "prospect"}, {"admin", "manager"}),
    ("PATCH", "/api/v1/customers/{own_customer}", {"stage": "prospect"}, WRITERS),
    ("POST", "/api/v1/customers/{admin_customer}/merge", {"other_id": "{spare_customer}",
                                                          "dry_run": True}, {"admin", "manager"}),
    ("GET", "/api/v1/customers/{admin_customer}/export", None, {"admin"}),
    ("POST", "/api/v1/customers/{spare_customer}/erase", None, {"admin"}),
    ("DELETE", "/api/v1/customers/{spare_customer}", None, {"admin"}),
    ("GET", "/api/v1/customers/{admin_customer}/interactions", None, ALL),
    ("POST", "/api/v1/customers/{admin_customer}/interactions", {"channel": "phone"}, WRITERS),
    ("GET", "/api/v1/interactions", None, ALL),
    ("GET", "/api/v1/users", None, {"admin", "manager"}),
    ("POST", "/api/v1/users", {"email": "new-{role}@example.com", "roles": ["sales"]}, {"admin"}),
    ("PATCH", "/api/v1/users/{sales_user}", {"name": "Renamed"}, {"admin"}),
    ("GET", "/api/v1/roles", None, {"admin", "manager"}),
    ("POST", "/api/v1/roles", {"name": "r-{role}", "permissions": {"customers:read": "own"}},
     {"admin"}),
    ("GET", "/api/v1/audit", None, {"admin", "manager"}),
    ("GET", "/api/v1/jobs", None, {"admin"}),
    ("POST", "/api/v1/jobs/purge", {"status": "dead"}, {"admin"}),
    ("GET", "/api/v1/me", None, ALL),
    ("POST", "/api/v1/tokens", {"name": "mine"}, ALL),
    # the operational plugin
    ("GET", "/api/v1/leads", None, ALL - {"service"}),
    ("POST", "/api/v1/leads", {"first_name": "New"}, {"admin", "manager", "sales", "marketing"}),
    ("GET", "/api/v1/lead-scoring-rules", None, ALL - {"service"}),
    ("POST", "/api/v1/lead-scoring-rules", {"name": "r", "field": "source", "points": 1},
     {"admin", "manager", "marketing"}),
    ("GET", "/api/v1/web-forms", None, {"admin", "manager", "marketing", "analyst"}),
    ("POST", "/api/v1/web-forms", {"name": "f"}, {"admin", "manager", "marketing"}),
    ("GET", "/api/v1/pipelines", None, {"admin", "manager", "sales", "analyst"}),
    ("POST", "/api/v1/pipelines", {"name": "p-{role}"}, {"admin", "manager"}),
    ("GET", "/api/v1/deals", None, {"admin", "manager", "sales", "analyst"}),
    ("POST", "/api/v1/deals", {"title": "d", "customer_id": "{own_customer}"},
     {"admin", "manager", "sales"}),
    ("GET", "/api/v1/forecast", None, {"admin", "manager", "sales", "analyst"}),
    ("GET", "/api/v1/sales-targets", None, {"admin", "manager", "sales", "analyst"}),
    ("POST", "/api/v1/sales-targets", {"owner_id": "{sales_user}", "period": "month",
                                       "period_start": "2030-01-01", "amount": "100"},
     {"admin", "manager"}),
    # the operational plugin's tasks, cases, routing and SLA
    ("GET", "/api/v1/tasks", None, ALL),
    ("POST", "/api/v1/tasks", {"title": "t"}, WRITERS),
    ("GET", "/api/v1/my-work", None, ALL),
    ("GET", "/api/v1/cases", None, {"admin", "manager", "service", "analyst"}),
    ("POST", "/api/v1/cases", {"subject": "c", "customer_id": "{admin_customer}"},
     {"admin", "manager", "service"}),
    ("GET", "/api/v1/sla-policies", None, {"admin", "manager", "service", "analyst"}),
    ("POST", "/api/v1/sla-policies", {"name": "s-{role}"}, {"admin", "manager"}),
    ("GET", "/api/v1/routing-rules", None, {"admin", "manager"}),
    ("POST", "/api/v1/routing-rules", {"name": "r", "entity_type": "task",
                                       "user_ids": ["{sales_user}"]}, {"admin", "manager"}),
]


def fill(value, ids):
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    return value


@pytest.mark.parametrize("role", sorted(ALL))
def test_permission_matrix(api, role):
    for method, path, body, allowed in MATRIX:
        ids = {
            "role": role,
            "admin_customer": api.customer(first_name="Owned by admin")["id"],
            "spare_customer": api.customer(first_name="Spare")["id"],
            "own_customer": api.customer(first_name="Own", role=role)["id"]
            if role in WRITERS else api.customer(first_name="x")["id"],
            "sales_user": str(api.users["sales"].id),
        }
        response = api.client.open(fill(path, ids), method=method, headers=api.headers(role),
                                   json=fill(body, ids) if body is not None else None)
        if role in allowed:
            assert response.status_code in (200, 201, 204), (role, method, path, response.json)
        else:
            assert response.status_code == 403, (role, method, path, response.status_code)
            assert response.json["code"] == "forbidden"


def test_denials_are_audited(api):
    api.get("/api/v1/audit", role="analyst")
    events = api.get("/api/v1/audit?action=permission_denied").json
    assert events and events[0]["actor_id"] == str(api.users["analyst"].id)
    assert events[0]["changes"]["route"][1] == "GET /api/v1/audit"


def test_own_scope_makes_other_records_invisible(api):
    role = api.post("/api/v1/roles", json={"name": "field-agent", "permissions": {
        "customers:read": "own", "customers:write": "own", "interactions:read": "own"}})
    assert role.status_code == 201, role.json
    agent = api.post("/api/v1/users", json={"email": "agent@example.com", "roles": ["field-agent"]})
    assert agent.status_code == 201
    from clientela.core import services

    user = services.find_user("agent@example.com")
    _, token = services.create_token(user)
    db.session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    others = api.customer(first_name="Not yours")
    mine = api.client.post("/api/v1/customers", json={"first_name": "Yours"}, headers=headers)
    assert mine.status_code == 201
    listed = api.client.get("/api/v1/customers", headers=headers).json
    assert [c["display_name"] for c in listed] == ["Yours"]
    assert api.client.get(f"/api/v1/customers/{others['id']}", headers=headers).status_code == 404
    response = api.client.patch(f"/api/v1/customers/{others['id']}", json={"stage": "former"},
                                headers=headers)
    assert response.status_code == 404
    response = api.client.post("/api/v1/customers", json={
        "first_name": "Gift", "owner_id": str(api.users["admin"].id)}, headers=headers)
    assert response.status_code == 403


def test_revoked_and_expired_tokens_are_refused(api):
    created = api.post("/api/v1/tokens", json={"name": "short"}).json
    headers = {"Authorization": f"Bearer {created['token']}"}
    assert api.client.get("/api/v1/me", headers=headers).status_code == 200
    assert api.delete(f"/api/v1/tokens/{created['id']}").status_code == 204
    assert api.client.get("/api/v1/me", headers=headers).status_code == 401
    past = api.post("/api/v1/tokens", json={"expires_at": "2000-01-01T00:00:00Z"})
    assert past.status_code == 422
    listed = api.get("/api/v1/tokens").json
    assert all("token" not in t and t["prefix"].startswith("cla_") for t in listed)


def test_no_request_input_produces_a_500(api):
    customer = api.customer(first_name="Robust")
    weird = ["", "null", "[]", "{}", '{"first_name": null}', '{"first_name": 5}',
             '{"tags": "notalist"}', '{"emails": [{"value": ""}]}', '{"attributes": []}',
             '{"owner_id": "not-a-uuid"}', "\x00\x01", '{"first_name": "' + "x" * 5000 + '"}',
             '{"addresses": [{"country": "Italy"}]}', '{"phone": "+999999999999999999"}']
    paths = ["/api/v1/customers", f"/api/v1/customers/{customer['id']}",
             f"/api/v1/customers/{customer['id']}/merge",
             f"/api/v1/customers/{customer['id']}/interactions", "/api/v1/users",
             "/api/v1/roles", "/api/v1/tokens", "/api/v1/auth/login"]
    for path in paths:
        for payload in weird:
            for method in ("POST", "PATCH"):
                response = api.client.open(path, method=method, data=payload,
                                           headers={**api.headers(),
                                                    "Content-Type": "application/json"})
                assert response.status_code < 500, (method, path, payload, response.json)
    for query in ("page=-1", "page=abc", "q=%00", "q=" + "%27" * 50, "tag=%22%5B",
                  "sort=,,,", "updated_since=2026-13-45"):
        response = api.get(f"/api/v1/customers?{query}")
        assert response.status_code < 500, (query, response.json)
    assert api.get("/api/v1/customers/not-a-uuid").status_code == 404
