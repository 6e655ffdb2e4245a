"""Dedupe and merge, data-subject export and erasure, through HTTP on both backends."""

from __future__ import annotations

import contextlib
import json

import sqlalchemy as sa

from clientela.core import hookimpl, tenancy
from clientela.core.db import db

PERSONAL = ["Zebulon", "Quixote", "zq@secret.example", "+390612398765", "Via Segreta",
            "zebulon-order", "ERP-ZQ-1", "zq.example"]


@contextlib.contextmanager
def plugged(app, obj, name):
    pm = app.extensions["clientela"].plugins.pm
    pm.register(obj, name=name)
    try:
        yield obj
    finally:
        pm.unregister(name=name)


class LoyaltyLike:
    """A plugin holding personal data of its own, answering the data-subject hooks."""

    def __init__(self):
        self.cards = {}
        self.merged = []

    @hookimpl
    def clientela_customer_export(self, customer):
        return {"loyalty": {"card": self.cards.get(customer.id)}}

    @hookimpl
    def clientela_customer_erase(self, customer):
        self.cards.pop(customer.id, None)
        return {"cards_removed": 1}

    @hookimpl
    def clientela_customer_merged_precommit(self, survivor, merged_id):
        self.merged.append((survivor.id, merged_id))

    @hookimpl
    def clientela_customer_profile(self, customer):
        return {"key": "loyalty", "title": "Loyalty", "data": {"points": 42}}


def all_rows_text() -> str:
    """Every row of every table, all tenants, as one string to search for leftovers."""
    existing = set(sa.inspect(db.engine).get_table_names())
    chunks = []
    with tenancy.unscoped():
        for table in db.metadata.sorted_tables:
            if table.name in existing:
                for row in db.session.execute(sa.select(table)).all():
                    chunks.append(json.dumps([str(v) for v in row], ensure_ascii=False))
    db.session.rollback()
    return "\n".join(chunks)


def test_export_then_erase_leaves_no_personal_data_in_any_table(api, app):
    import uuid

    plugin = LoyaltyLike()
    with plugged(app, plugin, "loyaltylike"):
        customer = api.customer(first_name="Zebulon", last_name="Quixote",
                                email="zq@secret.example", phone="+39 06 1239 8765",
                                website="https://zq.example", external_id="ERP-ZQ-1",
                                addresses=[{"street": "Via Segreta 7", "city": "Roma"}],
                                tags=["vip"], attributes={"nickname": "Zebulon"})
        cid = customer["id"]
        plugin.cards[uuid.UUID(cid)] = "CARD-Zebulon"
        api.post(f"/api/v1/customers/{cid}/interactions",
                 json={"channel": "email", "subject": "zebulon-order", "body": "Dear Zebulon"})
        api.patch(f"/api/v1/customers/{cid}", json={"stage": "customer", "last_name": "Quixote"})

        exported = api.get(f"/api/v1/customers/{cid}/export")
        assert exported.status_code == 200
        document = exported.json
        assert document["customer"]["email"] == "zq@secret.example"
        assert document["interactions"][0]["subject"] == "zebulon-order"
        assert document["plugins"]["loyalty"]["card"] == "CARD-Zebulon"
        assert "Zebulon" in all_rows_text()

        erased = api.post(f"/api/v1/customers/{cid}/erase")
        assert erased.status_code == 200
        assert erased.json["plugins"]["loyaltylike"] == {"cards_removed": 1}
        text = all_rows_text()
        for value in PERSONAL:
            assert value not in text, value
        kept = api.get(f"/api/v1/customers/{cid}").json
        assert kept["display_name"] == "Erased customer" and kept["stage"] == "customer"
        timeline = api.get(f"/api/v1/customers/{cid}/interactions").json
        assert timeline[0]["channel"] == "email" and timeline[0]["subject"] == ""
        actions = [e["action"] for e in api.get(f"/api/v1/audit?entity_id={cid}").json]
        assert "erase" in actions and "export" in actions


def test_duplicates_are_found_by_email_phone_and_name(api):
    a = api.customer(first_name="Maria", last_name="Rossi", email="maria@example.com")
    b = api.customer(first_name="maria", last_name="ROSSI", phone="+39 333 1234567")
    c = api.customer(first_name="M.", email="maria@example.com", phone="+393331234567")
    api.customer(first_name="Unrelated")
    groups = api.get("/api/v1/customers/duplicates").json
    found = {(g["reason"], frozenset(g["customer_ids"])) for g in groups}
    assert ("email", frozenset({a["id"], c["id"]})) in found
    assert ("phone", frozenset({b["id"], c["id"]})) in found
    assert ("name", frozenset({a["id"], b["id"]})) in found


def test_merge_dry_run_shows_the_result_and_changes_nothing(api):
    survivor = api.customer(first_name="Luca", email="luca@example.com", tags=["a"])
    other = api.customer(first_name="Luca B", email="luca.b@example.com", phone="+39 06 111 2222",
                         tags=["b"])
    response = api.post(f"/api/v1/customers/{survivor['id']}/merge",
                        json={"other_id": other["id"], "dry_run": True})
    assert response.status_code == 200
    result = response.json["result"]
    assert result["phone"] == "+39061112222" and result["tags"] == ["a", "b"]
    assert {"label": "merged", "value": "luca.b@example.com"} in result["emails"]
    assert api.get(f"/api/v1/customers/{other['id']}").status_code == 200
    assert api.get(f"/api/v1/customers/{survivor['id']}").json == survivor


def test_merge_moves_every_related_record_and_loses_nothing(api, app):
    plugin = LoyaltyLike()
    org_a = api.customer(kind="organisation", organisation_name="Acme")
    org_b = api.customer(kind="organisation", organisation_name="ACME S.p.A.",
                         website="https://acme.example", external_id="ERP-9")
    contact = api.customer(first_name="Carlo", organisation_id=org_b["id"])
    for org in (org_a, org_b):
        api.post(f"/api/v1/customers/{org['id']}/interactions", json={"channel": "phone",
                                                                      "subject": org["id"]})
    with plugged(app, plugin, "loyaltylike"):
        response = api.post(f"/api/v1/customers/{org_a['id']}/merge",
                            json={"other_id": org_b["id"],
                                  "prefer": {"organisation_name": "other"}})
    assert response.status_code == 200, response.json
    assert response.json["interactions_moved"] == 1
    merged = api.get(f"/api/v1/customers/{org_a['id']}").json
    assert merged["organisation_name"] == "ACME S.p.A."
    assert merged["website"] == "https://acme.example" and merged["external_id"] == "ERP-9"
    assert api.get(f"/api/v1/customers/{org_b['id']}").status_code == 404
    subjects = {i["subject"] for i in api.get(f"/api/v1/customers/{org_a['id']}/interactions").json}
    assert subjects == {org_a["id"], org_b["id"]}
    assert api.get(f"/api/v1/customers/{contact['id']}").json["organisation_id"] == org_a["id"]
    assert [(str(s), str(m)) for s, m in plugin.merged] == [(org_a["id"], org_b["id"])]
    trail = api.get(f"/api/v1/audit?entity_id={org_a['id']}&action=merge").json
    assert trail[0]["changes"]["merged"]["organisation_name"] == "ACME S.p.A."


def test_merge_refuses_itself_and_unknown_ids(api):
    a = api.customer(first_name="Solo")
    assert api.post(f"/api/v1/customers/{a['id']}/merge",
                    json={"other_id": a["id"]}).status_code == 422
    missing = "01a20000-0000-7000-8000-000000000000"
    assert api.post(f"/api/v1/customers/{a['id']}/merge",
                    json={"other_id": missing}).status_code == 404
    assert api.post(f"/api/v1/customers/{a['id']}/merge",
                    json={"other_id": a["id"], "prefer": {"email": "both"}}).status_code == 422


def test_profile_includes_plugin_sections(api, app):
    customer = api.customer(first_name="Sec")
    with plugged(app, LoyaltyLike(), "loyaltylike"):
        profile = api.get(f"/api/v1/customers/{customer['id']}/profile").json
    assert profile["sections"] == [{"key": "loyalty", "title": "Loyalty", "data": {"points": 42}}]
