"""The write stream: audit rows for every change and the pre/post-commit event hooks.

On every flush the core records what changed in each ``Entity`` (before/after of
each column), writes an ``AuditEvent`` for it in the same transaction, and queues
the change. Before commit the ``*_precommit`` hooks run (and may veto by raising
``ValidationError``); after commit the ``*_postcommit`` hooks run, each plugin on
its own so that one failing plugin is logged and the others still run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import logging
import uuid
from typing import Any

import sqlalchemy as sa
from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from clientela.core import tenancy
from clientela.core.errors import ClientelaError, ValidationError
from clientela.core.models import AuditEvent, Customer, Entity, Interaction

log = logging.getLogger(__name__)

_CHANGES = "clientela.changes"

# which entity types also fire a specific customer/interaction hook
_SPECIFIC_HOOKS = {
    (Customer.__tablename__, "insert"): "clientela_customer_created",
    (Customer.__tablename__, "update"): "clientela_customer_updated",
    (Interaction.__tablename__, "insert"): "clientela_interaction_recorded",
}


@dataclasses.dataclass
class EntityChange:
    """One insert, update or delete of an entity, as hooks receive it."""

    entity: Entity
    entity_type: str
    entity_id: uuid.UUID
    tenant_id: uuid.UUID
    operation: str  # insert | update | delete
    #: ``{field: [before, after]}`` (JSON-safe); secrets are redacted
    changes: dict[str, list[Any]]
    #: every column's value after the write (before it, for a delete), JSON-safe and
    #: secrets redacted; filled before commit so postcommit hooks can read it
    values: dict[str, Any] = dataclasses.field(default_factory=dict)


class AuditIsAppendOnly(ClientelaError):
    pass


#: the types json_safe returns as they are (most values: no call made for them)
_PLAIN_TYPES = frozenset((str, int, float, bool, type(None)))


def json_safe(value: Any) -> Any:
    if type(value) in _PLAIN_TYPES:
        return value
    if isinstance(value, (uuid.UUID, decimal.Decimal)):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): v if type(v) in _PLAIN_TYPES else json_safe(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [v if type(v) in _PLAIN_TYPES else json_safe(v) for v in value]
    return value


_SKIPPED = {"tenant_id", "id", "created_at", "updated_at", "created_by"}


def _column_changes(obj: Entity, operation: str) -> dict[str, list[Any]]:
    state = sa.inspect(obj)
    changes: dict[str, list[Any]] = {}
    for attr in state.mapper.column_attrs:
        key = attr.key
        if key in _SKIPPED:
            continue
        column = attr.columns[0]
        if column.info.get("audit") is False:
            continue
        hist = state.attrs[key].history
        if operation == "insert":
            before, after = None, getattr(obj, key)
            if after is None or after == [] or after == {}:
                continue
        elif operation == "delete":
            before, after = getattr(obj, key), None
            if before is None:
                continue
        else:
            if not hist.has_changes():
                continue
            before = hist.deleted[0] if hist.deleted else None
            after = hist.added[0] if hist.added else None
            if before == after:
                continue
        if column.info.get("secret"):
            before = "[redacted]" if before is not None else None
            after = "[redacted]" if after is not None else None
        changes[key] = [json_safe(before), json_safe(after)]
    return changes


def _keep_old_value(target, value, oldvalue, initiator):
    return value


@event.listens_for(Entity, "mapper_configured", propagate=True)
def _track_before_values(mapper, cls) -> None:
    """Load the old value when an attribute of an expired object is set, so that the
    audit trail has the "before" even after a commit expired the object."""
    for attr in mapper.column_attrs:
        event.listen(getattr(cls, attr.key), "set", _keep_old_value, active_history=True,
                     retval=True)


@event.listens_for(Session, "before_flush")
def _record_changes(session: Session, flush_context, instances) -> None:
    # runs after tenancy's before_flush listener (registered first), so ids are set
    queued: list[EntityChange] = session.info.setdefault(_CHANGES, [])
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, AuditEvent):
            raise AuditIsAppendOnly("audit events cannot be changed or deleted")
    batches = (("insert", session.new), ("update", session.dirty), ("delete", session.deleted))
    for operation, objects in batches:
        for obj in list(objects):
            if not isinstance(obj, Entity) or isinstance(obj, AuditEvent):
                continue
            if operation == "update" and not session.is_modified(obj, include_collections=False):
                continue
            changes = _column_changes(obj, operation)
            if operation == "update" and not changes:
                continue
            change = EntityChange(
                entity=obj,
                entity_type=obj.__tablename__,
                entity_id=obj.id,
                tenant_id=obj.tenant_id,
                operation=operation,
                changes=changes,
            )
            queued.append(change)
            session.add(
                AuditEvent(
                    tenant_id=obj.tenant_id,
                    actor_id=tenancy.current_actor_id(),
                    action=operation,
                    entity_type=change.entity_type,
                    entity_id=obj.id,
                    changes=changes,
                    origin=tenancy.current_origin(),
                )
            )


def _snapshot(obj: Entity) -> dict[str, Any]:
    values = {}
    for attr in sa.inspect(obj).mapper.column_attrs:
        if attr.columns[0].info.get("secret"):
            continue
        values[attr.key] = json_safe(obj.__dict__.get(attr.key))
    return values


def plugin_hooks():
    """The hook relay of the current app's plugins, or ``None`` outside an app."""
    if not has_app_context():
        return None
    ext = current_app.extensions.get("clientela")
    return ext.plugins.hook if ext is not None else None


def _specific_hook(change: EntityChange) -> str | None:
    return _SPECIFIC_HOOKS.get((change.entity_type, change.operation))


#: rounds of "hooks wrote rows, which call hooks" before the commit is refused
PRECOMMIT_ROUNDS = 20


@event.listens_for(Session, "before_commit")
def _precommit(session: Session) -> None:
    hook = plugin_hooks()
    if hook is None:
        return
    session.flush()
    queued: list[EntityChange] = session.info.setdefault(_CHANGES, [])
    errors: dict[str, list[str]] = {}
    done = 0
    for _round in range(PRECOMMIT_ROUNDS):
        batch = queued[done:]
        if not batch:
            return
        done = len(queued)
        for change in batch:
            change.values = _snapshot(change.entity)
        for change in batch:
            if change.operation != "delete":
                for answer in hook.clientela_validate(entity=change.entity, change=change):
                    for field, messages in (answer or {}).items():
                        errors.setdefault(field, []).extend(messages)
            if errors:
                raise ValidationError(errors)
            specific = _specific_hook(change)
            if specific:
                getattr(hook, f"{specific}_precommit")(entity=change.entity, change=change)
            hook.clientela_entity_changed_precommit(change=change)
        # rows the hooks wrote are changes too: validated, hooked, audited like the others
        session.flush()
    raise ValidationError({"_schema": [
        f"precommit hooks kept writing rows after {PRECOMMIT_ROUNDS} rounds; nothing was saved"]})


def call_each(hookcaller, **kwargs) -> None:
    """Call every implementation of a hook, logging (not raising) each one's failure."""
    for impl in reversed(hookcaller.get_hookimpls()):
        try:
            impl.function(**{k: kwargs[k] for k in impl.argnames if k in kwargs})
        except Exception:
            log.exception("plugin %r failed in %s", impl.plugin_name, hookcaller.name)


@event.listens_for(Session, "after_commit")
def _postcommit(session: Session) -> None:
    queued: list[EntityChange] = session.info.pop(_CHANGES, [])
    hook = plugin_hooks()
    if hook is None or not queued:
        return
    for change in queued:
        # the session cannot emit SQL here, and the committed objects are expired:
        # postcommit hooks read ``change.values``, never the entity
        change = dataclasses.replace(change, entity=None)
        specific = _specific_hook(change)
        if specific:
            call_each(getattr(hook, f"{specific}_postcommit"), entity=change.entity, change=change)
        call_each(hook.clientela_entity_changed_postcommit, change=change)


@event.listens_for(Session, "after_soft_rollback")
def _forget(session: Session, previous_transaction) -> None:
    session.info.pop(_CHANGES, None)
