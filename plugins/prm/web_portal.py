"""The partner portal's pages, ``/partner/``: what a partner user (role ``partner``) sees
of its own partner — leads offered to it (accept or decline), its deal registrations
(register a new one) and its commissions.

Partner users log in with the staff login form (``/app/login``, which sends them here) or
with ``/partner/login``; the session is the core's. Every record is read through the
partner's id, with the same queries as ``/partner/api/v1``: another partner's record
answers 404 exactly like one that does not exist.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for

from clientela.core.api import auth
from clientela.core.db import db
from clientela.core.errors import Forbidden, NotFound, RateLimited, Unauthorized, ValidationError
from clientela.core.models import User
from clientela.core.web import check_csrf, field_errors, parse_id
from clientela.core.web.i18n import _
from clientela.plugins.prm import portal as api_portal
from clientela.plugins.prm import schemas
from clientela.plugins.prm import services as prm
from clientela.plugins.prm.models import Commission, DealRegistration, LeadOffer, Partner
from clientela.plugins.prm.web import load_form

bp = Blueprint("prm_portal_web", __name__, url_prefix="/partner", template_folder="templates")
#: partner users land here after the staff login form (core/web ``landing_page``)
bp.clientela_landing_roles = ("partner",)  # type: ignore[attr-defined]
PUBLIC = {"prm_portal_web.login"}
REGISTRATION_FIELDS = ("title", "company_name", "contact_email", "amount", "currency",
                       "expected_close_date", "notes")


@bp.before_request
def authenticate_partner_page():
    """A session of an active partner user, its tenant and its partner; CSRF on writes."""
    if request.endpoint in PUBLIC:
        return None
    if not session.get("user_id"):
        if request.method == "GET":
            return redirect(url_for("prm_portal_web.login", next=request.path))
        raise Unauthorized("log in first")
    try:
        auth.authenticate_credentials()
    except Unauthorized:
        return redirect(url_for("prm_portal_web.login"))
    who = g.principal
    if prm.PARTNER_ROLE not in who.roles:
        raise Forbidden("the partner portal is for partner users")
    partner = prm.partner_of_user(who.user_id)
    if partner is None or partner.status == "terminated":
        raise Forbidden("this user acts for no partner")
    g.prm_partner = partner
    g.web_user = db.session.get(User, (who.tenant_id, who.user_id))
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        check_csrf()
    return None


def _partner() -> Partner:
    return g.prm_partner


# --- login -----------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login():
    error, email = None, ""
    if request.method == "POST":
        check_csrf()
        email = (request.form.get("email") or "").strip()
        try:
            user, _csrf = auth.login(email, request.form.get("password") or "")
        except Unauthorized:
            error = _("Wrong e-mail or password.")
        except RateLimited:
            error = _("Too many attempts. Wait a minute and try again.")
        else:
            if prm.PARTNER_ROLE not in (user.roles or []):
                # staff belong on the staff pages
                return redirect(url_for("web.dashboard"))
            return redirect(url_for("prm_portal_web.index"))
    return render_template("prm/portal_login.html", error=error, email=email), (
        401 if error else 200)


@bp.route("/logout", methods=["POST"])
def logout():
    session.clear()
    return redirect(url_for("prm_portal_web.login"))


@bp.route("/")
def index():
    return redirect(url_for("prm_portal_web.leads"))


# --- leads -----------------------------------------------------------------------------


def _offers():
    g.prm_partner_id = _partner().id  # what the JSON portal's queries read
    return api_portal._visible_offers()


@bp.route("/leads")
def leads():
    rows = db.session.execute(_offers().order_by(LeadOffer.offered_at.desc(),
                                                 LeadOffer.id)).all()
    return render_template("prm/portal_leads.html", partner=_partner(),
                           leads=[api_portal._lead_view(o, lead) for o, lead in rows])


def _offer_for(lead_id: str):
    row = db.session.execute(_offers().where(
        api_portal.Lead.id == parse_id(lead_id))).first()
    if row is None:
        raise NotFound("lead not found")
    return row


@bp.route("/leads/<lead_id>/accept", methods=["POST"])
def accept_lead(lead_id: str):
    offer, _lead = _offer_for(lead_id)
    prm.respond_to_offer(offer, True, (request.form.get("reason") or "").strip()[:500] or None)
    db.session.commit()
    flash(_("Lead accepted: its contact details are now shown."), "success")
    return redirect(url_for("prm_portal_web.leads"))


@bp.route("/leads/<lead_id>/decline", methods=["POST"])
def decline_lead(lead_id: str):
    offer, _lead = _offer_for(lead_id)
    prm.respond_to_offer(offer, False, (request.form.get("reason") or "").strip()[:500] or None)
    db.session.commit()
    flash(_("Lead declined."), "success")
    return redirect(url_for("prm_portal_web.leads"))


# --- deal registrations ----------------------------------------------------------------


def _registrations():
    return db.select(DealRegistration).where(DealRegistration.partner_id == _partner().id)


@bp.route("/registrations", methods=["GET", "POST"])
def registrations():
    errors, values, status = {}, {}, 200
    if request.method == "POST":
        values = {key: request.form.get(key, "") for key in REGISTRATION_FIELDS}
        try:
            data = load_form(schemas.RegistrationInput(), request.form, REGISTRATION_FIELDS)
            registration = prm.submit_registration(_partner().id, data, g.principal.user_id)
        except ValidationError as exc:
            db.session.rollback()
            errors, status = field_errors(exc), 422
        else:
            db.session.commit()
            flash(_("Deal registered: it waits for approval."), "success")
            return redirect(url_for("prm_portal_web.registration",
                                    registration_id=registration.id))
    rows = db.session.execute(_registrations().order_by(
        DealRegistration.created_at.desc(), DealRegistration.id)).scalars().all()
    return render_template("prm/portal_registrations.html", partner=_partner(),
                           registrations=rows, errors=errors, values=values), status


@bp.route("/registrations/<registration_id>")
def registration(registration_id: str):
    row = db.session.execute(_registrations().where(
        DealRegistration.id == parse_id(registration_id))).scalar_one_or_none()
    if row is None:
        raise NotFound("deal registration not found")
    return render_template("prm/portal_registration.html", partner=_partner(),
                           registration=row)


# --- commissions ---------------------------------------------------------------------


@bp.route("/commissions")
def commissions():
    rows = db.session.execute(prm.commissions_query(partner_id=_partner().id)
                              ).scalars().all()[::-1]
    totals: dict[str, object] = {}
    for row in rows:
        totals[row.status] = totals.get(row.status, 0) + row.amount
    return render_template("prm/portal_commissions.html", partner=_partner(),
                           commissions=rows, totals=totals)


@bp.route("/commissions/<commission_id>")
def commission(commission_id: str):
    row = db.session.execute(prm.commissions_query(partner_id=_partner().id).where(
        Commission.id == parse_id(commission_id))).scalar_one_or_none()
    if row is None:
        raise NotFound("commission not found")
    return render_template("prm/portal_commission.html", partner=_partner(), commission=row)


__all__ = ["bp"]
