"""Custom fields: definitions per tenant and entity type, validation of values, safe changes.

A field's values live in ``attributes[key]`` of the entities of its type. They are
checked on every insert and update (``clientela_validate``), defaults are written on
insert (``clientela_entity_changed_precommit``), and a change to a definition is refused,
with a report, when existing values would not fit it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import decimal
import hashlib
import logging
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import phonenumbers
import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm.attributes import set_committed_value

from clientela.core import access, customers, tenancy
from clientela.core.access import Principal
from clientela.core.db import db
from clientela.core.errors import Conflict, NotFound, ValidationError
from clientela.core.events import json_safe
from clientela.core.models import AuditEvent, Entity
from clientela.plugins.tailormade import patterns
from clientela.plugins.tailormade.models import FIELD_TYPES, CustomField

log = logging.getLogger(__name__)
KEY = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
#: core tables that are bookkeeping, not business records: no custom fields, no webhooks
INTERNAL_TABLES = frozenset({"audit_events", "jobs", "api_tokens", "roles", "import_mappings",
                             "tenant_usage"})
STRING_TYPES = frozenset({"text", "long_text", "email", "url", "phone"})
CHOICE_TYPES = frozenset({"single_choice", "multiple_choice"})
#: types whose min/max bound the value itself (else: the length, or the number chosen)
VALUE_BOUNDED = frozenset({"integer", "decimal", "date", "datetime"})
BOUNDED = STRING_TYPES | VALUE_BOUNDED | {"multiple_choice"}
MAX_LENGTH = {"text": 1000, "long_text": 100_000, "email": 320, "url": 2000, "phone": 20}
#: how the core compares each type when filtering and sorting (``clientela_attribute_types``)
QUERY_TYPE = {"text": "text", "long_text": "text", "integer": "integer", "decimal": "decimal",
              "boolean": "boolean", "date": "date", "datetime": "datetime",
              "single_choice": "text", "multiple_choice": "list", "email": "text",
              "url": "text", "phone": "text", "reference": "text"}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
INTEGER_TEXT = re.compile(r"^\s*[-+]?\d+\s*$")
REPORT_LIMIT = 100


class Invalid(Exception):
    """A value does not fit a field; the message says why, fit to show."""


class FieldChangeRefused(Conflict):
    """A field change would leave existing values that do not fit: the report says which."""

    def __init__(self, message: str, report: dict[str, Any]):
        super().__init__(message)
        self.report = report


@contextlib.contextmanager
def plain_tenant() -> Iterator[None]:
    """Run with the current tenant id as a plain ``uuid.UUID``.

    A tenant being provisioned may have an id of a ``uuid.UUID`` subclass, which SQLite cannot
    bind in the tenancy criteria; the hooks that run while a tenant is created use this.
    """
    tenant_id = tenancy.get_tenant_id()
    if tenant_id is None or type(tenant_id) is uuid.UUID:
        yield
        return
    with tenancy.tenant_context(uuid.UUID(int=tenant_id.int), tenancy.current_actor_id()):
        yield


def entity_types() -> dict[str, type]:
    """The entity types that may have custom fields: every registered business entity.

    Built once per app (the models are registered at start-up): validation asks for it on
    every row written.
    """
    extensions = current_app.extensions
    types = extensions.get("tailormade.entity_types")
    if types is None:
        models = extensions["clientela"].models
        types = extensions["tailormade.entity_types"] = {
            name: model for name, model in sorted(models.items())
            if isinstance(model, type) and issubclass(model, Entity)
            and name not in INTERNAL_TABLES and not name.startswith("tailormade_")}
    return types


#: custom fields of the records of custom object ``vehicle`` have entity type ``custom:vehicle``
CUSTOM_PREFIX = "custom:"


class RecordsOf:
    """``CustomRecord`` seen as the entity type ``custom:<key>``: what the core's
    ``order_by`` and ``attribute_conditions`` need (a table, a type name, columns), so
    that custom objects filter and sort on their fields exactly as built-ins do."""

    def __init__(self, key: str, object_id: uuid.UUID):
        from clientela.plugins.tailormade.models import CustomRecord

        self.__tablename__ = f"{CUSTOM_PREFIX}{key}"
        self.__table__ = CustomRecord.__table__
        self.model = CustomRecord
        self.object_id = object_id

    def __getattr__(self, name: str):
        return getattr(self.model, name)

    def condition(self):
        return self.model.object_id == self.object_id


def custom_object_id(key: str) -> uuid.UUID | None:
    """The id of the current tenant's custom object ``key`` (read once per transaction)."""
    from clientela.plugins.tailormade.models import CustomObject

    cache = _transaction_cache("tailormade.objects")
    if key not in cache:  # only found ones are kept: an object may be created meanwhile
        found = db.session.execute(
            sa.select(CustomObject.id).where(CustomObject.key == key)).scalar_one_or_none()
        if found is None:
            return None
        cache[key] = found
    return cache[key]


def custom_object_key(object_id: uuid.UUID) -> str | None:
    from clientela.plugins.tailormade.models import CustomObject

    cache = _transaction_cache("tailormade.object_keys")
    if object_id not in cache:
        found = db.session.execute(
            sa.select(CustomObject.key).where(CustomObject.id == object_id)).scalar_one_or_none()
        if found is None:
            return None
        cache[object_id] = found
    return cache[object_id]


def model_for(entity_type: str):
    """The model holding entities of ``entity_type`` (``RecordsOf`` a custom object), with
    the condition selecting them (``None`` for built-ins); ``(None, None)`` if unknown."""
    if entity_type.startswith(CUSTOM_PREFIX):
        object_id = custom_object_id(entity_type[len(CUSTOM_PREFIX):])
        if object_id is None:
            return None, None
        records = RecordsOf(entity_type[len(CUSTOM_PREFIX):], object_id)
        return records.model, records.condition()
    return entity_types().get(entity_type), None


def known_entity_type(entity_type: str | None) -> bool:
    return bool(entity_type) and model_for(entity_type)[0] is not None


def entity_type_of(entity: Entity, table: str) -> str:
    """The custom-field entity type of ``entity``: its table, or ``custom:<key>``."""
    if table == CUSTOM_RECORDS:
        key = custom_object_key(entity.object_id)
        return f"{CUSTOM_PREFIX}{key}" if key else table
    return table


CUSTOM_RECORDS = "tailormade_custom_records"
_EVENT_TYPES = "tailormade.custom_entity_types"  # {record id: custom:<key>}, per transaction


def remember_event_type(change) -> None:
    """``clientela_entity_changed_precommit``: the ``custom:<key>`` type of a changed custom
    record, kept for the postcommit half (webhooks, rules), which must not read through the
    request's session."""
    if change.entity_type == CUSTOM_RECORDS and change.entity is not None:
        _transaction_cache(_EVENT_TYPES)[change.entity_id] = entity_type_of(
            change.entity, change.entity_type)


def event_type(change) -> str:
    """The entity type webhooks and automation rules see for ``change``: ``custom:<key>``
    for a record of a custom object, the table name for every other entity."""
    if change.entity_type != CUSTOM_RECORDS:
        return change.entity_type
    known = _transaction_cache(_EVENT_TYPES).get(change.entity_id)
    if known:
        return known
    object_id = (change.values or {}).get("object_id")  # a change no precommit saw
    if object_id:
        from sqlalchemy.orm import Session

        from clientela.plugins.tailormade.models import CustomObject

        with Session(db.engine) as session:
            key = session.execute(sa.select(CustomObject.key).where(
                CustomObject.id == uuid.UUID(str(object_id)))).scalar_one_or_none()
        if key:
            return f"{CUSTOM_PREFIX}{key}"
    return change.entity_type


def is_empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def definitions(entity_type: str) -> list[CustomField]:
    return list(db.session.execute(
        sa.select(CustomField).where(CustomField.entity_type == entity_type)
        .order_by(CustomField.position, CustomField.key)
    ).scalars())


def _transaction_cache(name: str) -> dict:
    """A dict kept in the session for the current transaction and tenant."""
    session = db.session()
    transaction = session.get_transaction()
    tenant_id = tenancy.current_tenant_id()
    cache = session.info.get(name)
    if cache is None or cache[0] is not transaction or cache[1] != tenant_id:
        cache = (transaction, tenant_id, {})
        session.info[name] = cache
    return cache[2]


def definitions_in_transaction(entity_type: str) -> list[CustomField]:
    """``definitions``, read once per transaction: validation runs for every row written
    (a bulk import validates each of its rows), and the definitions do not change under it."""
    cache = _transaction_cache("tailormade.definitions")
    if entity_type not in cache:
        cache[entity_type] = definitions(entity_type)
    return cache[entity_type]


# --- values --------------------------------------------------------------------------


def _decimal(value: Any) -> decimal.Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise Invalid("must be a number")
    try:
        number = decimal.Decimal(str(value).strip())
    except decimal.InvalidOperation:
        raise Invalid("must be a number") from None
    if not number.is_finite():
        raise Invalid("must be a finite number")
    return number


def _date(value: Any) -> dt.date:
    if not isinstance(value, str) or len(value) != 10:
        raise Invalid("must be a date as YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise Invalid("must be a date as YYYY-MM-DD") from None


def _datetime(value: Any) -> dt.datetime:
    if not isinstance(value, str) or len(value) < 16:
        raise Invalid("must be an ISO 8601 date and time with a time zone, e.g. "
                      "2026-11-23T09:30:00Z")
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise Invalid("must be an ISO 8601 date and time with a time zone, e.g. "
                      "2026-11-23T09:30:00Z") from None
    if moment.tzinfo is None:
        raise Invalid("must include a time zone, e.g. Z or +01:00")
    return moment


def _comparable(field: CustomField, value: Any) -> Any:
    """What ``min``/``max`` are compared with: the value, its length or its count."""
    if field.type == "integer":
        return value
    if field.type == "decimal":
        return _decimal(value)
    if field.type == "date":
        return _date(value)
    if field.type == "datetime":
        return _datetime(value)
    return len(value)


def _bounds_message(field: CustomField, bound: Any, which: str) -> str:
    word = "at least" if which == "min" else "at most"
    if field.type in VALUE_BOUNDED:
        return f"must be {word} {bound}"
    if field.type == "multiple_choice":
        return f"choose {word} {bound}"
    return f"must be {word} {bound} characters long"


def check_value(field: CustomField, value: Any) -> None:
    """Raise ``Invalid`` unless ``value`` (not empty) is a valid value of ``field``.

    References are checked for existence separately (``reference_exists``).
    """
    kind = field.type
    if kind in STRING_TYPES or kind in ("single_choice", "reference"):
        if not isinstance(value, str):
            raise Invalid("must be a string")
    if kind in STRING_TYPES and len(value) > MAX_LENGTH[kind]:
        raise Invalid(f"must be at most {MAX_LENGTH[kind]} characters long")
    if kind == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
        raise Invalid("must be a whole number")
    if kind == "decimal":
        _decimal(value)
    if kind == "boolean" and not isinstance(value, bool):
        raise Invalid("must be true or false")
    if kind == "date":
        _date(value)
    if kind == "datetime":
        _datetime(value)
    if kind == "single_choice" and value not in (field.choices or []):
        raise Invalid(f"must be one of {', '.join(field.choices or [])}")
    if kind == "multiple_choice":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise Invalid("must be a list of strings")
        unknown = [v for v in value if v not in (field.choices or [])]
        if unknown:
            raise Invalid(f"'{unknown[0]}' is not one of {', '.join(field.choices or [])}")
        if len(set(value)) != len(value):
            raise Invalid("must not repeat a choice")
    if kind == "email" and not EMAIL.match(value):
        raise Invalid("must be an e-mail address")
    if kind == "url":
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise Invalid("must be an http or https URL")
    if kind == "phone":
        try:
            number = phonenumbers.parse(value, None)
            ok = phonenumbers.is_valid_number(number)
        except phonenumbers.NumberParseException:
            ok = False
        if not ok:
            raise Invalid("must be a phone number in E.164 form, e.g. +390612345678")
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if e164 != value:
            raise Invalid(f"must be written in E.164 form: {e164}")
    if kind == "reference":
        try:
            uuid.UUID(value)
        except ValueError:
            raise Invalid("must be the id of a record") from None
    if kind in BOUNDED:
        measure = _comparable(field, value)
        for which, bound in (("min", field.min_value), ("max", field.max_value)):
            if bound is None:
                continue
            limit = _comparable_bound(field, bound)
            if (which == "min" and measure < limit) or (which == "max" and measure > limit):
                raise Invalid(_bounds_message(field, bound, which))
    if field.pattern and kind in STRING_TYPES:
        if len(value) > patterns.MAX_CHECKED_LENGTH:  # bounds the time a pattern may take
            raise Invalid(f"is too long to check against the pattern (at most "
                          f"{patterns.MAX_CHECKED_LENGTH} characters)")
        if not patterns.matches(field.pattern, value):
            raise Invalid(f"must match the pattern {field.pattern}")


def _comparable_bound(field: CustomField, bound: Any) -> Any:
    if field.type == "decimal":
        return _decimal(bound)
    if field.type == "date":
        return _date(bound)
    if field.type == "datetime":
        return _datetime(bound)
    return bound


def reference_exists(field: CustomField, value: str) -> bool:
    model, condition = model_for(field.target or "")
    if model is None:
        return False
    stmt = sa.select(model.id).where(model.id == uuid.UUID(value)).limit(1)
    if condition is not None:
        stmt = stmt.where(condition)
    return db.session.execute(stmt).first() is not None


def convert(field: CustomField, value: Any) -> Any:
    """``value`` (of any earlier type) as a value of ``field``'s type; ``Invalid`` if it
    cannot be converted without losing anything."""
    kind = field.type
    if kind in STRING_TYPES or kind in ("single_choice", "reference"):
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return str(value)
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
            return value[0]
        if not isinstance(value, str):
            raise Invalid("a list or an object cannot become a single value")
        return value
    if kind == "integer":
        if isinstance(value, bool):
            raise Invalid("true/false cannot become a number")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and INTEGER_TEXT.match(value):
            return int(value)
        number = _decimal(value)
        if number != number.to_integral_value():
            raise Invalid(f"{value} is not a whole number")
        return int(number)
    if kind == "decimal":
        _decimal(value)
        return value.strip() if isinstance(value, str) else value
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        truth = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
        if text not in truth:
            raise Invalid(f"'{value}' is not true or false")
        return truth[text]
    if kind == "datetime" and isinstance(value, str) and len(value) == 10:
        return f"{_date(value).isoformat()}T00:00:00Z"
    if kind == "multiple_choice" and isinstance(value, str):
        return [value]
    return value


# --- the validate and precommit hooks -----------------------------------------------


def validate(entity: Entity, change) -> dict[str, list[str]] | None:
    """``clientela_validate``: the custom fields of an inserted or updated entity."""
    if change.operation == "update" and "attributes" not in change.changes:
        return None
    entity_type = entity_type_of(entity, change.entity_type)
    if entity_type not in entity_types() and not entity_type.startswith(CUSTOM_PREFIX):
        return None
    fields = definitions_in_transaction(entity_type)
    if not fields:
        return None
    attributes = entity.attributes or {}
    # a bulk import validates a transient entity and writes without the precommit hooks,
    # so no default would be written: a required value must then be in the file
    defaults_apply = change.operation == "insert" and sa.inspect(entity).persistent
    before = {}
    if change.operation == "update":
        before = change.changes["attributes"][0] or {}
    errors: dict[str, list[str]] = {}
    for field in fields:
        value = attributes.get(field.key)
        if change.operation == "update" and value == before.get(field.key):
            continue  # unchanged: records older than a rule stay writable
        name = f"attributes.{field.key}"
        if is_empty(value):
            if field.required and (field.default_value is None or not defaults_apply):
                errors[name] = ["is required"]
            continue
        try:
            check_value(field, value)
            if field.type == "reference" and not reference_exists(field, value):
                raise Invalid(f"no {field.target} record with this id")
            if field.is_unique and _taken(entity_type, field, value, entity.id):
                raise Invalid("is already used by another record")
        except Invalid as exc:
            errors[name] = [str(exc)]
    return errors or None


def _as_query_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _taken(entity_type: str, field: CustomField, value: Any, own_id) -> bool:
    model, among = model_for(entity_type)
    condition = customers.attribute_condition(model, field.key, _as_query_text(value),
                                              QUERY_TYPE[field.type])
    stmt = sa.select(model.id).where(condition).limit(1)
    if among is not None:
        stmt = stmt.where(among)
    if own_id is not None:
        stmt = stmt.where(model.id != own_id)
    return db.session.execute(stmt).first() is not None


def apply_defaults(change) -> None:
    """``clientela_entity_changed_precommit``: write the defaults of fields an insert left empty.

    The row is already flushed, so the defaults are written with one UPDATE statement and
    an audit event of their own; the change's ``values`` (what postcommit hooks and
    webhooks read) include them.
    """
    entity = change.entity
    if change.operation != "insert" or entity is None:
        return
    entity_type = entity_type_of(entity, change.entity_type)
    if entity_type not in entity_types() and not entity_type.startswith(CUSTOM_PREFIX):
        return
    attributes = dict(entity.attributes or {})
    missing = {field.key: field.default_value for field in definitions(entity_type)
               if field.default_value is not None and is_empty(attributes.get(field.key))}
    if not missing:
        return
    merged = {**attributes, **missing}
    model = type(entity)
    db.session.execute(
        sa.update(model).where(model.id == entity.id).values(attributes=merged)
        .execution_options(synchronize_session=False)
    )
    set_committed_value(entity, "attributes", merged)
    change.values = {**change.values, "attributes": json_safe(merged)}
    change.changes = {**change.changes, "attributes": [None, json_safe(merged)]}
    db.session.add(AuditEvent(
        actor_id=tenancy.current_actor_id(), action="update", entity_type=change.entity_type,
        entity_id=entity.id, origin=tenancy.current_origin(),
        changes={"attributes": [json_safe(attributes), json_safe(merged)]},
    ))


def attribute_types(entity_type: str) -> dict[str, str] | None:
    """``clientela_attribute_types``: how the core compares each custom field."""
    if entity_type not in entity_types() and not entity_type.startswith(CUSTOM_PREFIX):
        return None
    # asked on every list request that filters or sorts: kept a few seconds per process
    # (a change made here clears it at once; one made by another process is seen after
    # TYPES_TTL at most, filters comparing as text meanwhile)
    cache_key = (id(current_app._get_current_object()), tenancy.current_tenant_id(),
                 entity_type)
    cached = _TYPES.get(cache_key)
    now = time.monotonic()
    if cached is not None and cached[0] > now:
        return cached[1]
    rows = db.session.execute(sa.select(CustomField.key, CustomField.type).where(
        CustomField.entity_type == entity_type)).all()
    types = {key: QUERY_TYPE[type_] for key, type_ in rows}
    if len(_TYPES) > 10_000:
        _TYPES.clear()
    _TYPES[cache_key] = (now + TYPES_TTL, types)
    return types


TYPES_TTL = 5.0
_TYPES: dict[tuple, tuple[float, dict[str, str]]] = {}


def forget_types() -> None:
    """Drop the cached attribute types (a definition changed)."""
    _TYPES.clear()


# --- expression indexes -----------------------------------------------------------------

#: query types whose expression PostgreSQL can index (a cast to timestamptz depends on
#: the session's time zone, so datetime is not; lists would need GIN)
INDEXED_TYPES = frozenset({"text", "integer", "decimal", "boolean", "date"})


def index_name(table: str, key: str, query_type: str) -> str:
    name = f"ix_attr_{table}_{key}_{query_type}".replace(":", "_")
    if len(name) > 63:
        digest = hashlib.sha1(name.encode()).hexdigest()[:10]
        name = f"{name[:52]}_{digest}"
    return name


def index_statement(entity_type: str, key: str, field_type: str) -> str | None:
    """``CREATE INDEX`` for filters on ``attributes[key]`` of ``entity_type`` (PostgreSQL's
    ``->>``, SQLite's ``json_extract``: both index expressions).

    The indexed expression is the core's own ``attribute_expression``, compiled, so that
    the ``attr.<key>`` filters of the list endpoints match it; ``tenant_id`` leads, as
    every query carries it. One index serves every tenant with a field of that key and
    type on that table.
    """
    query_type = QUERY_TYPE.get(field_type)
    if db.engine.dialect.name not in ("postgresql", "sqlite") or query_type not in INDEXED_TYPES:
        return None
    model = model_for(entity_type)[0]
    if model is None:
        return None
    expression = customers.attribute_expression(model, key, query_type)
    sql = str(expression.compile(dialect=db.engine.dialect,
                                 compile_kwargs={"literal_binds": True}))
    table = model.__tablename__
    sql = sql.replace(f"{table}.attributes", "attributes")
    return (f'CREATE INDEX IF NOT EXISTS "{index_name(table, key, query_type)}" '
            f"ON {table} (tenant_id, ({sql}))")


def ensure_index(entity_type: str, key: str, field_type: str) -> str | None:
    """Create the expression index of a field if it is missing; its name, or ``None``.

    Runs in a savepoint: where the application's database role may not create indexes
    (the hosted profile's role owns no table), the field is still saved and a warning
    says to run ``clientela customizations indexes`` as the owner.
    """
    statement = index_statement(entity_type, key, field_type)
    if statement is None:
        return None
    try:
        with db.session.begin_nested():
            db.session.execute(sa.text(statement))
    except sa.exc.DBAPIError as exc:
        log.warning("no index for %s.%s (%s); run 'clientela customizations indexes' as the "
                    "database owner", entity_type, key, str(exc.orig).strip().splitlines()[0])
        return None
    return statement.split('"')[1]


# --- definitions: create, change, delete ----------------------------------------------

EDITABLE = ("label", "description", "type", "required", "is_unique", "default_value",
            "choices", "min_value", "max_value", "pattern", "target", "position")


@dataclasses.dataclass
class Proposal:
    """A field definition not yet written: what ``check_definition`` looks at."""

    entity_type: str
    key: str
    type: str
    label: str = ""
    description: str = ""
    required: bool = False
    is_unique: bool = False
    default_value: Any = None
    choices: list = dataclasses.field(default_factory=list)
    min_value: Any = None
    max_value: Any = None
    pattern: str | None = None
    target: str | None = None
    position: int = 0


def check_definition(field: Proposal) -> None:
    """Raise ``ValidationError`` (per input field) when the definition is inconsistent."""
    errors: dict[str, list[str]] = {}
    types = entity_types()
    if not known_entity_type(field.entity_type):
        errors["entity_type"] = [f"unknown entity type; use one of {', '.join(types)}, "
                                 f"or {CUSTOM_PREFIX}<key> of a custom object"]
    if not KEY.match(field.key or ""):
        errors["key"] = ["use a lower-case letter, then lower-case letters, digits or _ "
                         "(at most 63)"]
    if field.type not in FIELD_TYPES:
        errors["type"] = [f"must be one of {', '.join(FIELD_TYPES)}"]
        raise ValidationError(errors)
    if field.type in CHOICE_TYPES:
        choices = field.choices or []
        if not choices or not all(isinstance(c, str) and 0 < len(c) <= 200 for c in choices):
            errors["choices"] = ["give the choices: a list of strings of 1 to 200 characters"]
        elif len(set(choices)) != len(choices):
            errors["choices"] = ["a choice is repeated"]
    elif field.choices:
        errors["choices"] = [f"only choice fields have choices, not {field.type}"]
    if field.type == "reference":
        if not known_entity_type(field.target):
            errors["target"] = [f"name the entity type referenced: one of {', '.join(types)}, "
                                f"or {CUSTOM_PREFIX}<key> of a custom object"]
    elif field.target:
        errors["target"] = ["only reference fields have a target"]
    if field.pattern is not None:
        if field.type not in STRING_TYPES:
            errors["pattern"] = [f"only text fields have a pattern, not {field.type}"]
        else:
            refused = patterns.problem(field.pattern)
            if refused:
                errors["pattern"] = [refused]
    for name, bound in (("min", field.min_value), ("max", field.max_value)):
        if bound is None:
            continue
        if field.type not in BOUNDED:
            errors[name] = [f"{field.type} fields have no {name}"]
            continue
        try:
            if field.type in VALUE_BOUNDED:
                if field.type == "integer" and (isinstance(bound, bool)
                                                or not isinstance(bound, int)):
                    raise Invalid("must be a whole number")
                _comparable_bound(field, bound)
            elif isinstance(bound, bool) or not isinstance(bound, int) or bound < 0:
                raise Invalid("must be a whole number >= 0 (a length or a count)")
        except Invalid as exc:
            errors[name] = [str(exc)]
    if "min" not in errors and "max" not in errors and None not in (field.min_value,
                                                                     field.max_value):
        if _comparable_bound(field, field.min_value) > _comparable_bound(field, field.max_value):
            errors["max"] = ["must not be below min"]
    if field.default_value is not None and not errors:
        if field.is_unique:
            errors["default"] = ["a unique field cannot have a default"]
        else:
            try:
                check_value(field, field.default_value)  # type: ignore[arg-type]
                if field.type == "reference" and not reference_exists(field,  # type: ignore
                                                                      field.default_value):
                    raise Invalid(f"no {field.target} record with this id")
            except Invalid as exc:
                errors["default"] = [str(exc)]
    if errors:
        raise ValidationError(errors)


def _proposal(field: CustomField, changes: dict[str, Any]) -> Proposal:
    values = {name: getattr(field, name) for name in EDITABLE}
    values.update(changes)
    return Proposal(entity_type=field.entity_type, key=field.key, **values)


def existing_values(entity_type: str, key: str) -> list[Entity]:
    """The entities of ``entity_type`` whose ``attributes`` hold ``key`` (not null)."""
    model, among = model_for(entity_type)
    expression = customers.attribute_expression(model, key)
    stmt = sa.select(model).where(expression.is_not(None)).order_by(model.id)
    if among is not None:
        stmt = stmt.where(among)
    return list(db.session.execute(stmt).scalars())


def review(field: Proposal) -> tuple[dict[str, Any], dict[uuid.UUID, Any]]:
    """Check the stored values of ``field.key`` against the proposed definition.

    Returns the report and ``{entity id: converted value}`` of the values that change form.
    """
    problems: list[dict[str, Any]] = []
    converted: dict[uuid.UUID, Any] = {}
    seen: dict[str, uuid.UUID] = {}
    records = existing_values(field.entity_type, field.key)
    refused = 0
    for entity in records:
        value = entity.attributes.get(field.key)
        if is_empty(value):
            continue
        try:
            new = convert(field, value)  # type: ignore[arg-type]
            check_value(field, new)  # type: ignore[arg-type]
            if field.type == "reference" and not reference_exists(field, new):  # type: ignore
                raise Invalid(f"no {field.target} record with this id")
            if field.is_unique:
                text = _as_query_text(new)
                if text in seen:
                    raise Invalid(f"the same value as {seen[text]}: the field cannot be unique")
                seen[text] = entity.id
        except Invalid as exc:
            refused += 1
            if len(problems) < REPORT_LIMIT:
                problems.append({"id": str(entity.id), "value": json_safe(value),
                                 "error": str(exc)})
            continue
        if new != value or type(new) is not type(value):
            converted[entity.id] = new
    report = {"entity_type": field.entity_type, "key": field.key, "records": len(records),
              "converted": len(converted), "refused": refused, "problems": problems}
    return report, converted


def _refuse_if_needed(report: dict[str, Any]) -> None:
    if report["refused"]:
        raise FieldChangeRefused(
            f"{report['refused']} existing value(s) of '{report['key']}' in "
            f"{report['entity_type']} do not fit the field: nothing was changed", report)


def _rewrite(entity_type: str, key: str, converted: dict[uuid.UUID, Any]) -> None:
    """Store the converted values (through the ORM: audited, validated, announced)."""
    if not converted:
        return
    model = model_for(entity_type)[0]
    for entity in db.session.execute(
            sa.select(model).where(model.id.in_(list(converted)))).scalars():
        entity.attributes = {**entity.attributes, key: converted[entity.id]}
    db.session.flush()


def list_fields(principal: Principal, entity_type: str | None = None) -> list[CustomField]:
    access.require(principal, "customization:read")
    stmt = sa.select(CustomField).order_by(CustomField.entity_type, CustomField.position,
                                           CustomField.key)
    if entity_type:
        stmt = stmt.where(CustomField.entity_type == entity_type)
    return list(db.session.execute(stmt).scalars())


def get_field(principal: Principal, field_id: uuid.UUID) -> CustomField:
    access.require(principal, "customization:read")
    field = db.session.execute(
        sa.select(CustomField).where(CustomField.id == field_id)).scalar_one_or_none()
    if field is None:
        raise NotFound("custom field not found")
    return field


def create_field(principal: Principal, data: dict[str, Any]) -> tuple[CustomField, dict]:
    """Define a field; existing values under its key must fit it (else ``FieldChangeRefused``)."""
    access.require(principal, "customization:write")
    proposal = Proposal(**data)
    check_definition(proposal)
    taken = db.session.execute(sa.select(CustomField.id).where(
        CustomField.entity_type == proposal.entity_type, CustomField.key == proposal.key)).first()
    if taken:
        raise Conflict(f"{proposal.entity_type} already has a field '{proposal.key}'")
    report, converted = review(proposal)
    _refuse_if_needed(report)
    field = CustomField(**dataclasses.asdict(proposal))
    db.session.add(field)
    db.session.flush()
    _rewrite(field.entity_type, field.key, converted)
    ensure_index(field.entity_type, field.key, field.type)
    forget_types()
    return field, report


def update_field(principal: Principal, field_id: uuid.UUID, changes: dict[str, Any],
                 dry_run: bool = False) -> tuple[CustomField, dict]:
    """Change a field; values that cannot be converted refuse the change with a report.

    Convertible values are rewritten in the new form (e.g. ``"42"`` to ``42``), through
    the ORM, so the rewrite is audited. ``dry_run`` returns the report, writing nothing.
    """
    field = get_field(principal, field_id)
    access.require(principal, "customization:write")
    proposal = _proposal(field, changes)
    check_definition(proposal)
    report, converted = review(proposal)
    if dry_run:
        return field, report
    _refuse_if_needed(report)
    for name, value in changes.items():
        setattr(field, name, value)
    db.session.flush()
    _rewrite(field.entity_type, field.key, converted)
    if "type" in changes:
        ensure_index(field.entity_type, field.key, field.type)
    forget_types()
    return field, report


def delete_field(principal: Principal, field_id: uuid.UUID, purge: bool = False) -> int:
    """Remove a field. Its values stay in ``attributes`` (unchecked) unless ``purge``,
    which removes them from every record (audited); returns how many were purged."""
    field = get_field(principal, field_id)
    access.require(principal, "customization:write")
    purged = 0
    if purge:
        for entity in existing_values(field.entity_type, field.key):
            entity.attributes = {k: v for k, v in entity.attributes.items() if k != field.key}
            purged += 1
    db.session.delete(field)
    db.session.flush()
    forget_types()
    return purged
