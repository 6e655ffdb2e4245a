"""The operational plugin through HTTP, on both backends: leads and their score, conversion,
the public web-to-lead form, pipelines and deals, the kanban board, targets and the forecast."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from clientela.core import tenancy
from clientela.core.db import db

LEADS = "/api/v1/leads"
DEALS = "/api/v1/deals"
PIPELINES = "/api/v1/pipelines"
FORMS = "/api/v1/web-forms"
RULES = "/api/v1/lead-scoring-rules"
TARGETS = "/api/v1/sales-targets"


def ok(response, status=200):
    assert response.status_code == status, (response.status_code, response.json)
    return response.json


def default_pipeline(api) -> dict:
    pipelines = ok(api.get(PIPELINES))
    return next(p for p in pipelines if p["is_default"])


def stage(pipeline: dict, name: str) -> str:
    return next(s["id"] for s in pipeline["stages"] if s["name"] == name)


def deal(api, role="admin", **data) -> dict:
    data.setdefault("title", "A deal")
    return ok(api.post(DEALS, json=data, role=role), 201)


def lead(api, role="admin", **data) -> dict:
    data.setdefault("first_name", "Lea")
    return ok(api.post(LEADS, json=data, role=role), 201)


def timeline(api, customer_id) -> list[dict]:
    return ok(api.get(f"/api/v1/customers/{customer_id}/interactions"))


def ip() -> dict:
    """A client address of its own, so that the rate limit of one test never meets another's."""
    n = uuid.uuid4().int
    return {"REMOTE_ADDR": f"10.{n % 250}.{n // 250 % 250}.{n // 62500 % 250 + 1}"}


# --- leads ------------------------------------------------------------------------------------


def test_create_read_update_delete_a_lead(api):
    created = lead(api, first_name="Ada", last_name="Byron", company="Analytical Engines",
                   email="Ada@Example.COM", phone="+44 20 7946 0958", source="trade_fair")
    assert created["status"] == "new" and created["score"] == 0
    assert created["email"] == "ada@example.com" and created["phone"] == "+442079460958"
    assert created["owner_id"] == str(api.users["admin"].id)
    path = f"{LEADS}/{created['id']}"
    assert ok(api.get(path)) == created
    changed = ok(api.patch(path, json={"status": "qualified", "title": "Countess"}))
    assert changed["status"] == "qualified" and changed["title"] == "Countess"
    assert api.delete(path).status_code == 204
    assert api.get(path).status_code == 404


def test_leads_list_filters_sorts_and_paginates(api):
    for i in range(5):
        lead(api, first_name=f"L{i}", source="web_form" if i % 2 else "referral",
             status="contacted" if i == 3 else "new")
    lead(api, first_name="Findme", company="Zeta Spa", role="sales")
    response = api.get(f"{LEADS}?page=2&page_size=2&sort=created_at")
    assert [x["first_name"] for x in ok(response)] == ["L2", "L3"]
    assert json.loads(response.headers["X-Pagination"])["total"] == 6
    assert {x["first_name"] for x in ok(api.get(f"{LEADS}?source=web_form"))} == {"L1", "L3"}
    assert [x["first_name"] for x in ok(api.get(f"{LEADS}?status=contacted"))] == ["L3"]
    assert [x["first_name"] for x in ok(api.get(f"{LEADS}?q=zeta"))] == ["Findme"]
    owner = api.users["sales"].id
    assert [x["first_name"] for x in ok(api.get(f"{LEADS}?owner_id={owner}"))] == ["Findme"]
    for query in ("status=hot", "sort=password", "page_size=1000", "owner_id=x"):
        assert api.get(f"{LEADS}?{query}").status_code == 422, query


def test_invalid_lead_is_422_with_per_field_messages(api):
    response = api.post(LEADS, json={"first_name": "X", "email": "not-mail", "phone": "12",
                                     "status": "hot", "colour": "red"})
    assert response.status_code == 422
    assert set(response.json["errors"]["json"]) == {"status", "colour"}
    response = api.post(LEADS, json={"first_name": "X", "email": "not-mail", "phone": "12"})
    assert set(response.json["errors"]["json"]) == {"email", "phone"}
    response = api.post(LEADS, json={"message": "who am I?"})
    assert response.status_code == 422 and "email" in response.json["errors"]["json"]
    response = api.post(LEADS, json={"first_name": "X", "status": "converted"})
    assert response.status_code == 422 and "status" in response.json["errors"]["json"]


def test_scoring_rules_score_leads_on_write_and_again_when_rules_change(api):
    rule = ok(api.post(RULES, json={"name": "From the fair", "field": "source",
                                    "value": "trade_fair", "points": 20}), 201)
    ok(api.post(RULES, json={"name": "Has a phone", "field": "phone", "operator": "present",
                             "points": 5}), 201)
    ok(api.post(RULES, json={"name": "Company mail", "field": "email", "operator": "ends_with",
                             "value": "@acme.example", "points": 10}), 201)
    ok(api.post(RULES, json={"name": "VIP attribute", "field": "attributes.tier",
                             "value": "gold", "points": 7}), 201)
    hot = lead(api, source="trade_fair", phone="+39 06 1234567", email="a@acme.example",
               attributes={"tier": "gold"})
    assert hot["score"] == 42
    cold = lead(api, source="web_form", email="b@else.example")
    assert cold["score"] == 0
    assert ok(api.patch(f"{LEADS}/{cold['id']}", json={"source": "trade_fair"}))["score"] == 20
    ok(api.patch(f"{RULES}/{rule['id']}", json={"points": 50}))
    assert ok(api.get(f"{LEADS}/{hot['id']}"))["score"] == 72
    assert [x["id"] for x in ok(api.get(f"{LEADS}?min_score=60"))] == [hot["id"]]
    assert api.delete(f"{RULES}/{rule['id']}").status_code == 204
    assert ok(api.get(f"{LEADS}/{hot['id']}"))["score"] == 22
    assert len(ok(api.get(RULES))) == 3
    bad = api.post(RULES, json={"name": "x", "field": "password", "points": 1})
    assert bad.status_code == 422 and "field" in bad.json["errors"]["json"]
    assert api.post(RULES, json={"name": "x", "field": "source", "points": 1},
                    role="sales").status_code == 403


# --- conversion -------------------------------------------------------------------------------


def test_conversion_creates_a_customer_and_a_deal_and_records_it_on_the_timeline(api):
    pipeline = default_pipeline(api)
    new = lead(api, first_name="Nora", last_name="Neri", company="Neri Srl",
               email="nora@neri.example", source="referral")
    result = ok(api.post(f"{LEADS}/{new['id']}/convert", json={"deal": {
        "amount": "12000.00", "stage_id": stage(pipeline, "Proposal"),
        "expected_close_date": "2030-03-31"}}))
    assert result["customer_created"] is True and result["matched_by"] is None
    customer = ok(api.get(f"/api/v1/customers/{result['customer_id']}"))
    assert customer["display_name"] == "Nora Neri" and customer["email"] == "nora@neri.example"
    assert customer["stage"] == "prospect"
    assert result["lead"]["status"] == "converted"
    assert result["lead"]["customer_id"] == customer["id"]
    assert result["lead"]["deal_id"] == result["deal"]["id"]
    assert result["deal"]["title"] == "Neri Srl" and result["deal"]["amount"] == "12000.00"
    assert result["deal"]["customer_id"] == customer["id"]
    assert result["deal"]["probability"] == 50
    events = timeline(api, customer["id"])
    assert [e["outcome"] for e in events] == ["converted"]
    assert events[0]["subject"] == "Lead converted with deal Neri Srl"
    again = api.post(f"{LEADS}/{new['id']}/convert", json={})
    assert again.status_code == 409
    changed = api.patch(f"{LEADS}/{new['id']}", json={"status": "new"})
    assert changed.status_code == 422


@pytest.mark.parametrize("match", ["email", "phone"])
def test_conversion_matches_an_existing_customer_instead_of_duplicating(api, match):
    existing = api.customer(first_name="Otto", last_name="Orsini", email="otto@orsini.example",
                            phone="+39 02 7654321")
    contact = {"email": "OTTO@orsini.example"} if match == "email" else {"phone": "+390276543 21"}
    new = lead(api, first_name="O.", last_name="Orsini", **contact)
    result = ok(api.post(f"{LEADS}/{new['id']}/convert", json={}))
    assert result["customer_created"] is False and result["matched_by"] == match
    assert result["customer_id"] == existing["id"] and result["deal"] is None
    listed = ok(api.get("/api/v1/customers?q=orsini"))
    assert [c["id"] for c in listed] == [existing["id"]]
    assert [e["outcome"] for e in timeline(api, existing["id"])] == ["converted"]


def test_conversion_into_a_named_customer_and_its_permissions(api, other_api):
    target = api.customer(organisation_name="Target Spa", kind="organisation")
    new = lead(api, company="Target", role="marketing")
    # marketing may convert, but not open a deal
    denied = api.post(f"{LEADS}/{new['id']}/convert", role="marketing",
                      json={"customer_id": target["id"], "deal": {"amount": "1"}})
    assert denied.status_code == 403
    foreign = other_api.customer(first_name="Elsewhere")
    response = api.post(f"{LEADS}/{new['id']}/convert", json={"customer_id": foreign["id"]})
    assert response.status_code == 404
    result = ok(api.post(f"{LEADS}/{new['id']}/convert", role="marketing",
                         json={"customer_id": target["id"]}))
    assert result["matched_by"] == "customer_id" and result["customer_id"] == target["id"]
    company_only = lead(api, first_name=None, company="Solo Org", email="info@solo.example")
    result = ok(api.post(f"{LEADS}/{company_only['id']}/convert", json={}))
    assert ok(api.get(f"/api/v1/customers/{result['customer_id']}"))["kind"] == "organisation"


# --- record scope -----------------------------------------------------------------------------


def test_sales_sees_and_changes_only_their_own_leads_and_deals(api):
    mine = lead(api, first_name="Mine", role="sales")
    theirs = lead(api, first_name="Theirs")
    my_deal = deal(api, title="My deal", role="sales")
    their_deal = deal(api, title="Their deal")
    assert my_deal["owner_id"] == str(api.users["sales"].id)
    assert [x["id"] for x in ok(api.get(LEADS, role="sales"))] == [mine["id"]]
    assert [x["id"] for x in ok(api.get(DEALS, role="sales"))] == [my_deal["id"]]
    for path in (f"{LEADS}/{theirs['id']}", f"{DEALS}/{their_deal['id']}",
                 f"{DEALS}/{their_deal['id']}/history"):
        assert api.get(path, role="sales").status_code == 404, path
    assert api.patch(f"{LEADS}/{theirs['id']}", json={"status": "contacted"},
                     role="sales").status_code == 404
    assert api.post(f"{DEALS}/{their_deal['id']}/close", json={"outcome": "won"},
                    role="sales").status_code == 404
    gift = api.post(LEADS, json={"first_name": "Gift", "owner_id": str(api.users["admin"].id)},
                    role="sales")
    assert gift.status_code == 403
    orphan = api.post(LEADS, json={"first_name": "Orphan", "owner_id": None}, role="sales")
    assert orphan.status_code == 403
    assert ok(api.patch(f"{DEALS}/{my_deal['id']}", json={"title": "Still mine"},
                        role="sales"))["owner_id"] == str(api.users["sales"].id)
    assert api.patch(f"{DEALS}/{my_deal['id']}", json={"owner_id": None},
                     role="sales").status_code == 403
    # the analyst reads everything and changes nothing
    assert len(ok(api.get(DEALS, role="analyst"))) == 2
    assert api.patch(f"{DEALS}/{my_deal['id']}", json={"title": "x"},
                     role="analyst").status_code == 403
    # marketing works with every lead, but sees no deal; service sees neither
    assert len(ok(api.get(LEADS, role="marketing"))) == 2
    assert api.get(DEALS, role="marketing").status_code == 403
    assert api.get(LEADS, role="service").status_code == 403
    assert api.get(DEALS, role="service").status_code == 403
    # the profile's "Deals" section follows the viewer's scope
    customer = api.customer(first_name="Shared")
    deal(api, title="Admin's", customer_id=customer["id"], amount="10")
    deal(api, title="Sales'", customer_id=customer["id"], amount="5", role="sales")
    sections = ok(api.get(f"/api/v1/customers/{customer['id']}/profile", role="sales"))["sections"]
    section = next(s for s in sections if s["key"] == "deals")
    assert [d["title"] for d in section["data"]["recent"]] == ["Sales'"]
    sections = ok(api.get(f"/api/v1/customers/{customer['id']}/profile"))["sections"]
    section = next(s for s in sections if s["key"] == "deals")
    assert section["data"]["open"] == 2 and section["data"]["open_totals"] == {"EUR": "15.00"}


def test_lists_never_show_another_tenants_operational_rows(api, other_api):
    lead(api, first_name="Secret")
    deal(api, title="Secret deal")
    ok(api.post(FORMS, json={"name": "Secret form"}), 201)
    ok(api.post(RULES, json={"name": "Secret rule", "field": "source", "points": 1}), 201)
    ok(api.post(TARGETS, json={"owner_id": str(api.users["sales"].id), "period": "month",
                               "period_start": "2030-01-01", "amount": "123457.89"}), 201)
    for path in (LEADS, DEALS, FORMS, RULES, TARGETS, PIPELINES, "/api/v1/forecast?year=2030"):
        body = other_api.get(path).get_data(as_text=True)
        assert "secret" not in body.lower() and "123457.89" not in body, path
    assert len(ok(other_api.get(PIPELINES))) == 1


# --- web forms --------------------------------------------------------------------------------


def make_form(api, **data) -> dict:
    data.setdefault("name", "Contact us")
    return ok(api.post(FORMS, json=data), 201)


def test_web_forms_are_managed_and_give_an_html_snippet(api):
    form = make_form(api, fields=["first_name", "email", "message"], required=["email"],
                     owner_id=str(api.users["sales"].id), source="website")
    assert form["key"].startswith(api.tenant.id.hex + "-")
    assert form["url"] == f"http://localhost/forms/{form['key']}"
    snippet = ok(api.get(f"{FORMS}/{form['id']}/snippet"))
    html = snippet["html"]
    assert f'action="{form["url"]}"' in html and 'method="post"' in html
    assert '<input type="email" name="email" id="cf-email" required>' in html
    assert '<textarea name="message"' in html and 'name="nickname" tabindex="-1"' in html
    assert 'name="phone"' not in html
    changed = ok(api.patch(f"{FORMS}/{form['id']}", json={"name": "Renamed", "rotate_key": True}))
    assert changed["name"] == "Renamed" and changed["key"] != form["key"]
    assert [f["id"] for f in ok(api.get(FORMS, role="analyst"))] == [form["id"]]
    assert api.patch(f"{FORMS}/{form['id']}", json={"name": "x"},
                     role="analyst").status_code == 403
    bad = api.post(FORMS, json={"name": "x", "fields": ["email", "salary"],
                                "required": ["phone"], "honeypot": "email"})
    assert bad.status_code == 422
    assert set(bad.json["errors"]["json"]) == {"fields", "required", "honeypot"}
    assert api.delete(f"{FORMS}/{form['id']}").status_code == 204
    assert api.get(f"{FORMS}/{form['id']}").status_code == 404


def test_public_form_creates_a_lead_in_the_tenant_the_key_names(api, other_api):
    form = make_form(api, owner_id=str(api.users["sales"].id), source="website")
    other_form = make_form(other_api)
    client = api.app.test_client()
    response = client.post(f"/forms/{form['key']}", environ_base=ip(),
                           data={"first_name": "Web", "last_name": "Visitor",
                                 "email": "web@visitor.example", "message": "Call me",
                                 "nickname": ""})
    assert response.status_code == 200 and "Thank you" in response.get_data(as_text=True)
    response = client.post(f"/forms/{other_form['key']}", environ_base=ip(),
                           json={"first_name": "Other", "email": "o@other.example"})
    assert response.status_code == 201 and response.json == {"status": "received"}
    leads = ok(api.get(LEADS))
    assert [(x["first_name"], x["source"], x["owner_id"], x["web_form_id"]) for x in leads] == [
        ("Web", "website", str(api.users["sales"].id), form["id"])]
    assert leads[0]["message"] == "Call me" and leads[0]["created_by"] is None
    assert [x["first_name"] for x in ok(other_api.get(LEADS))] == ["Other"]
    # the owner the form names sees the lead
    assert len(ok(api.get(LEADS, role="sales"))) == 1


def test_public_form_refuses_unknown_forged_and_inactive_keys(api, other_api):
    form = make_form(api)
    client = api.app.test_client()
    random_part = form["key"].split("-", 1)[1]
    for key in ("nope", f"{uuid.uuid4().hex}-{random_part}",
                f"{other_api.tenant.id.hex}-{random_part}", form["key"] + "x"):
        response = client.post(f"/forms/{key}", environ_base=ip(), json={"email": "a@b.example"})
        assert response.status_code == 404, key
        assert response.json["code"] == "not_found"
    ok(api.patch(f"{FORMS}/{form['id']}", json={"active": False}))
    response = client.post(f"/forms/{form['key']}", environ_base=ip(),
                           json={"email": "a@b.example"})
    assert response.status_code == 404
    assert ok(api.get(LEADS)) == [] and ok(other_api.get(LEADS)) == []


def test_public_form_honeypot_answers_normally_and_stores_nothing(api):
    form = make_form(api, redirect_url="https://shop.example/thanks")
    client = api.app.test_client()
    human = client.post(f"/forms/{form['key']}", environ_base=ip(),
                        data={"email": "human@example.com"})
    bot = client.post(f"/forms/{form['key']}", environ_base=ip(),
                      data={"email": "bot@spam.example", "nickname": "I fill everything"})
    assert human.status_code == bot.status_code == 303
    assert human.headers["Location"] == bot.headers["Location"] == "https://shop.example/thanks"
    as_json = client.post(f"/forms/{form['key']}", environ_base=ip(),
                          json={"email": "bot2@spam.example", "nickname": "x"})
    assert as_json.status_code == 201 and as_json.json == {"status": "received"}
    assert [x["email"] for x in ok(api.get(LEADS))] == ["human@example.com"]


def test_public_form_bad_input_is_422_with_per_field_messages(api):
    form = make_form(api, fields=["first_name", "email", "phone", "country"],
                     required=["email", "first_name"])
    client = api.app.test_client()
    response = client.post(f"/forms/{form['key']}", environ_base=ip(),
                           data={"email": "", "first_name": "x" * 101, "phone": "12"})
    assert response.status_code == 422
    assert set(response.json["errors"]["form"]) == {"email", "first_name"}
    response = client.post(f"/forms/{form['key']}", environ_base=ip(),
                           json={"email": "not-mail", "first_name": "Ok", "phone": "12"})
    assert response.status_code == 422
    assert set(response.json["errors"]["json"]) == {"email", "phone"}
    for body in ("[1, 2]", "{not json", '"text"'):
        response = client.post(f"/forms/{form['key']}", environ_base=ip(), data=body,
                               content_type="application/json")
        assert response.status_code == 422, body
    response = client.post(f"/forms/{form['key']}", environ_base=ip(),
                           json={"email": "nul@example.com", "first_name": "a\x00b"})
    assert response.status_code == 422
    assert ok(api.get(LEADS)) == []


def test_public_form_is_rate_limited_per_address(api, monkeypatch):
    monkeypatch.setitem(api.app.config, "OPERATIONAL_FORM_RATE_LIMIT", "3 per minute")
    form = make_form(api)
    client = api.app.test_client()
    address = ip()
    for i in range(3):
        response = client.post(f"/forms/{form['key']}", environ_base=address,
                               json={"email": f"p{i}@example.com"})
        assert response.status_code == 201
    response = client.post(f"/forms/{form['key']}", environ_base=address,
                           json={"email": "p4@example.com"})
    assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1
    assert response.json["code"] == "too_many_requests"
    # bots that probe keys are counted too, and another address is not affected
    assert client.post("/forms/nope", environ_base=address, json={}).status_code == 429
    assert client.post(f"/forms/{form['key']}", environ_base=ip(),
                       json={"email": "p5@example.com"}).status_code == 201
    assert len(ok(api.get(LEADS))) == 4


# --- pipelines --------------------------------------------------------------------------------


def test_every_new_tenant_gets_a_default_pipeline(api):
    pipelines = ok(api.get(PIPELINES))
    assert [(p["name"], p["is_default"]) for p in pipelines] == [("Sales", True)]
    assert [(s["name"], s["probability"], s["kind"]) for s in pipelines[0]["stages"]] == [
        ("Qualification", 10, "open"), ("Needs analysis", 25, "open"), ("Proposal", 50, "open"),
        ("Negotiation", 75, "open"), ("Won", 100, "won"), ("Lost", 0, "lost")]


def test_pipelines_and_their_stages_are_managed(api):
    created = ok(api.post(PIPELINES, json={"name": "Renewals", "is_default": True, "stages": [
        {"name": "Due", "probability": 60}, {"name": "Quoted", "probability": 80},
        {"name": "Renewed", "probability": 100, "kind": "won"},
        {"name": "Churned", "kind": "lost"}]}), 201)
    assert [s["position"] for s in created["stages"]] == [0, 1, 2, 3]
    pipelines = ok(api.get(PIPELINES))
    assert [p["name"] for p in pipelines if p["is_default"]] == ["Renewals"]
    path = f"{PIPELINES}/{created['id']}"
    due, quoted, renewed, churned = (s["id"] for s in created["stages"])
    in_quoted = deal(api, pipeline_id=created["id"], stage_id=quoted)
    # reorder, rename, add one, drop an unused one
    changed = ok(api.patch(path, json={"name": "Renewal", "stages": [
        {"id": quoted, "name": "Quote sent", "probability": 70}, {"id": due, "name": "Due"},
        {"name": "Signed", "probability": 100, "kind": "won"},
        {"id": churned, "name": "Churned", "kind": "lost"}]}))
    assert [(s["name"], s["probability"]) for s in changed["stages"]] == [
        ("Quote sent", 70), ("Due", 60), ("Signed", 100), ("Churned", 0)]
    assert renewed not in {s["id"] for s in changed["stages"]}
    assert ok(api.get(f"{DEALS}/{in_quoted['id']}"))["probability"] == 70
    # a stage that holds a deal stays
    response = api.patch(path, json={"stages": [{"id": due, "name": "Due"}]})
    assert response.status_code == 409
    response = api.patch(path, json={"stages": [{"name": "Only won", "kind": "won"}]})
    assert response.status_code == 422
    response = api.patch(path, json={"stages": [{"id": str(uuid.uuid4()), "name": "X"}]})
    assert response.status_code == 422
    assert api.delete(path).status_code == 409
    assert api.delete(f"{DEALS}/{in_quoted['id']}").status_code == 204
    assert api.delete(path).status_code == 204
    assert [p["is_default"] for p in ok(api.get(PIPELINES))] == [True]
    assert api.post(PIPELINES, json={"name": "x"}, role="sales").status_code == 403
    assert api.post(PIPELINES, json={"name": "x", "stages": [
        {"name": "A"}, {"name": "a"}]}).status_code == 422


# --- deals ------------------------------------------------------------------------------------


def test_deal_with_lines_stage_history_and_won_on_the_timeline(api):
    pipeline = default_pipeline(api)
    customer = api.customer(first_name="Carlo", last_name="Conti")
    created = deal(api, title="Looms", customer_id=customer["id"], currency="eur",
                   expected_close_date="2030-06-30", forecast_category="commit",
                   items=[{"product": "Loom", "quantity": "2", "unit_price": "1500.50"},
                          {"product": "Service", "quantity": "1.5", "unit_price": "100"}])
    assert created["amount"] == "3151.00" and created["currency"] == "EUR"
    assert created["stage_id"] == stage(pipeline, "Qualification")
    assert created["pipeline_id"] == pipeline["id"] and created["status"] == "open"
    assert [i["product"] for i in created["items"]] == ["Loom", "Service"]
    path = f"{DEALS}/{created['id']}"
    moved = ok(api.patch(path, json={"stage_id": stage(pipeline, "Negotiation")}))
    assert moved["probability"] == 75
    changed = ok(api.patch(path, json={"items": [
        {"product": "Loom", "quantity": "3", "unit_price": "1000"}]}))
    assert changed["amount"] == "3000.00" and len(changed["items"]) == 1
    won = ok(api.post(f"{path}/close", json={"outcome": "won", "reason": "Best price"}))
    assert won["status"] == "won" and won["closed_at"] and won["stage_id"] == stage(
        pipeline, "Won")
    assert won["close_reason"] == "Best price"
    history = ok(api.get(f"{path}/history"))
    assert [(h["from_stage_id"], h["to_stage_id"]) for h in history] == [
        (None, stage(pipeline, "Qualification")),
        (stage(pipeline, "Qualification"), stage(pipeline, "Negotiation")),
        (stage(pipeline, "Negotiation"), stage(pipeline, "Won"))]
    assert all(h["changed_at"] and h["user_id"] == str(api.users["admin"].id) for h in history)
    events = timeline(api, customer["id"])
    assert [(e["subject"], e["outcome"]) for e in events] == [("Deal won: Looms", "won")]
    assert "3000.00 EUR — Best price" in events[0]["body"]
    assert api.post(f"{path}/close", json={"outcome": "won"}).status_code == 409
    # reopening clears the outcome
    reopened = ok(api.patch(path, json={"stage_id": stage(pipeline, "Proposal")}))
    assert reopened["status"] == "open" and reopened["closed_at"] is None
    assert reopened["close_reason"] is None


def test_a_lost_deal_needs_a_reason_and_is_on_the_timeline(api):
    customer = api.customer(first_name="Lia")
    created = deal(api, title="Lost one", customer_id=customer["id"], amount="700")
    path = f"{DEALS}/{created['id']}/close"
    response = api.post(path, json={"outcome": "lost"})
    assert response.status_code == 422 and "reason" in response.json["errors"]["json"]
    lost = ok(api.post(path, json={"outcome": "lost", "reason": "Too expensive"}))
    assert lost["status"] == "lost" and lost["close_reason"] == "Too expensive"
    assert [e["outcome"] for e in timeline(api, customer["id"])] == ["lost"]
    response = api.post(path, json={"outcome": "draw"})
    assert response.status_code == 422


def test_deal_input_is_checked(api, other_api):
    pipeline = default_pipeline(api)
    other_pipeline = default_pipeline(other_api)
    foreign_customer = other_api.customer(first_name="Foreign")
    for body, field in (
        ({"title": "x", "pipeline_id": other_pipeline["id"]}, "pipeline_id"),
        ({"title": "x", "stage_id": other_pipeline["stages"][0]["id"]}, "stage_id"),
        ({"title": "x", "owner_id": str(other_api.users["admin"].id)}, "owner_id"),
        ({"title": "x", "amount": "-1"}, "amount"),
        ({"title": "x", "amount": "abc"}, "amount"),
        ({"title": "x", "currency": "EURO"}, "currency"),
        ({"title": "x", "forecast_category": "maybe"}, "forecast_category"),
        ({"title": "x", "items": [{"product": "p", "quantity": "1"}]}, "items"),
        ({}, "title"),
    ):
        response = api.post(DEALS, json=body)
        assert response.status_code == 422, (body, response.json)
        assert field in response.json["errors"]["json"], (body, response.json)
    response = api.post(DEALS, json={"title": "x", "customer_id": foreign_customer["id"]})
    assert response.status_code == 404
    created = deal(api)
    response = api.patch(f"{DEALS}/{created['id']}",
                         json={"stage_id": other_pipeline["stages"][1]["id"]})
    assert response.status_code == 422
    # a move to another pipeline lands in its first open stage
    second = ok(api.post(PIPELINES, json={"name": "Second"}), 201)
    moved = ok(api.patch(f"{DEALS}/{created['id']}", json={"pipeline_id": second["id"]}))
    assert moved["stage_id"] == second["stages"][0]["id"]
    assert pipeline["id"] != second["id"]


def test_deals_list_filters(api):
    pipeline = default_pipeline(api)
    customer = api.customer(first_name="Filtered")
    deal(api, title="Early", expected_close_date="2030-01-15", customer_id=customer["id"])
    deal(api, title="Late", expected_close_date="2030-09-15", forecast_category="commit",
         stage_id=stage(pipeline, "Proposal"), amount="50")
    deal(api, title="Mine", role="sales", amount="10")
    titles = lambda q: [d["title"] for d in ok(api.get(f"{DEALS}?{q}"))]  # noqa: E731
    assert titles("close_from=2030-06-01") == ["Late"]
    assert titles("close_to=2030-06-01") == ["Early"]
    assert titles(f"customer_id={customer['id']}") == ["Early"]
    assert titles("forecast_category=commit") == ["Late"]
    assert titles(f"stage_id={stage(pipeline, 'Proposal')}") == ["Late"]
    assert titles(f"owner_id={api.users['sales'].id}") == ["Mine"]
    assert titles("q=lat") == ["Late"]
    assert titles("sort=-amount&page_size=1") == ["Late"]
    assert titles("status=won") == []
    assert api.get(f"{DEALS}?sort=owner_secret").status_code == 422


def test_kanban_board_groups_deals_by_stage_with_counts_and_totals(api):
    pipeline = default_pipeline(api)
    proposal, qualification = stage(pipeline, "Proposal"), stage(pipeline, "Qualification")
    deal(api, title="P1", stage_id=proposal, amount="1000", role="sales")
    deal(api, title="P2", stage_id=proposal, amount="500.50", role="sales")
    deal(api, title="P3", stage_id=proposal, amount="200", currency="USD")
    deal(api, title="Q1", stage_id=qualification, amount="300")
    board = ok(api.get(f"{PIPELINES}/{pipeline['id']}/board"))
    assert board["pipeline"]["name"] == "Sales"
    columns = {c["stage"]["name"]: c for c in board["stages"]}
    assert list(columns) == [s["name"] for s in pipeline["stages"]]
    assert columns["Proposal"]["count"] == 3
    assert columns["Proposal"]["totals"] == {"EUR": "1500.50", "USD": "200.00"}
    assert columns["Proposal"]["weighted_totals"] == {"EUR": "750.25", "USD": "100.00"}
    assert {d["title"] for d in columns["Proposal"]["deals"]} == {"P1", "P2", "P3"}
    assert columns["Qualification"]["weighted_totals"] == {"EUR": "30.00"}
    assert columns["Won"] == {**columns["Won"], "count": 0, "totals": {}, "deals": []}
    own = {c["stage"]["name"]: c for c in ok(api.get(
        f"{PIPELINES}/{pipeline['id']}/board?limit=1", role="sales"))["stages"]}
    assert own["Proposal"]["count"] == 2 and own["Proposal"]["totals"] == {"EUR": "1500.50"}
    assert len(own["Proposal"]["deals"]) == 1 and own["Qualification"]["count"] == 0
    assert api.get(f"{PIPELINES}/{pipeline['id']}/board", role="marketing").status_code == 403


# --- targets and forecast ---------------------------------------------------------------------


def test_sales_targets_are_managed(api):
    sales = str(api.users["sales"].id)
    created = ok(api.post(TARGETS, json={"owner_id": sales, "period": "quarter",
                                         "period_start": "2030-04-01", "amount": "20000",
                                         "currency": "eur"}), 201)
    assert created["amount"] == "20000.00" and created["currency"] == "EUR"
    path = f"{TARGETS}/{created['id']}"
    assert ok(api.patch(path, json={"amount": "25000.5"}))["amount"] == "25000.50"
    response = api.post(TARGETS, json={"owner_id": sales, "period": "quarter",
                                       "period_start": "2030-05-01", "amount": "1"})
    assert response.status_code == 422 and "period_start" in response.json["errors"]["json"]
    duplicate = api.post(TARGETS, json={"owner_id": sales, "period": "quarter",
                                        "period_start": "2030-04-01", "amount": "1",
                                        "currency": "EUR"})
    assert duplicate.status_code == 409
    ok(api.post(TARGETS, json={"owner_id": str(api.users["admin"].id), "period": "month",
                               "period_start": "2030-01-01", "amount": "5"}), 201)
    assert len(ok(api.get(f"{TARGETS}?year=2030"))) == 2
    assert [t["id"] for t in ok(api.get(TARGETS, role="sales"))] == [created["id"]]
    assert api.patch(path, json={"amount": "1"}, role="sales").status_code == 403
    assert api.delete(path).status_code == 204
    assert api.get(path).status_code == 404


def test_forecast_figures_on_a_known_data_set(api):
    pipeline = default_pipeline(api)
    today = dt.datetime.now(dt.timezone.utc).date()
    q_start = dt.date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    other_q = dt.date(today.year, 4 if q_start.month == 1 else 1, 1)
    cq, oq = q_start.isoformat(), other_q.isoformat()

    def sales_deal(amount, stage_name, category, close=cq, role="sales", **kw):
        return deal(api, role=role, amount=amount, stage_id=stage(pipeline, stage_name),
                    forecast_category=category, expected_close_date=close, **kw)

    sales_deal("10000", "Proposal", "commit")
    sales_deal("4000", "Qualification", "best_case")
    sales_deal("2000", "Negotiation", "pipeline")
    sales_deal("1000", "Needs analysis", "omitted")
    won = sales_deal("5000", "Proposal", "pipeline", close=oq)
    ok(api.post(f"{DEALS}/{won['id']}/close", json={"outcome": "won"}, role="sales"))
    lost = sales_deal("3000", "Proposal", "commit")
    ok(api.post(f"{DEALS}/{lost['id']}/close", json={"outcome": "lost", "reason": "no"},
                role="sales"))
    sales_deal("8000", "Proposal", "commit", close=oq)
    sales_deal("500", "Proposal", "commit", currency="USD")
    sales_deal("1200", "Negotiation", "pipeline", role="admin")
    sales, admin = str(api.users["sales"].id), str(api.users["admin"].id)
    ok(api.post(TARGETS, json={"owner_id": sales, "period": "quarter", "period_start": cq,
                               "amount": "20000"}), 201)
    for month in (0, 1):
        start = dt.date(q_start.year, q_start.month + month, 1).isoformat()
        ok(api.post(TARGETS, json={"owner_id": admin, "period": "month",
                                   "period_start": start, "amount": "1000"}), 201)

    result = ok(api.get(f"/api/v1/forecast?period=quarter&year={today.year}"))
    assert result["currency"] == "EUR" and result["period"] == "quarter"
    label = lambda d: f"{d.year}-Q{(d.month - 1) // 3 + 1}"  # noqa: E731
    rows = {(r["period"], r["owner_id"]): r for r in result["rows"]}
    figures = ("open", "weighted", "commit", "best_case", "won", "target", "attainment")
    pick = lambda r: tuple(r[k] for k in figures)  # noqa: E731
    assert pick(rows[(label(q_start), sales)]) == (
        "16000.00", "6900.00", "15000.00", "19000.00", "5000.00", "20000.00", "0.2500")
    assert pick(rows[(label(other_q), sales)]) == (
        "8000.00", "4000.00", "8000.00", "8000.00", "0.00", "0.00", None)
    assert pick(rows[(label(q_start), admin)]) == (
        "1200.00", "900.00", "0.00", "0.00", "0.00", "2000.00", "0.0000")
    assert len(rows) == 3
    assert pick(result["totals"]) == (
        "25200.00", "11800.00", "23000.00", "27000.00", "5000.00", "22000.00", "0.2273")

    # the sales rep sees their own figures; filters by owner and pipeline; other currencies
    own = ok(api.get(f"/api/v1/forecast?year={today.year}", role="sales"))
    assert {r["owner_id"] for r in own["rows"]} == {sales}
    assert own["totals"]["won"] == "5000.00" and own["totals"]["target"] == "20000.00"
    by_admin = ok(api.get(f"/api/v1/forecast?year={today.year}&owner_id={admin}"))
    assert by_admin["totals"]["open"] == "1200.00"
    usd = ok(api.get(f"/api/v1/forecast?year={today.year}&currency=usd"))
    assert usd["totals"]["open"] == "500.00" and usd["totals"]["commit"] == "500.00"
    other = ok(api.post(PIPELINES, json={"name": "Empty"}), 201)
    empty = ok(api.get(f"/api/v1/forecast?year={today.year}&pipeline_id={other['id']}"))
    assert {r["owner_id"] for r in empty["rows"]} <= {sales, admin}
    assert empty["totals"]["open"] == "0.00" and empty["totals"]["target"] == "22000.00"
    month = ok(api.get(f"/api/v1/forecast?period=month&year={today.year}"))
    this_month = f"{today.year}-{today.month:02d}"
    assert {r["won"] for r in month["rows"] if r["period"] == this_month
            and r["owner_id"] == sales} == {"5000.00"}
    assert api.get("/api/v1/forecast", role="marketing").status_code == 403
    assert api.get("/api/v1/forecast?period=week").status_code == 422


# --- data-subject rights, merge, deletion, demo -----------------------------------------------


def test_export_erase_and_merge_cover_leads_and_deals(api):
    customer = api.customer(first_name="Gina", last_name="Galli", email="gina@galli.example")
    new = lead(api, first_name="Gina", last_name="Galli", email="gina@galli.example",
               message="Please call Gina")
    converted = ok(api.post(f"{LEADS}/{new['id']}/convert", json={"deal": {
        "title": "Gina Galli order", "amount": "100"}}))
    assert converted["customer_id"] == customer["id"]
    document = ok(api.get(f"/api/v1/customers/{customer['id']}/export"))
    section = document["plugins"]["operational"]
    assert [x["email"] for x in section["leads"]] == ["gina@galli.example"]
    assert [d["title"] for d in section["deals"]] == ["Gina Galli order"]
    # merge: the other customer's leads and deals move to the survivor
    twin = api.customer(first_name="Gina", last_name="G.")
    twin_deal = deal(api, title="Twin deal", customer_id=twin["id"])
    ok(api.post(f"/api/v1/customers/{customer['id']}/merge", json={"other_id": twin["id"]}))
    assert ok(api.get(f"{DEALS}/{twin_deal['id']}"))["customer_id"] == customer["id"]
    summary = ok(api.post(f"/api/v1/customers/{customer['id']}/erase"))
    assert summary["plugins"]["operational"] == {"leads_anonymised": 1, "deals_anonymised": 2,
                                                 "tasks_anonymised": 0, "cases_anonymised": 0}
    erased = ok(api.get(f"{LEADS}/{new['id']}"))
    assert erased["email"] is None and erased["first_name"] is None and erased["message"] == ""
    assert erased["status"] == "converted"
    deals = ok(api.get(f"{DEALS}?customer_id={customer['id']}&sort=created_at"))
    assert [d["amount"] for d in deals] == ["100.00", "0.00"]
    assert all("Gina" not in d["title"] for d in deals)
    audit = api.get(f"/api/v1/audit?entity_id={new['id']}").get_data(as_text=True)
    assert "gina" not in audit.lower()


def test_deleting_a_customer_takes_its_leads_and_deals(api):
    customer = api.customer(first_name="Gone")
    new = lead(api, email="gone@example.com")
    result = ok(api.post(f"{LEADS}/{new['id']}/convert", json={
        "customer_id": customer["id"], "deal": {"amount": "5"}}))
    assert api.delete(f"/api/v1/customers/{customer['id']}").status_code == 204
    assert api.get(f"{LEADS}/{new['id']}").status_code == 404
    assert api.get(f"{DEALS}/{result['deal']['id']}").status_code == 404


def test_deleting_a_deal_or_a_form_keeps_the_lead(api):
    form = make_form(api)
    response = api.app.test_client().post(f"/forms/{form['key']}", environ_base=ip(),
                                          json={"email": "kept@example.com"})
    assert response.status_code == 201
    (new,) = ok(api.get(LEADS))
    result = ok(api.post(f"{LEADS}/{new['id']}/convert", json={"deal": {"amount": "1"}}))
    assert api.delete(f"{DEALS}/{result['deal']['id']}").status_code == 204
    assert api.delete(f"{FORMS}/{form['id']}").status_code == 204
    kept = ok(api.get(f"{LEADS}/{new['id']}"))
    assert kept["deal_id"] is None and kept["web_form_id"] is None


def test_demo_data_fills_a_pipeline_and_leads(app_ctx, tenant):
    from clientela.core.app import current_clientela
    from clientela.plugins.operational.models import Deal, Lead

    current_clientela().plugins.call_in_order("clientela_demo_data", tenant=tenant)
    db.session.commit()
    deals = db.session.execute(db.select(Deal)).scalars().all()
    assert len(deals) == 12 and {d.status for d in deals} == {"open", "won"}
    assert len(db.session.execute(db.select(Lead)).scalars().all()) == 4


def test_no_input_produces_a_500(api):
    created = deal(api)
    new = lead(api)
    weird = ["", "null", "[]", "{}", '{"title": null}', '{"amount": "1e400"}',
             '{"amount": 1e20}', '{"items": "x"}', '{"stages": [{}]}', '{"owner_id": "x"}',
             '{"expected_close_date": "2030-02-30"}', '{"period_start": "0000-01-01"}',
             '{"title": "' + "x" * 5000 + '"}', '{"deal": {"amount": "NaN"}}']
    paths = [LEADS, f"{LEADS}/{new['id']}", f"{LEADS}/{new['id']}/convert", DEALS,
             f"{DEALS}/{created['id']}", f"{DEALS}/{created['id']}/close", PIPELINES, FORMS,
             RULES, TARGETS]
    for path in paths:
        for payload in weird:
            for method in ("POST", "PATCH"):
                response = api.client.open(path, method=method, data=payload,
                                           headers={**api.headers(),
                                                    "Content-Type": "application/json"})
                assert response.status_code < 500, (method, path, payload, response.json)
    for query in ("year=0", "year=abc", "period=", "currency=%00", "owner_id=1"):
        assert api.get(f"/api/v1/forecast?{query}").status_code < 500, query


def test_the_plugin_tables_are_tenant_scoped(api, other_api):
    deal(api, title="Scoped")
    with tenancy.tenant_context(other_api.tenant.id):
        from clientela.plugins.operational.models import Deal

        assert db.session.execute(db.select(Deal)).scalars().all() == []
        db.session.rollback()
