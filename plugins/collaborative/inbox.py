"""The communication centre: one queue of inbound interactions that need an answer.

Every inbound ``Interaction`` (any channel) gets an ``InboxItem`` in the transaction that
records it. Items are assigned to a user and/or a team, move through ``open`` → ``pending``
(answered, waiting for the customer) → ``done``, carry internal notes with @mentions, and
are answered on their own channel through ``clientela.core.channels.send_message``.

Visibility follows the ``inbox:read`` scope: ``own`` sees the items assigned to the user
or mentioning them; ``team`` also sees the queues of the user's teams, the items assigned
to team mates and the shared queue (no team, no assignee); ``all`` sees everything.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import sqlalchemy as sa

from clientela.core import access, channels, services
from clientela.core.access import Principal
from clientela.core.db import db, utcnow
from clientela.core.errors import Forbidden, NotFound, ValidationError
from clientela.core.models import AuditEvent, Customer, Interaction, User
from clientela.plugins.collaborative import teams
from clientela.plugins.collaborative.collab_models import (
    INBOX_STATUSES,
    InboxItem,
    InboxMention,
    InboxNote,
    Team,
)

#: ``@ada@example.com`` (an e-mail address) or ``@ada`` (the local part, when unique)
MENTION_RE = re.compile(r"(?<![\w.@])@([A-Za-z0-9._%+-]+(?:@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)?)")


# --- creation (from the interaction hook) ----------------------------------------------------


def item_for_interaction(interaction: Interaction) -> InboxItem | None:
    """Queue an inbound interaction (idempotent); ``None`` for other directions."""
    if interaction.direction != "inbound":
        return None
    existing = db.session.execute(db.select(InboxItem).where(
        InboxItem.interaction_id == interaction.id)).scalar_one_or_none()
    if existing is not None:
        return existing
    item = InboxItem(interaction_id=interaction.id, customer_id=interaction.customer_id,
                     channel=interaction.channel, subject=(interaction.subject or "")[:500],
                     status="open", received_at=interaction.occurred_at or utcnow())
    db.session.add(item)
    db.session.flush()
    return item


# --- reading ---------------------------------------------------------------------------------


def _mentioned(user_id: uuid.UUID):
    return InboxItem.id.in_(db.select(InboxMention.item_id).where(InboxMention.user_id == user_id))


def visible_condition(principal: Principal):
    """The WHERE that limits items to the principal's ``inbox:read`` scope (``None``: all)."""
    scope = access.require(principal, "inbox:read")
    if scope == "all":
        return None
    me = principal.user_id
    conditions = [InboxItem.assignee_id == me, _mentioned(me)]
    if scope == "team":
        my_teams = teams.team_ids_of(me)
        mates = access.team_member_ids(principal)
        conditions += [InboxItem.team_id.in_(my_teams), InboxItem.assignee_id.in_(mates),
                       sa.and_(InboxItem.team_id.is_(None), InboxItem.assignee_id.is_(None))]
    return sa.or_(*conditions)


def items_query(principal: Principal, *, status: str | None = None,
                team: uuid.UUID | None = None, assignee: str | None = None,
                channel: str | None = None, customer_id: uuid.UUID | None = None,
                mentioned: bool | None = None):
    stmt = db.select(InboxItem)
    condition = visible_condition(principal)
    if condition is not None:
        stmt = stmt.where(condition)
    if status:
        stmt = stmt.where(InboxItem.status.in_(status.split(",")))
    if team:
        stmt = stmt.where(InboxItem.team_id == team)
    if assignee == "me":
        stmt = stmt.where(InboxItem.assignee_id == principal.user_id)
    elif assignee == "none":
        stmt = stmt.where(InboxItem.assignee_id.is_(None))
    elif assignee:
        try:
            stmt = stmt.where(InboxItem.assignee_id == uuid.UUID(assignee))
        except ValueError:
            raise ValidationError({"query": {"assignee": ["use a user id, 'me' or 'none'"]}},
                                  message="Invalid query.") from None
    if channel:
        stmt = stmt.where(InboxItem.channel == channel)
    if customer_id:
        stmt = stmt.where(InboxItem.customer_id == customer_id)
    if mentioned:
        stmt = stmt.where(_mentioned(principal.user_id))
    return stmt


def get_item(item_id: uuid.UUID, principal: Principal) -> InboxItem:
    stmt = items_query(principal).where(InboxItem.id == item_id)
    item = db.session.execute(stmt).scalar_one_or_none()
    if item is None:
        raise NotFound("inbox item not found")
    return item


def _writable(item: InboxItem, principal: Principal) -> None:
    """Writing needs ``inbox:write`` with a scope that reaches the item."""
    scope = principal.scope("inbox:write")
    if scope is None:
        raise Forbidden("you lack the permission 'inbox:write'")
    if scope == "all":
        return
    me = principal.user_id
    if item.assignee_id == me:
        return
    if scope == "team":
        if item.team_id is None and item.assignee_id is None:
            return
        if item.team_id is not None and item.team_id in teams.team_ids_of(me):
            return
        if item.assignee_id in access.team_member_ids(principal):
            return
    raise Forbidden("you lack the permission 'inbox:write' on this item")


def decorate(items: list[InboxItem]) -> list[InboxItem]:
    """Add the customer's name and the message's body to items for display."""
    if not items:
        return items
    names = dict(db.session.execute(db.select(Customer.id, Customer.display_name).where(
        Customer.id.in_({i.customer_id for i in items}))).all())
    bodies = {row.id: row for row in db.session.execute(
        db.select(Interaction.id, Interaction.body, Interaction.attributes).where(
            Interaction.id.in_({i.interaction_id for i in items}))).all()}
    for item in items:
        item.customer_name = names.get(item.customer_id)
        row = bodies.get(item.interaction_id)
        item.body = row.body if row else ""
    return items


# --- assignment and status --------------------------------------------------------------------


def update_item(item_id: uuid.UUID, data: dict[str, Any], principal: Principal) -> InboxItem:
    """Change status, assignee (a user of the tenant) or team of an item."""
    item = get_item(item_id, principal)
    _writable(item, principal)
    errors: dict[str, list[str]] = {}
    if "status" in data:
        if data["status"] not in INBOX_STATUSES:
            errors["status"] = [f"must be one of {', '.join(INBOX_STATUSES)}"]
        else:
            item.status = data["status"]
            item.done_at = utcnow() if item.status == "done" else None
    if "assignee_id" in data:
        assignee = data["assignee_id"]
        if assignee is not None and db.session.execute(db.select(User.id).where(
                User.id == assignee, User.is_active.is_(True))).first() is None:
            errors["assignee_id"] = ["no active user with this id"]
        else:
            item.assignee_id = assignee
    if "team_id" in data:
        team_id = data["team_id"]
        if team_id is not None and db.session.execute(
                db.select(Team.id).where(Team.id == team_id)).first() is None:
            errors["team_id"] = ["no team with this id"]
        else:
            item.team_id = team_id
    if errors:
        db.session.rollback()
        raise ValidationError(errors)
    db.session.flush()
    return item


# --- notes and mentions -----------------------------------------------------------------------


def resolve_mentions(text: str) -> tuple[list[User], list[str]]:
    """The tenant's users @mentioned in ``text``, and the mentions that match nobody."""
    found: dict[uuid.UUID, User] = {}
    unresolved: list[str] = []
    for handle in dict.fromkeys(m.rstrip(".") for m in MENTION_RE.findall(text or "")):
        handle_l = handle.lower()
        if "@" in handle_l:
            candidates = db.session.execute(db.select(User).where(
                User.email == handle_l, User.is_active.is_(True))).scalars().all()
        else:
            candidates = db.session.execute(db.select(User).where(
                User.email.like(f"{handle_l}@%"), User.is_active.is_(True))).scalars().all()
        if len(candidates) == 1:
            found[candidates[0].id] = candidates[0]
        else:
            unresolved.append(handle)
    return list(found.values()), unresolved


def notes(item_id: uuid.UUID, principal: Principal) -> list[InboxNote]:
    item = get_item(item_id, principal)
    result = db.session.execute(db.select(InboxNote).where(InboxNote.item_id == item.id)
                                .order_by(InboxNote.created_at, InboxNote.id)).scalars().all()
    mentions: dict[uuid.UUID, list[uuid.UUID]] = {}
    for note_id, user_id in db.session.execute(
            db.select(InboxMention.note_id, InboxMention.user_id).where(
                InboxMention.item_id == item.id)).all():
        mentions.setdefault(note_id, []).append(user_id)
    for note in result:
        note.mentions = mentions.get(note.id, [])
        note.unresolved_mentions = []
    return result


def add_note(item_id: uuid.UUID, body: str, principal: Principal) -> InboxNote:
    """An internal note; every resolved @mention makes the item visible to that user.

    Anyone who sees the item and holds ``inbox:write`` may add one: a mentioned colleague
    answers in a note without taking the item over."""
    item = get_item(item_id, principal)
    access.require(principal, "inbox:write")
    if not (body or "").strip():
        raise ValidationError({"body": ["a note needs some text"]})
    note = InboxNote(item_id=item.id, author_id=principal.user_id, body=body)
    db.session.add(note)
    db.session.flush()
    users, unresolved = resolve_mentions(body)
    for user in users:
        db.session.add(InboxMention(item_id=item.id, note_id=note.id, user_id=user.id))
    db.session.flush()
    note.mentions = [u.id for u in users]
    note.unresolved_mentions = unresolved
    return note


# --- reply ------------------------------------------------------------------------------------


def reply(item_id: uuid.UUID, data: dict[str, Any], principal: Principal) -> dict[str, Any]:
    """Answer the customer on the item's own channel (purpose ``service``).

    When the message is sent or queued, the item becomes ``pending`` (waiting for the
    customer) unless ``status`` says otherwise; a blocked or failed send changes nothing.
    """
    item = get_item(item_id, principal)
    _writable(item, principal)
    access.require(principal, "interactions:write")
    customer = services.get_customer(item.customer_id)
    inbound = db.session.get(Interaction, (item.tenant_id, item.interaction_id))
    subject = data.get("subject") or _reply_subject(inbound.subject if inbound else item.subject)
    message: dict[str, Any] = {
        "channel": item.channel, "purpose": "service", "subject": subject,
        "body": data["body"], "source": "inbox",
        "attributes": {"inbox_item_id": str(item.id), "in_reply_to": str(item.interaction_id),
                       "user_id": str(principal.user_id)},
    }
    reference = ((inbound.attributes or {}).get("message_id") if inbound else None)
    if reference:
        message["headers"] = {"In-Reply-To": reference, "References": reference}
    if inbound is not None and inbound.channel == "email":
        sender = (inbound.attributes or {}).get("from")
        if sender:
            message["to"] = sender
    result = dict(channels.send_message(message, customer))
    if result.get("status") in ("sent", "queued"):
        status = data.get("status") or "pending"
        item.status = status
        item.done_at = utcnow() if status == "done" else None
        if item.assignee_id is None:
            item.assignee_id = principal.user_id
        db.session.flush()
    result.setdefault("interaction_id", None)
    result["item"] = item
    return result


def _reply_subject(subject: str) -> str:
    subject = subject or ""
    return subject if subject.lower().startswith("re:") else f"Re: {subject}".strip()


# --- customers: merge, export -------------------------------------------------------------------


def merge_into(survivor_id: uuid.UUID, merged_id: uuid.UUID) -> None:
    db.session.execute(sa.update(InboxItem).where(InboxItem.customer_id == merged_id)
                       .values(customer_id=survivor_id)
                       .execution_options(synchronize_session="fetch"))


def export_for(customer_id: uuid.UUID) -> list[dict[str, Any]]:
    items = db.session.execute(db.select(InboxItem).where(InboxItem.customer_id == customer_id)
                               .order_by(InboxItem.received_at)).scalars()
    return [{"id": str(i.id), "interaction_id": str(i.interaction_id), "channel": i.channel,
             "subject": i.subject, "status": i.status, "received_at": i.received_at.isoformat()}
            for i in items]


def erase_for(customer_id: uuid.UUID) -> dict[str, Any]:
    """Right to erasure: the items' subjects and their notes may quote the customer; blank
    them, and redact their before/after values in the audit trail."""
    item_ids = list(db.session.execute(db.select(InboxItem.id).where(
        InboxItem.customer_id == customer_id)).scalars())
    if not item_ids:
        return {"inbox_items_anonymised": 0}
    note_ids = list(db.session.execute(db.select(InboxNote.id).where(
        InboxNote.item_id.in_(item_ids))).scalars())
    db.session.execute(sa.update(InboxItem).where(InboxItem.id.in_(item_ids)).values(subject="")
                       .execution_options(synchronize_session="fetch"))
    db.session.execute(sa.update(InboxNote).where(InboxNote.id.in_(note_ids))
                       .values(body="[erased]").execution_options(synchronize_session="fetch"))
    redact_audit([*item_ids, *note_ids])
    return {"inbox_items_anonymised": len(item_ids), "notes_anonymised": len(note_ids)}


def redact_audit(entity_ids: list[uuid.UUID]) -> None:
    """Blank the before/after values of these records' audit events (as the core does for the
    customer's own): redaction is the one change audit rows allow, outside the ORM."""
    if entity_ids:
        db.session.execute(sa.update(AuditEvent).where(AuditEvent.entity_id.in_(entity_ids))
                           .values(changes={"redacted": "erased"})
                           .execution_options(synchronize_session=False))


__all__ = ["add_note", "get_item", "item_for_interaction", "items_query", "notes", "reply",
           "resolve_mentions", "update_item"]
