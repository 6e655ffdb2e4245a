"""The PRM plugin's records for the cross-tenant test."""

ORDER = 40

BODIES = {
    ("PATCH", "/api/v1/partners/<uuid:partner_id>"): {"name": "pwned"},
    ("POST", "/api/v1/partners/<uuid:partner_id>/status"): {"status": "terminated"},
    ("POST", "/api/v1/partners/<uuid:partner_id>/onboarding-steps"): {"name": "pwned"},
    ("PATCH", "/api/v1/partners/<uuid:partner_id>/onboarding-steps/<uuid:step_id>"): {
        "completed": False},
    ("POST", "/api/v1/partners/<uuid:partner_id>/users"): {"email": "pwned@example.com"},
    ("PUT", "/api/v1/partners/<uuid:partner_id>/targets"): {
        "period": "month", "period_start": "2030-01-01", "amount": "1"},
    ("POST", "/api/v1/partners/<uuid:partner_id>/deals"): {
        "deal_id": "00000000-0000-4000-8000-000000000000"},
    ("PATCH", "/api/v1/partner-tiers/<uuid:tier_id>"): {"weight": 99},
    ("POST", "/api/v1/deal-registrations/<uuid:registration_id>/approve"): {"override": True},
    ("POST", "/api/v1/deal-registrations/<uuid:registration_id>/reject"): {"reason": "pwned"},
    ("PATCH", "/api/v1/commission-plans/<uuid:plan_id>"): {"name": "pwned"},
    ("POST", "/api/v1/commissions/<uuid:commission_id>/pay"): {"reference": "pwned"},
    ("PATCH", "/api/v1/lead-distribution-rules/<uuid:rule_id>"): {"name": "pwned"},
    ("PATCH", "/api/v1/partner-contracts/<uuid:contract_id>"): {"name": "pwned"},
}


def _ok(response, status):
    assert response.status_code == status, (response.status_code, response.json)
    return response.json


def make(api, records):
    partners = "/api/v1/partners"
    tiers = _ok(api.get("/api/v1/partner-tiers"), 200)
    partner = _ok(api.post(partners, json={
        "name": "Secret Partner", "type": "reseller", "tier_id": tiers[0]["id"],
        "territories": ["IT"]}), 201)
    pid = partner["id"]
    _ok(api.post(f"{partners}/{pid}/status", json={"status": "onboarding"}), 200)
    steps = _ok(api.get(f"{partners}/{pid}/onboarding-steps"), 200)
    for step in steps:
        _ok(api.patch(f"{partners}/{pid}/onboarding-steps/{step['id']}",
                      json={"completed": True}), 200)
    _ok(api.post(f"{partners}/{pid}/status", json={"status": "active"}), 200)
    plan = _ok(api.post("/api/v1/commission-plans", json={
        "name": "secret plan", "brackets": [{"rate": "5"}]}), 201)
    deal = _ok(api.post("/api/v1/deals", json={"title": "secret partner deal", "amount": "100",
                                               "customer_id": records["customer_id"]}), 201)
    _ok(api.post(f"{partners}/{pid}/deals", json={"deal_id": deal["id"]}), 201)
    _ok(api.post(f"/api/v1/deals/{deal['id']}/close", json={"outcome": "won"}), 200)
    commission = _ok(api.get(f"/api/v1/commissions?partner_id={pid}"), 200)[0]
    registration = _ok(api.post("/api/v1/deal-registrations", json={
        "partner_id": pid, "title": "secret registration", "company_name": "Secret Spa",
        "amount": "10"}), 201)
    rule = _ok(api.post("/api/v1/lead-distribution-rules", json={"name": "secret rule"}), 201)
    lead = _ok(api.post("/api/v1/leads", json={"first_name": "Secret", "country": "IT"}), 201)
    offer = _ok(api.post("/api/v1/lead-offers", json={"lead_id": lead["id"]}), 201)
    contract = _ok(api.post("/api/v1/partner-contracts", json={
        "partner_id": pid, "name": "secret contract", "start_date": "2030-01-01"}), 201)
    return {
        "partner_id": pid,
        "step_id": steps[0]["id"],
        "tier_id": tiers[0]["id"],
        "plan_id": plan["id"],
        "commission_id": commission["id"],
        "registration_id": registration["id"],
        "rule_id": rule["id"],
        "offer_id": offer["id"],
        "contract_id": contract["id"],
    }
