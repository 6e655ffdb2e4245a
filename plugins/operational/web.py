"""The operational plugin's staff pages: leads, the deals kanban with its forecast, pipelines.

Views call the same service functions as the API with the logged-in user's principal, so
permissions and record scopes are the API's; form values are checked with the API's
marshmallow schemas. "My work", cases and campaigns are in ``web_work``.
"""

from __future__ import annotations

import decimal
import math
import uuid
from typing import Any

import marshmallow
import sqlalchemy as sa
from flask import flash, redirect, render_template, request, url_for

from clientela.core.db import db, utcnow
from clientela.core.errors import Forbidden, ValidationError
from clientela.core.models import Customer, User
from clientela.core.web import (_, _l, field_errors, parse_id, principal, requires,
                                staff_blueprint)
from clientela.plugins.operational import schemas
from clientela.plugins.operational import services as ops
from clientela.plugins.operational.models import LEAD_STATUSES, Lead

bp = staff_blueprint("operational_web", __name__, "", static_folder="static",
                     static_url_path="/operational-static")

PAGE_SIZE = 25


@bp.context_processor
def _page_globals() -> dict[str, Any]:
    return {"principal_can": lambda permission: principal().can(permission)}

LEAD_STATUS_LABELS = {"new": _l("New"), "contacted": _l("Contacted"),
                      "qualified": _l("Qualified"), "unqualified": _l("Unqualified"),
                      "converted": _l("Converted")}
DEAL_STATUS_LABELS = {"open": _l("Open"), "won": _l("Won"), "lost": _l("Lost")}
STAGE_KIND_LABELS = {"open": _l("Open"), "won": _l("Won"), "lost": _l("Lost")}
FORECAST_LABELS = {"open": _l("Open pipeline"), "weighted": _l("Weighted pipeline"),
                   "commit": _l("Commit"), "best_case": _l("Best case"), "won": _l("Won"),
                   "target": _l("Target")}


def label(mapping: dict, key: str | None) -> str:
    return str(mapping.get(key, key or "—"))


# --- helpers shared by the pages ----------------------------------------------------------


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def load_form(schema: marshmallow.Schema, names: tuple[str, ...], *, partial: bool = False
              ) -> dict[str, Any]:
    """The posted fields ``names`` (blank ones left out) checked with the API's schema."""
    raw = {}
    for name in names:
        value = (request.form.get(name) or "").strip()
        if value:
            raw[name] = value
    try:
        return schema.load(raw, partial=partial)
    except marshmallow.ValidationError as exc:
        raise ValidationError(exc.messages) from None


def users_by_id() -> dict[uuid.UUID, User]:
    return {user.id: user for user in db.session.execute(db.select(User)).scalars()}


def user_options() -> list[tuple[str, str]]:
    users = db.session.execute(db.select(User).where(User.is_active.is_(True))
                               .order_by(User.email)).scalars()
    return [(str(user.id), user.name or user.email) for user in users]


def user_name(users: dict, user_id) -> str:
    user = users.get(user_id)
    return (user.name or user.email) if user is not None else "—"


def customer_names(ids) -> dict[uuid.UUID, str]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return dict(db.session.execute(
        sa.select(Customer.id, Customer.display_name).where(Customer.id.in_(ids))).all())


# --- forecast -----------------------------------------------------------------------------


def forecast_summary(who, pipeline_id: uuid.UUID | None = None) -> dict[str, Any] | None:
    """This quarter's forecast figures (``ops.forecast``), summed over the owners the user
    may see; ``None`` without ``forecast:read``."""
    if not who.can("forecast:read"):
        return None
    today = utcnow().date()
    answer = ops.forecast(who, period="quarter", year=today.year, pipeline_id=pipeline_id)
    start = ops.period_start(today, "quarter")
    figures = {key: decimal.Decimal(0) for key in FORECAST_LABELS}
    for row in answer["rows"]:
        if row["start"] == start:
            for key in figures:
                figures[key] += row[key]
    return {"period": ops.period_label(start, "quarter"), "currency": answer["currency"],
            "figures": figures, "expected": figures["won"] + figures["weighted"],
            "labels": FORECAST_LABELS}


# --- leads --------------------------------------------------------------------------------

LEAD_FIELDS = ("first_name", "last_name", "company", "title", "email", "phone", "country",
               "source", "message")


@bp.route("/leads")
@requires("leads:read")
def leads():
    who = principal()
    q = (request.args.get("q") or "").strip()
    status = request.args.get("status") or None
    if status not in LEAD_STATUSES:
        status = None
    source = (request.args.get("source") or "").strip() or None
    page = max(1, request.args.get("page", 1, type=int) or 1)
    stmt = ops.leads_query(who, q=q or None, status=status, source=source)
    total = db.session.execute(sa.select(sa.func.count()).select_from(stmt.subquery())
                               ).scalar_one()
    rows = db.session.execute(stmt.order_by(Lead.score.desc(), Lead.created_at.desc(), Lead.id)
                              .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).scalars().all()
    args = {k: v for k, v in (("q", q), ("status", status), ("source", source)) if v}
    return render_template("operational/leads.html", leads=rows, total=total, page=page,
                           pages=max(1, math.ceil(total / PAGE_SIZE)), args=args, q=q,
                           status=status, source=source or "", users=users_by_id(),
                           statuses=[(s, label(LEAD_STATUS_LABELS, s)) for s in LEAD_STATUSES],
                           status_label=lambda s: label(LEAD_STATUS_LABELS, s))


@bp.route("/leads/new", methods=["GET", "POST"])
@requires("leads:write")
def new_lead():
    who = principal()
    errors: dict = {}
    values = {name: request.form.get(name, "") for name in LEAD_FIELDS}
    if request.method == "POST":
        try:
            data = load_form(schemas.LeadInput(), LEAD_FIELDS)
            if data.get("country"):
                data["country"] = data["country"].upper()
            lead = ops.create_lead(data, who)
            db.session.commit()
        except ValidationError as exc:
            db.session.rollback()
            errors = field_errors(exc)
        else:
            flash(_("Lead saved."), "success")
            return redirect(url_for(".lead", lead_id=lead.id), 303)
    return (render_template("operational/lead_form.html", values=values, errors=errors),
            422 if errors else 200)


def _lead_page(lead: Lead, errors: dict | None = None, status: int = 200):
    return render_template(
        "operational/lead.html", lead=lead, users=users_by_id(), errors=errors or {},
        status_label=lambda s: label(LEAD_STATUS_LABELS, s),
        statuses=[(s, label(LEAD_STATUS_LABELS, s)) for s in LEAD_STATUSES if s != "converted"],
        customer=customer_names([lead.customer_id]).get(lead.customer_id),
    ), status


@bp.route("/leads/<lead_id>")
@requires("leads:read")
def lead(lead_id: str):
    return _lead_page(ops.get_lead(parse_id(lead_id), principal()))


@bp.route("/leads/<lead_id>/status", methods=["POST"])
@requires("leads:write")
def lead_status(lead_id: str):
    who = principal()
    found = ops.get_lead(parse_id(lead_id), who)
    try:
        data = load_form(schemas.LeadUpdate(), ("status",), partial=True)
        if "status" not in data:
            raise ValidationError({"status": [_("Choose a status.")]})
        ops.update_lead(found.id, data, who)
        db.session.commit()
    except ValidationError as exc:
        db.session.rollback()
        return _lead_page(ops.get_lead(found.id, who), field_errors(exc), 422)
    flash(_("Lead updated."), "success")
    return redirect(url_for(".lead", lead_id=found.id), 303)


@bp.route("/leads/<lead_id>/convert", methods=["POST"])
@requires("leads:write")
def convert_lead(lead_id: str):
    who = principal()
    found = ops.get_lead(parse_id(lead_id), who)
    data: dict[str, Any] = {}
    try:
        if request.form.get("with_deal"):
            data["deal"] = load_form(schemas.DealInput(), ("amount", "expected_close_date"))
        result = ops.convert_lead(found.id, data, who)
        db.session.commit()
    except ValidationError as exc:
        db.session.rollback()
        return _lead_page(ops.get_lead(found.id, who), field_errors(exc), 422)
    flash(_("Lead converted."), "success")
    if who.can("customers:read"):
        return redirect(url_for("web.customer", customer_id=result["customer_id"]), 303)
    return redirect(url_for(".lead", lead_id=found.id), 303)


# --- deals and the kanban -------------------------------------------------------------------


def board_context(pipeline, who, error: str | None = None) -> dict[str, Any]:
    board = ops.board(pipeline.id, who, limit=100)
    deals = [deal for column in board["stages"] for deal in column["deals"]]
    return {"pipeline": pipeline, "columns": board["stages"], "users": users_by_id(),
            "customers": customer_names(d.customer_id for d in deals),
            "stages": [column["stage"] for column in board["stages"]],
            "forecast": forecast_summary(who, pipeline.id), "error": error,
            "can_move": who.can("deals:write"), "kind_label":
                lambda k: label(STAGE_KIND_LABELS, k)}


@bp.route("/deals")
@requires("deals:read")
def kanban():
    who = principal()
    pipelines = db.session.execute(ops.pipelines_query(who)).scalars().all()
    chosen = request.args.get("pipeline")
    pipeline = ops.get_pipeline(parse_id(chosen), who) if chosen else ops.default_pipeline()
    if pipeline is None:
        return render_template("operational/kanban.html", pipelines=[], pipeline=None)
    return render_template("operational/kanban.html", pipelines=pipelines,
                           **board_context(pipeline, who))


def _move_answer(pipeline_id: uuid.UUID, error: str | None):
    who = principal()
    pipeline = ops.get_pipeline(pipeline_id, who)
    status = 422 if error else 200
    if is_htmx():
        return render_template("operational/_board.html", **board_context(pipeline, who, error)
                               ), status
    if error:
        pipelines = db.session.execute(ops.pipelines_query(who)).scalars().all()
        return render_template("operational/kanban.html", pipelines=pipelines,
                               **board_context(pipeline, who, error)), status
    flash(_("Deal moved."), "success")
    return redirect(url_for(".kanban", pipeline=pipeline_id), 303)


@bp.route("/deals/<deal_id>/move", methods=["POST"])
@requires("deals:write")
def move_deal(deal_id: str):
    """Move a deal to another stage of its pipeline (the kanban's drag and drop posts here,
    and so does the select beside each card): ``update_deal`` as ``PATCH /deals/{id}``."""
    who = principal()
    deal = ops.get_deal(parse_id(deal_id), who)
    pipeline_id = deal.pipeline_id
    error = None
    try:
        try:
            stage_id = uuid.UUID(request.form.get("stage_id", ""))
        except ValueError:
            raise ValidationError({"stage_id": [_("Choose a stage.")]}) from None
        data: dict[str, Any] = {"stage_id": stage_id}
        reason = (request.form.get("reason") or "").strip()
        if reason:
            data["close_reason"] = reason[:500]
        ops.update_deal(deal.id, data, who)
        db.session.commit()
    except ValidationError as exc:
        db.session.rollback()
        error = " ".join(m for messages in field_errors(exc).values() for m in messages)
    return _move_answer(pipeline_id, error)


@bp.route("/deals/<deal_id>")
@requires("deals:read")
def deal(deal_id: str):
    who = principal()
    found = ops.decorate([ops.get_deal(parse_id(deal_id), who)])[0]
    stages = ops.stages_of(found.pipeline_id)
    names = {stage.id: stage.name for stage in stages}
    return render_template(
        "operational/deal.html", deal=found, stages=stages, stage_names=names,
        history=ops.deal_history(found.id, who), users=users_by_id(),
        pipeline=ops.get_pipeline(found.pipeline_id, who),
        customer=customer_names([found.customer_id]).get(found.customer_id),
        status_label=lambda s: label(DEAL_STATUS_LABELS, s), can_move=who.can("deals:write"))


# --- settings: pipelines ---------------------------------------------------------------------


def _parse_stages(text: str) -> list[dict[str, Any]] | None:
    """One stage a line: ``name | probability | kind`` (probability and kind optional)."""
    stages = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")]
        stage: dict[str, Any] = {"name": parts[0]}
        if len(parts) > 1 and parts[1]:
            stage["probability"] = parts[1]
        if len(parts) > 2 and parts[2]:
            stage["kind"] = parts[2].lower()
        stages.append(stage)
    return stages or None


def _pipelines_page(errors: dict | None = None, values: dict | None = None, status: int = 200):
    who = principal()
    pipelines = db.session.execute(ops.pipelines_query(who)).scalars().all()
    return render_template(
        "operational/pipelines.html", pipelines=pipelines,
        stages={p.id: ops.stages_of(p.id) for p in pipelines}, errors=errors or {},
        values=values or {}, can_write=who.can("pipelines:write"),
        kind_label=lambda k: label(STAGE_KIND_LABELS, k)), status


@bp.route("/settings/pipelines", methods=["GET", "POST"])
def pipelines():
    who = principal()
    if not (who.can("deals:read") or who.can("pipelines:write")):
        raise Forbidden("you lack the permission deals:read")
    if request.method == "GET":
        return _pipelines_page()
    if not who.can("pipelines:write"):
        raise Forbidden("you lack the permission pipelines:write")
    values = {"name": request.form.get("name", ""), "stages": request.form.get("stages", "")}
    try:
        raw: dict[str, Any] = {"name": values["name"].strip()}
        stages = _parse_stages(values["stages"])
        if stages:
            raw["stages"] = stages
        try:
            data = schemas.PipelineInput().load(raw)
        except marshmallow.ValidationError as exc:
            messages = dict(exc.messages)
            if isinstance(messages.get("stages"), dict):  # per line: flatten for the form
                messages["stages"] = [
                    _("Line %(n)s", n=int(i) + 1) + ": "
                    + "; ".join(f"{k}: {' '.join(v)}" for k, v in m.items())
                    for i, m in messages["stages"].items()]
            raise ValidationError(messages) from None
        pipeline = ops.create_pipeline(data, who)
        db.session.commit()
    except ValidationError as exc:
        db.session.rollback()
        return _pipelines_page(field_errors(exc), values, 422)
    flash(_("Pipeline %(name)s created.", name=pipeline.name), "success")
    return redirect(url_for(".pipelines"), 303)


__all__ = ["bp", "forecast_summary", "board_context", "load_form", "users_by_id",
           "user_options", "user_name", "customer_names", "label", "is_htmx"]

# the modules below add their views to ``bp``
from clientela.plugins.operational import web_work  # noqa: E402,F401
