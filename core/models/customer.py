"""``Customer`` (a person or an organisation) and ``Interaction`` (every touchpoint)."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from clientela.core.models.entity import Entity, tenant_fk

CUSTOMER_KINDS = ("person", "organisation")
LIFECYCLE_STAGES = ("lead", "prospect", "customer", "former")
DIRECTIONS = ("inbound", "outbound", "internal")


class Customer(Entity):
    """A person or an organisation the tenant does business with.

    ``email`` and ``phone`` are the primary address and number (normalised:
    lower-case e-mail, E.164 phone) used for search, matching and dedupe; more of
    each live in ``emails`` / ``phones`` as ``[{"label", "value"}]``.
    """

    __tablename__ = "customers"

    kind: Mapped[str] = mapped_column(sa.String(20), default="person")
    display_name: Mapped[str] = mapped_column(sa.String(300))
    first_name: Mapped[str | None] = mapped_column(sa.String(100))
    last_name: Mapped[str | None] = mapped_column(sa.String(100))
    organisation_name: Mapped[str | None] = mapped_column(sa.String(200))
    email: Mapped[str | None] = mapped_column(sa.String(320))
    phone: Mapped[str | None] = mapped_column(sa.String(20))
    emails: Mapped[list] = mapped_column(default=list)
    phones: Mapped[list] = mapped_column(default=list)
    addresses: Mapped[list] = mapped_column(default=list)
    website: Mapped[str | None] = mapped_column(sa.String(500))
    owner_id: Mapped[uuid.UUID | None]
    organisation_id: Mapped[uuid.UUID | None]
    stage: Mapped[str] = mapped_column(sa.String(20), default="lead")
    tags: Mapped[list] = mapped_column(default=list)
    external_id: Mapped[str | None] = mapped_column(sa.String(100))

    __table_args__ = (
        tenant_fk("owner_id", "users"),
        tenant_fk("organisation_id", "customers"),
        sa.CheckConstraint(f"kind IN {CUSTOMER_KINDS}", name="kind"),
        sa.CheckConstraint(f"stage IN {LIFECYCLE_STAGES}", name="stage"),
        sa.UniqueConstraint("tenant_id", "external_id"),
        sa.Index("ix_customers_tenant_email", "tenant_id", "email"),
        sa.Index("ix_customers_tenant_phone", "tenant_id", "phone"),
        sa.Index("ix_customers_tenant_name", "tenant_id", "display_name"),
        sa.Index("ix_customers_tenant_stage", "tenant_id", "stage"),
        sa.Index("ix_customers_tenant_owner", "tenant_id", "owner_id"),
        sa.Index("ix_customers_tenant_updated", "tenant_id", "updated_at"),
    )


class Interaction(Entity):
    """One touchpoint with a customer: a call, an e-mail, a meeting, a letter, a form.

    ``(source, external_id)`` identifies an interaction imported from elsewhere, so
    importing the same file twice records it once.
    """

    __tablename__ = "interactions"

    customer_id: Mapped[uuid.UUID]
    channel: Mapped[str] = mapped_column(sa.String(40))
    direction: Mapped[str] = mapped_column(sa.String(20), default="inbound")
    occurred_at: Mapped[dt.datetime]
    subject: Mapped[str] = mapped_column(sa.String(500), default="")
    body: Mapped[str] = mapped_column(sa.Text, default="")
    outcome: Mapped[str | None] = mapped_column(sa.String(100))
    user_id: Mapped[uuid.UUID | None]
    source: Mapped[str | None] = mapped_column(sa.String(100))
    external_id: Mapped[str | None] = mapped_column(sa.String(200))

    __table_args__ = (
        tenant_fk("customer_id", "customers", ondelete="CASCADE"),
        tenant_fk("user_id", "users"),
        sa.CheckConstraint(f"direction IN {DIRECTIONS}", name="direction"),
        sa.UniqueConstraint("tenant_id", "source", "external_id"),
        sa.Index("ix_interactions_tenant_customer_time", "tenant_id", "customer_id", "occurred_at"),
        sa.Index("ix_interactions_tenant_time", "tenant_id", "occurred_at"),
    )
