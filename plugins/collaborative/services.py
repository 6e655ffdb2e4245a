"""Channels, e-mail in and out, inbound keys and calls: the collaborative plugin's business logic.

Every function here works without a request (CLI, jobs, tests); those taking a
``Principal`` check its permissions and record scope, the others run as the system in the
current tenant (webhooks, the IMAP poll job).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import imaplib
import logging
import mailbox as mboxlib
import os
import re
import secrets
import ssl
import tempfile
import uuid
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import (
    format_datetime,
    formataddr,
    getaddresses,
    make_msgid,
    parsedate_to_datetime,
)
from typing import Any, Iterable

import jinja2
import sqlalchemy as sa
from flask import current_app
from jinja2.sandbox import SandboxedEnvironment

from clientela.core import access, channels, customers, encryption, mail, tenancy
from clientela.core import services as core
from clientela.core.access import Principal
from clientela.core.db import db, utcnow
from clientela.core.errors import ConfigurationError, Conflict, NotFound, ValidationError
from clientela.core.events import plugin_hooks
from clientela.core.models import Customer, Interaction, User
from clientela.core.models.entity import new_id
from clientela.plugins.collaborative.channels import phone_region as _phone_region
from clientela.plugins.collaborative.models import (
    Call,
    ChannelMessage,
    InboundKey,
    MailAccount,
    Mailbox,
    MailMessage,
    MailTemplate,
)

log = logging.getLogger(__name__)

UNKNOWN_SENDER_MODES = ("unmatched", "customer", "lead")
_MSGID = re.compile(r"<[^<>\s]+>")
_TAG = re.compile(r"<[^>]+>")


# --- secrets at rest ------------------------------------------------------------------


#: the key derivation this plugin has always used (stored passwords stay readable)
_PURPOSE, _SALT = "mail credentials", "clientela.collaborative"


def encrypt(value: str | None) -> str | None:
    return encryption.encrypt(value, _PURPOSE, _SALT)


def decrypt(value: str | None) -> str | None:
    try:
        return encryption.decrypt(value, _PURPOSE, _SALT)
    except encryption.CannotDecrypt:
        raise ConfigurationError("a stored mail password cannot be decrypted: was the "
                                 "SECRET_KEY changed? Set the password again") from None


# --- SMTP accounts ----------------------------------------------------------------------


def accounts_query(principal: Principal):
    access.require(principal, "mail:configure")
    return db.select(MailAccount).order_by(MailAccount.created_at, MailAccount.id)


def get_account(account_id: uuid.UUID, principal: Principal) -> MailAccount:
    account = db.session.execute(
        accounts_query(principal).where(MailAccount.id == account_id)).scalar_one_or_none()
    if account is None:
        raise NotFound("mail account not found")
    return account


def _apply_secret(record, data: dict[str, Any]) -> None:
    if "password" in data:
        record.password_encrypted = encrypt(data.pop("password"))


def _single_default(account: MailAccount) -> None:
    if account.is_default:
        for other in db.session.execute(db.select(MailAccount).where(
                MailAccount.is_default.is_(True), MailAccount.id != account.id)).scalars():
            other.is_default = False


def create_account(data: dict[str, Any], principal: Principal) -> MailAccount:
    access.require(principal, "mail:configure")
    data = dict(data)
    first = db.session.execute(db.select(sa.func.count()).select_from(MailAccount)).scalar() == 0
    data.setdefault("is_default", first)
    account = MailAccount()
    _apply_secret(account, data)
    for key, value in data.items():
        setattr(account, key, value)
    db.session.add(account)
    db.session.flush()
    _single_default(account)
    return account


def update_account(account_id: uuid.UUID, data: dict[str, Any], principal: Principal
                   ) -> MailAccount:
    account = get_account(account_id, principal)
    data = dict(data)
    _apply_secret(account, data)
    for key, value in data.items():
        setattr(account, key, value)
    _single_default(account)
    db.session.flush()
    return account


def delete_account(account_id: uuid.UUID, principal: Principal) -> None:
    db.session.delete(get_account(account_id, principal))
    db.session.flush()


def default_account() -> MailAccount | None:
    return db.session.execute(db.select(MailAccount).order_by(
        MailAccount.is_default.desc(), MailAccount.created_at).limit(1)).scalar_one_or_none()


# --- templates --------------------------------------------------------------------------

_SANDBOX = SandboxedEnvironment(autoescape=False, undefined=jinja2.ChainableUndefined)
_HTML_SANDBOX = SandboxedEnvironment(autoescape=True, undefined=jinja2.ChainableUndefined)


def _compile(field: str, source: str | None, html: bool = False) -> None:
    if source is None:
        return
    try:
        (_HTML_SANDBOX if html else _SANDBOX).parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ValidationError({field: [f"line {exc.lineno}: {exc.message}"]}) from None


def templates_query(principal: Principal):
    access.require(principal, "mail:read")
    return db.select(MailTemplate).order_by(MailTemplate.name, MailTemplate.id)


def get_template(template_id: uuid.UUID, principal: Principal) -> MailTemplate:
    template = db.session.execute(
        templates_query(principal).where(MailTemplate.id == template_id)).scalar_one_or_none()
    if template is None:
        raise NotFound("mail template not found")
    return template


def _check_template(data: dict[str, Any]) -> None:
    for field in ("subject", "body", "html"):
        _compile(field, data.get(field), html=field == "html")


def _unique_name(name: str, self_id: uuid.UUID | None = None) -> None:
    stmt = db.select(MailTemplate.id).where(MailTemplate.name == name)
    if self_id is not None:
        stmt = stmt.where(MailTemplate.id != self_id)
    if db.session.execute(stmt).first() is not None:
        raise Conflict(f"a mail template named {name!r} exists")


def create_template(data: dict[str, Any], principal: Principal) -> MailTemplate:
    access.require(principal, "mail:configure")
    _check_template(data)
    _unique_name(data["name"])
    template = MailTemplate(**data)
    db.session.add(template)
    db.session.flush()
    return template


def update_template(template_id: uuid.UUID, data: dict[str, Any], principal: Principal
                    ) -> MailTemplate:
    access.require(principal, "mail:configure")
    template = get_template(template_id, principal)
    _check_template(data)
    if "name" in data:
        _unique_name(data["name"], template.id)
    for key, value in data.items():
        setattr(template, key, value)
    db.session.flush()
    return template


def delete_template(template_id: uuid.UUID, principal: Principal) -> None:
    access.require(principal, "mail:configure")
    db.session.delete(get_template(template_id, principal))
    db.session.flush()


def merge_fields(customer: Customer, sender: User | None = None,
                 data: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a template sees: ``customer``, ``sender`` and the caller's ``data``."""
    return {
        "customer": {
            "id": str(customer.id), "display_name": customer.display_name,
            "first_name": customer.first_name or "", "last_name": customer.last_name or "",
            "organisation_name": customer.organisation_name or "",
            "email": customer.email or "", "phone": customer.phone or "",
            "attributes": dict(customer.attributes or {}),
        },
        "sender": {"email": sender.email if sender else "",
                   "name": getattr(sender, "name", None) or (sender.email if sender else "")},
        "data": dict(data or {}),
    }


def render_template(template: MailTemplate, context: dict[str, Any]) -> dict[str, str | None]:
    """Render subject, body and HTML in Jinja2's sandbox; errors become a 422."""
    out: dict[str, str | None] = {}
    for field in ("subject", "body", "html"):
        source = getattr(template, field)
        if source is None:
            out[field] = None
            continue
        env = _HTML_SANDBOX if field == "html" else _SANDBOX
        try:
            out[field] = env.from_string(source).render(context)
        except jinja2.exceptions.SecurityError as exc:
            raise ValidationError({"template_id": [f"{field}: not allowed: {exc}"]}) from None
        except jinja2.TemplateError as exc:
            raise ValidationError({"template_id": [f"{field}: {exc}"]}) from None
    out["subject"] = " ".join((out["subject"] or "").split())  # no header injection
    return out


# --- mailboxes and privacy --------------------------------------------------------------


def _can_see_mailbox(mailbox: Mailbox, principal: Principal) -> bool:
    if not mailbox.private:
        return True
    user = str(principal.user_id) if principal.user_id else None
    return user is not None and (str(mailbox.owner_id) == user
                                 or user in {str(u) for u in mailbox.shared_with or []})


def hidden_mailbox_ids(principal: Principal) -> list[uuid.UUID]:
    """The private mailboxes whose mail ``principal`` may not see."""
    private = db.session.execute(db.select(Mailbox).where(Mailbox.private.is_(True))).scalars()
    return [m.id for m in private if not _can_see_mailbox(m, principal)]


def mailboxes_query(principal: Principal):
    access.require(principal, "mail:read")
    stmt = db.select(Mailbox).order_by(Mailbox.name, Mailbox.id)
    if not principal.can("mail:configure"):
        hidden = hidden_mailbox_ids(principal)
        if hidden:
            stmt = stmt.where(Mailbox.id.not_in(hidden))
    return stmt


def get_mailbox(mailbox_id: uuid.UUID, principal: Principal, write: bool = False) -> Mailbox:
    mailbox = db.session.execute(
        mailboxes_query(principal).where(Mailbox.id == mailbox_id)).scalar_one_or_none()
    if mailbox is None:
        raise NotFound("mailbox not found")
    if write:
        access.require(principal, "mail:configure")
    return mailbox


def _check_users(ids: Iterable[Any], field: str) -> None:
    ids = [uuid.UUID(str(i)) for i in ids]
    if not ids:
        return
    found = set(db.session.execute(db.select(User.id).where(User.id.in_(ids))).scalars())
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise ValidationError({field: [f"no such user: {', '.join(missing)}"]})


def _mailbox_values(mailbox: Mailbox, data: dict[str, Any]) -> None:
    data = dict(data)
    _apply_secret(mailbox, data)
    if "owner_id" in data and data["owner_id"] is not None:
        _check_users([data["owner_id"]], "owner_id")
    if "shared_with" in data:
        _check_users(data["shared_with"], "shared_with")
        data["shared_with"] = sorted({str(u) for u in data["shared_with"]})
    for key, value in data.items():
        setattr(mailbox, key, value)
    if mailbox.private and mailbox.owner_id is None:
        raise ValidationError({"owner_id": ["a private mailbox needs an owner"]})


def create_mailbox(data: dict[str, Any], principal: Principal) -> Mailbox:
    access.require(principal, "mail:configure")
    mailbox = Mailbox(shared_with=[])
    _mailbox_values(mailbox, data)
    db.session.add(mailbox)
    db.session.flush()
    return mailbox


def update_mailbox(mailbox_id: uuid.UUID, data: dict[str, Any], principal: Principal) -> Mailbox:
    mailbox = get_mailbox(mailbox_id, principal, write=True)
    if {"host", "username", "folder"} & set(data):
        mailbox.last_uid, mailbox.uid_validity = 0, None  # another mailbox: read it anew
    _mailbox_values(mailbox, data)
    db.session.flush()
    return mailbox


def delete_mailbox(mailbox_id: uuid.UUID, principal: Principal) -> None:
    db.session.delete(get_mailbox(mailbox_id, principal, write=True))
    db.session.flush()


# --- messages: reading ------------------------------------------------------------------


def messages_query(principal: Principal, *, customer_id: uuid.UUID | None = None,
                   thread_id: uuid.UUID | None = None, status: str | None = None,
                   mailbox_id: uuid.UUID | None = None, direction: str | None = None):
    """The messages ``principal`` may read: of customers in their scope (or unmatched),
    never of a private mailbox that is not theirs or shared with them."""
    access.require(principal, "mail:read")
    visible = customers.customers_query(principal).with_only_columns(Customer.id)
    stmt = db.select(MailMessage).where(sa.or_(MailMessage.customer_id.is_(None),
                                               MailMessage.customer_id.in_(visible)))
    hidden = hidden_mailbox_ids(principal)
    if hidden:
        stmt = stmt.where(sa.or_(MailMessage.mailbox_id.is_(None),
                                 MailMessage.mailbox_id.not_in(hidden)))
    for column, value in ((MailMessage.customer_id, customer_id),
                          (MailMessage.thread_id, thread_id), (MailMessage.status, status),
                          (MailMessage.mailbox_id, mailbox_id),
                          (MailMessage.direction, direction)):
        if value is not None:
            stmt = stmt.where(column == value)
    return stmt


def get_message(message_id: uuid.UUID, principal: Principal) -> MailMessage:
    message = db.session.execute(
        messages_query(principal).where(MailMessage.id == message_id)).scalar_one_or_none()
    if message is None:
        raise NotFound("message not found")
    return message


def attachment_path(message: MailMessage, index: int) -> tuple[str, dict[str, Any]]:
    items = [a for a in message.attachments or [] if a.get("stored")]
    found = next((a for a in items if a.get("index") == index), None)
    if found is None:
        raise NotFound("attachment not found")
    path = os.path.join(_files_root(), found["path"])
    if not os.path.isfile(path):
        raise NotFound("attachment file is missing")
    return path, found


# --- messages: parsing and storing ------------------------------------------------------


def _files_root() -> str:
    return os.path.join(current_app.config["HOME"], "tenants",
                        str(tenancy.current_tenant_id()), "files")


def _msgids(value: Any) -> list[str]:
    """The ``<id>`` tokens of a header; an id too long for its column becomes a stable
    digest (the same for every message that names it)."""
    return [m if len(m) <= 500 else f"<sha256.{hashlib.sha256(m.encode()).hexdigest()}>"
            for m in _MSGID.findall(str(value or ""))]


def _external_id(message_id: str) -> str:
    if len(message_id) <= 200:
        return message_id
    return "sha256:" + hashlib.sha256(message_id.encode()).hexdigest()


def _addresses(message: Message, header: str) -> list[tuple[str, str]]:
    values = [str(v) for v in message.get_all(header) or []]
    return [(name, addr.strip().lower()) for name, addr in getaddresses(values)
            if addr and "@" in addr and len(addr.strip()) <= 320]


def _text_of(message: Message) -> str:
    part = message.get_body(preferencelist=("plain", "html")) if hasattr(message, "get_body") \
        else None
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, KeyError):  # an unknown charset
        content = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
    if not isinstance(content, str):
        return ""
    if part.get_content_type() == "text/html":
        content = _TAG.sub(" ", content)
    return content.strip()


def _sent_at(message: Message) -> dt.datetime:
    try:
        when = parsedate_to_datetime(str(message["Date"])) if message["Date"] else None
    except (TypeError, ValueError, IndexError):
        when = None
    if when is None:
        return utcnow()
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.astimezone(dt.timezone.utc)


def _safe_name(name: str) -> str:
    name = os.path.basename(name.replace("\\", "/")).strip() or "attachment"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:120] or "attachment"


def _store_attachments(parsed: Message, record: MailMessage) -> list[dict[str, Any]]:
    limit = int(current_app.config["COLLABORATIVE_MAX_ATTACHMENT_BYTES"])
    stored = []
    for index, part in enumerate(parsed.iter_attachments()):
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename() or f"attachment-{index}"
        item = {"index": index, "filename": filename, "content_type": part.get_content_type(),
                "size": len(payload), "stored": False}
        if len(payload) > limit:
            item["reason"] = f"larger than the limit of {limit} bytes"
        else:
            relative = os.path.join("mail", str(record.id), f"{index}-{_safe_name(filename)}")
            path = os.path.join(_files_root(), relative)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as handle:
                handle.write(payload)
            item.update(stored=True, path=relative,
                        sha256=hashlib.sha256(payload).hexdigest())
        stored.append(item)
    return stored


def _own_addresses() -> set[str]:
    rows = db.session.execute(db.select(MailAccount.from_address)).scalars().all()
    rows += db.session.execute(db.select(Mailbox.address)).scalars().all()
    return {r.lower() for r in rows if r}


def customer_for_address(address: str) -> Customer | None:
    """The customer with ``address`` as their e-mail or one of their e-mails (oldest first)."""
    address = address.strip().lower()
    listed = sa.func.lower(sa.cast(Customer.emails, sa.Text)).contains(
        f'"{address}"', autoescape=True)
    candidates = db.session.execute(
        db.select(Customer).where(sa.or_(Customer.email == address, listed))
        .order_by(Customer.created_at, Customer.id)).scalars()
    for customer in candidates:
        values = [customer.email or ""] + [
            (e.get("value") if isinstance(e, dict) else str(e)) or "" for e in customer.emails or []
        ]
        if address in {v.strip().lower() for v in values}:
            return customer
    return None


def _unknown_sender(name: str, address: str) -> Customer | None:
    mode = current_app.config["COLLABORATIVE_UNKNOWN_SENDERS"]
    if mode not in UNKNOWN_SENDER_MODES:
        raise ConfigurationError(f"COLLABORATIVE_UNKNOWN_SENDERS={mode!r}: use "
                                 f"{' or '.join(UNKNOWN_SENDER_MODES)}")
    if mode != "customer":
        return None
    try:
        return core.create_customer({"display_name": name or address, "email": address,
                                     "stage": "lead", "tags": ["from-email"]})
    except ValidationError:
        return None  # an address the core refuses: leave the message unmatched


def _offer_unknown_sender(record: MailMessage) -> None:
    """``lead`` mode: a plugin (the operational one) captures the sender as a lead."""
    hook = plugin_hooks()
    if hook is None:
        return
    linked = _json_safe_answers(hook.clientela_unknown_sender(
        channel="email", address=record.from_address, name=record.from_name or "",
        subject=record.subject or "", body=record.body or ""))
    if linked:
        record.attributes = {**(record.attributes or {}), "linked": linked}
        db.session.flush()


def _parent(candidates: list[str]) -> MailMessage | None:
    if not candidates:
        return None
    found = {m.message_id: m for m in db.session.execute(
        db.select(MailMessage).where(MailMessage.message_id.in_(candidates))).scalars()}
    return next((found[c] for c in candidates if c in found), None)


def thread_interactions(thread_id: uuid.UUID, exclude: uuid.UUID | None = None
                        ) -> list[Interaction]:
    ids = db.select(MailMessage.interaction_id).where(MailMessage.thread_id == thread_id,
                                                      MailMessage.interaction_id.is_not(None))
    stmt = db.select(Interaction).where(Interaction.id.in_(ids))
    if exclude is not None:
        stmt = stmt.where(Interaction.id != exclude)
    return list(db.session.execute(stmt.order_by(Interaction.occurred_at, Interaction.id))
                .scalars())


def ingest(raw: bytes, source: str, *, mailbox: Mailbox | None = None,
           customer: Customer | None = None, direction: str | None = None,
           interaction_source: str | None = None, external_id: str | None = None,
           extra: dict[str, Any] | None = None, sent_at: dt.datetime | None = None
           ) -> tuple[MailMessage, bool]:
    """Store one RFC 5322 message, thread it, match it and record its interaction.

    Returns ``(message, created)``; a Message-ID already stored in the tenant returns
    the stored message and ``False``. Threading: the message joins the thread of the
    message named by ``In-Reply-To``, else by the latest known ``References`` entry.
    Matching: the sender (for an inbound message) or the first recipient (outbound)
    against every e-mail address of the tenant's customers; else the thread's customer;
    else ``COLLABORATIVE_UNKNOWN_SENDERS``. A matched inbound message asks
    ``clientela_inbound_message``.
    """
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    ids = _msgids(parsed["Message-ID"])
    message_id = ids[0] if ids else f"<{hashlib.sha256(raw).hexdigest()[:40]}@clientela.invalid>"
    existing = db.session.execute(db.select(MailMessage).where(
        MailMessage.message_id == message_id)).scalar_one_or_none()
    if existing is not None:
        return existing, False
    in_reply_to = (_msgids(parsed["In-Reply-To"]) or [None])[0]
    references = _msgids(parsed["References"])
    parent = _parent(([in_reply_to] if in_reply_to else []) + list(reversed(references)))
    senders = _addresses(parsed, "From")
    from_name, from_address = senders[0] if senders else ("", None)
    to = [a for _, a in _addresses(parsed, "To")]
    cc = [a for _, a in _addresses(parsed, "Cc")]
    if direction is None:
        direction = "outbound" if from_address and from_address in _own_addresses() else "inbound"
    record = MailMessage(
        id=new_id(), message_id=message_id, in_reply_to=in_reply_to, references=references,
        direction=direction, source=source, from_address=from_address,
        from_name=(from_name or None) and from_name[:300], to=to, cc=cc,
        subject=" ".join(str(parsed["Subject"] or "").split())[:500], body=_text_of(parsed),
        sent_at=sent_at or _sent_at(parsed), mailbox_id=mailbox.id if mailbox else None,
        status="unmatched", attributes=dict(extra or {}),
    )
    record.thread_id = parent.thread_id if parent is not None else record.id
    if customer is None:
        counterpart = (from_address,) if direction == "inbound" else tuple(to + cc)
        for address in counterpart:
            customer = customer_for_address(address) if address else None
            if customer is not None:
                break
    if customer is None and parent is not None and parent.customer_id is not None:
        customer = db.session.get(Customer, (tenancy.current_tenant_id(), parent.customer_id))
    if customer is None and direction == "inbound" and from_address:
        customer = _unknown_sender(from_name, from_address)
    record.attachments = _store_attachments(parsed, record)
    db.session.add(record)
    db.session.flush()
    if customer is None:
        if direction == "inbound" and from_address and (
                current_app.config["COLLABORATIVE_UNKNOWN_SENDERS"] == "lead"):
            _offer_unknown_sender(record)
        return record, True
    record.customer_id, record.status = customer.id, "matched"
    private = mailbox is not None and mailbox.private
    attributes = {"message_id": message_id, "thread_id": str(record.thread_id),
                  "mail_message_id": str(record.id)}
    if from_address:
        attributes["from"] = from_address
    if in_reply_to:
        attributes["in_reply_to"] = in_reply_to
    interaction = core.record_interaction(
        customer.id, "email", direction=direction, occurred_at=record.sent_at,
        # a private mailbox's mail is read through the mailbox, not the shared timeline
        subject="(e-mail in a private mailbox)" if private else record.subject,
        body="" if private else record.body,
        source=interaction_source or "email", external_id=external_id or _external_id(message_id),
        user_id=tenancy.current_actor_id(), attributes={**attributes, **(extra or {})},
    )
    record.interaction_id = interaction.id
    db.session.flush()
    if direction == "inbound":
        hook = plugin_hooks()
        if hook is not None:
            thread = thread_interactions(record.thread_id, exclude=interaction.id)
            linked = offer_inbound(hook, interaction, thread)
            if linked:
                record.attributes = {**record.attributes, "linked": linked}
                db.session.flush()
    return record, True


def import_file(content: bytes, filename: str, principal: Principal,
                mailbox_id: uuid.UUID | None = None, mbox: bool | None = None
                ) -> dict[str, Any]:
    """Import one ``.eml`` message or an mbox file; returns counts and the message ids."""
    access.require(principal, "mail:write")
    mailbox = get_mailbox(mailbox_id, principal) if mailbox_id else None
    if not content.strip():
        raise ValidationError({"file": ["the file is empty"]})
    is_mbox = mbox if mbox is not None else (
        filename.lower().endswith((".mbox", ".mbx")) or content.startswith(b"From "))
    raws: list[bytes] = []
    if is_mbox:
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "import.mbox")
            with open(path, "wb") as handle:
                handle.write(content)
            box = mboxlib.mbox(path, create=False)
            try:
                raws = [box.get_bytes(key) for key in box.keys()]
            finally:
                box.close()
    else:
        raws = [content]
    report = {"format": "mbox" if is_mbox else "eml", "messages": 0, "imported": 0,
              "duplicates": 0, "matched": 0, "unmatched": 0, "ids": []}
    for raw in raws:
        record, created = ingest(raw, "import", mailbox=mailbox)
        report["messages"] += 1
        if not created:
            report["duplicates"] += 1
            continue
        report["imported"] += 1
        report[record.status] += 1
        report["ids"].append(record.id)
    return report


def match_message(message_id: uuid.UUID, customer_id: uuid.UUID, principal: Principal
                  ) -> MailMessage:
    """Attach an unmatched message to a customer by hand (records its interaction)."""
    access.require(principal, "mail:write")
    message = get_message(message_id, principal)
    if message.status == "matched":
        raise Conflict("the message is already matched to a customer")
    customer = customers.get_customer(customer_id, principal)
    access.require(principal, "interactions:write")
    mailbox = db.session.get(Mailbox, (tenancy.current_tenant_id(), message.mailbox_id)) \
        if message.mailbox_id else None
    private = mailbox is not None and mailbox.private
    interaction = core.record_interaction(
        customer.id, "email", direction=message.direction, occurred_at=message.sent_at,
        subject="(e-mail in a private mailbox)" if private else message.subject,
        body="" if private else message.body, source="email",
        external_id=_external_id(message.message_id), user_id=principal.user_id,
        attributes={"message_id": message.message_id, "thread_id": str(message.thread_id),
                    "mail_message_id": str(message.id)})
    message.customer_id, message.status, message.interaction_id = customer.id, "matched", \
        interaction.id
    db.session.flush()
    return message


# --- the inbound webhook ----------------------------------------------------------------


def message_from_fields(data: dict[str, Any]) -> bytes:
    """An RFC 5322 message from the webhook's JSON fields."""
    message = EmailMessage()
    message["From"] = data["sender"]
    message["To"] = ", ".join(data.get("to") or [])
    if data.get("cc"):
        message["Cc"] = ", ".join(data["cc"])
    message["Subject"] = " ".join((data.get("subject") or "").split())
    for header, key in (("Message-ID", "message_id"), ("In-Reply-To", "in_reply_to")):
        if data.get(key):
            message[header] = data[key]
    if data.get("references"):
        message["References"] = " ".join(data["references"])
    if data.get("date"):
        when = data["date"]
        message["Date"] = format_datetime(when if when.tzinfo else
                                          when.replace(tzinfo=dt.timezone.utc))
    message.set_content(data.get("text") or "")
    if data.get("html"):
        message.add_alternative(data["html"], subtype="html")
    for item in data.get("attachments") or []:
        try:
            payload = base64.b64decode(item["content"], validate=True)
        except (ValueError, TypeError):
            raise ValidationError({"attachments": [f"{item.get('filename')}: content must "
                                                   "be base64"]}) from None
        maintype, _, subtype = (item.get("content_type") or "application/octet-stream"
                                ).partition("/")
        message.add_attachment(payload, maintype=maintype, subtype=subtype or "octet-stream",
                               filename=item.get("filename") or "attachment")
    return bytes(message)


def receive_webhook(data: dict[str, Any]) -> MailMessage:
    """The inbound e-mail webhook, already authenticated by an inbound key."""
    if data.get("raw"):
        raw = data["raw"].encode("utf-8", "surrogateescape") if isinstance(data["raw"], str) \
            else data["raw"]
    else:
        if not data.get("sender"):
            raise ValidationError({"from": ["send 'raw' (the MIME message) or 'from' and "
                                            "the other fields"]})
        raw = message_from_fields(data)
    record, _ = ingest(raw, "webhook")
    return record


# --- inbound keys ------------------------------------------------------------------------


def _key_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def keys_query(principal: Principal):
    access.require(principal, "mail:configure")
    return db.select(InboundKey).order_by(InboundKey.created_at, InboundKey.id)


def get_key(key_id: uuid.UUID, principal: Principal) -> InboundKey:
    key = db.session.execute(keys_query(principal).where(InboundKey.id == key_id)
                             ).scalar_one_or_none()
    if key is None:
        raise NotFound("inbound key not found")
    return key


def create_key(data: dict[str, Any], principal: Principal) -> tuple[InboundKey, str]:
    """A new key; the raw key (``<tenant hex>-<secret>``) is returned once, only its
    hash is kept."""
    access.require(principal, "mail:configure")
    raw = f"{tenancy.current_tenant_id().hex}-{secrets.token_urlsafe(32)}"
    key = InboundKey(name=data["name"], scope=data["scope"], key_hash=_key_hash(raw),
                     prefix=raw[33:41])
    db.session.add(key)
    db.session.flush()
    return key, raw


def delete_key(key_id: uuid.UUID, principal: Principal) -> None:
    db.session.delete(get_key(key_id, principal))
    db.session.flush()


def tenant_of_key(raw: str | None) -> uuid.UUID | None:
    """The tenant a raw key names (not yet proof: ``check_key`` in that tenant is)."""
    head, sep, tail = (raw or "").partition("-")
    if not sep or len(head) != 32 or not tail:
        return None
    try:
        return uuid.UUID(hex=head)
    except ValueError:
        return None


def key_exists(raw: str) -> bool:
    """In the key's tenant: whether a key with this hash exists, whatever its scope."""
    return db.session.execute(db.select(InboundKey.id).where(
        InboundKey.key_hash == _key_hash(raw))).first() is not None


def check_key(raw: str, scope: str) -> InboundKey | None:
    """In the key's tenant: the key with this hash and scope, or ``None``."""
    wanted = _key_hash(raw)
    key = db.session.execute(db.select(InboundKey).where(
        InboundKey.key_hash == wanted, InboundKey.scope == scope)).scalar_one_or_none()
    if key is None or not hmac.compare_digest(key.key_hash, wanted):
        return None
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at > dt.timedelta(minutes=5):
        key.last_used_at = now
    return key


# --- outbound e-mail ---------------------------------------------------------------------


def send_on_account(message: dict[str, Any]) -> dict[str, Any] | None:
    """``clientela_send_message`` for ``email``: the tenant's default SMTP account.

    ``None`` (the core's mail driver sends) when the tenant has no account.
    """
    if message.get("channel") != "email":
        return None
    account = default_account()
    if account is None:
        return None
    source, external_id = message.get("source"), message.get("external_id")
    if source and external_id:
        done = db.session.execute(db.select(Interaction).where(
            Interaction.source == source, Interaction.external_id == external_id)
        ).scalar_one_or_none()
        if done is not None:
            return {"status": "sent", "interaction_id": done.id,
                    "message_id": (done.attributes or {}).get("message_id"), "error": None}
    customer = core.get_customer(message["customer_id"])
    sender = formataddr((account.from_name or "", account.from_address))
    email = mail.build_message(message["to"], message.get("subject") or "",
                               message.get("body") or "", sender=sender,
                               html=message.get("html"), headers=message.get("headers"))
    if not email.get("Message-ID"):
        email["Message-ID"] = make_msgid(domain=account.from_address.rpartition("@")[2])
    if not email.get("Date"):
        email["Date"] = format_datetime(dt.datetime.now(dt.timezone.utc))
    try:
        message_id = mail.send_smtp(
            email, host=account.host, port=account.port, security=account.security,
            username=account.username, password=decrypt(account.password_encrypted),
            timeout=float(current_app.config.get("MAIL_SMTP_TIMEOUT") or 30))
    except mail.MailError as exc:
        log.warning("mail account %s: %s", account.id, exc)
        return {"status": "failed", "error": str(exc), "interaction_id": None,
                "message_id": None}
    extra = {**(message.get("attributes") or {}), "purpose": message.get("purpose") or "service",
             "account_id": str(account.id)}
    record, _ = ingest(bytes(email), "outbound", customer=customer, direction="outbound",
                       interaction_source=source if external_id else None,
                       external_id=external_id, extra=extra, sent_at=utcnow())
    return {"status": "sent", "interaction_id": record.interaction_id, "message_id": message_id,
            "error": None, "mail_message_id": record.id}


def send_email(customer_id: uuid.UUID, data: dict[str, Any], principal: Principal
               ) -> dict[str, Any]:
    """Send an e-mail to a customer (free text or a template), threaded as a reply when
    ``reply_to`` names an earlier message; goes through ``clientela.core.channels``."""
    access.require(principal, "mail:write")
    customer = customers.get_customer(customer_id, principal)
    access.require(principal, "interactions:write")
    addresses = {customer.email or ""} | {
        ((e.get("value") if isinstance(e, dict) else str(e)) or "").lower()
        for e in customer.emails or []}
    to = (data.get("to") or customer.email or "").strip().lower()
    if not to:
        raise ValidationError({"to": ["the customer has no e-mail address"]})
    if to not in addresses:
        raise ValidationError({"to": ["must be one of the customer's e-mail addresses"]})
    subject, body, html = data.get("subject"), data.get("body"), data.get("html")
    if data.get("template_id"):
        template = get_template(data["template_id"], principal)
        sender = db.session.get(User, (tenancy.current_tenant_id(), principal.user_id)) \
            if principal.user_id else None
        rendered = render_template(template, merge_fields(customer, sender, data.get("data")))
        subject = subject or rendered["subject"]
        body = body or rendered["body"]
        html = html or rendered["html"]
    headers = {}
    if data.get("reply_to"):
        parent = get_message(data["reply_to"], principal)
        headers["In-Reply-To"] = parent.message_id
        headers["References"] = " ".join([*parent.references, parent.message_id][-20:])
        if not subject:
            subject = parent.subject if parent.subject.lower().startswith("re:") \
                else f"Re: {parent.subject}"
    errors = {}
    if not subject:
        errors["subject"] = ["give a subject or a template"]
    if not body:
        errors["body"] = ["give a body or a template"]
    if errors:
        raise ValidationError(errors)
    return channels.send_message({
        "channel": "email", "to": to, "subject": subject, "body": body, "html": html,
        "headers": headers, "purpose": data.get("purpose") or "service",
        "attributes": {"sent_by": str(principal.user_id) if principal.user_id else None},
    }, customer)


# --- IMAP polling ------------------------------------------------------------------------


def _imap_connect(mailbox: Mailbox) -> imaplib.IMAP4:
    timeout = float(current_app.config["COLLABORATIVE_IMAP_TIMEOUT"])
    port = mailbox.port or (993 if mailbox.security == "ssl" else 143)
    if mailbox.security == "ssl":
        client = imaplib.IMAP4_SSL(mailbox.host, port, ssl_context=ssl.create_default_context(),
                                   timeout=timeout)
    else:
        client = imaplib.IMAP4(mailbox.host, port, timeout=timeout)
        if mailbox.security == "starttls":
            client.starttls(ssl_context=ssl.create_default_context())
    return client


def poll_mailbox(mailbox: Mailbox) -> dict[str, Any]:
    """Fetch the messages that arrived since the last poll (by UID) and ingest them.

    Each message commits with the mailbox's new ``last_uid``, so a failure halfway keeps
    what was read. A changed UIDVALIDITY reads the folder again (duplicates are skipped
    by Message-ID).
    """
    if not mailbox.host or not mailbox.username:
        raise ValidationError({"host": ["the mailbox has no IMAP host and username"]})
    batch = int(current_app.config["COLLABORATIVE_IMAP_BATCH"])
    report = {"mailbox_id": mailbox.id, "fetched": 0, "imported": 0, "duplicates": 0}
    try:
        client = _imap_connect(mailbox)
        try:
            client.login(mailbox.username, decrypt(mailbox.password_encrypted) or "")
            status, data = client.select(_quote_folder(mailbox.folder), readonly=True)
            if status != "OK":
                raise imaplib.IMAP4.error(f"cannot open folder {mailbox.folder!r}")
            validity = _uid_validity(client)
            if validity is not None and validity != mailbox.uid_validity:
                mailbox.uid_validity, mailbox.last_uid = validity, 0
            status, data = client.uid("SEARCH", None, f"UID {mailbox.last_uid + 1}:*")
            uids = sorted(int(u) for u in (data[0] or b"").split() if int(u) > mailbox.last_uid)
            for uid in uids[:batch]:
                status, data = client.uid("FETCH", str(uid), "(RFC822)")
                raw = next((part[1] for part in data if isinstance(part, tuple)), None)
                report["fetched"] += 1
                if raw is not None:
                    _, created = ingest(raw, "imap", mailbox=mailbox)
                    report["imported" if created else "duplicates"] += 1
                mailbox.last_uid = uid
                db.session.commit()
        finally:
            try:
                client.logout()
            except (imaplib.IMAP4.error, OSError):
                pass
    except (imaplib.IMAP4.error, OSError, ssl.SSLError) as exc:
        db.session.rollback()
        mailbox.last_error = f"{type(exc).__name__}: {exc}"[:1000]
        mailbox.last_polled_at = utcnow()
        db.session.commit()
        report["error"] = mailbox.last_error
        return report
    mailbox.last_error, mailbox.last_polled_at = None, utcnow()
    db.session.commit()
    return report


def _quote_folder(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _uid_validity(client: imaplib.IMAP4) -> int | None:
    _, data = client.response("UIDVALIDITY")
    try:
        return int(data[0]) if data and data[0] is not None else None
    except (TypeError, ValueError):
        return None


def poll_mailboxes_job() -> list[dict[str, Any]]:
    """The periodic job (every tenant): poll each active mailbox with an IMAP host."""
    boxes = db.session.execute(db.select(Mailbox).where(
        Mailbox.active.is_(True), Mailbox.host.is_not(None))).scalars().all()
    return [_json_report(poll_mailbox(box)) for box in boxes]


def poll_mailbox_job(mailbox_id: uuid.UUID) -> dict[str, Any]:
    mailbox = db.session.get(Mailbox, (tenancy.current_tenant_id(), mailbox_id))
    if mailbox is None:
        return {"mailbox_id": str(mailbox_id), "error": "mailbox deleted"}
    return _json_report(poll_mailbox(mailbox))


def _json_report(report: dict[str, Any]) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in report.items()}


# --- calls -------------------------------------------------------------------------------


def customers_for_number(number: str) -> list[Customer]:
    """Customers whose phone, or one of whose phones, is ``number`` in any format."""
    e164 = core.normalise_phone(number, _phone_region(), field="number")
    digits = e164.lstrip("+")
    listed = sa.cast(Customer.phones, sa.Text)
    candidates = db.session.execute(db.select(Customer).where(sa.or_(
        Customer.phone == e164, listed.contains(e164, autoescape=True),
        # secondary numbers are kept as typed: their last four digits rarely split
        listed.contains(digits[-4:], autoescape=True))
    ).order_by(Customer.created_at, Customer.id)).scalars()
    found = []
    for customer in candidates:
        numbers = [customer.phone] + [
            (p.get("value") if isinstance(p, dict) else str(p)) for p in customer.phones or []]
        for value in numbers:
            try:
                if value and core.normalise_phone(value, _phone_region()) == e164:
                    found.append(customer)
                    break
            except ValidationError:
                continue
    return found


def lookup_number(number: str, principal: Principal) -> dict[str, Any]:
    """The screen pop: the customers (in the caller's scope) a number belongs to."""
    access.require(principal, "calls:read")
    e164 = core.normalise_phone(number, _phone_region(), field="number")
    matches = [c for c in customers_for_number(number) if _customer_visible(c.id, principal)]
    return {"number": e164, "customers": matches}


def _customer_visible(customer_id: uuid.UUID, principal: Principal) -> bool:
    stmt = customers.customers_query(principal).with_only_columns(Customer.id).where(
        Customer.id == customer_id)
    return db.session.execute(stmt).first() is not None


def record_call(data: dict[str, Any]) -> Call:
    """A call reported by the telephony webhook: matched by the customer's number (the
    caller of an inbound call, the called number of an outbound one)."""
    external_id = data.get("call_id")
    if external_id:
        existing = db.session.execute(db.select(Call).where(Call.external_id == external_id)
                                      ).scalar_one_or_none()
        if existing is not None:
            return existing
    direction = data.get("direction") or "inbound"
    theirs = data.get("caller") if direction == "inbound" else data.get("to")
    number = core.normalise_phone(theirs, _phone_region(),
                                  field="from" if direction == "inbound" else "to")
    agent = None
    if data.get("agent"):
        agent = core.find_user(data["agent"])
        if agent is None:
            raise ValidationError({"agent": ["no user with this e-mail address"]})
    started = data.get("start") or utcnow()
    if started.tzinfo is None:
        started = started.replace(tzinfo=dt.timezone.utc)
    call = Call(external_id=external_id, direction=direction, from_number=data.get("caller"),
                to_number=data.get("to"), number=number, started_at=started,
                duration_seconds=int(data.get("duration") or 0),
                recording_url=data.get("recording_url"), agent_id=agent.id if agent else None)
    matches = customers_for_number(number) if number else []
    db.session.add(call)
    db.session.flush()
    if matches:
        customer = matches[0]
        attributes = {"number": number, "duration_seconds": call.duration_seconds,
                      "call_id": external_id or str(call.id)}
        if call.recording_url:
            attributes["recording_url"] = call.recording_url
        minutes, seconds = divmod(call.duration_seconds, 60)
        interaction = core.record_interaction(
            customer.id, "phone", direction=direction, occurred_at=started,
            subject=f"{'Call from' if direction == 'inbound' else 'Call to'} {number} "
                    f"({minutes}:{seconds:02d})",
            user_id=agent.id if agent else None, source="telephony",
            external_id=external_id or str(call.id), attributes=attributes)
        call.customer_id, call.interaction_id = customer.id, interaction.id
        db.session.flush()
    return call


def calls_query(principal: Principal, customer_id: uuid.UUID | None = None,
                number: str | None = None):
    access.require(principal, "calls:read")
    visible = customers.customers_query(principal).with_only_columns(Customer.id)
    stmt = db.select(Call).where(sa.or_(Call.customer_id.is_(None),
                                        Call.customer_id.in_(visible)))
    if customer_id:
        stmt = stmt.where(Call.customer_id == customer_id)
    if number:
        stmt = stmt.where(Call.number == core.normalise_phone(number, _phone_region(),
                                                              field="number"))
    return stmt


def get_call(call_id: uuid.UUID, principal: Principal) -> Call:
    call = db.session.execute(calls_query(principal).where(Call.id == call_id)
                              ).scalar_one_or_none()
    if call is None:
        raise NotFound("call not found")
    return call


# --- chat and SMS: the channel webhook --------------------------------------------------


def _sender_customer(channel, sender: str) -> Customer | None:
    """The customer a chat/SMS sender is: by phone for channels with a phone field, by
    e-mail address when the sender is one."""
    if "phone" in channel.fields.values():
        try:
            found = customers_for_number(sender)
        except ValidationError:
            found = []
        if found:
            return found[0]
    if "@" in sender:
        return customer_for_address(sender)
    return None


def offer_inbound(hook, interaction: Interaction, thread: list) -> list[dict]:
    """Ask ``clientela_inbound_message``; the answers, JSON-safe (ids as text), to keep."""
    return _json_safe_answers(hook.clientela_inbound_message(interaction=interaction,
                                                             thread=thread))


def _json_safe_answers(answers: list) -> list[dict]:
    """Plugins' answers naming records (ids as UUIDs), as text for a JSON column."""
    return [{k: str(v) if isinstance(v, uuid.UUID) else v for k, v in a.items()}
            for a in answers if a]


def receive_channel_message(key: str, data: dict[str, Any]) -> ChannelMessage:
    """An inbound message on a chat-like channel (``sms``, ``chat``, a plugin's), already
    authenticated by an inbound key of scope ``messages``.

    Matched by the sender's number or address; a matched message becomes an inbound
    interaction carrying the channel's fields and is offered to ``clientela_inbound_message``
    with the earlier interactions of its conversation; an unmatched one is kept.
    ``message_id`` makes a delivery idempotent.
    """
    channel = channels.registry().get(key)
    if channel is None or key == "email":
        raise NotFound(f"no channel {key!r} takes inbound messages here")
    external_id = data.get("message_id")
    if external_id:
        existing = db.session.execute(db.select(ChannelMessage).where(
            ChannelMessage.channel == key, ChannelMessage.external_id == external_id)
        ).scalar_one_or_none()
        if existing is not None:
            return existing
    occurred = data.get("occurred_at") or utcnow()
    if occurred.tzinfo is None:
        occurred = occurred.replace(tzinfo=dt.timezone.utc)
    record = ChannelMessage(channel=key, external_id=external_id, sender=data["sender"],
                            recipient=data.get("to"),
                            conversation_id=data.get("conversation_id"),
                            text=data.get("text") or "", occurred_at=occurred)
    db.session.add(record)
    db.session.flush()
    customer = _sender_customer(channel, data["sender"])
    if customer is None:
        return record
    attributes: dict[str, Any] = {}
    for field, type_ in channel.fields.items():
        if type_ == "phone" and field == "number":
            try:
                attributes[field] = core.normalise_phone(data["sender"], _phone_region())
            except ValidationError:
                pass
    if data.get("conversation_id") and "conversation_id" in channel.fields:
        attributes["conversation_id"] = data["conversation_id"]
    if "handle" in channel.fields and "@" not in data["sender"]:
        attributes["handle"] = data["sender"]
    text = record.text
    interaction = core.record_interaction(
        customer.id, key, direction="inbound", occurred_at=occurred,
        subject=" ".join(text.split())[:80], body=text, source=f"{key}-webhook",
        external_id=external_id or str(record.id), attributes=attributes)
    record.customer_id, record.interaction_id, record.status = customer.id, interaction.id, \
        "matched"
    db.session.flush()
    hook = plugin_hooks()
    if hook is not None:
        earlier = []
        if record.conversation_id:
            ids = db.select(ChannelMessage.interaction_id).where(
                ChannelMessage.channel == key,
                ChannelMessage.conversation_id == record.conversation_id,
                ChannelMessage.interaction_id.is_not(None),
                ChannelMessage.id != record.id)
            earlier = list(db.session.execute(db.select(Interaction).where(
                Interaction.id.in_(ids)).order_by(Interaction.occurred_at, Interaction.id)
            ).scalars())
        linked = offer_inbound(hook, interaction, earlier)
        if linked:
            record.attributes = {**(record.attributes or {}), "linked": linked}
            db.session.flush()
    return record


def channel_messages_query(principal: Principal, *, channel: str | None = None,
                           status: str | None = None, customer_id: uuid.UUID | None = None):
    """Chat/SMS messages of customers in ``principal``'s scope, and unmatched ones
    (``interactions:read``)."""
    access.require(principal, "interactions:read")
    visible = customers.customers_query(principal).with_only_columns(Customer.id)
    stmt = db.select(ChannelMessage).where(sa.or_(ChannelMessage.customer_id.is_(None),
                                                  ChannelMessage.customer_id.in_(visible)))
    for column, value in ((ChannelMessage.channel, channel), (ChannelMessage.status, status),
                          (ChannelMessage.customer_id, customer_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    return stmt


# --- customers: merge, export, erase -----------------------------------------------------


def merge_into(survivor: Customer, merged_id: uuid.UUID) -> None:
    for model in (MailMessage, Call, ChannelMessage):
        db.session.execute(sa.update(model).where(model.customer_id == merged_id)
                           .values(customer_id=survivor.id)
                           .execution_options(synchronize_session="fetch"))


def export_for(customer: Customer) -> dict[str, Any]:
    messages = db.session.execute(db.select(MailMessage).where(
        MailMessage.customer_id == customer.id).order_by(MailMessage.sent_at)).scalars()
    calls = db.session.execute(db.select(Call).where(Call.customer_id == customer.id)
                               .order_by(Call.started_at)).scalars()
    chats = db.session.execute(db.select(ChannelMessage).where(
        ChannelMessage.customer_id == customer.id).order_by(ChannelMessage.occurred_at)).scalars()
    return {"collaborative": {
        "emails": [{"message_id": m.message_id, "direction": m.direction,
                    "from": m.from_address, "to": m.to, "subject": m.subject, "body": m.body,
                    "sent_at": m.sent_at.isoformat(),
                    "attachments": [a.get("filename") for a in m.attachments or []]}
                   for m in messages],
        "calls": [{"direction": c.direction, "number": c.number,
                   "started_at": c.started_at.isoformat(),
                   "duration_seconds": c.duration_seconds} for c in calls],
        "channel_messages": [{"channel": m.channel, "from": m.sender, "text": m.text,
                              "occurred_at": m.occurred_at.isoformat()} for m in chats],
    }}


def erase_for(customer: Customer) -> dict[str, Any]:
    """Forget the customer's mail (content, addresses, stored files) and calls."""
    messages = db.session.execute(db.select(MailMessage).where(
        MailMessage.customer_id == customer.id)).scalars().all()
    for message in messages:
        for item in message.attachments or []:
            if item.get("stored"):
                try:
                    os.remove(os.path.join(_files_root(), item["path"]))
                except OSError:
                    pass
        db.session.delete(message)
    calls = db.session.execute(db.select(Call).where(Call.customer_id == customer.id)
                               ).scalars().all()
    chats = db.session.execute(db.select(ChannelMessage).where(
        ChannelMessage.customer_id == customer.id)).scalars().all()
    for row in (*calls, *chats):
        db.session.delete(row)
    db.session.flush()
    return {"emails_deleted": len(messages), "calls_deleted": len(calls),
            "channel_messages_deleted": len(chats)}
