"""The operational plugin's campaign tables: campaigns, their static lists, recipients with
their send status and responses, the deals they brought, and marketing opt-outs."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from clientela.core.models import Entity, tenant_fk

CAMPAIGN_STATUSES = ("draft", "scheduled", "sending", "sent", "cancelled")
AUDIENCES = ("list", "segment")
#: ``pending`` waits for the send job, ``sending`` is held by it while the message goes
#: out; ``unknown`` is a ``sending`` row a crashed run left behind: it may have gone out,
#: so it is never sent again
RECIPIENT_STATUSES = ("pending", "sending", "sent", "blocked", "failed", "unknown")
RESPONSE_KINDS = ("delivered", "opened", "clicked", "replied", "converted", "unsubscribed")

Money = sa.Numeric(14, 2)


class Campaign(Entity):
    """A message sent to a target list or a segment on one channel, with its cost."""

    __tablename__ = "operational_campaigns"

    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    channel: Mapped[str] = mapped_column(sa.String(40), default="email")
    purpose: Mapped[str] = mapped_column(sa.String(40), default="marketing")
    subject: Mapped[str] = mapped_column(sa.String(500), default="")
    body: Mapped[str] = mapped_column(sa.Text, default="")
    html: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(20), default="draft")
    audience: Mapped[str] = mapped_column(sa.String(10), default="list")
    segment_id: Mapped[str | None] = mapped_column(sa.String(200))
    send_at: Mapped[dt.datetime | None]
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    #: each send (or resume) is one round: the key of its job
    send_round: Mapped[int] = mapped_column(default=0)
    #: the public address tracking links point at, fixed when sending is requested
    base_url: Mapped[str | None] = mapped_column(sa.String(500))
    budget: Mapped[decimal.Decimal | None] = mapped_column(Money)
    cost: Mapped[decimal.Decimal] = mapped_column(Money, default=decimal.Decimal("0"))
    currency: Mapped[str] = mapped_column(sa.String(3))
    owner_id: Mapped[uuid.UUID | None]

    __table_args__ = (
        tenant_fk("owner_id", "users"),
        sa.CheckConstraint(f"status IN {CAMPAIGN_STATUSES}", name="status"),
        sa.CheckConstraint(f"audience IN {AUDIENCES}", name="audience"),
        sa.Index("ix_operational_campaigns_tenant_status_send_at", "tenant_id", "status",
                 "send_at"),
    )


class CampaignMember(Entity):
    """A customer on a campaign's static target list."""

    __tablename__ = "operational_campaign_members"

    campaign_id: Mapped[uuid.UUID]
    customer_id: Mapped[uuid.UUID]

    __table_args__ = (
        tenant_fk("campaign_id", "operational_campaigns", ondelete="CASCADE"),
        tenant_fk("customer_id", "customers", ondelete="CASCADE"),
        sa.UniqueConstraint("tenant_id", "campaign_id", "customer_id"),
        sa.Index("ix_operational_campaign_members_tenant_customer", "tenant_id", "customer_id"),
    )


class CampaignRecipient(Entity):
    """One customer a campaign was (or is being) sent to: the send's outcome and the
    customer's responses. Unique per campaign and customer: what makes sending idempotent."""

    __tablename__ = "operational_campaign_recipients"

    campaign_id: Mapped[uuid.UUID]
    customer_id: Mapped[uuid.UUID]
    status: Mapped[str] = mapped_column(sa.String(10), default="pending")
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    error: Mapped[str | None] = mapped_column(sa.Text)
    attempts: Mapped[int] = mapped_column(default=0)
    message_id: Mapped[str | None] = mapped_column(sa.String(500))
    interaction_id: Mapped[uuid.UUID | None]
    sent_at: Mapped[dt.datetime | None]
    delivered_at: Mapped[dt.datetime | None]
    opened_at: Mapped[dt.datetime | None]
    clicked_at: Mapped[dt.datetime | None]
    replied_at: Mapped[dt.datetime | None]
    converted_at: Mapped[dt.datetime | None]
    unsubscribed_at: Mapped[dt.datetime | None]
    opens: Mapped[int] = mapped_column(default=0)
    clicks: Mapped[int] = mapped_column(default=0)

    __table_args__ = (
        tenant_fk("campaign_id", "operational_campaigns", ondelete="CASCADE"),
        tenant_fk("customer_id", "customers", ondelete="CASCADE"),
        sa.UniqueConstraint("tenant_id", "campaign_id", "customer_id"),
        sa.CheckConstraint(f"status IN {RECIPIENT_STATUSES}", name="status"),
        sa.Index("ix_operational_campaign_recipients_tenant_campaign_status", "tenant_id",
                 "campaign_id", "status"),
        sa.Index("ix_operational_campaign_recipients_tenant_customer", "tenant_id",
                 "customer_id"),
    )


class CampaignDeal(Entity):
    """A deal the campaign brought (a deal counts for one campaign at most)."""

    __tablename__ = "operational_campaign_deals"

    campaign_id: Mapped[uuid.UUID]
    deal_id: Mapped[uuid.UUID]

    __table_args__ = (
        tenant_fk("campaign_id", "operational_campaigns", ondelete="CASCADE"),
        tenant_fk("deal_id", "operational_deals", ondelete="CASCADE"),
        sa.UniqueConstraint("tenant_id", "deal_id"),
        sa.Index("ix_operational_campaign_deals_tenant_campaign", "tenant_id", "campaign_id"),
    )


class MarketingOptOut(Entity):
    """A customer who unsubscribed from marketing on a channel; the plugin answers
    ``clientela_contact_allowed`` with ``False`` for marketing there."""

    __tablename__ = "operational_marketing_opt_outs"

    customer_id: Mapped[uuid.UUID]
    channel: Mapped[str] = mapped_column(sa.String(40))
    campaign_id: Mapped[uuid.UUID | None]
    opted_out_at: Mapped[dt.datetime]

    __table_args__ = (
        tenant_fk("customer_id", "customers", ondelete="CASCADE"),
        sa.UniqueConstraint("tenant_id", "customer_id", "channel"),
    )


MODELS = (Campaign, CampaignMember, CampaignRecipient, CampaignDeal, MarketingOptOut)
