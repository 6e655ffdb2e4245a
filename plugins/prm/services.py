"""The PRM plugin's business logic: partners and their lifecycle, tiers, partner users, deal
registration with its conflict check, attribution of deals, commission plans and
commissions, lead distribution to partners, contracts, forecasts and scorecards.

Every function runs in the current tenant and needs no request. Staff functions take the
acting ``Principal``; the record scope (own/team/all) of partner data follows the partner's
``owner_id`` (its channel manager). Portal functions take the ``partner_id`` the portal
resolved from the partner user, and never reach another partner's rows. They flush but
never commit.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

import sqlalchemy as sa
from flask import current_app

from clientela.core import access, services
from clientela.core.access import Principal
from clientela.core.db import db, utcnow
from clientela.core.errors import Conflict, Forbidden, NotFound, ValidationError
from clientela.core.models import Customer, User
from clientela.plugins.operational import services as ops
from clientela.plugins.operational.models import Deal, DealItem, Lead, Stage
from clientela.plugins.prm.models import (
    TRANSITIONS,
    Commission,
    CommissionPlan,
    DealRegistration,
    LeadDistributionRule,
    LeadOffer,
    OnboardingStep,
    Partner,
    PartnerContract,
    PartnerDeal,
    PartnerStatusChange,
    PartnerTarget,
    PartnerTier,
    PartnerUser,
)

CENT = decimal.Decimal("0.01")
ZERO = decimal.Decimal("0")
HUNDRED = decimal.Decimal("100")
PARTNER_ROLE = "partner"
DEFAULT_TIERS = (("gold", 3), ("silver", 2), ("bronze", 1))
PARTNER_SORT = {"created_at", "updated_at", "name", "status", "type"}


def _config(key: str):
    return current_app.config[key]


def money(value) -> decimal.Decimal:
    return decimal.Decimal(value or 0).quantize(CENT, rounding=decimal.ROUND_HALF_UP)


def today() -> dt.date:
    return utcnow().date()


def _scoped(stmt, principal: Principal, permission: str):
    """Partner data is scoped by its partner's owner (the channel manager)."""
    return access.scope_filter(stmt, Partner.owner_id, principal, permission)


def _join_partner(stmt, column):
    return stmt.join(Partner, (Partner.tenant_id == column.table.c.tenant_id)
                     & (Partner.id == column))


def _check_user(user_id: uuid.UUID | None, field: str) -> None:
    if user_id is None:
        return
    if db.session.execute(db.select(User.id).where(
            User.id == user_id, User.is_active.is_(True))).first() is None:
        raise ValidationError({field: ["no active user with this id"]})


# --- tiers ----------------------------------------------------------------------------


def ensure_default_tiers() -> list[PartnerTier]:
    """Gold, silver and bronze (weights 3, 2, 1) when the tenant has no tier yet."""
    existing = list(db.session.execute(db.select(PartnerTier)).scalars())
    if existing:
        return existing
    tiers = [PartnerTier(name=name, weight=weight, position=i)
             for i, (name, weight) in enumerate(DEFAULT_TIERS)]
    db.session.add_all(tiers)
    db.session.flush()
    return tiers


def tiers_query(principal: Principal):
    access.require(principal, "partners:read")
    return db.select(PartnerTier).order_by(PartnerTier.position, PartnerTier.name)


def get_tier(tier_id: uuid.UUID, principal: Principal, write: bool = False) -> PartnerTier:
    tier = db.session.execute(tiers_query(principal).where(PartnerTier.id == tier_id)
                              ).scalar_one_or_none()
    if tier is None:
        raise NotFound("partner tier not found")
    if write:
        access.require(principal, "partners:configure")
    return tier


def _unique_tier_name(name: str, tier_id=None) -> None:
    stmt = db.select(PartnerTier.id).where(sa.func.lower(PartnerTier.name) == name.lower())
    if tier_id is not None:
        stmt = stmt.where(PartnerTier.id != tier_id)
    if db.session.execute(stmt).first() is not None:
        raise Conflict(f"a tier named '{name}' already exists")


def create_tier(data: dict[str, Any], principal: Principal) -> PartnerTier:
    access.require(principal, "partners:configure")
    _unique_tier_name(data["name"])
    tier = PartnerTier(**data)
    db.session.add(tier)
    db.session.flush()
    return tier


def update_tier(tier_id: uuid.UUID, data: dict[str, Any], principal: Principal) -> PartnerTier:
    tier = get_tier(tier_id, principal, write=True)
    if "name" in data:
        _unique_tier_name(data["name"], tier.id)
    for key, value in data.items():
        setattr(tier, key, value)
    db.session.flush()
    return tier


def delete_tier(tier_id: uuid.UUID, principal: Principal) -> None:
    tier = get_tier(tier_id, principal, write=True)
    for model in (Partner, CommissionPlan):
        if db.session.execute(db.select(model.id).where(model.tier_id == tier.id)).first():
            raise Conflict("the tier is in use by partners or commission plans")
    db.session.delete(tier)
    db.session.flush()


def _check_tier(tier_id: uuid.UUID | None, field: str = "tier_id") -> PartnerTier | None:
    if tier_id is None:
        return None
    tier = db.session.execute(db.select(PartnerTier).where(PartnerTier.id == tier_id)
                              ).scalar_one_or_none()
    if tier is None:
        raise ValidationError({field: ["no partner tier with this id"]})
    return tier


# --- partners -------------------------------------------------------------------------


def partners_query(principal: Principal, *, status=None, type=None, tier_id=None,
                   owner_id=None, q=None, territory=None, specialisation=None):
    stmt = _scoped(db.select(Partner), principal, "partners:read")
    for column, value in ((Partner.status, status), (Partner.type, type),
                          (Partner.tier_id, tier_id), (Partner.owner_id, owner_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    if q and q.strip():
        stmt = stmt.where(sa.func.lower(Partner.name).like(f"%{q.strip().lower()}%"))
    if territory or specialisation:
        # JSON lists are matched through their text on both databases ('%"IT"%'): the
        # values are short normalised codes, never user-typed patterns
        for column, value in ((Partner.territories, territory),
                              (Partner.specialisations, specialisation)):
            if value:
                stmt = stmt.where(sa.cast(column, sa.Text).like(f'%"{value}"%'))
    return stmt


def get_partner(partner_id: uuid.UUID, principal: Principal,
                permission: str = "partners:read") -> Partner:
    partner = db.session.execute(partners_query(principal).where(Partner.id == partner_id)
                                 ).scalar_one_or_none()
    if partner is None:
        raise NotFound("partner not found")
    if permission != "partners:read":
        access.check_record(partner.owner_id, principal, "partners:read", permission)
    return partner


def _clean_partner(data: dict[str, Any]) -> dict[str, Any]:
    data = dict(data)
    if "territories" in data:
        data["territories"] = sorted({t.strip().upper() for t in data["territories"] if t.strip()})
    if "specialisations" in data:
        data["specialisations"] = sorted({s.strip().lower() for s in data["specialisations"]
                                          if s.strip()})
    if data.get("email"):
        data["email"] = services.normalise_email(data["email"])
    _check_tier(data.get("tier_id"))
    _check_user(data.get("owner_id"), "owner_id")
    return data


def onboarding_step_names() -> list[str]:
    steps = _config("PRM_ONBOARDING_STEPS")
    if isinstance(steps, str):
        steps = [s.strip() for s in steps.split(",")]
    return [s for s in steps if s]


def create_partner(data: dict[str, Any], principal: Principal | None = None) -> Partner:
    if principal is not None:
        access.require(principal, "partners:write")
    data = _clean_partner(data)
    if principal is not None:
        data.setdefault("owner_id", principal.user_id)
        if principal.scope("partners:write") == "own" and data["owner_id"] != principal.user_id:
            raise Forbidden("you may only assign partners to yourself")
    partner = Partner(**data, status="prospect", status_changed_at=utcnow())
    db.session.add(partner)
    db.session.flush()
    db.session.add(PartnerStatusChange(partner_id=partner.id, from_status=None,
                                       to_status="prospect", changed_at=partner.status_changed_at,
                                       user_id=principal.user_id if principal else None))
    for position, name in enumerate(onboarding_step_names()):
        db.session.add(OnboardingStep(partner_id=partner.id, name=name, position=position))
    db.session.flush()
    return partner


def update_partner(partner_id: uuid.UUID, data: dict[str, Any], principal: Principal) -> Partner:
    partner = get_partner(partner_id, principal, "partners:write")
    data = _clean_partner(data)
    if "owner_id" in data and principal.scope("partners:write") == "own" and (
            data["owner_id"] != principal.user_id):
        raise Forbidden("you may only assign partners to yourself")
    for key, value in data.items():
        setattr(partner, key, value)
    db.session.flush()
    return partner


def delete_partner(partner_id: uuid.UUID, principal: Principal) -> None:
    partner = get_partner(partner_id, principal, "partners:write")
    if db.session.execute(db.select(Commission.id).where(
            Commission.partner_id == partner.id, Commission.status.in_(("approved", "paid")))
    ).first():
        raise Conflict("the partner has approved or paid commissions: terminate it instead")
    user_ids = list(db.session.execute(db.select(PartnerUser.user_id).where(
        PartnerUser.partner_id == partner.id)).scalars())
    for user in db.session.execute(db.select(User).where(User.id.in_(user_ids))).scalars():
        user.is_active = False
    db.session.delete(partner)
    db.session.flush()


def onboarding_steps(partner_id: uuid.UUID) -> list[OnboardingStep]:
    return list(db.session.execute(
        db.select(OnboardingStep).where(OnboardingStep.partner_id == partner_id)
        .order_by(OnboardingStep.position, OnboardingStep.name)).scalars())


def missing_steps(partner_id: uuid.UUID) -> list[str]:
    return [s.name for s in onboarding_steps(partner_id) if s.required and s.completed_at is None]


def add_onboarding_step(partner_id: uuid.UUID, data: dict[str, Any], principal: Principal
                        ) -> OnboardingStep:
    partner = get_partner(partner_id, principal, "partners:write")
    if any(s.name.lower() == data["name"].lower() for s in onboarding_steps(partner.id)):
        raise Conflict(f"the partner already has a step '{data['name']}'")
    position = data.pop("position", None)
    if position is None:
        position = len(onboarding_steps(partner.id))
    step = OnboardingStep(partner_id=partner.id, position=position, **data)
    db.session.add(step)
    db.session.flush()
    return step


def update_onboarding_step(partner_id: uuid.UUID, step_id: uuid.UUID, data: dict[str, Any],
                           principal: Principal) -> OnboardingStep:
    partner = get_partner(partner_id, principal, "partners:write")
    step = db.session.execute(db.select(OnboardingStep).where(
        OnboardingStep.id == step_id, OnboardingStep.partner_id == partner.id)
    ).scalar_one_or_none()
    if step is None:
        raise NotFound("onboarding step not found")
    if "completed" in data:
        done = data.pop("completed")
        if done and step.completed_at is None:
            step.completed_at, step.completed_by = utcnow(), principal.user_id
        elif not done:
            step.completed_at, step.completed_by = None, None
    for key, value in data.items():
        setattr(step, key, value)
    db.session.flush()
    return step


def change_status(partner_id: uuid.UUID, status: str, reason: str | None,
                  principal: Principal) -> Partner:
    """Move a partner along its lifecycle; ``active`` needs every required onboarding step."""
    partner = get_partner(partner_id, principal, "partners:write")
    if status == partner.status:
        raise Conflict(f"the partner is already {status}")
    if status not in TRANSITIONS[partner.status]:
        allowed = ", ".join(TRANSITIONS[partner.status]) or "none"
        raise Conflict(f"a partner cannot go from {partner.status} to {status} "
                       f"(allowed: {allowed})")
    if status == "active":
        missing = missing_steps(partner.id)
        if missing:
            raise Conflict("complete the required onboarding steps first: "
                           + ", ".join(missing))
    now = utcnow()
    db.session.add(PartnerStatusChange(partner_id=partner.id, from_status=partner.status,
                                       to_status=status, changed_at=now,
                                       user_id=principal.user_id, reason=reason or ""))
    partner.status, partner.status_changed_at = status, now
    if status in ("inactive", "terminated"):
        # a partner that stops working no longer holds leads waiting for its answer
        for offer in db.session.execute(db.select(LeadOffer).where(
                LeadOffer.partner_id == partner.id, LeadOffer.status == "offered")).scalars():
            offer.status, offer.responded_at, offer.reason = "withdrawn", now, f"partner {status}"
    db.session.flush()
    return partner


def status_history(partner_id: uuid.UUID, principal: Principal) -> list[PartnerStatusChange]:
    get_partner(partner_id, principal)
    return list(db.session.execute(
        db.select(PartnerStatusChange).where(PartnerStatusChange.partner_id == partner_id)
        .order_by(PartnerStatusChange.changed_at, PartnerStatusChange.id)).scalars())


def decorate_partners(partners: list[Partner]) -> list[Partner]:
    """Give each partner its ``tier`` name and ``onboarding`` steps for the API."""
    tiers = {t.id: t for t in db.session.execute(db.select(PartnerTier)).scalars()}
    steps: dict[uuid.UUID, list[OnboardingStep]] = {}
    if partners:
        for step in db.session.execute(db.select(OnboardingStep).where(
                OnboardingStep.partner_id.in_([p.id for p in partners]))
                .order_by(OnboardingStep.position, OnboardingStep.name)).scalars():
            steps.setdefault(step.partner_id, []).append(step)
    for partner in partners:
        tier = tiers.get(partner.tier_id)
        partner.tier = tier.name if tier else None
        partner.onboarding = steps.get(partner.id, [])
    return partners


# --- partner users ----------------------------------------------------------------------


def partner_users(partner_id: uuid.UUID, principal: Principal) -> list[User]:
    get_partner(partner_id, principal)
    return list(db.session.execute(
        db.select(User).join(PartnerUser, (PartnerUser.tenant_id == User.tenant_id)
                             & (PartnerUser.user_id == User.id))
        .where(PartnerUser.partner_id == partner_id).order_by(User.email)).scalars())


def add_partner_user(partner_id: uuid.UUID, data: dict[str, Any], principal: Principal
                     ) -> tuple[User, str | None]:
    """A new user with role ``partner`` acting for the partner; with ``issue_token`` an API
    token for the partner portal is made too (returned once)."""
    partner = get_partner(partner_id, principal, "partners:write")
    if partner.status == "terminated":
        raise Conflict("the partner is terminated")
    user = services.create_user(data["email"], roles=[PARTNER_ROLE],
                                password=data.get("password"), name=data.get("name", ""))
    db.session.add(PartnerUser(partner_id=partner.id, user_id=user.id))
    raw = None
    if data.get("issue_token"):
        _, raw = services.create_token(user, name="partner portal")
    db.session.flush()
    return user, raw


def remove_partner_user(partner_id: uuid.UUID, user_id: uuid.UUID, principal: Principal) -> None:
    partner = get_partner(partner_id, principal, "partners:write")
    link = db.session.execute(db.select(PartnerUser).where(
        PartnerUser.partner_id == partner.id, PartnerUser.user_id == user_id)
    ).scalar_one_or_none()
    if link is None:
        raise NotFound("partner user not found")
    user = db.session.execute(db.select(User).where(User.id == user_id)).scalar_one()
    user.is_active = False
    db.session.delete(link)
    db.session.flush()


def partner_of_user(user_id: uuid.UUID) -> Partner | None:
    """The partner a portal user acts for (``None`` for anyone else)."""
    return db.session.execute(
        db.select(Partner).join(PartnerUser, (PartnerUser.tenant_id == Partner.tenant_id)
                                & (PartnerUser.partner_id == Partner.id))
        .where(PartnerUser.user_id == user_id)).scalar_one_or_none()


# --- targets ------------------------------------------------------------------------------


def targets(partner_id: uuid.UUID, principal: Principal) -> list[PartnerTarget]:
    get_partner(partner_id, principal)
    return list(db.session.execute(db.select(PartnerTarget).where(
        PartnerTarget.partner_id == partner_id).order_by(PartnerTarget.period_start,
                                                         PartnerTarget.period)).scalars())


def set_target(partner_id: uuid.UUID, data: dict[str, Any], principal: Principal
               ) -> PartnerTarget:
    """Set (or replace) the partner's target for one month or quarter."""
    partner = get_partner(partner_id, principal, "partners:write")
    start = data["period_start"]
    if start != ops.period_start(start, data["period"]):
        raise ValidationError({"period_start": [
            f"a {data['period']} starts on its first day "
            f"({ops.period_start(start, data['period']).isoformat()})"]})
    target = db.session.execute(db.select(PartnerTarget).where(
        PartnerTarget.partner_id == partner.id, PartnerTarget.period == data["period"],
        PartnerTarget.period_start == start)).scalar_one_or_none()
    if target is None:
        target = PartnerTarget(partner_id=partner.id, period=data["period"], period_start=start,
                               amount=data["amount"])
        db.session.add(target)
    else:
        target.amount = data["amount"]
    db.session.flush()
    return target


# --- deal registration ------------------------------------------------------------------


def registrations_query(principal: Principal, *, status=None, partner_id=None,
                        customer_id=None):
    stmt = _scoped(_join_partner(db.select(DealRegistration), DealRegistration.partner_id),
                   principal, "registrations:read")
    for column, value in ((DealRegistration.status, status),
                          (DealRegistration.partner_id, partner_id),
                          (DealRegistration.customer_id, customer_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    return stmt


def get_registration(registration_id: uuid.UUID, principal: Principal,
                     permission: str = "registrations:read") -> DealRegistration:
    stmt = registrations_query(principal).where(DealRegistration.id == registration_id)
    registration = db.session.execute(stmt).scalar_one_or_none()
    if registration is None:
        raise NotFound("deal registration not found")
    if permission != "registrations:read":
        owner = db.session.execute(db.select(Partner.owner_id).where(
            Partner.id == registration.partner_id)).scalar_one()
        access.check_record(owner, principal, "registrations:read", permission)
    return registration


def _customer_ids_for(customer_id, company_name, contact_email) -> set[uuid.UUID]:
    """The customers a registration names: by id, or by organisation name or e-mail."""
    if customer_id is not None:
        return {customer_id}
    conditions = []
    if company_name:
        conditions.append(sa.func.lower(Customer.organisation_name) == company_name.lower())
        conditions.append(sa.func.lower(Customer.display_name) == company_name.lower())
    if contact_email:
        conditions.append(Customer.email == contact_email)
    if not conditions:
        return set()
    return set(db.session.execute(db.select(Customer.id).where(sa.or_(*conditions))).scalars())


def find_conflicts(*, customer_id=None, company_name=None, contact_email=None,
                   exclude_id=None, earlier_than: dt.datetime | None = None,
                   on: dt.date | None = None) -> list[dict[str, Any]]:
    """What already claims the customer: an open deal, or another registration that is
    approved and still protected on ``on`` (default today), or pending and (with
    ``earlier_than``) submitted before — first come, first served."""
    on = on or today()
    ids = _customer_ids_for(customer_id, company_name, contact_email)
    found: list[dict[str, Any]] = []
    if ids:
        for deal in db.session.execute(db.select(Deal).where(
                Deal.customer_id.in_(ids), Deal.status == "open").order_by(Deal.created_at)
        ).scalars():
            found.append({"kind": "deal", "id": str(deal.id), "title": deal.title})
    claims = []
    if ids:
        claims.append(DealRegistration.customer_id.in_(ids))
    if company_name:
        claims.append(sa.func.lower(DealRegistration.company_name) == company_name.lower())
    if contact_email:
        claims.append(DealRegistration.contact_email == contact_email)
    if claims:
        pending = DealRegistration.status == "pending"
        if earlier_than is not None:
            pending = sa.and_(pending, DealRegistration.created_at < earlier_than)
        stmt = db.select(DealRegistration).where(
            sa.or_(*claims),
            sa.or_(pending,
                   sa.and_(DealRegistration.status == "approved",
                           DealRegistration.protected_until >= on)),
        ).order_by(DealRegistration.created_at)
        if exclude_id is not None:
            stmt = stmt.where(DealRegistration.id != exclude_id)
        for other in db.session.execute(stmt).scalars():
            found.append({"kind": "registration", "id": str(other.id), "title": other.title,
                          "partner_id": str(other.partner_id), "status": other.status})
    return found


def submit_registration(partner_id: uuid.UUID, data: dict[str, Any],
                        user_id: uuid.UUID | None = None) -> DealRegistration:
    """Register an opportunity for a partner (from the portal or by staff for it).

    The conflict check runs now: what it finds is kept on the registration, which then
    waits for a channel manager who must approve it with ``override`` (decision: conflicts
    are flagged for review, not refused, since only a person can tell a duplicate from a
    second project at the same customer).
    """
    partner = db.session.execute(db.select(Partner).where(Partner.id == partner_id)
                                 ).scalar_one_or_none()
    if partner is None:
        raise NotFound("partner not found")
    if partner.status != "active":
        raise Conflict(f"only an active partner can register deals (this one is "
                       f"{partner.status})")
    data = dict(data)
    if data.get("contact_email"):
        data["contact_email"] = services.normalise_email(data["contact_email"], "contact_email")
    if data.get("company_name"):
        data["company_name"] = data["company_name"].strip()
    if data.get("customer_id") is None and not data.get("company_name"):
        raise ValidationError({"company_name": ["name the customer (or give customer_id)"]})
    if data.get("customer_id") is not None and db.session.execute(
            db.select(Customer.id).where(Customer.id == data["customer_id"])).first() is None:
        raise ValidationError({"customer_id": ["no customer with this id"]})
    data["currency"] = (data.get("currency") or _config("OPERATIONAL_DEFAULT_CURRENCY")).upper()
    registration = DealRegistration(partner_id=partner.id, submitted_by=user_id, **data)
    registration.conflicts = find_conflicts(customer_id=data.get("customer_id"),
                                            company_name=data.get("company_name"),
                                            contact_email=data.get("contact_email"))
    db.session.add(registration)
    db.session.flush()
    return registration


def create_registration(data: dict[str, Any], principal: Principal) -> DealRegistration:
    """Staff register a deal on behalf of a partner."""
    access.require(principal, "registrations:write")
    data = dict(data)
    partner = get_partner(data.pop("partner_id"), principal)
    return submit_registration(partner.id, data, principal.user_id)


def _registration_customer(registration: DealRegistration) -> uuid.UUID:
    if registration.customer_id is not None:
        return registration.customer_id
    ids = _customer_ids_for(None, registration.company_name, registration.contact_email)
    if len(ids) == 1:
        return ids.pop()
    customer = services.create_customer({
        "kind": "organisation", "organisation_name": registration.company_name,
        "email": registration.contact_email, "stage": "prospect"})
    return customer.id


def approve_registration(registration_id: uuid.UUID, data: dict[str, Any],
                         principal: Principal) -> DealRegistration:
    """Approve: a deal opens in the pipeline, attributed to the partner and protected for
    ``PRM_PROTECTION_DAYS``. A registration in conflict needs ``override``."""
    registration = get_registration(registration_id, principal, "registrations:approve")
    if registration.status != "pending":
        raise Conflict(f"the registration is already {registration.status}")
    conflicts = find_conflicts(customer_id=registration.customer_id,
                               company_name=registration.company_name,
                               contact_email=registration.contact_email,
                               exclude_id=registration.id,
                               earlier_than=registration.created_at)
    registration.conflicts = conflicts
    if conflicts and not data.get("override"):
        db.session.flush()
        raise Conflict("the registration conflicts with "
                       + "; ".join(f"{c['kind']} '{c['title']}'" for c in conflicts)
                       + ": approve with override to go ahead")
    partner = db.session.execute(db.select(Partner).where(
        Partner.id == registration.partner_id)).scalar_one()
    registration.customer_id = _registration_customer(registration)
    deal_data = {"title": registration.title, "amount": registration.amount,
                 "currency": registration.currency, "customer_id": registration.customer_id,
                 "expected_close_date": registration.expected_close_date,
                 "owner_id": data.get("owner_id") or partner.owner_id or principal.user_id}
    if data.get("pipeline_id"):
        deal_data["pipeline_id"] = data["pipeline_id"]
    deal = ops.create_deal(deal_data, principal)
    now = utcnow()
    protected = now.date() + dt.timedelta(days=int(_config("PRM_PROTECTION_DAYS")))
    registration.status, registration.decided_at = "approved", now
    registration.decided_by, registration.decision_reason = principal.user_id, data.get("reason")
    registration.deal_id, registration.protected_until = deal.id, protected
    attribute_deal(deal.id, partner.id, registration_id=registration.id,
                   protected_until=protected)
    db.session.flush()
    return registration


def reject_registration(registration_id: uuid.UUID, reason: str, principal: Principal
                        ) -> DealRegistration:
    registration = get_registration(registration_id, principal, "registrations:approve")
    if registration.status != "pending":
        raise Conflict(f"the registration is already {registration.status}")
    registration.status, registration.decided_at = "rejected", utcnow()
    registration.decided_by, registration.decision_reason = principal.user_id, reason
    db.session.flush()
    return registration


# --- attribution ------------------------------------------------------------------------


def attribute_deal(deal_id: uuid.UUID, partner_id: uuid.UUID, *, registration_id=None,
                   protected_until=None) -> PartnerDeal:
    """Attribute a deal to a partner (one partner per deal); a won deal earns at once."""
    existing = db.session.execute(db.select(PartnerDeal).where(PartnerDeal.deal_id == deal_id)
                                  ).scalar_one_or_none()
    if existing is not None:
        if existing.partner_id != partner_id:
            raise Conflict("the deal is already attributed to another partner")
        return existing
    link = PartnerDeal(deal_id=deal_id, partner_id=partner_id, registration_id=registration_id,
                       protected_until=protected_until)
    db.session.add(link)
    db.session.flush()
    deal = db.session.execute(db.select(Deal).where(Deal.id == deal_id)).scalar_one()
    sync_commission(deal)
    return link


def forget_deal(deal_id: uuid.UUID) -> None:
    """A deleted deal: its registration no longer points at it (its attribution and
    commission went with it, by cascade)."""
    db.session.execute(sa.update(DealRegistration).where(DealRegistration.deal_id == deal_id)
                       .values(deal_id=None).execution_options(synchronize_session=False))


def attribute_deal_for(partner_id: uuid.UUID, deal_id: uuid.UUID, principal: Principal
                       ) -> PartnerDeal:
    partner = get_partner(partner_id, principal, "partners:write")
    ops.get_deal(deal_id, principal)
    return attribute_deal(deal_id, partner.id)


def partner_deals_query(partner_id: uuid.UUID):
    """The deals attributed to a partner."""
    return db.select(Deal).join(PartnerDeal, (PartnerDeal.tenant_id == Deal.tenant_id)
                                & (PartnerDeal.deal_id == Deal.id)
                                ).where(PartnerDeal.partner_id == partner_id)


# --- commission plans and commissions ------------------------------------------------------


def check_brackets(brackets: list[dict[str, Any]]) -> list[dict[str, str | None]]:
    """Ascending ``up_to`` thresholds, only the last open-ended, rates from 0 to 100."""
    if not brackets:
        raise ValidationError({"brackets": ["give at least one bracket"]})
    clean, previous = [], ZERO
    for i, bracket in enumerate(brackets):
        up_to, rate = bracket.get("up_to"), decimal.Decimal(bracket["rate"])
        if not ZERO <= rate <= HUNDRED:
            raise ValidationError({"brackets": [f"bracket {i + 1}: the rate is a percentage "
                                                f"from 0 to 100"]})
        if up_to is None and i != len(brackets) - 1:
            raise ValidationError({"brackets": ["only the last bracket may be open-ended"]})
        if up_to is not None:
            up_to = decimal.Decimal(up_to)
            if up_to <= previous:
                raise ValidationError({"brackets": ["thresholds must go up"]})
            previous = up_to
        clean.append({"up_to": None if up_to is None else str(money(up_to)),
                      "rate": format(rate.normalize(), "f")})
    return clean


def commission_on(amount, brackets: list[dict[str, Any]]) -> tuple[decimal.Decimal, list]:
    """Marginal commission: each bracket's rate applies to the part of ``amount`` inside it
    (8% up to 100,000 and 10% above: 150,000 earns 8,000 + 5,000). Beyond a last closed
    bracket nothing is earned."""
    amount = decimal.Decimal(amount or 0)
    total, lower, lines = ZERO, ZERO, []
    for bracket in brackets:
        upper = None if bracket.get("up_to") is None else decimal.Decimal(bracket["up_to"])
        part = (amount if upper is None else min(amount, upper)) - lower
        if part <= 0:
            break
        rate = decimal.Decimal(bracket["rate"])
        earned = money(part * rate / HUNDRED)
        lines.append({"from": str(money(lower)), "to": None if upper is None else str(money(upper)),
                      "base": str(money(part)), "rate": bracket["rate"], "amount": str(earned)})
        total += earned
        if upper is None:
            break
        lower = upper
    return money(total), lines


def plans_query(principal: Principal, active=None):
    access.require(principal, "commissions:read")
    stmt = db.select(CommissionPlan).order_by(CommissionPlan.name)
    if active is not None:
        stmt = stmt.where(CommissionPlan.active.is_(active))
    return stmt


def get_plan(plan_id: uuid.UUID, principal: Principal, write: bool = False) -> CommissionPlan:
    plan = db.session.execute(plans_query(principal).where(CommissionPlan.id == plan_id)
                              ).scalar_one_or_none()
    if plan is None:
        raise NotFound("commission plan not found")
    if write:
        access.require(principal, "commissions:write")
    return plan


def _clean_plan(data: dict[str, Any], plan_id=None) -> dict[str, Any]:
    data = dict(data)
    if "brackets" in data:
        data["brackets"] = check_brackets(data["brackets"])
    _check_tier(data.get("tier_id"))
    if "name" in data:
        stmt = db.select(CommissionPlan.id).where(CommissionPlan.name == data["name"])
        if plan_id is not None:
            stmt = stmt.where(CommissionPlan.id != plan_id)
        if db.session.execute(stmt).first():
            raise Conflict(f"a commission plan named '{data['name']}' already exists")
    if data.get("product") is not None:
        data["product"] = data["product"].strip() or None
    return data


def create_plan(data: dict[str, Any], principal: Principal) -> CommissionPlan:
    access.require(principal, "commissions:write")
    plan = CommissionPlan(**_clean_plan(data))
    db.session.add(plan)
    db.session.flush()
    return plan


def update_plan(plan_id: uuid.UUID, data: dict[str, Any], principal: Principal
                ) -> CommissionPlan:
    plan = get_plan(plan_id, principal, write=True)
    for key, value in _clean_plan(data, plan.id).items():
        setattr(plan, key, value)
    db.session.flush()
    return plan


def delete_plan(plan_id: uuid.UUID, principal: Principal) -> None:
    plan = get_plan(plan_id, principal, write=True)
    for model, column in ((Commission, Commission.plan_id),
                          (PartnerContract, PartnerContract.commission_plan_id)):
        if db.session.execute(db.select(model.id).where(column == plan.id)).first():
            raise Conflict("the plan is in use: deactivate it instead")
    db.session.delete(plan)
    db.session.flush()


def active_contract(partner_id: uuid.UUID, on: dt.date | None = None) -> PartnerContract | None:
    on = on or today()
    return db.session.execute(db.select(PartnerContract).where(
        PartnerContract.partner_id == partner_id, PartnerContract.status == "active",
        PartnerContract.start_date <= on,
        sa.or_(PartnerContract.end_date.is_(None), PartnerContract.end_date >= on))
        .order_by(PartnerContract.start_date.desc(), PartnerContract.id)).scalars().first()


def plan_for(partner: Partner, deal: Deal) -> CommissionPlan | None:
    """The plan that pays ``partner`` on ``deal``, most specific first: the plan of the
    partner's active contract; a plan for a product on the deal's lines (for the partner's
    tier, then for every tier); the plan of the partner's tier; a plan for everyone."""
    on = deal.closed_at.date() if deal.closed_at else today()
    contract = active_contract(partner.id, on)
    if contract is not None and contract.commission_plan_id is not None:
        plan = db.session.execute(db.select(CommissionPlan).where(
            CommissionPlan.id == contract.commission_plan_id)).scalar_one_or_none()
        if plan is not None:
            return plan
    plans = list(db.session.execute(db.select(CommissionPlan).where(
        CommissionPlan.active.is_(True)).order_by(CommissionPlan.created_at, CommissionPlan.id)
    ).scalars())
    products = {p.lower() for p in db.session.execute(db.select(DealItem.product).where(
        DealItem.deal_id == deal.id)).scalars()}
    candidates = [
        lambda p: p.product and p.product.lower() in products and p.tier_id == partner.tier_id,
        lambda p: p.product and p.product.lower() in products and p.tier_id is None,
        lambda p: not p.product and partner.tier_id and p.tier_id == partner.tier_id,
        lambda p: not p.product and p.tier_id is None,
    ]
    for matches in candidates:
        for plan in plans:
            if matches(plan):
                return plan
    return None


def sync_commission(deal: Deal) -> Commission | None:
    """Make the commission of a deal agree with it (idempotent): a won deal attributed to
    a partner earns a ``pending`` commission, computed again while it is pending; a deal
    no longer won cancels its pending commission. Approved or paid ones are never changed."""
    link = db.session.execute(db.select(PartnerDeal).where(PartnerDeal.deal_id == deal.id)
                              ).scalar_one_or_none()
    commission = db.session.execute(db.select(Commission).where(Commission.deal_id == deal.id)
                                    ).scalar_one_or_none()
    if commission is not None and commission.status in ("approved", "paid"):
        return commission
    if link is None or deal.status != "won":
        if commission is not None and commission.status == "pending":
            commission.status = "cancelled"
        return commission
    partner = db.session.execute(db.select(Partner).where(Partner.id == link.partner_id)
                                 ).scalar_one()
    plan = plan_for(partner, deal)
    amount, lines = commission_on(deal.amount, plan.brackets) if plan else (ZERO, [])
    closed = deal.closed_at.date() if deal.closed_at else today()
    values = {"partner_id": partner.id, "plan_id": plan.id if plan else None,
              "period_start": closed.replace(day=1), "base_amount": money(deal.amount),
              "amount": amount, "currency": deal.currency, "breakdown": lines,
              "status": "pending"}
    if commission is None:
        commission = Commission(deal_id=deal.id, **values)
        db.session.add(commission)
    else:
        for key, value in values.items():
            if getattr(commission, key) != value:
                setattr(commission, key, value)
    db.session.flush()
    return commission


def sync_all_commissions() -> int:
    """Bring every attributed deal's commission up to date (the job); returns how many
    commissions exist for won deals afterwards."""
    deals = db.session.execute(db.select(Deal).join(
        PartnerDeal, (PartnerDeal.tenant_id == Deal.tenant_id) & (PartnerDeal.deal_id == Deal.id))
    ).scalars().all()
    count = 0
    for deal in deals:
        commission = sync_commission(deal)
        if commission is not None and commission.status != "cancelled":
            count += 1
    return count


def commissions_query(principal: Principal | None = None, *, partner_id=None, status=None,
                      period_from=None, period_to=None):
    stmt = db.select(Commission)
    if principal is not None:
        stmt = _scoped(_join_partner(stmt, Commission.partner_id), principal, "commissions:read")
    for column, value in ((Commission.partner_id, partner_id), (Commission.status, status)):
        if value is not None:
            stmt = stmt.where(column == value)
    if period_from is not None:
        stmt = stmt.where(Commission.period_start >= period_from.replace(day=1))
    if period_to is not None:
        stmt = stmt.where(Commission.period_start <= period_to)
    return stmt.order_by(Commission.period_start, Commission.created_at, Commission.id)


def get_commission(commission_id: uuid.UUID, principal: Principal,
                   permission: str = "commissions:read") -> Commission:
    commission = db.session.execute(commissions_query(principal).where(
        Commission.id == commission_id)).scalar_one_or_none()
    if commission is None:
        raise NotFound("commission not found")
    if permission != "commissions:read":
        owner = db.session.execute(db.select(Partner.owner_id).where(
            Partner.id == commission.partner_id)).scalar_one()
        access.check_record(owner, principal, "commissions:read", permission)
    return commission


def approve_commission(commission_id: uuid.UUID, principal: Principal) -> Commission:
    commission = get_commission(commission_id, principal, "commissions:approve")
    if commission.status != "pending":
        raise Conflict(f"only a pending commission can be approved (this one is "
                       f"{commission.status})")
    commission.status, commission.approved_at = "approved", utcnow()
    commission.approved_by = principal.user_id
    db.session.flush()
    return commission


def pay_commission(commission_id: uuid.UUID, reference: str | None, principal: Principal
                   ) -> Commission:
    commission = get_commission(commission_id, principal, "commissions:approve")
    if commission.status != "approved":
        raise Conflict(f"only an approved commission can be paid (this one is "
                       f"{commission.status})")
    commission.status, commission.paid_at = "paid", utcnow()
    commission.payment_reference = reference
    db.session.flush()
    return commission


def statement(partner_id: uuid.UUID, period: str, start: dt.date,
              principal: Principal | None = None) -> dict[str, Any]:
    """The partner's commissions of one month or quarter, with totals per status."""
    if start != ops.period_start(start, period):
        raise ValidationError({"start": [f"a {period} starts on its first day"]})
    end = ops.period_end(start, period)
    rows = db.session.execute(commissions_query(principal, partner_id=partner_id,
                                                period_from=start, period_to=end)).scalars().all()
    totals = {status: ZERO for status in ("pending", "approved", "paid")}
    for row in rows:
        if row.status in totals:
            totals[row.status] += row.amount
    return {"partner_id": partner_id, "period": ops.period_label(start, period),
            "start": start, "end": end, "lines": rows,
            "totals": {k: str(money(v)) for k, v in totals.items()},
            "total": str(money(sum(totals.values(), ZERO)))}


# --- lead distribution --------------------------------------------------------------------


def rules_query(principal: Principal):
    access.require(principal, "partners:configure")
    return db.select(LeadDistributionRule).order_by(LeadDistributionRule.position,
                                                    LeadDistributionRule.name)


def get_rule(rule_id: uuid.UUID, principal: Principal) -> LeadDistributionRule:
    rule = db.session.execute(rules_query(principal).where(LeadDistributionRule.id == rule_id)
                              ).scalar_one_or_none()
    if rule is None:
        raise NotFound("distribution rule not found")
    return rule


def _clean_rule(data: dict[str, Any]) -> dict[str, Any]:
    data = dict(data)
    if "countries" in data:
        data["countries"] = sorted({c.upper() for c in data["countries"]})
    if "sources" in data:
        data["sources"] = sorted(set(data["sources"]))
    if data.get("specialisation"):
        data["specialisation"] = data["specialisation"].strip().lower()
    if "tier_ids" in data:
        for tier_id in data["tier_ids"]:
            _check_tier(tier_id, "tier_ids")
        data["tier_ids"] = [str(t) for t in data["tier_ids"]]
    return data


def create_rule(data: dict[str, Any], principal: Principal) -> LeadDistributionRule:
    access.require(principal, "partners:configure")
    rule = LeadDistributionRule(**_clean_rule(data))
    db.session.add(rule)
    db.session.flush()
    return rule


def update_rule(rule_id: uuid.UUID, data: dict[str, Any], principal: Principal
                ) -> LeadDistributionRule:
    rule = get_rule(rule_id, principal)
    for key, value in _clean_rule(data).items():
        setattr(rule, key, value)
    db.session.flush()
    return rule


def delete_rule(rule_id: uuid.UUID, principal: Principal) -> None:
    rule = get_rule(rule_id, principal)
    db.session.execute(sa.update(LeadOffer).where(LeadOffer.rule_id == rule.id)
                       .values(rule_id=None).execution_options(synchronize_session=False))
    db.session.delete(rule)
    db.session.flush()


def lead_specialisation(lead: Lead) -> str | None:
    value = (lead.attributes or {}).get("specialisation")
    return str(value).strip().lower() if value else None


def _rule_matches(rule: LeadDistributionRule, lead: Lead, specialisation: str | None) -> bool:
    if rule.countries and (lead.country or "").upper() not in rule.countries:
        return False
    if rule.sources and lead.source not in rule.sources:
        return False
    if rule.specialisation and rule.specialisation != specialisation:
        return False
    return True


def partner_load(partner_ids) -> dict[uuid.UUID, int]:
    """Leads each partner holds now: offered, or accepted and not yet closed."""
    rows = db.session.execute(
        sa.select(LeadOffer.partner_id, sa.func.count())
        .join(Lead, (Lead.tenant_id == LeadOffer.tenant_id) & (Lead.id == LeadOffer.lead_id))
        .where(LeadOffer.partner_id.in_(partner_ids),
               sa.or_(LeadOffer.status == "offered",
                      sa.and_(LeadOffer.status == "accepted",
                              Lead.status.notin_(("converted", "unqualified")))))
        .group_by(LeadOffer.partner_id)).all()
    return {partner_id: count for partner_id, count in rows}


def distribute_lead(lead_id: uuid.UUID, now: dt.datetime | None = None) -> LeadOffer | None:
    """Offer a lead to the best partner, or ``None`` when nobody fits.

    The first active rule (by position) that matches the lead (its country, source and the
    ``specialisation`` in its attributes) names the candidates: active partners of the
    rule's tiers (any tier when it names none) whose territories hold the lead's country
    and whose specialisations hold the one asked for (a partner with no territory or no
    specialisation takes any), with capacity left, not yet offered this lead. Among them the
    lowest ``(load + 1) / weight`` wins (ties: heavier tier, then name), so that over time
    each partner receives leads in proportion to its tier's weight.
    """
    now = now or utcnow()
    lead = db.session.execute(db.select(Lead).where(Lead.id == lead_id)).scalar_one_or_none()
    if lead is None:
        raise NotFound("lead not found")
    if db.session.execute(db.select(LeadOffer.id).where(
            LeadOffer.lead_id == lead.id, LeadOffer.status.in_(("offered", "accepted")))).first():
        raise Conflict("the lead is already with a partner")
    specialisation = lead_specialisation(lead)
    rule = next((r for r in db.session.execute(db.select(LeadDistributionRule).where(
        LeadDistributionRule.active.is_(True)).order_by(LeadDistributionRule.position,
                                                        LeadDistributionRule.name)).scalars()
                 if _rule_matches(r, lead, specialisation)), None)
    if rule is None:
        return None
    tried = set(db.session.execute(db.select(LeadOffer.partner_id).where(
        LeadOffer.lead_id == lead.id)).scalars())
    tiers = {t.id: t for t in db.session.execute(db.select(PartnerTier)).scalars()}
    country = (lead.country or "").upper()
    # a running contract adds the territories it grants to the partner's own
    granted: dict[uuid.UUID, set[str]] = {}
    day = now.date()
    for partner_id, territories in db.session.execute(
            sa.select(PartnerContract.partner_id, PartnerContract.territories).where(
                PartnerContract.status == "active", PartnerContract.start_date <= day,
                sa.or_(PartnerContract.end_date.is_(None), PartnerContract.end_date >= day))):
        granted.setdefault(partner_id, set()).update(territories or [])
    candidates = []
    for partner in db.session.execute(db.select(Partner).where(Partner.status == "active")
                                      ).scalars():
        if partner.id in tried:
            continue
        if rule.tier_ids and str(partner.tier_id) not in rule.tier_ids:
            continue
        coverage = set(partner.territories or []) | granted.get(partner.id, set())
        if coverage and country not in coverage:
            continue
        if specialisation and partner.specialisations and (
                specialisation not in partner.specialisations):
            continue
        candidates.append(partner)
    if not candidates:
        return None
    load = partner_load([p.id for p in candidates])

    def weight(partner: Partner) -> int:
        tier = tiers.get(partner.tier_id)
        return tier.weight if tier is not None else 1

    fitting = [p for p in candidates if weight(p) > 0 and (
        p.capacity is None or load.get(p.id, 0) < p.capacity)]
    if not fitting:
        return None
    best = min(fitting, key=lambda p: (decimal.Decimal(load.get(p.id, 0) + 1) / weight(p),
                                       -weight(p), p.name, str(p.id)))
    offer = LeadOffer(lead_id=lead.id, partner_id=best.id, rule_id=rule.id, status="offered",
                      offered_at=now,
                      deadline=now + dt.timedelta(hours=float(_config("PRM_OFFER_HOURS"))))
    db.session.add(offer)
    db.session.flush()
    return offer


def schedule_distribution(lead: Lead) -> None:
    """Enqueue the distribution of a new lead when ``PRM_AUTO_DISTRIBUTE`` is on and the
    tenant has an active rule (no job at all for tenants that do not distribute)."""
    from clientela.core import jobs

    if not _config("PRM_AUTO_DISTRIBUTE") or lead.status in ("converted", "unqualified"):
        return
    if db.session.execute(db.select(LeadDistributionRule.id).where(
            LeadDistributionRule.active.is_(True)).limit(1)).first() is None:
        return
    jobs.enqueue("prm.distribute_lead", str(lead.id), idempotency_key=f"prm-lead:{lead.id}")


def distribute_new_lead(lead_id) -> LeadOffer | None:
    lead_id = uuid.UUID(str(lead_id))
    lead = db.session.execute(db.select(Lead).where(Lead.id == lead_id)).scalar_one_or_none()
    if lead is None or lead.status in ("converted", "unqualified") or db.session.execute(
            db.select(LeadOffer.id).where(LeadOffer.lead_id == lead_id)).first():
        return None
    return distribute_lead(lead_id)


def distribute_for(lead_id: uuid.UUID, principal: Principal) -> LeadOffer | None:
    access.require(principal, "partners:write")
    ops.get_lead(lead_id, principal)
    return distribute_lead(lead_id)


def offers_query(principal: Principal | None = None, *, partner_id=None, lead_id=None,
                 status=None):
    stmt = db.select(LeadOffer)
    if principal is not None:
        stmt = _scoped(_join_partner(stmt, LeadOffer.partner_id), principal, "partners:read")
    for column, value in ((LeadOffer.partner_id, partner_id), (LeadOffer.lead_id, lead_id),
                          (LeadOffer.status, status)):
        if value is not None:
            stmt = stmt.where(column == value)
    return stmt.order_by(LeadOffer.offered_at, LeadOffer.id)


def get_offer(offer_id: uuid.UUID, principal: Principal) -> LeadOffer:
    offer = db.session.execute(offers_query(principal).where(LeadOffer.id == offer_id)
                               ).scalar_one_or_none()
    if offer is None:
        raise NotFound("lead offer not found")
    return offer


def withdraw_offer(offer_id: uuid.UUID, principal: Principal) -> LeadOffer:
    offer = get_offer(offer_id, principal)
    access.require(principal, "partners:write")
    if offer.status not in ("offered", "accepted"):
        raise Conflict(f"the offer is already {offer.status}")
    offer.status, offer.responded_at = "withdrawn", utcnow()
    db.session.flush()
    return offer


def respond_to_offer(offer: LeadOffer, accept: bool, reason: str | None = None,
                     now: dt.datetime | None = None) -> LeadOffer | None:
    """The partner's answer. A decline passes the lead to the next partner at once;
    returns the next offer (or ``None``)."""
    now = now or utcnow()
    if offer.status != "offered":
        raise Conflict(f"the offer is already {offer.status}")
    if now > offer.deadline:
        raise Conflict("the deadline to answer has passed")
    offer.responded_at, offer.reason = now, reason
    if accept:
        offer.status = "accepted"
        db.session.flush()
        return None
    offer.status = "declined"
    db.session.flush()
    return distribute_lead(offer.lead_id, now)


def expire_offers(now: dt.datetime | None = None) -> dict[str, int]:
    """The job: offers past their deadline expire and their leads go to the next partner."""
    now = now or utcnow()
    overdue = db.session.execute(db.select(LeadOffer).where(
        LeadOffer.status == "offered", LeadOffer.deadline < now).order_by(LeadOffer.deadline)
    ).scalars().all()
    reassigned = 0
    for offer in overdue:
        offer.status, offer.responded_at, offer.reason = "expired", now, "no answer in time"
        db.session.flush()
        if distribute_lead(offer.lead_id, now) is not None:
            reassigned += 1
    return {"expired": len(overdue), "reassigned": reassigned}


# --- contracts ------------------------------------------------------------------------------


def contracts_query(principal: Principal | None = None, *, partner_id=None, status=None):
    stmt = db.select(PartnerContract)
    if principal is not None:
        stmt = _scoped(_join_partner(stmt, PartnerContract.partner_id), principal,
                       "contracts:read")
    for column, value in ((PartnerContract.partner_id, partner_id),
                          (PartnerContract.status, status)):
        if value is not None:
            stmt = stmt.where(column == value)
    return stmt.order_by(PartnerContract.start_date, PartnerContract.id)


def get_contract(contract_id: uuid.UUID, principal: Principal,
                 permission: str = "contracts:read") -> PartnerContract:
    contract = db.session.execute(contracts_query(principal).where(
        PartnerContract.id == contract_id)).scalar_one_or_none()
    if contract is None:
        raise NotFound("partner contract not found")
    if permission != "contracts:read":
        owner = db.session.execute(db.select(Partner.owner_id).where(
            Partner.id == contract.partner_id)).scalar_one()
        access.check_record(owner, principal, "contracts:read", permission)
    return contract


def _clean_contract(data: dict[str, Any], contract: PartnerContract | None = None
                    ) -> dict[str, Any]:
    data = dict(data)
    start = data.get("start_date", contract.start_date if contract else None)
    end = data.get("end_date", contract.end_date if contract else None)
    if start is not None and end is not None and end < start:
        raise ValidationError({"end_date": ["the contract cannot end before it starts"]})
    if data.get("commission_plan_id") is not None and db.session.execute(
            db.select(CommissionPlan.id).where(CommissionPlan.id == data["commission_plan_id"])
    ).first() is None:
        raise ValidationError({"commission_plan_id": ["no commission plan with this id"]})
    if "territories" in data:
        data["territories"] = sorted({t.upper() for t in data["territories"]})
    return data


def create_contract(data: dict[str, Any], principal: Principal) -> PartnerContract:
    access.require(principal, "contracts:write")
    data = dict(data)
    partner = get_partner(data.pop("partner_id"), principal)
    contract = PartnerContract(partner_id=partner.id, **_clean_contract(data))
    db.session.add(contract)
    db.session.flush()
    return contract


def update_contract(contract_id: uuid.UUID, data: dict[str, Any], principal: Principal
                    ) -> PartnerContract:
    contract = get_contract(contract_id, principal, "contracts:write")
    for key, value in _clean_contract(data, contract).items():
        setattr(contract, key, value)
    db.session.flush()
    return contract


def delete_contract(contract_id: uuid.UUID, principal: Principal) -> None:
    db.session.delete(get_contract(contract_id, principal, "contracts:write"))
    db.session.flush()


def _add_months(day: dt.date, months: int) -> dt.date:
    import calendar

    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def contract_alerts(on: dt.date | None = None, send=None) -> dict[str, int]:
    """The daily job: renew or expire active contracts whose end has passed, and tell each
    partner's channel manager (by e-mail) about a contract ending within
    ``PRM_CONTRACT_ALERT_DAYS`` — once per end date."""
    from clientela.core import mail

    on = on or today()
    send = send or mail.send
    renewed = expired = alerted = 0
    active = db.session.execute(db.select(PartnerContract).where(
        PartnerContract.status == "active", PartnerContract.end_date.is_not(None))
        .order_by(PartnerContract.end_date, PartnerContract.id)).scalars().all()
    horizon = on + dt.timedelta(days=int(_config("PRM_CONTRACT_ALERT_DAYS")))
    for contract in active:
        if contract.end_date < on:
            if contract.auto_renew:
                while contract.end_date < on:
                    contract.end_date = _add_months(contract.end_date, contract.renewal_months)
                renewed += 1
            else:
                contract.status = "expired"
                expired += 1
                continue
        if contract.end_date <= horizon and contract.alerted_for != contract.end_date:
            partner = db.session.execute(db.select(Partner).where(
                Partner.id == contract.partner_id)).scalar_one()
            owner = db.session.execute(db.select(User).where(User.id == partner.owner_id)
                                       ).scalar_one_or_none() if partner.owner_id else None
            if owner is not None:
                what = "renews automatically" if contract.auto_renew else "expires"
                send(mail.build_message(
                    owner.email, f"Partner contract {what} on {contract.end_date.isoformat()}: "
                                 f"{partner.name}",
                    f"The contract '{contract.name}' with {partner.name} {what} on "
                    f"{contract.end_date.isoformat()}.\n"))
                alerted += 1
            contract.alerted_for = contract.end_date
    db.session.flush()
    return {"renewed": renewed, "expired": expired, "alerted": alerted}


def contract_status(partner_id: uuid.UUID, on: dt.date | None = None) -> str:
    """``active`` with a running contract, else the status of its latest contract, or
    ``none``."""
    if active_contract(partner_id, on) is not None:
        return "active"
    latest = db.session.execute(db.select(PartnerContract.status).where(
        PartnerContract.partner_id == partner_id).order_by(
        PartnerContract.start_date.desc(), PartnerContract.id.desc())).scalars().first()
    return latest or "none"


# --- forecasts and scorecards --------------------------------------------------------------


def _period_starts(period: str, year: int) -> list[dt.date]:
    months = range(1, 13) if period == "month" else (1, 4, 7, 10)
    return [dt.date(year, m, 1) for m in months]


def forecast(principal: Principal | None, *, period: str = "quarter", year: int | None = None,
             partner_id: uuid.UUID | None = None) -> dict[str, Any]:
    """Per period of ``year`` and per partner (in the default currency, no conversion):
    ``open`` and ``weighted`` (amount × stage probability) of open attributed deals expected
    to close in the period, ``won`` in the period (by the day they closed), and the
    partner's ``target``; ``channel`` sums every partner per period."""
    year = year or today().year
    currency = _config("OPERATIONAL_DEFAULT_CURRENCY")
    starts = _period_starts(period, year)
    first, last = starts[0], ops.period_end(starts[-1], period)
    stmt = (sa.select(PartnerDeal.partner_id, Deal.amount, Deal.status, Deal.expected_close_date,
                      Deal.closed_at, Stage.probability)
            .join(Deal, (Deal.tenant_id == PartnerDeal.tenant_id)
                  & (Deal.id == PartnerDeal.deal_id))
            .join(Stage, (Stage.tenant_id == Deal.tenant_id) & (Stage.id == Deal.stage_id))
            .join(Partner, (Partner.tenant_id == PartnerDeal.tenant_id)
                  & (Partner.id == PartnerDeal.partner_id))
            .where(Deal.currency == currency, Deal.status != "lost"))
    if principal is not None:
        stmt = _scoped(stmt, principal, "prm:reports")
    if partner_id is not None:
        stmt = stmt.where(PartnerDeal.partner_id == partner_id)
    cells: dict[tuple[dt.date, uuid.UUID], dict[str, decimal.Decimal]] = {}

    def cell(day: dt.date, partner):
        return cells.setdefault((ops.period_start(day, period), partner),
                                {k: ZERO for k in ("open", "weighted", "won", "target")})

    for partner, amount, status, close_date, closed_at, probability in db.session.execute(stmt):
        amount = decimal.Decimal(amount or 0)
        if status == "won":
            day = closed_at.date() if closed_at else None
            if day is not None and first <= day <= last:
                cell(day, partner)["won"] += amount
        elif close_date is not None and first <= close_date <= last:
            c = cell(close_date, partner)
            c["open"] += amount
            c["weighted"] += amount * decimal.Decimal(probability) / HUNDRED
    target_stmt = db.select(PartnerTarget).where(PartnerTarget.period == period,
                                                 PartnerTarget.period_start >= first,
                                                 PartnerTarget.period_start <= last)
    if principal is not None:
        target_stmt = _scoped(_join_partner(target_stmt, PartnerTarget.partner_id), principal,
                              "prm:reports")
    if partner_id is not None:
        target_stmt = target_stmt.where(PartnerTarget.partner_id == partner_id)
    for target in db.session.execute(target_stmt).scalars():
        cell(target.period_start, target.partner_id)["target"] += target.amount
    names = dict(db.session.execute(sa.select(Partner.id, Partner.name)).all())
    rows, channel = [], {}
    for (start, partner), values in sorted(cells.items(),
                                           key=lambda kv: (kv[0][0], names.get(kv[0][1], ""))):
        rows.append({"period": ops.period_label(start, period), "start": start,
                     "partner_id": partner, "partner": names.get(partner),
                     **{k: str(money(v)) for k, v in values.items()}})
        total = channel.setdefault(start, {k: ZERO for k in values})
        for key, value in values.items():
            total[key] += value
    return {"period": period, "year": year, "currency": currency, "rows": rows,
            "channel": [{"period": ops.period_label(start, period), "start": start,
                         **{k: str(money(v)) for k, v in values.items()}}
                        for start, values in sorted(channel.items())]}


def _days(delta: dt.timedelta) -> decimal.Decimal:
    return decimal.Decimal(delta.total_seconds()) / 86400


def scorecard_figures(partner_ids: list[uuid.UUID], start: dt.date, end: dt.date
                      ) -> dict[str, Any]:
    """The figures of a set of partners for ``start``..``end`` (inclusive):

    * ``leads_received``: offers made in the period; ``leads_accepted``: of those, accepted;
      ``leads_converted``: of those accepted, leads since converted;
    * ``deals_won``/``deals_lost``: attributed deals closed in the period; ``win_rate`` =
      won ÷ (won + lost); ``revenue``: their won amount; ``average_deal`` = revenue ÷ won;
      ``average_days_to_close``: from a won deal's creation to its close;
    * ``commission_earned``: commissions (not cancelled) of the period's months.
    """
    lower = dt.datetime.combine(start, dt.time.min, tzinfo=dt.timezone.utc)
    upper = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=dt.timezone.utc)
    offers = db.session.execute(
        sa.select(LeadOffer.status, Lead.status)
        .join(Lead, (Lead.tenant_id == LeadOffer.tenant_id) & (Lead.id == LeadOffer.lead_id))
        .where(LeadOffer.partner_id.in_(partner_ids), LeadOffer.offered_at >= lower,
               LeadOffer.offered_at < upper)).all()
    received = len(offers)
    accepted = sum(1 for status, _ in offers if status == "accepted")
    converted = sum(1 for status, lead in offers if status == "accepted" and lead == "converted")
    deals = db.session.execute(
        sa.select(Deal.status, Deal.amount, Deal.created_at, Deal.closed_at)
        .join(PartnerDeal, (PartnerDeal.tenant_id == Deal.tenant_id)
              & (PartnerDeal.deal_id == Deal.id))
        .where(PartnerDeal.partner_id.in_(partner_ids), Deal.status.in_(("won", "lost")),
               Deal.closed_at >= lower, Deal.closed_at < upper)).all()
    won = [d for d in deals if d.status == "won"]
    lost = len(deals) - len(won)
    revenue = sum((decimal.Decimal(d.amount) for d in won), ZERO)
    earned = db.session.execute(sa.select(sa.func.coalesce(sa.func.sum(Commission.amount), 0))
                                .where(Commission.partner_id.in_(partner_ids),
                                       Commission.status != "cancelled",
                                       Commission.period_start >= start.replace(day=1),
                                       Commission.period_start <= end)).scalar_one()

    def ratio(a, b):
        return None if not b else str((decimal.Decimal(a) / decimal.Decimal(b)).quantize(
            decimal.Decimal("0.0001"), rounding=decimal.ROUND_HALF_UP))

    days = [_days(d.closed_at - d.created_at) for d in won if d.closed_at and d.created_at]
    return {
        "leads_received": received, "leads_accepted": accepted, "leads_converted": converted,
        "acceptance_rate": ratio(accepted, received),
        "conversion_rate": ratio(converted, accepted),
        "deals_won": len(won), "deals_lost": lost, "win_rate": ratio(len(won), len(won) + lost),
        "revenue": str(money(revenue)),
        "average_deal": str(money(revenue / len(won))) if won else None,
        "average_days_to_close": str((sum(days, ZERO) / len(days)).quantize(
            decimal.Decimal("0.1"), rounding=decimal.ROUND_HALF_UP)) if days else None,
        "commission_earned": str(money(earned)),
    }


def _period_bounds(start: dt.date | None, end: dt.date | None) -> tuple[dt.date, dt.date]:
    if start is None:
        start = today().replace(month=1, day=1)
    if end is None:
        end = dt.date(start.year, 12, 31)
    if end < start:
        raise ValidationError({"to": ["the period cannot end before it starts"]})
    return start, end


def scorecard(partner: Partner, start: dt.date | None = None, end: dt.date | None = None
              ) -> dict[str, Any]:
    start, end = _period_bounds(start, end)
    tier = db.session.execute(db.select(PartnerTier.name).where(
        PartnerTier.id == partner.tier_id)).scalar_one_or_none()
    return {"partner_id": partner.id, "partner": partner.name, "tier": tier,
            "status": partner.status, "from": start, "to": end,
            "contract_status": contract_status(partner.id, end),
            **scorecard_figures([partner.id], start, end)}


def report(principal: Principal, start: dt.date | None = None, end: dt.date | None = None
           ) -> dict[str, Any]:
    """Scorecards of every partner the principal may see, and the same figures per tier."""
    access.require(principal, "prm:reports")
    start, end = _period_bounds(start, end)
    partners = db.session.execute(_scoped(db.select(Partner), principal, "prm:reports")
                                  .order_by(Partner.name, Partner.id)).scalars().all()
    tiers = db.session.execute(db.select(PartnerTier).order_by(PartnerTier.position,
                                                               PartnerTier.name)).scalars().all()
    by_tier = []
    for tier in tiers:
        ids = [p.id for p in partners if p.tier_id == tier.id]
        by_tier.append({"tier_id": tier.id, "tier": tier.name, "partners": len(ids),
                        **scorecard_figures(ids, start, end)})
    return {"from": start, "to": end,
            "partners": [scorecard(p, start, end) for p in partners], "tiers": by_tier}


# --- data-subject rights and merge -----------------------------------------------------------


def export_for(customer: Customer) -> dict[str, Any]:
    rows = db.session.execute(db.select(DealRegistration).where(
        DealRegistration.customer_id == customer.id)).scalars().all()
    return {"prm": {"deal_registrations": [
        {"id": str(r.id), "title": r.title, "company_name": r.company_name,
         "contact_email": r.contact_email, "amount": str(r.amount), "currency": r.currency,
         "status": r.status, "notes": r.notes, "created_at": r.created_at.isoformat()}
        for r in rows]}}


def erase_for(customer: Customer) -> dict[str, Any]:
    rows = db.session.execute(db.select(DealRegistration).where(
        DealRegistration.customer_id == customer.id)).scalars().all()
    for r in rows:
        r.company_name, r.contact_email, r.notes = None, None, ""
        r.title = "Erased registration"
    db.session.flush()
    return {"deal_registrations_anonymised": len(rows)}


def merge_into(survivor: Customer, merged_id: uuid.UUID) -> None:
    db.session.execute(sa.update(DealRegistration).where(
        DealRegistration.customer_id == merged_id).values(customer_id=survivor.id)
        .execution_options(synchronize_session=False))


def profile_section(customer: Customer, principal: Principal | None) -> dict[str, Any] | None:
    """The partners that registered or brought deals for the customer."""
    if principal is not None and not principal.can("partners:read"):
        return None
    registrations = db.session.execute(
        sa.select(DealRegistration.id, DealRegistration.title, DealRegistration.status,
                  Partner.id, Partner.name)
        .join(Partner, (Partner.tenant_id == DealRegistration.tenant_id)
              & (Partner.id == DealRegistration.partner_id))
        .where(DealRegistration.customer_id == customer.id)
        .order_by(DealRegistration.created_at)).all()
    if not registrations:
        return None
    return {"key": "prm", "title": "Partners", "data": {"registrations": [
        {"id": str(r[0]), "title": r[1], "status": r[2], "partner_id": str(r[3]),
         "partner": r[4]} for r in registrations]}}


# --- demo data -------------------------------------------------------------------------------


def load_demo() -> None:
    """A small network (``clientela demo``): three active partners of a district, a plan,
    and their won and open deals attributed."""
    ensure_default_tiers()
    tiers = {t.name: t for t in db.session.execute(db.select(PartnerTier)).scalars()}
    owner = db.session.execute(db.select(User.id).order_by(User.created_at).limit(1)).scalar()
    if not db.session.execute(db.select(CommissionPlan.id)).first():
        db.session.add(CommissionPlan(name="Standard", brackets=[
            {"up_to": "100000.00", "rate": "8"}, {"up_to": None, "rate": "10"}]))
    # no distribution rule: the demo sends no job (a rule would offer every new lead)
    now = utcnow()
    partners = []
    for name, type_, tier, specialisations in (
            ("Meccanica Rossi", "district_member", "gold", ["cnc", "welding"]),
            ("Distribuzioni Nord", "distributor", "silver", ["logistics"]),
            ("Studio Bianchi", "referral", "bronze", []),
    ):
        partner = Partner(name=name, type=type_, tier_id=tiers.get(tier).id if tier in tiers
                          else None, territories=["IT"], specialisations=specialisations,
                          owner_id=owner, status="active", status_changed_at=now, capacity=10)
        db.session.add(partner)
        db.session.flush()
        db.session.add(PartnerStatusChange(partner_id=partner.id, to_status="active",
                                           changed_at=now, reason="demo"))
        for position, step in enumerate(onboarding_step_names()):
            db.session.add(OnboardingStep(partner_id=partner.id, name=step, position=position,
                                          completed_at=now))
        partners.append(partner)
    deals = db.session.execute(db.select(Deal).order_by(Deal.created_at).limit(6)).scalars()
    for i, deal in enumerate(deals):
        db.session.add(PartnerDeal(deal_id=deal.id, partner_id=partners[i % 3].id))
        db.session.flush()
        sync_commission(deal)
    db.session.flush()
