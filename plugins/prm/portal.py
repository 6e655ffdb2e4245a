"""The partner portal, ``/partner/api/v1``: what a partner user (role ``partner``) sees of
their own partner — its leads, deal registrations, deals, contracts, commissions and
scorecard — and nothing of any other partner.

A partner user authenticates like staff (an API token, or a session opened by
``POST /partner/api/v1/auth/login``); the partner comes from the user's link, never
from the request. Every record is looked up through the partner's id: another
partner's record answers 404 exactly as a missing one does.
"""

from __future__ import annotations

import hmac
import uuid

from flask import Blueprint, g, jsonify, request, session
from marshmallow import Schema, fields, validate
from marshmallow import ValidationError as SchemaError
from werkzeug.exceptions import HTTPException

from clientela.core import services as core_services
from clientela.core import tenancy
from clientela.core.api import error_body
from clientela.core.api import auth
from clientela.core.db import db
from clientela.core.errors import Forbidden, NotFound, Unauthorized, ValidationError
from clientela.core.models import User
from clientela.plugins.operational import services as ops
from clientela.plugins.operational.models import Deal, Lead
from clientela.plugins.prm import schemas
from clientela.plugins.prm import services as prm
from clientela.plugins.prm.models import (
    Commission,
    DealRegistration,
    LeadOffer,
    Partner,
    PartnerContract,
    PartnerTier,
)

PREFIX = "/partner/api/v1"
portal = Blueprint("partner_portal", __name__, url_prefix=PREFIX)
PUBLIC = {f"{PREFIX}/auth/login"}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


class PortalLead(Schema):
    """A lead as its partner sees it: contact details once the partner has accepted it."""

    id = fields.UUID()
    offer_id = fields.UUID()
    offer_status = fields.String()
    offered_at = fields.DateTime()
    deadline = fields.DateTime()
    first_name = fields.String(allow_none=True)
    last_name = fields.String(allow_none=True)
    company = fields.String(allow_none=True)
    title = fields.String(allow_none=True)
    country = fields.String(allow_none=True)
    message = fields.String()
    status = fields.String()
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)


class PortalPartner(Schema):
    id = fields.UUID()
    name = fields.String()
    type = fields.String()
    status = fields.String()
    tier = fields.String(allow_none=True)
    territories = fields.List(fields.String())
    specialisations = fields.List(fields.String())
    user_email = fields.String()


class PortalStatementQuery(Schema):
    period = fields.String(load_default="month", validate=validate.OneOf(("month", "quarter")))
    start = fields.Date(required=True)


class Login(Schema):
    email = fields.String(required=True)
    password = fields.String(required=True)


def _load(schema: Schema, data) -> dict:
    try:
        return schema.load(data if data is not None else {})
    except SchemaError as exc:
        raise ValidationError(exc.messages) from None


def _json():
    return request.get_json(silent=True) or {}


def _id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("not found") from None


def _partner_id() -> uuid.UUID:
    return g.prm_partner_id


# --- authentication -------------------------------------------------------------------------


@portal.before_request
def authenticate_partner() -> None:
    """The partner user of the request, its tenant and its partner."""
    if request.path in PUBLIC:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    if header:
        if scheme.lower() != "bearer" or not raw.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <token>'")
        found = core_services.authenticate_token(raw.strip())
        if found is None:
            raise Unauthorized("invalid or expired token")
        token, user = found
        tenant_id, via = token.tenant_id, "token"
    elif session.get("user_id") and session.get("tenant_id") and session.get("partner_portal"):
        tenant_id = uuid.UUID(session["tenant_id"])
        with tenancy.tenant_context(tenant_id):
            user = db.session.execute(db.select(User).where(
                User.id == uuid.UUID(session["user_id"]))).scalar_one_or_none()
        if user is None or not user.is_active:
            session.clear()
            raise Unauthorized("your session has ended; log in again")
        if request.method in UNSAFE and not hmac.compare_digest(
                request.headers.get("X-CSRF-Token", ""), session.get("csrf", "")):
            raise Forbidden("missing or wrong X-CSRF-Token header for a session request")
        via = "session"
    else:
        raise Unauthorized("authentication required: send 'Authorization: Bearer <token>'")
    if prm.PARTNER_ROLE not in (user.roles or []):
        raise Forbidden("the partner portal is for partner users")
    auth._activate(tenant_id, user, via)
    partner = prm.partner_of_user(user.id)
    if partner is None or partner.status == "terminated":
        raise Forbidden("this user acts for no partner")
    g.prm_partner_id = partner.id


@portal.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    return jsonify(error_body(exc.code or 500, exc.description or "")), exc.code or 500


@portal.post("/auth/login")
def login():
    """Open a portal session (answer: the CSRF token to send with every write)."""
    data = _load(Login(), _json())
    user, csrf = auth.login(data["email"], data["password"])
    if prm.PARTNER_ROLE not in (user.roles or []):
        session.clear()
        raise Unauthorized("invalid e-mail or password")
    session["partner_portal"] = True
    return jsonify({"csrf_token": csrf})


@portal.get("/me")
def me():
    partner = db.session.execute(db.select(Partner).where(Partner.id == _partner_id())
                                 ).scalar_one()
    tier = db.session.execute(db.select(PartnerTier.name).where(
        PartnerTier.id == partner.tier_id)).scalar_one_or_none()
    return jsonify(PortalPartner().dump({
        "id": partner.id, "name": partner.name, "type": partner.type, "status": partner.status,
        "tier": tier, "territories": partner.territories,
        "specialisations": partner.specialisations, "user_email": g.principal.email}))


# --- leads -----------------------------------------------------------------------------------


def _lead_view(offer: LeadOffer, lead: Lead) -> dict:
    accepted = offer.status == "accepted"
    return {"id": lead.id, "offer_id": offer.id, "offer_status": offer.status,
            "offered_at": offer.offered_at, "deadline": offer.deadline,
            "first_name": lead.first_name, "last_name": lead.last_name, "company": lead.company,
            "title": lead.title, "country": lead.country, "message": lead.message,
            "status": lead.status, "email": lead.email if accepted else None,
            "phone": lead.phone if accepted else None}


def _visible_offers():
    """The partner's leads: offered to it (waiting for its answer) or accepted by it."""
    return (db.select(LeadOffer, Lead)
            .join(Lead, (Lead.tenant_id == LeadOffer.tenant_id) & (Lead.id == LeadOffer.lead_id))
            .where(LeadOffer.partner_id == _partner_id(),
                   LeadOffer.status.in_(("offered", "accepted"))))


def _offer_for(lead_id: str) -> tuple[LeadOffer, Lead]:
    row = db.session.execute(_visible_offers().where(Lead.id == _id(lead_id))).first()
    if row is None:
        raise NotFound("lead not found")
    return row


@portal.get("/leads")
def leads():
    rows = db.session.execute(_visible_offers().order_by(LeadOffer.offered_at.desc(),
                                                         LeadOffer.id)).all()
    return jsonify(PortalLead(many=True).dump([_lead_view(o, lead) for o, lead in rows]))


@portal.get("/leads/<lead_id>")
def lead(lead_id: str):
    return jsonify(PortalLead().dump(_lead_view(*_offer_for(lead_id))))


@portal.post("/leads/<lead_id>/accept")
def accept_lead(lead_id: str):
    offer, lead = _offer_for(lead_id)
    reason = _load(schemas.OfferAnswer(), _json()).get("reason")
    prm.respond_to_offer(offer, True, reason)
    db.session.commit()
    return jsonify(PortalLead().dump(_lead_view(offer, lead)))


@portal.post("/leads/<lead_id>/decline")
def decline_lead(lead_id: str):
    offer, lead = _offer_for(lead_id)
    reason = _load(schemas.OfferAnswer(), _json()).get("reason")
    prm.respond_to_offer(offer, False, reason)
    db.session.commit()
    return "", 204


# --- deal registrations -----------------------------------------------------------------------


def _registrations():
    return db.select(DealRegistration).where(DealRegistration.partner_id == _partner_id())


@portal.get("/deal-registrations")
def registrations():
    rows = db.session.execute(_registrations().order_by(DealRegistration.created_at.desc(),
                                                        DealRegistration.id)).scalars().all()
    return jsonify(schemas.PortalRegistration(many=True).dump(rows))


@portal.post("/deal-registrations")
def register_deal():
    data = _load(schemas.RegistrationInput(), _json())
    if data.get("customer_id") is not None:
        # a partner names its customer; it may not point at the tenant's customer records
        raise ValidationError({"customer_id": ["name the customer with company_name and "
                                               "contact_email"]})
    registration = prm.submit_registration(_partner_id(), data, g.principal.user_id)
    db.session.commit()
    return jsonify(schemas.PortalRegistration().dump(registration)), 201


@portal.get("/deal-registrations/<registration_id>")
def registration(registration_id: str):
    row = db.session.execute(_registrations().where(
        DealRegistration.id == _id(registration_id))).scalar_one_or_none()
    if row is None:
        raise NotFound("deal registration not found")
    return jsonify(schemas.PortalRegistration().dump(row))


# --- deals --------------------------------------------------------------------------------------


class PortalDeal(Schema):
    id = fields.UUID()
    title = fields.String()
    amount = fields.Decimal(as_string=True, places=2)
    currency = fields.String()
    status = fields.String()
    probability = fields.Integer()
    expected_close_date = fields.Date(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


@portal.get("/deals")
def deals():
    rows = db.session.execute(prm.partner_deals_query(_partner_id()).order_by(
        Deal.created_at.desc(), Deal.id)).scalars().all()
    return jsonify(PortalDeal(many=True).dump(ops.decorate(list(rows), with_items=False)))


@portal.get("/deals/<deal_id>")
def deal(deal_id: str):
    row = db.session.execute(prm.partner_deals_query(_partner_id()).where(
        Deal.id == _id(deal_id))).scalar_one_or_none()
    if row is None:
        raise NotFound("deal not found")
    return jsonify(PortalDeal().dump(ops.decorate([row], with_items=False)[0]))


# --- contracts ----------------------------------------------------------------------------------


@portal.get("/contracts")
def contracts():
    rows = db.session.execute(prm.contracts_query(partner_id=_partner_id())).scalars().all()
    return jsonify(schemas.PartnerContract(many=True).dump(rows))


@portal.get("/contracts/<contract_id>")
def contract(contract_id: str):
    row = db.session.execute(prm.contracts_query(partner_id=_partner_id()).where(
        PartnerContract.id == _id(contract_id))).scalar_one_or_none()
    if row is None:
        raise NotFound("contract not found")
    return jsonify(schemas.PartnerContract().dump(row))


# --- commissions and scorecard -------------------------------------------------------------------


@portal.get("/commissions")
def commissions():
    rows = db.session.execute(prm.commissions_query(partner_id=_partner_id())).scalars().all()
    return jsonify(schemas.PortalCommission(many=True).dump(rows))


@portal.get("/commissions/statement")
def commission_statement():
    args = _load(PortalStatementQuery(), request.args.to_dict())
    result = prm.statement(_partner_id(), args["period"], args["start"])
    result["lines"] = schemas.PortalCommission(many=True).dump(result["lines"])
    return jsonify({**result, "partner_id": str(result["partner_id"]),
                    "start": result["start"].isoformat(), "end": result["end"].isoformat()})


@portal.get("/commissions/<commission_id>")
def commission(commission_id: str):
    row = db.session.execute(prm.commissions_query(partner_id=_partner_id()).where(
        Commission.id == _id(commission_id))).scalar_one_or_none()
    if row is None:
        raise NotFound("commission not found")
    return jsonify(schemas.PortalCommission().dump(row))


@portal.get("/scorecard")
def scorecard():
    args = _load(schemas.PeriodQuery(), request.args.to_dict())
    partner = db.session.execute(db.select(Partner).where(Partner.id == _partner_id())
                                 ).scalar_one()
    return jsonify(schemas.Scorecard().dump(prm.scorecard(partner, args.get("from_"),
                                                          args.get("to"))))


__all__ = ["PREFIX", "portal"]
