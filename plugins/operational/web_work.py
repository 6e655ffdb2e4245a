"""The operational plugin's staff pages for daily work: "my work", service cases with their
SLA timers, campaigns with their results.

Same services as ``/api/v1/my-work``, ``/tasks``, ``/cases`` and ``/campaigns``, with the
logged-in user's principal.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import sqlalchemy as sa
from flask import flash, redirect, render_template, request, url_for

from clientela.core.db import db, utcnow
from clientela.core.errors import Forbidden, ValidationError
from clientela.core.web import _, _l, field_errors, parse_id, principal, requires, safe_next
from clientela.plugins.operational import campaigns as campaign_service
from clientela.plugins.operational import cases as case_service
from clientela.plugins.operational import work
from clientela.plugins.operational import work_schemas
from clientela.plugins.operational.campaign_models import Campaign
from clientela.plugins.operational.web import (bp, customer_names, label, load_form,
                                               user_options, users_by_id)
from clientela.plugins.operational.work_models import CASE_STATUSES, ServiceCase

PAGE_SIZE = 25

PRIORITY_LABELS = {"low": _l("Low"), "normal": _l("Normal"), "high": _l("High"),
                   "urgent": _l("Urgent")}
CASE_STATUS_LABELS = {"new": _l("New"), "open": _l("Open"), "pending": _l("Pending"),
                      "resolved": _l("Resolved"), "closed": _l("Closed")}
TASK_STATUS_LABELS = {"open": _l("Open"), "in_progress": _l("In progress"),
                      "done": _l("Done"), "cancelled": _l("Cancelled")}
TASK_KIND_LABELS = {"call": _l("Call"), "meeting": _l("Meeting"), "todo": _l("To-do"),
                    "email": _l("E-mail")}
SLA_LABELS = {"on_time": _l("On time"), "at_risk": _l("At risk"), "breached": _l("Breached"),
              "met": _l("Met"), "none": _l("No SLA")}
SLA_BADGES = {"on_time": "badge-ok", "met": "badge-ok", "at_risk": "badge-warn",
              "breached": "badge-danger", "none": ""}
CAMPAIGN_STATUS_LABELS = {"draft": _l("Draft"), "scheduled": _l("Scheduled"),
                          "sending": _l("Sending"), "sent": _l("Sent"),
                          "cancelled": _l("Cancelled")}
RESPONSE_LABELS = {"delivered": _l("Delivered"), "opened": _l("Opened"),
                   "clicked": _l("Clicked"), "replied": _l("Replied"),
                   "converted": _l("Converted"), "unsubscribed": _l("Unsubscribed")}
#: what is left of an SLA window when a case counts as at risk
AT_RISK_SHARE = 0.25
AT_RISK_MINIMUM = dt.timedelta(hours=1)


def sla_state(case: ServiceCase, now: dt.datetime | None = None) -> dict[str, Any]:
    """Where a case stands against its SLA: ``key`` (on_time, at_risk, breached, met, none),
    and ``left`` (time to the next deadline) or ``overdue`` (time past it)."""
    now = now or utcnow()
    breached = bool(case.first_response_breached_at or case.resolution_breached_at)
    state: dict[str, Any] = {"left": None, "overdue": None, "due": None}
    if case.status in case_service.DONE_CASE:
        state["key"] = "breached" if breached else ("met" if case.sla_policy_id else "none")
    else:
        due = work.case_due(case)
        state["due"] = due
        if due is not None and due <= now:
            state.update(key="breached", overdue=now - due)
        elif breached:
            state.update(key="breached", left=due - now if due else None)
        elif due is None:
            state["key"] = "none"
        else:
            left = due - now
            window = due - (case.created_at or now)
            at_risk = left <= max(window * AT_RISK_SHARE, AT_RISK_MINIMUM)
            state.update(key="at_risk" if at_risk else "on_time", left=left)
    state["label"] = label(SLA_LABELS, state["key"])
    state["badge"] = SLA_BADGES[state["key"]]
    return state


# --- my work ----------------------------------------------------------------------------------


@bp.route("/my-work")
def my_work():
    who = principal()
    if not (who.can("tasks:read") or who.can("cases:read")):
        raise Forbidden("you lack the permission tasks:read or cases:read")
    now = utcnow()
    answer = work.my_work(who, now)
    for item in answer["items"]:
        item["late_by"] = now - item["due_at"] if item["overdue"] else None
        item["left"] = item["due_at"] - now if item["due_at"] and not item["overdue"] else None
    return render_template(
        "operational/my_work.html", items=answer["items"], overdue=answer["overdue"],
        notifications=answer["notifications"],
        customers=customer_names(i["customer_id"] for i in answer["items"]),
        can_complete=who.can("tasks:write"),
        priority_label=lambda p: label(PRIORITY_LABELS, p),
        kind_label=lambda k: label(TASK_KIND_LABELS, k),
        status_label=lambda t, s: label(TASK_STATUS_LABELS if t == "task"
                                        else CASE_STATUS_LABELS, s))


@bp.route("/tasks/<task_id>/complete", methods=["POST"])
@requires("tasks:write")
def complete_task(task_id: str):
    who = principal()
    task = work.get_task(parse_id(task_id), who)
    try:
        data = load_form(work_schemas.CompleteInput(), ("outcome",))
    except ValidationError as exc:
        flash(" ".join(m for ms in field_errors(exc).values() for m in ms), "error")
        return redirect(url_for(".my_work"), 303)
    work.complete_task(task.id, data.get("outcome"), who)
    db.session.commit()
    flash(_("Task completed: %(title)s", title=task.title), "success")
    return redirect(safe_next(request.form.get("next") or url_for(".my_work")), 303)


# --- cases ------------------------------------------------------------------------------------


@bp.route("/cases")
@requires("cases:read")
def cases():
    who = principal()
    q = (request.args.get("q") or "").strip()
    status = request.args.get("status") or None
    if status not in CASE_STATUSES:
        status = None
    show = request.args.get("show", "open")
    page = max(1, request.args.get("page", 1, type=int) or 1)
    stmt = case_service.cases_query(who, q=q or None, status=status,
                                    open=True if show == "open" and not status else None)
    total = db.session.execute(sa.select(sa.func.count()).select_from(stmt.subquery())
                               ).scalar_one()
    rows = db.session.execute(
        stmt.order_by(ServiceCase.created_at.desc(), ServiceCase.id)
        .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).scalars().all()
    now = utcnow()
    args = {k: v for k, v in (("q", q), ("status", status), ("show", show)) if v}
    return render_template(
        "operational/cases.html", cases=rows, sla={c.id: sla_state(c, now) for c in rows},
        total=total, page=page, pages=max(1, math.ceil(total / PAGE_SIZE)), args=args, q=q,
        status=status, show=show, users=users_by_id(),
        customers=customer_names(c.customer_id for c in rows),
        statuses=[(s, label(CASE_STATUS_LABELS, s)) for s in CASE_STATUSES],
        status_label=lambda s: label(CASE_STATUS_LABELS, s),
        priority_label=lambda p: label(PRIORITY_LABELS, p))


def _case_page(case: ServiceCase, errors: dict | None = None, status: int = 200):
    who = principal()
    return render_template(
        "operational/case.html", case=case, sla=sla_state(case), errors=errors or {},
        users=users_by_id(), user_options=user_options(),
        customer=customer_names([case.customer_id]).get(case.customer_id),
        interactions=case_service.case_interactions(case.id, who),
        can_write=who.can("cases:write"),
        status_label=lambda s: label(CASE_STATUS_LABELS, s),
        priority_label=lambda p: label(PRIORITY_LABELS, p)), status


@bp.route("/cases/<case_id>")
@requires("cases:read")
def case(case_id: str):
    return _case_page(case_service.get_case(parse_id(case_id), principal()))


@bp.route("/cases/<case_id>/assign", methods=["POST"])
@requires("cases:write")
def assign_case(case_id: str):
    who = principal()
    found = case_service.get_case(parse_id(case_id), who)
    try:
        data = load_form(work_schemas.CaseInput(), ("owner_id",), partial=True)
        data.setdefault("owner_id", None)  # "nobody": back to the queue
        case_service.update_case(found.id, data, who)
        db.session.commit()
    except ValidationError as exc:
        db.session.rollback()
        return _case_page(case_service.get_case(found.id, who), field_errors(exc), 422)
    flash(_("Case assigned."), "success")
    return redirect(url_for(".case", case_id=found.id), 303)


@bp.route("/cases/<case_id>/status", methods=["POST"])
@requires("cases:write")
def case_status(case_id: str):
    who = principal()
    found = case_service.get_case(parse_id(case_id), who)
    try:
        data = load_form(work_schemas.CaseInput(), ("status", "satisfaction"), partial=True)
        if "status" not in data:
            raise ValidationError({"status": [_("Choose a status.")]})
        case_service.update_case(found.id, data, who)
        db.session.commit()
    except ValidationError as exc:
        db.session.rollback()
        return _case_page(case_service.get_case(found.id, who), field_errors(exc), 422)
    flash(_("Case is now %(status)s.", status=label(CASE_STATUS_LABELS, data["status"])),
          "success")
    return redirect(url_for(".case", case_id=found.id), 303)


# --- campaigns --------------------------------------------------------------------------------


@bp.route("/campaigns")
@requires("campaigns:read")
def campaigns():
    who = principal()
    page = max(1, request.args.get("page", 1, type=int) or 1)
    stmt = campaign_service.campaigns_query(who)
    total = db.session.execute(sa.select(sa.func.count()).select_from(stmt.subquery())
                               ).scalar_one()
    rows = db.session.execute(stmt.order_by(Campaign.created_at.desc(), Campaign.id)
                              .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).scalars().all()
    return render_template(
        "operational/campaigns.html", campaigns=rows, page=page, args={},
        pages=max(1, math.ceil(total / PAGE_SIZE)),
        results={c.id: campaign_service.results(c.id, who) for c in rows},
        status_label=lambda s: label(CAMPAIGN_STATUS_LABELS, s))


def _visible_deals(deals: list, who) -> list:
    """The campaign's deals the user may read (the same record scope as ``/deals``)."""
    from clientela.plugins.operational import services as ops
    from clientela.plugins.operational.models import Deal

    if not deals or not who.can("deals:read"):
        return []
    visible = set(db.session.execute(ops.deals_query(who).with_only_columns(Deal.id).where(
        Deal.id.in_([d.id for d in deals]))).scalars())
    return [d for d in deals if d.id in visible]


@bp.route("/campaigns/<campaign_id>")
@requires("campaigns:read")
def campaign(campaign_id: str):
    who = principal()
    found = campaign_service.get_campaign(parse_id(campaign_id), who)
    results = campaign_service.results(found.id, who)
    return render_template(
        "operational/campaign.html", campaign=found, results=results, users=users_by_id(),
        response_chart=[(str(RESPONSE_LABELS[kind]), figure["count"])
                        for kind, figure in results["responses"].items()],
        deals=_visible_deals(campaign_service.campaign_deals(found.id, who), who),
        status_label=lambda s: label(CAMPAIGN_STATUS_LABELS, s),
        response_labels=RESPONSE_LABELS)


__all__ = ["sla_state", "PRIORITY_LABELS", "CASE_STATUS_LABELS", "SLA_LABELS"]
