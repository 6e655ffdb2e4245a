"""The operational plugin's campaign records for the cross-tenant test."""

ORDER = 15

SOME_ID = "00000000-0000-4000-8000-000000000001"

BODIES = {
    ("PATCH", "/api/v1/campaigns/<uuid:campaign_id>"): {"name": "pwned"},
    ("POST", "/api/v1/campaigns/<uuid:campaign_id>/members"): {"customer_ids": [SOME_ID]},
    ("POST", "/api/v1/campaigns/<uuid:campaign_id>/preview"): {"customer_id": SOME_ID},
    ("POST", "/api/v1/campaigns/<uuid:campaign_id>/schedule"): {
        "send_at": "2030-01-01T09:00:00+00:00"},
    ("POST", "/api/v1/campaigns/<uuid:campaign_id>/responses"): {"customer_id": SOME_ID,
                                                                 "kind": "opened"},
    ("POST", "/api/v1/campaigns/<uuid:campaign_id>/deals"): {"deal_id": SOME_ID},
}


def make(api, records):
    campaign = api.post("/api/v1/campaigns", json={
        "name": "secret campaign", "subject": "Secret {{ first_name }}",
        "body": "secret offer"}).json
    api.post(f"/api/v1/campaigns/{campaign['id']}/members",
             json={"customer_ids": [records["customer_id"]]})
    if "deal_id" in records:
        api.post(f"/api/v1/campaigns/{campaign['id']}/deals",
                 json={"deal_id": records["deal_id"]})
    return {"campaign_id": campaign["id"]}
