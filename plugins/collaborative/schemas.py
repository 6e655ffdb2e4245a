"""marshmallow schemas of the collaborative plugin's channel, e-mail and call API."""

from __future__ import annotations

from email.utils import parseaddr

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from clientela.plugins.collaborative.models import (
    CALL_DIRECTIONS,
    IMAP_SECURITY,
    KEY_SCOPES,
    MESSAGE_DIRECTIONS,
    MESSAGE_STATUSES,
    SMTP_SECURITY,
)

def _mailbox_address(value: str) -> None:
    name, address = parseaddr(value)
    if "@" not in address or len(value) > 500 or "\n" in value or "\r" in value:
        raise ValidationError("an e-mail address, e.g. Maria Rossi <maria@example.com>")


Port = lambda **kw: fields.Integer(validate=validate.Range(1, 65535), **kw)  # noqa: E731


class Stamped(Schema):
    id = fields.UUID(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


# --- channels ---------------------------------------------------------------------------


class Channel(Schema):
    key = fields.String()
    label = fields.String()
    channel_fields = fields.Dict(keys=fields.String(), values=fields.String(),
                                 attribute="fields", data_key="fields")
    outbound = fields.Boolean()
    plugin = fields.String()


class ChannelInteractionInput(Schema):
    customer_id = fields.UUID(required=True)
    direction = fields.String(load_default="inbound", validate=validate.OneOf(
        ["inbound", "outbound", "internal"]))
    occurred_at = fields.AwareDateTime()
    subject = fields.String(load_default="", validate=validate.Length(max=500))
    body = fields.String(load_default="")
    outcome = fields.String(allow_none=True, validate=validate.Length(max=100))
    fields_ = fields.Dict(keys=fields.String(), load_default=dict, data_key="fields",
                          attribute="fields",
                          metadata={"description": "the channel's fields (GET /channels)"})


class ChannelInteraction(Schema):
    id = fields.UUID()
    customer_id = fields.UUID()
    channel = fields.String()
    direction = fields.String()
    occurred_at = fields.DateTime()
    subject = fields.String()
    body = fields.String()
    outcome = fields.String(allow_none=True)
    user_id = fields.UUID(allow_none=True)
    fields_ = fields.Dict(attribute="attributes", data_key="fields")
    created_at = fields.DateTime()


class ChannelInbound(Schema):
    channel = fields.String(required=True, validate=validate.Length(1, 40),
                            metadata={"description": "sms, chat, or another chat-like channel"})
    sender = fields.String(required=True, data_key="from", validate=validate.Length(1, 320),
                           metadata={"description": "the sender's number, handle or address"})
    to = fields.String(validate=validate.Length(1, 320))
    text = fields.String(load_default="", validate=validate.Length(max=100_000))
    conversation_id = fields.String(validate=validate.Length(1, 200))
    message_id = fields.String(validate=validate.Length(1, 200),
                               metadata={"description": "the provider's id: sent twice, "
                                                        "recorded once"})
    occurred_at = fields.AwareDateTime(default_timezone=None)


class ChannelMessage(Schema):
    id = fields.UUID()
    channel = fields.String()
    external_id = fields.String(allow_none=True)
    sender = fields.String(data_key="from")
    recipient = fields.String(data_key="to", allow_none=True)
    conversation_id = fields.String(allow_none=True)
    text = fields.String()
    occurred_at = fields.DateTime()
    status = fields.String()
    customer_id = fields.UUID(allow_none=True)
    interaction_id = fields.UUID(allow_none=True)
    created_at = fields.DateTime()


class ChannelMessageQuery(Schema):
    channel = fields.String()
    status = fields.String(validate=validate.OneOf(MESSAGE_STATUSES))
    customer_id = fields.UUID()


# --- SMTP accounts ----------------------------------------------------------------------


class MailAccountInput(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    host = fields.String(required=True, validate=validate.Length(1, 255))
    port = Port(required=True)
    security = fields.String(load_default="starttls", validate=validate.OneOf(SMTP_SECURITY))
    username = fields.String(allow_none=True, validate=validate.Length(max=320))
    password = fields.String(allow_none=True, load_only=True,
                             validate=validate.Length(max=1000),
                             metadata={"description": "stored encrypted, never returned"})
    from_address = fields.Email(required=True)
    from_name = fields.String(allow_none=True, validate=validate.Length(max=200))
    is_default = fields.Boolean()


class MailAccountUpdate(MailAccountInput):
    """The same fields, all optional (PATCH)."""


class MailAccount(Stamped, MailAccountInput):
    has_password = fields.Method("_has_password", dump_only=True)

    def _has_password(self, account) -> bool:
        return bool(account.password_encrypted)


# --- mailboxes --------------------------------------------------------------------------


class MailboxInput(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    address = fields.Email(allow_none=True)
    host = fields.String(allow_none=True, validate=validate.Length(max=255))
    port = Port(allow_none=True)
    security = fields.String(load_default="ssl", validate=validate.OneOf(IMAP_SECURITY))
    username = fields.String(allow_none=True, validate=validate.Length(max=320))
    password = fields.String(allow_none=True, load_only=True,
                             validate=validate.Length(max=1000),
                             metadata={"description": "stored encrypted, never returned"})
    folder = fields.String(load_default="INBOX", validate=validate.Length(1, 200))
    owner_id = fields.UUID(allow_none=True)
    private = fields.Boolean(load_default=False)
    shared_with = fields.List(fields.UUID(), load_default=list)
    active = fields.Boolean(load_default=True)


class MailboxUpdate(MailboxInput):
    """The same fields, all optional (PATCH)."""


class Mailbox(Stamped, MailboxInput):
    has_password = fields.Method("_has_password", dump_only=True)
    last_uid = fields.Integer(dump_only=True)
    last_polled_at = fields.DateTime(dump_only=True)
    last_error = fields.String(dump_only=True)

    def _has_password(self, mailbox) -> bool:
        return bool(mailbox.password_encrypted)


class PollStarted(Schema):
    job_id = fields.UUID()


# --- templates --------------------------------------------------------------------------


class MailTemplateInput(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    subject = fields.String(required=True, validate=validate.Length(1, 500))
    body = fields.String(required=True, validate=validate.Length(1, 200_000))
    html = fields.String(allow_none=True, validate=validate.Length(max=500_000))


class MailTemplateUpdate(MailTemplateInput):
    """The same fields, all optional (PATCH)."""


class MailTemplate(Stamped, MailTemplateInput):
    pass


# --- messages ---------------------------------------------------------------------------


class Attachment(Schema):
    index = fields.Integer()
    filename = fields.String()
    content_type = fields.String()
    size = fields.Integer()
    stored = fields.Boolean()
    reason = fields.String()


class MailMessage(Stamped):
    message_id = fields.String()
    in_reply_to = fields.String(allow_none=True)
    references = fields.List(fields.String())
    thread_id = fields.UUID()
    direction = fields.String()
    status = fields.String()
    source = fields.String()
    from_address = fields.String(allow_none=True)
    from_name = fields.String(allow_none=True)
    to = fields.List(fields.String())
    cc = fields.List(fields.String())
    subject = fields.String()
    body = fields.String()
    sent_at = fields.DateTime()
    customer_id = fields.UUID(allow_none=True)
    interaction_id = fields.UUID(allow_none=True)
    mailbox_id = fields.UUID(allow_none=True)
    attachments = fields.List(fields.Nested(Attachment))
    linked = fields.Function(lambda m: (m.attributes or {}).get("linked", []))


class MailMessageQuery(Schema):
    customer_id = fields.UUID()
    thread_id = fields.UUID()
    mailbox_id = fields.UUID()
    status = fields.String(validate=validate.OneOf(MESSAGE_STATUSES))
    direction = fields.String(validate=validate.OneOf(MESSAGE_DIRECTIONS))


class MatchInput(Schema):
    customer_id = fields.UUID(required=True)


class ImportQuery(Schema):
    mailbox_id = fields.UUID(metadata={"description": "file the messages under this mailbox"})
    filename = fields.String(validate=validate.Length(max=255),
                             metadata={"description": "a name ending in .mbox reads an mbox"})


class MailImportReport(Schema):
    format = fields.String()
    messages = fields.Integer()
    imported = fields.Integer()
    duplicates = fields.Integer()
    matched = fields.Integer()
    unmatched = fields.Integer()
    ids = fields.List(fields.UUID())


class WebhookAttachment(Schema):
    filename = fields.String(required=True, validate=validate.Length(1, 255))
    content_type = fields.String(load_default="application/octet-stream",
                                 validate=validate.Regexp(r"^[\w.+-]+/[\w.+-]+$"))
    content = fields.String(required=True, metadata={"description": "base64"})


class InboundMail(Schema):
    """Either ``raw`` (the whole MIME message) or the fields of one."""

    raw = fields.String(validate=validate.Length(max=50_000_000))
    sender = fields.String(data_key="from", validate=_mailbox_address,
                           metadata={"description": "an address, with or without a name"})
    to = fields.List(fields.String(validate=_mailbox_address), load_default=list)
    cc = fields.List(fields.String(validate=_mailbox_address), load_default=list)
    subject = fields.String(load_default="", validate=validate.Length(max=1000))
    text = fields.String(load_default="")
    html = fields.String(allow_none=True)
    message_id = fields.String(validate=validate.Regexp(r"^<[^<>\s]+>$",
                                                        error="write it as <id@host>"))
    in_reply_to = fields.String(validate=validate.Regexp(r"^<[^<>\s]+>$",
                                                         error="write it as <id@host>"))
    references = fields.List(fields.String(validate=validate.Regexp(r"^<[^<>\s]+>$")),
                             load_default=list)
    date = fields.AwareDateTime(default_timezone=None)
    attachments = fields.List(fields.Nested(WebhookAttachment), load_default=list)

    @validates_schema(skip_on_field_errors=False)
    def _raw_or_fields(self, data, **kwargs):
        if not data.get("raw") and not data.get("sender"):
            raise ValidationError("send 'raw' (the MIME message) or at least 'from'", "from")


class InboundResult(Schema):
    id = fields.UUID()
    status = fields.String()
    thread_id = fields.UUID()
    customer_id = fields.UUID(allow_none=True)
    interaction_id = fields.UUID(allow_none=True)


# --- outbound ---------------------------------------------------------------------------


class TextMessageInput(Schema):
    channel = fields.String(required=True, validate=validate.OneOf(["sms", "chat"]))
    body = fields.String(required=True, validate=validate.Length(1, 5000))
    to = fields.String(validate=validate.Length(1, 320), metadata={
        "description": "number or conversation (default: the customer's phone for sms, the "
                       "customer's last chat conversation for chat)"})
    purpose = fields.String(load_default="service", validate=validate.OneOf(
        ["service", "marketing"]))


class TextMessageResult(Schema):
    status = fields.String()
    interaction_id = fields.UUID(allow_none=True)
    message_id = fields.String(allow_none=True, metadata={"description": "the gateway's id"})


class EmailInput(Schema):
    to = fields.Email(metadata={"description": "one of the customer's addresses "
                                               "(default: the primary one)"})
    subject = fields.String(validate=validate.Length(1, 500))
    body = fields.String(validate=validate.Length(1, 1_000_000))
    html = fields.String(allow_none=True)
    template_id = fields.UUID()
    data = fields.Dict(keys=fields.String(), load_default=dict,
                       metadata={"description": "extra merge fields, as {{ data.key }}"})
    reply_to = fields.UUID(metadata={"description": "id of the message this answers"})
    purpose = fields.String(load_default="service", validate=validate.OneOf(
        ["service", "marketing"]))


class EmailResult(Schema):
    status = fields.String()
    interaction_id = fields.UUID(allow_none=True)
    message_id = fields.String(allow_none=True)
    mail_message_id = fields.UUID(allow_none=True)


# --- inbound keys -----------------------------------------------------------------------


class InboundKeyInput(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    scope = fields.String(required=True, validate=validate.OneOf(KEY_SCOPES))


class InboundKey(Stamped, InboundKeyInput):
    prefix = fields.String(dump_only=True)
    last_used_at = fields.DateTime(dump_only=True)


class InboundKeyCreated(InboundKey):
    key = fields.String(dump_only=True, metadata={"description": "shown once"})


# --- calls ------------------------------------------------------------------------------


class CallWebhook(Schema):
    call_id = fields.String(validate=validate.Length(1, 200))
    caller = fields.String(data_key="from", validate=validate.Length(1, 40))
    to = fields.String(validate=validate.Length(1, 40))
    direction = fields.String(load_default="inbound", validate=validate.OneOf(CALL_DIRECTIONS))
    start = fields.AwareDateTime(default_timezone=None)
    duration = fields.Integer(load_default=0, validate=validate.Range(0, 7 * 24 * 3600))
    recording_url = fields.Url(allow_none=True, validate=validate.Length(max=2000))
    agent = fields.Email(allow_none=True)

    @validates_schema(skip_on_field_errors=False)
    def _number(self, data, **kwargs):
        key = "from" if data.get("direction", "inbound") == "inbound" else "to"
        if not data.get("caller" if key == "from" else "to"):
            raise ValidationError(f"the customer's number is required for a "
                                  f"{data.get('direction', 'inbound')} call", key)


class Call(Stamped):
    external_id = fields.String(allow_none=True)
    direction = fields.String()
    from_number = fields.String(allow_none=True)
    to_number = fields.String(allow_none=True)
    number = fields.String(allow_none=True)
    started_at = fields.DateTime()
    duration_seconds = fields.Integer()
    recording_url = fields.String(allow_none=True)
    agent_id = fields.UUID(allow_none=True)
    customer_id = fields.UUID(allow_none=True)
    interaction_id = fields.UUID(allow_none=True)


class CallQuery(Schema):
    customer_id = fields.UUID()
    number = fields.String()


class LookupQuery(Schema):
    number = fields.String(required=True, validate=validate.Length(1, 40))


class LookupCustomer(Schema):
    id = fields.UUID()
    display_name = fields.String()
    kind = fields.String()
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    organisation_id = fields.UUID(allow_none=True)


class Lookup(Schema):
    number = fields.String()
    customers = fields.List(fields.Nested(LookupCustomer))
