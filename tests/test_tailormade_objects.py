"""Custom objects through HTTP, on both backends: definitions, records, fields, filters,
permissions, audit, tenancy, profile, export and erasure."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from clientela.core import tenancy
from clientela.core.db import db
from clientela.core.models import AuditEvent

OBJECTS = "/api/v1/custom-objects"
FIELDS = "/api/v1/custom-fields"


def define_object(api, key="vehicle", **extra) -> dict:
    response = api.post(OBJECTS, json={"key": key, **extra})
    assert response.status_code == 201, response.json
    return response.json


def define_field(api, entity_type, key, type_, **options) -> dict:
    response = api.post(FIELDS, json={"entity_type": entity_type, "key": key, "type": type_,
                                      **options})
    assert response.status_code == 201, response.json
    return response.json


def vehicles(api) -> dict:
    """A ``vehicle`` object with a unique plate, a mileage and a fuel choice."""
    obj = define_object(api, label="Vehicle", plural_label="Vehicles")
    define_field(api, "custom:vehicle", "plate", "text", required=True, unique=True,
                 pattern="[A-Z]{2}[0-9]{3}[A-Z]{2}")
    define_field(api, "custom:vehicle", "km", "integer", min=0)
    define_field(api, "custom:vehicle", "fuel", "single_choice",
                 choices=["petrol", "diesel", "electric"], default="petrol")
    define_field(api, "custom:vehicle", "vin", "text")
    return obj


def add(api, title, role="admin", object_key="vehicle", expect=201, **data) -> dict:
    response = api.post(f"/api/v1/custom/{object_key}", json={"title": title, **data},
                        role=role)
    assert response.status_code == expect, response.json
    return response.json


def test_an_object_is_defined_once_and_its_key_is_checked(api):
    obj = define_object(api, label="Vehicle")
    assert obj["entity_type"] == "custom:vehicle"
    assert api.post(OBJECTS, json={"key": "vehicle"}).status_code == 409
    response = api.post(OBJECTS, json={"key": "Bad Key"})
    assert response.status_code == 422 and "key" in response.json["errors"]["json"]
    assert [o["key"] for o in api.get(OBJECTS).json] == ["vehicle"]
    changed = api.patch(f"{OBJECTS}/{obj['id']}", json={"label": "Car"})
    assert changed.status_code == 200 and changed.json["label"] == "Car"
    # fields of an object that does not exist are refused
    response = api.post(FIELDS, json={"entity_type": "custom:boat", "key": "x", "type": "text"})
    assert response.status_code == 422 and "entity_type" in response.json["errors"]["json"]
    # records of an unknown object: 404
    assert api.get("/api/v1/custom/boat").status_code == 404
    assert api.post("/api/v1/custom/boat", json={"title": "x"}).status_code == 404


def test_records_are_validated_by_the_objects_custom_fields(api):
    vehicles(api)
    record = add(api, "Company car", attributes={"plate": "AB123CD", "km": 1200})
    # defaults are written on insert, as for built-in entities
    assert record["attributes"] == {"plate": "AB123CD", "km": 1200, "fuel": "petrol"}
    response = api.post("/api/v1/custom/vehicle", json={"title": "Bad", "attributes": {
        "plate": "nope", "km": -1, "fuel": "steam"}})
    assert response.status_code == 422
    errors = response.json["errors"]["json"]
    assert set(errors) == {"attributes.plate", "attributes.km", "attributes.fuel"}
    missing = api.post("/api/v1/custom/vehicle", json={"title": "No plate"})
    assert missing.json["errors"]["json"] == {"attributes.plate": ["is required"]}
    # unique within the object
    duplicate = api.post("/api/v1/custom/vehicle", json={"title": "Twin", "attributes": {
        "plate": "AB123CD"}})
    assert duplicate.json["errors"]["json"]["attributes.plate"] == [
        "is already used by another record"]
    # a field of another object with the same key does not constrain this one
    define_object(api, "trailer")
    define_field(api, "custom:trailer", "plate", "text", unique=True)
    add(api, "Trailer", object_key="trailer", attributes={"plate": "AB123CD"})
    # updates are checked; attributes merge, null removes a key
    path = f"/api/v1/custom/vehicle/{record['id']}"
    assert api.patch(path, json={"attributes": {"km": "far"}}).status_code == 422
    changed = api.patch(path, json={"title": "Pool car", "attributes": {"km": 1500,
                                                                        "vin": None}})
    assert changed.status_code == 200, changed.json
    assert changed.json["title"] == "Pool car"
    assert changed.json["attributes"] == {"plate": "AB123CD", "km": 1500, "fuel": "petrol"}
    assert api.get(path).json["attributes"]["km"] == 1500
    # a record is not reachable under another object's key
    assert api.get(f"/api/v1/custom/trailer/{record['id']}").status_code == 404
    assert api.delete(path).status_code == 204
    assert api.get(path).status_code == 404


def test_records_filter_sort_and_paginate_like_built_ins(api):
    vehicles(api)
    for number, km in enumerate([500, 12000, 3000, 80000, 7]):
        add(api, f"Car {number}", attributes={"plate": f"AB{number:03d}CD", "km": km,
                                              "fuel": "diesel" if km > 1000 else "electric"})
    listed = api.get("/api/v1/custom/vehicle?attr.km.gte=3000&sort=-attr.km")
    assert listed.status_code == 200, listed.json
    # compared as numbers, not as text ("80000" < "9" as text)
    assert [r["attributes"]["km"] for r in listed.json] == [80000, 12000, 3000]
    electric = api.get("/api/v1/custom/vehicle?attr.fuel=electric&sort=attr.km").json
    assert [r["title"] for r in electric] == ["Car 4", "Car 0"]
    page = api.get("/api/v1/custom/vehicle?sort=title&page=2&page_size=2")
    assert [r["title"] for r in page.json] == ["Car 2", "Car 3"]
    assert '"total": 5' in page.headers["X-Pagination"]
    assert [r["title"] for r in api.get("/api/v1/custom/vehicle?q=car 1").json] == ["Car 1"]
    bad = api.get("/api/v1/custom/vehicle?attr.km.gte=lots")
    assert bad.status_code == 422
    assert api.get("/api/v1/custom/vehicle?sort=colour").status_code == 422


def test_records_relate_to_customers_and_to_other_records(api, other_api):
    vehicles(api)
    define_object(api, "contract")
    define_field(api, "custom:contract", "vehicle", "reference", target="custom:vehicle")
    customer = api.customer(first_name="Ada", last_name="Lovelace")
    car = add(api, "Ada's car", customer_id=customer["id"], attributes={"plate": "AB111CD"})
    contract = add(api, "Lease", object_key="contract", customer_id=customer["id"],
                   attributes={"vehicle": car["id"]})
    assert contract["attributes"]["vehicle"] == car["id"]
    # a reference must name a record of that object, in this tenant
    other_api.post(OBJECTS, json={"key": "vehicle"})
    foreign = other_api.post("/api/v1/custom/vehicle", json={"title": "Theirs"}).json
    for wrong in (customer["id"], foreign["id"]):
        response = api.post("/api/v1/custom/contract", json={"title": "Bad", "attributes": {
            "vehicle": wrong}})
        assert response.status_code == 422, response.json
    # the customer must be one of this tenant
    other_customer = other_api.customer(first_name="Stranger")
    response = api.post("/api/v1/custom/vehicle", json={
        "title": "x", "customer_id": other_customer["id"], "attributes": {"plate": "AB222CD"}})
    assert response.json["errors"]["json"] == {"customer_id": ["no customer with this id"]}
    # filter by customer
    assert [r["id"] for r in api.get(
        f"/api/v1/custom/contract?customer_id={customer['id']}").json] == [contract["id"]]
    # the 360° view shows the records by object
    profile = api.get(f"/api/v1/customers/{customer['id']}/profile").json
    section = next(s for s in profile["sections"] if s["key"] == "custom_records")
    assert section["data"] == {"contract": [{"id": contract["id"], "title": "Lease"}],
                               "vehicle": [{"id": car["id"], "title": "Ada's car"}]}
    # the custom reference field is usable on built-in entities too
    define_field(api, "customers", "main_vehicle", "reference", target="custom:vehicle")
    api.customer(first_name="Bob", attributes={"main_vehicle": car["id"]})


def test_export_lists_the_customers_records_and_erasure_anonymises_them(api):
    vehicles(api)
    customer = api.customer(first_name="Grace", last_name="Hopper")
    car = add(api, "Grace's car", customer_id=customer["id"],
              attributes={"plate": "GH123PR", "km": 42, "vin": "VIN-GRACE"})
    unrelated = add(api, "Pool car", attributes={"plate": "PO123OL"})
    export = api.get(f"/api/v1/customers/{customer['id']}/export")
    assert export.status_code == 200, export.json
    records = export.json["plugins"]["custom_records"]
    assert [(r["object"], r["title"], r["attributes"]["vin"]) for r in records] == [
        ("vehicle", "Grace's car", "VIN-GRACE")]
    erased = api.post(f"/api/v1/customers/{customer['id']}/erase")
    assert erased.status_code == 200, erased.json
    assert erased.json["plugins"]["tailormade"]["custom_records_anonymised"] == 1
    after = api.get(f"/api/v1/custom/vehicle/{car['id']}").json
    assert after["title"] == "Erased"
    # texts are personal; numbers and choices stay for reporting
    assert after["attributes"] == {"km": 42, "fuel": "petrol"}
    assert api.get(f"/api/v1/custom/vehicle/{unrelated['id']}").json["title"] == "Pool car"
    # the trail no longer holds the values either
    with tenancy.tenant_context(api.tenant.id):
        trail = db.session.execute(sa.select(AuditEvent.changes).where(
            AuditEvent.entity_id == uuid.UUID(car["id"]))).scalars().all()
        db.session.rollback()
    assert trail and "VIN-GRACE" not in repr(trail) and "GH123PR" not in repr(trail)


def test_record_writes_are_audited(api):
    vehicles(api)
    record = add(api, "Audited car", attributes={"plate": "AU123DT"})
    api.patch(f"/api/v1/custom/vehicle/{record['id']}", json={"attributes": {"km": 9}})
    audit = api.get("/api/v1/audit?entity_type=tailormade_custom_records")
    assert audit.status_code == 200, audit.json
    mine = [e for e in audit.json if e["entity_id"] == record["id"]]
    assert {e["action"] for e in mine} >= {"insert", "update"}
    update = next(e for e in mine if e["action"] == "update" and "km" in repr(e["changes"]))
    assert update["changes"]["attributes"][1]["km"] == 9


def test_permissions_and_record_scope(api):
    vehicles(api)
    mine = add(api, "Sales car", role="sales", attributes={"plate": "SA123LE"})
    assert mine["owner_id"] == str(api.users["sales"].id)
    theirs = add(api, "Service van", role="service", attributes={"plate": "SE123RV"})
    # sales read every record but write only their own
    assert len(api.get("/api/v1/custom/vehicle", role="sales").json) == 2
    assert api.patch(f"/api/v1/custom/vehicle/{theirs['id']}", json={"title": "x"},
                     role="sales").status_code == 403
    assert api.patch(f"/api/v1/custom/vehicle/{mine['id']}", json={"title": "Mine"},
                     role="sales").status_code == 200
    # and cannot give a record to someone else
    response = api.post("/api/v1/custom/vehicle", role="sales", json={
        "title": "Gift", "owner_id": str(api.users["service"].id),
        "attributes": {"plate": "GI123FT"}})
    assert response.status_code == 403
    # analysts read, do not write; only admins define objects
    assert api.get("/api/v1/custom/vehicle", role="analyst").status_code == 200
    assert api.post("/api/v1/custom/vehicle", role="analyst", json={
        "title": "x", "attributes": {"plate": "AN123AL"}}).status_code == 403
    assert api.post(OBJECTS, role="manager", json={"key": "boat"}).status_code == 403
    assert api.get(OBJECTS, role="sales").status_code == 200


def test_objects_and_records_belong_to_their_tenant(api, other_api):
    obj = vehicles(api)
    record = add(api, "Secret car", attributes={"plate": "SE123CR"})
    assert other_api.get(OBJECTS).json == []
    assert other_api.get("/api/v1/custom/vehicle").status_code == 404
    assert other_api.get(f"{OBJECTS}/{obj['id']}").status_code == 404
    # the same key in another tenant is another object, with its own records
    define_object(other_api)
    assert other_api.get("/api/v1/custom/vehicle").json == []
    assert other_api.get(f"/api/v1/custom/vehicle/{record['id']}").status_code == 404
    assert other_api.patch(f"/api/v1/custom/vehicle/{record['id']}",
                           json={"title": "pwned"}).status_code == 404
    assert other_api.delete(f"/api/v1/custom/vehicle/{record['id']}").status_code == 404
    assert api.get(f"/api/v1/custom/vehicle/{record['id']}").json["title"] == "Secret car"


def test_deleting_an_object_with_records_needs_purge(api):
    obj = vehicles(api)
    add(api, "Last car", attributes={"plate": "LA123ST"})
    response = api.delete(f"{OBJECTS}/{obj['id']}")
    assert response.status_code == 409
    assert api.delete(f"{OBJECTS}/{obj['id']}?purge=true").status_code == 204
    assert api.get(OBJECTS).json == []
    assert [f for f in api.get(FIELDS).json if f["entity_type"] == "custom:vehicle"] == []
    # the key is free again
    define_object(api)
    assert api.get("/api/v1/custom/vehicle").json == []
