"""The tables of teams, the communication centre, consent and the customer self-service portal."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from clientela.core.models import Entity, tenant_fk

INBOX_STATUSES = ("open", "pending", "done")
CONSENT_PURPOSES = ("marketing", "service")
PORTAL_STATUSES = ("invited", "active", "disabled")
PORTAL_TOKEN_KINDS = ("invite", "link", "session")

SECRET = {"secret": True}  # never written to the audit trail
BOOKKEEPING = {"audit": False}  # changes alone are not worth an audit event


class Team(Entity):
    """A group of users: a queue of the communication centre and the ``team`` record scope."""

    __tablename__ = "collaborative_teams"

    name: Mapped[str] = mapped_column(sa.String(100))
    description: Mapped[str] = mapped_column(sa.String(500), default="")

    __table_args__ = (sa.UniqueConstraint("tenant_id", "name"),)


class TeamMember(Entity):
    """A user in a team; a lead may manage the team's members and its queue."""

    __tablename__ = "collaborative_team_members"

    team_id: Mapped[uuid.UUID]
    user_id: Mapped[uuid.UUID]
    is_lead: Mapped[bool] = mapped_column(default=False)

    __table_args__ = (
        tenant_fk("team_id", "collaborative_teams", ondelete="CASCADE"),
        tenant_fk("user_id", "users", ondelete="CASCADE"),
        sa.UniqueConstraint("tenant_id", "team_id", "user_id"),
        sa.Index("ix_collaborative_team_members_tenant_user", "tenant_id", "user_id"),
    )


class InboxItem(Entity):
    """An inbound interaction that needs an answer, in the communication centre's queue."""

    __tablename__ = "collaborative_inbox_items"

    interaction_id: Mapped[uuid.UUID]
    customer_id: Mapped[uuid.UUID]
    channel: Mapped[str] = mapped_column(sa.String(40))
    subject: Mapped[str] = mapped_column(sa.String(500), default="")
    status: Mapped[str] = mapped_column(sa.String(10), default="open")
    assignee_id: Mapped[uuid.UUID | None]
    team_id: Mapped[uuid.UUID | None]
    received_at: Mapped[dt.datetime]
    done_at: Mapped[dt.datetime | None]

    __table_args__ = (
        tenant_fk("interaction_id", "interactions", ondelete="CASCADE"),
        tenant_fk("customer_id", "customers", ondelete="CASCADE"),
        tenant_fk("assignee_id", "users"),
        tenant_fk("team_id", "collaborative_teams"),
        sa.CheckConstraint(f"status IN {INBOX_STATUSES}", name="status"),
        sa.UniqueConstraint("tenant_id", "interaction_id"),
        sa.Index("ix_collaborative_inbox_items_tenant_status", "tenant_id", "status",
                 "received_at"),
        sa.Index("ix_collaborative_inbox_items_tenant_assignee", "tenant_id", "assignee_id"),
        sa.Index("ix_collaborative_inbox_items_tenant_team", "tenant_id", "team_id"),
        sa.Index("ix_collaborative_inbox_items_tenant_customer", "tenant_id", "customer_id"),
    )


class InboxNote(Entity):
    """An internal note on an inbox item; never sent to the customer."""

    __tablename__ = "collaborative_inbox_notes"

    item_id: Mapped[uuid.UUID]
    author_id: Mapped[uuid.UUID | None]
    body: Mapped[str] = mapped_column(sa.Text)

    __table_args__ = (
        tenant_fk("item_id", "collaborative_inbox_items", ondelete="CASCADE"),
        tenant_fk("author_id", "users"),
        sa.Index("ix_collaborative_inbox_notes_tenant_item", "tenant_id", "item_id"),
    )


class InboxMention(Entity):
    """A user @mentioned in a note: the item shows in that user's list."""

    __tablename__ = "collaborative_inbox_mentions"

    item_id: Mapped[uuid.UUID]
    note_id: Mapped[uuid.UUID]
    user_id: Mapped[uuid.UUID]

    __table_args__ = (
        tenant_fk("item_id", "collaborative_inbox_items", ondelete="CASCADE"),
        tenant_fk("note_id", "collaborative_inbox_notes", ondelete="CASCADE"),
        tenant_fk("user_id", "users", ondelete="CASCADE"),
        sa.UniqueConstraint("tenant_id", "note_id", "user_id"),
        sa.Index("ix_collaborative_inbox_mentions_tenant_user", "tenant_id", "user_id"),
    )


class Consent(Entity):
    """One consent decision: granted or withdrawn, per channel and purpose, with its source.

    Append-only: the latest row of a (customer, channel, purpose) is the state, the earlier
    ones are the proof of what was decided when.
    """

    __tablename__ = "collaborative_consents"

    customer_id: Mapped[uuid.UUID]
    channel: Mapped[str] = mapped_column(sa.String(40))
    purpose: Mapped[str] = mapped_column(sa.String(20))
    granted: Mapped[bool]
    source: Mapped[str] = mapped_column(sa.String(100))
    recorded_at: Mapped[dt.datetime]
    note: Mapped[str] = mapped_column(sa.String(500), default="")

    __table_args__ = (
        tenant_fk("customer_id", "customers", ondelete="CASCADE"),
        sa.Index("ix_collaborative_consents_tenant_customer", "tenant_id", "customer_id",
                 "channel", "purpose", "recorded_at"),
    )


class PortalAccount(Entity):
    """The self-service portal login of one customer contact."""

    __tablename__ = "collaborative_portal_accounts"

    customer_id: Mapped[uuid.UUID]
    email: Mapped[str] = mapped_column(sa.String(320))
    password_hash: Mapped[str | None] = mapped_column(sa.String(255), info=SECRET)
    status: Mapped[str] = mapped_column(sa.String(10), default="invited")
    #: may see the people of the customer's organisation
    is_admin: Mapped[bool] = mapped_column(default=False)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(info=BOOKKEEPING)

    __table_args__ = (
        tenant_fk("customer_id", "customers", ondelete="CASCADE"),
        sa.CheckConstraint(f"status IN {PORTAL_STATUSES}", name="status"),
        sa.UniqueConstraint("tenant_id", "customer_id"),
        sa.UniqueConstraint("tenant_id", "email"),
    )


class PortalToken(Entity):
    """An invitation, a one-time login link or a portal session; only the hash is stored."""

    __tablename__ = "collaborative_portal_tokens"

    account_id: Mapped[uuid.UUID]
    kind: Mapped[str] = mapped_column(sa.String(10))
    token_hash: Mapped[str] = mapped_column(sa.String(64), info=SECRET)
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]

    __table_args__ = (
        tenant_fk("account_id", "collaborative_portal_accounts", ondelete="CASCADE"),
        sa.CheckConstraint(f"kind IN {PORTAL_TOKEN_KINDS}", name="kind"),
        sa.UniqueConstraint("tenant_id", "token_hash"),
    )


MODELS = (Team, TeamMember, InboxItem, InboxNote, InboxMention, Consent, PortalAccount,
          PortalToken)

__all__ = ["MODELS", *(m.__name__ for m in MODELS)]
