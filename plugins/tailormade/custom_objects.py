"""Custom objects: tenant-defined record types and their records, without per-tenant DDL.

An object (``vehicle``) is a row of ``tailormade_custom_objects``; its fields are custom
fields of entity type ``custom:vehicle``; its records are rows of the one table
``tailormade_custom_records`` with their values in ``attributes``. Records are entities
like any other: tenant-scoped, audited, validated by ``clientela_validate``, filtered and
sorted with the core's ``attr.<key>`` parameters, exported and erased with their customer.

Permissions: defining objects is ``customization:write``; records need
``custom_objects:read`` / ``custom_objects:write``, with the record scope (own, team, all)
applied to the record's owner.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from clientela.core import access, customers
from clientela.core.access import Principal
from clientela.core.db import db, utcnow
from clientela.core.errors import Conflict, Forbidden, NotFound, ValidationError
from clientela.core.events import json_safe
from clientela.core.models import AuditEvent, Customer, User
from clientela.core import tenancy
from clientela.plugins.tailormade import custom_fields
from clientela.plugins.tailormade.custom_fields import CUSTOM_PREFIX, RecordsOf
from clientela.plugins.tailormade.models import CustomField, CustomObject, CustomRecord

OBJECT_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
RECORD_SORT = {"title", "created_at", "updated_at"}
#: the field types whose values are personal enough to go when a customer is erased
PERSONAL_TYPES = custom_fields.STRING_TYPES
ERASED_TITLE = "Erased"
PROFILE_LIMIT = 20


# --- definitions ------------------------------------------------------------------------


def list_objects(principal: Principal) -> list[CustomObject]:
    access.require(principal, "customization:read")
    return list(db.session.execute(sa.select(CustomObject).order_by(CustomObject.key)).scalars())


def get_object(principal: Principal, object_id: uuid.UUID) -> CustomObject:
    access.require(principal, "customization:read")
    found = db.session.execute(
        sa.select(CustomObject).where(CustomObject.id == object_id)).scalar_one_or_none()
    if found is None:
        raise NotFound("custom object not found")
    return found


def object_by_key(key: str) -> CustomObject:
    """The current tenant's object ``key`` (404 if there is none)."""
    found = db.session.execute(
        sa.select(CustomObject).where(CustomObject.key == key)).scalar_one_or_none()
    if found is None:
        raise NotFound("custom object not found")
    return found


def create_object(principal: Principal, data: dict[str, Any]) -> CustomObject:
    access.require(principal, "customization:write")
    key = data.get("key") or ""
    if not OBJECT_KEY.match(key):
        raise ValidationError({"key": ["use a lower-case letter, then lower-case letters, "
                                       "digits or _ (at most 40)"]})
    if db.session.execute(sa.select(CustomObject.id).where(CustomObject.key == key)).first():
        raise Conflict(f"a custom object '{key}' already exists")
    obj = CustomObject(key=key, label=data.get("label") or key.replace("_", " ").capitalize(),
                       plural_label=data.get("plural_label") or "",
                       description=data.get("description") or "")
    db.session.add(obj)
    db.session.flush()
    return obj


def update_object(principal: Principal, object_id: uuid.UUID, data: dict[str, Any]
                  ) -> CustomObject:
    """Change labels and description; the key is fixed (fields and rules name it)."""
    obj = get_object(principal, object_id)
    access.require(principal, "customization:write")
    for name in ("label", "plural_label", "description"):
        if name in data:
            setattr(obj, name, data[name])
    db.session.flush()
    return obj


def delete_object(principal: Principal, object_id: uuid.UUID, purge: bool = False) -> int:
    """Remove an object and its field definitions; refused while it has records unless
    ``purge`` (which deletes them, audited). Returns the number of records deleted."""
    obj = get_object(principal, object_id)
    access.require(principal, "customization:write")
    records = db.session.execute(
        sa.select(CustomRecord).where(CustomRecord.object_id == obj.id)).scalars().all()
    if records and not purge:
        raise Conflict(f"'{obj.key}' has {len(records)} record(s): delete them first, or "
                       "delete with purge=true")
    for record in records:
        db.session.delete(record)
    for field in custom_fields.definitions(f"{CUSTOM_PREFIX}{obj.key}"):
        db.session.delete(field)
    db.session.delete(obj)
    db.session.flush()
    custom_fields.forget_types()
    return len(records)


# --- records ------------------------------------------------------------------------------


def records_query(principal: Principal, obj: CustomObject, *, q: str | None = None,
                  customer_id: uuid.UUID | None = None, owner_id: uuid.UUID | None = None,
                  attributes: Mapping[str, str] | None = None, sort: str | None = None):
    """The select of ``obj``'s records ``principal`` may read, filtered and sorted.

    ``attributes`` filters as the core's lists do (``{"plate": "AB123", "km.gte": "1000"}``),
    typed by the object's custom fields; ``sort`` takes ``title``, ``created_at``,
    ``updated_at`` and ``attr.<key>``.
    """
    records = RecordsOf(obj.key, obj.id)
    stmt = access.scope_filter(sa.select(CustomRecord).where(records.condition()),
                               CustomRecord.owner_id, principal, "custom_objects:read")
    if q and q.strip():
        pattern = "%" + q.strip().lower().replace("\\", "\\\\").replace("%", "\\%") \
            .replace("_", "\\_") + "%"
        stmt = stmt.where(sa.func.lower(CustomRecord.title).like(pattern, escape="\\"))
    if customer_id:
        stmt = stmt.where(CustomRecord.customer_id == customer_id)
    if owner_id:
        stmt = stmt.where(CustomRecord.owner_id == owner_id)
    if attributes:
        stmt = stmt.where(*customers.attribute_conditions(records, attributes))
    return customers.order_by(stmt, records, sort, RECORD_SORT, "title")


def get_record(principal: Principal, key: str, record_id: uuid.UUID,
               permission: str = "custom_objects:read") -> CustomRecord:
    """A record of object ``key`` that ``principal`` may read (404 otherwise)."""
    access.require(principal, "custom_objects:read")
    obj = object_by_key(key)
    record = db.session.execute(access.scope_filter(
        sa.select(CustomRecord).where(CustomRecord.id == record_id,
                                      CustomRecord.object_id == obj.id),
        CustomRecord.owner_id, principal, "custom_objects:read")).scalar_one_or_none()
    if record is None:
        raise NotFound("record not found")
    if permission != "custom_objects:read":
        access.check_record(record.owner_id, principal, "custom_objects:read", permission)
    return record


def _check_links(principal: Principal, data: dict[str, Any]) -> None:
    errors: dict[str, list[str]] = {}
    if data.get("customer_id") is not None:
        try:
            customers.get_customer(data["customer_id"], principal)
        except (NotFound, Forbidden):
            errors["customer_id"] = ["no customer with this id"]
    if data.get("owner_id") is not None:
        owner = db.session.execute(sa.select(User.id).where(
            User.id == data["owner_id"], User.is_active.is_(True))).first()
        if owner is None:
            errors["owner_id"] = ["no active user with this id"]
        elif principal.scope("custom_objects:write") == "own" \
                and data["owner_id"] != principal.user_id:
            raise Forbidden("you may only assign records to yourself")
    if errors:
        raise ValidationError(errors)


def create_record(principal: Principal, key: str, data: dict[str, Any]) -> CustomRecord:
    """Create a record of object ``key``; its owner is the caller unless ``owner_id``."""
    access.require(principal, "custom_objects:write")
    obj = object_by_key(key)
    data = dict(data)
    data.setdefault("owner_id", principal.user_id)
    _check_links(principal, data)
    record = CustomRecord(object_id=obj.id, title=data["title"],
                          customer_id=data.get("customer_id"), owner_id=data.get("owner_id"),
                          attributes=data.get("attributes") or {})
    db.session.add(record)
    db.session.flush()
    return record


def update_record(principal: Principal, key: str, record_id: uuid.UUID, data: dict[str, Any]
                  ) -> CustomRecord:
    """Change a record; ``attributes`` are merged (a key set to ``null`` is removed)."""
    record = get_record(principal, key, record_id, "custom_objects:write")
    _check_links(principal, {k: v for k, v in data.items() if k in ("customer_id", "owner_id")
                             and v != getattr(record, k)})
    for name in ("title", "customer_id", "owner_id"):
        if name in data:
            setattr(record, name, data[name])
    if "attributes" in data:
        merged = {**(record.attributes or {}), **data["attributes"]}
        record.attributes = {k: v for k, v in merged.items() if v is not None}
    db.session.flush()
    return record


def delete_record(principal: Principal, key: str, record_id: uuid.UUID) -> None:
    record = get_record(principal, key, record_id, "custom_objects:write")
    db.session.delete(record)
    db.session.flush()


def record_data(record: CustomRecord, key: str | None = None) -> dict[str, Any]:
    return {"id": str(record.id), "object": key or custom_fields.custom_object_key(
        record.object_id), "title": record.title,
        "customer_id": json_safe(record.customer_id), "owner_id": json_safe(record.owner_id),
        "attributes": json_safe(record.attributes or {}),
        "created_at": json_safe(record.created_at), "updated_at": json_safe(record.updated_at)}


# --- the customer's 360° view and data-subject rights -----------------------------------


def _customer_records(customer: Customer) -> list[tuple[CustomRecord, str]]:
    return list(db.session.execute(
        sa.select(CustomRecord, CustomObject.key)
        .join(CustomObject, CustomObject.id == CustomRecord.object_id)
        .where(CustomRecord.customer_id == customer.id)
        .order_by(CustomObject.key, CustomRecord.created_at, CustomRecord.id)).all())


def profile_section(customer: Customer) -> dict[str, Any] | None:
    """``clientela_customer_profile``: the customer's records, by object."""
    rows = _customer_records(customer)
    if not rows:
        return None
    by_object: dict[str, list] = {}
    for record, key in rows:
        listed = by_object.setdefault(key, [])
        if len(listed) < PROFILE_LIMIT:
            listed.append({"id": str(record.id), "title": record.title})
    return {"key": "custom_records", "title": "Custom records", "data": by_object}


def export_for(customer: Customer) -> dict[str, Any] | None:
    rows = _customer_records(customer)
    if not rows:
        return None
    return {"custom_records": [record_data(record, key) for record, key in rows]}


def erase_for(customer: Customer) -> dict[str, Any]:
    """Anonymise the customer's records: the title and every text-like value (text, long
    text, e-mail, URL, phone) go; numbers, dates, choices and references stay.

    Written with statements (required fields may be emptied, which validation would
    refuse); the records' audit trail is redacted, and one event per record names the
    keys removed.
    """
    rows = _customer_records(customer)
    personal: dict[str, set[str]] = {}
    for _record, key in rows:
        if key not in personal:
            personal[key] = {field.key for field in custom_fields.definitions(
                f"{CUSTOM_PREFIX}{key}") if field.type in PERSONAL_TYPES}
    now = utcnow()
    if rows:  # the trail's before/after values hold what is being erased
        db.session.execute(
            sa.update(AuditEvent).where(AuditEvent.entity_id.in_([r.id for r, _ in rows]))
            .values(changes={"redacted": "erased"}).execution_options(synchronize_session=False))
    for record, key in rows:
        kept = {k: v for k, v in (record.attributes or {}).items() if k not in personal[key]}
        removed = sorted(set(record.attributes or {}) - set(kept))
        db.session.execute(
            sa.update(CustomRecord).where(CustomRecord.id == record.id)
            .values(title=ERASED_TITLE, attributes=kept, updated_at=now)
            .execution_options(synchronize_session=False))
        db.session.add(AuditEvent(
            actor_id=tenancy.current_actor_id(), action="update",
            entity_type=CustomRecord.__tablename__, entity_id=record.id,
            origin=tenancy.current_origin(),
            changes={"title": ["[erased]", ERASED_TITLE], "erased_keys": removed}))
    return {"custom_records_anonymised": len(rows)}
