"""Staff pages of the PRM plugin under ``/app/partners``: partners with their scorecard,
deal registrations to approve or reject, commissions and statements.

Every view calls the same service functions as ``/api/v1`` with the user's principal:
a channel manager sees only the partners it owns (404 for the others), as in the API.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from marshmallow import Schema
from marshmallow import ValidationError as SchemaError

from clientela.core import access
from clientela.core.db import db
from clientela.core.errors import Conflict, ValidationError
from clientela.core.models import User
from clientela.core.web import (charts, field_errors, parse_id, principal, requires,
                                staff_blueprint)
from clientela.core.web.i18n import _, _l
from clientela.plugins.prm import schemas
from clientela.plugins.prm import services as prm
from clientela.plugins.prm.models import (COMMISSION_STATUSES, PARTNER_STATUSES, PARTNER_TYPES,
                                          REGISTRATION_STATUSES, Commission, DealRegistration,
                                          Partner)

bp = staff_blueprint("prm_web", __name__, "/partners")

STATUS_LABELS = {
    "prospect": _l("Prospect"), "onboarding": _l("Onboarding"), "active": _l("Active"),
    "inactive": _l("Inactive"), "terminated": _l("Terminated"), "pending": _l("Pending"),
    "approved": _l("Approved"), "rejected": _l("Rejected"), "expired": _l("Expired"),
    "paid": _l("Paid"), "cancelled": _l("Cancelled"), "offered": _l("Offered"),
    "accepted": _l("Accepted"), "declined": _l("Declined"), "withdrawn": _l("Withdrawn"),
}
TYPE_LABELS = {"reseller": _l("Reseller"), "distributor": _l("Distributor"),
               "referral": _l("Referral"), "supplier": _l("Supplier"),
               "district_member": _l("District member")}


def status_label(status: str | None) -> str:
    return str(STATUS_LABELS.get(status or "", status or ""))


def type_label(kind: str | None) -> str:
    return str(TYPE_LABELS.get(kind or "", kind or ""))


def load_form(schema: Schema, form, fields: tuple[str, ...]) -> dict[str, Any]:
    """The form's fields through the API's schema (empty inputs left out): 422 on errors."""
    data = {key: form.get(key).strip() for key in fields
            if form.get(key) is not None and form.get(key).strip() != ""}
    try:
        return schema.load(data)
    except SchemaError as exc:
        raise ValidationError(exc.messages) from None


def _user_emails(ids) -> dict:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return dict(db.session.execute(db.select(User.id, User.email).where(User.id.in_(ids))).all())


def _partner_names(ids) -> dict:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return dict(db.session.execute(db.select(Partner.id, Partner.name)
                                   .where(Partner.id.in_(ids))).all())


def _period(args) -> tuple[dt.date | None, dt.date | None]:
    try:
        data = schemas.PeriodQuery().load({k: v for k, v in args.items()
                                           if k in ("from", "to") and v})
    except SchemaError as exc:
        raise ValidationError(exc.messages) from None
    return data.get("from_"), data.get("to")


# --- partners -----------------------------------------------------------------------


@bp.route("/")
@requires("partners:read")
def partners():
    who = principal()
    status = request.args.get("status") or None
    tier_id = request.args.get("tier_id") or None
    q = (request.args.get("q") or "").strip()
    if status not in (None, *PARTNER_STATUSES):
        status = None
    tiers = db.session.execute(prm.tiers_query(who)).scalars().all()
    tier_ids = {str(t.id): t.id for t in tiers}
    stmt = prm.partners_query(who, status=status, tier_id=tier_ids.get(tier_id or ""),
                              q=q or None).order_by(Partner.name, Partner.id).limit(500)
    rows = prm.decorate_partners(list(db.session.execute(stmt).scalars()))
    owners = _user_emails(p.owner_id for p in rows)
    return render_template("prm/partners.html", partners=rows, tiers=tiers, status=status,
                           tier_id=tier_id, q=q, owners=owners, statuses=PARTNER_STATUSES)


@bp.route("/<partner_id>")
@requires("partners:read")
def partner(partner_id: str):
    who = principal()
    found = prm.decorate_partners([prm.get_partner(parse_id(partner_id), who)])[0]
    card = chart = None
    start, end = _period(request.args)
    if who.can("prm:reports"):
        card = prm.scorecard(found, start, end)
        chart = charts.bar_chart([
            (_("Leads received"), card["leads_received"]),
            (_("Leads accepted"), card["leads_accepted"]),
            (_("Leads converted"), card["leads_converted"]),
            (_("Deals won"), card["deals_won"]),
            (_("Deals lost"), card["deals_lost"]),
        ], label=_("Leads and deals of %(name)s", name=found.name))
    registrations = []
    if who.can("registrations:read"):
        registrations = db.session.execute(prm.registrations_query(who, partner_id=found.id)
                                           .order_by(DealRegistration.created_at.desc())
                                           .limit(20)).scalars().all()
    commissions = []
    if who.can("commissions:read"):
        commissions = db.session.execute(prm.commissions_query(who, partner_id=found.id)
                                         ).scalars().all()[-20:]
    return render_template("prm/partner.html", partner=found, card=card, chart=chart,
                           registrations=registrations, commissions=commissions,
                           history=prm.status_history(found.id, who),
                           owner=_user_emails([found.owner_id]).get(found.owner_id))


# --- deal registrations ---------------------------------------------------------------


@bp.route("/registrations")
@requires("registrations:read")
def registrations(errors=None, status_code=200):
    who = principal()
    status = request.args.get("status", "pending")
    if status not in REGISTRATION_STATUSES:
        status = None
    rows = db.session.execute(prm.registrations_query(who, status=status)
                              .order_by(DealRegistration.created_at.desc(),
                                        DealRegistration.id).limit(200)).scalars().all()
    return render_template("prm/registrations.html", registrations=rows, status=status,
                           statuses=REGISTRATION_STATUSES, errors=errors or {},
                           partner_names=_partner_names(r.partner_id for r in rows),
                           can_approve=who.can("registrations:approve")), status_code


@bp.route("/registrations/<registration_id>/approve", methods=["POST"])
@requires("registrations:approve")
def approve_registration(registration_id: str):
    who = principal()
    rid = parse_id(registration_id)
    data = {"override": request.form.get("override") in ("1", "on", "true")}
    try:
        prm.approve_registration(rid, data, who)
    except Conflict as exc:
        db.session.commit()  # keep the conflicts found now, as the API does
        flash(_("Not approved: %(reason)s", reason=str(exc)), "error")
        return redirect(url_for("prm_web.registrations"))
    db.session.commit()
    flash(_("Registration approved: a deal was opened for the partner."), "success")
    return redirect(url_for("prm_web.registrations"))


@bp.route("/registrations/<registration_id>/reject", methods=["POST"])
@requires("registrations:approve")
def reject_registration(registration_id: str):
    who = principal()
    rid = parse_id(registration_id)
    prm.get_registration(rid, who, "registrations:approve")  # 404 before 422
    try:
        data = load_form(schemas.RejectInput(), request.form, ("reason",))
    except ValidationError as exc:
        return registrations(errors={str(rid): field_errors(exc)}, status_code=422)
    prm.reject_registration(rid, data["reason"], who)
    db.session.commit()
    flash(_("Registration rejected."), "success")
    return redirect(url_for("prm_web.registrations"))


# --- commissions --------------------------------------------------------------------


@bp.route("/commissions")
@requires("commissions:read")
def commissions():
    who = principal()
    status = request.args.get("status") or None
    if status not in COMMISSION_STATUSES:
        status = None
    partner_id = request.args.get("partner_id") or None
    pid = parse_id(partner_id) if partner_id else None
    if pid is not None:
        prm.get_partner(pid, who)
    rows = db.session.execute(prm.commissions_query(who, status=status, partner_id=pid)
                              ).scalars().all()[-300:][::-1]
    partners_seen = db.session.execute(prm.partners_query(who).order_by(Partner.name)
                                       ).scalars().all()
    return render_template("prm/commissions.html", commissions=rows, status=status,
                           statuses=COMMISSION_STATUSES, partner_id=partner_id,
                           partners=partners_seen,
                           partner_names=_partner_names(c.partner_id for c in rows),
                           can_approve=who.can("commissions:approve"))


@bp.route("/commissions/statement")
@requires("commissions:read")
def statement():
    who = principal()
    found = prm.get_partner(parse_id(request.args.get("partner_id")), who)
    try:
        args = schemas.StatementQuery().load({
            "partner_id": str(found.id), "period": request.args.get("period") or "month",
            "start": request.args.get("start") or prm.today().replace(day=1).isoformat()})
    except SchemaError as exc:
        raise ValidationError(exc.messages) from None
    result = prm.statement(found.id, args["period"], args["start"], who)
    chart = charts.bar_chart([(status_label(k), decimal.Decimal(v))
                              for k, v in result["totals"].items()],
                             label=_("Commissions by status"), money=None)
    return render_template("prm/statement.html", partner=found, statement=result,
                           period=args["period"], start=args["start"], chart=chart)


def _commission_action(commission_id: str, action) -> Any:
    cid = parse_id(commission_id)
    try:
        action(cid)
    except Conflict as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        db.session.commit()
        flash(_("Commission updated."), "success")
    return redirect(request.form.get("next") if (request.form.get("next") or "").startswith(
        "/app/") else url_for("prm_web.commissions"))


@bp.route("/commissions/<commission_id>/approve", methods=["POST"])
@requires("commissions:approve")
def approve_commission(commission_id: str):
    return _commission_action(commission_id,
                              lambda cid: prm.approve_commission(cid, principal()))


@bp.route("/commissions/<commission_id>/pay", methods=["POST"])
@requires("commissions:approve")
def pay_commission(commission_id: str):
    reference = (request.form.get("reference") or "").strip()[:200] or None
    return _commission_action(commission_id,
                              lambda cid: prm.pay_commission(cid, reference, principal()))


@bp.app_template_global("prm_status_label")
def _status_label_global(status):
    return status_label(status)


@bp.app_template_global("prm_type_label")
def _type_label_global(kind):
    return type_label(kind)


__all__ = ["bp", "load_form", "status_label", "type_label", "PARTNER_TYPES"]
