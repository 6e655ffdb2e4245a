"""Customization packages: a tenant's objects, fields, rules, webhooks and mappings moved
to another tenant intact, on both backends, and through the CLI (hosted, PostgreSQL)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from clientela.cli import cli
from clientela.core import tenancy
from clientela.core.app import create_app
from clientela.core.db import db
from clientela.plugins.tailormade import packages


def customize(api) -> dict:
    """A tenant shaped to its business: an object, fields, a webhook, rules, a mapping."""
    def ok(response, status=201):
        assert response.status_code == status, response.json
        return response.json

    ok(api.post("/api/v1/custom-objects", json={"key": "vehicle", "label": "Vehicle",
                                                "plural_label": "Vehicles"}))
    ok(api.post("/api/v1/custom-fields", json={"entity_type": "custom:vehicle", "key": "plate",
                                               "type": "text", "required": True,
                                               "unique": True, "pattern": "[A-Z0-9]+"}))
    ok(api.post("/api/v1/custom-fields", json={"entity_type": "customers", "key": "tier",
                                               "type": "single_choice",
                                               "choices": ["gold", "silver"],
                                               "default": "silver", "label": "Tier"}))
    ok(api.post("/api/v1/custom-fields", json={"entity_type": "customers", "key": "car",
                                               "type": "reference", "target": "custom:vehicle"}))
    hook = ok(api.post("/api/v1/webhooks", json={"url": "https://erp.example.com/hooks",
                                                 "events": ["customers.*"],
                                                 "description": "to the ERP"}))
    ok(api.post("/api/v1/automations", json={
        "name": "gold to ERP", "trigger": "updated", "entity_type": "customers",
        "trigger_field": "attributes.tier",
        "conditions": {"all": [{"field": "attributes.tier", "op": "eq", "value": "gold"}]},
        "actions": [{"type": "send_webhook", "params": {"webhook_id": hook["id"]}},
                    {"type": "add_tag", "params": {"tag": "gold"}}]}))
    ok(api.post("/api/v1/automations", json={
        "name": "give to sales", "trigger": "created", "entity_type": "customers",
        "actions": [{"type": "assign_owner", "params": {"owner_id": str(api.users["sales"].id)}},
                    {"type": "add_tag", "params": {"tag": "new"}}]}))
    ok(api.post("/api/v1/import-mappings", json={
        "name": "erp", "columns": {"Mail": "email", "Nome": "first_name"},
        "transforms": {"Mail": [{"op": "trim"}, {"op": "lower"}]}}))
    return hook


def comparable(document: dict) -> dict:
    document = json.loads(packages.dumps(document))
    document.pop("exported_at")
    return document


def export(tenant_id) -> dict:
    with tenancy.tenant_context(tenant_id):
        document = packages.export_package()
        db.session.rollback()
    return document


def test_a_package_moves_between_two_tenants_intact(api, other_api):
    hook = customize(api)
    document = export(api.tenant.id)
    assert document["format"] == "clientela-customizations" and document["version"] == 1
    text = packages.dumps(document)
    assert "secret" not in text.lower() and hook["secret"] not in text
    assert str(api.users["sales"].id) not in text  # no ids of the source tenant
    with tenancy.tenant_context(other_api.tenant.id, origin="cli"):
        report = packages.import_package(json.loads(text),
                                         packages.principal_for_cli(other_api.tenant.id))
        db.session.commit()
    assert report["objects"] == {"created": 1, "updated": 0}
    assert report["fields"] == {"created": 3, "updated": 0}
    assert report["rules"]["created"] == 2 and report["mappings"]["created"] == 1
    # the other tenant has no user sales@<source>.example: that action is left out
    assert any("give to sales" in note for note in report["notes"])
    # a new secret, shown once
    new_secret = report["webhook_secrets"]["https://erp.example.com/hooks"]
    assert new_secret.startswith("whsec_") and new_secret != hook["secret"]

    moved = comparable(export(other_api.tenant.id))
    original = comparable(document)
    for section in ("objects", "fields", "webhooks", "mappings"):
        assert moved[section] == original[section], section
    gold = [r for r in moved["rules"] if r["name"] == "gold to ERP"]
    assert gold == [r for r in original["rules"] if r["name"] == "gold to ERP"]
    # the rule's webhook is the receiving tenant's own
    rules = {r["name"]: r for r in other_api.get("/api/v1/automations").json}
    their_hook = other_api.get("/api/v1/webhooks").json[0]
    assert rules["gold to ERP"]["actions"][0]["params"] == {"webhook_id": their_hook["id"]}
    assert rules["give to sales"]["active"] is False
    assert rules["give to sales"]["actions"] == [{"type": "add_tag", "params": {"tag": "new"}}]
    # and it works there: the object's fields validate its records
    response = other_api.post("/api/v1/custom/vehicle", json={"title": "x",
                                                             "attributes": {"plate": "bad!"}})
    assert response.status_code == 422
    assert other_api.post("/api/v1/custom/vehicle", json={
        "title": "Van", "attributes": {"plate": "VAN1"}}).status_code == 201

    # importing again updates instead of duplicating
    with tenancy.tenant_context(other_api.tenant.id, origin="cli"):
        again = packages.import_package(json.loads(text),
                                        packages.principal_for_cli(other_api.tenant.id))
        db.session.commit()
    assert again["objects"] == {"created": 0, "updated": 1}
    assert again["webhooks"] == {"created": 0, "updated": 1} and again["webhook_secrets"] == {}
    assert len(other_api.get("/api/v1/automations").json) == 2


def test_a_bad_package_writes_nothing(api):
    customize(api)
    document = json.loads(packages.dumps(export(api.tenant.id)))
    with tenancy.tenant_context(api.tenant.id, origin="cli"):
        principal = packages.principal_for_cli(api.tenant.id)
        for broken, message in (({"format": "zip"}, "not a customization package"),
                                ({**document, "version": 99}, "newer release"),
                                ({**document, "rules": {}}, "'rules' must be a list")):
            with pytest.raises(packages.PackageError, match=message):
                packages.import_package(broken, principal)
        # a field whose change would not fit: refused, and the objects before it rolled back
        bad = {**document, "objects": [{"key": "boat"}],
               "fields": [{"entity_type": "customers", "key": "tier", "type": "integer"}]}
        api.customer(first_name="Silver", attributes={"tier": "silver"})
        with pytest.raises(packages.PackageError, match="customers.tier"):
            packages.import_package(bad, principal)
        db.session.rollback()
    assert [o["key"] for o in api.get("/api/v1/custom-objects").json] == ["vehicle"]


def test_older_package_versions_are_upgraded(api, monkeypatch):
    customize(api)
    document = json.loads(packages.dumps(export(api.tenant.id)))
    # a later release renames a key: it raises the version and upgrades old packages
    monkeypatch.setattr(packages, "FORMAT_VERSION", 2)
    monkeypatch.setitem(packages.UPGRADES, 1, lambda d: {**d, "version": 2, "objects": [
        {**o, "label": o["label"].upper()} for o in d["objects"]]})
    upgraded = packages.upgrade(document)
    assert upgraded["version"] == 2 and upgraded["objects"][0]["label"] == "VEHICLE"


def test_the_cli_moves_a_package_between_hosted_tenants(pg_databases, tmp_path):
    env = {"CLIENTELA_PROFILE": "hosted", "DATABASE_URL": pg_databases.create("packages"),
           "CLIENTELA_SECRET_KEY": "s", "CLIENTELA_HOME": str(tmp_path)}
    runner = CliRunner()

    def invoke(*args):
        result = runner.invoke(cli, list(args), env=env)
        assert result.exit_code == 0, result.output
        return result.output

    invoke("db", "upgrade")
    invoke("tenants", "create", "source")
    invoke("tenants", "create", "target")
    app = create_app("hosted", DATABASE_URL=env["DATABASE_URL"], SECRET_KEY="s",
                     HOME=str(tmp_path))
    from conftest import ApiTenant
    from clientela.core.models import Tenant

    with app.app_context():
        with tenancy.unscoped():
            tenants = {t.slug: t for t in db.session.execute(db.select(Tenant)).scalars()}
        db.session.rollback()
        customize(ApiTenant(app, tenants["source"]))
        package = tmp_path / "package.json"
        invoke("--tenant", "source", "customizations", "export", str(package))
        output = invoke("--tenant", "target", "customizations", "import", str(package))
        assert "objects: 1 created" in output and "new webhook secret for" in output
        missing = runner.invoke(cli, ["--tenant", "target", "customizations", "import",
                                      str(tmp_path / "none.json")], env=env)
        assert missing.exit_code == 1 and "cannot read" in missing.output
        moved = comparable(export(tenants["target"].id))
        original = comparable(export(tenants["source"].id))
        assert moved["fields"] == original["fields"]
        assert moved["mappings"] == original["mappings"]
        # the target's fields got their indexes when imported; the command finds them there
        assert "index(es) in place for 6 custom field(s)" in invoke("customizations", "indexes")
        bad = tmp_path / "bad.json"
        bad.write_text('{"format": "clientela-customizations", "version": 99}')
        result = runner.invoke(cli, ["--tenant", "target", "customizations", "import",
                                     str(bad)], env=env)
        assert result.exit_code == 1 and "newer release" in result.output
        db.engine.dispose()
