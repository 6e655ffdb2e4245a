"""The tailor-made plugin's records for the cross-tenant test.

Last (ORDER 100): once the webhook exists, this tenant's later writes are delivered to it.
"""

ORDER = 100

BODIES = {
    ("PATCH", "/api/v1/custom-fields/<uuid:field_id>"): {"label": "pwned"},
    ("PATCH", "/api/v1/webhooks/<uuid:webhook_id>"): {"description": "pwned"},
    ("PATCH", "/api/v1/custom-objects/<uuid:object_id>"): {"label": "pwned"},
    ("POST", "/api/v1/custom/<object>"): {"title": "pwned"},
    ("PATCH", "/api/v1/custom/<object>/<uuid:record_id>"): {"title": "pwned"},
    ("PATCH", "/api/v1/automations/<uuid:rule_id>"): {"active": False},
    ("PATCH", "/api/v1/import-mappings/<uuid:mapping_id>"): {"name": "pwned"},
}


def make(api, records):
    field = api.post("/api/v1/custom-fields", json={"entity_type": "customers",
                                                    "key": "secret_code", "type": "text"}).json
    # a custom object whose key (the <object> of /api/v1/custom/<object>) only this tenant has
    obj = api.post("/api/v1/custom-objects", json={"key": "secret_vault"}).json
    record = api.post("/api/v1/custom/secret_vault", json={
        "title": "secret record", "customer_id": records["customer_id"]}).json
    rule = api.post("/api/v1/automations", json={
        "name": "secret rule", "trigger": "updated", "entity_type": "customers",
        "actions": [{"type": "add_tag", "params": {"tag": "secret"}}]}).json
    mapping = api.post("/api/v1/import-mappings", json={
        "name": "secret mapping", "columns": {"Mail": "email"}}).json
    webhook = api.post("/api/v1/webhooks", json={"url": "https://example.com/secret",
                                                 "events": ["customers.insert"]}).json
    api.customer(first_name="Secret delivery")
    delivery = api.get(f"/api/v1/webhooks/{webhook['id']}/deliveries").json[0]
    return {"field_id": field["id"], "webhook_id": webhook["id"],
            "delivery_id": delivery["id"], "object_id": obj["id"], "object": obj["key"],
            "record_id": record["id"], "rule_id": rule["id"], "mapping_id": mapping["id"]}
