"""The current tenant, and automatic scoping of every ORM query and write to it.

Every statement that touches an ``Entity`` runs with ``tenant_id = current tenant``
added by the ORM (``with_loader_criteria``), every insert is stamped with it, and
touching tenant data with no tenant set raises ``NoTenantError``. Plugins never
filter by ``tenant_id`` by hand.
"""

from __future__ import annotations

import contextlib
import contextvars
import uuid
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.sql import visitors
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from clientela.core.db import new_id, utcnow
from clientela.core.errors import CrossTenantError, NoTenantError
from clientela.core.models.entity import Entity

_tenant: contextvars.ContextVar[uuid.UUID | None] = contextvars.ContextVar(
    "clientela_tenant", default=None
)
_actor: contextvars.ContextVar[uuid.UUID | None] = contextvars.ContextVar(
    "clientela_actor", default=None
)
_origin: contextvars.ContextVar[str] = contextvars.ContextVar("clientela_origin", default="system")
_unscoped: contextvars.ContextVar[bool] = contextvars.ContextVar("clientela_unscoped", default=False)


def current_tenant_id() -> uuid.UUID:
    """The current tenant's id; raises ``NoTenantError`` when none is set."""
    tenant_id = _tenant.get()
    if tenant_id is None:
        raise NoTenantError("no tenant is set: tenant-owned data needs a tenant context")
    return tenant_id


def get_tenant_id() -> uuid.UUID | None:
    """The current tenant's id, or ``None``."""
    return _tenant.get()


def current_actor_id() -> uuid.UUID | None:
    """The user acting (API token, session or the CLI's ``--as``), if any."""
    return _actor.get()


def current_origin() -> str:
    """Where the current work comes from: ``api``, ``cli``, ``job``, ``web`` or ``system``."""
    return _origin.get()


@contextlib.contextmanager
def tenant_context(
    tenant_id: uuid.UUID, actor_id: uuid.UUID | None = None, origin: str | None = None
) -> Iterator[None]:
    """Run the block as ``tenant_id`` (and ``actor_id``); restores the outer context after."""
    if not isinstance(tenant_id, uuid.UUID):
        raise TypeError(f"tenant_id must be a UUID, not {type(tenant_id).__name__}")
    tokens = [(_tenant, _tenant.set(tenant_id)), (_actor, _actor.set(actor_id))]
    if origin is not None:
        tokens.append((_origin, _origin.set(origin)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


@contextlib.contextmanager
def origin_context(origin: str) -> Iterator[None]:
    token = _origin.set(origin)
    try:
        yield
    finally:
        _origin.reset(token)


@contextlib.contextmanager
def unscoped() -> Iterator[None]:
    """Lift tenant scoping for the block: for the few operations that span tenants.

    Used by token lookup (before the tenant is known) and the operator's tenant
    lifecycle commands. Inserts are still stamped when a tenant is set. In the hosted
    profile, Row-Level Security still applies underneath.
    """
    token = _unscoped.set(True)
    try:
        yield
    finally:
        _unscoped.reset(token)


def is_unscoped() -> bool:
    return _unscoped.get()


def _touches_entities(state: ORMExecuteState) -> bool:
    if any(issubclass(m.class_, Entity) for m in state.all_mappers):
        return True
    # ``select(func.count()).select_from(Customer)`` names no mapper in all_mappers:
    # look for tenant tables anywhere in the statement
    for element in visitors.iterate(state.statement):
        if isinstance(element, sa.Table) and "tenant_id" in element.c and element.name != "tenants":
            return True
    return False


@event.listens_for(Session, "do_orm_execute")
def _scope_statement(state: ORMExecuteState) -> None:
    if _unscoped.get() or state.is_column_load:
        return
    if not (state.is_select or state.is_update or state.is_delete or state.is_insert):
        return
    tenant_id = _tenant.get()
    if tenant_id is None:
        if _touches_entities(state):
            raise NoTenantError("no tenant is set: tenant-owned data needs a tenant context")
        return
    if state.is_insert:
        if not any(issubclass(m.class_, Entity) for m in state.all_mappers):
            return
        # bulk inserts (``session.execute(insert(Model), rows)``) skip before_flush
        params = state.parameters
        for row in params if isinstance(params, list) else [params] if params else []:
            if row.get("tenant_id") is None:
                row["tenant_id"] = tenant_id
            elif row["tenant_id"] != tenant_id:
                raise CrossTenantError("bulk insert of a row for another tenant")
            if row.get("id") is None:
                row["id"] = new_id()
        return
    state.statement = state.statement.options(
        with_loader_criteria(Entity, lambda cls: cls.tenant_id == tenant_id, include_aliases=True)
    )


@event.listens_for(Session, "before_flush")
def _stamp_writes(session: Session, flush_context, instances) -> None:
    tenant_id = _tenant.get()
    free = _unscoped.get()
    now = utcnow()
    for obj in session.new:
        if not isinstance(obj, Entity):
            continue
        if obj.tenant_id is None:
            if tenant_id is None:
                raise NoTenantError(f"cannot insert {type(obj).__name__}: no tenant is set")
            obj.tenant_id = tenant_id
        elif obj.tenant_id != tenant_id and not free:
            if tenant_id is None:
                raise NoTenantError(f"cannot insert {type(obj).__name__}: no tenant is set")
            raise CrossTenantError(f"cannot insert {type(obj).__name__} for another tenant")
        if obj.id is None:
            obj.id = new_id()
        if obj.created_by is None:
            obj.created_by = _actor.get()
        if obj.created_at is None:
            obj.created_at = now
        obj.updated_at = obj.created_at
    for obj in list(session.dirty) + list(session.deleted):
        if not isinstance(obj, Entity) or free:
            continue
        if tenant_id is None:
            raise NoTenantError(f"cannot change {type(obj).__name__}: no tenant is set")
        if obj.tenant_id != tenant_id:
            raise CrossTenantError(f"cannot change {type(obj).__name__} of another tenant")
    for obj in session.dirty:
        if isinstance(obj, Entity) and session.is_modified(obj, include_collections=False):
            obj.updated_at = now
