"""``/api/v1/channels``, ``mail-accounts``, ``mailboxes``, ``mail-templates``, ``mail/...``,
``inbound-keys``, ``calls``, and ``POST /customers/{id}/emails``.

The two webhooks (``POST /mail/inbound``, ``POST /calls/webhook``) take no user token:
they are authenticated by a tenant-owned inbound key (header ``X-Clientela-Key``), and the
tenant comes from that key only.
"""

from __future__ import annotations

import uuid

from flask import abort, current_app, g, request, send_file
from flask.views import MethodView
from flask_smorest import Blueprint

from clientela.core import channels, customers, tenancy
from clientela.core.api.auth import current_principal, public
from clientela.core.db import db
from clientela.core.errors import Conflict, Forbidden, Unauthorized, ValidationError
from clientela.core.models import Tenant
from clientela.plugins.collaborative import schemas
from clientela.plugins.collaborative import services as collab

KEY_HEADER = "X-Clientela-Key"

channels_blp = Blueprint("channels", __name__, url_prefix="/channels",
                         description="The channels interactions come through and go out on")
accounts_blp = Blueprint("mail_accounts", __name__, url_prefix="/mail-accounts",
                         description="Outgoing SMTP accounts (passwords stored encrypted)")
mailboxes_blp = Blueprint("mailboxes", __name__, url_prefix="/mailboxes",
                          description="IMAP mailboxes polled for inbound mail; private ones")
templates_blp = Blueprint("mail_templates", __name__, url_prefix="/mail-templates",
                          description="E-mail templates with merge fields")
mail_blp = Blueprint("mail", __name__, url_prefix="/mail",
                     description="Messages, threads, import, the inbound webhook")
emails_blp = Blueprint("customer_emails", __name__, url_prefix="/customers",
                       description="Send an e-mail to a customer")
keys_blp = Blueprint("inbound_keys", __name__, url_prefix="/inbound-keys",
                     description="Tenant keys of the mail and telephony webhooks")
calls_blp = Blueprint("calls", __name__, url_prefix="/calls",
                      description="Calls from the telephony webhook; caller lookup")


# --- channels -----------------------------------------------------------------------------


@channels_blp.route("")
class Channels(MethodView):
    @channels_blp.response(200, schemas.Channel(many=True))
    def get(self):
        """Every registered channel with the fields its interactions record."""
        current_principal()
        return [c.as_dict() for c in sorted(channels.registry().values(), key=lambda c: c.key)]


@channels_blp.route("/<key>/interactions")
class ChannelInteractions(MethodView):
    @channels_blp.arguments(schemas.ChannelInteractionInput)
    @channels_blp.response(201, schemas.ChannelInteraction)
    def post(self, data, key: str):
        """Record an interaction on this channel with the channel's fields (a letter's
        ``postal_address`` and ``document_ref``, a call's ``number`` and
        ``duration_seconds``, ...): unknown or mistyped fields are a 422."""
        from clientela.plugins.collaborative.channels import record_on_channel

        interaction = record_on_channel(key, data, current_principal())
        db.session.commit()
        return interaction


@public(tenant=lambda: _verified_key_tenant())
@channels_blp.route("/inbound")
class ChannelInbound(MethodView):
    @channels_blp.arguments(schemas.ChannelInbound)
    @channels_blp.response(201, schemas.ChannelMessage)
    @channels_blp.doc(security=[{"webhookKey": []}])
    def post(self, data):
        """The chat/SMS webhook: one inbound message on ``channel`` (``sms``, ``chat``, or
        a plugin's), matched to a customer by the sender's number or address;
        authenticated by an inbound key of scope ``messages``."""
        with _Keyed("messages"):
            record = collab.receive_channel_message(data.pop("channel"), data)
            db.session.commit()
            db.session.refresh(record)
        return record


@channels_blp.route("/messages")
class ChannelMessages(MethodView):
    @channels_blp.arguments(schemas.ChannelMessageQuery, location="query")
    @channels_blp.response(200, schemas.ChannelMessage(many=True))
    @channels_blp.paginate()
    def get(self, args, pagination_parameters):
        """Chat and SMS messages received (``status=unmatched``: no customer found)."""
        from clientela.plugins.collaborative.models import ChannelMessage

        stmt = collab.channel_messages_query(current_principal(), **args).order_by(
            ChannelMessage.occurred_at.desc(), ChannelMessage.id)
        return customers.paginated(stmt, pagination_parameters)


# --- SMTP accounts ------------------------------------------------------------------------


@accounts_blp.route("")
class MailAccounts(MethodView):
    @accounts_blp.response(200, schemas.MailAccount(many=True))
    @accounts_blp.paginate()
    def get(self, pagination_parameters):
        """The tenant's SMTP accounts (never their passwords)."""
        return customers.paginated(collab.accounts_query(current_principal()),
                                   pagination_parameters)

    @accounts_blp.arguments(schemas.MailAccountInput)
    @accounts_blp.response(201, schemas.MailAccount)
    def post(self, data):
        """Add an SMTP account; the first one is the default."""
        account = collab.create_account(data, current_principal())
        db.session.commit()
        return account


@accounts_blp.route("/<uuid:account_id>")
class MailAccountById(MethodView):
    @accounts_blp.response(200, schemas.MailAccount)
    def get(self, account_id: uuid.UUID):
        """One SMTP account."""
        return collab.get_account(account_id, current_principal())

    @accounts_blp.arguments(schemas.MailAccountUpdate(partial=True))
    @accounts_blp.response(200, schemas.MailAccount)
    def patch(self, data, account_id: uuid.UUID):
        """Change an SMTP account (``password`` replaces the stored one)."""
        account = collab.update_account(account_id, data, current_principal())
        db.session.commit()
        return account

    @accounts_blp.response(204)
    def delete(self, account_id: uuid.UUID):
        """Remove an SMTP account."""
        collab.delete_account(account_id, current_principal())
        db.session.commit()


# --- mailboxes ----------------------------------------------------------------------------


@mailboxes_blp.route("")
class Mailboxes(MethodView):
    @mailboxes_blp.response(200, schemas.Mailbox(many=True))
    @mailboxes_blp.paginate()
    def get(self, pagination_parameters):
        """The mailboxes you may see."""
        return customers.paginated(collab.mailboxes_query(current_principal()),
                                   pagination_parameters)

    @mailboxes_blp.arguments(schemas.MailboxInput)
    @mailboxes_blp.response(201, schemas.Mailbox)
    def post(self, data):
        """Add a mailbox (a private one needs an owner)."""
        mailbox = collab.create_mailbox(data, current_principal())
        db.session.commit()
        return mailbox


@mailboxes_blp.route("/<uuid:mailbox_id>")
class MailboxById(MethodView):
    @mailboxes_blp.response(200, schemas.Mailbox)
    def get(self, mailbox_id: uuid.UUID):
        """One mailbox."""
        return collab.get_mailbox(mailbox_id, current_principal())

    @mailboxes_blp.arguments(schemas.MailboxUpdate(partial=True))
    @mailboxes_blp.response(200, schemas.Mailbox)
    def patch(self, data, mailbox_id: uuid.UUID):
        """Change a mailbox (a new host, user or folder is read from the start)."""
        mailbox = collab.update_mailbox(mailbox_id, data, current_principal())
        db.session.commit()
        return mailbox

    @mailboxes_blp.response(204)
    def delete(self, mailbox_id: uuid.UUID):
        """Remove a mailbox and the messages read from it."""
        collab.delete_mailbox(mailbox_id, current_principal())
        db.session.commit()


@mailboxes_blp.route("/<uuid:mailbox_id>/poll")
class MailboxPoll(MethodView):
    @mailboxes_blp.response(202, schemas.PollStarted)
    def post(self, mailbox_id: uuid.UUID):
        """Poll the mailbox now, in the background; returns the job's id."""
        from clientela.core import jobs

        mailbox = collab.get_mailbox(mailbox_id, current_principal(), write=True)
        if not mailbox.host:
            raise ValidationError({"host": ["the mailbox has no IMAP host"]})
        job_id = jobs.enqueue("collaborative.poll_mailbox", mailbox.id)
        db.session.commit()
        return {"job_id": job_id}


# --- templates ----------------------------------------------------------------------------


@templates_blp.route("")
class MailTemplates(MethodView):
    @templates_blp.response(200, schemas.MailTemplate(many=True))
    @templates_blp.paginate()
    def get(self, pagination_parameters):
        """The e-mail templates."""
        return customers.paginated(collab.templates_query(current_principal()),
                                   pagination_parameters)

    @templates_blp.arguments(schemas.MailTemplateInput)
    @templates_blp.response(201, schemas.MailTemplate)
    def post(self, data):
        """Add a template: Jinja2 with ``customer``, ``sender`` and ``data`` (sandboxed)."""
        template = collab.create_template(data, current_principal())
        db.session.commit()
        return template


@templates_blp.route("/<uuid:template_id>")
class MailTemplateById(MethodView):
    @templates_blp.response(200, schemas.MailTemplate)
    def get(self, template_id: uuid.UUID):
        """One template."""
        return collab.get_template(template_id, current_principal())

    @templates_blp.arguments(schemas.MailTemplateUpdate(partial=True))
    @templates_blp.response(200, schemas.MailTemplate)
    def patch(self, data, template_id: uuid.UUID):
        """Change a template."""
        template = collab.update_template(template_id, data, current_principal())
        db.session.commit()
        return template

    @templates_blp.response(204)
    def delete(self, template_id: uuid.UUID):
        """Remove a template."""
        collab.delete_template(template_id, current_principal())
        db.session.commit()


# --- sending ------------------------------------------------------------------------------


def _committed_send(result: dict) -> dict:
    """A send's answer: 409 when the customer may not be contacted, 502 when the transport
    refused (nothing recorded then), else committed."""
    if result.get("status") == "blocked":
        db.session.rollback()
        raise Conflict(result.get("reason") or "the customer may not be contacted")
    if result.get("status") == "failed":
        db.session.rollback()
        abort(502, description=f"the message was not sent: {result.get('error')}")
    db.session.commit()
    return result


@emails_blp.route("/<uuid:customer_id>/emails")
class CustomerEmails(MethodView):
    @emails_blp.arguments(schemas.EmailInput)
    @emails_blp.response(201, schemas.EmailResult)
    def post(self, data, customer_id: uuid.UUID):
        """Send an e-mail to the customer (text or a template; ``reply_to`` threads it).

        409 when the customer may not be contacted for this purpose, 502 when the SMTP
        server refused the message (nothing is recorded then).
        """
        result = collab.send_email(customer_id, data, current_principal())
        return _committed_send(result)


@emails_blp.route("/<uuid:customer_id>/messages")
class CustomerTextMessages(MethodView):
    @emails_blp.arguments(schemas.TextMessageInput)
    @emails_blp.response(201, schemas.TextMessageResult)
    def post(self, data, customer_id: uuid.UUID):
        """Send an SMS or chat message to the customer through the messaging driver.

        409 when the customer may not be contacted (or has no number), 502 when the
        gateway refused it (nothing is recorded then).
        """
        from clientela.plugins.collaborative import messaging

        result = messaging.send_to_customer(customer_id, data, current_principal())
        return _committed_send(result)


# --- messages -----------------------------------------------------------------------------


@mail_blp.route("/messages")
class MailMessages(MethodView):
    @mail_blp.arguments(schemas.MailMessageQuery, location="query")
    @mail_blp.response(200, schemas.MailMessage(many=True))
    @mail_blp.paginate()
    def get(self, args, pagination_parameters):
        """Messages you may see (``status=unmatched`` for mail no customer claims)."""
        from clientela.plugins.collaborative.models import MailMessage

        stmt = collab.messages_query(current_principal(), **args).order_by(
            MailMessage.sent_at.desc(), MailMessage.id)
        return customers.paginated(stmt, pagination_parameters)


@mail_blp.route("/messages/<uuid:message_id>")
class MailMessageById(MethodView):
    @mail_blp.response(200, schemas.MailMessage)
    def get(self, message_id: uuid.UUID):
        """One message."""
        return collab.get_message(message_id, current_principal())


@mail_blp.route("/messages/<uuid:message_id>/match")
class MailMessageMatch(MethodView):
    @mail_blp.arguments(schemas.MatchInput)
    @mail_blp.response(200, schemas.MailMessage)
    def post(self, data, message_id: uuid.UUID):
        """Give an unmatched message to a customer (records its interaction)."""
        message = collab.match_message(message_id, data["customer_id"], current_principal())
        db.session.commit()
        return message


@mail_blp.route("/messages/<uuid:message_id>/attachments/<index>")
class MailAttachment(MethodView):
    @mail_blp.response(200, {"type": "string", "format": "binary"},
                       content_type="application/octet-stream")
    def get(self, message_id: uuid.UUID, index: str):
        """Download one stored attachment (``index`` as in the message's ``attachments``)."""
        message = collab.get_message(message_id, current_principal())
        path, item = collab.attachment_path(message, int(index) if index.isdigit() else -1)
        return send_file(path, mimetype=item.get("content_type") or "application/octet-stream",
                         as_attachment=True, download_name=item.get("filename") or "attachment")


@mail_blp.route("/threads/<uuid:thread_id>")
class MailThread(MethodView):
    @mail_blp.response(200, schemas.MailMessage(many=True))
    def get(self, thread_id: uuid.UUID):
        """Every message of a thread you may see, oldest first."""
        from clientela.plugins.collaborative.models import MailMessage

        stmt = collab.messages_query(current_principal(), thread_id=thread_id).order_by(
            MailMessage.sent_at, MailMessage.created_at, MailMessage.id)
        found = list(db.session.execute(stmt).scalars())
        if not found:
            from clientela.core.errors import NotFound

            raise NotFound("thread not found")
        return found


@mail_blp.route("/import")
class MailImport(MethodView):
    @mail_blp.arguments(schemas.ImportQuery, location="query")
    @mail_blp.doc(requestBody={
        "required": True,
        "description": "One message (.eml) or an mbox file: the request body itself, or "
                       "the multipart field ``file``.",
        "content": {"message/rfc822": {"schema": {"type": "string"}},
                    "application/mbox": {"schema": {"type": "string"}},
                    "multipart/form-data": {"schema": {"type": "object", "properties": {
                        "file": {"type": "string", "format": "binary"}}}}},
    })
    @mail_blp.response(201, schemas.MailImportReport)
    def post(self, args):
        """Import an ``.eml`` message or an mbox file: messages are threaded and matched
        as inbound mail is; a message already stored (same Message-ID) is skipped."""
        limit = int(current_app.config["COLLABORATIVE_MAX_IMPORT_BYTES"])
        upload = request.files.get("file")
        if upload is not None:
            filename = args.get("filename") or upload.filename or ""
            content = upload.read(limit + 1)
        else:
            filename = args.get("filename") or ""
            content = request.stream.read(limit + 1)
        if len(content) > limit:
            raise ValidationError({"file": [f"larger than the limit of {limit} bytes"]})
        is_mbox = "mbox" in (request.mimetype or "") or None
        report = collab.import_file(content, filename, current_principal(),
                                    mailbox_id=args.get("mailbox_id"), mbox=is_mbox)
        db.session.commit()
        return report


def _keyed_tenant(scope: str | None = None):
    """Enter the tenant of the request's inbound key; raise 401 for a wrong key."""
    raw = request.headers.get(KEY_HEADER, "")
    tenant_id = collab.tenant_of_key(raw)
    tenant = db.session.get(Tenant, tenant_id) if tenant_id else None
    if tenant is None:
        raise Unauthorized(f"send a valid inbound key in the {KEY_HEADER} header")
    if tenant.status != "active":
        raise Forbidden(f"this account is {tenant.status}")
    return tenant


def _verified_key_tenant():
    """The tenant of a genuine inbound key (of any scope), before the input is read."""
    tenant = _keyed_tenant()
    with tenancy.tenant_context(tenant.id, origin="webhook"):
        genuine = collab.key_exists(request.headers.get(KEY_HEADER, ""))
    if not genuine:
        raise Unauthorized(f"send a valid inbound key in the {KEY_HEADER} header")
    return tenant


class _Keyed:
    """Run the view in the key's tenant, as the system (origin ``webhook``)."""

    def __init__(self, scope: str):
        self.scope = scope

    def __enter__(self):
        tenant = _keyed_tenant(self.scope)
        self._context = tenancy.tenant_context(tenant.id, origin="webhook")
        self._context.__enter__()
        if collab.check_key(request.headers[KEY_HEADER], self.scope) is None:
            self.__exit__(None, None, None)
            db.session.rollback()
            raise Unauthorized(f"send a valid inbound key in the {KEY_HEADER} header")
        g.tenant = tenant
        return tenant

    def __exit__(self, *exc):
        self._context.__exit__(*exc)
        return False


@public(tenant=lambda: _verified_key_tenant())
@mail_blp.route("/inbound")
class MailInbound(MethodView):
    @mail_blp.arguments(schemas.InboundMail)
    @mail_blp.response(201, schemas.InboundResult)
    @mail_blp.doc(security=[{"webhookKey": []}])
    def post(self, data):
        """The inbound e-mail webhook: JSON with ``raw`` MIME or the message's fields;
        authenticated by an inbound key of scope ``mail`` (header ``X-Clientela-Key``)."""
        with _Keyed("mail"):
            record = collab.receive_webhook(data)
            result = {"id": record.id, "status": record.status, "thread_id": record.thread_id,
                      "customer_id": record.customer_id,
                      "interaction_id": record.interaction_id}
            db.session.commit()
        return result


# --- inbound keys -------------------------------------------------------------------------


@keys_blp.route("")
class InboundKeys(MethodView):
    @keys_blp.response(200, schemas.InboundKey(many=True))
    @keys_blp.paginate()
    def get(self, pagination_parameters):
        """The tenant's inbound keys (their prefixes only)."""
        return customers.paginated(collab.keys_query(current_principal()),
                                   pagination_parameters)

    @keys_blp.arguments(schemas.InboundKeyInput)
    @keys_blp.response(201, schemas.InboundKeyCreated)
    def post(self, data):
        """Make a key for the mail (``mail``) or telephony (``calls``) webhook; the key
        is shown in this answer only."""
        key, raw = collab.create_key(data, current_principal())
        db.session.commit()
        return {**{c: getattr(key, c) for c in ("id", "name", "scope", "prefix", "created_at",
                                                "updated_at", "last_used_at")}, "key": raw}


@keys_blp.route("/<uuid:key_id>")
class InboundKeyById(MethodView):
    @keys_blp.response(200, schemas.InboundKey)
    def get(self, key_id: uuid.UUID):
        """One inbound key."""
        return collab.get_key(key_id, current_principal())

    @keys_blp.response(204)
    def delete(self, key_id: uuid.UUID):
        """Revoke an inbound key."""
        collab.delete_key(key_id, current_principal())
        db.session.commit()


# --- calls --------------------------------------------------------------------------------


@public(tenant=lambda: _verified_key_tenant())
@calls_blp.route("/webhook")
class CallsWebhook(MethodView):
    @calls_blp.arguments(schemas.CallWebhook)
    @calls_blp.response(201, schemas.Call)
    @calls_blp.doc(security=[{"webhookKey": []}])
    def post(self, data):
        """The telephony webhook: one finished call as generic JSON (``from``, ``to``,
        ``direction``, ``start``, ``duration``, ``recording_url``, ``agent``, ``call_id``);
        authenticated by an inbound key of scope ``calls``."""
        with _Keyed("calls"):
            call = collab.record_call(data)
            db.session.commit()
            db.session.refresh(call)  # loaded while the key's tenant is still set
        return call


@calls_blp.route("/lookup")
class CallLookup(MethodView):
    @calls_blp.arguments(schemas.LookupQuery, location="query")
    @calls_blp.response(200, schemas.Lookup)
    def get(self, args):
        """The screen pop: who is calling from ``number`` (any format; national numbers in
        ``PHONE_DEFAULT_REGION``)."""
        return collab.lookup_number(args["number"], current_principal())


@calls_blp.route("")
class Calls(MethodView):
    @calls_blp.arguments(schemas.CallQuery, location="query")
    @calls_blp.response(200, schemas.Call(many=True))
    @calls_blp.paginate()
    def get(self, args, pagination_parameters):
        """Calls of the customers you may see, and unmatched calls, newest first."""
        from clientela.plugins.collaborative.models import Call

        stmt = collab.calls_query(current_principal(), **args).order_by(
            Call.started_at.desc(), Call.id)
        return customers.paginated(stmt, pagination_parameters)


@calls_blp.route("/<uuid:call_id>")
class CallById(MethodView):
    @calls_blp.response(200, schemas.Call)
    def get(self, call_id: uuid.UUID):
        """One call."""
        return collab.get_call(call_id, current_principal())


BLUEPRINTS = (channels_blp, accounts_blp, mailboxes_blp, templates_blp, mail_blp, emails_blp,
              keys_blp, calls_blp)

__all__ = ["BLUEPRINTS", "KEY_HEADER"]
