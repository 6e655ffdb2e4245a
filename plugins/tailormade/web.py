"""Settings pages of the tailor-made plugin under ``/app/settings``: custom fields, custom
objects, automation rules (with their run log) and webhooks (with their delivery log).

The views call the same service functions as ``/api/v1`` with the user's principal, load
the forms through the API's marshmallow schemas, and show the API's validation errors by
the field they concern (422).
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from marshmallow import Schema
from marshmallow import ValidationError as SchemaError

from clientela.core.db import db
from clientela.core.errors import Conflict, ValidationError
from clientela.core.web import field_errors, parse_id, principal, requires, staff_blueprint
from clientela.core.web.i18n import _
from clientela.plugins.tailormade import automations, custom_fields, custom_objects, schemas
from clientela.plugins.tailormade import webhooks
from clientela.plugins.tailormade.models import FIELD_TYPES, TRIGGERS

bp = staff_blueprint("tailormade_web", __name__, "/settings")

FIELD_FORM = ("label", "description", "type", "choices", "min", "max", "pattern", "default",
              "target", "position")


def _load(schema: Schema, data: dict[str, Any]) -> dict[str, Any]:
    try:
        return schema.load(data)
    except SchemaError as exc:
        raise ValidationError(exc.messages) from None


def _lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").replace(",", "\n").splitlines()
            if line.strip()]


def _field_data(form, creating: bool) -> dict[str, Any]:
    """The form as the API's JSON: empty inputs are left out when creating and cleared
    (``null``) when editing."""
    data: dict[str, Any] = {}
    if creating:
        for key in ("entity_type", "key"):
            data[key] = (form.get(key) or "").strip()
    for key in FIELD_FORM:
        value = (form.get(key) or "").strip()
        if key == "choices":
            if value or not creating:
                data[key] = _lines(value)
            continue
        if value == "":
            if not creating and key in ("min", "max", "pattern", "default", "target"):
                data[key] = None
            elif not creating and key == "description":
                data[key] = ""
            continue
        data[key] = value
    data["required"] = form.get("required") in ("1", "on", "true")
    data["unique"] = form.get("unique") in ("1", "on", "true")
    return data


def _entity_types() -> list[str]:
    return sorted(custom_fields.entity_types())


# --- custom fields ------------------------------------------------------------------------


@bp.route("/custom-fields")
@requires("customization:read")
def fields():
    who = principal()
    entity_type = request.args.get("entity_type") or None
    rows = custom_fields.list_fields(who, entity_type)
    grouped: dict[str, list] = {}
    for row in rows:
        grouped.setdefault(row.entity_type, []).append(row)
    return render_template("tailormade/fields.html", grouped=grouped, entity_type=entity_type,
                           entity_types=_entity_types(),
                           can_write=who.can("customization:write"))


def _field_form(field=None, values=None, errors=None, status=200, report=None):
    return render_template("tailormade/field_form.html", field=field, values=values or {},
                           errors=errors or {}, types=FIELD_TYPES, report=report,
                           entity_types=_entity_types()), status


@bp.route("/custom-fields/new", methods=["GET", "POST"])
@requires("customization:write")
def new_field():
    if request.method == "GET":
        return _field_form(values={"entity_type": request.args.get("entity_type", "customers"),
                                   "type": "text"})
    values = request.form.to_dict()
    try:
        data = _load(schemas.CustomFieldInput(), _field_data(request.form, creating=True))
        field, _report = custom_fields.create_field(principal(), data)
    except ValidationError as exc:
        db.session.rollback()
        return _field_form(values=values, errors=field_errors(exc), status=422)
    except custom_fields.FieldChangeRefused as exc:
        db.session.rollback()
        return _field_form(values=values, errors={"_schema": [str(exc)]}, status=409,
                           report=exc.report)
    except Conflict as exc:
        db.session.rollback()
        return _field_form(values=values, errors={"key": [str(exc)]}, status=409)
    db.session.commit()
    flash(_("Custom field %(key)s created.", key=field.key), "success")
    return redirect(url_for("tailormade_web.fields", entity_type=field.entity_type))


def _field_values(field) -> dict[str, Any]:
    return {"entity_type": field.entity_type, "key": field.key, "label": field.label,
            "description": field.description, "type": field.type,
            "required": field.required, "unique": field.is_unique,
            "choices": "\n".join(field.choices or []),
            "min": "" if field.min_value is None else field.min_value,
            "max": "" if field.max_value is None else field.max_value,
            "pattern": field.pattern or "", "target": field.target or "",
            "default": "" if field.default_value is None else field.default_value,
            "position": field.position}


@bp.route("/custom-fields/<field_id>", methods=["GET", "POST"])
@requires("customization:read")
def edit_field(field_id: str):
    who = principal()
    field = custom_fields.get_field(who, parse_id(field_id))
    if request.method == "GET":
        return _field_form(field=field, values=_field_values(field))
    values = {**_field_values(field), **request.form.to_dict(),
              "required": request.form.get("required"), "unique": request.form.get("unique")}
    try:
        data = _load(schemas.CustomFieldUpdate(), _field_data(request.form, creating=False))
        custom_fields.update_field(who, field.id, data)
    except ValidationError as exc:
        db.session.rollback()
        return _field_form(field=field, values=values, errors=field_errors(exc), status=422)
    except custom_fields.FieldChangeRefused as exc:
        db.session.rollback()
        return _field_form(field=field, values=values, errors={"_schema": [str(exc)]},
                           status=409, report=exc.report)
    db.session.commit()
    flash(_("Custom field %(key)s saved.", key=field.key), "success")
    return redirect(url_for("tailormade_web.fields", entity_type=field.entity_type))


# --- custom objects -----------------------------------------------------------------------


@bp.route("/custom-objects", methods=["GET", "POST"])
@requires("customization:read")
def objects():
    who = principal()
    errors, values, status = {}, {}, 200
    if request.method == "POST":
        values = request.form.to_dict()
        data = {k: v.strip() for k, v in values.items()
                if k in ("key", "label", "plural_label", "description") and v.strip()}
        try:
            obj = custom_objects.create_object(who, _load(schemas.CustomObjectInput(), data))
        except ValidationError as exc:
            db.session.rollback()
            errors, status = field_errors(exc), 422
        except Conflict as exc:
            db.session.rollback()
            errors, status = {"key": [str(exc)]}, 409
        else:
            db.session.commit()
            flash(_("Custom object %(key)s defined.", key=obj.key), "success")
            return redirect(url_for("tailormade_web.objects"))
    return render_template("tailormade/objects.html", objects=custom_objects.list_objects(who),
                           errors=errors, values=values,
                           can_write=who.can("customization:write")), status


# --- automations --------------------------------------------------------------------------


def _params(text: str | None) -> dict[str, Any]:
    """``name = value`` lines as a dict (``ValidationError`` on a line without ``=``)."""
    params: dict[str, Any] = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        if "=" not in line:
            raise ValidationError({"params": [_("Line %(n)s: write name = value.", n=number)]})
        name, value = line.split("=", 1)
        params[name.strip()] = value.strip()
    return params


@bp.route("/automations", methods=["GET", "POST"])
@requires("automations:read")
def rules():
    who = principal()
    errors, values, status = {}, {"trigger": "created", "entity_type": "customers"}, 200
    if request.method == "POST":
        values = request.form.to_dict()
        try:
            data = {"name": values.get("name", "").strip(),
                    "trigger": values.get("trigger", ""),
                    "entity_type": values.get("entity_type", "").strip() or "customers",
                    "description": values.get("description", "").strip(),
                    "actions": [{"type": values.get("action", ""),
                                 "params": _params(values.get("params"))}]}
            if values.get("trigger_field", "").strip():
                data["trigger_field"] = values["trigger_field"].strip()
            if values.get("condition_field", "").strip():
                data["conditions"] = {"all": [{
                    "field": values["condition_field"].strip(),
                    "op": values.get("condition_op") or "eq",
                    "value": values.get("condition_value", "")}]}
            rule = automations.create_rule(who, _load(schemas.RuleInput(), data))
        except ValidationError as exc:
            db.session.rollback()
            errors, status = field_errors(exc), 422
            # the service names nested keys (actions[0].params...); show them by the form
            for key in list(errors):
                if key.startswith("actions") and key != "actions":
                    errors.setdefault("params", []).extend(errors.pop(key))
                if key.startswith("conditions") and key != "conditions":
                    errors.setdefault("condition_field", []).extend(errors.pop(key))
            if "actions" in errors:
                errors.setdefault("action", []).extend(errors.pop("actions"))
            if "conditions" in errors:
                errors.setdefault("condition_field", []).extend(errors.pop("conditions"))
        else:
            db.session.commit()
            flash(_("Automation rule %(name)s created.", name=rule.name), "success")
            return redirect(url_for("tailormade_web.rule", rule_id=rule.id))
    actions = sorted(automations.actions().values(), key=lambda a: a.key)
    return render_template("tailormade/rules.html", rules=automations.list_rules(who),
                           errors=errors, values=values, triggers=TRIGGERS, actions=actions,
                           entity_types=_entity_types(),
                           can_write=who.can("automations:write")), status


@bp.route("/automations/<rule_id>")
@requires("automations:read")
def rule(rule_id: str):
    who = principal()
    found = automations.get_rule(who, parse_id(rule_id))
    runs = db.session.execute(automations.runs_query(who, found.id).limit(100)).scalars().all()
    return render_template("tailormade/rule.html", rule=found, runs=runs)


# --- webhooks -----------------------------------------------------------------------------


@bp.route("/webhooks", methods=["GET", "POST"])
@requires("webhooks:read")
def hooks():
    who = principal()
    errors, values, status, secret = {}, {}, 200, None
    if request.method == "POST":
        values = request.form.to_dict()
        data = {"url": values.get("url", "").strip(), "events": _lines(values.get("events"))}
        for key in ("description", "secret"):
            if values.get(key, "").strip():
                data[key] = values[key].strip()
        try:
            webhook = webhooks.create_webhook(who, _load(schemas.WebhookInput(), data))
        except ValidationError as exc:
            db.session.rollback()
            errors, status = field_errors(exc), 422
        else:
            secret = webhook.secret
            db.session.commit()
            values = {}
            flash(_("Webhook created."), "success")
    return render_template("tailormade/webhooks.html", webhooks=webhooks.list_webhooks(who),
                           errors=errors, values=values, secret=secret,
                           can_write=who.can("webhooks:write")), status


@bp.route("/webhooks/<webhook_id>")
@requires("webhooks:read")
def hook(webhook_id: str):
    who = principal()
    found = webhooks.get_webhook(who, parse_id(webhook_id))
    deliveries = db.session.execute(webhooks.deliveries_query(who, found.id).limit(100)
                                    ).scalars().all()
    return render_template("tailormade/webhook.html", webhook=found, deliveries=deliveries,
                           can_write=who.can("webhooks:write"))


@bp.route("/webhooks/<webhook_id>/deliveries/<delivery_id>/redeliver", methods=["POST"])
@requires("webhooks:write")
def redeliver(webhook_id: str, delivery_id: str):
    who = principal()
    webhook_uuid = parse_id(webhook_id)
    webhooks.redeliver(who, webhook_uuid, parse_id(delivery_id))
    db.session.commit()
    flash(_("The delivery will be sent again."), "success")
    return redirect(url_for("tailormade_web.hook", webhook_id=webhook_uuid))


__all__ = ["bp"]
