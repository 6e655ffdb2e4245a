"""Webhooks: subscriptions to entity events, signed deliveries as background jobs, the log.

After an entity change commits, every active webhook of the tenant whose patterns match
the event (``customers.insert``, ``deals.*``, ``custom:vehicle.update`` for the records of
a custom object, ``custom:*.*``, ``*.delete``, ``*``) gets a delivery row and
a job (``tailormade.deliver_webhook``). The job POSTs the JSON payload, signed with
HMAC-SHA256 over ``"<timestamp>." + body`` with the webhook's secret; a non-2xx answer or
a network error raises, so the job runner retries with exponential backoff. Every attempt
is written to the delivery row (``/webhooks/{id}/deliveries``).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import socket
import time
import urllib.error
import urllib.request
import uuid
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session

from clientela.core import __version__, access, encryption, jobs, tenancy
from clientela.core.access import Principal
from clientela.core.db import db, new_id, utcnow
from clientela.core.errors import NotFound, ValidationError
from clientela.core.events import json_safe
from clientela.plugins.tailormade.custom_fields import (
    CUSTOM_PREFIX,
    CUSTOM_RECORDS,
    custom_object_id,
    entity_types,
    event_type,
)
from clientela.plugins.tailormade.models import Webhook, WebhookDelivery

DELIVER_JOB = "tailormade.deliver_webhook"
#: retried 6 times: 30 s, 1, 2, 4, 8 and 16 minutes after the failures (about 31 minutes)
RETRIES, RETRY_DELAY, BACKOFF = 6, 30, 2
OPERATIONS = ("insert", "update", "delete")
EVENT = re.compile(
    r"^(\*|[a-z][a-z0-9_]{0,62}|custom:(?:\*|[a-z][a-z0-9_]{0,39}))\.(\*|insert|update|delete)$")
SIGNATURE_HEADER = "X-Clientela-Signature"
TIMESTAMP_HEADER = "X-Clientela-Timestamp"
KEPT_BODY = 2000


class DeliveryFailed(Exception):
    """The receiver did not answer 2xx (or could not be reached): the job retries."""


# --- subscriptions --------------------------------------------------------------------


def check_url(url: str) -> str:
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError({"url": ["must be an http:// or https:// URL with a host"]})
    if parts.username or parts.password:
        raise ValidationError({"url": ["must not hold credentials; use the signature"]})
    return url


def check_events(events: list[str]) -> list[str]:
    known = entity_types()
    problems = []
    for pattern in events:
        if pattern == "*":
            continue
        match = EVENT.match(pattern)
        if not match:
            problems.append(f"'{pattern}': use <entity type>.<insert|update|delete|*>, or *")
        elif match.group(1).startswith(CUSTOM_PREFIX):
            key = match.group(1)[len(CUSTOM_PREFIX):]
            if key != "*" and custom_object_id(key) is None:
                problems.append(f"'{pattern}': unknown custom object '{key}'")
        elif match.group(1) != "*" and match.group(1) not in known:
            problems.append(f"'{pattern}': unknown entity type '{match.group(1)}'")
    if not events:
        problems.append("subscribe to at least one event")
    if problems:
        raise ValidationError({"events": problems})
    return list(dict.fromkeys(events))


def matches(patterns: list[str], event: str) -> bool:
    entity_type, _, operation = event.partition(".")
    for pattern in patterns:
        if pattern == "*":
            return True
        kind, _, op = pattern.partition(".")
        if op not in ("*", operation):
            continue
        if kind in ("*", entity_type) or (
                kind == f"{CUSTOM_PREFIX}*" and entity_type.startswith(CUSTOM_PREFIX)):
            return True
    return False


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def list_webhooks(principal: Principal) -> list[Webhook]:
    access.require(principal, "webhooks:read")
    return list(db.session.execute(
        sa.select(Webhook).order_by(Webhook.created_at, Webhook.id)).scalars())


def get_webhook(principal: Principal, webhook_id: uuid.UUID) -> Webhook:
    access.require(principal, "webhooks:read")
    webhook = db.session.execute(
        sa.select(Webhook).where(Webhook.id == webhook_id)).scalar_one_or_none()
    if webhook is None:
        raise NotFound("webhook not found")
    return webhook


def create_webhook(principal: Principal, data: dict[str, Any]) -> Webhook:
    access.require(principal, "webhooks:write")
    webhook = Webhook(url=check_url(data["url"]), events=check_events(data["events"]),
                      secret=data.get("secret") or new_secret(),
                      description=data.get("description", ""),
                      active=data.get("active", True))
    db.session.add(webhook)
    db.session.flush()
    return webhook


def update_webhook(principal: Principal, webhook_id: uuid.UUID, data: dict[str, Any]) -> Webhook:
    webhook = get_webhook(principal, webhook_id)
    access.require(principal, "webhooks:write")
    if "url" in data:
        webhook.url = check_url(data["url"])
    if "events" in data:
        webhook.events = check_events(data["events"])
    for name in ("description", "active", "secret"):
        if name in data:
            setattr(webhook, name, data[name])
    if data.get("active"):
        webhook.consecutive_failures, webhook.disabled_reason = 0, None
    db.session.flush()
    return webhook


def delete_webhook(principal: Principal, webhook_id: uuid.UUID) -> None:
    webhook = get_webhook(principal, webhook_id)
    access.require(principal, "webhooks:write")
    db.session.execute(sa.delete(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id)
                       .execution_options(synchronize_session=False))
    db.session.delete(webhook)
    db.session.flush()


def deliveries_query(principal: Principal, webhook_id: uuid.UUID, status: str | None = None):
    get_webhook(principal, webhook_id)
    stmt = sa.select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    if status:
        stmt = stmt.where(WebhookDelivery.status == status)
    return stmt.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())


# --- events to deliveries ----------------------------------------------------------------


def _customer_of(change) -> uuid.UUID | None:
    if change.entity_type == "customers":
        return change.entity_id
    value = (change.values or {}).get("customer_id")
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


_SUBSCRIPTIONS = "tailormade.subscriptions"  # session.info: (transaction, tenant, webhooks)


def _active_webhooks(session: Session) -> list[tuple[uuid.UUID, list[str]]]:
    rows = session.execute(
        sa.select(Webhook.id, Webhook.events).where(Webhook.active.is_(True))).all()
    return [(row.id, list(row.events or [])) for row in rows]


def remember_subscriptions(change) -> None:
    """``clientela_entity_changed_precommit``: read the tenant's active webhooks, once per
    transaction, on the transaction's own connection, for the postcommit half.

    Without this the postcommit half would take a second connection for every change
    just to learn that the tenant has no webhooks.
    """
    if change.entity_type not in entity_types() and change.entity_type != CUSTOM_RECORDS:
        return
    session = db.session()
    transaction, tenant_id = session.get_transaction(), tenancy.get_tenant_id()
    known = session.info.get(_SUBSCRIPTIONS)
    if known is not None and known[0] is transaction and known[1] == tenant_id:
        return
    session.info[_SUBSCRIPTIONS] = (transaction, tenant_id, _active_webhooks(session))


def _remembered_subscriptions() -> list[tuple[uuid.UUID, list[str]]] | None:
    """The webhooks read by the precommit half of the transaction that just committed."""
    session = db.session()
    known = session.info.get(_SUBSCRIPTIONS)
    # during after_commit the session still names the transaction that committed
    if known is not None and known[0] is session.get_transaction() \
            and known[1] == tenancy.get_tenant_id():
        return known[2]
    return None


def on_entity_changed(change) -> None:
    """``clientela_entity_changed_postcommit``: a delivery and a job per matching webhook.

    The request's session can no longer write here, so the delivery rows are written in a
    transaction of their own, and each job is sent at once (``jobs.enqueue`` from a
    postcommit hook). A crash between the two leaves a ``pending`` delivery without a job
    (``housekeeping`` sends it later).
    """
    tenant_id = tenancy.get_tenant_id()
    if tenant_id is None or (change.entity_type not in entity_types()
                             and change.entity_type != CUSTOM_RECORDS):
        return
    hooks = _remembered_subscriptions()
    if hooks is not None and not hooks:
        return  # the usual case, decided without a connection
    entity_type = event_type(change)  # custom:<key> for a custom object's record
    event = f"{entity_type}.{change.operation}"
    now = utcnow()
    rows = []
    if hooks is not None and not any(matches(events, event) for _, events in hooks):
        return
    with Session(db.engine) as session:
        if hooks is None:  # a change no precommit saw (made while committing)
            hooks = _active_webhooks(session)
        targets = [webhook_id for webhook_id, events in hooks if matches(events, event)]
        if not targets:
            return
        data = {k: v for k, v in (change.values or {}).items() if k != "tenant_id"}
        for webhook_id in targets:
            delivery_id = new_id()
            payload = {"id": str(delivery_id), "event": event, "occurred_at": now.isoformat(),
                       "tenant_id": str(tenant_id), "entity_type": entity_type,
                       "entity_id": str(change.entity_id), "operation": change.operation,
                       "data": json_safe(data), "changes": json_safe(change.changes)}
            rows.append({"id": delivery_id, "tenant_id": tenant_id, "webhook_id": webhook_id,
                         "event": event, "entity_type": entity_type[:63],
                         "entity_id": change.entity_id, "customer_id": _customer_of(change),
                         "payload": payload, "status": "pending", "attempts": 0,
                         "created_at": now, "updated_at": now,
                         "created_by": tenancy.current_actor_id(), "attributes": {}})
        session.execute(sa.insert(WebhookDelivery), rows)
        session.commit()
    for row in rows:
        jobs.enqueue(DELIVER_JOB, row["id"], idempotency_key=f"webhook-delivery:{row['id']}")


# --- delivering ----------------------------------------------------------------------------


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC of ``"<timestamp>." + body``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def _private_allowed() -> bool:
    configured = current_app.config.get("TAILORMADE_WEBHOOK_ALLOW_PRIVATE")
    if configured is None:
        return current_app.config.get("PROFILE") != "hosted"
    return bool(configured)


def check_destination(url: str) -> None:
    """Refuse addresses inside the operator's network unless allowed (hosted: not allowed)."""
    if _private_allowed():
        return
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    for info in socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP):
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise DeliveryFailed(f"refused: {parts.hostname} resolves to the non-public "
                                 f"address {address}")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a redirect is an answer, not followed
        return None


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, str]:
    opener = urllib.request.build_opener(_NoRedirects)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.read(KEPT_BODY).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        text = exc.read(KEPT_BODY).decode("utf-8", "replace") if exc.fp else ""
        return exc.code, text


def deliver(delivery_id: uuid.UUID) -> None:
    """The job: POST one delivery; raise (so the job retries) unless the answer is 2xx."""
    delivery = db.session.execute(
        sa.select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)).scalar_one_or_none()
    if delivery is None or delivery.status == "succeeded":
        return  # the webhook was deleted, or a duplicate run
    webhook = db.session.execute(
        sa.select(Webhook).where(Webhook.id == delivery.webhook_id)).scalar_one()
    job = jobs.current_job()
    now = utcnow()
    values: dict[str, Any] = {"attempts": WebhookDelivery.attempts + 1, "last_attempt_at": now,
                              "updated_at": now, "job_id": job.id if job else None}
    if not webhook.active:
        values.update(status="failed", error="the webhook is disabled")
        _record(delivery_id, values, own_transaction=False)
        return
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = str(int(time.time()))
    try:
        signature = sign(webhook.secret, timestamp, body)
    except encryption.CannotDecrypt:  # retrying would not help: fail it now, and say why
        values.update(status="failed", error="the webhook's secret cannot be decrypted "
                      "(was SECRET_KEY changed?): give it a new secret")
        _record(delivery_id, values, own_transaction=False)
        return
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"Clientela-Webhooks/{__version__}",
        "X-Clientela-Event": delivery.event,
        "X-Clientela-Delivery": str(delivery.id),
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature,
    }
    timeout = float(current_app.config.get("TAILORMADE_WEBHOOK_TIMEOUT", 10))
    started = time.monotonic()
    status, text, error = None, None, None
    try:
        check_destination(webhook.url)
        status, text = _post(webhook.url, body, headers, timeout)
        if not 200 <= status < 300:
            error = f"the receiver answered HTTP {status}"
    except DeliveryFailed as exc:
        error = str(exc)
    except (OSError, ValueError, urllib.error.URLError) as exc:
        error = f"{type(exc).__name__}: {getattr(exc, 'reason', None) or exc}"
    values.update(response_status=status, response_body=text, error=error,
                  duration_ms=int((time.monotonic() - started) * 1000))
    if error is None:
        values.update(status="succeeded", delivered_at=utcnow())
        # both commit with the job's success
        _record(delivery_id, values, own_transaction=False)
        if webhook.consecutive_failures:
            db.session.execute(_webhook_update(webhook.id).values(consecutive_failures=0))
        return
    final = job is None or job.attempt >= job.max_attempts
    values["status"] = "failed" if final else "retrying"
    # the job's transaction is rolled back when it raises: keep the attempt in the log
    _record(delivery_id, values, own_transaction=True, count_failure=final and webhook.id)
    raise DeliveryFailed(f"delivery {delivery_id} to {webhook.url}: {error}")


def _webhook_update(webhook_id: uuid.UUID):
    return (sa.update(Webhook).where(Webhook.id == webhook_id)
            .execution_options(synchronize_session=False))


def _record(delivery_id: uuid.UUID, values: dict[str, Any], own_transaction: bool,
            count_failure: uuid.UUID | None = None) -> None:
    """Write an attempt to the log; with ``count_failure``, also count a delivery that
    failed for good against its webhook, and switch the webhook off after too many."""
    stmt = (sa.update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(**values)
            .execution_options(synchronize_session=False))
    if not own_transaction:
        db.session.execute(stmt)
        return
    with Session(db.engine) as session:
        session.execute(stmt)
        if count_failure:
            limit = int(current_app.config.get("TAILORMADE_WEBHOOK_DISABLE_AFTER", 5))
            session.execute(_webhook_update(count_failure).values(
                consecutive_failures=Webhook.consecutive_failures + 1, updated_at=utcnow()))
            session.execute(_webhook_update(count_failure).where(
                Webhook.active.is_(True), Webhook.consecutive_failures >= limit).values(
                active=False, disabled_reason=f"switched off after {limit} deliveries in a "
                                              "row failed", updated_at=utcnow()))
        session.commit()


def redeliver(principal: Principal, webhook_id: uuid.UUID,
              delivery_id: uuid.UUID) -> WebhookDelivery:
    """Send a delivery's payload again, as a new delivery (sent when the caller commits)."""
    webhook = get_webhook(principal, webhook_id)
    access.require(principal, "webhooks:write")
    original = db.session.execute(sa.select(WebhookDelivery).where(
        WebhookDelivery.id == delivery_id, WebhookDelivery.webhook_id == webhook.id)
    ).scalar_one_or_none()
    if original is None:
        raise NotFound("delivery not found")
    now = utcnow()
    new = new_id()
    payload = {**original.payload, "id": str(new), "redelivery_of": str(original.id)}
    db.session.execute(sa.insert(WebhookDelivery), [{
        "id": new, "webhook_id": webhook.id, "event": original.event,
        "entity_type": original.entity_type, "entity_id": original.entity_id,
        "customer_id": original.customer_id, "payload": payload, "status": "pending",
        "attempts": 0, "created_at": now, "updated_at": now,
        "created_by": principal.user_id, "attributes": {}}])
    jobs.enqueue(DELIVER_JOB, new, idempotency_key=f"webhook-delivery:{new}")
    return db.session.execute(
        sa.select(WebhookDelivery).where(WebhookDelivery.id == new)).scalar_one()


def housekeeping() -> dict[str, int]:
    """Hourly: send the deliveries a crash left without a job; delete the log's old rows.

    A ``pending`` delivery is enqueued again with its idempotency key, so one that has its
    job already gets no second one. Deliveries older than ``TAILORMADE_WEBHOOK_KEEP_DAYS``
    are deleted.
    """
    import datetime as dt

    now = utcnow()
    days = float(current_app.config.get("TAILORMADE_WEBHOOK_KEEP_DAYS", 30))
    purged = db.session.execute(
        sa.delete(WebhookDelivery)
        .where(WebhookDelivery.created_at < now - dt.timedelta(days=days))
        .execution_options(synchronize_session=False)).rowcount
    stranded = db.session.execute(sa.select(WebhookDelivery.id).where(
        WebhookDelivery.status == "pending", WebhookDelivery.attempts == 0,
        WebhookDelivery.created_at < now - dt.timedelta(minutes=10))).scalars().all()
    for delivery_id in stranded:
        jobs.enqueue(DELIVER_JOB, delivery_id, idempotency_key=f"webhook-delivery:{delivery_id}")
    return {"checked": len(stranded), "purged": purged}


# --- data-subject rights ---------------------------------------------------------------------


def export_for(customer) -> dict[str, Any] | None:
    rows = db.session.execute(
        sa.select(WebhookDelivery).where(WebhookDelivery.customer_id == customer.id)
        .order_by(WebhookDelivery.created_at)).scalars().all()
    if not rows:
        return None
    return {"webhook_deliveries": [
        {"id": str(r.id), "webhook_id": str(r.webhook_id), "event": r.event,
         "status": r.status, "created_at": r.created_at.isoformat(), "payload": r.payload}
        for r in rows]}


def erase_for(customer) -> dict[str, Any]:
    """Redact the payloads (and answers) of deliveries about the customer."""
    result = db.session.execute(
        sa.update(WebhookDelivery).where(WebhookDelivery.customer_id == customer.id)
        .values(payload={"redacted": "erased"}, response_body=None, updated_at=utcnow())
        .execution_options(synchronize_session=False))
    return {"webhook_deliveries_redacted": result.rowcount}
