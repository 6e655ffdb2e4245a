"""The operational plugin's records for the cross-tenant test."""

ORDER = 10

BODIES = {
    ("PATCH", "/api/v1/leads/<uuid:lead_id>"): {"status": "contacted"},
    ("PATCH", "/api/v1/lead-scoring-rules/<uuid:rule_id>"): {"points": 99},
    ("PATCH", "/api/v1/web-forms/<uuid:form_id>"): {"name": "pwned"},
    ("PATCH", "/api/v1/pipelines/<uuid:pipeline_id>"): {"name": "pwned"},
    ("PATCH", "/api/v1/deals/<uuid:deal_id>"): {"title": "pwned"},
    ("POST", "/api/v1/deals/<uuid:deal_id>/close"): {"outcome": "won"},
    ("PATCH", "/api/v1/sales-targets/<uuid:target_id>"): {"amount": "1"},
    ("PATCH", "/api/v1/tasks/<uuid:task_id>"): {"title": "pwned"},
    ("PATCH", "/api/v1/routing-rules/<uuid:routing_rule_id>"): {"name": "pwned"},
    ("PATCH", "/api/v1/cases/<uuid:case_id>"): {"subject": "pwned"},
    ("POST", "/api/v1/cases/<uuid:case_id>/interactions"): {"channel": "phone"},
    ("PATCH", "/api/v1/sla-policies/<uuid:policy_id>"): {"name": "pwned"},
}


def make(api, records):
    lead = api.post("/api/v1/leads", json={"first_name": "Secret", "company": "Secret Spa"}).json
    rule = api.post("/api/v1/lead-scoring-rules", json={"name": "secret rule",
                                                        "field": "source", "points": 1}).json
    form = api.post("/api/v1/web-forms", json={"name": "secret form"}).json
    pipeline = api.post("/api/v1/pipelines", json={"name": "secret pipeline"}).json
    deal = api.post("/api/v1/deals", json={"title": "secret deal", "amount": "10",
                                           "customer_id": records["customer_id"]}).json
    target = api.post("/api/v1/sales-targets", json={
        "owner_id": str(api.users["sales"].id), "period": "month",
        "period_start": "2030-01-01", "amount": "1000"}).json
    task = api.post("/api/v1/tasks", json={"title": "secret task", "related_type": "customer",
                                           "related_id": records["customer_id"]}).json
    routing_rule = api.post("/api/v1/routing-rules", json={
        "name": "secret rule", "entity_type": "case",
        "user_ids": [str(api.users["service"].id)],
        "conditions": [{"field": "category", "value": "nothing-matches"}]}).json
    policy = api.post("/api/v1/sla-policies", json={
        "name": "secret policy", "escalation_user_id": str(api.users["admin"].id),
        "targets": {"normal": {"first_response_minutes": 60}}}).json
    case = api.post("/api/v1/cases", json={"subject": "secret case",
                                           "customer_id": records["customer_id"],
                                           "owner_id": str(api.users["service"].id)}).json
    api.post(f"/api/v1/cases/{case['id']}/interactions", json={"subject": "secret call"})
    notification = api.get("/api/v1/my-work/notifications", role="service").json
    return {
        "task_id": task["id"],
        "routing_rule_id": routing_rule["id"],
        "policy_id": policy["id"],
        "case_id": case["id"],
        "notification_id": notification[0]["id"],
        "lead_id": lead["id"],
        "rule_id": rule["id"],
        "form_id": form["id"],
        "pipeline_id": pipeline["id"],
        "deal_id": deal["id"],
        "target_id": target["id"],
    }
