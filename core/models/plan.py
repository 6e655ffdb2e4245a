"""``Plan`` (shared) and ``TenantUsage`` (per tenant, per day): what the hosted profile sells and
bills; ``OperatorToken`` (shared): the credentials of the hosted operator API.

The tables belong to the core's migrations (revision ``0005_hosted``) so that the schema
is the same under both profiles; only the hosted profile reads and writes them.
``plans`` is a shared (reference) table. ``tenant_usage`` carries ``tenant_id`` and so
lives under Row-Level Security and in tenant exports, but it is not an ``Entity``:
incrementing a counter is not a business change and writes no audit row.
"""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from clientela.core.db import Base, new_id, utcnow


class Plan(Base):
    """A plan: the plugins a tenant gets and its quotas (``None``: all plugins, no limit)."""

    __tablename__ = "plans"

    name: Mapped[str] = mapped_column(sa.String(63), primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200), default="")
    #: plugin names; ``None`` means every plugin installed on the instance
    plugins: Mapped[list | None] = mapped_column()
    max_records: Mapped[int | None] = mapped_column(sa.Integer)
    api_requests_per_minute: Mapped[int | None] = mapped_column(sa.Integer)
    max_storage_bytes: Mapped[int | None] = mapped_column(sa.BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<Plan {self.name}>"


class TenantUsage(Base):
    """A tenant's counters for one UTC day: what the operator bills on."""

    __tablename__ = "tenant_usage"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[dt.date] = mapped_column(sa.Date, primary_key=True)
    api_calls: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    records: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    storage_bytes: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<TenantUsage {self.tenant_id} {self.day}>"


class OperatorToken(Base):
    """A token of the hosted operator API (``/operator/api/v1``), not of any tenant.

    Only its SHA-256 hash is stored; the token is shown once. Tenant API tokens
    (``api_tokens``) and operator tokens are separate kinds with separate prefixes and
    tables: neither is ever accepted where the other is.
    """

    __tablename__ = "operator_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(16))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]

    def __repr__(self) -> str:
        return f"<OperatorToken {self.name}>"


__all__ = ["OperatorToken", "Plan", "TenantUsage"]
