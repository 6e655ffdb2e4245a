"""Service cases, SLA policies counted in business hours, the breach job and its escalation,
and cases opened from inbound messages.

Every function runs in the current tenant and needs no request; those acting for a user take
the ``Principal`` whose permissions and record scope apply (``None`` for the system). They
flush but never commit.
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from typing import Any

import sqlalchemy as sa
from flask import current_app

from clientela.core import access, services
from clientela.core.access import Principal
from clientela.core.db import db, utcnow
from clientela.core.errors import NotFound, ValidationError
from clientela.core.models import Customer, Interaction
from clientela.plugins.operational import work
from clientela.plugins.operational.work_models import (
    PRIORITIES,
    CaseInteraction,
    ServiceCase,
    SlaPolicy,
)

CASE_SORT = {"created_at", "updated_at", "priority", "status", "subject",
             "first_response_due_at", "resolution_due_at"}
OPEN_CASE = work.OPEN_CASE
DONE_CASE = ("resolved", "closed")

# --- business hours --------------------------------------------------------------------------


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError({"timezone": [f"unknown time zone {name!r}"]}) from None


def add_business_minutes(start: dt.datetime, minutes: int, *, business_days: list[int],
                         start_hour: int, end_hour: int, timezone: str) -> dt.datetime:
    """``start`` plus ``minutes`` of business time: only the hours ``start_hour`` to
    ``end_hour`` (local time of ``timezone``) of the ISO weekdays ``business_days`` count.
    The answer is in UTC."""
    zone = _zone(timezone)
    days = {int(d) for d in business_days}
    if not days:
        raise ValidationError({"business_days": ["name at least one business day"]})
    remaining = dt.timedelta(minutes=minutes)
    cursor = start.astimezone(zone)
    for _ in range(366 * 10):
        day = cursor.date()
        opens = dt.datetime.combine(day, dt.time(start_hour), tzinfo=zone)
        closes = (dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
                  if end_hour >= 24 else dt.datetime.combine(day, dt.time(end_hour), tzinfo=zone))
        if day.isoweekday() in days and cursor < closes:
            begin = max(cursor, opens).astimezone(dt.timezone.utc)
            available = closes.astimezone(dt.timezone.utc) - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        cursor = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    raise ValidationError({"targets": ["the target does not fit in ten years of business "
                                       "hours"]})


# --- SLA policies ------------------------------------------------------------------------


def policies_query(principal: Principal | None):
    if principal is not None and not principal.can("sla:configure"):
        access.require(principal, "cases:read")
    return db.select(SlaPolicy).order_by(SlaPolicy.is_default.desc(), SlaPolicy.name,
                                         SlaPolicy.id)


def get_policy(policy_id: uuid.UUID, principal: Principal, write: bool = False) -> SlaPolicy:
    policy = db.session.execute(policies_query(principal).where(SlaPolicy.id == policy_id)
                                ).scalar_one_or_none()
    if policy is None:
        raise NotFound("SLA policy not found")
    if write:
        access.require(principal, "sla:configure")
    return policy


def _check_policy(data: dict[str, Any], policy: SlaPolicy | None = None) -> dict[str, Any]:
    data = dict(data)
    errors: dict[str, list[str]] = {}
    if "targets" in data:
        unknown = sorted(set(data["targets"]) - set(PRIORITIES))
        if unknown:
            errors["targets"] = [f"unknown priority {', '.join(unknown)}; use "
                                 f"{', '.join(PRIORITIES)}"]
    start = data.get("start_hour", policy.start_hour if policy else 9)
    end = data.get("end_hour", policy.end_hour if policy else 17)
    if start >= end:
        errors["end_hour"] = ["business hours end after they start"]
    if "timezone" in data:
        try:
            _zone(data["timezone"])
        except ValidationError as exc:
            errors.update(exc.errors)
    if "business_days" in data:
        data["business_days"] = sorted(set(data["business_days"]))
        if not data["business_days"]:
            errors["business_days"] = ["name at least one business day"]
    if data.get("escalation_user_id") is not None:
        try:
            work.check_owner(data["escalation_user_id"], None, "sla:configure",
                             "escalation_user_id")
        except ValidationError as exc:
            errors.update(exc.errors)
    if errors:
        raise ValidationError(errors)
    return data


def _only_default(policy: SlaPolicy) -> None:
    if policy.is_default:
        db.session.execute(sa.update(SlaPolicy).where(SlaPolicy.id != policy.id)
                           .values(is_default=False).execution_options(synchronize_session=False))


def create_policy(data: dict[str, Any], principal: Principal) -> SlaPolicy:
    access.require(principal, "sla:configure")
    data = _check_policy(data)
    if db.session.execute(db.select(SlaPolicy.id).limit(1)).first() is None:
        data.setdefault("is_default", True)  # the first policy applies to every case
    policy = SlaPolicy(**data)
    db.session.add(policy)
    db.session.flush()
    _only_default(policy)
    return policy


def update_policy(policy_id: uuid.UUID, data: dict[str, Any], principal: Principal
                  ) -> SlaPolicy:
    policy = get_policy(policy_id, principal, write=True)
    for key, value in _check_policy(data, policy).items():
        setattr(policy, key, value)
    db.session.flush()
    _only_default(policy)
    # open cases under the policy follow its new targets
    for case in db.session.execute(db.select(ServiceCase).where(
            ServiceCase.sla_policy_id == policy.id, ServiceCase.status.in_(OPEN_CASE))
    ).scalars():
        apply_sla(case, policy)
    db.session.flush()
    return policy


def delete_policy(policy_id: uuid.UUID, principal: Principal) -> None:
    policy = get_policy(policy_id, principal, write=True)
    db.session.execute(sa.update(ServiceCase).where(ServiceCase.sla_policy_id == policy.id)
                       .values(sla_policy_id=None)
                       .execution_options(synchronize_session="fetch"))
    db.session.delete(policy)
    db.session.flush()


def default_policy() -> SlaPolicy | None:
    return db.session.execute(db.select(SlaPolicy).where(
        SlaPolicy.is_default.is_(True), SlaPolicy.active.is_(True)).limit(1)
    ).scalar_one_or_none()


def apply_sla(case: ServiceCase, policy: SlaPolicy | None) -> None:
    """Set the case's due times from ``policy``'s targets for its priority, counted in
    business hours from the moment the case was opened."""
    case.sla_policy_id = policy.id if policy is not None else None
    target = (policy.targets or {}).get(case.priority) if policy is not None else None
    if not target:
        case.first_response_due_at = case.resolution_due_at = None
        return
    opened = case.created_at or utcnow()
    hours = {"business_days": policy.business_days, "start_hour": policy.start_hour,
             "end_hour": policy.end_hour, "timezone": policy.timezone}
    first = target.get("first_response_minutes")
    resolution = target.get("resolution_minutes")
    case.first_response_due_at = (add_business_minutes(opened, int(first), **hours)
                                  if first is not None else None)
    case.resolution_due_at = (add_business_minutes(opened, int(resolution), **hours)
                              if resolution is not None else None)


# --- cases -----------------------------------------------------------------------------------


def cases_query(principal: Principal, *, status: str | None = None,
                priority: str | None = None, category: str | None = None,
                queue: str | None = None, channel: str | None = None,
                owner_id: uuid.UUID | None = None, customer_id: uuid.UUID | None = None,
                breached: bool | None = None, open: bool | None = None, q: str | None = None):
    """The select of the cases ``principal`` may read, filtered."""
    stmt = access.scope_filter(db.select(ServiceCase), ServiceCase.owner_id, principal,
                               "cases:read")
    for column, value in ((ServiceCase.status, status), (ServiceCase.priority, priority),
                          (ServiceCase.category, category), (ServiceCase.queue, queue),
                          (ServiceCase.channel, channel), (ServiceCase.owner_id, owner_id),
                          (ServiceCase.customer_id, customer_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    if open is not None:
        stmt = stmt.where(ServiceCase.status.in_(OPEN_CASE) if open
                          else ServiceCase.status.in_(DONE_CASE))
    breach = sa.or_(ServiceCase.first_response_breached_at.is_not(None),
                    ServiceCase.resolution_breached_at.is_not(None))
    if breached is not None:
        stmt = stmt.where(breach if breached else sa.not_(breach))
    if q and q.strip():
        stmt = stmt.where(sa.func.lower(ServiceCase.subject).like(f"%{q.strip().lower()}%"))
    return stmt


def get_case(case_id: uuid.UUID, principal: Principal, permission: str = "cases:read"
             ) -> ServiceCase:
    case = db.session.execute(cases_query(principal).where(ServiceCase.id == case_id)
                              ).scalar_one_or_none()
    if case is None:
        raise NotFound("case not found")
    if permission != "cases:read":
        access.check_record(case.owner_id, principal, "cases:read", permission)
    return case


def _check_customer(customer_id: uuid.UUID | None) -> None:
    if customer_id is None:
        return
    if db.session.execute(db.select(Customer.id).where(Customer.id == customer_id)
                          ).first() is None:
        raise ValidationError({"customer_id": ["no customer with this id"]})


def _policy_for(data: dict[str, Any]) -> SlaPolicy | None:
    if data.get("sla_policy_id") is not None:
        policy = db.session.execute(db.select(SlaPolicy).where(
            SlaPolicy.id == data["sla_policy_id"])).scalar_one_or_none()
        if policy is None:
            raise ValidationError({"sla_policy_id": ["no SLA policy with this id"]})
        return policy
    return default_policy()


def create_case(data: dict[str, Any], principal: Principal | None = None) -> ServiceCase:
    """Open a case; without ``owner_id`` the routing rules choose one (else it waits in its
    queue, unassigned, or goes to a creator who may only own records)."""
    data = dict(data)
    if principal is not None:
        access.require(principal, "cases:write")
    if data.get("status") in DONE_CASE or data.get("satisfaction") is not None:
        raise ValidationError({"status": ["a case is opened new, open or pending"]})
    _check_customer(data.get("customer_id"))
    policy = _policy_for(data)
    data.pop("sla_policy_id", None)
    case = ServiceCase(**data)
    if case.owner_id is None and work.may_route(principal, "cases:write"):
        case.owner_id = work.route("case", case)
    if case.owner_id is None and principal is not None and (
            principal.scope("cases:write") == "own"):
        case.owner_id = principal.user_id
    work.check_owner(case.owner_id, principal, "cases:write")
    db.session.add(case)
    db.session.flush()
    apply_sla(case, policy)  # counted from created_at, which the flush set
    db.session.flush()
    if case.owner_id is not None and case.owner_id != getattr(principal, "user_id", None):
        work.notify(case.owner_id, "assigned", f"assigned:{case.id}:{case.owner_id}",
                    f"Case assigned to you: {case.subject}", "case", case.id)
    return case


def _late(due: dt.datetime | None, at: dt.datetime) -> bool:
    return due is not None and at > due


def update_case(case_id: uuid.UUID, data: dict[str, Any], principal: Principal
                ) -> ServiceCase:
    case = get_case(case_id, principal, "cases:write")
    data = dict(data)
    now = utcnow()
    if "customer_id" in data:
        _check_customer(data["customer_id"])
    if "owner_id" in data:
        work.check_owner(data["owner_id"], principal, "cases:write")
        if data["owner_id"] not in (None, case.owner_id, principal.user_id):
            work.notify(data["owner_id"], "assigned", f"assigned:{case.id}:{data['owner_id']}",
                        f"Case assigned to you: {case.subject}", "case", case.id)
    status = data.pop("status", case.status)
    satisfaction = data.pop("satisfaction", None)
    if satisfaction is not None and status != "closed":
        raise ValidationError({"satisfaction": ["the customer rates a case when it is closed"]})
    policy_changed = "sla_policy_id" in data or (
        "priority" in data and data["priority"] != case.priority)
    policy = _policy_for(data) if "sla_policy_id" in data else None
    data.pop("sla_policy_id", None)
    for key, value in data.items():
        setattr(case, key, value)
    if policy_changed:
        if policy is None and case.sla_policy_id is not None:
            policy = db.session.get(SlaPolicy, (case.tenant_id, case.sla_policy_id))
        apply_sla(case, policy)
    if status != case.status:
        if status in DONE_CASE:
            if case.first_response_at is None:
                case.first_response_at = now  # resolving answers the customer
                if _late(case.first_response_due_at, now):
                    case.first_response_breached_at = case.first_response_breached_at or now
            if case.resolved_at is None:
                case.resolved_at = now
                if _late(case.resolution_due_at, now):
                    case.resolution_breached_at = case.resolution_breached_at or now
            if status == "closed":
                case.closed_at = now
        else:  # reopened
            case.resolved_at = None
            case.closed_at = None
            case.satisfaction = None
        case.status = status
    if satisfaction is not None:
        case.satisfaction = satisfaction
    db.session.flush()
    return case


def delete_case(case_id: uuid.UUID, principal: Principal) -> None:
    case = get_case(case_id, principal, "cases:write")
    db.session.delete(case)
    db.session.flush()


def attach(case: ServiceCase, interaction: Interaction) -> None:
    exists = db.session.execute(db.select(CaseInteraction.id).where(
        CaseInteraction.case_id == case.id, CaseInteraction.interaction_id == interaction.id)
    ).first()
    if exists is None:
        db.session.add(CaseInteraction(case_id=case.id, interaction_id=interaction.id))
        db.session.flush()


def case_interactions(case_id: uuid.UUID, principal: Principal) -> list[Interaction]:
    case = get_case(case_id, principal)
    access.require(principal, "interactions:read")
    return list(db.session.execute(
        db.select(Interaction).join(CaseInteraction, sa.and_(
            CaseInteraction.tenant_id == Interaction.tenant_id,
            CaseInteraction.interaction_id == Interaction.id))
        .where(CaseInteraction.case_id == case.id)
        .order_by(Interaction.occurred_at, Interaction.id)
    ).scalars())


def log_interaction(case_id: uuid.UUID, data: dict[str, Any], principal: Principal
                    ) -> Interaction:
    """Record a call (or any touchpoint) on the case's customer's timeline and attach it to
    the case. An outbound one is the case's first response if there was none."""
    case = get_case(case_id, principal, "cases:write")
    access.require(principal, "interactions:write")
    if case.customer_id is None:
        raise ValidationError({"customer_id": ["the case has no customer to record it for"]})
    data = dict(data)
    attributes = dict(data.pop("attributes", None) or {})
    if data.get("duration_seconds") is not None:
        attributes["duration_seconds"] = data.pop("duration_seconds")
    data.pop("duration_seconds", None)
    attributes["case_id"] = str(case.id)
    interaction = services.record_interaction(
        case.customer_id, data.pop("channel", "phone"),
        direction=data.get("direction", "inbound"), occurred_at=data.get("occurred_at"),
        subject=data.get("subject") or case.subject, body=data.get("body", ""),
        outcome=data.get("outcome"), user_id=principal.user_id, attributes=attributes)
    attach(case, interaction)
    if interaction.direction == "outbound" and case.first_response_at is None:
        case.first_response_at = interaction.occurred_at
        if _late(case.first_response_due_at, case.first_response_at):
            case.first_response_breached_at = case.first_response_breached_at or utcnow()
    if case.status == "new":
        case.status = "open"
    db.session.flush()
    return interaction


# --- the breach job ------------------------------------------------------------------------


def _escalate(case: ServiceCase, which: str, now: dt.datetime) -> dict[str, Any]:
    """Reassign to the policy's escalation user and tell both, or tell the owner."""
    label = "first response" if which == "first_response" else "resolution"
    policy = db.session.get(SlaPolicy, (case.tenant_id, case.sla_policy_id)) \
        if case.sla_policy_id else None
    target = policy.escalation_user_id if policy is not None else None
    previous = case.owner_id
    subject = f"SLA {label} breached: {case.subject}"
    if target is not None and target != previous:
        case.owner_id = target
        work.notify(target, "escalation", f"escalation:{case.id}:{which}",
                    f"Escalated to you ({label} overdue): {case.subject}", "case", case.id)
        action = "reassigned"
    else:
        action = "notified"
    work.notify(previous, "sla_breach", f"sla_breach:{case.id}:{which}", subject, "case",
                case.id)
    case.escalated_at = now
    return {"case_id": str(case.id), "breach": which, "action": action}


def check_sla_breaches(now: dt.datetime | None = None) -> dict[str, Any]:
    """The periodic breach job: flag every open case past a due time it has not met, and
    escalate it. A case is flagged (and escalated) once per target: running it again
    changes nothing."""
    now = now or utcnow()
    late_response = sa.and_(ServiceCase.first_response_at.is_(None),
                            ServiceCase.first_response_due_at < now,
                            ServiceCase.first_response_breached_at.is_(None))
    late_resolution = sa.and_(ServiceCase.resolution_due_at < now,
                              ServiceCase.resolution_breached_at.is_(None))
    cases = db.session.execute(
        db.select(ServiceCase).where(ServiceCase.status.in_(OPEN_CASE),
                                     sa.or_(late_response, late_resolution))
        .order_by(ServiceCase.created_at, ServiceCase.id)
    ).scalars().all()
    actions = []
    for case in cases:
        if (case.first_response_at is None and case.first_response_due_at is not None
                and case.first_response_due_at < now and case.first_response_breached_at is None):
            case.first_response_breached_at = now
            actions.append(_escalate(case, "first_response", now))
        if (case.resolution_due_at is not None and case.resolution_due_at < now
                and case.resolution_breached_at is None):
            case.resolution_breached_at = now
            actions.append(_escalate(case, "resolution", now))
    db.session.flush()
    return {"breaches": len(actions), "actions": actions}


# --- inbound messages ------------------------------------------------------------------------


def _id_of(item: Any) -> Any:
    return item.get("id") if isinstance(item, dict) else getattr(item, "id", None)


def on_inbound_message(interaction: Interaction, thread: list) -> dict[str, Any] | None:
    """Attach an inbound message to the open case of its thread, or open a case for it
    (``OPERATIONAL_CASES_FROM_INBOUND``)."""
    if not current_app.config.get("OPERATIONAL_CASES_FROM_INBOUND", True):
        return None
    earlier = [i for i in (_id_of(t) for t in thread or []) if i is not None]
    case = None
    if earlier:
        case = db.session.execute(
            db.select(ServiceCase).join(CaseInteraction, sa.and_(
                CaseInteraction.tenant_id == ServiceCase.tenant_id,
                CaseInteraction.case_id == ServiceCase.id))
            .where(CaseInteraction.interaction_id.in_(earlier),
                   ServiceCase.status.in_(OPEN_CASE))
            .order_by(ServiceCase.created_at.desc(), ServiceCase.id).limit(1)
        ).scalar_one_or_none()
    if case is not None:
        attach(case, interaction)
        if case.status == "pending":
            case.status = "open"  # the customer answered
        db.session.flush()
        return {"type": "case", "id": case.id, "created": False}
    subject = (interaction.subject or "").strip() or f"Message via {interaction.channel}"
    case = create_case({"subject": subject[:500], "description": interaction.body or "",
                        "customer_id": interaction.customer_id,
                        "channel": interaction.channel}, None)
    attach(case, interaction)
    return {"type": "case", "id": case.id, "created": True}

