"""The collaborative plugin's teams, inbox, consents and portal accounts, for the cross-tenant
test of every route with an id."""

ORDER = 35

BODIES = {
    ("PATCH", "/api/v1/teams/<uuid:team_id>"): {"name": "pwned"},
    ("POST", "/api/v1/teams/<uuid:team_id>/members"): {
        "user_id": "00000000-0000-7000-8000-000000000001"},
    ("PATCH", "/api/v1/teams/<uuid:team_id>/members/<uuid:user_id>"): {"is_lead": True},
    ("PATCH", "/api/v1/inbox/<uuid:item_id>"): {"status": "done"},
    ("POST", "/api/v1/inbox/<uuid:item_id>/notes"): {"body": "pwned"},
    ("POST", "/api/v1/inbox/<uuid:item_id>/reply"): {"body": "pwned"},
    ("POST", "/api/v1/customers/<uuid:customer_id>/consents"): {
        "channel": "email", "purpose": "marketing", "granted": False},
    ("PATCH", "/api/v1/portal-accounts/<uuid:account_id>"): {"status": "disabled"},
}


def make(api, records):
    team = api.post("/api/v1/teams", json={"name": "secret team", "members": [
        {"user_id": records["user_id"], "is_lead": True}]}).json
    interaction = api.post(f"/api/v1/customers/{records['customer_id']}/interactions",
                           json={"channel": "phone", "direction": "inbound",
                                 "subject": "secret question"}).json
    item = next(i for i in api.get("/api/v1/inbox?page_size=100").json
                if i["interaction_id"] == interaction["id"])
    api.post(f"/api/v1/inbox/{item['id']}/notes", json={"body": "secret note"})
    api.post(f"/api/v1/customers/{records['customer_id']}/consents", json={
        "channel": "email", "purpose": "marketing", "granted": True, "source": "secret"})
    account = api.post("/api/v1/portal-accounts", json={"customer_id": records["customer_id"]}).json
    return {"team_id": team["id"], "item_id": item["id"], "account_id": account["id"]}
