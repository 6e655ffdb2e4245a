"""Tailor-made settings pages (/app/settings: custom fields, custom objects, automations,
webhooks) through the Flask test client, on SQLite and PostgreSQL: pages, permissions,
the API's validation errors by their field, another tenant's records, CSRF."""

from __future__ import annotations

import uuid

import pytest

from clientela.core import services, tenancy
from clientela.core.db import db
from clientela.plugins.tailormade.models import (AutomationRule, CustomField, Webhook,
                                                 WebhookDelivery)


def _uid() -> str:
    return uuid.uuid4().hex[:8]


def make_records(site, tenant_id=None) -> dict:
    """A custom field, an automation rule, a webhook with one delivery."""
    with site.app.app_context(), tenancy.tenant_context(tenant_id or site.tenant_id):
        field = CustomField(entity_type="customers", key=f"k_{_uid()}", label="K", type="text")
        rule = AutomationRule(name=f"Rule {_uid()}", trigger="created", entity_type="customers",
                              actions=[{"type": "add_tag", "params": {"tag": "vip"}}],
                              conditions={})
        hook = Webhook(url="https://hooks.example.com/in", events=["customers.insert"],
                       secret="s" * 32, description="")
        db.session.add_all([field, rule, hook])
        db.session.flush()
        delivery = WebhookDelivery(webhook_id=hook.id, event="customers.insert",
                                   entity_type="customers", payload={"event": "customers.insert"},
                                   status="failed", attempts=3)
        db.session.add(delivery)
        db.session.flush()
        ids = {"field": field.id, "rule": rule.id, "webhook": hook.id, "delivery": delivery.id}
        db.session.commit()
        return ids


def test_pages_render_for_admin_and_are_in_the_settings_menu(clientela_site):
    ids = make_records(clientela_site)
    client = clientela_site.client("admin")
    for url in ("/app/settings/custom-fields", "/app/settings/custom-fields/new",
                f"/app/settings/custom-fields/{ids['field']}", "/app/settings/custom-objects",
                "/app/settings/automations", f"/app/settings/automations/{ids['rule']}",
                "/app/settings/webhooks", f"/app/settings/webhooks/{ids['webhook']}"):
        assert client.get(url).status_code == 200, url
    menu = client.get("/app/").text
    for href in ("/app/settings/custom-fields", "/app/settings/automations",
                 "/app/settings/webhooks", "/app/settings/custom-objects"):
        assert f'href="{href}"' in menu


def test_permissions(clientela_site):
    ids = make_records(clientela_site)
    sales = clientela_site.client("sales")
    assert sales.get("/app/settings/custom-fields").status_code == 200  # customization:read
    assert sales.get("/app/settings/custom-fields/new").status_code == 403
    assert sales.get("/app/settings/webhooks").status_code == 403
    assert sales.get(f"/app/settings/webhooks/{ids['webhook']}").status_code == 403
    assert sales.get("/app/settings/automations").status_code == 403
    assert sales.post(f"/app/settings/custom-fields/{ids['field']}",
                      data={"csrf_token": sales.csrf, "label": "x", "type": "text"}
                      ).status_code == 403
    manager = clientela_site.client("manager")
    page = manager.get("/app/settings/automations")
    assert page.status_code == 200 and "New rule" not in page.text  # read only
    assert manager.post("/app/settings/automations", data={
        "csrf_token": manager.csrf, "name": "x", "trigger": "created", "action": "add_tag",
        "params": "tag = x"}).status_code == 403
    assert manager.post(f"/app/settings/webhooks/{ids['webhook']}/deliveries/"
                        f"{ids['delivery']}/redeliver",
                        data={"csrf_token": manager.csrf}).status_code == 403


def test_custom_field_create_shows_the_apis_errors_by_field_then_edits(clientela_site):
    client = clientela_site.client("admin")
    answer = client.post("/app/settings/custom-fields/new", data={
        "csrf_token": client.csrf, "entity_type": "customers", "key": "Bad Key",
        "type": "single_choice"})
    assert answer.status_code == 422 and 'id="key-errors"' in answer.text
    answer = client.post("/app/settings/custom-fields/new", data={
        "csrf_token": client.csrf, "entity_type": "customers", "key": f"tier_{_uid()}",
        "type": "single_choice", "choices": ""})
    assert answer.status_code == 422 and 'id="choices-errors"' in answer.text
    answer = client.post("/app/settings/custom-fields/new", data={
        "csrf_token": client.csrf, "entity_type": "customers", "key": f"n_{_uid()}",
        "type": "integer", "min": "abc", "max": "10"})
    assert answer.status_code == 422 and 'id="min-errors"' in answer.text
    key = f"tier_{_uid()}"
    answer = client.post("/app/settings/custom-fields/new", data={
        "csrf_token": client.csrf, "entity_type": "customers", "key": key, "label": "Tier",
        "type": "single_choice", "choices": "gold\nsilver", "required": "1"})
    assert answer.status_code == 302
    with clientela_site.app.app_context(), tenancy.tenant_context(clientela_site.tenant_id):
        field = db.session.execute(db.select(CustomField).where(CustomField.key == key)
                                   ).scalar_one()
        assert (field.type, field.choices, field.required) == ("single_choice",
                                                               ["gold", "silver"], True)
        field_id = field.id
    assert key in client.get("/app/settings/custom-fields?entity_type=customers").text
    answer = client.post(f"/app/settings/custom-fields/{field_id}", data={
        "csrf_token": client.csrf, "label": "Tier level", "type": "single_choice",
        "choices": "gold\nsilver\nbronze"})
    assert answer.status_code == 302
    with clientela_site.app.app_context(), tenancy.tenant_context(clientela_site.tenant_id):
        field = db.session.get(CustomField, (clientela_site.tenant_id, field_id))
        assert field.label == "Tier level" and field.required is False
        assert field.choices == ["gold", "silver", "bronze"]


def test_custom_objects_automations_and_webhooks_create(clientela_site):
    client = clientela_site.client("admin")
    answer = client.post("/app/settings/custom-objects", data={
        "csrf_token": client.csrf, "key": "Not OK"})
    assert answer.status_code == 422 and 'id="key-errors"' in answer.text
    key = f"machine_{_uid()}"
    assert client.post("/app/settings/custom-objects", data={
        "csrf_token": client.csrf, "key": key, "label": "Machine"}).status_code == 302
    assert key in client.get("/app/settings/custom-objects").text
    # an automation rule: a bad parameter line, then a good rule and its (empty) run log
    answer = client.post("/app/settings/automations", data={
        "csrf_token": client.csrf, "name": "Tag new", "trigger": "created",
        "entity_type": "customers", "action": "add_tag", "params": "no equals sign"})
    assert answer.status_code == 422 and 'id="params-errors"' in answer.text
    answer = client.post("/app/settings/automations", data={
        "csrf_token": client.csrf, "name": "", "trigger": "created",
        "entity_type": "customers", "action": "add_tag", "params": "tag = new"})
    assert answer.status_code == 422 and 'id="name-errors"' in answer.text
    name = f"Tag new {_uid()}"
    answer = client.post("/app/settings/automations", data={
        "csrf_token": client.csrf, "name": name, "trigger": "created",
        "entity_type": "customers", "action": "add_tag", "params": "tag = new"})
    assert answer.status_code == 302
    assert "Run log" in client.get(answer.headers["Location"]).text
    # a webhook: bad input, then created (its secret shown once), then a redelivery
    answer = client.post("/app/settings/webhooks", data={
        "csrf_token": client.csrf, "url": "", "events": ""})
    assert answer.status_code == 422 and 'id="url-errors"' in answer.text
    answer = client.post("/app/settings/webhooks", data={
        "csrf_token": client.csrf, "url": "https://hooks.example.com/new",
        "events": "customers.insert\noperational_deals.*"})
    assert answer.status_code == 200 and 'id="webhook-secret"' in answer.text
    ids = make_records(clientela_site)
    answer = client.post(f"/app/settings/webhooks/{ids['webhook']}/deliveries/"
                         f"{ids['delivery']}/redeliver", data={"csrf_token": client.csrf})
    assert answer.status_code == 302
    with clientela_site.app.app_context(), tenancy.tenant_context(clientela_site.tenant_id):
        assert db.session.execute(db.select(db.func.count()).select_from(WebhookDelivery).where(
            WebhookDelivery.webhook_id == ids["webhook"])).scalar_one() == 2


def test_writes_need_the_csrf_token(clientela_site):
    ids = make_records(clientela_site)
    client = clientela_site.client("admin")
    assert client.post("/app/settings/custom-objects", data={"key": "nocsrf"}
                       ).status_code == 403
    assert client.post(f"/app/settings/webhooks/{ids['webhook']}/deliveries/"
                       f"{ids['delivery']}/redeliver").status_code == 403


def test_another_tenants_records_are_404(clientela_site):
    with clientela_site.app.app_context():
        other = services.create_tenant(f"tm-{_uid()}", name="Other")
        db.session.commit()
        other_id = other.id
    ids = make_records(clientela_site, other_id)
    client = clientela_site.client("admin")
    for url in (f"/app/settings/custom-fields/{ids['field']}",
                f"/app/settings/automations/{ids['rule']}",
                f"/app/settings/webhooks/{ids['webhook']}", "/app/settings/webhooks/nope"):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/app/settings/custom-fields/{ids['field']}",
                       data={"csrf_token": client.csrf, "label": "x", "type": "text"}
                       ).status_code == 404
    assert client.post(f"/app/settings/webhooks/{ids['webhook']}/deliveries/"
                       f"{ids['delivery']}/redeliver", data={"csrf_token": client.csrf}
                       ).status_code == 404
