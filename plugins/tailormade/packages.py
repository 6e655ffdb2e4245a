"""Customization packages: a tenant's custom objects, fields, rules, webhooks and import
mappings as one versioned JSON document, to move between tenants and installations.

What a package holds never names a database id of the tenant it came from: a rule's
``send_webhook`` names the webhook by URL, ``assign_owner`` the user by e-mail, and the
import resolves them in the receiving tenant. Webhook secrets are never exported: an
imported webhook gets a new secret (the report shows it once) unless it already exists.
Importing merges by natural key (object key; entity type and field key; rule, mapping
name; webhook URL), in one transaction: all of it or none.

``FORMAT_VERSION`` is raised when the document changes; ``UPGRADES`` turns an older
document into the current one, so packages written by earlier releases still import.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import current_app

from clientela.core import __version__
from clientela.core.access import Principal
from clientela.core.db import db, utcnow
from clientela.core.errors import ClientelaError, ValidationError
from clientela.core.models import User
from clientela.plugins.tailormade import (
    automations,
    custom_fields,
    custom_objects,
    import_mappings,
    webhooks,
)
from clientela.plugins.tailormade.models import (
    AutomationRule,
    CustomField,
    CustomObject,
    Webhook,
)

FORMAT = "clientela-customizations"
FORMAT_VERSION = 1
SECTIONS = ("objects", "fields", "rules", "webhooks", "mappings")
#: ``{version: function(document) -> document of version + 1}``
UPGRADES: dict[int, Callable[[dict], dict]] = {}


class PackageError(ClientelaError):
    """The package cannot be imported: the message says why; nothing was written."""


def principal_for_cli(tenant_id) -> Principal:
    """The actor of a command: every permission of the plugin (the operator runs it)."""
    permissions = {name: "all" for name in current_app.extensions["clientela"].permissions}
    return Principal(user_id=None, tenant_id=tenant_id, email="cli", roles=["admin"],  # type: ignore[arg-type]
                     permissions=permissions, via="cli")


# --- export -------------------------------------------------------------------------------


def _field(field: CustomField) -> dict[str, Any]:
    data = {name: getattr(field, name) for name in custom_fields.EDITABLE}
    data.update(entity_type=field.entity_type, key=field.key)
    if field.type == "reference":
        data["default_value"] = None  # an id of a record of this tenant
    return data


def _rule_actions(rule: AutomationRule, webhook_urls: dict[str, str],
                  emails: dict[str, str]) -> list[dict[str, Any]]:
    actions = copy.deepcopy(rule.actions or [])
    for action in actions:
        params = action.get("params") or {}
        if action.get("type") == "send_webhook" and "webhook_id" in params:
            params["webhook_url"] = webhook_urls.get(str(params.pop("webhook_id")))
        if action.get("type") == "assign_owner" and "owner_id" in params:
            params["owner_email"] = emails.get(str(params.pop("owner_id")))
    return actions


def export_package() -> dict[str, Any]:
    """The current tenant's customizations, as a package document."""
    objects = db.session.execute(sa.select(CustomObject).order_by(CustomObject.key)).scalars()
    fields = db.session.execute(sa.select(CustomField).order_by(
        CustomField.entity_type, CustomField.position, CustomField.key)).scalars()
    hooks = db.session.execute(sa.select(Webhook).order_by(Webhook.url, Webhook.id)).scalars().all()
    webhook_urls = {str(h.id): h.url for h in hooks}
    emails = {str(u.id): u.email for u in db.session.execute(sa.select(User)).scalars()}
    rules = db.session.execute(sa.select(AutomationRule).order_by(AutomationRule.name)).scalars()
    mappings = [import_mappings.as_dict(row) for row in
                import_mappings.transfer.list_mappings()]
    return {
        "format": FORMAT, "version": FORMAT_VERSION, "product_version": __version__,
        "exported_at": utcnow().isoformat(),
        "objects": [{"key": o.key, "label": o.label, "plural_label": o.plural_label,
                     "description": o.description} for o in objects],
        "fields": [_field(f) for f in fields],
        "rules": [{"name": r.name, "description": r.description, "active": r.active,
                   "trigger": r.trigger, "entity_type": r.entity_type,
                   "trigger_field": r.trigger_field, "offset_days": r.offset_days,
                   "conditions": r.conditions or {},
                   "actions": _rule_actions(r, webhook_urls, emails)} for r in rules],
        "webhooks": [{"url": h.url, "events": list(h.events), "description": h.description,
                      "active": h.active} for h in hooks],
        "mappings": [{"name": m["name"], "kind": m["kind"], "description": m["description"],
                      "columns": m["columns"], "transforms": m["transforms"]}
                     for m in mappings],
    }


# --- import -------------------------------------------------------------------------------


def upgrade(document: Any) -> dict[str, Any]:
    """The document in the current format version (``PackageError`` if it is not one)."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise PackageError(f"not a customization package (no \"format\": \"{FORMAT}\")")
    version = document.get("version")
    if not isinstance(version, int) or version < 1:
        raise PackageError("the package has no valid version")
    if version > FORMAT_VERSION:
        raise PackageError(f"the package has format version {version}, written by a newer "
                           f"release (this one reads up to {FORMAT_VERSION}): upgrade first")
    while version < FORMAT_VERSION:
        document = UPGRADES[version](document)
        version = document["version"]
    for section in SECTIONS:
        if not isinstance(document.get(section, []), list):
            raise PackageError(f"'{section}' must be a list")
    return document


def _problem(section: str, name: str, exc: ValidationError) -> PackageError:
    details = "; ".join(f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}"
                        for k, v in (exc.errors or {}).items())
    return PackageError(f"{section} '{name}': {details or exc}")


def import_package(document: Any, principal: Principal) -> dict[str, Any]:
    """Merge a package into the current tenant (flushes; the caller commits).

    Returns ``{section: {"created": n, "updated": n}, "notes": [...],
    "webhook_secrets": {url: secret}}`` (secrets of webhooks created, shown once).
    """
    document = upgrade(document)
    report: dict[str, Any] = {s: {"created": 0, "updated": 0} for s in SECTIONS}
    report["notes"], report["webhook_secrets"] = [], {}

    for item in document.get("objects", []):
        found = db.session.execute(sa.select(CustomObject).where(
            CustomObject.key == item.get("key"))).scalar_one_or_none()
        data = {k: item[k] for k in ("label", "plural_label", "description") if k in item}
        try:
            if found is None:
                custom_objects.create_object(principal, {"key": item.get("key"), **data})
                report["objects"]["created"] += 1
            else:
                custom_objects.update_object(principal, found.id, data)
                report["objects"]["updated"] += 1
        except ValidationError as exc:
            raise _problem("object", str(item.get("key")), exc) from None

    for item in document.get("fields", []):
        name = f"{item.get('entity_type')}.{item.get('key')}"
        values = {k: item[k] for k in custom_fields.EDITABLE if k in item}
        found = db.session.execute(sa.select(CustomField).where(
            CustomField.entity_type == item.get("entity_type"),
            CustomField.key == item.get("key"))).scalar_one_or_none()
        try:
            if found is None:
                custom_fields.create_field(principal, {
                    "entity_type": item.get("entity_type"), "key": item.get("key"), **values})
                report["fields"]["created"] += 1
            else:
                custom_fields.update_field(principal, found.id, values)
                report["fields"]["updated"] += 1
        except ValidationError as exc:
            raise _problem("field", name, exc) from None
        except custom_fields.FieldChangeRefused as exc:
            raise PackageError(f"field '{name}': {exc}") from None

    for item in document.get("webhooks", []):
        found = db.session.execute(sa.select(Webhook).where(
            Webhook.url == item.get("url")).order_by(Webhook.id)).scalars().first()
        data = {k: item[k] for k in ("url", "events", "description", "active") if k in item}
        try:
            if found is None:
                webhook = webhooks.create_webhook(principal, data)
                report["webhook_secrets"][webhook.url] = webhook.secret
                report["webhooks"]["created"] += 1
            else:
                webhooks.update_webhook(principal, found.id, data)
                report["webhooks"]["updated"] += 1
        except ValidationError as exc:
            raise _problem("webhook", str(item.get("url")), exc) from None

    webhook_ids = {h.url: h.id for h in db.session.execute(
        sa.select(Webhook).order_by(Webhook.id.desc())).scalars()}
    users = {u.email: u.id for u in db.session.execute(
        sa.select(User).where(User.is_active.is_(True))).scalars()}
    for item in document.get("rules", []):
        rule = {k: copy.deepcopy(item[k]) for k in automations.EDITABLE if k in item}
        kept = []
        for action in rule.get("actions") or []:
            params = action.get("params") if isinstance(action, dict) else None
            if isinstance(params, dict) and action.get("type") == "send_webhook" \
                    and "webhook_url" in params:
                params["webhook_id"] = str(webhook_ids.get(params.pop("webhook_url"), ""))
            if isinstance(params, dict) and action.get("type") == "assign_owner" \
                    and "owner_email" in params:
                email = params.pop("owner_email")
                if email not in users:  # no such user here: the rest of the rule, switched off
                    rule["active"] = False
                    report["notes"].append(f"rule '{item.get('name')}': no user {email} "
                                           "here, its assign_owner action was left out and "
                                           "the rule switched off")
                    continue
                params["owner_id"] = str(users[email])
            kept.append(action)
        if rule.get("actions") and not kept:
            report["notes"].append(f"rule '{item.get('name')}': not imported, none of its "
                                   "actions can run here")
            continue
        rule["actions"] = kept
        found = db.session.execute(sa.select(AutomationRule).where(
            AutomationRule.name == item.get("name")).order_by(AutomationRule.id)
        ).scalars().first()
        try:
            if found is None:
                automations.create_rule(principal, rule)
                report["rules"]["created"] += 1
            else:
                automations.update_rule(principal, found.id, rule)
                report["rules"]["updated"] += 1
        except ValidationError as exc:
            raise _problem("rule", str(item.get("name")), exc) from None

    for item in document.get("mappings", []):
        found = [m for m in import_mappings.list_mappings(principal)
                 if m["name"] == item.get("name")]
        data = {k: item[k] for k in ("name", "kind", "description", "columns", "transforms")
                if k in item}
        try:
            if not found:
                import_mappings.create_mapping(principal, data)
                report["mappings"]["created"] += 1
            else:
                import_mappings.update_mapping(principal, found[0]["id"], data)
                report["mappings"]["updated"] += 1
        except ValidationError as exc:
            raise _problem("mapping", str(item.get("name")), exc) from None
    db.session.flush()
    return report


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, default=str) + "\n"
