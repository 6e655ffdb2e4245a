"""``AuditEvent``: the append-only trail of every write and security event."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from clientela.core.models.entity import Entity


class AuditEvent(Entity):
    """Who did what to which record, with the before/after of each changed field.

    Rows are written by the core (``clientela.core.audit``); the ORM refuses to
    update or delete them.
    """

    __tablename__ = "audit_events"

    actor_id: Mapped[uuid.UUID | None]
    action: Mapped[str] = mapped_column(sa.String(40))
    entity_type: Mapped[str | None] = mapped_column(sa.String(100))
    entity_id: Mapped[uuid.UUID | None]
    changes: Mapped[dict] = mapped_column(default=dict)
    origin: Mapped[str | None] = mapped_column(sa.String(20))

    __table_args__ = (
        sa.Index("ix_audit_events_tenant_time", "tenant_id", "created_at"),
        sa.Index("ix_audit_events_tenant_entity", "tenant_id", "entity_type", "entity_id"),
    )
