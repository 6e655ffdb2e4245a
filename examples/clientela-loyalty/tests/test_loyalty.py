"""The loyalty plugin, tested the way any integrator tests a plugin: clientela.testing."""

import datetime as dt

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from clientela.core import jobs, migrations, tenancy
from clientela.core.db import db
from clientela.testing import assert_tenant_isolated


def new_customer(client, admin, **data):
    data.setdefault("first_name", "Lia")
    response = client.post("/api/v1/customers", json=data, headers=admin.headers)
    assert response.status_code == 201, response.json
    return response.json["id"]


def account(client, admin, customer_id):
    response = client.get(f"/api/v1/loyalty/customers/{customer_id}", headers=admin.headers)
    assert response.status_code == 200, response.json
    return response.json


def test_plugin_is_enabled_with_its_hooks(clientela_app):
    registry = clientela_app.extensions["clientela"].plugins
    assert registry.plugins["loyalty"].enabled
    hooks = set(registry.hooks_of("loyalty"))
    assert {"clientela_models", "clientela_jobs", "clientela_customer_profile",
            "clientela_customer_export", "clientela_customer_erase"} <= hooks


def test_migration_matches_the_model(clientela_app):
    with clientela_app.app_context():
        with db.engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"include_object": migrations.include_object})
            diff = [d for d in compare_metadata(context, db.metadata)
                    if "loyalty" in repr(d)]
    assert diff == []


def test_purchases_and_interactions_earn_points_and_tiers(clientela_client, clientela_admin):
    cid = new_customer(clientela_client, clientela_admin)
    response = clientela_client.post(f"/api/v1/loyalty/customers/{cid}/purchases",
                                     json={"amount": "612.90", "currency": "eur"},
                                     headers=clientela_admin.headers)
    assert response.status_code == 201, response.json
    assert response.json["points"] == 612
    clientela_client.post(f"/api/v1/customers/{cid}/interactions", json={"channel": "phone"},
                          headers=clientela_admin.headers)
    state = account(clientela_client, clientela_admin, cid)
    assert state["balance"] == 613 and state["tier"] == "silver"
    assert [e["kind"] for e in state["entries"]] == ["purchase", "interaction"]


def test_redemptions_cannot_exceed_the_balance(clientela_client, clientela_admin):
    cid = new_customer(clientela_client, clientela_admin)
    clientela_client.post(f"/api/v1/loyalty/customers/{cid}/purchases",
                          json={"amount": "100", "currency": "EUR"}, headers=clientela_admin.headers)
    ok = clientela_client.post(f"/api/v1/loyalty/customers/{cid}/redemptions",
                               json={"points": 60}, headers=clientela_admin.headers)
    assert ok.status_code == 201 and ok.json["points"] == -60
    short = clientela_client.post(f"/api/v1/loyalty/customers/{cid}/redemptions",
                                  json={"points": 41}, headers=clientela_admin.headers)
    assert short.status_code == 409
    bad = clientela_client.post(f"/api/v1/loyalty/customers/{cid}/purchases",
                                json={"amount": "-5", "currency": "EURO"},
                                headers=clientela_admin.headers)
    assert bad.status_code == 422 and set(bad.json["errors"]["json"]) == {"amount", "currency"}


def test_unspent_points_expire_oldest_first(clientela_client, clientela_admin, clientela_tenant):
    from clientela_loyalty import services

    cid = new_customer(clientela_client, clientela_admin)
    long_ago = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=400)).isoformat()
    clientela_client.post(f"/api/v1/loyalty/customers/{cid}/purchases",
                          json={"amount": "100", "currency": "EUR", "occurred_at": long_ago},
                          headers=clientela_admin.headers)
    clientela_client.post(f"/api/v1/loyalty/customers/{cid}/purchases",
                          json={"amount": "50", "currency": "EUR"}, headers=clientela_admin.headers)
    clientela_client.post(f"/api/v1/loyalty/customers/{cid}/redemptions", json={"points": 30},
                          headers=clientela_admin.headers)
    with tenancy.tenant_context(clientela_tenant.id):
        assert services.expire_points() == 70  # the old 100, less the 30 spent from it
        assert services.expire_points() == 0  # settled: never twice
        db.session.commit()
    assert account(clientela_client, clientela_admin, cid)["balance"] == 50


def test_expiry_is_a_scheduled_job(clientela_app):
    with clientela_app.app_context():
        definition = jobs.queue_for(clientela_app).definitions["loyalty.expire_points"]
        assert definition.schedule is not None


def test_profile_export_erase_and_merge(clientela_client, clientela_admin):
    cid = new_customer(clientela_client, clientela_admin, email="lia@example.com")
    other = new_customer(clientela_client, clientela_admin, first_name="Lia Dup")
    for customer in (cid, other):
        clientela_client.post(f"/api/v1/loyalty/customers/{customer}/purchases",
                              json={"amount": "10", "currency": "EUR",
                                    "description": "Lia's shoes"},
                              headers=clientela_admin.headers)
    merged = clientela_client.post(f"/api/v1/customers/{cid}/merge", json={"other_id": other},
                                   headers=clientela_admin.headers)
    assert merged.status_code == 200, merged.json
    assert account(clientela_client, clientela_admin, cid)["balance"] == 20
    profile = clientela_client.get(f"/api/v1/customers/{cid}/profile",
                                   headers=clientela_admin.headers).json
    panel = next(s for s in profile["sections"] if s["key"] == "loyalty")
    assert panel["data"] == {"balance": 20, "tier": "bronze", "lifetime_points": 20}
    exported = clientela_client.get(f"/api/v1/customers/{cid}/export",
                                    headers=clientela_admin.headers).json
    assert len(exported["plugins"]["loyalty"]["entries"]) == 2
    erased = clientela_client.post(f"/api/v1/customers/{cid}/erase",
                                   headers=clientela_admin.headers).json
    assert erased["plugins"]["loyalty"] == {"entries_anonymised": 2}
    entries = account(clientela_client, clientela_admin, cid)["entries"]
    assert all(e["description"] == "" for e in entries)


def test_loyalty_routes_are_tenant_isolated(clientela_app):
    def make_record(admin):
        client = clientela_app.test_client()
        return new_customer(client, admin)

    for path in ("/api/v1/loyalty/customers/{id}", "/api/v1/loyalty/customers/{id}/purchases",
                 "/api/v1/loyalty/customers/{id}/redemptions"):
        body = {"amount": "1", "currency": "EUR"} if "purchases" in path else {"points": 1}
        assert_tenant_isolated(clientela_app, path, make_record, methods=("GET", "POST"),
                               body=body)
