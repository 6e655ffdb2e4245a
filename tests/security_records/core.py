"""The core's records for the cross-tenant test of every route with an id."""

from clientela.core import tenancy
from clientela.core.db import db

ORDER = 0

BODIES = {
    ("POST", "/api/v1/customers/<uuid:customer_id>/merge"): "merge",
    ("POST", "/api/v1/customers/<uuid:customer_id>/interactions"): {"channel": "phone"},
    ("PATCH", "/api/v1/customers/<uuid:customer_id>"): {"stage": "former"},
    ("PATCH", "/api/v1/users/<uuid:user_id>"): {"name": "pwned"},
    ("PATCH", "/api/v1/roles/<uuid:role_id>"): {"description": "pwned"},
}


def make(api, records):
    from clientela.core import jobs

    customer = api.customer(first_name="Secret", email="secret@example.com")
    interaction = api.post(f"/api/v1/customers/{customer['id']}/interactions",
                           json={"channel": "phone", "subject": "secret call"}).json
    role = api.post("/api/v1/roles", json={"name": "auditor", "permissions": {
        "audit:read": "all"}}).json
    token = api.post("/api/v1/tokens", json={"name": "secret"}).json
    with tenancy.tenant_context(api.tenant.id):
        job_id = jobs.enqueue("core.purge_finished_jobs")
        db.session.commit()
    return {
        "job_id": str(job_id),
        "customer_id": customer["id"],
        "interaction_id": interaction["id"],
        "role_id": role["id"],
        "token_id": token["id"],
        "user_id": str(api.users["sales"].id),
    }
