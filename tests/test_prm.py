"""The PRM plugin through HTTP, on both backends: partners and their lifecycle, tiers,
partner users, deal registration and its conflict check, commissions on a known set of
deals, lead distribution with the real job runner, contracts and their alerts over a real
SMTP server, forecasts and scorecards on a known data set, and the partner portal matrix."""

from __future__ import annotations

import datetime as dt
import uuid

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
    # it approves its own partners' registrations, into deals it owns
    for p in (mine, theirs):
        activate(api, p)
    reg = ok(api.post(REGISTRATIONS, json={"partner_id": mine["id"], "title": "CM deal",
                                           "company_name": "CM Customer", "amount": "5"}), 201)
    other = ok(api.post(REGISTRATIONS, json={"partner_id": theirs["id"], "title": "Not CM",
                                             "company_name": "Else", "amount": "5"}), 201)
    approved = api.client.post(f"{REGISTRATIONS}/{reg['id']}/approve", json={},
                               headers=headers)
    assert approved.status_code == 200, approved.json
    deal = api.client.get(f"/api/v1/deals/{approved.json['deal_id']}", headers=headers).json
    assert deal["owner_id"] == str(user.id)
    assert api.client.post(f"{REGISTRATIONS}/{other['id']}/approve", json={},
                           headers=headers).status_code == 404
    assert [r["title"] for r in api.client.get(REGISTRATIONS, headers=headers).json] == [
        "CM deal"]


# --- deal registration ----------------------------------------------------------------------


def test_a_registration_without_conflict_is_approved_into_an_attributed_protected_deal(api):
    p = active_partner(api, name="Reseller One", owner_id=str(api.users["manager"].id))
    portal = Portal(api, p["id"], "one@reseller.example")
    body = ok(portal.post("deal-registrations", json={
        "title": "Lathe line", "company_name": "Officine Verdi", "contact_email":
        "buyer@verdi.example", "amount": "42000", "expected_close_date": "2030-06-30"}), 201)
    assert (body["status"], body["in_conflict"], body["currency"]) == ("pending", False, "EUR")
    assert "conflicts" not in body  # a partner never learns who else claims a customer
    approved = ok(api.post(f"{REGISTRATIONS}/{body['id']}/approve", json={}, role="manager"))
    assert approved["status"] == "approved" and approved["decided_by"] == str(
        api.users["manager"].id)
    expected = (dt.date.today() + dt.timedelta(days=90)).isoformat()
    assert approved["protected_until"] in (expected, (utcnow().date() + dt.timedelta(
        days=90)).isoformat())
    deal = ok(api.get(f"/api/v1/deals/{approved['deal_id']}"))
    assert (deal["title"], deal["amount"], deal["status"], deal["owner_id"]) == (
        "Lathe line", "42000.00", "open", str(api.users["manager"].id))
    customer = ok(api.get(f"/api/v1/customers/{deal['customer_id']}"))
    assert (customer["kind"], customer["display_name"]) == ("organisation", "Officine Verdi")
    assert [d["id"] for d in ok(api.get(f"{PARTNERS}/{p['id']}/deals"))] == [deal["id"]]
    assert [d["id"] for d in ok(portal.get("deals"))] == [deal["id"]]
    assert ok(portal.get(f"deal-registrations/{body['id']}"))["deal_id"] == deal["id"]
    # approved twice: 409
    assert api.post(f"{REGISTRATIONS}/{body['id']}/approve", json={}).status_code == 409


def test_a_registration_for_a_customer_with_an_open_deal_is_flagged_and_needs_override(api):
    p = active_partner(api, name="Late Partner")
    customer = api.customer(kind="organisation", organisation_name="Ferri Srl",
                            email="info@ferri.example")
    ok(api.post("/api/v1/deals", json={"title": "Direct Ferri deal", "amount": "10",
                                       "customer_id": customer["id"]}), 201)
    portal = Portal(api, p["id"], "late@partner.example")
    body = ok(portal.post("deal-registrations", json={
        "title": "Ferri upgrade", "company_name": "ferri srl", "amount": "500"}), 201)
    assert body["in_conflict"] is True
    staff = ok(api.get(f"{REGISTRATIONS}/{body['id']}"))
    assert [(c["kind"], c["title"]) for c in staff["conflicts"]] == [("deal", "Direct Ferri deal")]
    response = api.post(f"{REGISTRATIONS}/{body['id']}/approve", json={})
    assert response.status_code == 409 and "Direct Ferri deal" in response.json["message"]
    assert ok(api.get(f"{REGISTRATIONS}/{body['id']}"))["status"] == "pending"
    approved = ok(api.post(f"{REGISTRATIONS}/{body['id']}/approve", json={"override": True}))
    # the existing customer is used, not duplicated
    assert ok(api.get(f"/api/v1/deals/{approved['deal_id']}"))["customer_id"] == customer["id"]


def test_a_second_registration_for_a_protected_customer_conflicts_and_can_be_rejected(api):
    first = active_partner(api, name="First")
    second = active_partner(api, name="Second")
    a = ok(api.post(REGISTRATIONS, json={"partner_id": first["id"], "title": "Bianchi robots",
                                         "company_name": "Bianchi", "amount": "100",
                                         "contact_email": "ceo@bianchi.example"}), 201)
    assert a["conflicts"] == [] and a["submitted_by"] == str(api.users["admin"].id)
    # pending registrations conflict too, by name or by e-mail
    b = ok(Portal(api, second["id"], "s@second.example").post("deal-registrations", json={
        "title": "Bianchi too", "company_name": "Other name", "contact_email":
        "CEO@bianchi.example", "amount": "1"}), 201)
    assert b["in_conflict"] is True
    ok(api.post(f"{REGISTRATIONS}/{a['id']}/approve", json={}))
    # after approval the customer is protected: the deal and the registration both conflict
    staff_b = ok(api.get(f"{REGISTRATIONS}/{b['id']}"))
    assert [c["kind"] for c in staff_b["conflicts"]] == ["registration"]
    assert api.post(f"{REGISTRATIONS}/{b['id']}/approve", json={}).status_code == 409
    kinds = {c["kind"] for c in ok(api.get(f"{REGISTRATIONS}/{b['id']}"))["conflicts"]}
    assert kinds == {"deal", "registration"}
    rejected = ok(api.post(f"{REGISTRATIONS}/{b['id']}/reject",
                           json={"reason": "Bianchi is First's customer"}))
    assert (rejected["status"], rejected["decision_reason"]) == (
        "rejected", "Bianchi is First's customer")
    assert api.post(f"{REGISTRATIONS}/{b['id']}/reject", json={"reason": "x"}).status_code == 409
    assert [r["title"] for r in ok(api.get(f"{REGISTRATIONS}?status=rejected"))] == [
        "Bianchi too"]


def test_registration_input_and_who_may_register_and_approve(api):
    p = partner(api, name="Still prospect")
    response = api.post(REGISTRATIONS, json={"partner_id": p["id"], "title": "x",
                                             "company_name": "X", "amount": "1"})
    assert response.status_code == 409 and "prospect" in response.json["message"]
    activate(api, p)
    response = api.post(REGISTRATIONS, json={"partner_id": p["id"], "title": "",
                                             "amount": "-1", "currency": "euro"})
    assert response.status_code == 422
    assert set(response.json["errors"]["json"]) == {"title", "amount", "currency"}
    response = api.post(REGISTRATIONS, json={"partner_id": p["id"], "title": "No customer",
                                             "amount": "1"})
    assert response.status_code == 422 and "company_name" in response.json["errors"]["json"]
    reg = ok(api.post(REGISTRATIONS, json={"partner_id": p["id"], "title": "ok",
                                           "company_name": "Y", "amount": "1"}), 201)
    assert api.post(f"{REGISTRATIONS}/{reg['id']}/approve", json={},
                    role="sales").status_code == 403
    assert api.post(f"{REGISTRATIONS}/{reg['id']}/reject", json={},
                    role="admin").status_code == 422


# --- commissions ------------------------------------------------------------------------------


def run_job(app, tenant_id, name: str, **kwargs):
    """Enqueue a job in the tenant and run it now, in this thread, as a consumer would."""
    with tenancy.tenant_context(tenant_id):
        job_id = jobs.enqueue(name, **kwargs)
        db.session.commit()
    assert jobs.queue_for(app).run(tenant_id, job_id) == "succeeded"
    db.session.rollback()


def commissions_of(api, p) -> list[tuple[str, str, str]]:
    rows = ok(api.get(f"{COMMISSIONS}?partner_id={p['id']}&page_size=100"))
    return sorted((r["base_amount"], r["amount"], r["status"]) for r in rows)


def test_commissions_on_a_known_set_of_deals_with_marginal_tiered_plans(app, api):
    standard = ok(api.post(PLANS, json={"name": "Standard", "brackets": [
        {"up_to": "100000", "rate": "8"}, {"up_to": None, "rate": "10"}]}), 201)
    assert standard["brackets"] == [{"up_to": "100000.00", "rate": "8"},
                                    {"up_to": None, "rate": "10"}]
    ok(api.post(PLANS, json={"name": "Gold", "tier_id": tier_id(api, "gold"), "brackets": [
        {"up_to": "50000", "rate": "10"}, {"rate": "12"}]}), 201)
    ok(api.post(PLANS, json={"name": "Robots", "product": "Robot arm",
                             "brackets": [{"rate": "15"}]}), 201)
    silver = active_partner(api, name="Silver", tier_id=tier_id(api, "silver"))
    gold = active_partner(api, name="Gold", tier_id=tier_id(api, "gold"))
    for amount in ("50000", "150000", "123456.78"):
        won(api, attributed_deal(api, silver, amount)["id"])
    lost = attributed_deal(api, silver, "999999")
    ok(api.post(f"/api/v1/deals/{lost['id']}/close", json={"outcome": "lost",
                                                            "reason": "price"}))
    won(api, attributed_deal(api, gold, "80000")["id"])
    robots = attributed_deal(api, gold, "0", items=[
        {"product": "Robot arm", "quantity": "2", "unit_price": "10000"}])
    won(api, robots["id"])
    # a won deal of nobody's earns nothing
    won(api, ok(api.post("/api/v1/deals", json={"title": "Direct", "amount": "5000"}), 201)["id"])

    # 8% of 50,000; 8% of 100,000 + 10% of 50,000; 8% of 100,000 + 10% of 23,456.78
    assert commissions_of(api, silver) == [("123456.78", "10345.68", "pending"),
                                           ("150000.00", "13000.00", "pending"),
                                           ("50000.00", "4000.00", "pending")]
    # gold tier plan: 10% of 50,000 + 12% of 30,000; the product plan: 15% of 20,000
    assert commissions_of(api, gold) == [("20000.00", "3000.00", "pending"),
                                         ("80000.00", "8600.00", "pending")]
    line = next(r for r in ok(api.get(f"{COMMISSIONS}?partner_id={silver['id']}"))
                if r["base_amount"] == "150000.00")
    assert line["breakdown"] == [
        {"from": "0.00", "to": "100000.00", "base": "100000.00", "rate": "8",
         "amount": "8000.00"},
        {"from": "100000.00", "to": None, "base": "50000.00", "rate": "10", "amount": "5000.00"}]
    assert line["plan_id"] == standard["id"]

    # the job computes again and changes nothing: idempotent
    run_job(app, api.tenant.id, "prm.sync_commissions")
    run_job(app, api.tenant.id, "prm.sync_commissions")
    assert len(ok(api.get(f"{COMMISSIONS}?page_size=100"))) == 5
    assert commissions_of(api, gold)[1] == ("80000.00", "8600.00", "pending")

    # the statement of the month, approve, pay
    month = utcnow().date().replace(day=1).isoformat()
    statement = ok(api.get(f"{COMMISSIONS}/statement?partner_id={silver['id']}&start={month}"))
    assert statement["totals"] == {"pending": "27345.68", "approved": "0.00", "paid": "0.00"}
    assert statement["total"] == "27345.68" and len(statement["lines"]) == 3
    first = statement["lines"][0]["id"]
    assert api.post(f"{COMMISSIONS}/{first}/pay", json={}).status_code == 409
    ok(api.post(f"{COMMISSIONS}/{first}/approve"))
    paid = ok(api.post(f"{COMMISSIONS}/{first}/pay", json={"reference": "SEPA-1"}))
    assert (paid["status"], paid["payment_reference"]) == ("paid", "SEPA-1")
    second = statement["lines"][1]["id"]
    ok(api.post(f"{COMMISSIONS}/{second}/approve"))
    statement = ok(api.get(f"{COMMISSIONS}/statement?partner_id={silver['id']}&start={month}"))
    by_id = {x["id"]: x["amount"] for x in statement["lines"]}
    assert statement["totals"]["paid"] == by_id[first]
    assert statement["totals"]["approved"] == by_id[second]
    assert statement["total"] == "27345.68"
    assert api.post(f"{COMMISSIONS}/{first}/approve", role="analyst").status_code == 403


def test_a_deal_that_is_reopened_cancels_its_pending_commission_and_earns_again_when_won(api):
    ok(api.post(PLANS, json={"name": "Flat", "brackets": [{"rate": "10"}]}), 201)
    p = active_partner(api, name="Reopen")
    deal = attributed_deal(api, p, "1000")
    won(api, deal["id"])
    assert commissions_of(api, p) == [("1000.00", "100.00", "pending")]
    pipeline = ok(api.get(f"/api/v1/pipelines/{deal['pipeline_id']}"))
    first_open = next(s["id"] for s in pipeline["stages"] if s["kind"] == "open")
    ok(api.patch(f"/api/v1/deals/{deal['id']}", json={"stage_id": first_open}))
    assert commissions_of(api, p) == [("1000.00", "100.00", "cancelled")]
    ok(api.patch(f"/api/v1/deals/{deal['id']}", json={"amount": "2000"}))
    won(api, deal["id"])
    assert commissions_of(api, p) == [("2000.00", "200.00", "pending")]
    commission = ok(api.get(f"{COMMISSIONS}?partner_id={p['id']}"))[0]
    ok(api.post(f"{COMMISSIONS}/{commission['id']}/approve"))
    # an approved commission is never computed again
    ok(api.patch(f"/api/v1/deals/{deal['id']}", json={"amount": "5000"}))
    assert commissions_of(api, p) == [("2000.00", "200.00", "approved")]


def test_an_already_won_deal_earns_when_attributed_and_plans_are_checked(api):
    response = api.post(PLANS, json={"name": "Bad", "brackets": [
        {"up_to": "100", "rate": "5"}, {"up_to": "50", "rate": "6"}]})
    assert response.status_code == 422 and "brackets" in response.json["errors"]["json"]
    response = api.post(PLANS, json={"name": "Bad", "brackets": [
        {"up_to": None, "rate": "5"}, {"up_to": "50", "rate": "6"}]})
    assert response.status_code == 422
    assert api.post(PLANS, json={"name": "Bad", "brackets": [{"rate": "101"}]}
                    ).status_code == 422
    assert api.post(PLANS, json={"name": "Bad", "brackets": []}).status_code == 422
    capped = ok(api.post(PLANS, json={"name": "Capped", "brackets": [
        {"up_to": "1000", "rate": "5"}]}), 201)
    p = active_partner(api)
    deal = ok(api.post("/api/v1/deals", json={"title": "Won first", "amount": "3000"}), 201)
    won(api, deal["id"])
    ok(api.post(f"{PARTNERS}/{p['id']}/deals", json={"deal_id": deal["id"]}), 201)
    # beyond a last closed bracket nothing is earned: 5% of 1,000
    assert commissions_of(api, p) == [("3000.00", "50.00", "pending")]
    other = active_partner(api, name="Other")
    assert api.post(f"{PARTNERS}/{other['id']}/deals",
                    json={"deal_id": deal["id"]}).status_code == 409
    assert api.delete(f"{PLANS}/{capped['id']}").status_code == 409


# --- the partner portal ---------------------------------------------------------------------

PORTAL_ID = __import__("re").compile(r"<(?:\w+:)?(\w+)>")


def partner_world(api, name: str, country: str) -> dict:
    """An active partner with one record of every kind the portal shows: an offered lead,
    an approved registration (its deal won, so a commission), a contract."""
    if not ok(api.get(RULES)):
        ok(api.post(RULES, json={"name": "everyone"}), 201)
        ok(api.post(PLANS, json={"name": "Flat", "brackets": [{"rate": "10"}]}), 201)
    p = active_partner(api, name=f"{name} Partner", territories=[country])
    portal = Portal(api, p["id"], f"{name.lower()}@{api.tenant.slug}.example")
    lead = ok(api.post("/api/v1/leads", json={"first_name": name, "company": f"{name} Lead Co",
                                              "country": country}), 201)
    offer = ok(api.post(OFFERS, json={"lead_id": lead["id"]}), 201)
    assert offer["partner_id"] == p["id"]
    registration = ok(portal.post("deal-registrations", json={
        "title": f"{name} registration", "company_name": f"{name} Customer",
        "amount": "1000"}), 201)
    deal_id = ok(api.post(f"{REGISTRATIONS}/{registration['id']}/approve", json={}))["deal_id"]
    won(api, deal_id)
    commission = ok(api.get(f"{COMMISSIONS}?partner_id={p['id']}"))[0]
    contract = ok(api.post(CONTRACTS, json={"partner_id": p["id"], "name": f"{name} contract",
                                            "start_date": "2020-01-01", "status": "active"}),
                  201)
    return {"portal": portal, "marker": name.lower(), "partner": p, "ids": {
        "lead_id": lead["id"], "registration_id": registration["id"], "deal_id": deal_id,
        "commission_id": commission["id"], "contract_id": contract["id"]}}


def portal_routes(app):
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(PORTAL + "/") and rule.rule != f"{PORTAL}/auth/login":
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield method, rule.rule


def test_the_partner_matrix_no_partner_ever_reaches_another_partners_records(api, other_api):
    mine = partner_world(api, "Pippo", "IT")
    theirs = partner_world(api, "Quirino", "FR")
    foreign = partner_world(other_api, "Rodolfo", "IT")
    me = mine["portal"]
    checked = with_ids = 0
    for method, rule in portal_routes(api.app):
        params = PORTAL_ID.findall(rule)
        if not params:
            if method == "GET":
                path = rule + ("?start=" + utcnow().date().replace(day=1).isoformat()
                               if rule.endswith("/statement") else "")
                response = me.open(path)
                assert response.status_code == 200, (rule, response.json)
                text = response.get_data(as_text=True).lower()
                assert "quirino" not in text and "rodolfo" not in text, rule
                checked += 1
            continue
        with_ids += 1
        for name in params:
            assert name in mine["ids"], f"add a portal record for <{name}> ({rule})"
        if method == "GET":
            own = me.open(PORTAL_ID.sub(lambda m: mine["ids"][m.group(1)], rule))
            assert own.status_code == 200, (rule, own.json)
            assert all(mine["ids"][n] in own.get_data(as_text=True) for n in params), rule
        for world in (theirs, foreign):
            path = PORTAL_ID.sub(lambda m, w=world: w["ids"][m.group(1)], rule)
            response = me.open(path, method, json={} if method == "POST" else None)
            assert response.status_code == 404, (method, rule, response.status_code)
            assert world["marker"] not in response.get_data(as_text=True).lower()
            checked += 1
    assert with_ids >= 7 and checked >= 20
    # nothing was changed by the attempts: the other partners' offers still wait
    for world, client in ((theirs, api), (foreign, other_api)):
        offers = ok(client.get(f"{OFFERS}?lead_id={world['ids']['lead_id']}"))
        assert [o["status"] for o in offers] == ["offered"]
    # and every list shows the partner its own records
    assert [x["id"] for x in ok(me.get("leads"))] == [mine["ids"]["lead_id"]]
    assert [x["id"] for x in ok(me.get("deal-registrations"))] == [
        mine["ids"]["registration_id"]]
    assert [x["id"] for x in ok(me.get("deals"))] == [mine["ids"]["deal_id"]]
    assert [x["id"] for x in ok(me.get("commissions"))] == [mine["ids"]["commission_id"]]
    assert [x["id"] for x in ok(me.get("contracts"))] == [mine["ids"]["contract_id"]]


def test_a_partner_accepts_or_declines_its_leads_and_sees_contact_details_once_accepted(api):
    ok(api.post(RULES, json={"name": "everyone"}), 201)
    a = Portal(api, active_partner(api, name="A", tier_id=tier_id(api, "gold"))["id"],
               "a@a.example")
    b = Portal(api, active_partner(api, name="B", tier_id=tier_id(api, "silver"))["id"],
               "b@b.example")
    lead = ok(api.post("/api/v1/leads", json={"first_name": "Lia", "email": "lia@x.example",
                                              "phone": "+390212345678"}), 201)
    offer = ok(api.post(OFFERS, json={"lead_id": lead["id"]}), 201)
    assert offer["partner_id"] == a.partner_id  # gold first
    seen = ok(a.get(f"leads/{lead['id']}"))
    assert (seen["offer_status"], seen["email"], seen["phone"]) == ("offered", None, None)
    assert b.get(f"leads/{lead['id']}").status_code == 404
    assert b.post(f"leads/{lead['id']}/accept").status_code == 404
    assert a.post(f"leads/{lead['id']}/decline", json={"reason": "too far"}).status_code == 204
    # declined: gone from A, offered to B at once
    assert a.get(f"leads/{lead['id']}").status_code == 404
    assert ok(b.get("leads"))[0]["offer_status"] == "offered"
    accepted = ok(b.post(f"leads/{lead['id']}/accept"))
    assert (accepted["offer_status"], accepted["email"]) == ("accepted", "lia@x.example")
    assert b.post(f"leads/{lead['id']}/accept").status_code == 409
    history = ok(api.get(f"{OFFERS}?lead_id={lead['id']}"))
    assert [(o["partner_id"], o["status"], o["reason"]) for o in history] == [
        (a.partner_id, "declined", "too far"), (b.partner_id, "accepted", None)]


def test_portal_registration_input_sessions_and_scorecard(api):
    p = active_partner(api, name="Session Partner")
    ok(api.post(f"{PARTNERS}/{p['id']}/users", json={
        "email": "login@session.example", "password": "a long enough password"}), 201)
    client = api.app.test_client()
    response = client.post(f"{PORTAL}/auth/login", json={"email": "login@session.example",
                                                         "password": "wrong password!"})
    assert response.status_code == 401
    # a portal session (what a successful login leaves in the signed cookie)
    user = ok(api.get(f"{PARTNERS}/{p['id']}/users"))[0]
    csrf = "the-csrf-token"
    with client.session_transaction() as session:
        session.update({"user_id": user["id"], "tenant_id": str(api.tenant.id), "csrf": csrf,
                        "partner_portal": True})
    assert ok(client.get(f"{PORTAL}/me"))["name"] == "Session Partner"
    body = {"title": "Via session", "company_name": "Sess Spa", "amount": "10"}
    assert client.post(f"{PORTAL}/deal-registrations", json=body).status_code == 403
    ok(client.post(f"{PORTAL}/deal-registrations", json=body,
                   headers={"X-CSRF-Token": csrf}), 201)
    response = client.post(f"{PORTAL}/deal-registrations", headers={"X-CSRF-Token": csrf},
                           json={"title": "", "amount": "x", "customer_id": "nope"})
    assert response.status_code == 422
    assert set(response.json["errors"]["json"]) == {"title", "amount", "customer_id"}
    customer = api.customer(first_name="Staff only")
    response = client.post(f"{PORTAL}/deal-registrations", headers={"X-CSRF-Token": csrf},
                           json={"title": "t", "amount": "1", "customer_id": customer["id"]})
    assert response.status_code == 422
    assert client.get(f"{PORTAL}/deals/not-a-uuid").status_code == 404
    card = ok(client.get(f"{PORTAL}/scorecard?from=2020-01-01&to=2020-12-31"))
    assert (card["partner"], card["from"], card["revenue"]) == ("Session Partner", "2020-01-01",
                                                               "0.00")
    # a terminated partner's users are locked out
    token_user = Portal(api, p["id"], "token@session.example")
    ok(api.post(f"{PARTNERS}/{p['id']}/status", json={"status": "terminated"}))
    assert token_user.get("me").status_code == 403


# --- lead distribution ----------------------------------------------------------------------


def offer_lead(api, **lead) -> dict | None:
    lead.setdefault("first_name", "Lead")
    created = ok(api.post("/api/v1/leads", json=lead), 201)
    response = api.post(OFFERS, json={"lead_id": created["id"]})
    if response.status_code == 422:
        return None
    return ok(response, 201)


def test_leads_go_to_partners_in_proportion_to_tier_weight_within_territory_and_capacity(api):
    ok(api.post(RULES, json={"name": "Italy", "countries": ["it"], "position": 1}), 201)
    gold = active_partner(api, name="Gold", tier_id=tier_id(api, "gold"), territories=["IT"])
    silver = active_partner(api, name="Silver", tier_id=tier_id(api, "silver"),
                            territories=["IT", "FR"])
    bronze = active_partner(api, name="Bronze", tier_id=tier_id(api, "bronze"))
    active_partner(api, name="Elsewhere", tier_id=tier_id(api, "gold"), territories=["DE"])
    partner(api, name="Not active yet", tier_id=tier_id(api, "gold"))
    names = {gold["id"]: "Gold", silver["id"]: "Silver", bronze["id"]: "Bronze"}
    order = [names[offer_lead(api, country="IT")["partner_id"]] for _ in range(6)]
    # lowest (load + 1) / weight first; ties to the heavier tier
    assert order == ["Gold", "Silver", "Gold", "Gold", "Silver", "Bronze"]
    # no rule matches a German lead
    assert offer_lead(api, country="DE") is None
    # capacity: a full partner is skipped
    ok(api.patch(f"{PARTNERS}/{gold['id']}", json={"capacity": 3}))
    ok(api.patch(f"{PARTNERS}/{silver['id']}", json={"capacity": 2}))
    assert names[offer_lead(api, country="IT")["partner_id"]] == "Bronze"
    ok(api.patch(f"{PARTNERS}/{bronze['id']}", json={"capacity": 2}))
    assert offer_lead(api, country="IT") is None  # everyone is full
    # a running contract grants territory: Silver gets Spain through its contract
    ok(api.patch(f"{RULES}/{ok(api.get(RULES))[0]['id']}", json={"countries": ["IT", "ES"]}))
    ok(api.patch(f"{PARTNERS}/{silver['id']}", json={"capacity": None}))
    assert offer_lead(api, country="ES") is None  # nobody covers Spain (Bronze is full)
    ok(api.post(CONTRACTS, json={"partner_id": silver["id"], "name": "Spain",
                                 "start_date": "2020-01-01", "status": "active",
                                 "territories": ["ES"]}), 201)
    assert offer_lead(api, country="ES")["partner_id"] == silver["id"]


def test_rules_choose_by_specialisation_and_tier(api):
    ok(api.post(RULES, json={"name": "Welding to gold", "specialisation": "Welding",
                             "tier_ids": [tier_id(api, "gold")], "position": 0}), 201)
    ok(api.post(RULES, json={"name": "Web leads", "sources": ["web_form"], "position": 1}), 201)
    welder = active_partner(api, name="Welder", tier_id=tier_id(api, "gold"),
                            specialisations=["welding"])
    active_partner(api, name="Silver welder", tier_id=tier_id(api, "silver"),
                   specialisations=["welding"])
    painter = active_partner(api, name="Painter", tier_id=tier_id(api, "bronze"),
                             specialisations=["painting"])
    offer = offer_lead(api, attributes={"specialisation": "welding"})
    assert offer["partner_id"] == welder["id"]
    assert offer_lead(api, source="api") is None  # no rule for it
    offer = offer_lead(api, source="web_form", attributes={"specialisation": "painting"})
    assert offer["partner_id"] == painter["id"]
    response = api.post(OFFERS, json={"lead_id": offer["lead_id"]})
    assert response.status_code == 409  # already with a partner
    ok(api.post(f"{OFFERS}/{offer['id']}/withdraw"))
    assert api.post(f"{OFFERS}/{offer['id']}/withdraw").status_code == 409


def test_the_job_reassigns_leads_nobody_answered_in_time(app, api):
    from clientela.plugins.prm.models import LeadOffer

    assert jobs.queue_for(app).definitions["prm.expire_lead_offers"].schedule is not None
    ok(api.post(RULES, json={"name": "all"}), 201)
    first = active_partner(api, name="First", tier_id=tier_id(api, "gold"))
    second = active_partner(api, name="Second", tier_id=tier_id(api, "silver"))
    offer = offer_lead(api, first_name="Slow")
    assert offer["partner_id"] == first["id"]
    deadline = dt.datetime.fromisoformat(offer["deadline"])
    assert deadline - dt.datetime.fromisoformat(offer["offered_at"]) == dt.timedelta(hours=48)

    def time_passes(lead_id):
        with tenancy.tenant_context(api.tenant.id):
            db.session.execute(sa.update(LeadOffer).where(
                LeadOffer.lead_id == uuid.UUID(lead_id), LeadOffer.status == "offered")
                .values(deadline=utcnow() - dt.timedelta(minutes=1)))
            db.session.commit()

    # not yet due: the job leaves it alone
    run_job(app, api.tenant.id, "prm.expire_lead_offers")
    assert [o["status"] for o in ok(api.get(f"{OFFERS}?lead_id={offer['lead_id']}"))] == [
        "offered"]
    time_passes(offer["lead_id"])
    portal = Portal(api, first["id"], "first@late.example")
    assert portal.post(f"leads/{offer['lead_id']}/accept").status_code == 409  # too late
    run_job(app, api.tenant.id, "prm.expire_lead_offers")
    history = ok(api.get(f"{OFFERS}?lead_id={offer['lead_id']}"))
    assert [(o["partner_id"], o["status"]) for o in history] == [
        (first["id"], "expired"), (second["id"], "offered")]
    assert portal.get(f"leads/{offer['lead_id']}").status_code == 404
    time_passes(offer["lead_id"])
    run_job(app, api.tenant.id, "prm.expire_lead_offers")
    # everybody had their chance: the lead stays with nobody
    history = ok(api.get(f"{OFFERS}?lead_id={offer['lead_id']}"))
    assert [o["status"] for o in history] == ["expired", "expired"]


def test_a_new_lead_is_offered_by_a_job_when_a_rule_exists(app, api):
    from clientela.core.models import Job

    def distribution_jobs():
        with tenancy.tenant_context(api.tenant.id):
            rows = db.session.execute(sa.select(Job.id, Job.status).where(
                Job.name == "prm.distribute_lead").order_by(Job.created_at)).all()
        db.session.rollback()
        return rows

    ok(api.post("/api/v1/leads", json={"first_name": "Before rules"}), 201)
    assert distribution_jobs() == []  # a tenant that does not distribute pays nothing
    ok(api.post(RULES, json={"name": "all"}), 201)
    p = active_partner(api, name="Auto")
    lead = ok(api.post("/api/v1/leads", json={"first_name": "Auto", "country": "IT"}), 201)
    [(job_id, _)] = distribution_jobs()
    assert jobs.queue_for(app).run(api.tenant.id, job_id) == "succeeded"
    db.session.rollback()
    offers = ok(api.get(f"{OFFERS}?lead_id={lead['id']}"))
    assert [(o["partner_id"], o["status"]) for o in offers] == [(p["id"], "offered")]
    # run again (a consumer crash): still one offer
    assert jobs.queue_for(app).run(api.tenant.id, job_id) in ("succeeded", None)
    assert len(ok(api.get(f"{OFFERS}?lead_id={lead['id']}"))) == 1


# --- contracts ------------------------------------------------------------------------------


def test_contracts_terms_renewal_and_expiry_alerts_by_job_over_real_smtp(app, api,
                                                                         clientela_smtp):
    clientela_smtp.configure(app)
    manager = api.users["manager"]
    p = active_partner(api, name="Contracted", owner_id=str(manager.id))
    plan = ok(api.post(PLANS, json={"name": "Contract plan", "brackets": [{"rate": "20"}]}),
              201)
    today = utcnow().date()
    ending = ok(api.post(CONTRACTS, json={
        "partner_id": p["id"], "name": "Distribution 2026", "terms": "Exclusive in Lombardy",
        "start_date": (today - dt.timedelta(days=300)).isoformat(),
        "end_date": (today + dt.timedelta(days=10)).isoformat(), "status": "active",
        "commission_plan_id": plan["id"], "territories": ["it"],
        "documents": [{"name": "Signed PDF", "url": "https://files.example/c.pdf"}]}), 201)
    assert ending["territories"] == ["IT"] and ending["documents"][0]["name"] == "Signed PDF"
    renewing = ok(api.post(CONTRACTS, json={
        "partner_id": p["id"], "name": "Service", "start_date": "2024-01-31",
        "end_date": (today - dt.timedelta(days=1)).isoformat(), "status": "active",
        "auto_renew": True, "renewal_months": 12}), 201)
    lapsing = ok(api.post(CONTRACTS, json={
        "partner_id": p["id"], "name": "Old", "start_date": "2024-01-01",
        "end_date": (today - dt.timedelta(days=1)).isoformat(), "status": "active"}), 201)
    assert api.post(CONTRACTS, json={"partner_id": p["id"], "name": "x",
                                     "start_date": "2030-01-02",
                                     "end_date": "2030-01-01"}).status_code == 422
    assert jobs.queue_for(app).definitions["prm.contract_alerts"].schedule is not None
    run_job(app, api.tenant.id, "prm.contract_alerts")
    assert ok(api.get(f"{CONTRACTS}/{lapsing['id']}"))["status"] == "expired"
    renewed = ok(api.get(f"{CONTRACTS}/{renewing['id']}"))
    assert renewed["status"] == "active"
    assert dt.date.fromisoformat(renewed["end_date"]) > today
    assert len(clientela_smtp.messages) == 1
    message = clientela_smtp.messages[0]
    assert message["To"] == manager.email
    assert "Contracted" in message["Subject"] and "expires" in message["Subject"]
    assert ok(api.get(f"{CONTRACTS}/{ending['id']}"))["alerted_for"] == ending["end_date"]
    run_job(app, api.tenant.id, "prm.contract_alerts")
    assert len(clientela_smtp.messages) == 1  # once per end date
    # the contract's plan pays the partner's deals
    ok(api.post(PLANS, json={"name": "Generic", "brackets": [{"rate": "1"}]}), 201)
    won(api, attributed_deal(api, p, "1000")["id"])
    assert commissions_of(api, p) == [("1000.00", "200.00", "pending")]
    assert ok(api.get(f"{CONTRACTS}?partner_id={p['id']}&status=expired"))[0]["name"] == "Old"
    ok(api.delete(f"{CONTRACTS}/{lapsing['id']}"), 204)
    assert api.get(f"{CONTRACTS}", role="sales").status_code == 403


# --- forecast, scorecards, reports -----------------------------------------------------------


def at(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone.utc)


def backdate(api, deal_id: str, created: str, closed: str | None = None) -> None:
    """Put a deal where the known data set wants it in time."""
    from clientela.plugins.operational.models import Deal

    with tenancy.tenant_context(api.tenant.id):
        values = {"created_at": at(created)}
        if closed:
            values["closed_at"] = at(closed)
        db.session.execute(sa.update(Deal).where(Deal.id == uuid.UUID(deal_id)).values(**values))
        db.session.commit()


def known_data_set(app, api) -> tuple[dict, dict]:
    """Two partners and their 2025: deals won, lost and open, leads, targets, commissions."""
    from clientela.plugins.prm.models import LeadOffer

    ok(api.post(PLANS, json={"name": "Ten", "brackets": [{"rate": "10"}]}), 201)
    ok(api.post(RULES, json={"name": "all"}), 201)
    g = active_partner(api, name="Gianni", tier_id=tier_id(api, "gold"), territories=["IT"])
    s = active_partner(api, name="Sara", tier_id=tier_id(api, "silver"), territories=["FR"])
    pipeline = next(p for p in ok(api.get("/api/v1/pipelines")) if p["is_default"])
    stage = {x["name"]: x["id"] for x in pipeline["stages"]}
    for p, amount, created, closed in ((g, "10000", "2025-01-01", "2025-01-11"),
                                       (g, "30000", "2025-02-01", "2025-02-21"),
                                       (s, "20000", "2025-04-01", "2025-04-04")):
        deal = attributed_deal(api, p, amount)
        won(api, deal["id"])
        backdate(api, deal["id"], created, closed)
    lost = attributed_deal(api, g, "5000")
    ok(api.post(f"/api/v1/deals/{lost['id']}/close", json={"outcome": "lost",
                                                            "reason": "price"}))
    backdate(api, lost["id"], "2025-02-01", "2025-03-01")
    attributed_deal(api, g, "40000", stage_id=stage["Proposal"],
                    expected_close_date="2025-05-15")
    attributed_deal(api, s, "8000", stage_id=stage["Qualification"],
                    expected_close_date="2025-06-30")
    # a deal of nobody's counts for no partner
    ok(api.post("/api/v1/deals", json={"title": "Direct", "amount": "777",
                                       "expected_close_date": "2025-05-01"}), 201)
    # commissions follow the deals into 2025 when the job computes them again
    run_job(app, api.tenant.id, "prm.sync_commissions")
    # Gianni receives three leads, accepts two and one of those converts
    portal = Portal(api, g["id"], "gianni@known.example")
    offers = [offer_lead(api, first_name=f"L{i}", country="IT") for i in range(3)]
    assert {o["partner_id"] for o in offers} == {g["id"]}
    ok(portal.post(f"leads/{offers[0]['lead_id']}/accept"))
    ok(portal.post(f"leads/{offers[1]['lead_id']}/accept"))
    assert portal.post(f"leads/{offers[2]['lead_id']}/decline").status_code == 204
    ok(api.post(f"/api/v1/leads/{offers[0]['lead_id']}/convert", json={}))
    with tenancy.tenant_context(api.tenant.id):
        db.session.execute(sa.update(LeadOffer).values(offered_at=at("2025-03-15")))
        db.session.commit()
    ok(api.client.put(f"{PARTNERS}/{g['id']}/targets", headers=api.headers(), json={
        "period": "quarter", "period_start": "2025-01-01", "amount": "50000"}))
    ok(api.post(CONTRACTS, json={"partner_id": g["id"], "name": "G", "status": "active",
                                 "start_date": "2025-01-01", "end_date": "2025-12-31"}), 201)
    return g, s


def test_scorecards_and_reports_on_a_known_data_set(app, api):
    g, s = known_data_set(app, api)
    card = ok(api.get(f"{PARTNERS}/{g['id']}/scorecard?from=2025-01-01&to=2025-12-31"))
    assert {k: v for k, v in card.items() if k not in ("partner_id",)} == {
        "partner": "Gianni", "tier": "gold", "status": "active",
        "from": "2025-01-01", "to": "2025-12-31", "contract_status": "active",
        "leads_received": 3, "leads_accepted": 2, "leads_converted": 1,
        "acceptance_rate": "0.6667", "conversion_rate": "0.5000",
        "deals_won": 2, "deals_lost": 1, "win_rate": "0.6667",
        "revenue": "40000.00", "average_deal": "20000.00", "average_days_to_close": "15.0",
        "commission_earned": "4000.00"}
    # January only: the first won deal, nothing lost, no lead yet
    q1 = ok(api.get(f"{PARTNERS}/{g['id']}/scorecard?from=2025-01-01&to=2025-01-31"))
    assert (q1["deals_won"], q1["deals_lost"], q1["revenue"], q1["commission_earned"],
            q1["leads_received"]) == (1, 0, "10000.00", "1000.00", 0)
    report = ok(api.get("/api/v1/prm/reports?from=2025-01-01&to=2025-12-31", role="analyst"))
    assert [p["partner"] for p in report["partners"]] == ["Gianni", "Sara"]
    sara = report["partners"][1]
    assert (sara["deals_won"], sara["revenue"], sara["average_days_to_close"], sara["win_rate"],
            sara["commission_earned"], sara["contract_status"], sara["leads_received"]) == (
        1, "20000.00", "3.0", "1.0000", "2000.00", "none", 0)
    tiers = {t["tier"]: t for t in report["tiers"]}
    assert (tiers["gold"]["partners"], tiers["gold"]["revenue"], tiers["gold"]["win_rate"]) == (
        1, "40000.00", "0.6667")
    assert (tiers["silver"]["revenue"], tiers["silver"]["deals_won"]) == ("20000.00", 1)
    assert (tiers["bronze"]["partners"], tiers["bronze"]["revenue"],
            tiers["bronze"]["win_rate"]) == (0, "0.00", None)
    # the partner sees the same card in the portal
    portal = Portal(api, s["id"], "sara@known.example")
    assert ok(portal.get("scorecard?from=2025-01-01&to=2025-12-31"))["revenue"] == "20000.00"


def test_the_partner_forecast_weights_the_pipeline_by_period_next_to_targets(app, api):
    g, s = known_data_set(app, api)
    forecast = ok(api.get("/api/v1/prm/forecast?year=2025&period=quarter"))
    rows = [(r["period"], r["partner"], r["open"], r["weighted"], r["won"], r["target"])
            for r in forecast["rows"]]
    assert rows == [
        ("2025-Q1", "Gianni", "0.00", "0.00", "40000.00", "50000.00"),
        ("2025-Q2", "Gianni", "40000.00", "20000.00", "0.00", "0.00"),
        ("2025-Q2", "Sara", "8000.00", "800.00", "20000.00", "0.00"),
    ]
    assert [(c["period"], c["open"], c["weighted"], c["won"], c["target"])
            for c in forecast["channel"]] == [
        ("2025-Q1", "0.00", "0.00", "40000.00", "50000.00"),
        ("2025-Q2", "48000.00", "20800.00", "20000.00", "0.00")]
    one = ok(api.get(f"/api/v1/prm/forecast?year=2025&period=month&partner_id={s['id']}"))
    assert [(r["period"], r["weighted"], r["won"]) for r in one["rows"]] == [
        ("2025-04", "0.00", "20000.00"), ("2025-06", "800.00", "0.00")]
    assert api.get("/api/v1/prm/forecast", role="sales").status_code == 403


def test_partner_targets_are_set_per_period(api):
    p = partner(api)
    url = f"{PARTNERS}/{p['id']}/targets"
    put = lambda body: api.client.put(url, headers=api.headers(), json=body)  # noqa: E731
    ok(put({"period": "month", "period_start": "2030-01-01", "amount": "100"}))
    ok(put({"period": "month", "period_start": "2030-01-01", "amount": "250"}))
    assert [(t["period_start"], t["amount"]) for t in ok(api.get(url))] == [
        ("2030-01-01", "250.00")]
    response = put({"period": "quarter", "period_start": "2030-02-01", "amount": "1"})
    assert response.status_code == 422 and "period_start" in response.json["errors"]["json"]


# --- data-subject rights, merge, profile ------------------------------------------------------


def test_export_erase_merge_and_profile_cover_deal_registrations(api):
    p = active_partner(api, name="Rights")
    customer = api.customer(kind="organisation", organisation_name="Neri Spa",
                            email="info@neri.example")
    twin = api.customer(kind="organisation", organisation_name="Neri S.p.A.")
    reg = ok(api.post(REGISTRATIONS, json={"partner_id": p["id"], "title": "Neri press",
                                           "customer_id": twin["id"], "amount": "1",
                                           "contact_email": "ceo@neri.example",
                                           "notes": "call the CEO Neri"}), 201)
    ok(api.post(f"/api/v1/customers/{customer['id']}/merge", json={"other_id": twin["id"]}))
    assert ok(api.get(f"{REGISTRATIONS}/{reg['id']}"))["customer_id"] == customer["id"]
    profile = ok(api.get(f"/api/v1/customers/{customer['id']}/profile"))
    section = next(s for s in profile["sections"] if s["key"] == "prm")
    assert section["data"]["registrations"][0]["partner"] == "Rights"
    document = ok(api.get(f"/api/v1/customers/{customer['id']}/export"))
    exported = document["plugins"]["prm"]["deal_registrations"]
    assert [(r["title"], r["contact_email"]) for r in exported] == [
        ("Neri press", "ceo@neri.example")]
    summary = ok(api.post(f"/api/v1/customers/{customer['id']}/erase"))
    assert summary["plugins"]["prm"] == {"deal_registrations_anonymised": 1}
    erased = ok(api.get(f"{REGISTRATIONS}/{reg['id']}"))
    assert (erased["title"], erased["contact_email"], erased["notes"]) == (
        "Erased registration", None, "")


def test_no_prm_input_produces_a_500(api):
    p = active_partner(api)
    for method, path, body in (
            ("POST", PARTNERS, {"name": "x" * 5000, "type": "reseller"}),
            ("POST", PARTNERS, {"name": "x", "type": "reseller", "territories": "IT"}),
            ("POST", PARTNERS, ["not", "an", "object"]),
            ("GET", f"{PARTNERS}?status=weird", None),
            ("POST", f"{PARTNERS}/{p['id']}/status", {"status": None}),
            ("POST", REGISTRATIONS, {"partner_id": "nope"}),
            ("POST", PLANS, {"name": "p", "brackets": [{"rate": "NaN"}]}),
            ("POST", PLANS, {"name": "p", "brackets": [{"rate": "1e999"}]}),
            ("POST", CONTRACTS, {"partner_id": p["id"], "name": "c", "start_date": "soon"}),
            ("GET", "/api/v1/prm/reports?from=2030-01-01&to=2020-01-01", None),
            ("GET", f"{COMMISSIONS}/statement?partner_id={p['id']}&start=2030-01-02", None),
            ("POST", OFFERS, {"lead_id": str(uuid.uuid4())}),
    ):
        response = api.client.open(path, method=method, json=body, headers=api.headers())
        assert 400 <= response.status_code < 500, (method, path, body, response.status_code)
        assert set(response.json) >= {"code", "status", "message"}


def test_demo_data_builds_a_small_network(app_ctx, tenant):
    from clientela.core.app import current_clientela
    from clientela.plugins.prm.models import Commission, Partner, PartnerDeal

    current_clientela().plugins.call_in_order("clientela_demo_data", tenant=tenant)
    db.session.commit()
    partners = db.session.execute(db.select(Partner).order_by(Partner.name)).scalars().all()
    assert [(p.name, p.status) for p in partners] == [
        ("Distribuzioni Nord", "active"), ("Meccanica Rossi", "active"),
        ("Studio Bianchi", "active")]
    assert len(db.session.execute(db.select(PartnerDeal)).scalars().all()) == 6
    commissions = db.session.execute(db.select(Commission)).scalars().all()
    assert commissions and all(c.amount > 0 for c in commissions)


def test_a_partner_user_logs_in_to_the_portal_with_a_password(backend, fresh_database_url,
                                                               tmp_path):
    from clientela.core import migrations, services
    from clientela.core.app import create_app
    from clientela.plugins.prm import services as prm
    from clientela.plugins.prm.models import PartnerUser

    app = create_app("onprem", DATABASE_URL=fresh_database_url(backend), HOME=str(tmp_path),
                     SECRET_KEY="test")
    with app.app_context():
        migrations.upgrade(app)
        tenant = services.create_tenant("solo")
        with tenancy.tenant_context(tenant.id):
            services.create_user("staff@example.com", roles=["sales"], password="staff-horse-1")
            partner = prm.create_partner({"name": "Solo Partner", "type": "referral"})
            user = services.create_user("p@example.com", roles=["partner"],
                                        password="partner-horse-1")
            db.session.add(PartnerUser(partner_id=partner.id, user_id=user.id))
            db.session.commit()
    try:
        client = app.test_client()
        response = client.post(f"{PORTAL}/auth/login", json={"email": "staff@example.com",
                                                             "password": "staff-horse-1"})
        assert response.status_code == 401  # staff do not use the partner portal
        assert client.get(f"{PORTAL}/me").status_code == 401
        response = client.post(f"{PORTAL}/auth/login", json={"email": "p@example.com",
                                                             "password": "partner-horse-1"})
        csrf = ok(response)["csrf_token"]
        assert ok(client.get(f"{PORTAL}/me"))["name"] == "Solo Partner"
        # the portal session is no staff session
        assert client.get("/api/v1/customers").status_code == 403
        # a prospect cannot register deals yet
        response = client.post(f"{PORTAL}/deal-registrations", headers={"X-CSRF-Token": csrf},
                               json={"title": "t", "company_name": "c", "amount": "1"})
        assert response.status_code == 409
    finally:
        with app.app_context():
            db.engine.dispose()


def test_deleting_deals_customers_and_partners_keeps_the_rest_consistent(api):
    ok(api.post(PLANS, json={"name": "Ten", "brackets": [{"rate": "10"}]}), 201)
    p = active_partner(api, name="Deletable", territories=["DE"])
    reg = ok(api.post(REGISTRATIONS, json={"partner_id": p["id"], "title": "To delete",
                                           "company_name": "Gone Spa", "amount": "100"}), 201)
    deal_id = ok(api.post(f"{REGISTRATIONS}/{reg['id']}/approve", json={}))["deal_id"]
    won(api, deal_id)
    assert len(ok(api.get(f"{COMMISSIONS}?partner_id={p['id']}"))) == 1
    ok(api.delete(f"/api/v1/deals/{deal_id}"), 204)
    assert ok(api.get(f"{REGISTRATIONS}/{reg['id']}"))["deal_id"] is None
    assert ok(api.get(f"{COMMISSIONS}?partner_id={p['id']}")) == []
    # a customer with registrations and an attributed deal can be deleted
    reg = ok(api.post(REGISTRATIONS, json={"partner_id": p["id"], "title": "Second",
                                           "company_name": "Gone Too", "amount": "5"}), 201)
    deal = ok(api.get("/api/v1/deals/" + ok(api.post(
        f"{REGISTRATIONS}/{reg['id']}/approve", json={}))["deal_id"]))
    ok(api.delete(f"/api/v1/customers/{deal['customer_id']}"), 204)
    assert api.get(f"{REGISTRATIONS}/{reg['id']}").status_code == 404
    assert ok(api.get(f"{PARTNERS}/{p['id']}/deals")) == []
    # a partner with everything attached goes, its users are deactivated
    world = partner_world(api, "Vanishing", "IT")
    pid = world["partner"]["id"]
    ok(api.delete(f"{PARTNERS}/{pid}"), 204)
    assert api.get(f"{PARTNERS}/{pid}").status_code == 404
    assert world["portal"].get("me").status_code == 401
    assert ok(api.get(f"/api/v1/deals/{world['ids']['deal_id']}"))["status"] == "won"
    # once a commission is approved, the partner is kept (terminate it instead)
    kept = partner_world(api, "Kept", "FR")
    ok(api.post(f"{COMMISSIONS}/{kept['ids']['commission_id']}/approve"))
    assert api.delete(f"{PARTNERS}/{kept['partner']['id']}").status_code == 409
