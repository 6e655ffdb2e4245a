"""Tasks and cases in the customer's 360° view, data-subject export and erasure, and merge."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from clientela.core.access import Principal
from clientela.core.db import db, utcnow
from clientela.core.models import AuditEvent, Customer, User
from clientela.plugins.operational import cases, work
from clientela.plugins.operational.work_models import (
    CaseInteraction,
    ServiceCase,
    SlaPolicy,
    Task,
    WorkNotification,
)


def _row(obj) -> dict[str, Any]:
    from clientela.core.events import json_safe

    return {attr.key: json_safe(getattr(obj, attr.key))
            for attr in sa.inspect(type(obj)).column_attrs if attr.key != "tenant_id"}


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def profile_sections(customer: Customer, principal: Principal | None) -> list[dict[str, Any]]:
    """The "Tasks" and "Cases" sections, within the viewer's record scope."""
    sections = []
    if principal is None or principal.can("tasks:read"):
        stmt = (work.tasks_query(principal, customer_id=customer.id) if principal is not None
                else db.select(Task).where(Task.customer_id == customer.id))
        tasks = db.session.execute(stmt.order_by(Task.due_at.is_(None), Task.due_at.desc(),
                                                 Task.id)).scalars().all()
        if tasks:
            sections.append({"key": "tasks", "title": "Tasks", "data": {
                "open": sum(t.status in work.OPEN_TASK for t in tasks),
                "done": sum(t.status == "done" for t in tasks),
                "recent": [{"id": str(t.id), "title": t.title, "kind": t.kind,
                            "status": t.status, "due_at": _iso(t.due_at),
                            "owner_id": str(t.owner_id) if t.owner_id else None}
                           for t in tasks[:10]],
            }})
    if principal is None or principal.can("cases:read"):
        stmt = (cases.cases_query(principal, customer_id=customer.id) if principal is not None
                else db.select(ServiceCase).where(ServiceCase.customer_id == customer.id))
        found = db.session.execute(stmt.order_by(ServiceCase.created_at.desc(), ServiceCase.id)
                                   ).scalars().all()
        if found:
            rated = [c.satisfaction for c in found if c.satisfaction is not None]
            sections.append({"key": "cases", "title": "Service cases", "data": {
                "open": sum(c.status in cases.OPEN_CASE for c in found),
                "resolved": sum(c.status in cases.DONE_CASE for c in found),
                "breached": sum(bool(c.first_response_breached_at or c.resolution_breached_at)
                                for c in found),
                "satisfaction": round(sum(rated) / len(rated), 2) if rated else None,
                "recent": [{"id": str(c.id), "subject": c.subject, "status": c.status,
                            "priority": c.priority, "created_at": _iso(c.created_at)}
                           for c in found[:10]],
            }})
    return sections


def _cases_of(customer_id: uuid.UUID) -> list[ServiceCase]:
    return list(db.session.execute(db.select(ServiceCase).where(
        ServiceCase.customer_id == customer_id).order_by(ServiceCase.created_at)).scalars())


def _tasks_of(customer_id: uuid.UUID) -> list[Task]:
    return list(db.session.execute(db.select(Task).where(
        Task.customer_id == customer_id).order_by(Task.created_at)).scalars())


def export_for(customer: Customer) -> dict[str, Any]:
    found = _cases_of(customer.id)
    links: dict[uuid.UUID, list[str]] = {}
    if found:
        for case_id, interaction_id in db.session.execute(
                sa.select(CaseInteraction.case_id, CaseInteraction.interaction_id)
                .where(CaseInteraction.case_id.in_([c.id for c in found]))):
            links.setdefault(case_id, []).append(str(interaction_id))
    return {
        "tasks": [_row(t) for t in _tasks_of(customer.id)],
        "cases": [{**_row(c), "interaction_ids": links.get(c.id, [])} for c in found],
    }


def erase_for(customer: Customer) -> dict[str, Any]:
    """Blank the words of the customer's tasks and cases; statuses, dates, priorities,
    SLA figures and ratings stay for reporting."""
    tasks = _tasks_of(customer.id)
    found = _cases_of(customer.id)
    for task in tasks:
        task.title = f"Task {str(task.id)[-12:]}"
        task.description = ""
        task.outcome = None
        task.attributes = {}
    for case in found:
        case.subject = f"Case {str(case.id)[-12:]}"
        case.description = ""
        case.attributes = {}
    db.session.flush()
    ids = [t.id for t in tasks] + [c.id for c in found]
    if ids:
        # notifications and the audit trail repeat the same words
        db.session.execute(sa.update(WorkNotification).where(
            WorkNotification.related_id.in_(ids)).values(subject="(erased)")
            .execution_options(synchronize_session=False))
        db.session.execute(sa.update(AuditEvent).where(AuditEvent.entity_id.in_(ids))
                           .values(changes={"redacted": "erased"})
                           .execution_options(synchronize_session=False))
    return {"tasks_anonymised": len(tasks), "cases_anonymised": len(found)}


def merge_into(survivor: Customer, merged_id: uuid.UUID) -> None:
    db.session.execute(sa.update(Task).where(Task.related_type == "customer",
                                             Task.related_id == merged_id)
                       .values(related_id=survivor.id)
                       .execution_options(synchronize_session="fetch"))
    for model in (Task, ServiceCase):
        db.session.execute(sa.update(model).where(model.customer_id == merged_id)
                           .values(customer_id=survivor.id)
                           .execution_options(synchronize_session="fetch"))


#: the tables whose rows a task can be about, by ``related_type``
RELATED_TABLES = {"operational_leads": "lead", "operational_deals": "deal",
                  "operational_cases": "case"}


def unlink_deleted(change: Any) -> None:
    """A deleted lead, deal or case leaves its tasks in place, about nothing any more (a
    deleted customer takes its tasks with it, as it does its interactions)."""
    related_type = RELATED_TABLES.get(change.entity_type)
    if change.operation != "delete" or related_type is None:
        return
    db.session.execute(sa.update(Task).where(Task.related_type == related_type,
                                             Task.related_id == change.entity_id)
                       .values(related_type=None, related_id=None)
                       .execution_options(synchronize_session=False))


def load_demo() -> None:
    """A default SLA policy, a few service cases and tasks (``clientela demo``)."""
    import datetime as dt

    owner = db.session.execute(db.select(User.id).order_by(User.created_at).limit(1)).scalar()
    people = db.session.execute(db.select(Customer).where(Customer.kind == "person")
                                .order_by(Customer.created_at).limit(6)).scalars().all()
    if db.session.execute(db.select(SlaPolicy.id).limit(1)).first() is None:
        db.session.add(SlaPolicy(name="Standard", is_default=True, targets={
            "low": {"first_response_minutes": 960, "resolution_minutes": 4800},
            "normal": {"first_response_minutes": 240, "resolution_minutes": 1920},
            "high": {"first_response_minutes": 60, "resolution_minutes": 960},
            "urgent": {"first_response_minutes": 15, "resolution_minutes": 240}}))
        db.session.flush()
    subjects = [("Delivery arrived damaged", "high", "logistics"),
                ("Invoice shows the wrong VAT number", "normal", "billing"),
                ("How do I reset the device?", "low", "how-to")]
    for customer, (subject, priority, category) in zip(people, subjects):
        cases.create_case({"subject": subject, "priority": priority, "category": category,
                           "channel": "phone", "queue": "level-1", "owner_id": owner,
                           "customer_id": customer.id})
    now = utcnow()
    for i, (customer, (title, kind)) in enumerate(zip(people[3:], [
            ("Follow-up call on the offer", "call"), ("Visit the new showroom", "meeting"),
            ("Send the price list", "email")])):
        work.create_task({"title": title, "kind": kind, "owner_id": owner,
                          "due_at": now + dt.timedelta(days=i * 2 - 1),
                          "related_type": "customer", "related_id": customer.id})
    db.session.flush()


def search(query: str, limit: int, principal) -> list[dict]:
    """The global search's answer: leads, deals and cases the principal may read."""
    from clientela.plugins.operational import cases, services
    from clientela.plugins.operational.models import Deal, Lead
    from clientela.plugins.operational.work_models import ServiceCase

    lowered = query.strip().lower()
    results: list[dict] = []

    def score(*values) -> float:
        return 1.0 if lowered in {(v or "").lower() for v in values} else 0.5

    if principal.can("leads:read"):
        stmt = services.leads_query(principal, q=query).order_by(Lead.created_at.desc(),
                                                                 Lead.id).limit(limit)
        for lead in db.session.execute(stmt).scalars():
            name = " ".join(p for p in (lead.first_name, lead.last_name) if p)
            results.append({"type": "lead", "id": lead.id,
                            "title": name or lead.company or lead.email or "lead",
                            "subtitle": lead.company if name else lead.email,
                            "score": score(name, lead.company, lead.email)})
    if principal.can("deals:read"):
        stmt = services.deals_query(principal, q=query).order_by(Deal.created_at.desc(),
                                                                  Deal.id).limit(limit)
        for deal in db.session.execute(stmt).scalars():
            results.append({"type": "deal", "id": deal.id, "title": deal.title,
                            "subtitle": f"{deal.amount} {deal.currency} · {deal.status}",
                            "score": score(deal.title)})
    if principal.can("cases:read"):
        stmt = cases.cases_query(principal, q=query).order_by(ServiceCase.created_at.desc(),
                                                              ServiceCase.id).limit(limit)
        for case in db.session.execute(stmt).scalars():
            results.append({"type": "case", "id": case.id, "title": case.subject,
                            "subtitle": f"{case.priority} · {case.status}",
                            "score": score(case.subject)})
    return results


def portal_records(customer_id) -> dict[str, list]:
    """The customer's service cases, as the customer sees them in the portal."""
    from clientela.plugins.operational.work_models import ServiceCase

    cases = db.session.execute(
        db.select(ServiceCase).where(ServiceCase.customer_id == customer_id)
        .order_by(ServiceCase.created_at.desc(), ServiceCase.id)).scalars()
    return {"cases": [{"id": str(case.id), "subject": case.subject, "status": case.status,
                       "priority": case.priority, "category": case.category,
                       "opened_at": case.created_at.isoformat(),
                       "resolved_at": case.resolved_at.isoformat() if case.resolved_at
                       else None} for case in cases]}


def unknown_sender(channel: str, address: str, name: str, subject: str, body: str) -> dict:
    """A message from an unknown address becomes a lead (or joins its open lead)."""
    from clientela.plugins.operational import services
    from clientela.plugins.operational.models import Lead

    existing = db.session.execute(
        db.select(Lead).where(sa.func.lower(Lead.email) == address.lower(),
                              Lead.status.not_in(("converted", "unqualified")))
        .order_by(Lead.created_at.desc(), Lead.id).limit(1)).scalar_one_or_none()
    if existing is not None:
        return {"type": "lead", "id": existing.id, "created": False}
    first, _, last = (name or "").strip().partition(" ")
    message = "\n\n".join(part for part in (subject, body) if part)
    lead = services.create_lead({"first_name": first or None, "last_name": last or None,
                                 "email": address, "source": channel,
                                 "message": message[:10000]}, None)
    return {"type": "lead", "id": lead.id, "created": True}
