"""The PRM plugin through HTTP, on both backends: partners and their lifecycle, tiers,
partner users, deal registration and its conflict check, commissions on a known set of
deals, lead distribution with the real job runner, contracts and their alerts over a real
SMTP server, forecasts and scorecards on a known data set, and the partner portal matrix."""

from __future__ import annotations

import datetime as dt
import decimal

import pytest
import sqlalchemy as sa

from clientela.core import jobs, tenancy
from clientela.core.db import db, utcnow

PARTNERS = "/api/v1/partners"
TIERS = "/api/v1/partner-tiers"
REGISTRATIONS = "/api/v1/deal-registrations"
PLANS = "/api/v1/commission-plans"
COMMISSIONS = "/api/v1/commissions"
RULES = "/api/v1/lead-distribution-rules"
OFFERS = "/api/v1/lead-offers"
CONTRACTS = "/api/v1/partner-contracts"
PORTAL = "/partner/api/v1"


def ok(response, status=200):
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    return response.json if response.get_data() else None


def tier_id(api, name: str) -> str:
    return next(t["id"] for t in ok(api.get(TIERS)) if t["name"] == name)


def partner(api, role="admin", **data) -> dict:
    data.setdefault("name", "Partner")
    data.setdefault("type", "reseller")
    return ok(api.post(PARTNERS, json=data, role=role), 201)


def activate(api, p: dict) -> dict:
    """Onboard a prospect completely and make it active."""
    if ok(api.get(f"{PARTNERS}/{p['id']}"))["status"] == "prospect":
        ok(api.post(f"{PARTNERS}/{p['id']}/status", json={"status": "onboarding"}))
    for step in ok(api.get(f"{PARTNERS}/{p['id']}/onboarding-steps")):
        ok(api.patch(f"{PARTNERS}/{p['id']}/onboarding-steps/{step['id']}",
                     json={"completed": True}))
    return ok(api.post(f"{PARTNERS}/{p['id']}/status", json={"status": "active"}))


def active_partner(api, **data) -> dict:
    return activate(api, partner(api, **data))


class Portal:
    """A partner user of one partner, driving the portal with its own token."""

    def __init__(self, api, partner_id: str, email: str):
        self.api = api
        self.partner_id = partner_id
        body = ok(api.post(f"{PARTNERS}/{partner_id}/users",
                           json={"email": email, "name": "Portal user", "issue_token": True}),
                  201)
        self.user_id = body["id"]
        self.token = body["token"]
        self.client = api.app.test_client()

    def open(self, path, method="GET", json=None):
        return self.client.open(path if path.startswith("/") else f"{PORTAL}/{path}",
                                method=method, json=json,
                                headers={"Authorization": f"Bearer {self.token}"})

    def get(self, path):
        return self.open(path)

    def post(self, path, json=None):
        return self.open(path, "POST", json)


def won(api, deal_id: str) -> dict:
    return ok(api.post(f"/api/v1/deals/{deal_id}/close", json={"outcome": "won"}))


def attributed_deal(api, p: dict, amount: str, **data) -> dict:
    customer = api.customer(kind="organisation", organisation_name=data.pop("company", "Acme"))
    deal = ok(api.post("/api/v1/deals", json={"title": data.pop("title", "Deal"),
                                              "amount": amount, "customer_id": customer["id"],
                                              **data}), 201)
    ok(api.post(f"{PARTNERS}/{p['id']}/deals", json={"deal_id": deal["id"]}), 201)
    return deal


# --- partners, tiers, lifecycle ---------------------------------------------------------


def test_every_tenant_gets_gold_silver_bronze_and_tiers_are_configurable(api):
    tiers = ok(api.get(TIERS))
    assert [(t["name"], t["weight"]) for t in tiers] == [("gold", 3), ("silver", 2),
                                                         ("bronze", 1)]
    platinum = ok(api.post(TIERS, json={"name": "platinum", "weight": 5, "position": 0}), 201)
    ok(api.patch(f"{TIERS}/{tier_id(api, 'bronze')}", json={"weight": 0}))
    assert ok(api.get(f"{TIERS}/{tier_id(api, 'bronze')}"))["weight"] == 0
    assert api.post(TIERS, json={"name": "Gold"}).status_code == 409
    p = partner(api, tier_id=platinum["id"])
    assert p["tier"] == "platinum"
    assert api.delete(f"{TIERS}/{platinum['id']}").status_code == 409  # in use
    ok(api.delete(f"{TIERS}/{tier_id(api, 'silver')}"), 204)
    assert api.post(TIERS, json={"name": "x"}, role="sales").status_code == 403


def test_a_partner_has_type_tier_territories_specialisations_owner_and_capacity(api):
    p = partner(api, name="Meccanica Rossi", type="district_member",
                tier_id=tier_id(api, "gold"), territories=["it", "FR", "it"],
                specialisations=["CNC", "welding"], owner_id=str(api.users["manager"].id),
                capacity=5, email="Info@Rossi.example")
    assert (p["status"], p["tier"], p["territories"], p["specialisations"], p["capacity"],
            p["email"]) == ("prospect", "gold", ["FR", "IT"], ["cnc", "welding"], 5,
                            "info@rossi.example")
    assert [s["name"] for s in p["onboarding"]] == [
        "Agreement signed", "Training completed", "Portal access set up"]
    partner(api, name="Other", type="supplier", territories=["DE"])
    assert [x["name"] for x in ok(api.get(f"{PARTNERS}?territory=IT"))] == ["Meccanica Rossi"]
    assert [x["name"] for x in ok(api.get(f"{PARTNERS}?type=supplier"))] == ["Other"]
    assert [x["name"] for x in ok(api.get(f"{PARTNERS}?specialisation=cnc"))] == [
        "Meccanica Rossi"]
    changed = ok(api.patch(f"{PARTNERS}/{p['id']}", json={"capacity": 7, "name": "Rossi Spa"}))
    assert (changed["capacity"], changed["name"]) == (7, "Rossi Spa")


def test_partner_input_is_checked_with_per_field_messages(api, other_api):
    response = api.post(PARTNERS, json={"name": "", "type": "friend", "capacity": -1})
    assert response.status_code == 422
    assert set(response.json["errors"]["json"]) == {"name", "type", "capacity"}
    foreign_tier = ok(other_api.get(TIERS))[0]["id"]
    response = api.post(PARTNERS, json={"name": "X", "type": "referral", "tier_id": foreign_tier,
                                        "owner_id": str(other_api.users["admin"].id)})
    assert response.status_code == 422
    assert set(response.json["errors"]["json"]) == {"tier_id"} or set(
        response.json["errors"]["json"]) == {"owner_id"}


def test_lifecycle_follows_the_allowed_transitions_and_keeps_its_history(api):
    p = partner(api)
    url = f"{PARTNERS}/{p['id']}/status"
    assert api.post(url, json={"status": "active"}).status_code == 409  # prospect -> active
    assert api.post(url, json={"status": "prospect"}).status_code == 409  # already
    ok(api.post(url, json={"status": "onboarding", "reason": "signed NDA"}))
    activate(api, p)
    ok(api.post(url, json={"status": "inactive", "reason": "seasonal"}))
    ok(api.post(url, json={"status": "active"}))
    ok(api.post(url, json={"status": "terminated"}))
    response = api.post(url, json={"status": "active"})
    assert response.status_code == 409 and "terminated" in response.json["message"]
    history = ok(api.get(f"{PARTNERS}/{p['id']}/history"))
    assert [(h["from_status"], h["to_status"]) for h in history] == [
        (None, "prospect"), ("prospect", "onboarding"), ("onboarding", "active"),
        ("active", "inactive"), ("inactive", "active"), ("active", "terminated")]
    assert history[1]["reason"] == "signed NDA"
    assert history[1]["user_id"] == str(api.users["admin"].id)


def test_a_partner_becomes_active_only_when_required_onboarding_steps_are_done(api):
    p = partner(api)
    url = f"{PARTNERS}/{p['id']}"
    ok(api.post(f"{url}/status", json={"status": "onboarding"}))
    extra = ok(api.post(f"{url}/onboarding-steps", json={"name": "Credit check"}), 201)
    optional = ok(api.post(f"{url}/onboarding-steps", json={"name": "Newsletter",
                                                              "required": False}), 201)
    assert api.post(f"{url}/onboarding-steps", json={"name": "credit check"}).status_code == 409
    steps = ok(api.get(f"{url}/onboarding-steps"))
    for step in steps[:3]:
        ok(api.patch(f"{url}/onboarding-steps/{step['id']}", json={"completed": True}))
    response = api.post(f"{url}/status", json={"status": "active"})
    assert response.status_code == 409 and "Credit check" in response.json["message"]
    done = ok(api.patch(f"{url}/onboarding-steps/{extra['id']}", json={"completed": True}))
    assert done["completed_at"] and done["completed_by"] == str(api.users["admin"].id)
    # the optional step may stay open
    assert ok(api.post(f"{url}/status", json={"status": "active"}))["status"] == "active"
    assert next(s for s in ok(api.get(f"{url}/onboarding-steps"))
                if s["id"] == optional["id"])["completed_at"] is None


def test_partner_users_are_role_partner_linked_to_one_partner_and_only_reach_the_portal(api):
    p = active_partner(api, name="Linked")
    user = Portal(api, p["id"], "anna@linked.example")
    users = ok(api.get(f"{PARTNERS}/{p['id']}/users"))
    assert [u["email"] for u in users] == ["anna@linked.example"]
    assert ok(api.get(f"/api/v1/users/{user.user_id}"))["roles"] == ["partner"]
    assert ok(user.get("me"))["name"] == "Linked"
    # nothing of the staff API: the partner role holds no staff permission
    for path in (PARTNERS, REGISTRATIONS, COMMISSIONS, "/api/v1/customers", "/api/v1/leads",
                 "/api/v1/deals"):
        response = user.client.get(path, headers={"Authorization": f"Bearer {user.token}"})
        assert response.status_code == 403, path
    # a staff token is not a portal credential
    response = api.client.get(f"{PORTAL}/me", headers=api.headers("admin"))
    assert response.status_code == 403
    assert api.client.get(f"{PORTAL}/me").status_code == 401
    # the same e-mail cannot be a second user
    assert api.post(f"{PARTNERS}/{p['id']}/users",
                    json={"email": "anna@linked.example"}).status_code == 409
    ok(api.delete(f"{PARTNERS}/{p['id']}/users/{user.user_id}"), 204)
    assert user.get("me").status_code == 401  # deactivated


def test_sales_reads_partners_but_cannot_change_them_and_analyst_sees_reports(api):
    p = partner(api)
    assert api.get(PARTNERS, role="sales").status_code == 200
    assert api.patch(f"{PARTNERS}/{p['id']}", json={"name": "x"}, role="sales").status_code == 403
    assert api.post(PARTNERS, json={"name": "x", "type": "referral"},
                    role="sales").status_code == 403
    assert api.get("/api/v1/prm/reports", role="analyst").status_code == 200
    assert api.get("/api/v1/prm/reports", role="sales").status_code == 403
    assert api.get(PARTNERS, role="service").status_code == 403


def test_a_channel_manager_sees_only_the_partners_it_owns(app, api):
    from clientela.core import services

    with tenancy.tenant_context(api.tenant.id):
        user = services.create_user(f"cm@{api.tenant.slug}.example", roles=["channel_manager"])
        _, raw = services.create_token(user)
        db.session.commit()
    headers = {"Authorization": f"Bearer {raw}"}
    mine = partner(api, name="Mine", owner_id=str(user.id))
    theirs = partner(api, name="Theirs")
    listed = api.client.get(PARTNERS, headers=headers).json
    assert [x["name"] for x in listed] == ["Mine"]
    assert api.client.get(f"{PARTNERS}/{theirs['id']}", headers=headers).status_code == 404
    assert api.client.get(f"{PARTNERS}/{mine['id']}", headers=headers).status_code == 200
