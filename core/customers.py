"""Customer services beyond creation: list and search, update, delete, interactions,
the 360° profile, duplicates and merge, and data-subject export and erasure.

Every function runs in the current tenant and takes the acting ``Principal`` where record
scope applies; none needs a request.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from flask import current_app

from clientela.core import access, services
from clientela.core.access import Principal
from clientela.core.db import db
from clientela.core.errors import Forbidden, NotFound, ValidationError
from clientela.core.events import json_safe
from clientela.core.models import (
    CUSTOMER_KINDS,
    LIFECYCLE_STAGES,
    AuditEvent,
    Customer,
    Interaction,
    User,
)

SORTABLE = {"display_name", "created_at", "updated_at", "stage", "email", "kind"}
PERSONAL_FIELDS = ("first_name", "last_name", "organisation_name", "email", "phone", "website",
                   "external_id")
ERASED_NAME = "Erased customer"


def _hook():
    return current_app.extensions["clientela"].hook


# --- reading -------------------------------------------------------------------


def _tag_condition(tag: str):
    if db.engine.dialect.name == "postgresql":
        return sa.type_coerce(Customer.tags, postgresql.JSONB).contains([tag])
    each = sa.func.json_each(Customer.tags).table_valued("value")
    return sa.exists(sa.select(1).select_from(each).where(each.c.value == tag))


def _search_condition(stmt, q: str):
    from clientela.core import search

    return search.filter_customers(stmt, q)


def customers_query(principal: Principal, *, q: str | None = None, stage: str | None = None,
                    owner_id: uuid.UUID | None = None, tag: str | None = None,
                    kind: str | None = None, updated_since: dt.datetime | None = None,
                    organisation_id: uuid.UUID | None = None,
                    attributes: Mapping[str, str] | None = None):
    """The select of the customers ``principal`` may read, filtered.

    ``attributes`` filters on custom attributes: ``{"vat_number": "IT123",
    "score.gte": "10"}`` (see ``attribute_condition``).
    """
    stmt = access.scope_filter(db.select(Customer), Customer.owner_id, principal, "customers:read")
    if stage:
        stmt = stmt.where(Customer.stage == stage)
    if kind:
        stmt = stmt.where(Customer.kind == kind)
    if owner_id:
        stmt = stmt.where(Customer.owner_id == owner_id)
    if organisation_id:
        stmt = stmt.where(Customer.organisation_id == organisation_id)
    if tag:
        stmt = stmt.where(_tag_condition(tag))
    if updated_since:
        stmt = stmt.where(Customer.updated_at >= updated_since)
    if q and q.strip():
        stmt = _search_condition(stmt, q.strip())
    if attributes:
        stmt = stmt.where(*attribute_conditions(Customer, attributes))
    return stmt


def order_by(stmt, model, sort: str | None, allowed: set[str], default: str):
    """Apply ``sort`` ("name,-updated_at"); ``id`` always breaks ties, so pages are stable."""
    keys = []
    types = None
    for part in (sort or default).split(","):
        part = part.strip()
        if not part:
            continue
        name = part.lstrip("-")
        if name.startswith(ATTRIBUTE_PREFIX) and "attributes" in model.__table__.c:
            # a custom attribute, typed by the plugins; entities without it sort last
            key = name[len(ATTRIBUTE_PREFIX):]
            if types is None:
                types = attribute_types(model.__tablename__)
            expression = attribute_expression(model, key, types.get(key, "text"), "sort")
            keys.append((expression.desc() if part.startswith("-") else expression.asc())
                        .nulls_last())
            continue
        if name not in allowed:
            raise ValidationError({"sort": [f"cannot sort by '{name}'; use {', '.join(sorted(allowed))}"]},
                                  message="Invalid query.")
        column = getattr(model, name)
        keys.append(column.desc() if part.startswith("-") else column.asc())
    return stmt.order_by(*keys, model.id)


# --- custom attributes: filter and sort on keys of ``attributes`` -------------------

#: query parameters ``attr.<key>[.<operator>]`` filter, ``sort=attr.<key>`` sorts
ATTRIBUTE_PREFIX = "attr."
ATTRIBUTE_TYPES = ("text", "integer", "decimal", "boolean", "date", "datetime", "list")
ATTRIBUTE_OPERATORS = {"eq": "__eq__", "gt": "__gt__", "gte": "__ge__", "lt": "__lt__",
                       "lte": "__le__"}
_ATTRIBUTE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_PG_NUMBER = r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"
_PG_TIMESTAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}|$)"


def attribute_types(entity_type: str) -> dict[str, str]:
    """The types of the custom attributes of ``entity_type``, from the plugins."""
    types: dict[str, str] = {}
    for answer in _hook().clientela_attribute_types(entity_type=entity_type):
        for key, type_ in (answer or {}).items():
            if type_ in ATTRIBUTE_TYPES:
                types.setdefault(key, type_)
    return types


def _attribute_key(key: str, parameter: str) -> str:
    if not _ATTRIBUTE_KEY.match(key):
        raise ValidationError({"query": {parameter: [
            "an attribute key is a letter or _ followed by letters, digits or _"]}},
            message="Invalid query.")
    return key


def attribute_expression(model, key: str, type_: str = "text", parameter: str = "attr"):
    """The SQL value of ``model.attributes[key]`` as ``type_``: NULL when the key is absent.

    PostgreSQL reads ``attributes ->> 'key'`` (a value that does not fit the type reads as
    NULL instead of failing the query); SQLite reads ``json_extract``. The key is checked
    and written into the SQL, so that an expression index on it can serve the query.
    """
    key = _attribute_key(key, parameter)
    column = model.__table__.c.attributes
    if db.engine.dialect.name == "postgresql":
        document = sa.type_coerce(column, postgresql.JSONB)
        text = document.op("->>", return_type=sa.Text)(sa.literal_column(f"'{key}'"))
        # the patterns are written into the SQL (not bound) so that an expression index
        # built from this same expression can serve the query
        if type_ in ("integer", "decimal"):
            return sa.case((text.regexp_match(sa.literal_column(f"'{_PG_NUMBER}'")),
                            sa.cast(text, sa.Numeric)))
        if type_ == "datetime":
            return sa.case((text.regexp_match(sa.literal_column(f"'{_PG_TIMESTAMP}'")),
                            sa.cast(text, sa.DateTime(timezone=True))))
        return text
    raw = sa.func.json_extract(column, sa.literal_column(f"'$.{key}'"))
    if type_ == "integer":
        return sa.cast(raw, sa.Integer)
    if type_ == "decimal":
        return sa.cast(raw, sa.Float)
    if type_ == "datetime":
        return sa.func.strftime("%Y-%m-%d %H:%M:%f", raw)
    if type_ in ("boolean", "date"):
        return raw
    return sa.cast(raw, sa.Text)


def _attribute_value(type_: str, value: str, parameter: str, dialect: str) -> Any:
    """The query string ``value`` as the SQL value ``attribute_expression`` compares with."""
    try:
        if type_ == "integer":
            return int(value)
        if type_ == "decimal":
            number = decimal.Decimal(value)
            if not number.is_finite():
                raise ValueError(value)
            return float(number) if dialect == "sqlite" else number
        if type_ == "boolean":
            truth = {"true": True, "1": True, "false": False, "0": False}[value.lower()]
            return ("true" if truth else "false") if dialect == "postgresql" else int(truth)
        if type_ == "date":
            return dt.date.fromisoformat(value).isoformat()
        if type_ == "datetime":
            moment = dt.datetime.fromisoformat(value)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.timezone.utc)
            moment = moment.astimezone(dt.timezone.utc)
            if dialect == "postgresql":
                return moment
            return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
    except (ValueError, KeyError, decimal.InvalidOperation):
        raise ValidationError({"query": {parameter: [f"'{value}' is not a valid {type_}"]}},
                              message="Invalid query.") from None
    return value


def attribute_condition(model, key: str, value: str, type_: str = "text", operator: str = "eq",
                        parameter: str | None = None):
    """``model.attributes[key] <operator> value``, compared as ``type_``.

    ``value`` is the text of a query parameter; a ``list`` attribute matches when one of
    its elements equals it (only ``eq``). Raises ``ValidationError`` for a value that is
    not of the type or an unknown operator.
    """
    parameter = parameter or f"{ATTRIBUTE_PREFIX}{key}"
    if operator not in ATTRIBUTE_OPERATORS or (type_ == "list" and operator != "eq"):
        allowed = "eq" if type_ == "list" else ", ".join(ATTRIBUTE_OPERATORS)
        raise ValidationError({"query": {parameter: [f"unknown operator '{operator}'; use "
                                                     f"{allowed}"]}}, message="Invalid query.")
    dialect = db.engine.dialect.name
    if type_ == "list":
        key = _attribute_key(key, parameter)
        column = model.__table__.c.attributes
        if dialect == "postgresql":
            element = sa.type_coerce(column, postgresql.JSONB).op(
                "->", return_type=postgresql.JSONB)(sa.literal_column(f"'{key}'"))
            return element.op("@>", return_type=sa.Boolean)(sa.func.jsonb_build_array(value))
        each = sa.func.json_each(column, sa.literal_column(f"'$.{key}'")).table_valued("value")
        return sa.exists(sa.select(1).select_from(each).where(each.c.value == value))
    expression = attribute_expression(model, key, type_, parameter)
    bound = _attribute_value(type_, value, parameter, dialect)
    return getattr(expression, ATTRIBUTE_OPERATORS[operator])(bound)


def attribute_conditions(model, filters: Mapping[str, str]) -> list:
    """Conditions for ``{"<key>[.<operator>]": value}``, typed by ``clientela_attribute_types``."""
    types = attribute_types(model.__tablename__)
    conditions = []
    for spec, value in filters.items():
        key, _, operator = spec.partition(".")
        conditions.append(attribute_condition(model, key, value, types.get(key, "text"),
                                              operator or "eq", f"{ATTRIBUTE_PREFIX}{spec}"))
    return conditions


def attribute_filters(args: Mapping[str, str]) -> dict[str, str]:
    """The ``attr.<key>[.<operator>]`` parameters of a query string, without the prefix."""
    return {name[len(ATTRIBUTE_PREFIX):]: value for name, value in args.items()
            if name.startswith(ATTRIBUTE_PREFIX)}


def page(stmt, page_number: int, page_size: int) -> tuple[list, int]:
    total = db.session.execute(
        sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery())
    ).scalar_one()
    items = db.session.execute(
        stmt.limit(page_size).offset((page_number - 1) * page_size)
    ).scalars().all()
    return items, total


def paginated(stmt, pagination_parameters) -> list:
    """One page of ``stmt`` for a flask-smorest ``@paginate()`` view; sets its item count."""
    items, total = page(stmt, pagination_parameters.page, pagination_parameters.page_size)
    pagination_parameters.item_count = total
    return items


def get_customer(customer_id: uuid.UUID, principal: Principal, permission: str = "customers:read"
                 ) -> Customer:
    """A customer ``principal`` may read (404 otherwise, whatever the reason)."""
    stmt = customers_query(principal).where(Customer.id == customer_id)
    customer = db.session.execute(stmt).scalar_one_or_none()
    if customer is None:
        raise NotFound("customer not found")
    if permission != "customers:read":
        access.check_record(customer.owner_id, principal, "customers:read", permission)
    return customer


# --- writing -------------------------------------------------------------------


def _check_references(data: dict[str, Any], principal: Principal, self_id=None) -> None:
    errors = {}
    if data.get("owner_id") is not None:
        owner = db.session.execute(
            db.select(User.id).where(User.id == data["owner_id"], User.is_active.is_(True))
        ).first()
        if owner is None:
            errors["owner_id"] = ["no active user with this id"]
        elif principal.scope("customers:write") == "own" and data["owner_id"] != principal.user_id:
            raise Forbidden("you may only assign customers to yourself")
    if data.get("organisation_id") is not None:
        org = db.session.execute(
            db.select(Customer.kind).where(Customer.id == data["organisation_id"])
        ).scalar_one_or_none()
        if org != "organisation" or data["organisation_id"] == self_id:
            errors["organisation_id"] = ["no organisation with this id"]
    if errors:
        raise ValidationError(errors)


def create(data: dict[str, Any], principal: Principal) -> Customer:
    access.require(principal, "customers:write")
    data = dict(data)
    data.setdefault("owner_id", principal.user_id)
    _check_references(data, principal)
    return services.create_customer(
        data, phone_region=current_app.config.get("PHONE_DEFAULT_REGION")
    )


def update(customer_id: uuid.UUID, data: dict[str, Any], principal: Principal) -> Customer:
    customer = get_customer(customer_id, principal, "customers:write")
    _check_references(data, principal, self_id=customer.id)
    errors: dict[str, list[str]] = {}
    region = current_app.config.get("PHONE_DEFAULT_REGION")
    for field, value in data.items():
        try:
            if field == "email":
                value = services.normalise_email(value)
            elif field == "phone":
                value = services.normalise_phone(value, region)
        except ValidationError as exc:
            errors.update(exc.errors)
            continue
        if field == "kind" and value not in CUSTOMER_KINDS:
            errors["kind"] = [f"must be one of {', '.join(CUSTOMER_KINDS)}"]
        if field == "stage" and value not in LIFECYCLE_STAGES:
            errors["stage"] = [f"must be one of {', '.join(LIFECYCLE_STAGES)}"]
        setattr(customer, field, value)
    if errors:
        db.session.rollback()
        raise ValidationError(errors)
    if {"first_name", "last_name", "organisation_name", "kind"} & set(data) or not data.get(
        "display_name", True
    ):
        values = {f: getattr(customer, f) for f in ("first_name", "last_name",
                                                     "organisation_name", "email")}
        customer.display_name = services._display_name(customer.kind, values) or customer.display_name
    db.session.flush()
    return customer


def delete(customer_id: uuid.UUID, principal: Principal) -> None:
    customer = get_customer(customer_id, principal, "customers:delete")
    db.session.execute(
        sa.update(Customer).where(Customer.organisation_id == customer.id)
        .values(organisation_id=None)
    )
    db.session.delete(customer)
    db.session.flush()


# --- interactions --------------------------------------------------------------


def interactions_query(principal: Principal, customer_id: uuid.UUID | None = None,
                       channel: str | None = None, since: dt.datetime | None = None):
    access.require(principal, "interactions:read")
    visible = customers_query(principal).with_only_columns(Customer.id)
    stmt = db.select(Interaction).where(Interaction.customer_id.in_(visible))
    if customer_id:
        stmt = stmt.where(Interaction.customer_id == customer_id)
    if channel:
        stmt = stmt.where(Interaction.channel == channel)
    if since:
        stmt = stmt.where(Interaction.occurred_at >= since)
    return stmt


def get_interaction(interaction_id: uuid.UUID, principal: Principal) -> Interaction:
    stmt = interactions_query(principal).where(Interaction.id == interaction_id)
    interaction = db.session.execute(stmt).scalar_one_or_none()
    if interaction is None:
        raise NotFound("interaction not found")
    return interaction


def record_interaction(customer_id: uuid.UUID, data: dict[str, Any], principal: Principal
                       ) -> Interaction:
    get_customer(customer_id, principal)
    access.require(principal, "interactions:write")
    data = dict(data)
    data.setdefault("user_id", principal.user_id)
    channel = data.pop("channel")
    return services.record_interaction(customer_id, channel, **data)


# --- profile, export, erase -----------------------------------------------------


def customer_data(customer: Customer) -> dict[str, Any]:
    data = {attr.key: json_safe(getattr(customer, attr.key))
            for attr in sa.inspect(Customer).column_attrs if attr.key != "tenant_id"}
    return data


def profile(customer_id: uuid.UUID, principal: Principal) -> dict[str, Any]:
    """The 360° view: core data, organisation, contacts, interactions, and plugins' sections."""
    customer = get_customer(customer_id, principal)
    result: dict[str, Any] = {"customer": customer, "sections": []}
    if customer.organisation_id:
        org = db.session.execute(customers_query(principal).where(
            Customer.id == customer.organisation_id)).scalar_one_or_none()
        result["organisation"] = (
            {"id": str(org.id), "display_name": org.display_name} if org else None
        )
    if customer.kind == "organisation":
        contacts = db.session.execute(
            customers_query(principal, organisation_id=customer.id).order_by(Customer.display_name)
            .limit(50)
        ).scalars()
        result["contacts"] = [{"id": str(c.id), "display_name": c.display_name} for c in contacts]
    if principal.can("interactions:read"):
        stmt = interactions_query(principal, customer_id=customer.id)
        count = db.session.execute(
            sa.select(sa.func.count()).select_from(stmt.subquery())
        ).scalar_one()
        recent = db.session.execute(
            stmt.order_by(Interaction.occurred_at.desc()).limit(10)
        ).scalars()
        result["interactions"] = {
            "count": count,
            "recent": [interaction_data(i) for i in recent],
        }
    for answer in _hook().clientela_customer_profile(customer=customer):
        # a plugin answers one section, or a list of them
        for section in answer if isinstance(answer, list) else [answer]:
            if section:
                result["sections"].append(json_safe(section))
    return result


def interaction_data(interaction: Interaction) -> dict[str, Any]:
    return {attr.key: json_safe(getattr(interaction, attr.key))
            for attr in sa.inspect(Interaction).column_attrs if attr.key != "tenant_id"}


def export(customer_id: uuid.UUID, principal: Principal) -> dict[str, Any]:
    """Everything held about the customer (data-subject access request). Audited."""
    access.require(principal, "customers:export")
    customer = get_customer(customer_id, principal)
    interactions = db.session.execute(
        db.select(Interaction).where(Interaction.customer_id == customer.id)
        .order_by(Interaction.occurred_at)
    ).scalars()
    result = {
        "customer": customer_data(customer),
        "interactions": [interaction_data(i) for i in interactions],
        "plugins": {},
    }
    for answer in _hook().clientela_customer_export(customer=customer):
        if answer:
            result["plugins"].update(json_safe(answer))
    db.session.add(AuditEvent(actor_id=principal.user_id, action="export",
                              entity_type="customers", entity_id=customer.id, changes={},
                              origin=_origin()))
    db.session.flush()
    return result


def _origin() -> str:
    from clientela.core import tenancy

    return tenancy.current_origin()


def erase(customer_id: uuid.UUID, principal: Principal) -> dict[str, Any]:
    """Anonymise the customer's personal data in the core and every plugin (right to erasure).

    Non-personal facts (stage, kind, dates, channels, outcomes) stay for reporting. The audit
    trail keeps that something happened, but the before/after values of the customer and
    its interactions are redacted, since they hold the personal data being erased.
    """
    access.require(principal, "customers:erase")
    customer = get_customer(customer_id, principal)
    # plugins first, while the customer's e-mail and phone can still find unlinked records
    plugin_answers = {name: json_safe(answer)
                      for name, answer in _answers("clientela_customer_erase", customer=customer)}
    for field in PERSONAL_FIELDS:
        setattr(customer, field, None)
    customer.display_name = ERASED_NAME
    customer.emails, customer.phones, customer.addresses = [], [], []
    customer.tags, customer.attributes = [], {}
    interaction_ids = db.session.execute(
        db.select(Interaction.id).where(Interaction.customer_id == customer.id)
    ).scalars().all()
    db.session.execute(
        sa.update(Interaction).where(Interaction.customer_id == customer.id)
        .values(subject="", body="", attributes={}, external_id=None)
        .execution_options(synchronize_session="fetch")
    )
    summary: dict[str, Any] = {"customer": str(customer.id),
                               "interactions_anonymised": len(interaction_ids),
                               "plugins": plugin_answers}
    db.session.flush()
    # customers merged into this one left their personal data in the trail too
    subjects = {customer.id}
    frontier = {customer.id}
    while frontier:
        merges = db.session.execute(
            db.select(AuditEvent.changes).where(
                AuditEvent.action == "merge", AuditEvent.entity_id.in_(frontier))
        ).scalars().all()
        frontier = {uuid.UUID(c["merged_id"]) for c in merges if "merged_id" in c} - subjects
        subjects |= frontier
    # redaction of the trail is the one update audit rows allow, and it bypasses the ORM
    db.session.execute(
        sa.update(AuditEvent)
        .where(AuditEvent.entity_id.in_([*subjects, *interaction_ids]))
        .values(changes={"redacted": "erased"})
        .execution_options(synchronize_session=False)
    )
    db.session.add(AuditEvent(actor_id=principal.user_id, action="erase", entity_type="customers",
                              entity_id=customer.id, changes={}, origin=_origin()))
    db.session.flush()
    return summary


def _answers(hook_name: str, **kwargs):
    caller = getattr(_hook(), hook_name)
    for impl in caller.get_hookimpls():
        answer = impl.function(**{k: v for k, v in kwargs.items() if k in impl.argnames})
        if answer is not None:
            yield impl.plugin_name, answer


# --- duplicates and merge -------------------------------------------------------


def duplicates(principal: Principal, limit: int = 100) -> list[dict[str, Any]]:
    """Groups of likely duplicates: same e-mail, same phone, or the same name ignoring case."""
    visible = customers_query(principal).subquery()
    groups = []
    for reason, column in (("email", visible.c.email), ("phone", visible.c.phone),
                           ("name", sa.func.lower(visible.c.display_name))):
        rows = db.session.execute(
            sa.select(column.label("value"), sa.func.count().label("n"))
            .where(column.is_not(None), visible.c.display_name != ERASED_NAME)
            .group_by(column).having(sa.func.count() > 1).order_by(column).limit(limit)
        ).all()
        for value, _ in rows:
            ids = db.session.execute(
                sa.select(visible.c.id).where(column == value).order_by(visible.c.id)
            ).scalars().all()
            groups.append({"reason": reason, "value": value, "customer_ids": ids})
    return groups[:limit]


MERGE_LISTS = ("emails", "phones", "addresses", "tags")


def _merged_values(survivor: Customer, other: Customer, prefer: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for attr in sa.inspect(Customer).column_attrs:
        key = attr.key
        if key in ("tenant_id", "id", "created_at", "updated_at", "created_by"):
            continue
        mine, theirs = getattr(survivor, key), getattr(other, key)
        if key in MERGE_LISTS:
            merged = list(mine or [])
            for item in theirs or []:
                if item not in merged:
                    merged.append(item)
            values[key] = merged
        elif key == "attributes":
            values[key] = {**(theirs or {}), **(mine or {})}
            if prefer.get(key) == "other":
                values[key] = {**(mine or {}), **(theirs or {})}
        elif prefer.get(key) == "other":
            values[key] = theirs if theirs is not None else mine
        else:
            values[key] = mine if mine not in (None, "") else theirs
    # the other's primary address and number are kept as additional ones
    for key, listed in (("email", "emails"), ("phone", "phones")):
        loser = theirs_value = getattr(other, key)
        if theirs_value and theirs_value != values[key]:
            entry = {"label": "merged", "value": loser}
            if entry not in values[listed] and all(e.get("value") != loser
                                                   for e in values[listed] if isinstance(e, dict)):
                values[listed] = values[listed] + [entry]
    return values


def merge(survivor_id: uuid.UUID, other_id: uuid.UUID, principal: Principal,
          prefer: dict[str, str] | None = None, dry_run: bool = False) -> dict[str, Any]:
    """Merge ``other`` into ``survivor`` field by field and move every related record.

    ``prefer`` maps a field to ``"other"`` to take the other customer's value; by default
    the survivor's non-empty values win and the other's fill the gaps; lists are united.
    With ``dry_run`` nothing is written and the result is returned.
    """
    access.require(principal, "customers:merge")
    if survivor_id == other_id:
        raise ValidationError({"other_id": ["a customer cannot be merged into itself"]})
    survivor = get_customer(survivor_id, principal, "customers:write")
    other = get_customer(other_id, principal, "customers:write")
    prefer = prefer or {}
    bad = [k for k, v in prefer.items() if v not in ("survivor", "other")
           or not hasattr(Customer, k)]
    if bad:
        raise ValidationError({"prefer": [f"'{k}': use a customer field and 'survivor' or 'other'"
                                          for k in bad]})
    values = _merged_values(survivor, other, prefer)
    moved = db.session.execute(
        sa.select(sa.func.count()).select_from(Interaction).where(Interaction.customer_id == other.id)
    ).scalar_one()
    result = {"survivor_id": survivor.id, "merged_id": other.id, "dry_run": dry_run,
              "result": json_safe(values), "interactions_moved": moved}
    if dry_run:
        return result
    external_id = values.pop("external_id")
    other.external_id = None
    db.session.flush()
    for key, value in values.items():
        setattr(survivor, key, value)
    survivor.external_id = external_id
    db.session.execute(
        sa.update(Interaction).where(Interaction.customer_id == other.id)
        .values(customer_id=survivor.id).execution_options(synchronize_session="fetch")
    )
    db.session.execute(
        sa.update(Customer).where(Customer.organisation_id == other.id)
        .values(organisation_id=survivor.id if survivor.kind == "organisation" else None)
        .execution_options(synchronize_session="fetch")
    )
    _hook().clientela_customer_merged_precommit(survivor=survivor, merged_id=other.id)
    db.session.add(AuditEvent(
        actor_id=principal.user_id, action="merge", entity_type="customers",
        entity_id=survivor.id, origin=_origin(),
        changes={"merged_id": str(other.id), "merged": customer_data(other)},
    ))
    db.session.delete(other)
    db.session.flush()
    return result
