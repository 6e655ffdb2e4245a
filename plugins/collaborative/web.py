"""The communication centre's staff pages (``/app/inbox``): the inbox, a conversation, reply
from the channel, assign, change status, internal notes.

Every view calls the same service functions as ``/api/v1/inbox`` (``inbox.items_query``,
``get_item``, ``update_item``, ``add_note``, ``reply``) with the logged-in user's principal, so
the pages reach exactly the items the user's ``inbox:read`` scope reaches; anything else is 404.
"""

from __future__ import annotations

import math
import uuid

import sqlalchemy as sa
from flask import flash, redirect, render_template, request, url_for

from clientela.core import customers as customer_service
from clientela.core.db import db
from clientela.core.errors import ValidationError
from clientela.core.models import Interaction, User
from clientela.core.web import field_errors, parse_id, principal, requires, staff_blueprint
from clientela.core.web.i18n import _, _l
from clientela.plugins.collaborative import inbox, teams
from clientela.plugins.collaborative.collab_models import INBOX_STATUSES, InboxItem, Team

bp = staff_blueprint("collaborative_web", __name__, "/inbox", static_folder="static",
                     static_url_path="/static")

PAGE_SIZE = 25

#: the built-in channels' labels (registered in English by channels.py): listed here so that
#: the catalogue holds them and the core's ``channel_label()`` shows them translated
CHANNEL_LABELS = (_l("In person"), _l("Phone call"), _l("E-mail"), _l("Letter"), _l("Fax"),
                  _l("Web form"), _l("Customer portal"), _l("Chat"), _l("SMS"))
STATUS_LABELS = {"open": _l("Open"), "pending": _l("Waiting for the customer"),
                 "done": _l("Done")}
VIEWS = {"open": _l("Open"), "mine": _l("Assigned to me"), "team": _l("My teams"),
         "all": _l("All")}


def status_label(status: str) -> str:
    return str(STATUS_LABELS.get(status, status))


def _filtered(view: str, status: str | None):
    who = principal()
    stmt = inbox.items_query(who, status=status or None)
    if view == "open":
        stmt = stmt.where(InboxItem.status == "open")
    elif view == "mine":
        stmt = stmt.where(InboxItem.assignee_id == who.user_id)
    elif view == "team":
        stmt = stmt.where(InboxItem.team_id.in_(teams.team_ids_of(who.user_id)))
    return stmt


@bp.route("")
@requires("inbox:read")
def items():
    view = request.args.get("view") or "open"
    if view not in VIEWS:
        view = "open"
    status = request.args.get("status") or None
    if status and status not in INBOX_STATUSES:
        status = None
    page = max(1, request.args.get("page", 1, type=int) or 1)
    stmt = _filtered(view, status)
    total = db.session.execute(
        sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery())).scalar_one()
    rows = db.session.execute(
        stmt.order_by(InboxItem.received_at.desc(), InboxItem.id)
        .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).scalars().all()
    inbox.decorate(rows)
    args = {key: value for key, value in (("view", view), ("status", status)) if value}
    return render_template("collaborative/inbox.html", items=rows, total=total, page=page,
                           pages=max(1, math.ceil(total / PAGE_SIZE)), args=args, view=view,
                           status=status, views=VIEWS, statuses=STATUS_LABELS,
                           status_label=status_label)


def _thread(item: InboxItem) -> list[Interaction]:
    """The message and what was sent in answer to it (replies carry the item's id)."""
    who = principal()
    inbound = db.session.get(Interaction, (item.tenant_id, item.interaction_id))
    thread = [inbound] if inbound is not None else []
    if who.can("interactions:read"):
        later = db.session.execute(
            customer_service.interactions_query(who, customer_id=item.customer_id)
            .where(Interaction.direction == "outbound",
                   Interaction.occurred_at >= item.received_at)
            .order_by(Interaction.occurred_at, Interaction.id).limit(500)).scalars().all()
        thread += [i for i in later
                   if (i.attributes or {}).get("inbox_item_id") == str(item.id)]
    return thread


def _assign_options() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Users and teams an item may be given to: the user, and the members of the teams the
    user may see (``teams:read``, as the API's ``/teams/{id}/members``)."""
    who = principal()
    users: dict[str, str] = {str(who.user_id): _("Me (%(email)s)", email=who.email)}
    team_options: list[tuple[str, str]] = []
    if who.can("teams:read"):
        for team in db.session.execute(teams.teams_query(who)).scalars():
            team_options.append((str(team.id), team.name))
            for member in teams.members(team.id, who):
                users.setdefault(str(member["user_id"]), member["email"])
    return sorted(users.items(), key=lambda kv: kv[1]), team_options


def _names(item: InboxItem) -> dict[str, str]:
    ids = {i for i in (item.assignee_id,) if i}
    names = {}
    if ids:
        names.update({str(k): v for k, v in db.session.execute(
            db.select(User.id, User.email).where(User.id.in_(ids))).all()})
    if item.team_id:
        team = db.session.execute(db.select(Team.name).where(Team.id == item.team_id)).first()
        if team:
            names["team"] = team[0]
    return names


def _conversation(item_id: uuid.UUID, errors=None, form=None, status: int = 200):
    who = principal()
    item = inbox.decorate([inbox.get_item(item_id, who)])[0]
    notes = inbox.notes(item.id, who)
    authors = dict(db.session.execute(db.select(User.id, User.email).where(
        User.id.in_({n.author_id for n in notes} or {uuid.uuid4()}))).all())
    users, team_options = _assign_options()
    return render_template(
        "collaborative/conversation.html", item=item, thread=_thread(item), notes=notes,
        authors=authors, names=_names(item), users=users, team_options=team_options,
        statuses=STATUS_LABELS, status_label=status_label, errors=errors or {},
        form=form or {}, may_write=who.can("inbox:write"),
        may_reply=who.can("inbox:write") and who.can("interactions:write")), status


@bp.route("/<item_id>")
@requires("inbox:read")
def conversation(item_id: str):
    return _conversation(parse_id(item_id))


@bp.route("/<item_id>/reply", methods=["POST"])
@requires("inbox:write")
def reply(item_id: str):
    key = parse_id(item_id)
    data = {"body": request.form.get("body") or "",
            "subject": (request.form.get("subject") or "").strip() or None}
    if request.form.get("status") in INBOX_STATUSES:
        data["status"] = request.form["status"]
    if not data["body"].strip():
        inbox.get_item(key, principal())  # a foreign id is a 404, not a form error
        return _conversation(key, {"body": [_("Write a reply.")]}, request.form, 422)
    try:
        result = inbox.reply(key, data, principal())
    except ValidationError as exc:
        db.session.rollback()
        return _conversation(key, field_errors(exc), request.form, 422)
    db.session.commit()
    outcome = result.get("status")
    if outcome in ("sent", "queued"):
        flash(_("Reply sent."), "success")
    elif outcome == "blocked":
        flash(_("Not sent: the customer may not be contacted on this channel (%(reason)s).",
                reason=result.get("reason") or ""), "error")
    else:
        flash(_("Not sent: %(error)s", error=result.get("error") or outcome), "error")
    return redirect(url_for(".conversation", item_id=key))


def _optional_uuid(value: str | None, field: str) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValidationError({field: [_("Choose one of the offered values.")]}) from None


@bp.route("/<item_id>/update", methods=["POST"])
@requires("inbox:write")
def update(item_id: str):
    key = parse_id(item_id)
    who = principal()
    data: dict = {}
    form = request.form
    try:
        if form.get("action") == "take":
            data["assignee_id"] = who.user_id
        elif form.get("action") == "done":
            data["status"] = "done"
        else:
            if "status" in form:
                data["status"] = form["status"]
            if "assignee_id" in form:
                data["assignee_id"] = _optional_uuid(form["assignee_id"], "assignee_id")
            if "team_id" in form:
                data["team_id"] = _optional_uuid(form["team_id"], "team_id")
        inbox.update_item(key, data, who)
    except ValidationError as exc:
        db.session.rollback()
        inbox.get_item(key, who)
        return _conversation(key, field_errors(exc), form, 422)
    db.session.commit()
    flash(_("Saved."), "success")
    return redirect(url_for(".conversation", item_id=key))


@bp.route("/<item_id>/notes", methods=["POST"])
@requires("inbox:write")
def add_note(item_id: str):
    key = parse_id(item_id)
    try:
        note = inbox.add_note(key, request.form.get("note") or "", principal())
    except ValidationError as exc:
        db.session.rollback()
        errors = field_errors(exc)
        if "body" in errors:
            errors["note"] = errors.pop("body")
        return _conversation(key, errors, request.form, 422)
    db.session.commit()
    if note.unresolved_mentions:
        flash(_("Note added; nobody matches %(mentions)s.",
                mentions=", ".join("@" + m for m in note.unresolved_mentions)), "error")
    else:
        flash(_("Note added."), "success")
    return redirect(url_for(".conversation", item_id=key))


__all__ = ["bp", "CHANNEL_LABELS", "status_label"]
