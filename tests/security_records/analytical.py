"""The analytical plugin's records for the cross-tenant test."""

import io

ORDER = 20

BODIES = {
    ("PATCH", "/api/v1/segments/<uuid:segment_id>"): {"description": "pwned"},
}


def make(api, records):
    segment = api.post("/api/v1/segments", json={"name": "secret segment", "rules": [
        {"field": "orders", "op": "gte", "value": 1}]}).json
    upload = api.post("/api/v1/analytics/imports", content_type="multipart/form-data", data={
        "kind": "attributes", "columns": '{"Id": "customer_external_id"}',
        "file": (io.BytesIO(b"Id,Region\nnobody,North\n"), "secret.csv")})
    assert upload.status_code == 201, upload.json
    return {"segment_id": segment["id"], "import_id": upload.json["import_id"]}
