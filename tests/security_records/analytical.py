"""The analytical plugin's records for the cross-tenant test."""

ORDER = 20

BODIES = {
    ("PATCH", "/api/v1/segments/<uuid:segment_id>"): {"description": "pwned"},
}


def make(api, records):
    segment = api.post("/api/v1/segments", json={"name": "secret segment", "rules": [
        {"field": "orders", "op": "gte", "value": 1}]}).json
    return {"segment_id": segment["id"]}
