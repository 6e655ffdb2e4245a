"""Records of custom objects publish events like built-in entities: webhooks are delivered
for them (``custom:<key>.insert|update|delete``) to a real HTTP server, and automation
rules fire on them — on both backends."""

from __future__ import annotations

import pytest
from test_automations import rule, run_jobs, runs  # the real job runner of the rule tests
from test_tailormade import Receiver, delivery_jobs, run_job, subscribe, verify

from clientela.core import jobs

OBJECTS = "/api/v1/custom-objects"
FIELDS = "/api/v1/custom-fields"


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _no_leftover_jobs(app):
    yield
    jobs.queue_for(app).flush()


def ok(response, status=200):
    assert response.status_code == status, (response.status_code, response.json)
    return response.json


def vehicle_object(api) -> None:
    ok(api.post(OBJECTS, json={"key": "vehicle", "label": "Vehicle"}), 201)
    ok(api.post(FIELDS, json={"entity_type": "custom:vehicle", "key": "plate",
                              "type": "text"}), 201)
    ok(api.post(FIELDS, json={"entity_type": "custom:vehicle", "key": "km",
                              "type": "integer"}), 201)


def test_webhooks_are_delivered_for_the_records_of_a_custom_object(app, api, receiver):
    tenant_id = api.tenant.id
    vehicle_object(api)
    ok(api.post(OBJECTS, json={"key": "boat"}), 201)
    every_change = subscribe(api, receiver, ["custom:vehicle.*"])
    deletions = subscribe(api, receiver, ["custom:*.delete"])
    inserts = subscribe(api, receiver, ["*.insert"])
    customers_only = subscribe(api, receiver, ["customers.*"])
    customer = api.customer(first_name="Driver")
    for job in delivery_jobs(tenant_id):  # the customer's own deliveries
        assert run_job(app, tenant_id, job.id) == "succeeded"
    receiver.requests.clear()

    path = "/api/v1/custom/vehicle"
    record = ok(api.post(path, json={"title": "Van", "customer_id": customer["id"],
                                     "attributes": {"plate": "AB123CD", "km": 10}}), 201)
    ok(api.patch(f"{path}/{record['id']}", json={"attributes": {"km": 250}}))
    assert api.delete(f"{path}/{record['id']}").status_code == 204
    boat = ok(api.post("/api/v1/custom/boat", json={"title": "Dinghy"}), 201)
    assert api.delete(f"/api/v1/custom/boat/{boat['id']}").status_code == 204

    def logged(webhook) -> list[str]:
        return [d["event"] for d in ok(api.get(f"/api/v1/webhooks/{webhook['id']}/deliveries"))]

    assert logged(every_change) == ["custom:vehicle.delete", "custom:vehicle.update",
                                    "custom:vehicle.insert"]
    assert logged(deletions) == ["custom:boat.delete", "custom:vehicle.delete"]
    assert logged(inserts) == ["custom:boat.insert", "custom:vehicle.insert",
                               "customers.insert"]
    assert logged(customers_only) == ["customers.insert"]

    for job in delivery_jobs(tenant_id):
        if job.status == "queued":
            assert run_job(app, tenant_id, job.id) == "succeeded"
    secrets = {w["id"]: w["secret"] for w in (every_change, deletions, inserts)}
    owner = {d["id"]: w for w in secrets
             for d in ok(api.get(f"/api/v1/webhooks/{w}/deliveries"))}
    by_webhook: dict[str, list[dict]] = {}
    for request in receiver.requests:
        delivery_id = request["headers"]["X-Clientela-Delivery"]
        webhook_id = owner[delivery_id]
        by_webhook.setdefault(webhook_id, []).append(verify(request, secrets[webhook_id]))
    assert len(receiver.requests) == 7
    sent = {p["event"]: p for p in by_webhook[every_change["id"]]}
    assert set(sent) == {"custom:vehicle.insert", "custom:vehicle.update",
                         "custom:vehicle.delete"}
    created = sent["custom:vehicle.insert"]
    assert created["entity_type"] == "custom:vehicle" and created["entity_id"] == record["id"]
    assert created["data"]["title"] == "Van"
    assert created["data"]["attributes"] == {"plate": "AB123CD", "km": 10}
    assert created["data"]["customer_id"] == customer["id"]
    assert "tenant_id" not in created["data"]
    assert sent["custom:vehicle.update"]["changes"]["attributes"] == [
        {"plate": "AB123CD", "km": 10}, {"plate": "AB123CD", "km": 250}]
    assert [r["headers"]["X-Clientela-Event"] for r in receiver.requests].count(
        "custom:vehicle.delete") == 2


def test_webhook_subscriptions_to_custom_objects_are_checked(api):
    vehicle_object(api)
    response = api.post("/api/v1/webhooks", json={
        "url": "https://example.com/hook",
        "events": ["custom:boat.insert", "custom:vehicle.explode", "custom:Vehicle.*",
                   "custom:vehicle.insert", "custom:*.*"]})
    assert response.status_code == 422
    assert response.json["errors"]["json"]["events"] == [
        "'custom:boat.insert': unknown custom object 'boat'",
        "'custom:vehicle.explode': use <entity type>.<insert|update|delete|*>, or *",
        "'custom:Vehicle.*': use <entity type>.<insert|update|delete|*>, or *"]
    good = api.post("/api/v1/webhooks", json={"url": "https://example.com/hook",
                                              "events": ["custom:vehicle.insert", "custom:*.*"]})
    assert good.status_code == 201, good.json


def test_rules_fire_on_custom_object_updates_with_a_field_change(app, api):
    vehicle_object(api)
    service = str(api.users["service"].id)
    watched = rule(api, trigger="updated", entity_type="custom:vehicle",
                   trigger_field="attributes.km",
                   conditions={"field": "attributes.km", "op": "gte", "value": 100000},
                   actions=[{"type": "assign_owner", "params": {"owner_id": service}}])
    path = "/api/v1/custom/vehicle"
    record = ok(api.post(path, json={"title": "Old van", "attributes": {"km": 99000}}), 201)
    ok(api.patch(f"{path}/{record['id']}", json={"title": "Old white van"}))  # km unchanged
    assert run_jobs(app, api.tenant.id) == []
    ok(api.patch(f"{path}/{record['id']}", json={"attributes": {"km": 99500}}))  # too few
    assert run_jobs(app, api.tenant.id) == ["succeeded"]
    assert ok(api.get(f"{path}/{record['id']}"))["owner_id"] != service
    ok(api.patch(f"{path}/{record['id']}", json={"attributes": {"km": 100500}}))
    assert run_jobs(app, api.tenant.id) == ["succeeded"]
    assert [(r["status"], r["event"], r["entity_type"]) for r in runs(api, watched["id"])] == [
        ("succeeded", "custom:vehicle.update", "custom:vehicle"),
        ("not_matched", "custom:vehicle.update", "custom:vehicle")]
    assert ok(api.get(f"{path}/{record['id']}"))["owner_id"] == service
