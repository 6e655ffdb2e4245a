"""Staff accounts (``User``) and their API tokens (``ApiToken``)."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from clientela.core.models.entity import Entity, tenant_fk

SECRET = {"secret": True}  # column info: never written to the audit trail
BOOKKEEPING = {"audit": False}  # column info: changes alone are not worth an audit event


class User(Entity):
    __tablename__ = "users"

    email: Mapped[str] = mapped_column(sa.String(320))
    name: Mapped[str] = mapped_column(sa.String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(sa.String(255), info=SECRET)
    is_active: Mapped[bool] = mapped_column(default=True)
    roles: Mapped[list] = mapped_column(default=list)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(info=BOOKKEEPING)

    __table_args__ = (sa.UniqueConstraint("tenant_id", "email"),)


class ApiToken(Entity):
    """An API token. Only its SHA-256 hash is stored; the token is shown once."""

    __tablename__ = "api_tokens"

    user_id: Mapped[uuid.UUID]
    name: Mapped[str] = mapped_column(sa.String(100), default="")
    prefix: Mapped[str] = mapped_column(sa.String(16))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True, info=SECRET)
    expires_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]
    last_used_at: Mapped[dt.datetime | None] = mapped_column(info=BOOKKEEPING)

    __table_args__ = (tenant_fk("user_id", "users", ondelete="CASCADE"),)


class Role(Entity):
    """A tenant's own role: a name and the permissions it grants, each with a record scope.

    The built-in roles (``admin``, ``sales``, ...) come from the ``clientela_roles`` hook and
    are not stored; a tenant adds its own here.
    """

    __tablename__ = "roles"

    name: Mapped[str] = mapped_column(sa.String(63))
    description: Mapped[str] = mapped_column(sa.String(300), default="")
    #: ``{permission: scope}`` with scope ``own``, ``team`` or ``all``
    permissions: Mapped[dict] = mapped_column(default=dict)

    __table_args__ = (sa.UniqueConstraint("tenant_id", "name"),)
