"""The collaborative plugin's channel tables: mail accounts, mailboxes, templates, messages, inbound keys, calls."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from clientela.core.models import Entity, tenant_fk
from clientela.core.models.user import BOOKKEEPING, SECRET

SMTP_SECURITY = ("starttls", "ssl", "none")
IMAP_SECURITY = ("ssl", "starttls", "none")
MESSAGE_DIRECTIONS = ("inbound", "outbound")
MESSAGE_STATUSES = ("matched", "unmatched")
KEY_SCOPES = ("mail", "calls", "messages")
CALL_DIRECTIONS = ("inbound", "outbound")


class MailAccount(Entity):
    """A tenant's outgoing SMTP account; the password is stored encrypted (Fernet)."""

    __tablename__ = "collaborative_mail_accounts"

    name: Mapped[str] = mapped_column(sa.String(200))
    host: Mapped[str] = mapped_column(sa.String(255))
    port: Mapped[int]
    security: Mapped[str] = mapped_column(sa.String(10), default="starttls")
    username: Mapped[str | None] = mapped_column(sa.String(320))
    password_encrypted: Mapped[str | None] = mapped_column(sa.Text, info=SECRET)
    from_address: Mapped[str] = mapped_column(sa.String(320))
    from_name: Mapped[str | None] = mapped_column(sa.String(200))
    is_default: Mapped[bool] = mapped_column(default=False)

    __table_args__ = (sa.CheckConstraint(f"security IN {SMTP_SECURITY}", name="security"),)


class Mailbox(Entity):
    """An IMAP mailbox polled for inbound mail; a private one is seen by its owner and
    the users it is shared with only."""

    __tablename__ = "collaborative_mailboxes"

    name: Mapped[str] = mapped_column(sa.String(200))
    address: Mapped[str | None] = mapped_column(sa.String(320))
    host: Mapped[str | None] = mapped_column(sa.String(255))
    port: Mapped[int | None]
    security: Mapped[str] = mapped_column(sa.String(10), default="ssl")
    username: Mapped[str | None] = mapped_column(sa.String(320))
    password_encrypted: Mapped[str | None] = mapped_column(sa.Text, info=SECRET)
    folder: Mapped[str] = mapped_column(sa.String(200), default="INBOX")
    owner_id: Mapped[uuid.UUID | None]
    private: Mapped[bool] = mapped_column(default=False)
    shared_with: Mapped[list] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(default=True)
    uid_validity: Mapped[int | None] = mapped_column(sa.BigInteger)
    last_uid: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    last_polled_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.String(1000))

    __table_args__ = (
        tenant_fk("owner_id", "users"),
        sa.CheckConstraint(f"security IN {IMAP_SECURITY}", name="security"),
    )


class MailTemplate(Entity):
    """A reusable e-mail with Jinja2 merge fields (rendered in a sandbox)."""

    __tablename__ = "collaborative_mail_templates"

    name: Mapped[str] = mapped_column(sa.String(200))
    subject: Mapped[str] = mapped_column(sa.String(500))
    body: Mapped[str] = mapped_column(sa.Text)
    html: Mapped[str | None] = mapped_column(sa.Text)

    __table_args__ = (sa.UniqueConstraint("tenant_id", "name"),)


class MailMessage(Entity):
    """One e-mail in or out, threaded by its headers; matched to a customer or not."""

    __tablename__ = "collaborative_mail_messages"

    message_id: Mapped[str] = mapped_column(sa.String(500))
    in_reply_to: Mapped[str | None] = mapped_column(sa.String(500))
    references: Mapped[list] = mapped_column(default=list)
    thread_id: Mapped[uuid.UUID]
    direction: Mapped[str] = mapped_column(sa.String(10))
    status: Mapped[str] = mapped_column(sa.String(10), default="unmatched")
    source: Mapped[str] = mapped_column(sa.String(20))
    from_address: Mapped[str | None] = mapped_column(sa.String(320))
    from_name: Mapped[str | None] = mapped_column(sa.String(300))
    to: Mapped[list] = mapped_column(default=list)
    cc: Mapped[list] = mapped_column(default=list)
    subject: Mapped[str] = mapped_column(sa.String(500), default="")
    body: Mapped[str] = mapped_column(sa.Text, default="")
    sent_at: Mapped[dt.datetime]
    customer_id: Mapped[uuid.UUID | None]
    interaction_id: Mapped[uuid.UUID | None]
    mailbox_id: Mapped[uuid.UUID | None]
    attachments: Mapped[list] = mapped_column(default=list)

    __table_args__ = (
        tenant_fk("customer_id", "customers", ondelete="CASCADE"),
        tenant_fk("interaction_id", "interactions", ondelete="CASCADE"),
        tenant_fk("mailbox_id", "collaborative_mailboxes", ondelete="CASCADE"),
        sa.CheckConstraint(f"direction IN {MESSAGE_DIRECTIONS}", name="direction"),
        sa.CheckConstraint(f"status IN {MESSAGE_STATUSES}", name="status"),
        sa.UniqueConstraint("tenant_id", "message_id"),
        sa.Index("ix_collaborative_mail_messages_tenant_thread", "tenant_id", "thread_id",
                 "sent_at"),
        sa.Index("ix_collaborative_mail_messages_tenant_customer", "tenant_id", "customer_id"),
        sa.Index("ix_collaborative_mail_messages_tenant_status", "tenant_id", "status"),
    )


class InboundKey(Entity):
    """A tenant-owned key authenticating the mail and telephony webhooks (hash stored)."""

    __tablename__ = "collaborative_inbound_keys"

    name: Mapped[str] = mapped_column(sa.String(200))
    scope: Mapped[str] = mapped_column(sa.String(10))
    key_hash: Mapped[str] = mapped_column(sa.String(64), info=SECRET)
    prefix: Mapped[str] = mapped_column(sa.String(16))
    last_used_at: Mapped[dt.datetime | None] = mapped_column(info=BOOKKEEPING)

    __table_args__ = (
        sa.CheckConstraint(f"scope IN {KEY_SCOPES}", name="scope"),
        sa.UniqueConstraint("tenant_id", "key_hash"),
    )


class Call(Entity):
    """One telephone call reported by the telephony webhook, matched to a customer or not."""

    __tablename__ = "collaborative_calls"

    external_id: Mapped[str | None] = mapped_column(sa.String(200))
    direction: Mapped[str] = mapped_column(sa.String(10))
    from_number: Mapped[str | None] = mapped_column(sa.String(40))
    to_number: Mapped[str | None] = mapped_column(sa.String(40))
    number: Mapped[str | None] = mapped_column(sa.String(20))
    started_at: Mapped[dt.datetime]
    duration_seconds: Mapped[int] = mapped_column(default=0)
    recording_url: Mapped[str | None] = mapped_column(sa.String(2000))
    agent_id: Mapped[uuid.UUID | None]
    customer_id: Mapped[uuid.UUID | None]
    interaction_id: Mapped[uuid.UUID | None]

    __table_args__ = (
        tenant_fk("agent_id", "users"),
        tenant_fk("customer_id", "customers", ondelete="CASCADE"),
        tenant_fk("interaction_id", "interactions", ondelete="CASCADE"),
        sa.CheckConstraint(f"direction IN {CALL_DIRECTIONS}", name="direction"),
        sa.UniqueConstraint("tenant_id", "external_id"),
        sa.Index("ix_collaborative_calls_tenant_number", "tenant_id", "number"),
        sa.Index("ix_collaborative_calls_tenant_started", "tenant_id", "started_at"),
    )


class ChannelMessage(Entity):
    """One inbound chat or SMS message from the channel webhook, matched to a customer or not."""

    __tablename__ = "collaborative_channel_messages"

    channel: Mapped[str] = mapped_column(sa.String(40))
    external_id: Mapped[str | None] = mapped_column(sa.String(200))
    sender: Mapped[str] = mapped_column(sa.String(320))
    recipient: Mapped[str | None] = mapped_column(sa.String(320))
    conversation_id: Mapped[str | None] = mapped_column(sa.String(200))
    text: Mapped[str] = mapped_column(sa.Text, default="")
    occurred_at: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(sa.String(10), default="unmatched")
    customer_id: Mapped[uuid.UUID | None]
    interaction_id: Mapped[uuid.UUID | None]

    __table_args__ = (
        tenant_fk("customer_id", "customers", ondelete="CASCADE"),
        tenant_fk("interaction_id", "interactions", ondelete="CASCADE"),
        sa.CheckConstraint(f"status IN {MESSAGE_STATUSES}", name="status"),
        sa.UniqueConstraint("tenant_id", "channel", "external_id"),
        sa.Index("ix_collaborative_channel_messages_tenant_conversation", "tenant_id",
                 "channel", "conversation_id", "occurred_at"),
        sa.Index("ix_collaborative_channel_messages_tenant_status", "tenant_id", "status"),
    )


MODELS = (MailAccount, Mailbox, MailTemplate, MailMessage, InboundKey, Call, ChannelMessage)
