"""Consent and contact preferences: an append-only record per customer, channel and purpose.

The latest record of a (customer, channel, purpose) is the state; the earlier ones stay as
proof (GDPR art. 7(1)). ``contact_allowed`` answers the core's ``clientela_contact_allowed``
question from it. Unsubscribe links carry a signed, tenant-bound token that withdraws
marketing consent without a login.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

from clientela.core import access, customers, services
from clientela.core.access import Principal
from clientela.core.db import db, utcnow
from clientela.core.errors import ValidationError
from clientela.core.models import Customer
from clientela.plugins.collaborative.collab_models import CONSENT_PURPOSES, Consent

UNSUBSCRIBE_SALT = "clientela.collaborative.unsubscribe"
#: channels a consent may name when no plugin registered any (the built-in channels)
FALLBACK_CHANNELS = ("email", "phone", "sms", "letter", "fax", "portal", "chat", "in_person",
                     "web_form")


def known_channels() -> set[str]:
    from clientela.core import channels

    return set(channels.registry()) or set(FALLBACK_CHANNELS)


def check_choice(channel: str, purpose: str) -> None:
    errors = {}
    if channel not in known_channels():
        errors["channel"] = [f"unknown channel '{channel}'; use one of "
                             f"{', '.join(sorted(known_channels()))}"]
    if purpose not in CONSENT_PURPOSES:
        errors["purpose"] = [f"must be one of {', '.join(CONSENT_PURPOSES)}"]
    if errors:
        raise ValidationError(errors)


def record(customer_id: uuid.UUID, channel: str, purpose: str, granted: bool, source: str,
           note: str = "", recorded_at: dt.datetime | None = None) -> Consent:
    """Append one consent decision (no permission check: callers check). Flushes."""
    check_choice(channel, purpose)
    if not (source or "").strip():
        raise ValidationError({"source": ["say where the decision came from"]})
    if recorded_at is not None and recorded_at > utcnow() + dt.timedelta(minutes=5):
        raise ValidationError({"recorded_at": ["a decision cannot be recorded in the future"]})
    consent = Consent(customer_id=customer_id, channel=channel, purpose=purpose,
                      granted=bool(granted), source=source.strip()[:100], note=(note or "")[:500],
                      recorded_at=recorded_at or utcnow())
    db.session.add(consent)
    db.session.flush()
    return consent


def latest(customer_id: uuid.UUID, channel: str, purpose: str) -> Consent | None:
    return db.session.execute(
        db.select(Consent).where(Consent.customer_id == customer_id, Consent.channel == channel,
                                 Consent.purpose == purpose)
        .order_by(Consent.recorded_at.desc(), Consent.id.desc()).limit(1)
    ).scalar_one_or_none()


def contact_allowed(customer: Any, channel: str, purpose: str) -> bool | None:
    """The latest decision for this channel and purpose; ``None`` when there is none."""
    customer_id = getattr(customer, "id", customer)
    if customer_id is None:
        return None
    found = latest(customer_id, channel, purpose)
    return None if found is None else found.granted


def current(customer_id: uuid.UUID) -> list[Consent]:
    """The latest decision of each channel and purpose the customer has one for."""
    ranked = db.select(
        Consent.id,
        sa.func.row_number().over(
            partition_by=(Consent.channel, Consent.purpose),
            order_by=(Consent.recorded_at.desc(), Consent.id.desc())).label("rank"),
    ).where(Consent.customer_id == customer_id).subquery()
    return list(db.session.execute(
        db.select(Consent).join(ranked, ranked.c.id == Consent.id).where(ranked.c.rank == 1)
        .where(Consent.customer_id == customer_id).order_by(Consent.channel, Consent.purpose)
    ).scalars())


def history_query(customer_id: uuid.UUID | None = None, channel: str | None = None,
                  purpose: str | None = None, granted: bool | None = None):
    stmt = db.select(Consent)
    if customer_id:
        stmt = stmt.where(Consent.customer_id == customer_id)
    if channel:
        stmt = stmt.where(Consent.channel == channel)
    if purpose:
        stmt = stmt.where(Consent.purpose == purpose)
    if granted is not None:
        stmt = stmt.where(Consent.granted.is_(granted))
    return stmt.order_by(Consent.recorded_at.desc(), Consent.id.desc())


# --- staff --------------------------------------------------------------------------------------


def consents_query(principal: Principal, **filters):
    """Every consent record of the customers ``principal`` may read."""
    access.require(principal, "consents:read")
    visible = customers.customers_query(principal).with_only_columns(Customer.id)
    return history_query(**filters).where(Consent.customer_id.in_(visible))


def for_customer(customer_id: uuid.UUID, principal: Principal) -> dict[str, Any]:
    access.require(principal, "consents:read")
    customer = customers.get_customer(customer_id, principal)
    history = db.session.execute(history_query(customer.id)).scalars().all()
    return {"customer_id": customer.id, "current": current(customer.id), "history": history}


def record_for_customer(customer_id: uuid.UUID, data: dict[str, Any], principal: Principal
                        ) -> Consent:
    access.require(principal, "consents:write")
    customer = customers.get_customer(customer_id, principal)
    return record(customer.id, data["channel"], data["purpose"], data["granted"],
                  data.get("source") or f"staff:{principal.email}", note=data.get("note") or "",
                  recorded_at=data.get("recorded_at"))


# --- unsubscribe links --------------------------------------------------------------------------


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=UNSUBSCRIBE_SALT)


def unsubscribe_token(tenant_id: uuid.UUID, customer_id: uuid.UUID, channel: str = "email"
                      ) -> str:
    """A signed token naming the tenant, the customer and the channel; it does not expire
    (an unsubscribe link in a years-old e-mail must still work)."""
    return _serializer().dumps({"t": tenant_id.hex, "c": customer_id.hex, "ch": channel})


def read_unsubscribe_token(token: str) -> tuple[uuid.UUID, uuid.UUID, str] | None:
    try:
        data = _serializer().loads(token)
        return uuid.UUID(hex=data["t"]), uuid.UUID(hex=data["c"]), str(data["ch"])
    except (BadSignature, KeyError, TypeError, ValueError):
        return None


def unsubscribe_url(tenant_id: uuid.UUID, customer_id: uuid.UUID, channel: str = "email",
                    base_url: str | None = None) -> str:
    base = base_url or current_app.config.get("COLLABORATIVE_PUBLIC_BASE_URL") or ""
    return f"{base.rstrip('/')}/u/{unsubscribe_token(tenant_id, customer_id, channel)}"


def unsubscribe(customer_id: uuid.UUID, channel: str, note: str = "") -> Consent:
    """Withdraw marketing consent on ``channel`` (in the current tenant). Flushes."""
    services.get_customer(customer_id)
    return record(customer_id, channel, "marketing", False, "unsubscribe_link", note=note)


# --- customers: merge, export -------------------------------------------------------------------


def merge_into(survivor_id: uuid.UUID, merged_id: uuid.UUID) -> None:
    """Move the merged customer's records: the proof travels with the person."""
    db.session.execute(sa.update(Consent).where(Consent.customer_id == merged_id)
                       .values(customer_id=survivor_id)
                       .execution_options(synchronize_session="fetch"))


def export_for(customer_id: uuid.UUID) -> list[dict[str, Any]]:
    return [{"channel": c.channel, "purpose": c.purpose, "granted": c.granted,
             "source": c.source, "note": c.note, "recorded_at": c.recorded_at.isoformat()}
            for c in db.session.execute(history_query(customer_id)).scalars()]


def erase_for(customer_id: uuid.UUID) -> int:
    """Right to erasure: the decisions stay as proof (channel, purpose, granted, source, when),
    their free-text notes go, and so do the values in their audit events."""
    from clientela.plugins.collaborative.inbox import redact_audit

    ids = list(db.session.execute(db.select(Consent.id).where(
        Consent.customer_id == customer_id)).scalars())
    # a bulk update: the append-only veto guards the ORM path, erasure is the exception
    db.session.execute(sa.update(Consent).where(Consent.id.in_(ids)).values(note="")
                       .execution_options(synchronize_session="fetch"))
    redact_audit(ids)
    return len(ids)


__all__ = ["contact_allowed", "current", "for_customer", "latest", "record",
           "record_for_customer", "unsubscribe", "unsubscribe_token", "unsubscribe_url"]
