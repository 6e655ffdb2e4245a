"""The loyalty ledger: one row per earn, redeem or expiry."""

import datetime as dt
import decimal
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from clientela.core.models import Entity, tenant_fk

KINDS = ("purchase", "interaction", "redemption", "expiry")


class LoyaltyEntry(Entity):
    """Points in (positive: purchase, interaction) or out (negative: redemption, expiry)."""

    __tablename__ = "loyalty_entries"

    customer_id: Mapped[uuid.UUID]
    kind: Mapped[str] = mapped_column(sa.String(20))
    points: Mapped[int]
    amount: Mapped[decimal.Decimal | None] = mapped_column(sa.Numeric(14, 2))
    currency: Mapped[str | None] = mapped_column(sa.String(3))
    description: Mapped[str] = mapped_column(sa.String(300), default="")
    occurred_at: Mapped[dt.datetime]
    #: for earned points: when what is left of them expires
    expires_at: Mapped[dt.datetime | None]
    #: earned points already accounted for by the expiry job
    settled: Mapped[bool] = mapped_column(default=False)

    __table_args__ = (
        tenant_fk("customer_id", "customers", ondelete="CASCADE"),
        sa.CheckConstraint(f"kind IN {KINDS}", name="kind"),
        sa.Index("ix_loyalty_entries_tenant_customer", "tenant_id", "customer_id", "occurred_at"),
    )
