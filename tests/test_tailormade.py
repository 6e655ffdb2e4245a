"""The tailor-made plugin through HTTP, on both backends: custom fields, filters, webhooks."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.server
import json
import threading
import uuid

import pytest
import sqlalchemy as sa

from clientela.core import jobs, tenancy
from clientela.core.db import db
from clientela.core.models import AuditEvent, Job

FIELDS = "/api/v1/custom-fields"


def define(api, key, type_, entity_type="customers", expect=201, **options):
    response = api.post(FIELDS, json={"entity_type": entity_type, "key": key, "type": type_,
                                      **options})
    assert response.status_code == expect, response.json
    return response.json


def create_customer(api, expect=201, **attributes):
    response = api.post("/api/v1/customers", json={"first_name": "Field", "attributes":
                                                   attributes})
    assert response.status_code == expect, response.json
    return response.json


def field_errors(response) -> dict:
    assert response.status_code == 422, response.json
    return response.json["errors"]["json"]


# --- every type: valid and invalid values -----------------------------------------------

TYPES = [
    # (type, options, valid values, invalid values)
    ("text", {"max": 5}, ["abc", "abcde"], [5, "abcdef", ["a"]]),
    ("long_text", {}, ["many words " * 200], [True, "x" * 100_001]),
    ("integer", {"min": 1, "max": 10}, [1, 10], [0, 11, 2.5, "3", True]),
    ("decimal", {"min": "0.5", "max": 99}, [0.5, "12.25", 99], [0.4, "abc", 100, False]),
    ("boolean", {}, [True, False], ["yes", 1]),
    ("date", {"min": "2020-01-01"}, ["2020-01-01", "2026-11-23"],
     ["2019-12-31", "23/11/2026", "2026-02-30", 20260101]),
    ("datetime", {"max": "2030-01-01T00:00:00Z"}, ["2026-11-23T09:30:00Z",
                                                    "2026-11-23T10:30:00+01:00"],
     ["2026-11-23T09:30:00", "2031-01-01T00:00:00Z", "soon"]),
    ("single_choice", {"choices": ["gold", "silver"]}, ["gold"], ["bronze", ["gold"]]),
    ("multiple_choice", {"choices": ["a", "b", "c"], "max": 2}, [["a"], ["a", "c"]],
     [["d"], ["a", "a"], ["a", "b", "c"], "a"]),
    ("email", {}, ["ada@example.com"], ["ada", "ada@", 7]),
    ("url", {}, ["https://example.com/x", "http://intranet.local"],
     ["ftp://example.com", "example.com", "javascript:alert(1)"]),
    ("phone", {}, ["+390612345678"], ["06 1234 5678", "+39 06 1234 5678", "+999"]),
]


@pytest.mark.parametrize(("type_", "options", "valid", "invalid"), TYPES,
                         ids=[t[0] for t in TYPES])
def test_every_field_type_accepts_its_values_and_refuses_others(api, type_, options, valid,
                                                                 invalid):
    define(api, "value", type_, **options)
    for value in valid:
        created = create_customer(api, value=value)
        assert created["attributes"]["value"] == value
    for value in invalid:
        response = api.post("/api/v1/customers", json={"first_name": "Bad",
                                                        "attributes": {"value": value}})
        errors = field_errors(response)
        assert list(errors) == ["attributes.value"], (value, errors)
    # an update is checked as an insert is
    customer = create_customer(api, value=valid[0])
    response = api.patch(f"/api/v1/customers/{customer['id']}",
                         json={"attributes": {"value": invalid[0]}})
    assert "attributes.value" in field_errors(response)


def test_a_definition_must_be_consistent(api):
    bad = [
        ({"key": "Bad Key", "type": "text"}, "key"),
        ({"key": "x", "type": "colour"}, "type"),
        ({"key": "x", "type": "single_choice"}, "choices"),
        ({"key": "x", "type": "text", "choices": ["a"]}, "choices"),
        ({"key": "x", "type": "boolean", "min": 1}, "min"),
        ({"key": "x", "type": "integer", "min": 5, "max": 1}, "max"),
        ({"key": "x", "type": "text", "pattern": "("}, "pattern"),
        ({"key": "x", "type": "integer", "pattern": "^1$"}, "pattern"),
        ({"key": "x", "type": "reference"}, "target"),
        ({"key": "x", "type": "reference", "target": "jobs"}, "target"),
        ({"key": "x", "type": "integer", "default": "ten"}, "default"),
        ({"key": "x", "type": "text", "unique": True, "default": "a"}, "default"),
        ({"key": "x", "type": "text", "entity_type": "nothing"}, "entity_type"),
    ]
    for body, field in bad:
        response = api.post(FIELDS, json={"entity_type": "customers", **body})
        assert response.status_code == 422, body
        assert field in response.json["errors"]["json"], (body, response.json)
    define(api, "vat_number", "text")
    assert api.post(FIELDS, json={"entity_type": "customers", "key": "vat_number",
                                  "type": "text"}).status_code == 409


def test_required_default_min_max_pattern_and_unique(api):
    define(api, "vat_number", "text", required=True, unique=True,
           pattern=r"[A-Z]{2}[0-9]{5,11}", min=7, max=13, label="VAT number")
    define(api, "tier", "single_choice", choices=["gold", "silver"], default="silver")
    define(api, "score", "integer", default=0, min=0, max=100)

    errors = field_errors(api.post("/api/v1/customers", json={"first_name": "No VAT"}))
    assert errors == {"attributes.vat_number": ["is required"]}
    errors = field_errors(api.post("/api/v1/customers", json={
        "first_name": "Bad", "attributes": {"vat_number": "it1234567", "score": 101}}))
    assert errors["attributes.vat_number"] == [r"must match the pattern [A-Z]{2}[0-9]{5,11}"]
    assert errors["attributes.score"] == ["must be at most 100"]
    assert "at least 7 characters" in field_errors(api.post("/api/v1/customers", json={
        "first_name": "Short", "attributes": {"vat_number": "IT1234"}}))[
        "attributes.vat_number"][0]

    # defaults are written on insert, for the reader and in the audit trail
    first = create_customer(api, vat_number="IT12345678")
    assert first["attributes"] == {"vat_number": "IT12345678", "tier": "silver", "score": 0}
    assert api.get(f"/api/v1/customers/{first['id']}").json["attributes"]["tier"] == "silver"
    audit = api.get(f"/api/v1/audit?entity_id={first['id']}").json
    assert any(e["changes"].get("attributes", [None, {}])[1].get("tier") == "silver"
               for e in audit)
    # an explicit value wins over the default
    gold = create_customer(api, vat_number="IT87654321", tier="gold", score=7)
    assert gold["attributes"]["tier"] == "gold" and gold["attributes"]["score"] == 7

    # unique within the tenant, on insert and on update
    errors = field_errors(api.post("/api/v1/customers", json={
        "first_name": "Copy", "attributes": {"vat_number": "IT12345678"}}))
    assert errors == {"attributes.vat_number": ["is already used by another record"]}
    response = api.patch(f"/api/v1/customers/{gold['id']}",
                         json={"attributes": {"vat_number": "IT12345678"}})
    assert field_errors(response) == {"attributes.vat_number": [
        "is already used by another record"]}
    # saving a record again with its own value is fine; removing a required value is not
    response = api.patch(f"/api/v1/customers/{gold['id']}", json={"attributes": {
        **gold["attributes"], "score": 8}})
    assert response.status_code == 200, response.json
    response = api.patch(f"/api/v1/customers/{gold['id']}", json={"attributes": {"tier": "gold"}})
    assert field_errors(response) == {"attributes.vat_number": ["is required"]}


def test_another_tenant_may_use_the_same_unique_value(api, other_api):
    define(api, "vat_number", "text", unique=True)
    define(other_api, "vat_number", "text", unique=True)
    create_customer(api, vat_number="IT1")
    create_customer(other_api, vat_number="IT1")


def test_fields_on_interactions_and_plugin_entities(api):
    types = {f["entity_type"] for f in [define(api, "mood", "single_choice",
                                              entity_type="interactions",
                                              choices=["happy", "angry"])]}
    assert types == {"interactions"}
    customer = create_customer(api)
    path = f"/api/v1/customers/{customer['id']}/interactions"
    bad = api.post("/api/v1/interactions", json={"customer_id": customer["id"],
                                                 "channel": "phone"})
    assert bad.status_code == 201  # not required
    response = api.post(path, json={"channel": "phone"})
    assert response.status_code == 201
    # interactions take attributes through services; check through the validate hook
    from clientela.core.models import Interaction

    with tenancy.tenant_context(api.tenant.id):
        interaction = db.session.execute(sa.select(Interaction).where(
            Interaction.id == uuid.UUID(response.json["id"]))).scalar_one()
        interaction.attributes = {"mood": "sleepy"}
        with pytest.raises(Exception) as raised:
            db.session.commit()
        assert raised.value.errors == {"attributes.mood": ["must be one of happy, angry"]}
        db.session.rollback()
    # every registered business entity can have fields; bookkeeping tables cannot
    from flask import current_app

    models = current_app.extensions["clientela"].models
    plugin_tables = [name for name in models if name.startswith("operational_")]
    if plugin_tables:
        define(api, "region", "text", entity_type=plugin_tables[0])
    define(api, "x", "text", entity_type="audit_events", expect=422)


def test_a_reference_must_name_a_record_of_the_same_tenant(api, other_api):
    define(api, "account_manager", "reference", target="users")
    define(api, "parent", "reference", target="customers")
    mine = create_customer(api)
    theirs = other_api.customer(first_name="Theirs")
    user = str(api.users["sales"].id)
    created = create_customer(api, parent=mine["id"], account_manager=user)
    assert created["attributes"]["parent"] == mine["id"]
    errors = field_errors(api.post("/api/v1/customers", json={
        "first_name": "Cross", "attributes": {"parent": theirs["id"]}}))
    assert errors == {"attributes.parent": ["no customers record with this id"]}
    errors = field_errors(api.post("/api/v1/customers", json={
        "first_name": "Cross", "attributes": {
            "account_manager": str(other_api.users["sales"].id), "parent": "not-an-id"}}))
    assert errors == {"attributes.account_manager": ["no users record with this id"],
                      "attributes.parent": ["must be the id of a record"]}


# --- changing and removing fields ------------------------------------------------------


def test_a_type_change_that_cannot_convert_values_is_refused_with_a_report(api):
    field = define(api, "employees", "text")
    numbers = [create_customer(api, employees=v) for v in ("12", " 40 ", "7")]
    words = create_customer(api, employees="about fifty")
    path = f"{FIELDS}/{field['id']}"
    response = api.patch(path, json={"type": "integer"})
    assert response.status_code == 409, response.json
    report = response.json["errors"]["report"]
    assert report["records"] == 4 and report["refused"] == 1
    assert report["problems"] == [{"id": words["id"], "value": "about fifty",
                                   "error": "must be a number"}]
    assert api.get(path).json["type"] == "text"  # nothing changed
    assert api.get(f"/api/v1/customers/{numbers[0]['id']}").json["attributes"] == {
        "employees": "12"}
    # a dry run reports without writing
    fixed = api.patch(f"/api/v1/customers/{words['id']}", json={"attributes": {
        "employees": "50"}})
    assert fixed.status_code == 200
    dry = api.patch(f"{path}?dry_run=true", json={"type": "integer"})
    assert dry.status_code == 200 and dry.json["report"]["converted"] == 4
    assert dry.json["field"]["type"] == "text"
    # then the change converts every value, audited
    done = api.patch(path, json={"type": "integer", "min": 1})
    assert done.status_code == 200, done.json
    assert done.json["field"]["type"] == "integer" and done.json["report"]["converted"] == 4
    values = [api.get(f"/api/v1/customers/{c['id']}").json["attributes"]["employees"]
              for c in numbers]
    assert values == [12, 40, 7]
    audit = api.get(f"/api/v1/audit?entity_id={numbers[0]['id']}&action=update").json
    assert audit[0]["changes"]["attributes"] == [{"employees": "12"}, {"employees": 12}]
    # narrowing the choices or the bounds is checked the same way
    tight = api.patch(path, json={"max": 20})
    assert tight.status_code == 409
    assert {p["value"] for p in tight.json["errors"]["report"]["problems"]} == {40, 50}
    # making it unique while two records share a value is refused too
    create_customer(api, employees=7)
    twins = api.patch(path, json={"unique": True})
    assert twins.status_code == 409
    assert "the field cannot be unique" in twins.json["errors"]["report"]["problems"][0]["error"]


def test_a_new_field_must_fit_the_values_already_stored_under_its_key(api):
    create_customer(api, size="large")
    response = api.post(FIELDS, json={"entity_type": "customers", "key": "size",
                                      "type": "integer"})
    assert response.status_code == 409
    assert response.json["errors"]["report"]["problems"][0]["value"] == "large"
    define(api, "size", "single_choice", choices=["small", "large"])


def test_removing_a_field_keeps_its_values_unless_purged(api):
    kept = define(api, "nickname", "text", max=3)
    customer = create_customer(api, nickname="Ada", colour="red")
    assert api.delete(f"{FIELDS}/{kept['id']}").status_code == 204
    assert api.get(f"{FIELDS}/{kept['id']}").status_code == 404
    assert api.get(f"/api/v1/customers/{customer['id']}").json["attributes"]["nickname"] == "Ada"
    # no longer checked
    create_customer(api, nickname="a very long nickname")
    purged = define(api, "colour", "text")
    assert api.delete(f"{FIELDS}/{purged['id']}?purge=true").status_code == 204
    assert api.get(f"/api/v1/customers/{customer['id']}").json["attributes"] == {
        "nickname": "Ada"}


def test_only_admins_define_fields_and_everyone_reads_them(api):
    define(api, "vat_number", "text")
    assert api.get(FIELDS, role="analyst").status_code == 200
    assert [f["key"] for f in api.get(f"{FIELDS}?entity_type=customers", role="sales").json] \
        == ["vat_number"]
    response = api.post(FIELDS, json={"entity_type": "customers", "key": "x", "type": "text"},
                        role="manager")
    assert response.status_code == 403


# --- filtering and sorting customers by custom attributes ---------------------------------


def test_customers_filter_and_sort_by_custom_attributes(api, other_api):
    define(api, "score", "integer")
    define(api, "revenue", "decimal")
    define(api, "signed_on", "date")
    define(api, "vip", "boolean")
    define(api, "seen_at", "datetime")
    define(api, "sectors", "multiple_choice", choices=["retail", "banking", "food"])
    rows = [
        ("Ann", {"vat_number": "IT123", "score": 9, "revenue": "100.50", "signed_on":
                 "2026-01-15", "vip": True, "seen_at": "2026-11-23T10:00:00+01:00",
                 "sectors": ["retail", "food"]}),
        ("Bob", {"vat_number": "DE9", "score": 10, "revenue": 99.5, "signed_on": "2025-12-31",
                 "vip": False, "seen_at": "2026-11-23T09:30:00Z", "sectors": ["banking"]}),
        ("Cid", {"score": 100}),
        ("Dee", {}),
    ]
    for name, attributes in rows:
        assert api.post("/api/v1/customers", json={"first_name": name,
                                                   "attributes": attributes}).status_code == 201
    other_api.post("/api/v1/customers", json={"first_name": "Eve",
                                              "attributes": {"vat_number": "IT123"}})

    def names(query):
        response = api.get(f"/api/v1/customers?{query}")
        assert response.status_code == 200, (query, response.json)
        return [c["display_name"] for c in response.json]

    assert names("attr.vat_number=IT123") == ["Ann"]  # untyped: text
    assert names("attr.score=10") == ["Bob"]
    assert names("attr.score.gte=10&sort=attr.score") == ["Bob", "Cid"]  # numeric, not text
    assert names("sort=-attr.score") == ["Cid", "Bob", "Ann", "Dee"]  # missing values last
    assert names("sort=attr.score") == ["Ann", "Bob", "Cid", "Dee"]
    assert names("attr.revenue.gt=100") == ["Ann"]
    assert names("attr.revenue=99.5") == ["Bob"]
    assert names("attr.signed_on.lt=2026-01-01") == ["Bob"]
    assert names("sort=attr.signed_on&attr.signed_on.gte=2000-01-01") == ["Bob", "Ann"]
    assert names("attr.vip=true") == ["Ann"]
    assert names("attr.vip=false") == ["Bob"]
    # 10:00+01:00 is 09:00Z, before Bob's 09:30Z
    assert names("sort=attr.seen_at&attr.seen_at.lte=2026-11-23T09:30:00Z") == ["Ann", "Bob"]
    assert names("attr.sectors=food") == ["Ann"]
    assert names("attr.sectors=banking&attr.score=10") == ["Bob"]
    for query, parameter in (("attr.score=ten", "attr.score"),
                             ("attr.score.near=1", "attr.score.near"),
                             ("attr.bad-key=1", "attr.bad-key"),
                             ("attr.signed_on=tomorrow", "attr.signed_on")):
        response = api.get(f"/api/v1/customers?{query}")
        assert response.status_code == 422, query
        assert parameter in response.json["errors"]["query"], response.json
    assert api.get("/api/v1/customers?sort=attr.x;drop").status_code == 422


# --- webhooks --------------------------------------------------------------------------------


class Receiver:
    """A real HTTP server on 127.0.0.1 in a thread: records requests, answers as planned."""

    def __init__(self):
        self.requests: list[dict] = []
        self.plan: list[int] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers),
                                          "body": body})
                status = receiver.plan.pop(0) if receiver.plan else 200
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(f"answered {status}".encode())

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def delivery_jobs(tenant_id) -> list:
    """The delivery jobs of the tenant: (id, status, run_at), oldest first."""
    db.session.rollback()
    with tenancy.tenant_context(tenant_id):
        rows = db.session.execute(sa.select(Job.id, Job.status, Job.run_at).where(
            Job.name == "tailormade.deliver_webhook").order_by(Job.created_at)).all()
    db.session.rollback()
    return rows


def run_job(app, tenant_id, job_id) -> str | None:
    """Run one job now, in this thread, as a consumer would."""
    return jobs.queue_for(app).run(tenant_id, job_id)


def subscribe(api, receiver, events, **extra) -> dict:
    response = api.post("/api/v1/webhooks", json={"url": receiver.url, "events": events,
                                                  **extra})
    assert response.status_code == 201, response.json
    return response.json


def verify(request, secret) -> dict:
    """What a receiver does: check the signature over timestamp and body."""
    timestamp = request["headers"]["X-Clientela-Timestamp"]
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + request["body"],
                                    hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request["headers"]["X-Clientela-Signature"], expected)
    return json.loads(request["body"])


def test_a_webhook_is_delivered_signed_to_a_real_server(app, api, receiver):
    tenant_id = api.tenant.id
    webhook = subscribe(api, receiver, ["customers.insert", "interactions.*"])
    assert webhook["secret"].startswith("whsec_")
    assert "secret" not in api.get(f"/api/v1/webhooks/{webhook['id']}").json
    customer = create_customer(api, vat_number="IT1")
    api.patch(f"/api/v1/customers/{customer['id']}", json={"stage": "customer"})  # not subscribed
    api.post(f"/api/v1/customers/{customer['id']}/interactions", json={"channel": "email"})

    log = api.get(f"/api/v1/webhooks/{webhook['id']}/deliveries").json
    assert [(d["event"], d["status"]) for d in log] == [("interactions.insert", "pending"),
                                                       ("customers.insert", "pending")]
    pending = delivery_jobs(tenant_id)
    assert len(pending) == 2
    for job in pending:
        assert run_job(app, tenant_id, job.id) == "succeeded"

    assert len(receiver.requests) == 2
    first = verify(receiver.requests[0], webhook["secret"])
    assert first["event"] == "customers.insert"
    assert first["entity_id"] == customer["id"]
    assert first["data"]["attributes"] == {"vat_number": "IT1"}
    assert "tenant_id" not in first["data"]
    assert receiver.requests[0]["headers"]["X-Clientela-Event"] == "customers.insert"
    assert receiver.requests[0]["headers"]["X-Clientela-Delivery"] == first["id"]
    # a wrong secret does not verify
    with pytest.raises(AssertionError):
        verify(receiver.requests[0], "whsec_not-the-secret")

    log = api.get(f"/api/v1/webhooks/{webhook['id']}/deliveries?status=succeeded").json
    assert len(log) == 2
    assert all(d["response_status"] == 200 and d["attempts"] == 1 and d["delivered_at"]
               for d in log)
    assert log[1]["response_body"] == "answered 200"


def test_a_failed_delivery_is_retried_with_backoff_then_succeeds(app, api, receiver):
    tenant_id = api.tenant.id
    webhook = subscribe(api, receiver, ["customers.*"], secret="a-shared-secret-of-ours")
    receiver.plan = [500, 503]
    create_customer(api)
    (job,) = delivery_jobs(tenant_id)
    before = dt.datetime.now(dt.timezone.utc)
    assert run_job(app, tenant_id, job.id) == "failed"
    (row,) = delivery_jobs(tenant_id)
    # the job runner's backoff: 30 s after the first failure, 60 s after the second
    assert dt.timedelta(seconds=29) < row.run_at - before < dt.timedelta(seconds=32)
    (delivery,) = api.get(f"/api/v1/webhooks/{webhook['id']}/deliveries").json
    assert (delivery["status"], delivery["attempts"], delivery["response_status"]) == (
        "retrying", 1, 500)
    assert delivery["error"] == "the receiver answered HTTP 500"
    before = dt.datetime.now(dt.timezone.utc)
    assert run_job(app, tenant_id, job.id) == "failed"
    (row,) = delivery_jobs(tenant_id)
    assert dt.timedelta(seconds=59) < row.run_at - before < dt.timedelta(seconds=62)
    assert run_job(app, tenant_id, job.id) == "succeeded"
    (delivery,) = api.get(f"/api/v1/webhooks/{webhook['id']}/deliveries").json
    assert (delivery["status"], delivery["attempts"], delivery["response_status"]) == (
        "succeeded", 3, 200)
    assert delivery["error"] is None
    assert len(receiver.requests) == 3
    # the receiver can tell a retry by the delivery id, which stays the same
    assert len({r["headers"]["X-Clientela-Delivery"] for r in receiver.requests}) == 1
    verify(receiver.requests[-1], "a-shared-secret-of-ours")


def test_a_delivery_that_keeps_failing_ends_failed(app, api, receiver):
    tenant_id = api.tenant.id
    subscribe(api, receiver, ["*"])
    receiver.plan = [500] * 10
    create_customer(api)
    (job,) = delivery_jobs(tenant_id)
    statuses = [run_job(app, tenant_id, job.id) for _ in range(7)]
    assert statuses == ["failed"] * 6 + ["dead"]
    with tenancy.tenant_context(tenant_id):
        from clientela.plugins.tailormade.models import WebhookDelivery

        delivery = db.session.execute(sa.select(WebhookDelivery)).scalar_one()
        assert (delivery.status, delivery.attempts) == ("failed", 7)
    db.session.rollback()


def test_unreachable_receivers_and_disabled_webhooks(app, api, receiver):
    tenant_id = api.tenant.id
    webhook = subscribe(api, receiver, ["customers.insert"])
    receiver.close()  # nobody listens any more
    create_customer(api)
    (job,) = delivery_jobs(tenant_id)
    assert run_job(app, tenant_id, job.id) == "failed"
    (delivery,) = api.get(f"/api/v1/webhooks/{webhook['id']}/deliveries").json
    assert delivery["status"] == "retrying" and delivery["response_status"] is None
    assert "Connection refused" in delivery["error"] or "URLError" in delivery["error"]
    # switched off: no new deliveries
    assert api.patch(f"/api/v1/webhooks/{webhook['id']}", json={"active": False}).json[
        "active"] is False
    create_customer(api)
    assert len(api.get(f"/api/v1/webhooks/{webhook['id']}/deliveries").json) == 1


def test_private_addresses_can_be_refused(app, api, receiver, monkeypatch):
    tenant_id = api.tenant.id
    monkeypatch.setitem(app.config, "TAILORMADE_WEBHOOK_ALLOW_PRIVATE", False)
    webhook = subscribe(api, receiver, ["customers.insert"])
    create_customer(api)
    (job,) = delivery_jobs(tenant_id)
    assert run_job(app, tenant_id, job.id) == "failed"
    (delivery,) = api.get(f"/api/v1/webhooks/{webhook['id']}/deliveries").json
    assert "non-public address 127.0.0.1" in delivery["error"]
    assert receiver.requests == []


def test_webhook_subscriptions_are_checked(api):
    for body, field in (
        ({"url": "ftp://example.com/x", "events": ["*"]}, "url"),
        ({"url": "file:///etc/passwd", "events": ["*"]}, "url"),
        ({"url": "https://user:pw@example.com/", "events": ["*"]}, "url"),
        ({"url": "https://example.com/", "events": ["customers.created"]}, "events"),
        ({"url": "https://example.com/", "events": ["nothing.insert"]}, "events"),
        ({"url": "https://example.com/", "events": []}, "events"),
        ({"url": "https://example.com/", "events": ["*"], "secret": "short"}, "secret"),
    ):
        response = api.post("/api/v1/webhooks", json=body)
        assert response.status_code == 422, body
        assert field in response.json["errors"]["json"], (body, response.json)
    for role in ("manager", "sales", "analyst"):
        assert api.get("/api/v1/webhooks", role=role).status_code == 403
        assert api.post("/api/v1/webhooks", json={"url": "https://example.com/",
                                                  "events": ["*"]}, role=role).status_code == 403


def test_webhooks_belong_to_their_tenant(app, api, other_api, receiver):
    mine = subscribe(api, receiver, ["*"])
    assert other_api.get("/api/v1/webhooks").json == []
    for method in ("get", "delete"):
        assert getattr(other_api, method)(f"/api/v1/webhooks/{mine['id']}").status_code == 404
    assert other_api.get(f"/api/v1/webhooks/{mine['id']}/deliveries").status_code == 404
    # another tenant's changes are not delivered to my webhook
    other_api.customer(first_name="Theirs")
    assert delivery_jobs(other_api.tenant.id) == []
    assert api.get(f"/api/v1/webhooks/{mine['id']}/deliveries").json == []
    field = define(api, "vat_number", "text")
    assert other_api.get(FIELDS).json == []
    assert other_api.get(f"{FIELDS}/{field['id']}").status_code == 404
    # fields of one tenant do not check the records of another
    other_api.customer(first_name="Free", attributes={"vat_number": 12})


def test_erasure_redacts_delivery_payloads_and_export_lists_them(app, api, receiver):
    webhook = subscribe(api, receiver, ["customers.*", "interactions.insert"])
    customer = create_customer(api, vat_number="IT99")
    api.post(f"/api/v1/customers/{customer['id']}/interactions", json={
        "channel": "email", "subject": "private matters"})
    exported = api.get(f"/api/v1/customers/{customer['id']}/export").json
    assert len(exported["plugins"]["webhook_deliveries"]) == 2
    erased = api.post(f"/api/v1/customers/{customer['id']}/erase")
    assert erased.status_code == 200, erased.json
    assert erased.json["plugins"]["tailormade"] == {"webhook_deliveries_redacted": 2,
                                                    "custom_records_anonymised": 0}
    log = api.get(f"/api/v1/webhooks/{webhook['id']}/deliveries").json
    about = [d for d in log if d["payload"] == {"redacted": "erased"}]
    assert len(about) == 2
    assert "private matters" not in json.dumps(log)


def test_deleting_a_webhook_deletes_its_log(app, api, receiver):
    tenant_id = api.tenant.id
    webhook = subscribe(api, receiver, ["*"])
    create_customer(api)
    assert api.delete(f"/api/v1/webhooks/{webhook['id']}").status_code == 204
    assert api.get(f"/api/v1/webhooks/{webhook['id']}/deliveries").status_code == 404
    # its pending job finds nothing to deliver and succeeds
    (job,) = delivery_jobs(tenant_id)
    assert run_job(app, tenant_id, job.id) == "succeeded"
    assert receiver.requests == []


def test_audit_keeps_the_defaults_written_on_insert(api):
    define(api, "tier", "text", default="basic")
    customer = create_customer(api)
    with tenancy.tenant_context(api.tenant.id):
        events = db.session.execute(sa.select(AuditEvent).where(
            AuditEvent.entity_id == uuid.UUID(customer["id"])).order_by(
            AuditEvent.created_at)).scalars().all()
        assert [e.action for e in events] == ["insert", "update"]
        assert events[1].changes == {"attributes": [{}, {"tier": "basic"}]}
    db.session.rollback()


def test_a_webhook_failing_again_and_again_is_switched_off_and_can_be_redelivered(
        app, api, receiver, monkeypatch):
    tenant_id = api.tenant.id
    monkeypatch.setitem(app.config, "TAILORMADE_WEBHOOK_DISABLE_AFTER", 2)
    webhook = subscribe(api, receiver, ["customers.insert"])
    path = f"/api/v1/webhooks/{webhook['id']}"
    receiver.plan = [500] * 14
    create_customer(api)
    create_customer(api)
    for job in delivery_jobs(tenant_id):
        statuses = [run_job(app, tenant_id, job.id) for _ in range(7)]
        assert statuses[-1] == "dead"
    shown = api.get(path).json
    assert shown["active"] is False and shown["consecutive_failures"] == 2
    assert shown["disabled_reason"] == "switched off after 2 deliveries in a row failed"
    create_customer(api)  # switched off: not delivered
    log = api.get(f"{path}/deliveries").json
    assert [d["status"] for d in log] == ["failed", "failed"]
    # switched on again, a failed delivery is sent again by hand, as a new delivery
    assert api.patch(path, json={"active": True}).json["consecutive_failures"] == 0
    again = api.post(f"{path}/deliveries/{log[0]['id']}/redeliver")
    assert again.status_code == 201, again.json
    assert again.json["status"] == "pending" and again.json["id"] != log[0]["id"]
    assert again.json["payload"]["redelivery_of"] == log[0]["id"]
    (job,) = [j for j in delivery_jobs(tenant_id) if j.status == "queued"]
    assert run_job(app, tenant_id, job.id) == "succeeded"
    body = verify(receiver.requests[-1], webhook["secret"])
    assert body["id"] == again.json["id"] and body["event"] == "customers.insert"
    assert api.get(f"{path}/deliveries?status=succeeded").json[0]["id"] == again.json["id"]
    assert api.post(f"{path}/deliveries/{uuid.uuid4()}/redeliver").status_code == 404


def test_an_import_checks_custom_fields_and_needs_required_values_in_the_file(api):
    from clientela.core import transfer

    define(api, "tier", "single_choice", choices=["gold", "silver"], required=True,
           default="silver")
    define(api, "vat_number", "text", unique=True)
    create_customer(api, vat_number="IT1")
    csv = ("first_name,attributes.tier,attributes.vat_number\n"
           "Ann,gold,IT2\nBob,bronze,IT3\nCid,,IT4\nDee,silver,IT1\n")
    with tenancy.tenant_context(api.tenant.id):
        report = transfer.import_customers(csv, filename="c.csv", match="none")
    assert (report.created, report.failed) == (1, 3)
    assert [(e.row, e.field, e.message) for e in report.errors] == [
        (3, "attributes.tier", "must be one of gold, silver"),
        # an import writes no defaults, so a required value must be in the file
        (4, "attributes.tier", "is required"),
        (5, "attributes.vat_number", "is already used by another record"),
    ]


def test_housekeeping_sends_stranded_deliveries_once_and_purges_old_ones(app, api, receiver):
    from clientela.plugins.tailormade import webhooks
    from clientela.plugins.tailormade.models import WebhookDelivery

    tenant_id = api.tenant.id
    webhook = subscribe(api, receiver, ["customers.insert"])
    create_customer(api)
    create_customer(api)
    stranded, old = [d["id"] for d in api.get(
        f"/api/v1/webhooks/{webhook['id']}/deliveries").json]
    db.session.rollback()
    with tenancy.tenant_context(tenant_id):
        # as if a crash had lost the first one's job, and the second were 40 days old
        db.session.execute(sa.delete(Job).where(Job.idempotency_key == f"webhook-delivery:"
                                                                       f"{stranded}"))
        for delivery_id, age in ((stranded, dt.timedelta(minutes=11)),
                                 (old, dt.timedelta(days=40))):
            db.session.execute(sa.update(WebhookDelivery).where(
                WebhookDelivery.id == uuid.UUID(delivery_id)).values(
                created_at=dt.datetime.now(dt.timezone.utc) - age))
        db.session.commit()
        assert webhooks.housekeeping() == {"checked": 1, "purged": 1}
        db.session.commit()
        assert webhooks.housekeeping() == {"checked": 1, "purged": 0}  # no second job
        db.session.commit()
    # the purged delivery's job finds nothing to send; the stranded one is sent once
    assert [run_job(app, tenant_id, job.id) for job in delivery_jobs(tenant_id)] == [
        "succeeded", "succeeded"]
    assert [verify(r, webhook["secret"])["id"] for r in receiver.requests] == [stranded]
    assert [d["id"] for d in api.get(f"/api/v1/webhooks/{webhook['id']}/deliveries").json] \
        == [stranded]


# --- import mappings ------------------------------------------------------------------------

ERP_FILE = (
    "Codice;Ragione sociale;E-MAIL;Cliente dal;Stato;Via;Civico;Settori\n"
    " C001 ;ACME Spa; INFO@ACME.IT ;23/11/1980;C;Via Roma;1;food|retail\n"
    "C002;Beta Srl;beta@example.it;31/02/1999;P;Corso Italia;;banking\n"
    "C003;Gamma Snc;gamma@example.it;;X;;;\n"
)


def erp_mapping(api, **extra) -> dict:
    response = api.post("/api/v1/import-mappings", json={
        "name": "erp", "description": "the monthly ERP export",
        "columns": {"Codice": "external_id", "Ragione sociale": "organisation_name",
                    "E-MAIL": "email", "Cliente dal": "attributes.customer_since",
                    "Stato": "stage", "Indirizzo": "address.street", "Settori": "tags",
                    "Via": None, "Civico": None},
        "transforms": {
            "Codice": [{"op": "trim"}],
            "E-MAIL": [{"op": "trim"}, {"op": "lower"}],
            "Cliente dal": [{"op": "date", "from": "%d/%m/%Y"}],
            "Stato": [{"op": "map", "values": {"C": "customer", "P": "prospect"},
                       "other": "empty"}, {"op": "default", "value": "lead"}],
            "Indirizzo": [{"op": "join", "columns": ["Via", "Civico"], "separator": " "}],
            "Settori": [{"op": "split", "separator": "|"}, {"op": "upper"}],
        }, **extra})
    assert response.status_code == 201, response.json
    return response.json


def test_a_saved_mapping_transforms_values_in_the_core_customer_import(api):
    mapping = erp_mapping(api)
    assert mapping["kind"] == "customers"
    for ref in ("erp", mapping["id"]):  # by name or by id
        response = api.client.post(
            f"/api/v1/customers/import?mapping={ref}&dry_run=true", data=ERP_FILE,
            headers={**api.headers(), "Content-Type": "text/csv"})
        assert response.status_code == 200, response.json
        assert response.json["created"] == 2
    response = api.client.post("/api/v1/customers/import?mapping=erp&match=external_id",
                               data=ERP_FILE,
                               headers={**api.headers(), "Content-Type": "text/csv"})
    report = response.json
    assert report["created"] == 2 and report["failed"] == 1, report
    # the impossible date fails its row, naming the column
    assert [(e["row"], e["field"]) for e in report["errors"]] == [(3, "Cliente dal")], report
    acme = api.get("/api/v1/customers?q=acme").json[0]
    assert acme["external_id"] == "C001" and acme["email"] == "info@acme.it"
    assert acme["attributes"] == {"customer_since": "1980-11-23"}
    assert acme["stage"] == "customer" and acme["tags"] == ["FOOD", "RETAIL"]
    assert acme["addresses"][0]["street"] == "Via Roma 1"
    gamma = api.get("/api/v1/customers?q=gamma").json[0]
    assert gamma["stage"] == "lead" and gamma["addresses"] == []


def test_import_mappings_are_checked_listed_changed_and_private(api, other_api):
    bad = [
        ({"columns": {"Mail": "colour"}}, "columns"),
        ({"transforms": {"Mail": [{"op": "shout"}]}}, "transforms"),
        ({"transforms": {"Born": [{"op": "date"}]}}, "transforms"),
        ({"transforms": {"Tags": [{"op": "split"}]}}, "transforms"),
        ({"transforms": {"Full": [{"op": "join", "columns": "Street"}]}}, "transforms"),
        ({"kind": "Not A Kind"}, "kind"),
    ]
    for body, field in bad:
        response = api.post("/api/v1/import-mappings", json={"name": "bad", **body})
        assert response.status_code == 422, body
        assert field in response.json["errors"]["json"], (body, response.json)
    mapping = erp_mapping(api)
    assert api.post("/api/v1/import-mappings", json={"name": "erp"}).status_code == 409
    # a plugin's import keeps its own kind; its columns are its own fields
    api.post("/api/v1/import-mappings", json={"name": "orders", "kind": "analytical_orders",
                                              "columns": {"Total": "amount"}})
    assert [m["name"] for m in api.get("/api/v1/import-mappings?kind=customers").json] == ["erp"]
    changed = api.patch(f"/api/v1/import-mappings/{mapping['id']}",
                        json={"transforms": {"E-MAIL": [{"op": "trim"}]}})
    assert changed.status_code == 200 and changed.json["transforms"] == {
        "E-MAIL": [{"op": "trim"}]}
    assert changed.json["columns"]["E-MAIL"] == "email"
    # the same rows the CLI's --mapping NAME reads
    with tenancy.tenant_context(api.tenant.id):
        from clientela.core import transfer

        assert transfer.get_mapping("erp")["Codice"] == "external_id"
        db.session.rollback()
    assert other_api.get("/api/v1/import-mappings").json == []
    assert other_api.get(f"/api/v1/import-mappings/{mapping['id']}").status_code == 404
    assert api.get("/api/v1/import-mappings", role="sales").status_code == 200
    assert api.post("/api/v1/import-mappings", role="sales",
                    json={"name": "x"}).status_code == 403
    assert api.delete(f"/api/v1/import-mappings/{mapping['id']}").status_code == 204
    assert api.get(f"/api/v1/import-mappings/{mapping['id']}").status_code == 404


# --- PostgreSQL indexes of custom fields ---------------------------------------------------


def test_filters_on_custom_fields_use_an_index(app, api, backend):
    from clientela.core import customers as core_customers
    from clientela.core.models import Customer

    define(api, "tier", "single_choice", choices=["gold", "silver"])
    define(api, "score", "integer")
    api.post("/api/v1/custom-objects", json={"key": "vehicle"})
    define(api, "plate", "text", entity_type="custom:vehicle")
    for i in range(30):
        create_customer(api, tier="gold" if i % 10 == 0 else "silver", score=i)
    postgresql = backend == "postgresql"
    with tenancy.tenant_context(api.tenant.id):
        catalogue = ("SELECT indexname FROM pg_indexes" if postgresql else
                     "SELECT name FROM sqlite_master WHERE type = 'index'")
        indexes = set(db.session.execute(sa.text(catalogue)).scalars())
        assert {"ix_attr_customers_tier_text", "ix_attr_customers_score_integer",
                "ix_attr_tailormade_custom_records_plate_text"} <= indexes

        def plan(condition) -> str:
            stmt = sa.select(Customer.id).where(Customer.tenant_id == api.tenant.id, condition)
            sql = str(stmt.compile(dialect=db.engine.dialect,
                                   compile_kwargs={"literal_binds": True}))
            if postgresql:  # so that the plan says whether the index *can* serve
                db.session.execute(sa.text("SET LOCAL enable_seqscan = off"))
                return "\n".join(r[0] for r in db.session.execute(sa.text("EXPLAIN " + sql)))
            return "\n".join(r[3] for r in db.session.execute(
                sa.text("EXPLAIN QUERY PLAN " + sql)))

        # the plan of the very expression the list endpoints filter with
        tier = plan(core_customers.attribute_condition(Customer, "tier", "gold", "text"))
        assert "ix_attr_customers_tier_text" in tier, tier
        score = plan(core_customers.attribute_condition(Customer, "score", "10", "integer",
                                                        "gte"))
        assert "ix_attr_customers_score_integer" in score, score
        db.session.rollback()
    # and the filter through the API still answers right
    listed = api.get("/api/v1/customers?attr.tier=gold&attr.score.gte=10").json
    assert sorted(c["attributes"]["score"] for c in listed) == [10, 20]


# --- the tenant's OpenAPI document -----------------------------------------------------------


def test_the_tenants_openapi_document_describes_its_custom_fields(api, other_api):
    from openapi_spec_validator import validate

    define(api, "tier", "single_choice", choices=["gold", "silver"], required=True,
           label="Tier")
    define(api, "score", "integer", min=0, max=100)
    define(api, "vat", "text", pattern="[A-Z]{2}[0-9]+", unique=True)
    define(api, "channel", "text", entity_type="interactions")
    api.post("/api/v1/custom-objects", json={"key": "vehicle"})
    define(api, "plate", "text", entity_type="custom:vehicle", required=True)
    response = api.get("/api/v1/custom-fields/openapi.json")
    assert response.status_code == 200, response.json
    document = response.json
    validate(document)
    schemas = document["components"]["schemas"]
    customers = schemas["CustomAttributes_customers"]
    assert customers["properties"]["tier"] == {"type": "string", "enum": ["gold", "silver"],
                                               "title": "Tier"}
    assert customers["properties"]["score"] == {"type": "integer", "minimum": 0,
                                                "maximum": 100}
    assert customers["properties"]["vat"]["pattern"] == "[A-Z]{2}[0-9]+"
    assert customers["required"] == ["tier"]
    # the customer schemas point at them
    assert schemas["Customer"]["properties"]["attributes"] == {
        "$ref": "#/components/schemas/CustomAttributes_customers"}
    assert schemas["CustomerInput"]["properties"]["attributes"]["$ref"].endswith(
        "CustomAttributes_customers")
    assert schemas["CustomAttributes_interactions"]["properties"]["channel"] == {
        "type": "string"}
    # the custom object has paths of its own, with its fields
    assert "/api/v1/custom/vehicle" in document["paths"]
    post = document["paths"]["/api/v1/custom/vehicle"]["post"]
    ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    record = schemas[ref.rsplit("/", 1)[1]]
    assert record["properties"]["attributes"] == {
        "$ref": "#/components/schemas/CustomAttributes_custom_vehicle"}
    # per tenant: another tenant's document has none of it; the public one neither
    theirs = other_api.get("/api/v1/custom-fields/openapi.json").json
    assert "CustomAttributes_customers" not in theirs["components"]["schemas"]
    assert "CustomAttributes_customers" not in api.client.get(
        "/api/v1/openapi.json").json["components"]["schemas"]
    assert api.client.get("/api/v1/custom-fields/openapi.json").status_code == 401


def test_value_transformations_one_by_one():
    from clientela.core import transforms

    row = {"Name": "  Ada  ", "Code": "it-123", "Kind": "Z", "Parts": "a | b | c",
           "Born": "23/11/1980", "Empty": ""}
    steps = {
        "Name": [{"op": "trim"}, {"op": "upper"}],
        "Code": [{"op": "replace", "old": "-", "new": ""}, {"op": "upper"}],
        "Parts": [{"op": "split", "separator": "|", "index": -1}],
        "Born": [{"op": "date", "from": "%d/%m/%Y", "to": "%Y%m%d"}],
        "Empty": [{"op": "map", "values": {"x": "y"}, "other": "error"},
                  {"op": "default", "value": "none"}],
        "Full": [{"op": "join", "columns": ["Code", "Empty", "Kind"], "separator": "/"}],
    }
    assert transforms.check_transforms(steps) == steps
    assert transforms.new_columns(list(row), steps) == ["Full"]
    result, problems = transforms.apply(row, steps)
    assert problems == []
    assert (result["Name"], result["Code"], result["Parts"], result["Born"], result["Empty"],
            result["Full"]) == ("ADA", "IT123", "c", "19801123", "none", "it-123/Z")
    _, problems = transforms.apply(row, {"Kind": [{"op": "map", "values": {"A": "a"},
                                                   "other": "error"}]})
    assert problems == [("Kind", "'Z' is not one of A")]
    with pytest.raises(ValueError, match="op must be one of"):
        transforms.check_transforms({"Name": [{"op": "reverse"}]})
