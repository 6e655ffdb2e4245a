"""The ``Entity`` base that every tenant-owned table derives from."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from clientela.core.db import Base, JSONType, new_id, utcnow


class Entity(Base):
    """A tenant-owned record.

    The primary key is ``(tenant_id, id)``: it leads with the tenant so that the
    schema can be sharded by tenant (Citus) without a rewrite. ``id`` alone is
    still unique (a UUIDv7) and is what the API shows.

    ``tenant_id``, ``id``, ``created_at``, ``updated_at`` and ``created_by`` are set
    by the core (see ``clientela.core.tenancy``); code never sets them by hand.
    """

    __abstract__ = True

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True, sort_order=-100
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id, sort_order=-99)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, sort_order=90)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, sort_order=91)
    created_by: Mapped[uuid.UUID | None] = mapped_column(sort_order=92)
    #: tenant-defined custom fields (validated by the tailor-made plugin)
    attributes: Mapped[dict] = mapped_column(default=dict, sort_order=93)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}>"


def tenant_fk(column: str, target: str, ondelete: str | None = None) -> sa.ForeignKeyConstraint:
    """A foreign key from ``column`` to the tenant table ``target``, led by ``tenant_id``.

    Referencing ``(tenant_id, id)`` makes a reference to another tenant's row
    impossible in the database itself, not only in the application.
    """
    return sa.ForeignKeyConstraint(
        ["tenant_id", column], [f"{target}.tenant_id", f"{target}.id"], ondelete=ondelete
    )


__all__ = ["Entity", "JSONType", "new_id", "tenant_fk", "utcnow"]
