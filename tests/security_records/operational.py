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
    return {
        "lead_id": lead["id"],
        "rule_id": rule["id"],
        "form_id": form["id"],
        "pipeline_id": pipeline["id"],
        "deal_id": deal["id"],
        "target_id": target["id"],
    }
