"""Tasks and activities, routing rules, "my work", work notifications and the reminder job.

Every function runs in the current tenant and needs no request; those acting for a user take
the ``Principal`` whose permissions and record scope apply (``None`` for the system: a web
form, an inbound message, a job, an automation). They flush but never commit.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

import sqlalchemy as sa
from flask import current_app

from clientela.core import access, services
from clientela.core.access import Principal
from clientela.core.db import db, utcnow
from clientela.core.errors import Forbidden, NotFound, ValidationError
from clientela.core.models import Customer, User
from clientela.plugins.operational.models import Deal, Lead
from clientela.plugins.operational.services import INTERACTION_SOURCE
from clientela.plugins.operational.services import _check_owner as check_owner
from clientela.plugins.operational.work_models import (
    PRIORITIES,
    ROUTING_OPERATORS,
    RoutingRule,
    ServiceCase,
    Task,
    WorkNotification,
)

TASK_SORT = {"created_at", "updated_at", "due_at", "priority", "status", "title"}
OPEN_TASK = ("open", "in_progress")
OPEN_CASE = ("new", "open", "pending")
#: the channel and direction of the interaction a completed task leaves on the timeline
TASK_CHANNELS = {"call": ("phone", "outbound"), "email": ("email", "outbound"),
                 "meeting": ("in_person", "outbound"), "todo": ("crm", "internal")}


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or utcnow()


def may_route(principal: Principal | None, permission: str) -> bool:
    """Routing decides the owner for the system, and for users who may assign others."""
    return principal is None or principal.scope(permission) in ("team", "all")


# --- routing -------------------------------------------------------------------------------

#: the fields a routing condition may look at, per entity type (plus ``attributes.<key>``)
ROUTING_FIELDS = {
    "lead": ("source", "status", "country", "company", "title", "email", "score",
             "web_form_id"),
    "case": ("priority", "category", "channel", "queue", "subject", "status"),
    "task": ("kind", "priority", "related_type", "title"),
}
OPEN_LEAD = ("new", "contacted", "qualified")


def _open_items(entity_type: str):
    """The model and the condition of an open item, for "least loaded"."""
    if entity_type == "lead":
        return Lead, Lead.status.in_(OPEN_LEAD)
    if entity_type == "case":
        return ServiceCase, ServiceCase.status.in_(OPEN_CASE)
    return Task, Task.status.in_(OPEN_TASK)


def check_conditions(entity_type: str, conditions: list[dict]) -> None:
    errors = []
    fields = ROUTING_FIELDS[entity_type]
    for i, condition in enumerate(conditions):
        field = condition.get("field") or ""
        if field not in fields and not (field.startswith("attributes.") and len(field) > 11):
            errors.append(f"condition {i + 1}: field must be one of {', '.join(fields)} or "
                          "'attributes.<key>'")
        operator = condition.get("operator", "equals")
        if operator not in ROUTING_OPERATORS:
            errors.append(f"condition {i + 1}: operator must be one of "
                          f"{', '.join(ROUTING_OPERATORS)}")
        if operator in ("gte", "lte"):
            try:
                decimal.Decimal(str(condition.get("value")))
            except (decimal.InvalidOperation, ValueError):
                errors.append(f"condition {i + 1}: {operator} compares with a number")
    if errors:
        raise ValidationError({"conditions": errors})


def _field_value(record: Any, field: str) -> Any:
    if field.startswith("attributes."):
        return (getattr(record, "attributes", None) or {}).get(field.split(".", 1)[1])
    return getattr(record, field, None)


def condition_holds(condition: dict, record: Any) -> bool:
    actual = _field_value(record, condition["field"])
    operator = condition.get("operator", "equals")
    wanted = condition.get("value")
    text = "" if actual is None else str(actual).strip().lower()
    if operator == "present":
        return bool(text)
    if operator == "absent":
        return not text
    if operator in ("gte", "lte"):
        try:
            number, bound = decimal.Decimal(text), decimal.Decimal(str(wanted))
        except (decimal.InvalidOperation, ValueError):
            return False
        return number >= bound if operator == "gte" else number <= bound
    if operator == "in":
        options = wanted if isinstance(wanted, list) else str(wanted or "").split(",")
        return text in {str(o).strip().lower() for o in options}
    value = "" if wanted is None else str(wanted).strip().lower()
    if operator == "equals":
        return text == value
    if operator == "not_equals":
        return text != value
    if operator == "contains":
        return bool(value) and value in text
    if operator == "starts_with":
        return bool(value) and text.startswith(value)
    return False


def _active_users(user_ids: list) -> list[uuid.UUID]:
    """The rule's users that are active, in the rule's order."""
    wanted = [uuid.UUID(str(u)) for u in user_ids]
    if not wanted:
        return []
    active = set(db.session.execute(
        db.select(User.id).where(User.id.in_(wanted), User.is_active.is_(True))
    ).scalars())
    return [u for u in wanted if u in active]


def _least_loaded(entity_type: str, candidates: list[uuid.UUID]) -> uuid.UUID:
    model, is_open = _open_items(entity_type)
    counts = dict(db.session.execute(
        sa.select(model.owner_id, sa.func.count()).where(model.owner_id.in_(candidates), is_open)
        .group_by(model.owner_id)
    ).all())
    # the fewest open items; a tie goes to the user listed first
    return min(candidates, key=lambda u: (counts.get(u, 0), candidates.index(u)))


def _pick(rule: RoutingRule, entity_type: str) -> uuid.UUID | None:
    candidates = _active_users(rule.user_ids or [])
    if not candidates:
        return None
    if rule.strategy == "user":
        return candidates[0]
    if rule.strategy == "least_loaded":
        return _least_loaded(entity_type, candidates)
    # round robin: lock the rule so that two concurrent assignments take two turns
    locked = db.session.execute(
        db.select(RoutingRule).where(RoutingRule.id == rule.id).with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    chosen = candidates[locked.cursor % len(candidates)]
    locked.cursor = locked.cursor + 1
    db.session.flush()
    return chosen


def route(entity_type: str, record: Any) -> uuid.UUID | None:
    """The owner the routing rules give ``record`` (a lead, case or task), or ``None``."""
    rules = db.session.execute(
        db.select(RoutingRule).where(RoutingRule.entity_type == entity_type,
                                     RoutingRule.active.is_(True))
        .order_by(RoutingRule.position, RoutingRule.created_at, RoutingRule.id)
    ).scalars().all()
    for rule in rules:
        if all(condition_holds(c, record) for c in rule.conditions or []):
            owner = _pick(rule, entity_type)
            if owner is not None:
                return owner
    return None


def rules_query(principal: Principal, entity_type: str | None = None):
    access.require(principal, "routing:configure")
    stmt = db.select(RoutingRule)
    if entity_type is not None:
        stmt = stmt.where(RoutingRule.entity_type == entity_type)
    return stmt.order_by(RoutingRule.entity_type, RoutingRule.position, RoutingRule.created_at,
                         RoutingRule.id)


def get_rule(rule_id: uuid.UUID, principal: Principal) -> RoutingRule:
    rule = db.session.execute(rules_query(principal).where(RoutingRule.id == rule_id)
                              ).scalar_one_or_none()
    if rule is None:
        raise NotFound("routing rule not found")
    return rule


def _check_rule(data: dict[str, Any], rule: RoutingRule | None = None) -> dict[str, Any]:
    data = dict(data)
    entity_type = data.get("entity_type", rule.entity_type if rule else None)
    strategy = data.get("strategy", rule.strategy if rule else "user")
    if "conditions" in data or "entity_type" in data:
        check_conditions(entity_type, data.get("conditions",
                                               rule.conditions if rule else []))
    if "user_ids" in data:
        data["user_ids"] = [str(u) for u in data["user_ids"]]
        for user_id in data["user_ids"]:
            check_owner(uuid.UUID(user_id), None, "routing:configure", "user_ids")
    users = data.get("user_ids", rule.user_ids if rule else [])
    if not users:
        raise ValidationError({"user_ids": ["name at least one user"]})
    if strategy == "user" and len(users) != 1:
        raise ValidationError({"user_ids": ["the 'user' strategy names exactly one user"]})
    if "user_ids" in data and rule is not None:
        data["cursor"] = 0  # a new list starts its turns again
    return data


def create_rule(data: dict[str, Any], principal: Principal) -> RoutingRule:
    access.require(principal, "routing:configure")
    rule = RoutingRule(**_check_rule(data))
    db.session.add(rule)
    db.session.flush()
    return rule


def update_rule(rule_id: uuid.UUID, data: dict[str, Any], principal: Principal) -> RoutingRule:
    rule = get_rule(rule_id, principal)
    for key, value in _check_rule(data, rule).items():
        setattr(rule, key, value)
    db.session.flush()
    return rule


def delete_rule(rule_id: uuid.UUID, principal: Principal) -> None:
    db.session.delete(get_rule(rule_id, principal))
    db.session.flush()


# --- tasks ---------------------------------------------------------------------------------


def related_record(related_type: str, related_id: uuid.UUID) -> Any:
    """The customer, lead, deal or case a task is about, in the current tenant (or 422)."""
    model = {"customer": Customer, "lead": Lead, "deal": Deal, "case": ServiceCase}[related_type]
    record = db.session.execute(db.select(model).where(model.id == related_id)
                                ).scalar_one_or_none()
    if record is None:
        raise ValidationError({"related_id": [f"no {related_type} with this id"]})
    return record


def _customer_of(related_type: str | None, record: Any) -> uuid.UUID | None:
    if record is None:
        return None
    if related_type == "customer":
        return record.id
    return getattr(record, "customer_id", None)


def tasks_query(principal: Principal, *, status: str | None = None, kind: str | None = None,
                priority: str | None = None, owner_id: uuid.UUID | None = None,
                related_type: str | None = None, related_id: uuid.UUID | None = None,
                customer_id: uuid.UUID | None = None, due_before: dt.datetime | None = None,
                overdue: bool | None = None, open: bool | None = None):
    """The select of the tasks ``principal`` may read, filtered."""
    stmt = access.scope_filter(db.select(Task), Task.owner_id, principal, "tasks:read")
    for column, value in ((Task.status, status), (Task.kind, kind), (Task.priority, priority),
                          (Task.owner_id, owner_id), (Task.related_type, related_type),
                          (Task.related_id, related_id), (Task.customer_id, customer_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    if due_before is not None:
        stmt = stmt.where(Task.due_at < due_before)
    if open is not None:
        stmt = stmt.where(Task.status.in_(OPEN_TASK) if open else Task.status.not_in(OPEN_TASK))
    if overdue:
        stmt = stmt.where(Task.status.in_(OPEN_TASK), Task.due_at < utcnow())
    return stmt


def get_task(task_id: uuid.UUID, principal: Principal, permission: str = "tasks:read") -> Task:
    task = db.session.execute(tasks_query(principal).where(Task.id == task_id)
                              ).scalar_one_or_none()
    if task is None:
        raise NotFound("task not found")
    if permission != "tasks:read":
        access.check_record(task.owner_id, principal, "tasks:read", permission)
    return task


def _link(data: dict[str, Any], task: Task | None = None) -> dict[str, Any]:
    related_type = data.get("related_type", task.related_type if task else None)
    related_id = data.get("related_id", task.related_id if task else None)
    if (related_type is None) != (related_id is None):
        raise ValidationError({"related_id": ["give related_type and related_id together"]})
    if "related_type" in data or "related_id" in data:
        record = related_record(related_type, related_id) if related_type else None
        data["customer_id"] = _customer_of(related_type, record)
    return data


def create_task(data: dict[str, Any], principal: Principal | None = None) -> Task:
    """Create a task; without ``owner_id`` the routing rules choose one (else the creator)."""
    data = _link(dict(data))
    if data.get("status") == "done":
        raise ValidationError({"status": ["a task is completed through /complete or a PATCH"]})
    if principal is not None:
        access.require(principal, "tasks:write")
    task = Task(**data)
    if task.owner_id is None and may_route(principal, "tasks:write"):
        task.owner_id = route("task", task)
    if task.owner_id is None and principal is not None:
        task.owner_id = principal.user_id
    check_owner(task.owner_id, principal, "tasks:write")
    db.session.add(task)
    db.session.flush()
    return task


def update_task(task_id: uuid.UUID, data: dict[str, Any], principal: Principal) -> Task:
    task = get_task(task_id, principal, "tasks:write")
    data = _link(dict(data), task)
    if "owner_id" in data:
        check_owner(data["owner_id"], principal, "tasks:write")
    if "due_at" in data and data["due_at"] != task.due_at:
        task.reminded_at = None  # a new due time gets its own reminder
    status = data.pop("status", None)
    outcome = data.pop("outcome", None)
    for key, value in data.items():
        setattr(task, key, value)
    if outcome is not None:
        task.outcome = outcome
    if status is not None and status != task.status:
        if status == "done":
            _complete(task, principal)
        else:
            task.status = status
            task.completed_at = None
    db.session.flush()
    return task


def complete_task(task_id: uuid.UUID, outcome: str | None, principal: Principal) -> Task:
    task = get_task(task_id, principal, "tasks:write")
    if outcome is not None:
        task.outcome = outcome
    if task.status != "done":
        _complete(task, principal)
    db.session.flush()
    return task


def _complete(task: Task, principal: Principal | None) -> None:
    """Mark done; a task about a customer is recorded on that customer's timeline."""
    task.status = "done"
    task.completed_at = utcnow()
    if task.customer_id is None:
        return
    channel, direction = TASK_CHANNELS.get(task.kind, ("crm", "internal"))
    services.record_interaction(
        task.customer_id, channel, direction=direction,
        user_id=principal.user_id if principal else task.owner_id,
        subject=task.title, body=task.description or "", outcome=task.outcome or "done",
        source=INTERACTION_SOURCE, external_id=f"task:{task.id}:done",
        attributes={"task_id": str(task.id), "task_kind": task.kind},
    )


def delete_task(task_id: uuid.UUID, principal: Principal) -> None:
    db.session.delete(get_task(task_id, principal, "tasks:write"))
    db.session.flush()


# --- notifications and the reminder job ----------------------------------------------------


def notify(user_id: uuid.UUID | None, kind: str, key: str, subject: str, related_type: str,
           related_id: uuid.UUID) -> WorkNotification | None:
    """Leave a notification once: a second call with the same ``key`` does nothing."""
    exists = db.session.execute(
        db.select(WorkNotification.id).where(WorkNotification.key == key)
    ).first()
    if exists is not None:
        return None
    note = WorkNotification(user_id=user_id, kind=kind, key=key, subject=subject[:500],
                            related_type=related_type, related_id=related_id)
    db.session.add(note)
    db.session.flush()
    return note


def remind_due_tasks(now: dt.datetime | None = None) -> dict[str, int]:
    """The periodic reminder: notify the owner of every open task due within
    ``OPERATIONAL_TASK_REMINDER_MINUTES`` (or overdue) that was not reminded of its
    current due time yet. Running it twice notifies once."""
    now = _now(now)
    lead = dt.timedelta(minutes=int(current_app.config["OPERATIONAL_TASK_REMINDER_MINUTES"]))
    due = db.session.execute(
        db.select(Task).where(Task.status.in_(OPEN_TASK), Task.owner_id.is_not(None),
                              Task.due_at.is_not(None), Task.due_at <= now + lead,
                              Task.reminded_at.is_(None))
        .order_by(Task.due_at, Task.id)
    ).scalars().all()
    sent = 0
    for task in due:
        state = "overdue" if task.due_at < now else "due"
        if notify(task.owner_id, "task_due", f"task_due:{task.id}:{task.due_at.isoformat()}",
                  f"Task {state} {task.due_at:%Y-%m-%d %H:%M} UTC: {task.title}", "task",
                  task.id) is not None:
            sent += 1
        task.reminded_at = now
    db.session.flush()
    return {"reminded": sent}


def notifications_query(principal: Principal, unread: bool | None = None):
    stmt = db.select(WorkNotification).where(WorkNotification.user_id == principal.user_id)
    if unread is not None:
        stmt = stmt.where(WorkNotification.read_at.is_(None) if unread
                          else WorkNotification.read_at.is_not(None))
    return stmt.order_by(WorkNotification.created_at.desc(), WorkNotification.id)


def mark_read(notification_id: uuid.UUID, principal: Principal) -> WorkNotification:
    note = db.session.execute(notifications_query(principal).where(
        WorkNotification.id == notification_id)).scalar_one_or_none()
    if note is None:
        raise NotFound("notification not found")
    if note.read_at is None:
        note.read_at = utcnow()
    db.session.flush()
    return note


# --- my work -------------------------------------------------------------------------------

_PRIORITY_RANK = {p: i for i, p in enumerate(reversed(PRIORITIES))}


def case_due(case: ServiceCase) -> dt.datetime | None:
    """The next SLA deadline of an open case: first response, then resolution."""
    if case.first_response_at is None and case.first_response_due_at is not None:
        return case.first_response_due_at
    return case.resolution_due_at


def my_work(principal: Principal, now: dt.datetime | None = None) -> dict[str, Any]:
    """The open tasks and cases assigned to ``principal``: overdue first (the longest overdue
    first), then by due time, then undated; and the unread notifications."""
    now = _now(now)
    if not principal.can("tasks:read") and not principal.can("cases:read"):
        raise Forbidden("you lack the permission 'tasks:read' or 'cases:read'")
    items = []
    if principal.can("tasks:read"):
        for task in db.session.execute(db.select(Task).where(
                Task.owner_id == principal.user_id, Task.status.in_(OPEN_TASK))).scalars():
            items.append({"type": "task", "id": task.id, "title": task.title,
                          "status": task.status, "priority": task.priority,
                          "due_at": task.due_at, "kind": task.kind,
                          "related_type": task.related_type, "related_id": task.related_id,
                          "customer_id": task.customer_id})
    if principal.can("cases:read"):
        for case in db.session.execute(db.select(ServiceCase).where(
                ServiceCase.owner_id == principal.user_id,
                ServiceCase.status.in_(OPEN_CASE))).scalars():
            items.append({"type": "case", "id": case.id, "title": case.subject,
                          "status": case.status, "priority": case.priority,
                          "due_at": case_due(case), "kind": case.category,
                          "related_type": None, "related_id": None,
                          "customer_id": case.customer_id})
    for item in items:
        item["overdue"] = item["due_at"] is not None and item["due_at"] < now
    far = dt.datetime.max.replace(tzinfo=dt.timezone.utc)
    items.sort(key=lambda i: (not i["overdue"], i["due_at"] is None, i["due_at"] or far,
                              _PRIORITY_RANK.get(i["priority"], 9), str(i["id"])))
    notes = db.session.execute(notifications_query(principal, unread=True).limit(50)
                               ).scalars().all()
    return {"items": items, "overdue": sum(i["overdue"] for i in items),
            "notifications": notes}


# --- automation action ---------------------------------------------------------------------


def _related_of(entity: Any) -> tuple[str | None, uuid.UUID | None]:
    for model, name in ((Customer, "customer"), (Lead, "lead"), (Deal, "deal"),
                        (ServiceCase, "case")):
        if isinstance(entity, model):
            return name, entity.id
    customer_id = getattr(entity, "customer_id", None)
    return ("customer", customer_id) if customer_id else (None, None)


def automation_create_task(entity: Any, params: dict[str, Any]) -> dict[str, Any]:
    """The ``create_task`` automation action: a task about the triggering record, due in
    ``due_in_days`` days, assigned to ``assignee_id`` (else routed, else unassigned)."""
    params = params or {}
    title = str(params.get("title") or "").strip()
    if not title:
        raise ValidationError({"title": ["the create_task action needs a title"]})
    data: dict[str, Any] = {"title": title[:300], "kind": params.get("kind") or "todo"}
    if params.get("due_in_days") not in (None, ""):
        try:
            days = float(params["due_in_days"])
        except (TypeError, ValueError):
            raise ValidationError({"due_in_days": ["a number of days"]}) from None
        data["due_at"] = utcnow() + dt.timedelta(days=days)
    if params.get("assignee_id"):
        try:
            data["owner_id"] = uuid.UUID(str(params["assignee_id"]))
        except ValueError:
            raise ValidationError({"assignee_id": ["a user id"]}) from None
    related_type, related_id = _related_of(entity)
    if related_type is not None:
        data.update(related_type=related_type, related_id=related_id)
    task = create_task(data, None)
    return {"task_id": str(task.id), "owner_id": str(task.owner_id) if task.owner_id else None}
