"""The customers and interactions API, through HTTP, on both backends."""

from __future__ import annotations

import json
import uuid

import pytest


def test_create_read_update_delete_a_customer(api):
    created = api.customer(first_name="Ada", last_name="Lovelace", email="Ada@Example.com",
                           phone="+44 20 7946 0958", tags=["vip"],
                           addresses=[{"city": "London", "country": "GB"}])
    assert created["display_name"] == "Ada Lovelace"
    assert created["email"] == "ada@example.com"
    assert created["phone"] == "+442079460958"
    assert created["owner_id"] == str(api.users["admin"].id)
    assert uuid.UUID(created["id"]).version == 7
    path = f"/api/v1/customers/{created['id']}"
    assert api.get(path).json == created
    changed = api.patch(path, json={"stage": "customer", "last_name": "King"})
    assert changed.status_code == 200
    assert changed.json["stage"] == "customer" and changed.json["display_name"] == "Ada King"
    assert api.delete(path).status_code == 204
    assert api.get(path).status_code == 404


def test_list_paginates_with_x_pagination(api):
    for i in range(7):
        api.customer(first_name=f"P{i:02d}")
    response = api.get("/api/v1/customers?page=2&page_size=3&sort=display_name")
    assert response.status_code == 200
    assert [c["display_name"] for c in response.json] == ["P03", "P04", "P05"]
    pagination = json.loads(response.headers["X-Pagination"])
    assert pagination["total"] == 7 and pagination["total_pages"] == 3


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("stage=customer", {"Carla"}),
        ("kind=organisation", {"Acme"}),
        ("tag=vip", {"Carla", "Acme"}),
        ("q=car", {"Carla"}),
        ("q=dan%40example.com", {"Dan"}),
        ("sort=-display_name&page_size=1", {"Dan"}),
    ],
)
def test_list_filters(api, query, expected):
    api.customer(first_name="Carla", stage="customer", tags=["vip"])
    api.customer(first_name="Dan", email="dan@example.com")
    api.customer(kind="organisation", organisation_name="Acme", tags=["vip", "x"])
    response = api.get(f"/api/v1/customers?{query}")
    assert response.status_code == 200, response.json
    assert {c["display_name"] for c in response.json} == expected


def test_filter_by_owner_and_updated_since(api):
    mine = api.customer(first_name="Mine", role="sales")
    api.customer(first_name="Theirs")
    owner = api.users["sales"].id
    names = {c["display_name"] for c in api.get(f"/api/v1/customers?owner_id={owner}").json}
    assert names == {"Mine"}
    since = mine["created_at"].replace("+00:00", "Z")
    response = api.get(f"/api/v1/customers?updated_since={since}")
    assert {c["display_name"] for c in response.json} == {"Mine", "Theirs"}
    response = api.get("/api/v1/customers?updated_since=2999-01-01T00:00:00Z")
    assert response.json == []


def test_invalid_input_is_422_with_per_field_messages(api):
    response = api.post("/api/v1/customers", json={
        "first_name": "X", "email": "not-mail", "stage": "vip", "website": "nope", "colour": "red"})
    assert response.status_code == 422
    body = response.json
    assert body["code"] == "unprocessable_entity" and body["status"] == 422 and body["message"]
    assert set(body["errors"]["json"]) == {"stage", "website", "colour"}
    response = api.post("/api/v1/customers", json={"first_name": "X", "email": "not-mail",
                                                    "phone": "123"})
    assert response.status_code == 422
    assert set(response.json["errors"]["json"]) == {"email", "phone"}


def test_invalid_query_is_422(api):
    for query in ("stage=vip", "page=0", "page_size=100000", "sort=password",
                  "updated_since=yesterday", "owner_id=42"):
        response = api.get(f"/api/v1/customers?{query}")
        assert response.status_code == 422, (query, response.json)
        assert response.json["errors"]


def test_references_must_exist_in_the_tenant(api, other_api):
    foreign_org = other_api.customer(kind="organisation", organisation_name="Other Org")
    response = api.post("/api/v1/customers", json={
        "first_name": "X", "organisation_id": foreign_org["id"],
        "owner_id": str(other_api.users["admin"].id)})
    assert response.status_code == 422
    assert set(response.json["errors"]["json"]) == {"organisation_id", "owner_id"}


def test_duplicate_external_id_is_409(api):
    api.customer(first_name="A", external_id="ERP-1")
    response = api.post("/api/v1/customers", json={"first_name": "B", "external_id": "ERP-1"})
    assert response.status_code == 409
    assert response.json["code"] == "conflict"


def test_unauthenticated_is_401_and_bad_token_is_401(api):
    response = api.client.get("/api/v1/customers")
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    response = api.client.get("/api/v1/customers", headers={"Authorization": "Bearer cla_nope"})
    assert response.status_code == 401
    response = api.client.get("/api/v1/customers", headers={"Authorization": "Basic eA=="})
    assert response.status_code == 401


def test_unknown_route_and_method_are_json(api):
    assert api.get("/api/v1/nothing-here").json["status"] == 404
    response = api.client.put("/api/v1/customers", headers=api.headers())
    assert response.status_code == 405 and response.json["code"] == "method_not_allowed"


def test_interactions_on_the_timeline(api):
    customer = api.customer(first_name="Tim")
    path = f"/api/v1/customers/{customer['id']}/interactions"
    first = api.post(path, json={"channel": "phone", "subject": "First call",
                                 "occurred_at": "2026-01-01T10:00:00+00:00"})
    assert first.status_code == 201, first.json
    api.post("/api/v1/interactions", json={"customer_id": customer["id"], "channel": "email",
                                           "direction": "outbound", "subject": "Offer",
                                           "occurred_at": "2026-02-01T10:00:00+00:00"})
    timeline = api.get(path).json
    assert [i["subject"] for i in timeline] == ["Offer", "First call"]
    assert timeline[0]["user_id"] == str(api.users["admin"].id)
    listed = api.get(f"/api/v1/interactions?customer_id={customer['id']}&channel=phone").json
    assert [i["subject"] for i in listed] == ["First call"]
    assert api.get(f"/api/v1/interactions/{first.json['id']}").json["subject"] == "First call"
    bad = api.post(path, json={"channel": "phone", "direction": "sideways"})
    assert bad.status_code == 422 and "direction" in bad.json["errors"]["json"]


def test_interaction_import_is_idempotent(api):
    customer = api.customer(first_name="Ida")
    body = {"customer_id": customer["id"], "channel": "web", "source": "shop", "external_id": "o-1"}
    a = api.post("/api/v1/interactions", json=body).json
    b = api.post("/api/v1/interactions", json=body).json
    assert a["id"] == b["id"]


def test_profile_has_core_data_organisation_contacts_and_interactions(api):
    org = api.customer(kind="organisation", organisation_name="Acme")
    person = api.customer(first_name="Pia", organisation_id=org["id"])
    api.post(f"/api/v1/customers/{person['id']}/interactions", json={"channel": "letter"})
    profile = api.get(f"/api/v1/customers/{person['id']}/profile").json
    assert profile["customer"]["id"] == person["id"]
    assert profile["organisation"]["display_name"] == "Acme"
    assert profile["interactions"]["count"] == 1
    org_profile = api.get(f"/api/v1/customers/{org['id']}/profile").json
    assert [c["display_name"] for c in org_profile["contacts"]] == ["Pia"]


def test_openapi_document_is_valid_and_lists_every_route(api):
    from openapi_spec_validator import validate

    document = api.client.get("/api/v1/openapi.json").json
    validate(document)
    assert document["openapi"].startswith("3.1")
    documented = {path for path in document["paths"]}
    for rule in api.app.url_map.iter_rules():
        path = rule.rule
        if not path.startswith("/api/v1/") or path.startswith(("/api/v1/docs", "/api/v1/openapi")):
            continue
        openapi_path = path.replace("<uuid:", "{").replace("<", "{").replace(">", "}")
        assert openapi_path in documented, path


def test_api_docs_render_offline(api):
    page = api.client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "http" not in html.replace("http-equiv", "")  # nothing fetched from elsewhere
    for asset in ("/api/v1/docs/static/swagger-ui-bundle.js", "/api/v1/docs/static/swagger-ui.css",
                  "/api/v1/docs/init.js"):
        assert asset in html
        response = api.client.get(asset)
        assert response.status_code == 200 and len(response.data) > 50


def test_import_through_the_api_streams_and_reports_per_row(api):
    body = ("First name,Last name,E-mail,Phone\n"
            "Anna,Verdi,anna@example.com,+39 06 1234 5678\n"
            "Bad,Row,not-an-email,\n"
            "Carlo,Neri,carlo@example.com,\n")
    response = api.client.post("/api/v1/customers/import?filename=people.csv",
                               data=body.encode(), headers={**api.headers(),
                                                            "Content-Type": "text/csv"})
    assert response.status_code == 200, response.json
    report = response.json
    assert (report["rows"], report["created"], report["failed"]) == (3, 2, 1)
    assert report["errors"][0]["row"] == 3 and report["errors"][0]["field"] == "email"
    names = {c["display_name"] for c in api.get("/api/v1/customers?q=verdi").json}
    assert names == {"Anna Verdi"}
    # all-or-nothing: one bad row refuses the file, nothing written
    refused = api.client.post("/api/v1/customers/import?all_or_nothing=true&match=none",
                              data=body.encode(), headers={**api.headers(),
                                                           "Content-Type": "text/csv"})
    assert refused.status_code == 422
    assert "nothing was written" in refused.json["message"]
    assert len(api.get("/api/v1/customers?q=anna").json) == 1


def test_import_of_a_vcard_through_the_api(api):
    card = ("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Vera Card\r\nN:Card;Vera;;;\r\n"
            "EMAIL:vera@example.com\r\nEND:VCARD\r\n")
    response = api.client.post("/api/v1/customers/import", data=card.encode(),
                               headers={**api.headers(), "Content-Type": "text/vcard"})
    assert response.status_code == 200, response.json
    assert response.json["created"] == 1 and response.json["format"] == "vcard"


def test_export_csv_streams_every_customer(api):
    api.customer(first_name="Exp", last_name="Ort", email="exp@example.com", tags=["a", "b"])
    response = api.get("/api/v1/customers/export.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    text = response.get_data(as_text=True)
    header, *rows = text.strip().splitlines()
    assert "email" in header and len(rows) == 1 and "exp@example.com" in rows[0]
    assert api.get("/api/v1/customers/export.csv", role="sales").status_code == 200


def test_import_and_export_need_the_whole_tenant_in_scope(api):
    assert api.client.post("/api/v1/customers/import", data=b"First name\nX\n",
                           headers={**api.headers("sales"),
                                    "Content-Type": "text/csv"}).status_code == 403
    assert api.client.post("/api/v1/customers/import", data=b"First name\nX\n",
                           headers={**api.headers("analyst"),
                                    "Content-Type": "text/csv"}).status_code == 403
