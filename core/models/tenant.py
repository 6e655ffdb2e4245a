"""``Tenant``: one organisation using Clientela; shared (not tenant-owned) table."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from clientela.core.db import Base, new_id, utcnow

TENANT_STATUSES = ("active", "suspended")


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(sa.String(63), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(20), default="active")
    plan: Mapped[str | None] = mapped_column(sa.String(63))
    settings: Mapped[dict] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (sa.CheckConstraint(f"status IN {TENANT_STATUSES}", name="status"),)

    def __repr__(self) -> str:
        return f"<Tenant {self.slug}>"
