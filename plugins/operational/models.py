"""The operational plugin's tables: leads, scoring rules, web forms, pipelines, deals, targets."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from clientela.core.models import Entity, tenant_fk

LEAD_STATUSES = ("new", "contacted", "qualified", "unqualified", "converted")
STAGE_KINDS = ("open", "won", "lost")
DEAL_STATUSES = ("open", "won", "lost")
FORECAST_CATEGORIES = ("pipeline", "best_case", "commit", "omitted")
TARGET_PERIODS = ("month", "quarter")
RULE_OPERATORS = ("equals", "not_equals", "contains", "ends_with", "present", "absent")
#: the lead fields a scoring rule can look at
RULE_FIELDS = ("source", "status", "email", "phone", "first_name", "last_name", "company",
               "title", "country", "message")

Money = sa.Numeric(14, 2)


class Lead(Entity):
    """A prospective customer not yet qualified: captured by API, a web form or an import."""

    __tablename__ = "operational_leads"

    first_name: Mapped[str | None] = mapped_column(sa.String(100))
    last_name: Mapped[str | None] = mapped_column(sa.String(100))
    company: Mapped[str | None] = mapped_column(sa.String(200))
    title: Mapped[str | None] = mapped_column(sa.String(100))
    email: Mapped[str | None] = mapped_column(sa.String(320))
    phone: Mapped[str | None] = mapped_column(sa.String(20))
    country: Mapped[str | None] = mapped_column(sa.String(2))
    message: Mapped[str] = mapped_column(sa.Text, default="")
    status: Mapped[str] = mapped_column(sa.String(20), default="new")
    source: Mapped[str] = mapped_column(sa.String(50), default="api")
    score: Mapped[int] = mapped_column(default=0)
    owner_id: Mapped[uuid.UUID | None]
    web_form_id: Mapped[uuid.UUID | None]
    customer_id: Mapped[uuid.UUID | None]
    deal_id: Mapped[uuid.UUID | None]
    converted_at: Mapped[dt.datetime | None]

    __table_args__ = (
        tenant_fk("owner_id", "users"),
        tenant_fk("web_form_id", "operational_web_forms"),
        # a deleted customer takes its leads and deals with it, as it does its interactions
        tenant_fk("customer_id", "customers", ondelete="CASCADE"),
        tenant_fk("deal_id", "operational_deals"),
        sa.CheckConstraint(f"status IN {LEAD_STATUSES}", name="status"),
        sa.Index("ix_operational_leads_tenant_status", "tenant_id", "status"),
        sa.Index("ix_operational_leads_tenant_owner", "tenant_id", "owner_id"),
        sa.Index("ix_operational_leads_tenant_email", "tenant_id", "email"),
        sa.Index("ix_operational_leads_tenant_customer", "tenant_id", "customer_id"),
    )


class LeadScoringRule(Entity):
    """Points a lead earns when one of its fields matches: the score is the sum."""

    __tablename__ = "operational_lead_scoring_rules"

    name: Mapped[str] = mapped_column(sa.String(200))
    field: Mapped[str] = mapped_column(sa.String(40))
    operator: Mapped[str] = mapped_column(sa.String(20), default="equals")
    value: Mapped[str] = mapped_column(sa.String(200), default="")
    points: Mapped[int]
    active: Mapped[bool] = mapped_column(default=True)

    __table_args__ = (sa.CheckConstraint(f"operator IN {RULE_OPERATORS}", name="operator"),)


class WebForm(Entity):
    """A public web-to-lead form; its ``key`` names the tenant and the form."""

    __tablename__ = "operational_web_forms"

    name: Mapped[str] = mapped_column(sa.String(200))
    key: Mapped[str] = mapped_column(sa.String(100))
    fields: Mapped[list] = mapped_column(default=list)
    required: Mapped[list] = mapped_column(default=list)
    source: Mapped[str] = mapped_column(sa.String(50), default="web_form")
    owner_id: Mapped[uuid.UUID | None]
    honeypot: Mapped[str] = mapped_column(sa.String(50), default="nickname")
    redirect_url: Mapped[str | None] = mapped_column(sa.String(500))
    active: Mapped[bool] = mapped_column(default=True)

    __table_args__ = (
        tenant_fk("owner_id", "users"),
        sa.UniqueConstraint("tenant_id", "key"),
    )


class Pipeline(Entity):
    """A sales process: ordered stages a deal moves through."""

    __tablename__ = "operational_pipelines"

    name: Mapped[str] = mapped_column(sa.String(200))
    is_default: Mapped[bool] = mapped_column(default=False)
    position: Mapped[int] = mapped_column(default=0)


class Stage(Entity):
    """One step of a pipeline, with the probability that a deal there is won."""

    __tablename__ = "operational_stages"

    pipeline_id: Mapped[uuid.UUID]
    name: Mapped[str] = mapped_column(sa.String(100))
    position: Mapped[int] = mapped_column(default=0)
    probability: Mapped[int] = mapped_column(default=0)
    kind: Mapped[str] = mapped_column(sa.String(10), default="open")

    __table_args__ = (
        tenant_fk("pipeline_id", "operational_pipelines", ondelete="CASCADE"),
        sa.CheckConstraint(f"kind IN {STAGE_KINDS}", name="kind"),
        sa.CheckConstraint("probability >= 0 AND probability <= 100", name="probability"),
        sa.Index("ix_operational_stages_tenant_pipeline", "tenant_id", "pipeline_id", "position"),
    )


class Deal(Entity):
    """An opportunity: an amount expected from a customer, moving through a pipeline."""

    __tablename__ = "operational_deals"

    title: Mapped[str] = mapped_column(sa.String(300))
    pipeline_id: Mapped[uuid.UUID]
    stage_id: Mapped[uuid.UUID]
    customer_id: Mapped[uuid.UUID | None]
    owner_id: Mapped[uuid.UUID | None]
    amount: Mapped[decimal.Decimal] = mapped_column(Money, default=decimal.Decimal("0"))
    currency: Mapped[str] = mapped_column(sa.String(3))
    expected_close_date: Mapped[dt.date | None]
    forecast_category: Mapped[str] = mapped_column(sa.String(20), default="pipeline")
    status: Mapped[str] = mapped_column(sa.String(10), default="open")
    closed_at: Mapped[dt.datetime | None]
    close_reason: Mapped[str | None] = mapped_column(sa.String(500))

    __table_args__ = (
        tenant_fk("pipeline_id", "operational_pipelines"),
        tenant_fk("stage_id", "operational_stages"),
        tenant_fk("customer_id", "customers", ondelete="CASCADE"),
        tenant_fk("owner_id", "users"),
        sa.CheckConstraint(f"status IN {DEAL_STATUSES}", name="status"),
        sa.CheckConstraint(f"forecast_category IN {FORECAST_CATEGORIES}",
                           name="forecast_category"),
        sa.Index("ix_operational_deals_tenant_stage", "tenant_id", "stage_id"),
        sa.Index("ix_operational_deals_tenant_owner", "tenant_id", "owner_id"),
        sa.Index("ix_operational_deals_tenant_customer", "tenant_id", "customer_id"),
        sa.Index("ix_operational_deals_tenant_close", "tenant_id", "expected_close_date"),
    )


class DealItem(Entity):
    """A line of a deal: a product, a quantity and a unit price."""

    __tablename__ = "operational_deal_items"

    deal_id: Mapped[uuid.UUID]
    position: Mapped[int] = mapped_column(default=0)
    product: Mapped[str] = mapped_column(sa.String(200))
    quantity: Mapped[decimal.Decimal] = mapped_column(sa.Numeric(12, 3))
    unit_price: Mapped[decimal.Decimal] = mapped_column(Money)

    __table_args__ = (
        tenant_fk("deal_id", "operational_deals", ondelete="CASCADE"),
        sa.Index("ix_operational_deal_items_tenant_deal", "tenant_id", "deal_id"),
    )


class DealStageChange(Entity):
    """One move of a deal into a stage (the first row is its creation)."""

    __tablename__ = "operational_deal_stage_changes"

    deal_id: Mapped[uuid.UUID]
    from_stage_id: Mapped[uuid.UUID | None]
    to_stage_id: Mapped[uuid.UUID]
    changed_at: Mapped[dt.datetime]
    user_id: Mapped[uuid.UUID | None]

    __table_args__ = (
        tenant_fk("deal_id", "operational_deals", ondelete="CASCADE"),
        tenant_fk("from_stage_id", "operational_stages"),
        tenant_fk("to_stage_id", "operational_stages"),
        tenant_fk("user_id", "users"),
        sa.Index("ix_operational_deal_stage_changes_tenant_deal", "tenant_id", "deal_id",
                 "changed_at"),
    )


class SalesTarget(Entity):
    """What an owner should win in a month or a quarter, in one currency."""

    __tablename__ = "operational_sales_targets"

    owner_id: Mapped[uuid.UUID]
    period: Mapped[str] = mapped_column(sa.String(10))
    period_start: Mapped[dt.date]
    amount: Mapped[decimal.Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(sa.String(3))

    __table_args__ = (
        tenant_fk("owner_id", "users", ondelete="CASCADE"),
        sa.CheckConstraint(f"period IN {TARGET_PERIODS}", name="period"),
        sa.UniqueConstraint("tenant_id", "owner_id", "period", "period_start", "currency"),
    )


MODELS = (WebForm, Lead, LeadScoringRule, Pipeline, Stage, Deal, DealItem, DealStageChange,
          SalesTarget)
