"""The operational plugin's business logic: leads and their score, web forms, pipelines and
deals, the kanban board, sales targets and the forecast.

Every function runs in the current tenant and needs no request; those acting for a user take
the ``Principal`` whose permissions and record scope apply. They flush but never commit.
"""

from __future__ import annotations

import calendar
import datetime as dt
import decimal
import html
import secrets
import uuid
from typing import Any

import sqlalchemy as sa
from flask import current_app

from clientela.core import access, customers, services, tenancy
from clientela.core.access import Principal
from clientela.core.db import db, utcnow
from clientela.core.errors import Conflict, Forbidden, NotFound, ValidationError
from clientela.core.models import AuditEvent, Customer, User
from clientela.plugins.operational.models import (
    FORECAST_CATEGORIES,
    LEAD_STATUSES,
    RULE_FIELDS,
    Deal,
    DealItem,
    DealStageChange,
    Lead,
    LeadScoringRule,
    Pipeline,
    SalesTarget,
    Stage,
    WebForm,
)

CENT = decimal.Decimal("0.01")
ZERO = decimal.Decimal("0")
INTERACTION_SOURCE = "operational"

LEAD_SORT = {"created_at", "updated_at", "score", "status", "last_name", "company", "email"}
DEAL_SORT = {"created_at", "updated_at", "amount", "expected_close_date", "title", "status"}

DEFAULT_STAGES = (
    ("Qualification", 10, "open"),
    ("Needs analysis", 25, "open"),
    ("Proposal", 50, "open"),
    ("Negotiation", 75, "open"),
    ("Won", 100, "won"),
    ("Lost", 0, "lost"),
)


def _config(key: str):
    return current_app.config[key]


def _money(value) -> decimal.Decimal:
    return decimal.Decimal(value or 0).quantize(CENT, rounding=decimal.ROUND_HALF_UP)


def _check_owner(owner_id: uuid.UUID | None, principal: Principal | None, permission: str,
                 field: str = "owner_id") -> None:
    """The owner must be an active user of the tenant; ``own`` scope may only assign itself
    (and may not leave a record without owner, which would hide it from its writer)."""
    if principal is not None and principal.scope(permission) == "own" and (
        owner_id != principal.user_id
    ):
        raise Forbidden("you may only assign records to yourself")
    if owner_id is None:
        return
    exists = db.session.execute(
        db.select(User.id).where(User.id == owner_id, User.is_active.is_(True))
    ).first()
    if exists is None:
        raise ValidationError({field: ["no active user with this id"]})


def _normalise_contact(data: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    region = current_app.config.get("PHONE_DEFAULT_REGION")
    if "email" in data:
        try:
            data["email"] = services.normalise_email(data["email"])
        except ValidationError as exc:
            errors.update(exc.errors)
    if "phone" in data:
        try:
            data["phone"] = services.normalise_phone(data["phone"], region)
        except ValidationError as exc:
            errors.update(exc.errors)
    if data.get("country"):
        data["country"] = data["country"].upper()
    if errors:
        raise ValidationError(errors)
    return data


# --- lead scoring ------------------------------------------------------------------


def _rule_matches(rule: LeadScoringRule, lead: Lead) -> bool:
    if rule.field.startswith("attributes."):
        actual = (lead.attributes or {}).get(rule.field.split(".", 1)[1])
    else:
        actual = getattr(lead, rule.field, None)
    text = "" if actual is None else str(actual).strip().lower()
    wanted = (rule.value or "").strip().lower()
    if rule.operator == "present":
        return bool(text)
    if rule.operator == "absent":
        return not text
    if rule.operator == "equals":
        return text == wanted
    if rule.operator == "not_equals":
        return text != wanted
    if rule.operator == "contains":
        return bool(wanted) and wanted in text
    if rule.operator == "ends_with":
        return bool(wanted) and text.endswith(wanted)
    return False


def active_rules() -> list[LeadScoringRule]:
    return list(db.session.execute(
        db.select(LeadScoringRule).where(LeadScoringRule.active.is_(True))
        .order_by(LeadScoringRule.created_at)
    ).scalars())


def score(lead: Lead, rules: list[LeadScoringRule] | None = None) -> int:
    """The sum of the points of the active rules that ``lead`` matches."""
    rules = active_rules() if rules is None else rules
    return sum(rule.points for rule in rules if _rule_matches(rule, lead))


def rescore_leads() -> int:
    """Recompute the score of every lead not yet converted (after a rule changed)."""
    rules = active_rules()
    count = 0
    for lead in db.session.execute(db.select(Lead).where(Lead.status != "converted")).scalars():
        new = score(lead, rules)
        if lead.score != new:
            lead.score = new
            count += 1
    db.session.flush()
    return count


def _check_rule(data: dict[str, Any]) -> None:
    field = data.get("field")
    if field is not None and field not in RULE_FIELDS and not (
        field.startswith("attributes.") and len(field) > len("attributes.")
    ):
        raise ValidationError({"field": [f"use one of {', '.join(RULE_FIELDS)} or "
                                         "'attributes.<name>'"]})


def rules_query(principal: Principal):
    access.require(principal, "leads:read")
    return db.select(LeadScoringRule).order_by(LeadScoringRule.created_at, LeadScoringRule.id)


def get_rule(rule_id: uuid.UUID, principal: Principal, write: bool = False) -> LeadScoringRule:
    rule = db.session.execute(
        rules_query(principal).where(LeadScoringRule.id == rule_id)
    ).scalar_one_or_none()
    if rule is None:
        raise NotFound("scoring rule not found")
    if write:
        access.require(principal, "leads:configure")
    return rule


def create_rule(data: dict[str, Any], principal: Principal) -> LeadScoringRule:
    access.require(principal, "leads:configure")
    _check_rule(data)
    rule = LeadScoringRule(**data)
    db.session.add(rule)
    db.session.flush()
    rescore_leads()
    return rule


def update_rule(rule_id: uuid.UUID, data: dict[str, Any], principal: Principal
                ) -> LeadScoringRule:
    rule = get_rule(rule_id, principal, write=True)
    _check_rule(data)
    for key, value in data.items():
        setattr(rule, key, value)
    db.session.flush()
    rescore_leads()
    return rule


def delete_rule(rule_id: uuid.UUID, principal: Principal) -> None:
    rule = get_rule(rule_id, principal, write=True)
    db.session.delete(rule)
    db.session.flush()
    rescore_leads()


# --- leads ---------------------------------------------------------------------------


def leads_query(principal: Principal, *, status: str | None = None, source: str | None = None,
                owner_id: uuid.UUID | None = None, q: str | None = None,
                min_score: int | None = None, web_form_id: uuid.UUID | None = None,
                customer_id: uuid.UUID | None = None):
    """The select of the leads ``principal`` may read, filtered."""
    stmt = access.scope_filter(db.select(Lead), Lead.owner_id, principal, "leads:read")
    for column, value in ((Lead.status, status), (Lead.source, source),
                          (Lead.owner_id, owner_id), (Lead.web_form_id, web_form_id),
                          (Lead.customer_id, customer_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    if min_score is not None:
        stmt = stmt.where(Lead.score >= min_score)
    if q and q.strip():
        like = f"%{q.strip().lower()}%"
        stmt = stmt.where(sa.or_(*(sa.func.lower(c).like(like) for c in (
            Lead.first_name, Lead.last_name, Lead.company, Lead.email, Lead.phone))))
    return stmt


def get_lead(lead_id: uuid.UUID, principal: Principal, permission: str = "leads:read") -> Lead:
    """A lead ``principal`` may read (404 otherwise); for a write, 403 without the right."""
    lead = db.session.execute(
        leads_query(principal).where(Lead.id == lead_id)
    ).scalar_one_or_none()
    if lead is None:
        raise NotFound("lead not found")
    if permission != "leads:read":
        access.check_record(lead.owner_id, principal, "leads:read", permission)
    return lead


def create_lead(data: dict[str, Any], principal: Principal | None = None, *,
                web_form: WebForm | None = None) -> Lead:
    """Capture a lead. ``principal`` is ``None`` for a public web form (``web_form``)."""
    data = _normalise_contact(dict(data))
    if principal is not None:
        access.require(principal, "leads:write")
        if "owner_id" in data:
            _check_owner(data["owner_id"], principal, "leads:write")
    if web_form is not None:
        data.setdefault("source", web_form.source)
        data["owner_id"] = web_form.owner_id
        data["web_form_id"] = web_form.id
    if not any(data.get(f) for f in ("first_name", "last_name", "company", "email", "phone")):
        raise ValidationError({"email": ["give a name, a company, an e-mail or a phone"]})
    if data.get("status") == "converted":
        raise ValidationError({"status": ["a lead becomes converted through /convert"]})
    if data.get("owner_id") is None and ("owner_id" not in data or web_form is not None):
        data["owner_id"] = _routed_owner(data, principal)
    lead = Lead(**data)
    lead.score = score(lead)
    db.session.add(lead)
    db.session.flush()
    return lead


def _routed_owner(data: dict[str, Any], principal: Principal | None) -> uuid.UUID | None:
    """The owner of a lead nobody was assigned to: the routing rules' choice (when the
    creator may assign others), else the creator."""
    from clientela.plugins.operational import work

    if work.may_route(principal, "leads:write"):
        draft = Lead(**data)
        draft.score = score(draft)
        routed = work.route("lead", draft)
        if routed is not None:
            return routed
    return principal.user_id if principal is not None else None


def update_lead(lead_id: uuid.UUID, data: dict[str, Any], principal: Principal) -> Lead:
    lead = get_lead(lead_id, principal, "leads:write")
    data = _normalise_contact(dict(data))
    if "owner_id" in data:
        _check_owner(data["owner_id"], principal, "leads:write")
    if "status" in data and data["status"] != lead.status and (
        "converted" in (data["status"], lead.status)
    ):
        raise ValidationError({"status": ["a lead becomes converted through /convert, "
                                          "and stays so"]})
    for key, value in data.items():
        setattr(lead, key, value)
    lead.score = score(lead)
    db.session.flush()
    return lead


def delete_lead(lead_id: uuid.UUID, principal: Principal) -> None:
    lead = get_lead(lead_id, principal, "leads:write")
    db.session.delete(lead)
    db.session.flush()


def _match_customer(lead: Lead) -> tuple[Customer | None, str | None]:
    """An existing customer with the lead's e-mail or phone, across the tenant."""
    for field, value in (("email", lead.email), ("phone", lead.phone)):
        if not value:
            continue
        column = getattr(Customer, field)
        found = db.session.execute(
            db.select(Customer)
            .where(column == value, Customer.display_name != customers.ERASED_NAME)
            .order_by(Customer.created_at, Customer.id).limit(1)
        ).scalar_one_or_none()
        if found is not None:
            return found, field
    return None, None


def convert_lead(lead_id: uuid.UUID, data: dict[str, Any], principal: Principal
                 ) -> dict[str, Any]:
    """Turn a lead into a customer — an existing one with the same e-mail or phone when there
    is one, so that nothing is duplicated — and optionally a deal. The conversion is
    recorded on the customer's timeline."""
    lead = get_lead(lead_id, principal, "leads:write")
    if lead.status == "converted":
        raise Conflict("this lead is already converted")
    matched_by = None
    if data.get("customer_id"):
        customer = customers.get_customer(data["customer_id"], principal)
        matched_by = "customer_id"
    else:
        customer, matched_by = _match_customer(lead)
    created = customer is None
    if created:
        is_org = not (lead.first_name or lead.last_name) and bool(lead.company)
        values = {"kind": "organisation", "organisation_name": lead.company} if is_org else {
            "first_name": lead.first_name, "last_name": lead.last_name}
        # the lead's owner keeps the customer, unless the converter may only own customers
        owner = lead.owner_id if principal.scope("customers:write") in ("all", "team") else None
        values.update({"email": lead.email, "phone": lead.phone, "stage": "prospect",
                       "owner_id": owner or principal.user_id})
        if lead.company and not is_org:
            values["attributes"] = {"company": lead.company}
        customer = customers.create(values, principal)
    deal = None
    if data.get("deal") is not None:
        deal_data = {"title": lead.company or customer.display_name, **data["deal"],
                     "customer_id": customer.id}
        deal_data.setdefault("owner_id", lead.owner_id or principal.user_id)
        deal = create_deal(deal_data, principal)
    lead.status = "converted"
    lead.customer_id = customer.id
    lead.deal_id = deal.id if deal is not None else None
    lead.converted_at = utcnow()
    services.record_interaction(
        customer.id, "crm", direction="internal", user_id=principal.user_id,
        subject=f"Lead converted{' with deal ' + deal.title if deal else ''}",
        body=f"Source: {lead.source}; score {lead.score}.", outcome="converted",
        source=INTERACTION_SOURCE, external_id=f"lead:{lead.id}:converted",
    )
    db.session.flush()
    return {"lead": lead, "customer_id": customer.id, "customer_created": created,
            "matched_by": None if created else matched_by, "deal": deal}


# --- web forms -------------------------------------------------------------------------

DEFAULT_FORM_FIELDS = ["first_name", "last_name", "company", "email", "phone", "message"]
FORM_FIELDS = ("first_name", "last_name", "company", "title", "email", "phone", "country",
               "message")


def new_form_key(tenant_id: uuid.UUID) -> str:
    """``<tenant id hex>-<random>``: the key names its tenant, so that a submission is looked
    up inside that tenant (Row-Level Security never has to be lifted), and the random part
    makes it unguessable."""
    return f"{tenant_id.hex}-{secrets.token_urlsafe(18)}"


def tenant_of_form_key(key: str) -> uuid.UUID | None:
    head, sep, tail = (key or "").partition("-")
    if not sep or len(head) != 32 or not tail:
        return None
    try:
        return uuid.UUID(hex=head)
    except ValueError:
        return None


def _check_form(data: dict[str, Any], form: WebForm | None = None) -> None:
    fields = data.get("fields", form.fields if form else DEFAULT_FORM_FIELDS)
    required = data.get("required", form.required if form else ["email"])
    errors = {}
    unknown = [f for f in fields if f not in FORM_FIELDS]
    if unknown:
        errors["fields"] = [f"unknown field(s) {', '.join(unknown)}; use {', '.join(FORM_FIELDS)}"]
    if any(f not in fields for f in required):
        errors["required"] = ["every required field must be one of the form's fields"]
    if data.get("honeypot") in FORM_FIELDS:
        errors["honeypot"] = ["the honeypot must not be a real field"]
    if errors:
        raise ValidationError(errors)


def forms_query(principal: Principal):
    access.require(principal, "forms:read")
    return db.select(WebForm).order_by(WebForm.created_at, WebForm.id)


def get_form(form_id: uuid.UUID, principal: Principal, write: bool = False) -> WebForm:
    form = db.session.execute(
        forms_query(principal).where(WebForm.id == form_id)
    ).scalar_one_or_none()
    if form is None:
        raise NotFound("web form not found")
    if write:
        access.require(principal, "forms:write")
    return form


def create_form(data: dict[str, Any], principal: Principal) -> WebForm:
    access.require(principal, "forms:write")
    data = dict(data)
    data.setdefault("fields", list(DEFAULT_FORM_FIELDS))
    data.setdefault("required", ["email"])
    _check_form(data)
    _check_owner(data.get("owner_id"), None, "forms:write")
    form = WebForm(key=new_form_key(tenancy.current_tenant_id()), **data)
    db.session.add(form)
    db.session.flush()
    return form


def update_form(form_id: uuid.UUID, data: dict[str, Any], principal: Principal) -> WebForm:
    form = get_form(form_id, principal, write=True)
    _check_form(data, form)
    if "owner_id" in data:
        _check_owner(data["owner_id"], None, "forms:write")
    rotate = data.pop("rotate_key", False)
    for key, value in data.items():
        setattr(form, key, value)
    if rotate:
        form.key = new_form_key(tenancy.current_tenant_id())
    db.session.flush()
    return form


def delete_form(form_id: uuid.UUID, principal: Principal) -> None:
    form = get_form(form_id, principal, write=True)
    db.session.execute(sa.update(Lead).where(Lead.web_form_id == form.id)
                       .values(web_form_id=None).execution_options(synchronize_session=False))
    db.session.delete(form)
    db.session.flush()


def find_form(key: str) -> WebForm | None:
    """The active form with ``key`` in the current tenant."""
    return db.session.execute(
        db.select(WebForm).where(WebForm.key == key, WebForm.active.is_(True))
    ).scalar_one_or_none()


def submit_form(form: WebForm, values: dict[str, Any]) -> Lead | None:
    """Record a public submission as a lead; ``None`` (nothing stored) when the honeypot is
    filled. Raises ``ValidationError`` with per-field messages."""
    if str(values.get(form.honeypot) or "").strip():
        return None
    errors: dict[str, list[str]] = {}
    data: dict[str, Any] = {}
    limits = {"message": 5000, "email": 320, "phone": 40, "country": 2, "title": 100,
              "company": 200}
    for field in form.fields:
        value = values.get(field)
        value = "" if value is None else str(value).strip()
        if "\x00" in value:
            errors[field] = ["NUL characters are not allowed"]
        elif len(value) > limits.get(field, 100):
            errors[field] = [f"at most {limits.get(field, 100)} characters"]
        elif field in form.required and not value:
            errors[field] = ["this field is required"]
        elif value:
            data[field] = value
    if errors:
        raise ValidationError(errors)
    return create_lead(data, web_form=form)


_INPUT_TYPES = {"email": "email", "phone": "tel"}
_LABELS = {"first_name": "First name", "last_name": "Last name", "company": "Company",
           "title": "Job title", "email": "E-mail", "phone": "Phone", "country": "Country",
           "message": "Message"}


def snippet(form: WebForm, action: str) -> str:
    """An HTML form to paste into a web page; it posts to ``action``."""
    esc = html.escape
    lines = [f'<form action="{esc(action)}" method="post" accept-charset="utf-8" '
             f'class="clientela-form" data-form="{esc(str(form.id))}">']
    for field in form.fields:
        required = " required" if field in form.required else ""
        label = esc(_LABELS.get(field, field))
        if field == "message":
            control = f'<textarea name="message" id="cf-message"{required}></textarea>'
        else:
            kind = _INPUT_TYPES.get(field, "text")
            control = f'<input type="{kind}" name="{field}" id="cf-{field}"{required}>'
        lines.append(f'  <p><label for="cf-{field}">{label}</label> {control}</p>')
    # people never see or fill the honeypot; bots that fill every field do
    lines.append(f'  <p style="position:absolute;left:-10000px" aria-hidden="true">'
                 f'<input type="text" name="{esc(form.honeypot)}" tabindex="-1" '
                 f'autocomplete="off"></p>')
    lines.append('  <p><button type="submit">Send</button></p>')
    lines.append("</form>")
    return "\n".join(lines) + "\n"


# --- pipelines and stages -----------------------------------------------------------------


def _can_read_pipelines(principal: Principal) -> None:
    if not (principal.can("deals:read") or principal.can("pipelines:write")):
        raise Forbidden("you lack the permission 'deals:read'")


def pipelines_query(principal: Principal):
    _can_read_pipelines(principal)
    return db.select(Pipeline).order_by(Pipeline.position, Pipeline.name, Pipeline.id)


def stages_of(pipeline_id: uuid.UUID) -> list[Stage]:
    return list(db.session.execute(
        db.select(Stage).where(Stage.pipeline_id == pipeline_id)
        .order_by(Stage.position, Stage.id)
    ).scalars())


def get_pipeline(pipeline_id: uuid.UUID, principal: Principal, write: bool = False) -> Pipeline:
    pipeline = db.session.execute(
        pipelines_query(principal).where(Pipeline.id == pipeline_id)
    ).scalar_one_or_none()
    if pipeline is None:
        raise NotFound("pipeline not found")
    if write:
        access.require(principal, "pipelines:write")
    return pipeline


def _check_stages(stages: list[dict[str, Any]]) -> None:
    errors = []
    names = [s["name"].strip().lower() for s in stages]
    if len(set(names)) != len(names):
        errors.append("stage names must be unique in a pipeline")
    if not any(s.get("kind", "open") == "open" for s in stages):
        errors.append("a pipeline needs at least one open stage")
    if errors:
        raise ValidationError({"stages": errors})


def _set_default(pipeline: Pipeline) -> None:
    db.session.execute(sa.update(Pipeline).where(Pipeline.id != pipeline.id)
                       .values(is_default=False).execution_options(synchronize_session="fetch"))
    pipeline.is_default = True


def create_pipeline(data: dict[str, Any], principal: Principal | None = None) -> Pipeline:
    """A pipeline with its stages, in the order given. ``principal`` ``None``: the system."""
    if principal is not None:
        access.require(principal, "pipelines:write")
    stages = data.get("stages") or [
        {"name": n, "probability": p, "kind": k} for n, p, k in DEFAULT_STAGES]
    _check_stages(stages)
    first = db.session.execute(db.select(Pipeline.id).limit(1)).first() is None
    pipeline = Pipeline(name=data["name"], position=data.get("position", 0))
    db.session.add(pipeline)
    db.session.flush()
    for position, stage in enumerate(stages):
        db.session.add(Stage(pipeline_id=pipeline.id, name=stage["name"], position=position,
                             probability=stage.get("probability", 0),
                             kind=stage.get("kind", "open")))
    if data.get("is_default") or first:
        _set_default(pipeline)
    db.session.flush()
    return pipeline


def update_pipeline(pipeline_id: uuid.UUID, data: dict[str, Any], principal: Principal
                    ) -> Pipeline:
    """Rename, reorder, make default; ``stages`` (with ``id`` for existing ones) replaces the
    list: stages left out are deleted, unless a deal is or was ever in them (409)."""
    pipeline = get_pipeline(pipeline_id, principal, write=True)
    for key in ("name", "position"):
        if key in data:
            setattr(pipeline, key, data[key])
    if data.get("is_default"):
        _set_default(pipeline)
    if "stages" in data:
        existing = {s.id: s for s in stages_of(pipeline.id)}
        stages = [{"kind": existing[s["id"]].kind, **s} if s.get("id") in existing else s
                  for s in data["stages"]]
        _check_stages(stages)
        unknown = [str(s["id"]) for s in stages if s.get("id") and s["id"] not in existing]
        if unknown:
            raise ValidationError({"stages": [f"no stage {i} in this pipeline" for i in unknown]})
        kept = {s["id"] for s in stages if s.get("id")}
        for stage_id, stage in existing.items():
            if stage_id not in kept:
                if _stage_used(stage_id):
                    raise Conflict(f"stage '{stage.name}' holds or held deals; keep or rename it")
                db.session.delete(stage)
        for position, item in enumerate(stages):
            stage = existing.get(item.get("id")) or Stage(pipeline_id=pipeline.id)
            stage.name, stage.position = item["name"], position
            stage.probability = item.get("probability", stage.probability or 0)
            new_kind = item.get("kind", stage.kind or "open")
            if stage.id is not None and new_kind != stage.kind and _deals_in(stage.id):
                raise Conflict(f"stage '{stage.name}' holds deals; its kind cannot change")
            stage.kind = new_kind
            db.session.add(stage)
    db.session.flush()
    return pipeline


def _deals_in(stage_id: uuid.UUID) -> bool:
    return db.session.execute(db.select(Deal.id).where(Deal.stage_id == stage_id).limit(1)
                              ).first() is not None


def _stage_used(stage_id: uuid.UUID) -> bool:
    return _deals_in(stage_id) or db.session.execute(
        db.select(DealStageChange.id).where(sa.or_(DealStageChange.to_stage_id == stage_id,
                                                   DealStageChange.from_stage_id == stage_id))
        .limit(1)).first() is not None


def delete_pipeline(pipeline_id: uuid.UUID, principal: Principal) -> None:
    pipeline = get_pipeline(pipeline_id, principal, write=True)
    if db.session.execute(db.select(Deal.id).where(Deal.pipeline_id == pipeline.id).limit(1)
                          ).first():
        raise Conflict("the pipeline holds deals; move or delete them first")
    db.session.delete(pipeline)
    db.session.flush()
    if pipeline.is_default:
        other = db.session.execute(db.select(Pipeline).order_by(Pipeline.position, Pipeline.id)
                                   .limit(1)).scalar_one_or_none()
        if other is not None:
            other.is_default = True
            db.session.flush()


def default_pipeline() -> Pipeline | None:
    return db.session.execute(
        db.select(Pipeline).order_by(Pipeline.is_default.desc(), Pipeline.position, Pipeline.id)
        .limit(1)
    ).scalar_one_or_none()


# --- deals ------------------------------------------------------------------------------


def deals_query(principal: Principal, *, pipeline_id=None, stage_id=None, status=None,
                owner_id=None, customer_id=None, forecast_category=None, q=None,
                close_from: dt.date | None = None, close_to: dt.date | None = None):
    """The select of the deals ``principal`` may read, filtered."""
    stmt = access.scope_filter(db.select(Deal), Deal.owner_id, principal, "deals:read")
    for column, value in ((Deal.pipeline_id, pipeline_id), (Deal.stage_id, stage_id),
                          (Deal.status, status), (Deal.owner_id, owner_id),
                          (Deal.customer_id, customer_id),
                          (Deal.forecast_category, forecast_category)):
        if value is not None:
            stmt = stmt.where(column == value)
    if close_from is not None:
        stmt = stmt.where(Deal.expected_close_date >= close_from)
    if close_to is not None:
        stmt = stmt.where(Deal.expected_close_date <= close_to)
    if q and q.strip():
        stmt = stmt.where(sa.func.lower(Deal.title).like(f"%{q.strip().lower()}%"))
    return stmt


def get_deal(deal_id: uuid.UUID, principal: Principal, permission: str = "deals:read") -> Deal:
    deal = db.session.execute(deals_query(principal).where(Deal.id == deal_id)
                              ).scalar_one_or_none()
    if deal is None:
        raise NotFound("deal not found")
    if permission != "deals:read":
        access.check_record(deal.owner_id, principal, "deals:read", permission)
    return deal


def deal_items(deal_id: uuid.UUID) -> list[DealItem]:
    return list(db.session.execute(
        db.select(DealItem).where(DealItem.deal_id == deal_id).order_by(DealItem.position)
    ).scalars())


def deal_history(deal_id: uuid.UUID, principal: Principal) -> list[DealStageChange]:
    get_deal(deal_id, principal)
    return list(db.session.execute(
        db.select(DealStageChange).where(DealStageChange.deal_id == deal_id)
        .order_by(DealStageChange.changed_at, DealStageChange.id)
    ).scalars())


def decorate(deals: list[Deal], with_items: bool = True) -> list[Deal]:
    """Give each deal its stage's ``probability`` (and its ``items``) for the API."""
    if not deals:
        return deals
    stage_ids = {d.stage_id for d in deals}
    probabilities = dict(db.session.execute(
        sa.select(Stage.id, Stage.probability).where(Stage.id.in_(stage_ids))).all())
    items: dict[uuid.UUID, list[DealItem]] = {}
    if with_items:
        for item in db.session.execute(
                db.select(DealItem).where(DealItem.deal_id.in_([d.id for d in deals]))
                .order_by(DealItem.position)).scalars():
            items.setdefault(item.deal_id, []).append(item)
    for deal in deals:
        deal.probability = probabilities.get(deal.stage_id, 0)
        deal.items = items.get(deal.id, [])
    return deals


def _stage(stage_id: uuid.UUID) -> Stage | None:
    return db.session.execute(db.select(Stage).where(Stage.id == stage_id)).scalar_one_or_none()


def _replace_items(deal: Deal, items: list[dict[str, Any]]) -> None:
    db.session.execute(sa.delete(DealItem).where(DealItem.deal_id == deal.id)
                       .execution_options(synchronize_session=False))
    total = ZERO
    for position, item in enumerate(items):
        db.session.add(DealItem(deal_id=deal.id, position=position, product=item["product"],
                                quantity=item["quantity"], unit_price=item["unit_price"]))
        total += decimal.Decimal(item["quantity"]) * decimal.Decimal(item["unit_price"])
    if items:
        # a deal with lines is worth what its lines are worth
        deal.amount = _money(total)


def _enter_stage(deal: Deal, stage: Stage, principal: Principal | None,
                 reason: str | None = None) -> None:
    """Move ``deal`` into ``stage``: a history row, and the outcome when the stage closes it."""
    previous = deal.stage_id
    deal.stage_id = stage.id
    now = utcnow()
    db.session.add(DealStageChange(deal_id=deal.id, from_stage_id=previous, to_stage_id=stage.id,
                                   changed_at=now,
                                   user_id=principal.user_id if principal else None))
    was = deal.status
    deal.status = stage.kind
    if stage.kind == "open":
        deal.closed_at, deal.close_reason = None, None
        return
    if reason is not None:
        deal.close_reason = reason
    if stage.kind == "lost" and not deal.close_reason:
        raise ValidationError({"reason": ["say why the deal was lost"]})
    if was != stage.kind:
        deal.closed_at = now
        if deal.customer_id is not None:
            db.session.flush()
            services.record_interaction(
                deal.customer_id, "crm", direction="internal", occurred_at=now,
                user_id=principal.user_id if principal else None,
                subject=f"Deal {stage.kind}: {deal.title}",
                body=f"{_money(deal.amount)} {deal.currency}"
                     + (f" — {deal.close_reason}" if deal.close_reason else ""),
                outcome=stage.kind, source=INTERACTION_SOURCE,
                external_id=f"deal:{deal.id}:{stage.kind}:{now.isoformat()}",
            )


def _check_deal_refs(data: dict[str, Any], principal: Principal) -> None:
    if data.get("customer_id") is not None:
        customers.get_customer(data["customer_id"], principal)
    if "owner_id" in data:
        _check_owner(data["owner_id"], principal, "deals:write")


def create_deal(data: dict[str, Any], principal: Principal) -> Deal:
    access.require(principal, "deals:write")
    data = dict(data)
    items = data.pop("items", None) or []
    reason = data.pop("close_reason", None)
    data.setdefault("owner_id", principal.user_id)
    data.setdefault("currency", _config("OPERATIONAL_DEFAULT_CURRENCY"))
    data["currency"] = data["currency"].upper()
    _check_deal_refs(data, principal)
    if data.get("pipeline_id") is None:
        pipeline = default_pipeline()
        if pipeline is None:
            raise ValidationError({"pipeline_id": ["create a pipeline first"]})
        data["pipeline_id"] = pipeline.id
    elif db.session.execute(db.select(Pipeline.id).where(Pipeline.id == data["pipeline_id"])
                            ).first() is None:
        raise ValidationError({"pipeline_id": ["no pipeline with this id"]})
    stage_id = data.pop("stage_id", None)
    stages = stages_of(data["pipeline_id"])
    if stage_id is None:
        stage = next((s for s in stages if s.kind == "open"), None)
    else:
        stage = next((s for s in stages if s.id == stage_id), None)
        if stage is None:
            raise ValidationError({"stage_id": ["no stage with this id in the pipeline"]})
    deal = Deal(**data)
    _open(deal, stage, principal, reason, items)
    return deal


def _open(deal: Deal, stage: Stage, principal: Principal | None, reason: str | None = None,
          items: list[dict[str, Any]] | None = None) -> None:
    """Insert a new deal and record its entry into its first stage."""
    deal.stage_id = stage.id
    db.session.add(deal)
    db.session.flush()
    _replace_items(deal, items or [])
    deal.stage_id = None  # the first history row comes from no stage
    _enter_stage(deal, stage, principal, reason)
    db.session.flush()


def update_deal(deal_id: uuid.UUID, data: dict[str, Any], principal: Principal) -> Deal:
    """Change a deal; a new ``stage_id`` (or ``pipeline_id``) is a move, kept in its history."""
    deal = get_deal(deal_id, principal, "deals:write")
    data = dict(data)
    items = data.pop("items", None)
    reason = data.pop("close_reason", None)
    _check_deal_refs(data, principal)
    if data.get("currency"):
        data["currency"] = data["currency"].upper()
    pipeline_id = data.pop("pipeline_id", None) or deal.pipeline_id
    stage_id = data.pop("stage_id", None)
    if pipeline_id != deal.pipeline_id and db.session.execute(
            db.select(Pipeline.id).where(Pipeline.id == pipeline_id)).first() is None:
        raise ValidationError({"pipeline_id": ["no pipeline with this id"]})
    for key, value in data.items():
        setattr(deal, key, value)
    if items is not None:
        _replace_items(deal, items)
    target = None
    if stage_id is not None and stage_id != deal.stage_id:
        target = _stage(stage_id)
        if target is None or target.pipeline_id != pipeline_id:
            raise ValidationError({"stage_id": ["no stage with this id in the pipeline"]})
    elif pipeline_id != deal.pipeline_id:
        target = next((s for s in stages_of(pipeline_id) if s.kind == "open"), None)
    deal.pipeline_id = pipeline_id
    if target is not None:
        _enter_stage(deal, target, principal, reason)
    elif reason is not None:
        deal.close_reason = reason
    db.session.flush()
    return deal


def close_deal(deal_id: uuid.UUID, outcome: str, reason: str | None, principal: Principal
               ) -> Deal:
    """Mark a deal won or lost: it moves to its pipeline's first stage of that kind."""
    deal = get_deal(deal_id, principal, "deals:write")
    stage = next((s for s in stages_of(deal.pipeline_id) if s.kind == outcome), None)
    if stage is None:
        raise ValidationError({"outcome": [f"the pipeline has no '{outcome}' stage"]})
    if deal.status == outcome:
        raise Conflict(f"the deal is already {outcome}")
    _enter_stage(deal, stage, principal, reason)
    db.session.flush()
    return deal


def delete_deal(deal_id: uuid.UUID, principal: Principal) -> None:
    deal = get_deal(deal_id, principal, "deals:write")
    db.session.execute(sa.update(Lead).where(Lead.deal_id == deal.id).values(deal_id=None)
                       .execution_options(synchronize_session=False))
    db.session.delete(deal)
    db.session.flush()


def _weighted(amount, probability) -> decimal.Decimal:
    return decimal.Decimal(amount or 0) * decimal.Decimal(probability) / 100


def _totals(rows) -> dict[str, str]:
    return {currency: str(_money(total)) for currency, total in sorted(rows.items())}


def board(pipeline_id: uuid.UUID, principal: Principal, owner_id: uuid.UUID | None = None,
          limit: int = 50) -> dict[str, Any]:
    """The kanban view: every stage with its deals, their count and their totals per currency
    (amount and amount × the stage's probability)."""
    pipeline = get_pipeline(pipeline_id, principal)
    access.require(principal, "deals:read")
    columns = []
    for stage in stages_of(pipeline.id):
        stmt = deals_query(principal, pipeline_id=pipeline.id, stage_id=stage.id,
                           owner_id=owner_id)
        totals: dict[str, decimal.Decimal] = {}
        weighted: dict[str, decimal.Decimal] = {}
        count = 0
        sub = stmt.subquery()
        sums = db.session.execute(
            sa.select(sub.c.currency, sa.func.count(), sa.func.sum(sub.c.amount))
            .group_by(sub.c.currency)
        ).all()
        for currency, n, total in sums:
            count += n
            totals[currency] = _money(decimal.Decimal(str(total or 0)))
            weighted[currency] = _weighted(totals[currency], stage.probability)
        deals = db.session.execute(
            stmt.order_by(Deal.expected_close_date.is_(None), Deal.expected_close_date,
                          Deal.id).limit(limit)
        ).scalars().all()
        columns.append({"stage": stage, "count": count, "totals": _totals(totals),
                        "weighted_totals": _totals(weighted), "deals": deals})
    return {"pipeline": pipeline, "stages": columns}


# --- sales targets ---------------------------------------------------------------------------


def period_start(day: dt.date, period: str) -> dt.date:
    if period == "month":
        return day.replace(day=1)
    return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def period_end(start: dt.date, period: str) -> dt.date:
    months = 1 if period == "month" else 3
    month = start.month + months - 1
    year, month = start.year + (month - 1) // 12, (month - 1) % 12 + 1
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def period_label(start: dt.date, period: str) -> str:
    if period == "month":
        return f"{start.year}-{start.month:02d}"
    return f"{start.year}-Q{(start.month - 1) // 3 + 1}"


def targets_query(principal: Principal, owner_id=None, period=None, year=None):
    stmt = access.scope_filter(db.select(SalesTarget), SalesTarget.owner_id, principal,
                               "forecast:read")
    if owner_id is not None:
        stmt = stmt.where(SalesTarget.owner_id == owner_id)
    if period is not None:
        stmt = stmt.where(SalesTarget.period == period)
    if year is not None:
        stmt = stmt.where(SalesTarget.period_start >= dt.date(year, 1, 1),
                          SalesTarget.period_start <= dt.date(year, 12, 31))
    return stmt.order_by(SalesTarget.period_start, SalesTarget.owner_id, SalesTarget.id)


def get_target(target_id: uuid.UUID, principal: Principal, write: bool = False) -> SalesTarget:
    target = db.session.execute(targets_query(principal).where(SalesTarget.id == target_id)
                                ).scalar_one_or_none()
    if target is None:
        raise NotFound("sales target not found")
    if write:
        access.require(principal, "targets:write")
    return target


def _clean_target(data: dict[str, Any], target: SalesTarget | None = None) -> dict[str, Any]:
    data = dict(data)
    if "currency" in data:
        data["currency"] = data["currency"].upper()
    period = data.get("period", target.period if target else "month")
    start = data.get("period_start", target.period_start if target else None)
    if start is not None and start != period_start(start, period):
        raise ValidationError({"period_start": [f"a {period} starts on its first day "
                                                f"({period_start(start, period).isoformat()})"]})
    return data


def create_target(data: dict[str, Any], principal: Principal) -> SalesTarget:
    access.require(principal, "targets:write")
    data = _clean_target(data)
    data.setdefault("currency", _config("OPERATIONAL_DEFAULT_CURRENCY"))
    _check_owner(data["owner_id"], None, "targets:write")
    target = SalesTarget(**data)
    db.session.add(target)
    db.session.flush()
    return target


def update_target(target_id: uuid.UUID, data: dict[str, Any], principal: Principal
                  ) -> SalesTarget:
    target = get_target(target_id, principal, write=True)
    data = _clean_target(data, target)
    if "owner_id" in data:
        _check_owner(data["owner_id"], None, "targets:write")
    for key, value in data.items():
        setattr(target, key, value)
    db.session.flush()
    return target


def delete_target(target_id: uuid.UUID, principal: Principal) -> None:
    db.session.delete(get_target(target_id, principal, write=True))
    db.session.flush()


# --- forecast --------------------------------------------------------------------------------


def forecast(principal: Principal, *, period: str = "quarter", year: int | None = None,
             owner_id: uuid.UUID | None = None, pipeline_id: uuid.UUID | None = None,
             currency: str | None = None) -> dict[str, Any]:
    """Per period of ``year`` and per owner, in one currency (no conversion):

    * ``open``: open deals expected to close in the period (category ``omitted`` left out);
    * ``weighted``: the sum of their amount × their stage's probability;
    * ``commit``: won in the period plus open deals in category ``commit``;
    * ``best_case``: ``commit`` plus open deals in category ``best_case``;
    * ``won``: deals won in the period (by the day they were closed), so far;
    * ``target`` and ``attainment`` (won ÷ target) from the owner's sales targets.
    """
    access.require(principal, "forecast:read")
    year = year or utcnow().year
    currency = (currency or _config("OPERATIONAL_DEFAULT_CURRENCY")).upper()
    starts = [dt.date(year, m, 1) for m in (range(1, 13) if period == "month" else (1, 4, 7, 10))]
    first, last = starts[0], period_end(starts[-1], period)
    stmt = access.scope_filter(
        sa.select(Deal.owner_id, Deal.amount, Deal.status, Deal.forecast_category,
                  Deal.expected_close_date, Deal.closed_at, Stage.probability)
        .join(Stage, (Stage.tenant_id == Deal.tenant_id) & (Stage.id == Deal.stage_id))
        .where(Deal.currency == currency, Deal.status != "lost"),
        Deal.owner_id, principal, "forecast:read")
    if owner_id is not None:
        stmt = stmt.where(Deal.owner_id == owner_id)
    if pipeline_id is not None:
        stmt = stmt.where(Deal.pipeline_id == pipeline_id)
    cells: dict[tuple[dt.date, Any], dict[str, decimal.Decimal]] = {}

    def cell(day: dt.date, owner):
        key = (period_start(day, period), owner)
        return cells.setdefault(key, {k: ZERO for k in (
            "open", "weighted", "commit", "best_case", "won", "target")})

    for owner, amount, status, category, close_date, closed_at, probability in (
            db.session.execute(stmt)):
        amount = decimal.Decimal(amount or 0)
        if status == "won":
            day = closed_at.astimezone(dt.timezone.utc).date() if closed_at else None
            if day is None or not first <= day <= last:
                continue
            c = cell(day, owner)
            c["won"] += amount
            c["commit"] += amount
            c["best_case"] += amount
        elif close_date is not None and first <= close_date <= last and category != "omitted":
            c = cell(close_date, owner)
            c["open"] += amount
            c["weighted"] += _weighted(amount, probability)
            if category in ("commit", "best_case"):
                c["best_case"] += amount
            if category == "commit":
                c["commit"] += amount
    targets = db.session.execute(
        targets_query(principal, owner_id=owner_id, year=year)
        .where(SalesTarget.currency == currency)
    ).scalars().all()
    quarterly = {(t.period_start, t.owner_id) for t in targets if t.period == "quarter"}
    for t in targets:
        if t.period == period:
            cell(t.period_start, t.owner_id)["target"] += t.amount
        elif t.period == "month" and period == "quarter" and (
                period_start(t.period_start, "quarter"), t.owner_id) not in quarterly:
            # a quarter without its own target adds up its months'
            cell(t.period_start, t.owner_id)["target"] += t.amount
    rows = []
    totals = {k: ZERO for k in ("open", "weighted", "commit", "best_case", "won", "target")}
    for (start, owner), values in sorted(cells.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        row = {"period": period_label(start, period), "start": start,
               "end": period_end(start, period), "owner_id": owner}
        for key, value in values.items():
            row[key] = _money(value)
            totals[key] += value
        row["attainment"] = _ratio(values["won"], values["target"])
        rows.append(row)
    total_row = {k: _money(v) for k, v in totals.items()}
    total_row["attainment"] = _ratio(totals["won"], totals["target"])
    return {"period": period, "year": year, "currency": currency, "rows": rows,
            "totals": total_row}


def _ratio(won: decimal.Decimal, target: decimal.Decimal) -> decimal.Decimal | None:
    if not target:
        return None
    return (won / target).quantize(decimal.Decimal("0.0001"), rounding=decimal.ROUND_HALF_UP)


# --- data-subject rights, merge, profile --------------------------------------------------

LEAD_PERSONAL = ("first_name", "last_name", "company", "title", "email", "phone", "message")


def _row(obj) -> dict[str, Any]:
    from clientela.core.events import json_safe

    return {attr.key: json_safe(getattr(obj, attr.key))
            for attr in sa.inspect(type(obj)).column_attrs if attr.key != "tenant_id"}


def export_for(customer: Customer) -> dict[str, Any]:
    leads = db.session.execute(db.select(Lead).where(Lead.customer_id == customer.id)
                               .order_by(Lead.created_at)).scalars()
    deals = db.session.execute(db.select(Deal).where(Deal.customer_id == customer.id)
                               .order_by(Deal.created_at)).scalars().all()
    return {"operational": {
        "leads": [_row(lead) for lead in leads],
        "deals": [{**_row(d), "items": [_row(i) for i in deal_items(d.id)]} for d in deals],
    }}


def erase_for(customer: Customer) -> dict[str, Any]:
    """Blank the personal data of the customer's leads; deals keep their figures."""
    values: dict[str, Any] = {f: None for f in LEAD_PERSONAL}
    values.update(message="", attributes={})
    leads = db.session.execute(db.select(Lead).where(Lead.customer_id == customer.id)
                               ).scalars().all()
    for lead in leads:
        for key, value in values.items():
            setattr(lead, key, value)
    # a deal's title and reason may name the person; its figures stay for reporting
    deals = db.session.execute(db.select(Deal).where(Deal.customer_id == customer.id)
                               ).scalars().all()
    for deal in deals:
        deal.title = f"Deal {str(deal.id)[-12:]}"
        deal.close_reason = None
        deal.attributes = {}
    db.session.flush()
    # the trail of these rows holds the same personal data (and the flush just added the
    # before-values of this very anonymisation): redact it, as the core does for its rows
    ids = [lead.id for lead in leads] + [deal.id for deal in deals]
    if ids:
        db.session.execute(
            sa.update(AuditEvent).where(AuditEvent.entity_id.in_(ids))
            .values(changes={"redacted": "erased"})
            .execution_options(synchronize_session=False)
        )
    return {"leads_anonymised": len(leads), "deals_anonymised": len(deals)}


def merge_into(survivor: Customer, merged_id: uuid.UUID) -> None:
    for model in (Lead, Deal):
        db.session.execute(sa.update(model).where(model.customer_id == merged_id)
                           .values(customer_id=survivor.id)
                           .execution_options(synchronize_session="fetch"))


def profile_section(customer: Customer, principal: Principal | None) -> dict[str, Any] | None:
    """The "Deals" section of the 360° view, within the viewer's record scope."""
    if principal is not None and not principal.can("deals:read"):
        return None
    stmt = (deals_query(principal, customer_id=customer.id) if principal is not None
            else db.select(Deal).where(Deal.customer_id == customer.id))
    deals = db.session.execute(stmt.order_by(Deal.created_at.desc(), Deal.id)).scalars().all()
    if not deals:
        return None
    open_totals: dict[str, decimal.Decimal] = {}
    won_totals: dict[str, decimal.Decimal] = {}
    for deal in deals:
        bucket = open_totals if deal.status == "open" else won_totals if deal.status == "won" \
            else None
        if bucket is not None:
            bucket[deal.currency] = bucket.get(deal.currency, ZERO) + deal.amount
    return {"key": "deals", "title": "Deals", "data": {
        "open": sum(d.status == "open" for d in deals),
        "won": sum(d.status == "won" for d in deals),
        "lost": sum(d.status == "lost" for d in deals),
        "open_totals": _totals(open_totals), "won_totals": _totals(won_totals),
        "recent": [{"id": str(d.id), "title": d.title, "status": d.status,
                    "amount": str(_money(d.amount)), "currency": d.currency,
                    "expected_close_date": d.expected_close_date.isoformat()
                    if d.expected_close_date else None} for d in deals[:10]],
    }}


# --- demo data -------------------------------------------------------------------------------


def load_demo() -> None:
    """A pipeline with deals across its stages and a few leads (``clientela demo``)."""
    import random

    rng = random.Random(6)
    pipeline = default_pipeline() or create_pipeline({"name": "Sales"})
    stages = stages_of(pipeline.id)
    open_stages = [s for s in stages if s.kind == "open"]
    people = db.session.execute(db.select(Customer).where(Customer.kind == "person")
                                .order_by(Customer.created_at).limit(12)).scalars().all()
    owner = db.session.execute(db.select(User.id).order_by(User.created_at).limit(1)).scalar()
    today = utcnow().date()
    currency = _config("OPERATIONAL_DEFAULT_CURRENCY")
    for i, customer in enumerate(people):
        deal = Deal(title=f"{rng.choice(['Supply', 'Renewal', 'Pilot', 'Upgrade'])} "
                          f"{customer.display_name}", pipeline_id=pipeline.id,
                    customer_id=customer.id, owner_id=owner, currency=currency,
                    amount=_money(rng.randint(10, 400) * 100),
                    expected_close_date=today + dt.timedelta(days=rng.randint(-20, 120)),
                    forecast_category=rng.choice(FORECAST_CATEGORIES[:3]))
        _open(deal, open_stages[i % len(open_stages)], None)
        if i % 5 == 4:
            _enter_stage(deal, next(s for s in stages if s.kind == "won"), None)
    for i, (first, last, company) in enumerate([
        ("Irene", "Costa", "Vetreria Murano"), ("Pietro", "Lombardi", "Cantina Langhe"),
        ("Nadia", "Fontana", None), ("Omar", "Rinaldi", "Pastificio Gragnano"),
    ]):
        create_lead({"first_name": first, "last_name": last, "company": company,
                     "email": f"{first}.{last}@example.org".lower(), "owner_id": owner,
                     "source": rng.choice(["web_form", "trade_fair", "referral"]),
                     "status": LEAD_STATUSES[i % 3]})
    db.session.flush()
