"""The PRM plugin's tables: partners, tiers, lifecycle, partner users, deal registrations,
attribution of deals, commission plans and commissions, lead offers, contracts, targets."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from clientela.core.models import Entity, tenant_fk

PARTNER_TYPES = ("reseller", "distributor", "referral", "supplier", "district_member")
PARTNER_STATUSES = ("prospect", "onboarding", "active", "inactive", "terminated")
#: the lifecycle: which status may follow which
TRANSITIONS = {
    "prospect": ("onboarding", "terminated"),
    "onboarding": ("active", "inactive", "terminated"),
    "active": ("inactive", "terminated"),
    "inactive": ("active", "onboarding", "terminated"),
    "terminated": (),
}
REGISTRATION_STATUSES = ("pending", "approved", "rejected", "expired")
COMMISSION_STATUSES = ("pending", "approved", "paid", "cancelled")
OFFER_STATUSES = ("offered", "accepted", "declined", "expired", "withdrawn")
CONTRACT_STATUSES = ("draft", "active", "expired", "terminated")
TARGET_PERIODS = ("month", "quarter")

Money = sa.Numeric(14, 2)


class PartnerTier(Entity):
    """A level of the partner programme (gold, silver, bronze); ``weight`` steers lead
    distribution: a partner of weight 3 gets three leads for each one of weight 1."""

    __tablename__ = "prm_partner_tiers"

    name: Mapped[str] = mapped_column(sa.String(100))
    weight: Mapped[int] = mapped_column(default=1)
    position: Mapped[int] = mapped_column(default=0)
    description: Mapped[str] = mapped_column(sa.Text, default="")

    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "name"),
        sa.CheckConstraint("weight >= 0", name="weight"),
    )


class Partner(Entity):
    """An organisation of the network that sells with or for the tenant."""

    __tablename__ = "prm_partners"

    name: Mapped[str] = mapped_column(sa.String(200))
    type: Mapped[str] = mapped_column(sa.String(20))
    tier_id: Mapped[uuid.UUID | None]
    status: Mapped[str] = mapped_column(sa.String(20), default="prospect")
    territories: Mapped[list] = mapped_column(default=list)
    specialisations: Mapped[list] = mapped_column(default=list)
    owner_id: Mapped[uuid.UUID | None]
    #: how many leads it may hold at once (offered or accepted, not yet converted); none: no limit
    capacity: Mapped[int | None]
    email: Mapped[str | None] = mapped_column(sa.String(320))
    phone: Mapped[str | None] = mapped_column(sa.String(40))
    website: Mapped[str | None] = mapped_column(sa.String(300))
    notes: Mapped[str] = mapped_column(sa.Text, default="")
    status_changed_at: Mapped[dt.datetime | None]

    __table_args__ = (
        tenant_fk("tier_id", "prm_partner_tiers"),
        tenant_fk("owner_id", "users"),
        sa.CheckConstraint(f"type IN {PARTNER_TYPES}", name="type"),
        sa.CheckConstraint(f"status IN {PARTNER_STATUSES}", name="status"),
        sa.CheckConstraint("capacity IS NULL OR capacity >= 0", name="capacity"),
        sa.Index("ix_prm_partners_tenant_status", "tenant_id", "status"),
        sa.Index("ix_prm_partners_tenant_owner", "tenant_id", "owner_id"),
    )


class PartnerStatusChange(Entity):
    """One step of a partner's lifecycle (the first row is its creation)."""

    __tablename__ = "prm_partner_status_changes"

    partner_id: Mapped[uuid.UUID]
    from_status: Mapped[str | None] = mapped_column(sa.String(20))
    to_status: Mapped[str] = mapped_column(sa.String(20))
    changed_at: Mapped[dt.datetime]
    user_id: Mapped[uuid.UUID | None]
    reason: Mapped[str] = mapped_column(sa.String(500), default="")

    __table_args__ = (
        tenant_fk("partner_id", "prm_partners", ondelete="CASCADE"),
        tenant_fk("user_id", "users"),
        sa.Index("ix_prm_partner_status_changes_tenant_partner", "tenant_id", "partner_id",
                 "changed_at"),
    )


class OnboardingStep(Entity):
    """A step of a partner's onboarding; the required ones must be done before it is active."""

    __tablename__ = "prm_onboarding_steps"

    partner_id: Mapped[uuid.UUID]
    name: Mapped[str] = mapped_column(sa.String(200))
    required: Mapped[bool] = mapped_column(default=True)
    position: Mapped[int] = mapped_column(default=0)
    completed_at: Mapped[dt.datetime | None]
    completed_by: Mapped[uuid.UUID | None]

    __table_args__ = (
        tenant_fk("partner_id", "prm_partners", ondelete="CASCADE"),
        tenant_fk("completed_by", "users"),
        sa.UniqueConstraint("tenant_id", "partner_id", "name"),
    )


class PartnerUser(Entity):
    """A user (role ``partner``) who acts for one partner in the partner portal."""

    __tablename__ = "prm_partner_users"

    partner_id: Mapped[uuid.UUID]
    user_id: Mapped[uuid.UUID]

    __table_args__ = (
        tenant_fk("partner_id", "prm_partners", ondelete="CASCADE"),
        tenant_fk("user_id", "users", ondelete="CASCADE"),
        sa.UniqueConstraint("tenant_id", "user_id"),
    )


class PartnerTarget(Entity):
    """What a partner should win in a month or a quarter."""

    __tablename__ = "prm_partner_targets"

    partner_id: Mapped[uuid.UUID]
    period: Mapped[str] = mapped_column(sa.String(10))
    period_start: Mapped[dt.date]
    amount: Mapped[decimal.Decimal] = mapped_column(Money)

    __table_args__ = (
        tenant_fk("partner_id", "prm_partners", ondelete="CASCADE"),
        sa.CheckConstraint(f"period IN {TARGET_PERIODS}", name="period"),
        sa.UniqueConstraint("tenant_id", "partner_id", "period", "period_start"),
    )


class DealRegistration(Entity):
    """An opportunity a partner claims; approved, it becomes a deal attributed to the partner."""

    __tablename__ = "prm_deal_registrations"

    partner_id: Mapped[uuid.UUID]
    title: Mapped[str] = mapped_column(sa.String(300))
    customer_id: Mapped[uuid.UUID | None]
    company_name: Mapped[str | None] = mapped_column(sa.String(200))
    contact_email: Mapped[str | None] = mapped_column(sa.String(320))
    amount: Mapped[decimal.Decimal] = mapped_column(Money, default=decimal.Decimal("0"))
    currency: Mapped[str] = mapped_column(sa.String(3))
    expected_close_date: Mapped[dt.date | None]
    notes: Mapped[str] = mapped_column(sa.Text, default="")
    status: Mapped[str] = mapped_column(sa.String(10), default="pending")
    #: what the conflict check found at submission: ``[{"kind", "id", "title"}]``
    conflicts: Mapped[list] = mapped_column(default=list)
    submitted_by: Mapped[uuid.UUID | None]
    decided_by: Mapped[uuid.UUID | None]
    decided_at: Mapped[dt.datetime | None]
    decision_reason: Mapped[str | None] = mapped_column(sa.String(500))
    deal_id: Mapped[uuid.UUID | None]
    protected_until: Mapped[dt.date | None]

    __table_args__ = (
        tenant_fk("partner_id", "prm_partners", ondelete="CASCADE"),
        tenant_fk("customer_id", "customers", ondelete="CASCADE"),
        tenant_fk("submitted_by", "users"),
        tenant_fk("decided_by", "users"),
        # no foreign key on deal_id: staff may delete the deal; a hook then clears it
        sa.CheckConstraint(f"status IN {REGISTRATION_STATUSES}", name="status"),
        sa.Index("ix_prm_deal_registrations_tenant_partner", "tenant_id", "partner_id"),
        sa.Index("ix_prm_deal_registrations_tenant_customer", "tenant_id", "customer_id"),
    )


class PartnerDeal(Entity):
    """The attribution of an operational deal to the partner that brought it."""

    __tablename__ = "prm_partner_deals"

    deal_id: Mapped[uuid.UUID]
    partner_id: Mapped[uuid.UUID]
    registration_id: Mapped[uuid.UUID | None]
    protected_until: Mapped[dt.date | None]

    __table_args__ = (
        tenant_fk("deal_id", "operational_deals", ondelete="CASCADE"),
        tenant_fk("partner_id", "prm_partners", ondelete="CASCADE"),
        # registration_id only tells where the attribution came from (no foreign key, so
        # that deleting a customer's registrations never trips over its deals' links)
        sa.UniqueConstraint("tenant_id", "deal_id"),
        sa.Index("ix_prm_partner_deals_tenant_partner", "tenant_id", "partner_id"),
    )


class CommissionPlan(Entity):
    """How much a partner earns on a won deal: marginal rates over amount thresholds.

    ``brackets`` is ``[{"up_to": "100000", "rate": "8"}, {"up_to": null, "rate": "10"}]``:
    8% of the part up to 100,000 and 10% of the part above it.
    """

    __tablename__ = "prm_commission_plans"

    name: Mapped[str] = mapped_column(sa.String(200))
    tier_id: Mapped[uuid.UUID | None]
    product: Mapped[str | None] = mapped_column(sa.String(200))
    brackets: Mapped[list] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(default=True)

    __table_args__ = (
        tenant_fk("tier_id", "prm_partner_tiers"),
        sa.UniqueConstraint("tenant_id", "name"),
    )


class Commission(Entity):
    """What a partner earned on one won deal; approved, then paid."""

    __tablename__ = "prm_commissions"

    partner_id: Mapped[uuid.UUID]
    deal_id: Mapped[uuid.UUID]
    plan_id: Mapped[uuid.UUID | None]
    period_start: Mapped[dt.date]
    base_amount: Mapped[decimal.Decimal] = mapped_column(Money)
    amount: Mapped[decimal.Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[str] = mapped_column(sa.String(10), default="pending")
    breakdown: Mapped[list] = mapped_column(default=list)
    approved_by: Mapped[uuid.UUID | None]
    approved_at: Mapped[dt.datetime | None]
    paid_at: Mapped[dt.datetime | None]
    payment_reference: Mapped[str | None] = mapped_column(sa.String(200))

    __table_args__ = (
        tenant_fk("partner_id", "prm_partners", ondelete="CASCADE"),
        tenant_fk("deal_id", "operational_deals", ondelete="CASCADE"),
        tenant_fk("plan_id", "prm_commission_plans"),
        tenant_fk("approved_by", "users"),
        sa.CheckConstraint(f"status IN {COMMISSION_STATUSES}", name="status"),
        sa.UniqueConstraint("tenant_id", "deal_id"),
        sa.Index("ix_prm_commissions_tenant_partner_period", "tenant_id", "partner_id",
                 "period_start"),
    )


class LeadDistributionRule(Entity):
    """Which partners may receive which leads: by the lead's country, source and
    specialisation asked for, and the partners' tiers; the first matching rule (by
    ``position``) chooses the candidates."""

    __tablename__ = "prm_lead_distribution_rules"

    name: Mapped[str] = mapped_column(sa.String(200))
    position: Mapped[int] = mapped_column(default=0)
    countries: Mapped[list] = mapped_column(default=list)
    sources: Mapped[list] = mapped_column(default=list)
    specialisation: Mapped[str | None] = mapped_column(sa.String(100))
    tier_ids: Mapped[list] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(default=True)


class LeadOffer(Entity):
    """A lead given to a partner, who accepts or declines it before ``deadline``."""

    __tablename__ = "prm_lead_offers"

    lead_id: Mapped[uuid.UUID]
    partner_id: Mapped[uuid.UUID]
    rule_id: Mapped[uuid.UUID | None]
    status: Mapped[str] = mapped_column(sa.String(10), default="offered")
    offered_at: Mapped[dt.datetime]
    deadline: Mapped[dt.datetime]
    responded_at: Mapped[dt.datetime | None]
    reason: Mapped[str | None] = mapped_column(sa.String(500))

    __table_args__ = (
        tenant_fk("lead_id", "operational_leads", ondelete="CASCADE"),
        tenant_fk("partner_id", "prm_partners", ondelete="CASCADE"),
        tenant_fk("rule_id", "prm_lead_distribution_rules"),
        sa.CheckConstraint(f"status IN {OFFER_STATUSES}", name="status"),
        sa.Index("ix_prm_lead_offers_tenant_partner_status", "tenant_id", "partner_id", "status"),
        sa.Index("ix_prm_lead_offers_tenant_lead", "tenant_id", "lead_id"),
        sa.Index("ix_prm_lead_offers_tenant_status_deadline", "tenant_id", "status", "deadline"),
    )


class PartnerContract(Entity):
    """The agreement with a partner: terms, dates, renewal, the plan and territory it grants."""

    __tablename__ = "prm_partner_contracts"

    partner_id: Mapped[uuid.UUID]
    name: Mapped[str] = mapped_column(sa.String(200))
    terms: Mapped[str] = mapped_column(sa.Text, default="")
    start_date: Mapped[dt.date]
    end_date: Mapped[dt.date | None]
    auto_renew: Mapped[bool] = mapped_column(default=False)
    renewal_months: Mapped[int] = mapped_column(default=12)
    status: Mapped[str] = mapped_column(sa.String(12), default="draft")
    commission_plan_id: Mapped[uuid.UUID | None]
    territories: Mapped[list] = mapped_column(default=list)
    #: references to documents kept elsewhere: ``[{"name", "url"}]``
    documents: Mapped[list] = mapped_column(default=list)
    alerted_for: Mapped[dt.date | None]

    __table_args__ = (
        tenant_fk("partner_id", "prm_partners", ondelete="CASCADE"),
        tenant_fk("commission_plan_id", "prm_commission_plans"),
        sa.CheckConstraint(f"status IN {CONTRACT_STATUSES}", name="status"),
        sa.CheckConstraint("renewal_months > 0", name="renewal_months"),
        sa.Index("ix_prm_partner_contracts_tenant_partner", "tenant_id", "partner_id"),
        sa.Index("ix_prm_partner_contracts_tenant_status_end", "tenant_id", "status", "end_date"),
    )


MODELS = (PartnerTier, Partner, PartnerStatusChange, OnboardingStep, PartnerUser, PartnerTarget,
          DealRegistration, PartnerDeal, CommissionPlan, Commission, LeadDistributionRule,
          LeadOffer, PartnerContract)
