"""Automation rules: a trigger, conditions, actions; run as jobs after the event commits.

* **Triggers**: a record ``created``; ``updated`` (optionally: only when ``trigger_field``
  changed); ``stage_changed`` (``stage`` of customers, ``stage_id`` of deals, or the
  ``trigger_field`` given); ``interaction_recorded`` (the rule's record is the
  interaction's customer, the interaction is readable as ``interaction.<field>``);
  ``date_reached`` (a date field plus ``offset_days`` is today: an hourly job looks).
* **Conditions**: ``{"all": [...]}``, ``{"any": [...]}``, ``{"not": {...}}`` of
  ``{"field": "stage" | "attributes.<key>" | "interaction.<field>", "op": ..., "value": ...}``.
* **Actions**: everything registered through ``clientela_automation_actions`` (this
  plugin registers ``set_field``, ``add_tag``, ``assign_owner``, ``send_webhook`` and
  ``send_email``; the operational plugin ``create_task``…), run in order in the rule's job,
  which commits them together with the run's log row, or logs the failure.
* **Loops**: the writes of a rule's job carry the chain of rules that led to them
  (``session.info``); a rule already in the chain is not triggered again, and no chain
  grows beyond ``TAILORMADE_AUTOMATION_MAX_DEPTH``; both are logged as ``skipped``.
"""

from __future__ import annotations

import contextvars
import dataclasses
import datetime as dt
import decimal
import re
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session

from clientela.core import access, customers, jobs, tenancy
from clientela.core.access import Principal
from clientela.core.db import db, new_id, utcnow
from clientela.core.errors import NotFound, PluginError, ValidationError
from clientela.core.events import json_safe
from clientela.core.models import Customer, User
from clientela.plugins.tailormade import custom_fields
from clientela.plugins.tailormade.models import (
    TRIGGERS,
    AutomationRule,
    AutomationRun,
    Webhook,
    WebhookDelivery,
)

RUN_JOB = "tailormade.run_automation"
DATES_JOB = "tailormade.automation_dates"
#: ``session.info`` key, set while a rule's job writes: ``{"depth": n, "chain": [ids]}``
CONTEXT = "tailormade.automation"
_RULES = "tailormade.automation_rules"  # session.info: (transaction, tenant, rules)
OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "contains", "in", "empty", "not_empty",
             "changed")
ACTION_KEY = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
FIELD = re.compile(r"^(attributes\.|interaction\.)?[A-Za-z_][A-Za-z0-9_]{0,62}$")
#: columns an action never writes
PROTECTED = frozenset({"id", "tenant_id", "created_at", "updated_at", "created_by",
                       "attributes"})
MAX_CONDITIONS = 50


class ActionFailed(Exception):
    """An action could not be carried out; the message says why (it goes to the log)."""


# --- the action registry ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Action:
    key: str
    label: str
    function: Callable[[Any, dict], Any]
    params: dict[str, str]
    plugin: str

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "params": dict(self.params),
                "plugin": self.plugin}


def actions() -> dict[str, Action]:
    """Every action registered through ``clientela_automation_actions``, collected once."""
    extensions = current_app.extensions
    found = extensions.get("tailormade.automation_actions")
    if found is not None:
        return found
    found = {}
    caller = extensions["clientela"].plugins.hook.clientela_automation_actions
    for impl in reversed(caller.get_hookimpls()):
        plugin = impl.plugin_name

        def register(key, label, function, params=None, _plugin=plugin):
            if not isinstance(key, str) or not ACTION_KEY.match(key):
                raise PluginError(_plugin, f"automation action key {key!r} is not a lower-case "
                                           "name")
            if key in found:
                raise PluginError(_plugin, f"automation action {key!r} is already registered "
                                           f"by '{found[key].plugin}'")
            if not callable(function):
                raise PluginError(_plugin, f"automation action {key!r} is not callable")
            found[key] = Action(key, str(label), function, dict(params or {}), _plugin)

        impl.function(register=register)
    extensions["tailormade.automation_actions"] = found
    return found


# --- reading and writing fields ------------------------------------------------------


def _columns(model) -> dict[str, sa.Column]:
    return {attr.key: attr.columns[0] for attr in sa.inspect(model).column_attrs}


def check_field(model, field: str, writable: bool = False) -> str | None:
    """Why ``field`` is not a field of ``model`` (``None`` if it is)."""
    if not FIELD.match(field or ""):
        return "use a column name, attributes.<key> or interaction.<field>"
    if field.startswith("attributes."):
        return None
    if field.startswith("interaction."):
        return "interaction fields can be read, not written" if writable else None
    if field not in _columns(model):
        return f"no field '{field}'"
    if writable and field in PROTECTED:
        return f"'{field}' cannot be set by a rule"
    return None


def read_field(entity, field: str, event: dict[str, Any]) -> Any:
    if field.startswith("attributes."):
        return (entity.attributes or {}).get(field[len("attributes."):])
    if field.startswith("interaction."):
        return (event.get("interaction") or {}).get(field[len("interaction."):])
    if field in _columns(type(entity)):
        return json_safe(getattr(entity, field))
    return None


def _coerce(column: sa.Column, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        kind = column.type.python_type
    except NotImplementedError:
        return value
    try:
        if kind is uuid.UUID:
            return uuid.UUID(value)
        if kind is dt.datetime:
            return dt.datetime.fromisoformat(value)
        if kind is dt.date:
            return dt.date.fromisoformat(value)
        if kind is decimal.Decimal:
            return decimal.Decimal(value)
    except (ValueError, decimal.InvalidOperation):
        raise ActionFailed(f"{value!r} is not a valid {column.key}") from None
    return value


def write_field(entity, field: str, value: Any) -> None:
    problem = check_field(type(entity), field, writable=True)
    if problem:
        raise ActionFailed(problem)
    if field.startswith("attributes."):
        key = field[len("attributes."):]
        attributes = dict(entity.attributes or {})
        if value is None:
            attributes.pop(key, None)
        else:
            attributes[key] = value
        entity.attributes = attributes
        return
    setattr(entity, field, _coerce(_columns(type(entity))[field], value))


def field_changed(field: str, changes: dict[str, list]) -> bool:
    if field.startswith("attributes."):
        if "attributes" not in changes:
            return False
        before, after = changes["attributes"]
        key = field[len("attributes."):]
        return (before or {}).get(key) != (after or {}).get(key)
    return field in changes


# --- conditions -------------------------------------------------------------------------


def _number(value: Any) -> decimal.Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float, decimal.Decimal)):
        return decimal.Decimal(str(value))
    if isinstance(value, str):
        try:
            number = decimal.Decimal(value.strip())
        except decimal.InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(actual, bool) or isinstance(expected, bool):
        return actual is expected
    a, b = _number(actual), _number(expected)
    if a is not None and b is not None:
        return a == b
    return actual == expected


def compare(op: str, actual: Any, expected: Any) -> bool:
    if op == "empty":
        return custom_fields.is_empty(actual)
    if op == "not_empty":
        return not custom_fields.is_empty(actual)
    if op == "eq":
        return _same(actual, expected)
    if op == "ne":
        return not _same(actual, expected)
    if op == "in":
        return isinstance(expected, list) and any(_same(actual, v) for v in expected)
    if op == "contains":
        if isinstance(actual, list):
            return any(_same(v, expected) for v in actual)
        if isinstance(actual, str) and expected is not None:
            return str(expected).lower() in actual.lower()
        return False
    if actual is None or expected is None or isinstance(actual, bool):
        return False
    a, b = _number(actual), _number(expected)
    if a is None or b is None:  # texts, dates and times as ISO strings
        if not (isinstance(actual, str) and isinstance(expected, str)):
            return False
        a, b = actual, expected  # type: ignore[assignment]
    return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op]


def matches(node: dict[str, Any] | None, entity, event: dict[str, Any]) -> bool:
    """Whether ``entity`` (and the event that fired the rule) meet the conditions."""
    if not node:
        return True
    if "all" in node:
        return all(matches(child, entity, event) for child in node["all"])
    if "any" in node:
        return any(matches(child, entity, event) for child in node["any"])
    if "not" in node:
        return not matches(node["not"], entity, event)
    op = node.get("op", "eq")
    if op == "changed":
        return field_changed(node["field"], event.get("changes") or {})
    return compare(op, read_field(entity, node["field"], event), node.get("value"))


def check_conditions(node: Any, model, path: str = "conditions") -> list[str]:
    """The problems of a condition tree, each naming where it is."""
    problems: list[str] = []
    count = [0]

    def walk(node: Any, path: str) -> None:
        count[0] += 1
        if count[0] > MAX_CONDITIONS:
            problems.append(f"{path}: at most {MAX_CONDITIONS} conditions")
            return
        if not isinstance(node, dict):
            problems.append(f"{path}: a condition is an object")
            return
        if not node:
            return
        groups = [k for k in ("all", "any", "not") if k in node]
        if groups:
            if len(node) != 1:
                problems.append(f"{path}: a group has one key, all, any or not")
                return
            key = groups[0]
            if key == "not":
                walk(node["not"], f"{path}.not")
                return
            if not isinstance(node[key], list) or not node[key]:
                problems.append(f"{path}.{key}: give a list of conditions")
                return
            for i, child in enumerate(node[key]):
                walk(child, f"{path}.{key}[{i}]")
            return
        unknown = set(node) - {"field", "op", "value"}
        if unknown:
            problems.append(f"{path}: unknown keys {', '.join(sorted(unknown))}")
        problem = check_field(model, node.get("field") or "") if model is not None else None
        if problem:
            problems.append(f"{path}.field: {problem}")
        op = node.get("op", "eq")
        if op not in OPERATORS:
            problems.append(f"{path}.op: use one of {', '.join(OPERATORS)}")
        elif op == "in" and not isinstance(node.get("value"), list):
            problems.append(f"{path}.value: 'in' needs a list")
        elif op not in ("empty", "not_empty", "changed") and "value" not in node:
            problems.append(f"{path}.value: give the value to compare with")

    walk(node, path)
    return problems


# --- rules: create, change, delete ---------------------------------------------------------

EDITABLE = ("name", "description", "active", "trigger", "entity_type", "trigger_field",
            "offset_days", "conditions", "actions")


def _check_rule(values: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    trigger = values.get("trigger")
    if trigger not in TRIGGERS:
        errors["trigger"] = [f"use one of {', '.join(TRIGGERS)}"]
    if trigger == "interaction_recorded":
        values["entity_type"] = "customers"  # the rule acts on the interaction's customer
    model = custom_fields.model_for(values.get("entity_type") or "")[0]
    if model is None:
        errors["entity_type"] = [
            f"unknown entity type; use one of {', '.join(custom_fields.entity_types())}, "
            f"or {custom_fields.CUSTOM_PREFIX}<key> of a custom object"]
    field = values.get("trigger_field")
    if model is not None and field:
        problem = check_field(model, field)
        if problem or field.startswith("interaction."):
            errors["trigger_field"] = [problem or "name a field of the record"]
    if trigger == "date_reached" and not field:
        errors["trigger_field"] = ["name the date field, e.g. attributes.renewal_date"]
    if trigger == "date_reached" and field and model is not None and \
            not field.startswith("attributes."):
        column = _columns(model).get(field)
        if column is None or not isinstance(column.type, sa.Date) or \
                isinstance(column.type, sa.DateTime):
            errors["trigger_field"] = ["a date column, or attributes.<key> holding dates"]
    problems = check_conditions(values.get("conditions") or {}, model)
    if problems:
        errors["conditions"] = problems
    registry = actions()
    action_problems = []
    steps = values.get("actions")
    if not isinstance(steps, list) or not steps:
        action_problems.append("give at least one action")
    else:
        for i, step in enumerate(steps):
            if not isinstance(step, dict) or set(step) - {"type", "params"}:
                action_problems.append(f"[{i}]: an action is {{\"type\", \"params\"}}")
                continue
            action = registry.get(step.get("type"))
            if action is None:
                action_problems.append(f"[{i}].type: unknown action; use one of "
                                       f"{', '.join(sorted(registry))}")
                continue
            params = step.get("params") or {}
            if not isinstance(params, dict):
                action_problems.append(f"[{i}].params: an object")
                continue
            unknown = set(params) - set(action.params)
            if action.params and unknown:
                action_problems.append(f"[{i}].params: unknown {', '.join(sorted(unknown))}; "
                                       f"{action.key} takes {', '.join(action.params)}")
            check = PARAM_CHECKS.get(action.key) if action.plugin == "tailormade" else None
            problem = check(model, params) if check and model is not None else None
            if problem:
                action_problems.append(f"[{i}].params: {problem}")
    if action_problems:
        errors["actions"] = action_problems
    if errors:
        raise ValidationError(errors)
    return values


def list_rules(principal: Principal) -> list[AutomationRule]:
    access.require(principal, "automations:read")
    return list(db.session.execute(
        sa.select(AutomationRule).order_by(AutomationRule.name, AutomationRule.id)).scalars())


def get_rule(principal: Principal, rule_id: uuid.UUID) -> AutomationRule:
    access.require(principal, "automations:read")
    rule = db.session.execute(
        sa.select(AutomationRule).where(AutomationRule.id == rule_id)).scalar_one_or_none()
    if rule is None:
        raise NotFound("automation rule not found")
    return rule


def create_rule(principal: Principal, data: dict[str, Any]) -> AutomationRule:
    access.require(principal, "automations:write")
    values = {"description": "", "active": True, "trigger_field": None, "offset_days": 0,
              "conditions": {}, **data}
    rule = AutomationRule(**_check_rule(values))
    db.session.add(rule)
    db.session.flush()
    return rule


def update_rule(principal: Principal, rule_id: uuid.UUID, data: dict[str, Any]
                ) -> AutomationRule:
    rule = get_rule(principal, rule_id)
    access.require(principal, "automations:write")
    values = {name: getattr(rule, name) for name in EDITABLE}
    values.update(data)
    for name, value in _check_rule(values).items():
        if getattr(rule, name) != value:
            setattr(rule, name, value)
    db.session.flush()
    return rule


def delete_rule(principal: Principal, rule_id: uuid.UUID) -> None:
    rule = get_rule(principal, rule_id)
    access.require(principal, "automations:write")
    db.session.execute(sa.delete(AutomationRun).where(AutomationRun.rule_id == rule.id)
                       .execution_options(synchronize_session=False))
    db.session.delete(rule)
    db.session.flush()


def runs_query(principal: Principal, rule_id: uuid.UUID, status: str | None = None):
    get_rule(principal, rule_id)
    stmt = sa.select(AutomationRun).where(AutomationRun.rule_id == rule_id)
    if status:
        stmt = stmt.where(AutomationRun.status == status)
    return stmt.order_by(AutomationRun.created_at.desc(), AutomationRun.id.desc())


# --- events to jobs ----------------------------------------------------------------------


def _active_rules(session: Session) -> list[dict[str, Any]]:
    rows = session.execute(sa.select(
        AutomationRule.id, AutomationRule.trigger, AutomationRule.entity_type,
        AutomationRule.trigger_field).where(AutomationRule.active.is_(True),
                                            AutomationRule.trigger != "date_reached")).all()
    return [row._asdict() for row in rows]


def remember_rules(change) -> None:
    """``clientela_entity_changed_precommit``: the tenant's active rules, read once per
    transaction on its own connection (for the postcommit half); the ``custom:<key>`` type
    of a changed custom record is kept by ``custom_fields.remember_event_type``."""
    session = db.session()
    transaction, tenant_id = session.get_transaction(), tenancy.get_tenant_id()
    known = session.info.get(_RULES)
    if known is not None and known[0] is transaction and known[1] == tenant_id:
        return
    session.info[_RULES] = (transaction, tenant_id, _active_rules(session))


def _remembered_rules() -> list[dict[str, Any]] | None:
    session = db.session()
    known = session.info.get(_RULES)
    if known is not None and known[0] is session.get_transaction() \
            and known[1] == tenancy.get_tenant_id():
        return known[2]
    return None


def _stage_field(rule: dict[str, Any], change) -> str:
    if rule["trigger_field"]:
        return rule["trigger_field"]
    return "stage_id" if "stage_id" in (change.values or {}) else "stage"


def _subject(rule: dict[str, Any], change, entity_type: str):
    """``(entity type, id, event data)`` the rule would run on, or ``None`` if it does not
    fire for this change."""
    trigger, op = rule["trigger"], change.operation
    if trigger == "interaction_recorded":
        if change.entity_type != "interactions" or op != "insert":
            return None
        customer_id = (change.values or {}).get("customer_id")
        if not customer_id:
            return None
        interaction = {k: v for k, v in (change.values or {}).items() if k != "tenant_id"}
        return "customers", uuid.UUID(str(customer_id)), {"interaction": interaction}
    if entity_type != rule["entity_type"]:
        return None
    if trigger == "created" and op == "insert":
        return entity_type, change.entity_id, {}
    if trigger == "updated" and op == "update":
        if rule["trigger_field"] and not field_changed(rule["trigger_field"], change.changes):
            return None
        return entity_type, change.entity_id, {}
    if trigger == "stage_changed" and op == "update":
        if not field_changed(_stage_field(rule, change), change.changes):
            return None
        return entity_type, change.entity_id, {}
    return None


def _max_depth() -> int:
    return int(current_app.config.get("TAILORMADE_AUTOMATION_MAX_DEPTH", 5))


def on_entity_changed(change) -> None:
    """``clientela_entity_changed_postcommit``: a job per rule the change fires."""
    tenant_id = tenancy.get_tenant_id()
    if tenant_id is None:
        return
    rules = _remembered_rules()
    session = db.session()
    if rules is None:  # a change no precommit saw
        with Session(db.engine) as own:
            rules = _active_rules(own)
    if not rules:
        return
    entity_type = custom_fields.event_type(change)
    context = session.info.get(CONTEXT) or {"depth": 0, "chain": []}
    event = f"{entity_type}.{change.operation}"
    for rule in rules:
        subject = _subject(rule, change, entity_type)
        if subject is None:
            continue
        subject_type, subject_id, data = subject
        depth, chain = context["depth"] + 1, list(context["chain"])
        data["changes"] = change.changes if subject_type == entity_type else {}
        if str(rule["id"]) in chain or depth > _max_depth():
            reason = ("loop protection: the rule's own writes do not trigger it again"
                      if str(rule["id"]) in chain else
                      f"loop protection: more than {_max_depth()} rules in a chain")
            _log_own({"rule_id": rule["id"], "status": "skipped", "event": event,
                      "entity_type": subject_type, "entity_id": subject_id, "depth": depth,
                      "error": reason})
            continue
        jobs.enqueue(RUN_JOB, rule["id"], subject_type, subject_id, event, depth=depth,
                     chain=[*chain, str(rule["id"])], data=json_safe(data))


# --- the run log ------------------------------------------------------------------------


def _run_row(values: dict[str, Any]) -> dict[str, Any]:
    now = utcnow()
    job = jobs.current_job()
    return {"id": new_id(), "tenant_id": tenancy.current_tenant_id(), "results": [],
            "error": None, "trigger_key": None, "depth": 1, "job_id": job.id if job else None,
            "created_at": now, "updated_at": now, "created_by": tenancy.current_actor_id(),
            "attributes": {}, **values}


def _log_own(values: dict[str, Any]) -> None:
    """Write a run in a transaction of its own (the caller's cannot write, or rolls back)."""
    with Session(db.engine) as session:
        session.execute(sa.insert(AutomationRun), [_run_row(values)])
        session.commit()


# --- running a rule (the job) --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RunningRule:
    rule_id: uuid.UUID
    name: str
    event: str
    depth: int


_running: contextvars.ContextVar[RunningRule | None] = contextvars.ContextVar(
    "tailormade_running_rule", default=None)


def running_rule() -> RunningRule | None:
    """The rule whose actions are running (for actions that describe themselves)."""
    return _running.get()


def _load(entity_type: str, entity_id: uuid.UUID):
    model, among = custom_fields.model_for(entity_type)
    if model is None:
        return None
    stmt = sa.select(model).where(model.id == entity_id)
    if among is not None:
        stmt = stmt.where(among)
    return db.session.execute(stmt).scalar_one_or_none()


def run_rule(rule_id: uuid.UUID, entity_type: str, entity_id: uuid.UUID, event: str,
             depth: int = 1, chain: list | None = None, data: dict | None = None,
             trigger_key: str | None = None) -> None:
    """The job: check the conditions on the record as it is now, run the actions, log.

    The actions and the log row commit together, here; a failing action (or a write it
    makes that validation refuses) rolls them back, is logged as ``failed`` and fails
    the job. The writes carry the rule chain, for loop protection.
    """
    rule = db.session.execute(
        sa.select(AutomationRule).where(AutomationRule.id == rule_id)).scalar_one_or_none()
    if rule is None:
        return  # deleted since: its log went with it
    log = {"rule_id": rule.id, "event": event, "entity_type": entity_type,
           "entity_id": entity_id, "depth": depth, "trigger_key": trigger_key}
    data = data or {}
    if not rule.active:
        db.session.execute(sa.insert(AutomationRun), [_run_row(
            {**log, "status": "skipped", "error": "the rule is switched off"})])
        return
    entity = _load(entity_type, entity_id)
    if entity is None:
        db.session.execute(sa.insert(AutomationRun), [_run_row(
            {**log, "status": "skipped", "error": "the record no longer exists"})])
        return
    if not matches(rule.conditions, entity, data):
        db.session.execute(sa.insert(AutomationRun), [_run_row(
            {**log, "status": "not_matched"})])
        return
    registry = actions()
    session = db.session()
    session.info[CONTEXT] = {"depth": depth, "chain": list(chain or [str(rule.id)])}
    token = _running.set(RunningRule(rule.id, rule.name, event, depth))
    results: list[dict[str, Any]] = []
    step = 0
    try:
        for step, action in enumerate(rule.actions, start=1):
            spec = registry.get(action.get("type"))
            if spec is None:
                raise ActionFailed(f"the action '{action.get('type')}' is not available "
                                   "(is its plugin enabled?)")
            result = spec.function(entity, dict(action.get("params") or {}))
            db.session.flush()
            results.append({"type": spec.key, "result": json_safe(result)})
        step = 0
        db.session.execute(sa.insert(AutomationRun), [_run_row(
            {**log, "status": "succeeded", "results": results})])
        db.session.commit()  # validation of the rule's writes happens here
    except Exception as exc:
        db.session.rollback()
        where = f"action {step} ({rule.actions[step - 1].get('type')}): " if step else ""
        message = str(exc) if not isinstance(exc, ValidationError) else \
            f"{exc}: {json_safe(getattr(exc, 'errors', None))}"
        _log_own({**log, "status": "failed", "results": results, "error": where + message})
        raise
    finally:
        _running.reset(token)
        session.info.pop(CONTEXT, None)


def _window_days() -> int:
    return int(current_app.config.get("TAILORMADE_AUTOMATION_DATE_WINDOW_DAYS", 7))


def scan_dates(today: dt.date | None = None) -> dict[str, int]:
    """Hourly: enqueue the date rules whose date (plus offset) is today, or was within
    the last ``TAILORMADE_AUTOMATION_DATE_WINDOW_DAYS`` (a worker that was down catches
    up); each rule runs once per record and date."""
    today = today or utcnow().date()
    rules = db.session.execute(sa.select(AutomationRule).where(
        AutomationRule.active.is_(True), AutomationRule.trigger == "date_reached")).scalars().all()
    enqueued = 0
    for rule in rules:
        model, among = custom_fields.model_for(rule.entity_type)
        if model is None or not rule.trigger_field:
            continue
        last = today - dt.timedelta(days=rule.offset_days)
        first = last - dt.timedelta(days=_window_days() - 1)
        if rule.trigger_field.startswith("attributes."):
            key = rule.trigger_field[len("attributes."):]
            value = sa.func.substr(customers.attribute_expression(model, key, "text"), 1, 10)
            bounds = (first.isoformat(), last.isoformat())
        else:
            value = getattr(model, rule.trigger_field)
            bounds = (first, last)
        stmt = sa.select(model.id, value).where(value >= bounds[0], value <= bounds[1])
        if among is not None:
            stmt = stmt.where(among)
        for entity_id, date in db.session.execute(stmt.limit(10_000)).all():
            when = date.isoformat() if isinstance(date, dt.date) else str(date)
            trigger_key = f"date:{rule.id}:{entity_id}:{when}"
            done = db.session.execute(sa.select(AutomationRun.id).where(
                AutomationRun.rule_id == rule.id, AutomationRun.trigger_key == trigger_key)
            ).first()
            if done:
                continue
            jobs.enqueue(RUN_JOB, rule.id, rule.entity_type, entity_id,
                         f"date_reached:{rule.trigger_field}", trigger_key=trigger_key,
                         idempotency_key=f"automation:{trigger_key}")
            enqueued += 1
    return {"rules": len(rules), "enqueued": enqueued}


# --- the plugin's own actions ---------------------------------------------------------------


def _customer_of(entity) -> Customer | None:
    if isinstance(entity, Customer):
        return entity
    customer_id = getattr(entity, "customer_id", None)
    if customer_id is None:
        return None
    return db.session.execute(
        sa.select(Customer).where(Customer.id == customer_id)).scalar_one_or_none()


def set_field(entity, params: dict[str, Any]) -> dict[str, Any]:
    """Set ``field`` to ``value``, or add ``increment`` to its number."""
    field = params.get("field") or ""
    if "increment" in params:
        current = _number(read_field(entity, field, {})) or decimal.Decimal(0)
        step = _number(params["increment"])
        if step is None:
            raise ActionFailed("increment must be a number")
        total = current + step
        value: Any = int(total) if total == total.to_integral_value() else str(total)
    else:
        value = params.get("value")
    write_field(entity, field, value)
    return {"field": field, "value": json_safe(value)}


def add_tag(entity, params: dict[str, Any]) -> dict[str, Any]:
    tag = str(params.get("tag") or "").strip()
    if "tags" not in _columns(type(entity)):
        raise ActionFailed(f"{entity.__tablename__} records have no tags")
    tags = list(entity.tags or [])
    if tag not in tags:
        entity.tags = [*tags, tag]
        return {"tag": tag, "added": True}
    return {"tag": tag, "added": False}


def assign_owner(entity, params: dict[str, Any]) -> dict[str, Any]:
    if "owner_id" not in _columns(type(entity)):
        raise ActionFailed(f"{entity.__tablename__} records have no owner")
    owner_id = uuid.UUID(str(params.get("owner_id")))
    active = db.session.execute(sa.select(User.id).where(
        User.id == owner_id, User.is_active.is_(True))).first()
    if active is None:
        raise ActionFailed("the owner is not an active user of this tenant")
    entity.owner_id = owner_id
    return {"owner_id": str(owner_id)}


def send_webhook(entity, params: dict[str, Any]) -> dict[str, Any]:
    """A delivery to one of the tenant's webhooks (signed, retried, logged like any)."""
    from clientela.plugins.tailormade import webhooks

    webhook_id = uuid.UUID(str(params.get("webhook_id")))
    webhook = db.session.execute(sa.select(Webhook).where(Webhook.id == webhook_id)
                                 ).scalar_one_or_none()
    if webhook is None:
        raise ActionFailed("the webhook no longer exists")
    rule = running_rule()
    now, delivery_id = utcnow(), new_id()
    entity_type = custom_fields.entity_type_of(entity, entity.__tablename__)
    values = {k: v for k, v in json_safe(
        {attr.key: getattr(entity, attr.key) for attr in sa.inspect(type(entity)).column_attrs
         if not attr.columns[0].info.get("secret")}).items() if k != "tenant_id"}
    event = "automation.run"
    payload = {"id": str(delivery_id), "event": event, "occurred_at": now.isoformat(),
               "tenant_id": str(entity.tenant_id), "entity_type": entity_type,
               "entity_id": str(entity.id), "operation": "automation",
               "rule": {"id": str(rule.rule_id), "name": rule.name, "event": rule.event}
               if rule else None, "message": params.get("message"), "data": values}
    customer = _customer_of(entity)
    db.session.execute(sa.insert(WebhookDelivery), [{
        "id": delivery_id, "tenant_id": entity.tenant_id, "webhook_id": webhook.id,
        "event": event, "entity_type": entity_type[:63], "entity_id": entity.id,
        "customer_id": customer.id if customer else None, "payload": payload,
        "status": "pending", "attempts": 0, "created_at": now, "updated_at": now,
        "created_by": tenancy.current_actor_id(), "attributes": {}}])
    jobs.enqueue(webhooks.DELIVER_JOB, delivery_id,
                 idempotency_key=f"webhook-delivery:{delivery_id}")
    return {"delivery_id": str(delivery_id)}


def send_email(entity, params: dict[str, Any]) -> dict[str, Any]:
    """E-mail the record's customer through ``clientela.core.channels.send_message``
    (the collaborative plugin when enabled, else the core's mail driver)."""
    from clientela.core import channels

    customer = _customer_of(entity)
    if customer is None:
        raise ActionFailed("the record has no customer to e-mail")
    message = {"channel": "email", "subject": params.get("subject") or "",
               "body": params.get("body") or "", "purpose": params.get("purpose") or "service",
               "source": "automation"}
    if params.get("to"):
        message["to"] = params["to"]
    answer = channels.send_message(message, customer)
    if answer.get("status") == "failed":
        raise ActionFailed(f"the e-mail was not sent: {answer.get('error')}")
    return json_safe(answer)


def _check_set_field(model, params) -> str | None:
    problem = check_field(model, params.get("field") or "", writable=True)
    if problem:
        return f"field: {problem}"
    if "increment" in params and _number(params["increment"]) is None:
        return "increment must be a number"
    if "increment" not in params and "value" not in params:
        return "give value (or increment)"
    return None


def _check_tag(model, params) -> str | None:
    if "tags" not in _columns(model):
        return f"{model.__tablename__} records have no tags"
    tag = params.get("tag")
    if not isinstance(tag, str) or not tag.strip() or len(tag) > 100:
        return "tag: 1 to 100 characters"
    return None


def _check_owner(model, params) -> str | None:
    if "owner_id" not in _columns(model):
        return f"{model.__tablename__} records have no owner"
    try:
        owner_id = uuid.UUID(str(params.get("owner_id")))
    except ValueError:
        return "owner_id: the id of a user"
    if db.session.execute(sa.select(User.id).where(User.id == owner_id,
                                                   User.is_active.is_(True))).first() is None:
        return "owner_id: no active user with this id"
    return None


def _check_webhook(model, params) -> str | None:
    try:
        webhook_id = uuid.UUID(str(params.get("webhook_id")))
    except ValueError:
        return "webhook_id: the id of a webhook"
    if db.session.execute(sa.select(Webhook.id).where(Webhook.id == webhook_id)).first() is None:
        return "webhook_id: no webhook with this id"
    return None


def _check_email(model, params) -> str | None:
    if model is not Customer and "customer_id" not in _columns(model):
        return f"{model.__tablename__} records have no customer to e-mail"
    if not params.get("subject"):
        return "subject: give the e-mail's subject"
    return None


PARAM_CHECKS = {"set_field": _check_set_field, "add_tag": _check_tag,
                "assign_owner": _check_owner, "send_webhook": _check_webhook,
                "send_email": _check_email}


def register_actions(register) -> None:
    """This plugin's ``clientela_automation_actions``."""
    register("set_field", "Set a field", set_field,
             {"field": "string", "value": "any", "increment": "number"})
    register("add_tag", "Add a tag", add_tag, {"tag": "string"})
    register("assign_owner", "Assign an owner", assign_owner, {"owner_id": "uuid"})
    register("send_webhook", "Send a webhook", send_webhook,
             {"webhook_id": "uuid", "message": "string"})
    register("send_email", "Send an e-mail to the customer", send_email,
             {"subject": "string", "body": "string", "to": "string", "purpose": "string"})
