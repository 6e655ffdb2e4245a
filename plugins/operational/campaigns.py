"""Campaigns: target lists and segments, merge-field templates, sending as a job that never
sends twice to one customer, tracked responses, opt-outs and results with ROI.

Every function runs in the current tenant and needs no request; those acting for a user take
the ``Principal`` whose permissions and record scope apply. They flush but never commit,
except the send job, which commits after each recipient so that a crash loses nothing.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import html as html_lib
import logging
import re
import uuid
from typing import Any

import jinja2
import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from jinja2.sandbox import SandboxedEnvironment

from clientela.core import access, channels, customers, jobs, services, tenancy
from clientela.core.access import Principal
from clientela.core.db import db, utcnow
from clientela.core.errors import Conflict, NotFound, ValidationError
from clientela.core.events import plugin_hooks
from clientela.core.models import Customer, Job
from clientela.plugins.operational.campaign_models import (
    RESPONSE_KINDS,
    Campaign,
    CampaignDeal,
    CampaignMember,
    CampaignRecipient,
    MarketingOptOut,
)
from clientela.plugins.operational.models import Deal

log = logging.getLogger(__name__)

SOURCE = "campaign"
SEND_JOB = "operational.send_campaign"
DUE_JOB = "operational.send_due_campaigns"
CENT = decimal.Decimal("0.01")
RATE = decimal.Decimal("0.0001")
ZERO = decimal.Decimal("0")
CAMPAIGN_SORT = {"created_at", "updated_at", "name", "status", "send_at"}
#: what may still change once a campaign is sending or sent: its bookkeeping, not its message
EDITABLE_AFTER_SENDING = {"name", "description", "budget", "cost"}
#: recipient states that end its send; ``pending`` and ``failed`` are (re)tried by a round
FINAL = ("sent", "blocked", "unknown")
TOKEN_SALT = "clientela.campaigns.recipient"
CLICK_SALT = "clientela.campaigns.click"


# --- templates ------------------------------------------------------------------------

_text_env = SandboxedEnvironment(autoescape=False, undefined=jinja2.Undefined)
_html_env = SandboxedEnvironment(autoescape=True, undefined=jinja2.Undefined)


def check_templates(data: dict[str, Any]) -> None:
    """422 when the subject, body or HTML is not a valid template."""
    errors = {}
    for field, env in (("subject", _text_env), ("body", _text_env), ("html", _html_env)):
        source = data.get(field)
        if not source:
            continue
        try:
            env.parse(source)
        except jinja2.TemplateSyntaxError as exc:
            errors[field] = [f"template error on line {exc.lineno}: {exc.message}"]
    if errors:
        raise ValidationError(errors)


def merge_fields(customer: Customer, campaign: Campaign, unsubscribe_url: str = ""
                 ) -> dict[str, Any]:
    """What a template can name: ``{{ first_name }}``, ``{{ attributes.tier }}``, ..."""
    return {
        "first_name": customer.first_name or "", "last_name": customer.last_name or "",
        "display_name": customer.display_name or "",
        "organisation_name": customer.organisation_name or "",
        "email": customer.email or "", "phone": customer.phone or "",
        "attributes": dict(customer.attributes or {}),
        "campaign": {"name": campaign.name}, "unsubscribe_url": unsubscribe_url,
    }


def render(campaign: Campaign, customer: Customer, unsubscribe_url: str = ""
           ) -> dict[str, str | None]:
    """The subject, text body and HTML of ``campaign`` for ``customer`` (links untouched)."""
    context = merge_fields(customer, campaign, unsubscribe_url)
    try:
        subject = _text_env.from_string(campaign.subject or "").render(context)
        body = _text_env.from_string(campaign.body or "").render(context)
        html = (_html_env.from_string(campaign.html).render(context)
                if campaign.html else None)
    except jinja2.TemplateError as exc:
        raise ValidationError({"body": [f"the template cannot be rendered: {exc}"]}) from exc
    return {"subject": " ".join(subject.split()), "body": body, "html": html}


# --- tracking tokens and links -----------------------------------------------------------


def _serializer(salt: str) -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=salt)


def recipient_token(recipient: CampaignRecipient) -> str:
    """Signed ``(tenant, recipient)``: unguessable, and it names its tenant so that the
    public endpoints look the recipient up inside that tenant only."""
    return _serializer(TOKEN_SALT).dumps([recipient.tenant_id.hex, recipient.id.hex])


def _digest(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:24]


def click_token(recipient: CampaignRecipient, url: str) -> str:
    """Signed ``(tenant, recipient, the link's digest)``: only links this campaign's message
    carried are ever redirected to (no open redirect)."""
    return _serializer(CLICK_SALT).dumps([recipient.tenant_id.hex, recipient.id.hex,
                                          _digest(url)])


def read_token(token: str, url: str | None = None) -> tuple[uuid.UUID, uuid.UUID] | None:
    """``(tenant id, recipient id)`` of a valid token (of a click for ``url``), else None."""
    try:
        if url is None:
            tenant_hex, recipient_hex = _serializer(TOKEN_SALT).loads(token)
        else:
            tenant_hex, recipient_hex, digest = _serializer(CLICK_SALT).loads(token)
            if digest != _digest(url):
                return None
        return uuid.UUID(hex=tenant_hex), uuid.UUID(hex=recipient_hex)
    except (BadSignature, ValueError, TypeError):
        return None


_HREF = re.compile(r"""(href\s*=\s*)(["'])(https?://[^"']+)\2""", re.IGNORECASE)
_TEXT_URL = re.compile(r"""https?://[^\s<>"']+[^\s<>"'.,;:!?)\]]""")


def tracked(campaign: Campaign, recipient: CampaignRecipient, rendered: dict, base: str,
            unsubscribe_url: str) -> dict:
    """Links rewritten through ``/t/c/<token>?u=``, and an open pixel in the HTML."""
    from urllib.parse import quote

    def link(url: str) -> str:
        if url == unsubscribe_url:
            return url
        return f"{base}/t/c/{click_token(recipient, url)}?u={quote(url, safe='')}"

    body = _TEXT_URL.sub(lambda m: link(m.group(0)), rendered["body"])
    html = rendered["html"]
    if html is not None:
        html = _HREF.sub(lambda m: m.group(1) + m.group(2)
                         + html_lib.escape(link(html_lib.unescape(m.group(3))))
                         + m.group(2), html)
        pixel = (f'<img src="{base}/t/o/{recipient_token(recipient)}.gif" width="1" '
                 'height="1" alt="" style="display:none">')
        html = html.replace("</body>", pixel + "</body>") if "</body>" in html else html + pixel
    return {**rendered, "body": body, "html": html}


def base_url(campaign: Campaign) -> str:
    return (current_app.config.get("OPERATIONAL_TRACKING_BASE_URL") or campaign.base_url
            or "http://localhost:5000").rstrip("/")


# --- campaigns ----------------------------------------------------------------------------


def campaigns_query(principal: Principal, *, status: str | None = None,
                    channel: str | None = None, q: str | None = None):
    stmt = access.scope_filter(db.select(Campaign), Campaign.owner_id, principal,
                               "campaigns:read")
    if status is not None:
        stmt = stmt.where(Campaign.status == status)
    if channel is not None:
        stmt = stmt.where(Campaign.channel == channel)
    if q and q.strip():
        stmt = stmt.where(sa.func.lower(Campaign.name).like(f"%{q.strip().lower()}%"))
    return stmt


def get_campaign(campaign_id: uuid.UUID, principal: Principal,
                 permission: str = "campaigns:read") -> Campaign:
    """A campaign ``principal`` may read (404 otherwise); for a write, 403 without the right."""
    campaign = db.session.execute(
        campaigns_query(principal).where(Campaign.id == campaign_id)
    ).scalar_one_or_none()
    if campaign is None:
        raise NotFound("campaign not found")
    if permission != "campaigns:read":
        access.check_record(campaign.owner_id, principal, "campaigns:read", permission)
    return campaign


def _clean(data: dict[str, Any], campaign: Campaign | None = None) -> dict[str, Any]:
    data = dict(data)
    check_templates(data)
    if data.get("currency"):
        data["currency"] = data["currency"].upper()
    audience = data.get("audience", campaign.audience if campaign else "list")
    segment = data.get("segment_id", campaign.segment_id if campaign else None)
    if audience == "segment" and not segment:
        raise ValidationError({"segment_id": ["a segment campaign needs a segment_id"]})
    if audience == "segment" and "segment_id" in data and segment not in {
            s["id"] for s in segments()}:
        raise ValidationError({"segment_id": ["no installed plugin offers this segment"]})
    return data


def create_campaign(data: dict[str, Any], principal: Principal) -> Campaign:
    access.require(principal, "campaigns:write")
    data = _clean(data)
    data.setdefault("currency", current_app.config["OPERATIONAL_DEFAULT_CURRENCY"])
    data["owner_id"] = principal.user_id
    campaign = Campaign(**data)
    db.session.add(campaign)
    db.session.flush()
    return campaign


def update_campaign(campaign_id: uuid.UUID, data: dict[str, Any], principal: Principal
                    ) -> Campaign:
    campaign = get_campaign(campaign_id, principal, "campaigns:write")
    if campaign.status not in ("draft", "scheduled"):
        frozen = sorted(set(data) - EDITABLE_AFTER_SENDING)
        if frozen:
            raise Conflict(f"the campaign is {campaign.status}: only "
                           f"{', '.join(sorted(EDITABLE_AFTER_SENDING))} can change "
                           f"(not {', '.join(frozen)})")
    data = _clean(data, campaign)
    for key, value in data.items():
        setattr(campaign, key, value)
    db.session.flush()
    return campaign


def delete_campaign(campaign_id: uuid.UUID, principal: Principal) -> None:
    campaign = get_campaign(campaign_id, principal, "campaigns:write")
    if campaign.status in ("sending", "sent"):
        raise Conflict(f"a {campaign.status} campaign keeps its results: cancel it or keep it")
    db.session.delete(campaign)
    db.session.flush()


# --- the target list and segments -----------------------------------------------------------


def segments() -> list[dict[str, Any]]:
    """Every segment another plugin offers (``clientela_segments``)."""
    hook = plugin_hooks()
    found = []
    for answer in ([] if hook is None else hook.clientela_segments()):
        found.extend(answer or [])
    return sorted(found, key=lambda s: (str(s.get("source", "")), str(s.get("name", ""))))


def segment_members(segment_id: str) -> list[uuid.UUID]:
    hook = plugin_hooks()
    answer = None if hook is None else hook.clientela_segment_members(segment_id=segment_id)
    if answer is None:
        raise ValidationError({"segment_id": [f"no installed plugin answers for segment "
                                              f"{segment_id!r}"]})
    return [uuid.UUID(str(i)) for i in answer]


def members_query(campaign_id: uuid.UUID, principal: Principal):
    get_campaign(campaign_id, principal)
    return (db.select(Customer)
            .join(CampaignMember, (CampaignMember.tenant_id == Customer.tenant_id)
                  & (CampaignMember.customer_id == Customer.id))
            .where(CampaignMember.campaign_id == campaign_id)
            .order_by(Customer.display_name, Customer.id))


def _list_editable(campaign: Campaign) -> None:
    if campaign.status not in ("draft", "scheduled"):
        raise Conflict(f"the campaign is {campaign.status}: its target list is fixed")
    if campaign.audience != "list":
        raise Conflict("the campaign targets a segment, not a static list")


def add_members(campaign_id: uuid.UUID, customer_ids: list[uuid.UUID], principal: Principal
                ) -> dict[str, int]:
    """Add customers the principal may see; 422 naming those it may not (none is added)."""
    campaign = get_campaign(campaign_id, principal, "campaigns:write")
    _list_editable(campaign)
    wanted = list(dict.fromkeys(customer_ids))
    visible = set(db.session.execute(
        customers.customers_query(principal).with_only_columns(Customer.id)
        .where(Customer.id.in_(wanted))).scalars())
    missing = [str(i) for i in wanted if i not in visible]
    if missing:
        raise ValidationError({"customer_ids": [f"no such customer: {', '.join(missing)}"]})
    present = set(db.session.execute(
        db.select(CampaignMember.customer_id).where(CampaignMember.campaign_id == campaign_id,
                                                    CampaignMember.customer_id.in_(wanted))
    ).scalars())
    added = [i for i in wanted if i not in present]
    db.session.add_all(CampaignMember(campaign_id=campaign_id, customer_id=i) for i in added)
    db.session.flush()
    return {"added": len(added), "already_members": len(wanted) - len(added),
            "members": member_count(campaign_id)}


def remove_member(campaign_id: uuid.UUID, customer_id: uuid.UUID, principal: Principal
                  ) -> None:
    campaign = get_campaign(campaign_id, principal, "campaigns:write")
    member = db.session.execute(db.select(CampaignMember).where(
        CampaignMember.campaign_id == campaign_id, CampaignMember.customer_id == customer_id)
    ).scalar_one_or_none()
    if member is None:
        raise NotFound("this customer is not on the campaign's list")
    _list_editable(campaign)
    db.session.delete(member)
    db.session.flush()


def member_count(campaign_id: uuid.UUID) -> int:
    return db.session.execute(db.select(sa.func.count()).select_from(CampaignMember).where(
        CampaignMember.campaign_id == campaign_id)).scalar_one()


def audience(campaign: Campaign) -> list[uuid.UUID]:
    """The customers the campaign goes to, evaluated now (a segment's current members)."""
    if campaign.audience == "segment":
        ids = segment_members(campaign.segment_id)
        if not ids:
            return []
        # only this tenant's customers, whatever the answering plugin said
        found: set[uuid.UUID] = set()
        for start in range(0, len(ids), 1000):
            found.update(db.session.execute(db.select(Customer.id).where(
                Customer.id.in_(ids[start:start + 1000]))).scalars())
        return [i for i in dict.fromkeys(ids) if i in found]
    return list(db.session.execute(
        db.select(CampaignMember.customer_id).where(CampaignMember.campaign_id == campaign.id)
        .order_by(CampaignMember.created_at, CampaignMember.id)).scalars())


# --- scheduling and sending ---------------------------------------------------------------


def _check_sendable(campaign: Campaign) -> None:
    errors = {}
    if campaign.channel == "email" and not (campaign.subject or "").strip():
        errors["subject"] = ["an e-mail campaign needs a subject"]
    if not (campaign.body or "").strip() and not campaign.html:
        errors["body"] = ["the campaign has no message"]
    registered = channels.registry().get(campaign.channel)
    if campaign.channel != "email" and (registered is None or not registered.outbound):
        errors["channel"] = [f"no installed plugin sends on {campaign.channel!r}"]
    if errors:
        raise ValidationError(errors)


def schedule(campaign_id: uuid.UUID, send_at: dt.datetime, principal: Principal,
             base: str | None = None) -> Campaign:
    """Send the campaign at ``send_at``: its send job is enqueued now, due then (scheduling
    again replaces it; the hourly ``send_due_campaigns`` starts any the queue missed)."""
    campaign = get_campaign(campaign_id, principal, "campaigns:send")
    if campaign.status not in ("draft", "scheduled"):
        raise Conflict(f"the campaign is {campaign.status}: only a draft can be scheduled")
    _check_sendable(campaign)
    if send_at.tzinfo is None:
        send_at = send_at.replace(tzinfo=dt.timezone.utc)
    campaign.send_at, campaign.status = send_at, "scheduled"
    campaign.base_url = base or campaign.base_url
    campaign.send_round += 1
    db.session.flush()
    delay = max((send_at - utcnow()).total_seconds(), 0)
    jobs.enqueue(SEND_JOB, campaign.id, campaign.send_round, delay=delay,
                 idempotency_key=_round_key(campaign))
    return campaign


def cancel(campaign_id: uuid.UUID, principal: Principal) -> Campaign:
    """Stop a draft, scheduled or sending campaign (a send stops before its next recipient)."""
    campaign = get_campaign(campaign_id, principal, "campaigns:send")
    if campaign.status not in ("draft", "scheduled", "sending"):
        raise Conflict(f"the campaign is {campaign.status}: it cannot be cancelled")
    campaign.status = "cancelled"
    campaign.finished_at = utcnow()
    db.session.flush()
    return campaign


def _round_key(campaign: Campaign) -> str:
    return f"campaign:{campaign.id}:round:{campaign.send_round}"


def start_sending(campaign: Campaign) -> uuid.UUID:
    """Open a new send round and enqueue its job (sent when the caller commits)."""
    campaign.status = "sending"
    campaign.started_at = campaign.started_at or utcnow()
    campaign.send_round += 1
    db.session.flush()
    return jobs.enqueue(SEND_JOB, campaign.id, campaign.send_round,
                        idempotency_key=_round_key(campaign))


def send_now(campaign_id: uuid.UUID, principal: Principal, base: str | None = None
             ) -> tuple[Campaign, uuid.UUID]:
    """Send a draft or scheduled campaign now, or resume one whose send job stopped
    (died, or finished with failed recipients): already-sent customers are never sent
    again. 409 while its job is still queued or running."""
    campaign = get_campaign(campaign_id, principal, "campaigns:send")
    if campaign.status == "sending":
        job = current_job(campaign)
        if job is not None and job.status not in ("dead", "succeeded"):
            raise Conflict("the campaign is being sent: its job is still "
                           f"{job.status} ({job.id})")
    elif campaign.status == "sent":
        failed = db.session.execute(db.select(sa.func.count()).select_from(CampaignRecipient)
                                    .where(CampaignRecipient.campaign_id == campaign.id,
                                           CampaignRecipient.status == "failed")).scalar_one()
        if not failed:
            raise Conflict("the campaign is sent, with no failed recipient to try again")
    elif campaign.status not in ("draft", "scheduled"):
        raise Conflict(f"the campaign is {campaign.status}: it cannot be sent")
    _check_sendable(campaign)
    campaign.base_url = base or campaign.base_url
    return campaign, start_sending(campaign)


def current_job(campaign: Campaign) -> Job | None:
    if not campaign.send_round:
        return None
    return db.session.execute(db.select(Job).where(Job.idempotency_key == _round_key(campaign))
                              ).scalar_one_or_none()


#: how late a scheduled campaign's own job may be before the periodic job starts it instead
LATE = dt.timedelta(minutes=5)


def send_due_campaigns() -> int:
    """Periodic job (hourly), the safety net: start the scheduled campaigns whose ``send_at``
    passed and whose own send job has not started them (lost, dead, or the queue is late)."""
    due = db.session.execute(db.select(Campaign).where(
        Campaign.status == "scheduled", Campaign.send_at <= utcnow() - LATE)
        .order_by(Campaign.send_at, Campaign.id)).scalars().all()
    for campaign in due:
        start_sending(campaign)
    return len(due)


def _snapshot(campaign: Campaign) -> int:
    """Write a ``pending`` recipient for each audience member not yet one; the unique key
    (campaign, customer) makes this safe to run again."""
    known = set(db.session.execute(db.select(CampaignRecipient.customer_id).where(
        CampaignRecipient.campaign_id == campaign.id)).scalars())
    new = [i for i in audience(campaign) if i not in known]
    db.session.add_all(CampaignRecipient(campaign_id=campaign.id, customer_id=i) for i in new)
    db.session.flush()
    return len(new)


def _claim(recipient_id: uuid.UUID) -> bool:
    """Take one recipient for sending: a conditional UPDATE, committed before the message
    goes out, so that whatever happens next it is never sent twice."""
    done = db.session.execute(
        sa.update(CampaignRecipient)
        .where(CampaignRecipient.id == recipient_id,
               CampaignRecipient.status.in_(("pending", "failed")))
        .values(status="sending", attempts=CampaignRecipient.attempts + 1,
                updated_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    return done == 1


def send_campaign(campaign_id: uuid.UUID, send_round: int | None = None) -> dict[str, int]:
    """The send job of one round: every audience member once, committing after each one.

    A scheduled campaign's job starts it (once ``send_at`` has come); a job of an earlier
    round (rescheduled, sent by hand meanwhile) or of a cancelled campaign does nothing.
    A re-run (retry, crash, resume) skips whoever is ``sent`` or ``blocked``; a recipient
    left ``sending`` by a crashed run may have received the message, so it becomes
    ``unknown`` and is not sent again; ``failed`` ones are tried again.
    """
    campaign = db.session.execute(db.select(Campaign).where(Campaign.id == campaign_id)
                                  ).scalar_one_or_none()
    if campaign is None or (send_round is not None and send_round != campaign.send_round):
        return {"sent": 0}
    if campaign.status == "scheduled" and campaign.send_at is not None \
            and campaign.send_at <= utcnow():
        campaign.status = "sending"
        campaign.started_at = campaign.started_at or utcnow()
    if campaign.status != "sending":
        return {"sent": 0}
    db.session.execute(
        sa.update(CampaignRecipient)
        .where(CampaignRecipient.campaign_id == campaign_id,
               CampaignRecipient.status == "sending")
        .values(status="unknown", updated_at=utcnow(),
                error="interrupted while sending: it may have gone out, so it is not "
                      "sent again")
        .execution_options(synchronize_session=False))
    _snapshot(campaign)
    db.session.commit()
    base = base_url(campaign)
    counts = {"sent": 0, "blocked": 0, "failed": 0}
    todo = db.session.execute(
        db.select(CampaignRecipient.id).where(
            CampaignRecipient.campaign_id == campaign_id,
            CampaignRecipient.status.in_(("pending", "failed")))
        .order_by(CampaignRecipient.created_at, CampaignRecipient.id)).scalars().all()
    for recipient_id in todo:
        db.session.refresh(campaign)
        if campaign.status != "sending":  # cancelled meanwhile
            return counts
        if not _claim(recipient_id):
            continue
        recipient = db.session.execute(db.select(CampaignRecipient).where(
            CampaignRecipient.id == recipient_id)).scalar_one()
        outcome = _send_one(campaign, recipient, base)
        counts[outcome] = counts.get(outcome, 0) + 1
        db.session.commit()
    db.session.refresh(campaign)
    if campaign.status == "sending":
        campaign.status = "sent"
        campaign.finished_at = utcnow()
        db.session.flush()
    return counts


def _send_one(campaign: Campaign, recipient: CampaignRecipient, base: str) -> str:
    customer = db.session.get(Customer, (recipient.tenant_id, recipient.customer_id))
    unsubscribe_url = f"{base}/t/u/{recipient_token(recipient)}"
    try:
        rendered = render(campaign, customer, unsubscribe_url)
        if campaign.purpose == "marketing" and "/t/u/" not in (rendered["body"] or ""):
            rendered["body"] += f"\n\n--\nUnsubscribe: {unsubscribe_url}\n"
        rendered = tracked(campaign, recipient, rendered, base, unsubscribe_url)
        headers = {"List-Unsubscribe": f"<{unsubscribe_url}>",
                   "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
        answer = channels.send_message({
            "channel": campaign.channel, "subject": rendered["subject"],
            "body": rendered["body"], "html": rendered["html"], "headers": headers,
            "purpose": campaign.purpose, "source": SOURCE,
            "external_id": f"campaign:{campaign.id}:{customer.id}",
            "attributes": {"campaign_id": str(campaign.id)},
        }, customer)
    except Exception as exc:  # noqa: BLE001 - one recipient's failure is its own
        log.warning("campaign %s: sending to %s failed: %s", campaign.id, customer.id, exc)
        # drop whatever the channel half wrote; the claim is committed and stays
        db.session.rollback()
        recipient = find_recipient(recipient.id)
        answer = {"status": "failed", "error": _error_text(exc)}
    status = answer.get("status")
    if status in ("sent", "queued"):
        recipient.status, recipient.sent_at = "sent", utcnow()
        recipient.message_id = answer.get("message_id")
        recipient.interaction_id = answer.get("interaction_id")
        recipient.reason = recipient.error = None
        outcome = "sent"
    elif status == "blocked":
        recipient.status, recipient.reason, recipient.error = "blocked", answer.get("reason"), None
        outcome = "blocked"
    else:
        recipient.status = "failed"
        recipient.error = str(answer.get("error") or "the channel did not send it")
        outcome = "failed"
    db.session.flush()
    return outcome


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.errors.items())
    return f"{type(exc).__name__}: {exc}"


def recipients_query(campaign_id: uuid.UUID, principal: Principal, status: str | None = None):
    get_campaign(campaign_id, principal)
    stmt = db.select(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign_id)
    if status is not None:
        stmt = stmt.where(CampaignRecipient.status == status)
    return stmt.order_by(CampaignRecipient.created_at, CampaignRecipient.id)


def preview(campaign_id: uuid.UUID, customer_id: uuid.UUID, principal: Principal
            ) -> dict[str, Any]:
    """The message as ``customer_id`` would get it (without tracking links)."""
    campaign = get_campaign(campaign_id, principal)
    customer = customers.get_customer(customer_id, principal)
    return render(campaign, customer, f"{base_url(campaign)}/t/u/preview")


# --- responses ------------------------------------------------------------------------

_RESPONSE_SUBJECT = {
    "delivered": "Campaign delivered", "opened": "Campaign opened",
    "clicked": "Campaign link clicked", "replied": "Replied to campaign",
    "converted": "Converted by campaign", "unsubscribed": "Unsubscribed from campaign",
}


def record_response(recipient: CampaignRecipient, kind: str, *, detail: str = "",
                    key: str | None = None, occurred_at: dt.datetime | None = None,
                    user_id: uuid.UUID | None = None) -> CampaignRecipient:
    """Record a response on the recipient and, once per kind (per link for clicks), as an
    interaction on the customer's timeline. Opens and clicks also imply delivery."""
    if kind not in RESPONSE_KINDS:
        raise ValidationError({"kind": [f"must be one of {', '.join(RESPONSE_KINDS)}"]})
    campaign = db.session.execute(db.select(Campaign).where(
        Campaign.id == recipient.campaign_id)).scalar_one()
    now = occurred_at or utcnow()
    column = f"{kind}_at"
    first = getattr(recipient, column) is None
    if first:
        setattr(recipient, column, now)
    if kind == "opened":
        recipient.opens += 1
    if kind == "clicked":
        recipient.clicks += 1
        # a click is also an open, whether or not the images were shown
        recipient.opened_at = recipient.opened_at or now
    if kind in ("opened", "clicked", "replied") and recipient.delivered_at is None:
        recipient.delivered_at = now
    if first or key:
        services.record_interaction(
            recipient.customer_id, campaign.channel,
            direction="internal" if kind == "converted" else "inbound",
            occurred_at=now, subject=f"{_RESPONSE_SUBJECT[kind]}: {campaign.name}"[:500],
            body=detail, outcome=kind, user_id=user_id, source=SOURCE,
            external_id=f"campaign:{campaign.id}:{recipient.customer_id}:{kind}"
                        + (f":{key}" if key else ""),
            attributes={"campaign_id": str(campaign.id)},
        )
    if kind == "unsubscribed":
        opt_out(recipient.customer_id, campaign.channel, campaign.id, now)
    db.session.flush()
    return recipient


def inbound_message(interaction, thread: list) -> None:
    """The plugin's part of ``clientela_inbound_message``: an inbound message whose thread
    holds a campaign's send is a reply to that campaign. Links nothing, so answers None."""
    for earlier in reversed(thread or []):
        parts = (getattr(earlier, "external_id", None) or "").split(":")
        if getattr(earlier, "source", None) != SOURCE or len(parts) != 3:
            continue
        try:
            campaign_id, customer_id = uuid.UUID(parts[1]), uuid.UUID(parts[2])
        except ValueError:
            continue
        recipient = db.session.execute(db.select(CampaignRecipient).where(
            CampaignRecipient.campaign_id == campaign_id,
            CampaignRecipient.customer_id == customer_id,
            CampaignRecipient.status.in_(("sent", "unknown")))).scalar_one_or_none()
        if recipient is not None:
            record_response(recipient, "replied", detail=interaction.subject or "",
                            occurred_at=interaction.occurred_at)
        return None
    return None


def find_recipient(recipient_id: uuid.UUID) -> CampaignRecipient | None:
    return db.session.execute(db.select(CampaignRecipient).where(
        CampaignRecipient.id == recipient_id)).scalar_one_or_none()


def _recipient_of(campaign: Campaign, customer_id: uuid.UUID) -> CampaignRecipient:
    recipient = db.session.execute(db.select(CampaignRecipient).where(
        CampaignRecipient.campaign_id == campaign.id,
        CampaignRecipient.customer_id == customer_id)).scalar_one_or_none()
    if recipient is None or recipient.status != "sent":
        raise ValidationError({"customer_id": ["the campaign was not sent to this customer"]})
    return recipient


def record_response_for(campaign_id: uuid.UUID, data: dict[str, Any], principal: Principal
                        ) -> CampaignRecipient:
    """``POST /campaigns/{id}/responses``: a response learnt elsewhere (a delivery report, a
    reply read by someone, a phone call); conversions go through :func:`link_deal`."""
    campaign = get_campaign(campaign_id, principal, "campaigns:write")
    if data["kind"] == "converted":
        raise ValidationError({"kind": ["record a conversion by linking its deal "
                                        "(POST /campaigns/{id}/deals)"]})
    recipient = _recipient_of(campaign, data["customer_id"])
    return record_response(recipient, data["kind"], detail=data.get("detail") or "",
                           occurred_at=data.get("occurred_at"), user_id=principal.user_id)


def opt_out(customer_id: uuid.UUID, channel: str, campaign_id: uuid.UUID | None,
            when: dt.datetime | None = None) -> MarketingOptOut:
    existing = db.session.execute(db.select(MarketingOptOut).where(
        MarketingOptOut.customer_id == customer_id, MarketingOptOut.channel == channel)
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    row = MarketingOptOut(customer_id=customer_id, channel=channel, campaign_id=campaign_id,
                          opted_out_at=when or utcnow())
    db.session.add(row)
    db.session.flush()
    return row


def opted_out(customer_id: uuid.UUID, channel: str) -> bool:
    return db.session.execute(db.select(MarketingOptOut.id).where(
        MarketingOptOut.customer_id == customer_id, MarketingOptOut.channel == channel)
    ).first() is not None


def contact_allowed(customer, channel: str, purpose: str) -> bool | None:
    """The plugin's answer to ``clientela_contact_allowed``: no marketing on a channel the
    customer unsubscribed from; no opinion otherwise."""
    if purpose != "marketing" or customer is None or tenancy.get_tenant_id() is None:
        return None
    return False if opted_out(customer.id, channel) else None


# --- deals and results ------------------------------------------------------------------------


def link_deal(campaign_id: uuid.UUID, deal_id: uuid.UUID, principal: Principal) -> CampaignDeal:
    """Attribute a deal to the campaign; when the deal's customer received the campaign, it
    is a ``converted`` response on their timeline."""
    from clientela.plugins.operational import services as ops

    campaign = get_campaign(campaign_id, principal, "campaigns:write")
    deal = ops.get_deal(deal_id, principal)
    existing = db.session.execute(db.select(CampaignDeal).where(CampaignDeal.deal_id == deal_id)
                                  ).scalar_one_or_none()
    if existing is not None:
        if existing.campaign_id == campaign.id:
            return existing
        raise Conflict("this deal is already attributed to another campaign")
    link = CampaignDeal(campaign_id=campaign.id, deal_id=deal.id)
    db.session.add(link)
    db.session.flush()
    if deal.customer_id is not None:
        recipient = db.session.execute(db.select(CampaignRecipient).where(
            CampaignRecipient.campaign_id == campaign.id,
            CampaignRecipient.customer_id == deal.customer_id,
            CampaignRecipient.status == "sent")).scalar_one_or_none()
        if recipient is not None:
            record_response(recipient, "converted", detail=f"Deal: {deal.title}",
                            key=f"deal:{deal.id}", user_id=principal.user_id)
    return link


def unlink_deal(campaign_id: uuid.UUID, deal_id: uuid.UUID, principal: Principal) -> None:
    get_campaign(campaign_id, principal, "campaigns:write")
    link = db.session.execute(db.select(CampaignDeal).where(
        CampaignDeal.campaign_id == campaign_id, CampaignDeal.deal_id == deal_id)
    ).scalar_one_or_none()
    if link is None:
        raise NotFound("this deal is not attributed to the campaign")
    db.session.delete(link)
    db.session.flush()


def campaign_deals(campaign_id: uuid.UUID, principal: Principal) -> list[Deal]:
    get_campaign(campaign_id, principal)
    return list(db.session.execute(
        db.select(Deal).join(CampaignDeal, (CampaignDeal.tenant_id == Deal.tenant_id)
                             & (CampaignDeal.deal_id == Deal.id))
        .where(CampaignDeal.campaign_id == campaign_id)
        .order_by(Deal.created_at, Deal.id)).scalars())


def _money(value) -> decimal.Decimal:
    return decimal.Decimal(value or 0).quantize(CENT, rounding=decimal.ROUND_HALF_UP)


def _rate(part, whole) -> decimal.Decimal | None:
    if not whole:
        return None
    return (decimal.Decimal(part) / decimal.Decimal(whole)).quantize(
        RATE, rounding=decimal.ROUND_HALF_UP)


def results(campaign_id: uuid.UUID, principal: Principal) -> dict[str, Any]:
    """Reach, responses and their rates (over the customers reached), the deals the campaign
    brought, its revenue (won deals in its currency), cost and ROI = (revenue - cost) / cost."""
    campaign = get_campaign(campaign_id, principal)
    by_status = dict(db.session.execute(
        db.select(CampaignRecipient.status, sa.func.count())
        .where(CampaignRecipient.campaign_id == campaign_id)
        .group_by(CampaignRecipient.status)).all())
    reach = by_status.get("sent", 0)
    counted = db.session.execute(db.select(*(
        sa.func.count(getattr(CampaignRecipient, f"{kind}_at")) for kind in RESPONSE_KINDS
    ), sa.func.coalesce(sa.func.sum(CampaignRecipient.opens), 0),
        sa.func.coalesce(sa.func.sum(CampaignRecipient.clicks), 0))
        .where(CampaignRecipient.campaign_id == campaign_id,
               CampaignRecipient.status == "sent")).one()
    responses = {kind: {"count": counted[i], "rate": _rate(counted[i], reach)}
                 for i, kind in enumerate(RESPONSE_KINDS)}
    deals = db.session.execute(
        db.select(Deal.status, Deal.currency, sa.func.count(), sa.func.sum(Deal.amount))
        .join(CampaignDeal, (CampaignDeal.tenant_id == Deal.tenant_id)
              & (CampaignDeal.deal_id == Deal.id))
        .where(CampaignDeal.campaign_id == campaign_id)
        .group_by(Deal.status, Deal.currency)).all()
    won_other: dict[str, decimal.Decimal] = {}
    revenue = ZERO
    counts = {"open": 0, "won": 0, "lost": 0}
    for status, currency, n, total in deals:
        counts[status] += n
        if status != "won":
            continue
        if currency == campaign.currency:
            revenue += decimal.Decimal(str(total or 0))
        else:
            won_other[currency] = _money(decimal.Decimal(str(total or 0)))
    cost = _money(campaign.cost)
    revenue = _money(revenue)
    roi = None if not cost else ((revenue - cost) / cost).quantize(
        RATE, rounding=decimal.ROUND_HALF_UP)
    return {
        "campaign_id": campaign.id, "status": campaign.status,
        "audience": sum(by_status.values()), "reach": reach,
        "pending": by_status.get("pending", 0) + by_status.get("sending", 0),
        "blocked": by_status.get("blocked", 0), "failed": by_status.get("failed", 0),
        "unknown": by_status.get("unknown", 0),
        "responses": responses, "opens": counted[-2], "clicks": counted[-1],
        "deals": {"count": sum(counts.values()), **counts},
        "converted_deals": counts["won"], "revenue": revenue,
        "revenue_other_currencies": {k: str(v) for k, v in sorted(won_other.items())},
        "currency": campaign.currency, "budget": campaign.budget, "cost": cost, "roi": roi,
    }


# --- the customer's data -----------------------------------------------------------------


def export_for(customer: Customer) -> dict[str, Any]:
    from clientela.plugins.operational.services import _row

    rows = db.session.execute(db.select(CampaignRecipient).where(
        CampaignRecipient.customer_id == customer.id).order_by(CampaignRecipient.created_at)
    ).scalars()
    opt_outs = db.session.execute(db.select(MarketingOptOut).where(
        MarketingOptOut.customer_id == customer.id)).scalars()
    return {"campaigns": {"received": [_row(r) for r in rows],
                          "opt_outs": [_row(o) for o in opt_outs]}}


def erase_for(customer: Customer) -> dict[str, Any]:
    """Drop what a send recorded about the address (a transport error may quote it); the
    opt-out stays, so that an erased customer is never marketed to again."""
    rows = db.session.execute(db.select(CampaignRecipient).where(
        CampaignRecipient.customer_id == customer.id)).scalars().all()
    for row in rows:
        row.error = row.message_id = None
        row.attributes = {}
    db.session.flush()
    return {"campaign_recipients_cleared": len(rows)} if rows else {}


def merge_into(survivor: Customer, merged_id: uuid.UUID) -> None:
    """Move list memberships, recipients and opt-outs to the survivor, keeping the survivor's
    own where both have one (the unique keys allow one per campaign or channel)."""
    for model, key in ((CampaignMember, CampaignMember.campaign_id),
                       (CampaignRecipient, CampaignRecipient.campaign_id),
                       (MarketingOptOut, MarketingOptOut.channel)):
        taken = db.select(key).where(model.customer_id == survivor.id).scalar_subquery()
        db.session.execute(sa.delete(model).where(model.customer_id == merged_id,
                                                  key.in_(taken))
                           .execution_options(synchronize_session="fetch"))
        db.session.execute(sa.update(model).where(model.customer_id == merged_id)
                           .values(customer_id=survivor.id)
                           .execution_options(synchronize_session="fetch"))


def register_jobs(register) -> None:
    register(send_campaign, name=SEND_JOB, retries=3, retry_delay=30)
    # hourly, not every minute: a periodic job runs in every active tenant, and each
    # scheduled campaign has its own job, due at its send_at, anyway
    register(send_due_campaigns, name=DUE_JOB, schedule={"minute": "7"})
