"""The core's customer pages: the list (search, filters, sort, saved views), the customer
form, deletion, the 360° page with its timeline and the "log an interaction" form, and the
data-subject export download."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import uuid
from typing import Any

import marshmallow
from flask import (Response, current_app, flash, g, redirect, render_template, request,
                   url_for)

from clientela.core import access, channels, services
from clientela.core import customers as service
from clientela.core.api import schemas
from clientela.core.db import db, utcnow
from clientela.core.errors import ValidationError
from clientela.core.models import (CUSTOMER_KINDS, DIRECTIONS, LIFECYCLE_STAGES, Customer,
                                   Interaction, User)
from clientela.core.web import (bp, customer_panels, field_errors, parse_id, principal,
                                requires)
from clientela.core.web.i18n import _, _l

PAGE_SIZE = 25
TIMELINE_PAGE_SIZE = 50
#: the list's filters, in the order of the query string of a saved view
FILTERS = ("q", "stage", "kind", "owner_id", "tag", "sort")
SORTS = {"display_name": _l("Name (A–Z)"), "-display_name": _l("Name (Z–A)"),
         "-updated_at": _l("Recently changed"), "-created_at": _l("Newest"),
         "created_at": _l("Oldest"), "stage": _l("Stage")}
KIND_LABELS = {"person": _l("Person"), "organisation": _l("Organisation")}
MAX_SAVED_VIEWS = 50
#: the channel field that holds a phone call's length (``clientela_channels``)
DURATION_FIELD = "duration_seconds"


def schema_errors(exc: marshmallow.ValidationError) -> ValidationError:
    """marshmallow's errors (the API's schemas) as the core's ``ValidationError``."""
    messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
    flat = {key: value if isinstance(value, list) else [str(value)]
            for key, value in messages.items()}
    return ValidationError(flat)


def kind_label(kind: str) -> str:
    return str(KIND_LABELS.get(kind, kind))


# --- the list -----------------------------------------------------------------------


def list_filters(args) -> dict[str, str]:
    """The list's filters from a query string, empty ones dropped."""
    return {key: args.get(key, "").strip() for key in FILTERS if args.get(key, "").strip()}


def _owner_choices() -> list[tuple[str, str]]:
    users = db.session.execute(
        db.select(User).where(User.is_active.is_(True)).order_by(User.email)).scalars()
    return [(str(u.id), u.name or u.email) for u in users]


@bp.route("/customers")
@requires("customers:read")
def customers():
    who = principal()
    filters = list_filters(request.args)
    errors: dict[str, list[str]] = {}
    query: dict[str, Any] = {"q": filters.get("q"), "tag": filters.get("tag")}
    if filters.get("stage") in LIFECYCLE_STAGES:
        query["stage"] = filters["stage"]
    if filters.get("kind") in CUSTOMER_KINDS:
        query["kind"] = filters["kind"]
    if filters.get("owner_id"):
        try:
            query["owner_id"] = uuid.UUID(filters["owner_id"])
        except ValueError:
            errors["owner_id"] = [_("Choose one of the offered owners.")]
    sort = filters.get("sort") if filters.get("sort") in SORTS else "display_name"
    page = max(1, request.args.get("page", 1, type=int) or 1)
    stmt = service.customers_query(who, **query)
    stmt = service.order_by(stmt, Customer, sort, service.SORTABLE, "display_name")
    rows, total = service.page(stmt, page, PAGE_SIZE)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    context = dict(customers=rows, total=total, page=page, pages=pages, args=filters,
                   filters=filters, errors=errors, q=filters.get("q", ""), kind_label=kind_label)
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "customer-rows":
        return render_template("web/customers_rows.html", **context, oob=True)
    return render_template(
        "web/customers.html", **context, stages=[(s, _stage(s)) for s in LIFECYCLE_STAGES],
        kinds=[(k, kind_label(k)) for k in CUSTOMER_KINDS], owners=_owner_choices(),
        sorts=[(key, str(label)) for key, label in SORTS.items()],
        saved_views=saved_views(g.web_user), can_write=who.can("customers:write"),
        can_import=who.scope("customers:write") == "all")


def _stage(stage: str) -> str:
    from clientela.core.web import stage_label

    return stage_label(stage)


# --- saved views: the user's named filter sets, in ``users.attributes["saved_views"]`` --


def saved_views(user: User) -> list[dict[str, Any]]:
    views = (user.attributes or {}).get("saved_views") or []
    return [v for v in views if isinstance(v, dict) and v.get("name")]


def _store_views(user: User, views: list[dict[str, Any]]) -> None:
    user.attributes = {**(user.attributes or {}), "saved_views": views}
    db.session.commit()


@bp.route("/customers/views", methods=["POST"])
@requires("customers:read")
def save_view():
    name = (request.form.get("view_name") or "").strip()
    filters = list_filters(request.form)
    user = g.web_user
    if not name or len(name) > 80:
        raise ValidationError({"view_name": [_("Give the view a name of 1 to 80 characters.")]})
    views = [v for v in saved_views(user) if v["name"] != name]
    if len(views) >= MAX_SAVED_VIEWS:
        raise ValidationError({"view_name": [_("You have too many saved views; delete one first.")]})
    views.append({"name": name, "filters": filters})
    _store_views(user, sorted(views, key=lambda v: v["name"].lower()))
    flash(_("View “%(name)s” saved.", name=name), "success")
    return redirect(url_for("web.customers", **filters))


@bp.route("/customers/views/delete", methods=["POST"])
@requires("customers:read")
def delete_view():
    name = (request.form.get("view_name") or "").strip()
    user = g.web_user
    views = saved_views(user)
    kept = [v for v in views if v["name"] != name]
    if len(kept) != len(views):
        _store_views(user, kept)
        flash(_("View “%(name)s” deleted.", name=name), "success")
    return redirect(url_for("web.customers"))


# --- the customer form ----------------------------------------------------------------

FORM_FIELDS = ("kind", "first_name", "last_name", "organisation_name", "email", "phone",
               "website", "stage", "tags", "owner_id", "organisation_id", "external_id")


def _form_data(form, *, partial: bool) -> dict[str, Any]:
    """The submitted customer form as the service's data, checked with the API's schema."""
    raw: dict[str, Any] = {}
    for field in FORM_FIELDS:
        if field not in form:
            continue
        value = form.get(field, "").strip()
        if field == "tags":
            raw["tags"] = [t.strip() for t in value.split(",") if t.strip()]
        elif field in ("kind", "stage"):
            if value:
                raw[field] = value
        else:
            raw[field] = value or None
    schema = schemas.CustomerUpdate(partial=True) if partial else schemas.CustomerInput()
    try:
        return schema.load(raw)
    except marshmallow.ValidationError as exc:
        errors = schema_errors(exc).errors
    # the schema stopped before the services: add their e-mail and phone checks, so that
    # every field's problem is shown at once
    region = current_app.config.get("PHONE_DEFAULT_REGION")
    for field, check in (("email", services.normalise_email),
                         ("phone", lambda v: services.normalise_phone(v, region))):
        if raw.get(field) and field not in errors:
            try:
                check(raw[field])
            except ValidationError as exc:
                errors.update(exc.errors)
    raise ValidationError(errors)


def _organisation_choices(who, exclude: uuid.UUID | None = None) -> list[tuple[str, str]]:
    stmt = service.customers_query(who, kind="organisation").order_by(Customer.display_name)
    if exclude is not None:
        stmt = stmt.where(Customer.id != exclude)
    return [(str(c.id), c.display_name) for c in db.session.execute(stmt.limit(500)).scalars()]


def _form_page(values: dict[str, Any], errors: dict, customer: Customer | None, status=200):
    who = principal()
    owners = _owner_choices()
    if who.scope("customers:write") == "own":
        owners = [o for o in owners if o[0] == str(who.user_id)]
    organisations = _organisation_choices(who, customer.id if customer else None)
    if customer is not None:
        # the current owner (maybe deactivated) and organisation (maybe beyond the first
        # 500) stay choosable, so that saving the form does not clear them
        if customer.owner_id and str(customer.owner_id) not in dict(owners):
            user = db.session.get(User, (customer.tenant_id, customer.owner_id))
            owners.append((str(customer.owner_id), (user.name or user.email) if user
                           else str(customer.owner_id)))
        if customer.organisation_id and str(customer.organisation_id) not in dict(organisations):
            org = db.session.execute(service.customers_query(who).where(
                Customer.id == customer.organisation_id)).scalar_one_or_none()
            organisations.append((str(customer.organisation_id),
                                  org.display_name if org else str(customer.organisation_id)))
    return render_template(
        "web/customer_form.html", values=values, errors=errors, customer=customer,
        kinds=[(k, kind_label(k)) for k in CUSTOMER_KINDS],
        stages=[(s, _stage(s)) for s in LIFECYCLE_STAGES], owners=owners,
        organisations=organisations,
    ), status


def _values(customer: Customer) -> dict[str, Any]:
    values = {field: getattr(customer, field) for field in FORM_FIELDS}
    values["tags"] = ", ".join(customer.tags or [])
    return values


@bp.route("/customers/new", methods=["GET", "POST"])
@requires("customers:write")
def new_customer():
    who = principal()
    if request.method == "GET":
        return _form_page({"kind": "person", "stage": "lead", "owner_id": str(who.user_id)},
                          {}, None)
    try:
        data = _form_data(request.form, partial=False)
        found = service.create(data, who)
        db.session.commit()
    except ValidationError as exc:
        db.session.rollback()
        return _form_page(request.form.to_dict(), field_errors(exc), None, 422)
    flash(_("Customer “%(name)s” created.", name=found.display_name), "success")
    return redirect(url_for("web.customer", customer_id=found.id))


@bp.route("/customers/<customer_id>/edit", methods=["GET", "POST"])
@requires("customers:write")
def edit_customer(customer_id: str):
    who = principal()
    found = service.get_customer(parse_id(customer_id), who, "customers:write")
    if request.method == "GET":
        return _form_page(_values(found), {}, found)
    try:
        data = _form_data(request.form, partial=True)
        found = service.update(found.id, data, who)
        db.session.commit()
    except ValidationError as exc:
        db.session.rollback()
        found = service.get_customer(found.id, who)
        return _form_page(request.form.to_dict(), field_errors(exc), found, 422)
    flash(_("Customer “%(name)s” saved.", name=found.display_name), "success")
    return redirect(url_for("web.customer", customer_id=found.id))


@bp.route("/customers/<customer_id>/delete", methods=["GET", "POST"])
@requires("customers:delete")
def delete_customer(customer_id: str):
    who = principal()
    found = service.get_customer(parse_id(customer_id), who, "customers:delete")
    if request.method == "GET":
        return render_template("web/customer_delete.html", customer=found)
    name = found.display_name
    service.delete(found.id, who)
    db.session.commit()
    flash(_("Customer “%(name)s” deleted.", name=name), "success")
    return redirect(url_for("web.customers"))


# --- the 360° page ----------------------------------------------------------------------


def channel_choices() -> list[tuple[str, str]]:
    from clientela.core.web import channel_label

    return sorted(((key, channel_label(key)) for key in channels.registry()),
                  key=lambda item: item[1].lower())


def _duration_channels() -> list[str]:
    return sorted(key for key, channel in channels.registry().items()
                  if DURATION_FIELD in channel.fields)


def _customer_page(found: Customer, form: dict[str, Any] | None = None,
                   errors: dict | None = None, status: int = 200):
    from clientela.core.web import direction_label

    who = principal()
    profile = service.profile(found.id, who)
    page = max(1, request.args.get("page", 1, type=int) or 1)
    timeline, total = [], 0
    if who.can("interactions:read"):
        stmt = service.interactions_query(who, customer_id=found.id).order_by(
            Interaction.occurred_at.desc(), Interaction.id.desc())
        timeline, total = service.page(stmt, page, TIMELINE_PAGE_SIZE)
    owner = db.session.get(User, (found.tenant_id, found.owner_id)) if found.owner_id else None
    form = form or {"direction": "outbound", "channel": "phone"
                    if "phone" in channels.registry() else ""}
    return render_template(
        "web/customer.html", customer=found, profile=profile, owner=owner,
        timeline=timeline, timeline_total=total, page=page,
        pages=max(1, math.ceil(total / TIMELINE_PAGE_SIZE)),
        panels=customer_panels(found.id), form=form, errors=errors or {},
        channel_choices=channel_choices(), duration_channels=_duration_channels(),
        directions=[(d, direction_label(d)) for d in DIRECTIONS],
        can_log=who.can("interactions:write"),
        can_edit=access.in_scope(found.owner_id, who, "customers:write")
        if who.can("customers:write") else False,
        can_delete=who.can("customers:delete")
        and access.in_scope(found.owner_id, who, "customers:delete"),
        can_export=who.can("customers:export"), kind_label=kind_label,
    ), status


@bp.route("/customers/<customer_id>")
@requires("customers:read")
def customer(customer_id: str):
    return _customer_page(service.get_customer(parse_id(customer_id), principal()))


_DURATION = re.compile(r"^\s*(\d{1,4})(?::([0-5]?\d))?\s*$")


def parse_duration(text: str) -> int | None:
    """``"12"`` (minutes) or ``"12:30"`` (minutes:seconds) as seconds; ``None`` if empty."""
    if not text.strip():
        return None
    match = _DURATION.match(text)
    if not match:
        raise ValidationError({"duration": [_("Write minutes, or minutes:seconds (e.g. 4:30).")]})
    return int(match.group(1)) * 60 + int(match.group(2) or 0)


def parse_moment(text: str) -> dt.datetime | None:
    """A ``datetime-local`` value (read as UTC); ``None`` if empty."""
    if not text.strip():
        return None
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError({"occurred_at": [_("Give a date and time.")]}) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    if moment > utcnow() + dt.timedelta(days=1):
        raise ValidationError({"occurred_at": [_("An interaction cannot be in the future.")]})
    return moment


def interaction_data(form) -> dict[str, Any]:
    """The "log an interaction" form as the service's data (the API's schema checks it)."""
    errors: dict[str, list[str]] = {}
    registry = channels.registry()
    channel = (form.get("channel") or "").strip()
    if registry and channel not in registry:
        errors["channel"] = [_("Choose one of the offered channels.")]
    raw = {"channel": channel, "direction": form.get("direction") or "inbound",
           "subject": (form.get("subject") or "").strip(), "body": form.get("body") or ""}
    if form.get("outcome", "").strip():
        raw["outcome"] = form["outcome"].strip()
    try:
        data = schemas.InteractionInput().load(raw)
    except marshmallow.ValidationError as exc:
        errors.update(schema_errors(exc).errors)
        data = {}
    for field, parse in (("occurred_at", parse_moment), ("duration", parse_duration)):
        try:
            data[field] = parse(form.get(field) or "")
        except ValidationError as exc:
            errors.update(exc.errors)
    duration = data.pop("duration", None)
    if duration is not None and "channel" not in errors:
        known = registry.get(channel)
        if known is None or DURATION_FIELD not in known.fields:
            errors["duration"] = [_("Only calls have a duration.")]
        else:
            data["attributes"] = {DURATION_FIELD: duration}
    if errors:
        raise ValidationError(errors)
    if data.get("occurred_at") is None:
        data.pop("occurred_at", None)
    return data


@bp.route("/customers/<customer_id>/interactions", methods=["POST"])
@requires("interactions:write")
def log_interaction(customer_id: str):
    who = principal()
    found = service.get_customer(parse_id(customer_id), who)
    try:
        service.record_interaction(found.id, interaction_data(request.form), who)
        db.session.commit()
    except ValidationError as exc:
        db.session.rollback()
        found = service.get_customer(found.id, who)
        return _customer_page(found, request.form.to_dict(), field_errors(exc), 422)
    flash(_("Interaction logged."), "success")
    return redirect(url_for("web.customer", customer_id=found.id) + "#timeline-title")


@bp.route("/customers/<customer_id>/export.json")
@requires("customers:export")
def export_customer(customer_id: str):
    """The data-subject access document (the API's ``/customers/<id>/export``), as a download."""
    who = principal()
    document = service.export(parse_id(customer_id), who)
    db.session.commit()
    body = json.dumps(document, ensure_ascii=False, indent=2, default=str)
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    return Response(body, mimetype="application/json", headers={
        "Content-Disposition": f'attachment; filename="customer-{customer_id}-{stamp}.json"'})

