"""The customer self-service portal: accounts, invitations, logins, and what a customer may do.

A ``PortalAccount`` links one customer contact (a core ``Customer``) to credentials. Staff
invite a contact by e-mail (through ``clientela.core.channels.send_message``, purpose
``service``) with a one-time link; the contact sets a password (argon2id, the core's hasher)
and logs in with it or with a one-time link sent by e-mail. Every portal token (invitation,
link, session) is random, stored as its SHA-256 only, expires, and starts with the tenant's
id: the portal's tenant comes from the token and from nothing the caller sends.

Every function that serves a portal customer takes the ``PortalAccount`` and reaches only
that account's customer (and, for an organisation's portal admin, the organisation's
people); anything else is ``NotFound``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import uuid
from typing import Any

import sqlalchemy as sa
from flask import current_app

from clientela.core import access, channels, customers, security, services, tenancy
from clientela.core.access import Principal
from clientela.core.db import db, utcnow
from clientela.core.errors import Conflict, NotFound, Unauthorized, ValidationError
from clientela.core.models import AuditEvent, Customer, Interaction, Tenant
from clientela.plugins.collaborative import consent
from clientela.plugins.collaborative.collab_models import (
    CONSENT_PURPOSES,
    PortalAccount,
    PortalToken,
)

PREFIXES = {"invite": "clpi", "link": "clpl", "session": "clps"}
#: what a portal customer may correct in their own master data
EDITABLE_FIELDS = ("first_name", "last_name", "phone", "addresses")
#: what a portal customer sees of a customer record
VISIBLE_FIELDS = ("id", "kind", "display_name", "first_name", "last_name", "organisation_name",
                  "email", "phone", "addresses", "organisation_id")
PORTAL_CHANNEL = "portal"
MAX_ADDRESSES = 10
#: used and expired tokens are kept this long (for the audit of a login), then purged
TOKEN_RETENTION = dt.timedelta(days=30)


# --- tokens -------------------------------------------------------------------------------------


def new_token(account: PortalAccount, kind: str, lifetime: dt.timedelta) -> str:
    """Issue a token of ``kind`` for ``account``; returns it (shown once). Flushes."""
    raw = f"{PREFIXES[kind]}_{account.tenant_id.hex}_{secrets.token_urlsafe(32)}"
    db.session.add(PortalToken(account_id=account.id, kind=kind,
                               token_hash=security.hash_token(raw),
                               expires_at=utcnow() + lifetime))
    db.session.flush()
    return raw


def tenant_of_token(raw: str | None, kind: str) -> uuid.UUID | None:
    """The tenant a token names (not yet checked): ``<prefix>_<tenant hex>_<random>``."""
    prefix, _, rest = (raw or "").partition("_")
    tenant_hex, _, secret = rest.partition("_")
    if prefix != PREFIXES[kind] or len(tenant_hex) != 32 or len(secret) < 20:
        return None
    try:
        return uuid.UUID(hex=tenant_hex)
    except ValueError:
        return None


def active_tenant(tenant_id: uuid.UUID | None) -> Tenant | None:
    """The tenant, when it is active and has the collaborative plugin enabled."""
    if tenant_id is None:
        return None
    tenant = db.session.get(Tenant, tenant_id)
    if tenant is None or tenant.status != "active":
        return None
    profile = current_app.extensions["clientela"].profile
    with tenancy.tenant_context(tenant_id):
        if "collaborative" not in profile.enabled_plugins(tenant):
            return None
    return tenant


def find_token(raw: str, kind: str) -> tuple[PortalToken, PortalAccount] | None:
    """The unexpired, unused token of ``kind`` and its account, in the current tenant."""
    row = db.session.execute(
        db.select(PortalToken, PortalAccount)
        .join(PortalAccount, PortalAccount.id == PortalToken.account_id)
        .where(PortalToken.token_hash == security.hash_token(raw), PortalToken.kind == kind)
    ).first()
    if row is None:
        return None
    token, account = row
    if token.used_at is not None or security.is_expired(token.expires_at, utcnow()):
        return None
    if account.status == "disabled":
        return None
    return token, account


def _hours(key: str) -> dt.timedelta:
    return dt.timedelta(hours=float(current_app.config[key]))


def open_session(account: PortalAccount, how: str) -> dict[str, Any]:
    account.last_login_at = utcnow()
    lifetime = _hours("COLLABORATIVE_PORTAL_SESSION_HOURS")
    raw = new_token(account, "session", lifetime)
    db.session.add(AuditEvent(action="portal_login", entity_type=PortalAccount.__tablename__,
                              entity_id=account.id, changes={"via": [None, how]},
                              origin="portal"))
    db.session.flush()
    return {"token": raw, "expires_at": utcnow() + lifetime, "customer_id": account.customer_id}


# --- staff: accounts and invitations --------------------------------------------------------------


def accounts_query(principal: Principal, customer_id: uuid.UUID | None = None):
    access.require(principal, "portal:manage")
    visible = customers.customers_query(principal).with_only_columns(Customer.id)
    stmt = db.select(PortalAccount).where(PortalAccount.customer_id.in_(visible))
    if customer_id:
        stmt = stmt.where(PortalAccount.customer_id == customer_id)
    return stmt.order_by(PortalAccount.created_at, PortalAccount.id)


def get_account(account_id: uuid.UUID, principal: Principal) -> PortalAccount:
    account = db.session.execute(
        accounts_query(principal).where(PortalAccount.id == account_id)).scalar_one_or_none()
    if account is None:
        raise NotFound("portal account not found")
    return account


def portal_url(path: str) -> str:
    from flask import has_request_context, request

    base = (current_app.config.get("COLLABORATIVE_PORTAL_URL")
            or current_app.config.get("COLLABORATIVE_PUBLIC_BASE_URL")
            or (request.host_url if has_request_context() else ""))
    return f"{base.rstrip('/')}{path}"


def create_account(data: dict[str, Any], principal: Principal) -> tuple[PortalAccount, dict]:
    """Open a portal account for a customer contact and send the invitation."""
    access.require(principal, "portal:manage")
    customer = customers.get_customer(data["customer_id"], principal, "customers:write")
    if customer.kind != "person":
        raise ValidationError({"customer_id": ["portal accounts are for people; invite a "
                                               "contact of the organisation"]})
    email = services.normalise_email(data.get("email") or customer.email)
    if email is None:
        raise ValidationError({"email": ["the customer has no e-mail address; give one"]})
    if db.session.execute(db.select(PortalAccount.id).where(
            PortalAccount.customer_id == customer.id)).first():
        raise Conflict("this customer already has a portal account")
    if db.session.execute(db.select(PortalAccount.id).where(
            PortalAccount.email == email)).first():
        raise Conflict(f"a portal account with e-mail {email} already exists")
    account = PortalAccount(customer_id=customer.id, email=email, status="invited",
                            is_admin=bool(data.get("is_admin")))
    db.session.add(account)
    db.session.flush()
    return account, send_invitation(account, customer)


def send_invitation(account: PortalAccount, customer: Customer | None = None) -> dict:
    """E-mail a one-time invitation link; earlier unused invitations stop working."""
    customer = customer or services.get_customer(account.customer_id)
    _spend(account, "invite")
    raw = new_token(account, "invite", _hours("COLLABORATIVE_PORTAL_INVITE_HOURS"))
    link = portal_url(f"/portal/invitation#token={raw}")
    body = (f"Hello {customer.display_name},\n\nyou are invited to our customer portal. "
            f"Open this link to choose your password (it works once and expires in "
            f"{current_app.config['COLLABORATIVE_PORTAL_INVITE_HOURS']} hours):\n\n{link}\n")
    return _send_link(customer, account, "Your invitation to the customer portal", body, raw,
                      "portal_invitation")


def _send_link(customer: Customer, account: PortalAccount, subject: str, body: str, raw: str,
               source: str) -> dict:
    """Send a message carrying a one-time token, then take the token out of the copy kept on
    the customer's timeline: staff must not be able to log in as the customer."""
    result = channels.send_message({"channel": "email", "to": account.email,
                                    "purpose": "service", "subject": subject, "body": body,
                                    "source": source}, customer)
    interaction_id = result.get("interaction_id")
    if interaction_id is not None:
        sent = db.session.get(Interaction, (account.tenant_id, interaction_id))
        if sent is not None and raw in (sent.body or ""):
            sent.body = sent.body.replace(raw, "[one-time token removed]")
            db.session.flush()
    return result


def _spend(account: PortalAccount, kind: str) -> None:
    db.session.execute(sa.update(PortalToken).where(
        PortalToken.account_id == account.id, PortalToken.kind == kind,
        PortalToken.used_at.is_(None)).values(used_at=utcnow())
        .execution_options(synchronize_session=False))


def resend_invitation(account_id: uuid.UUID, principal: Principal) -> dict:
    account = get_account(account_id, principal)
    if account.status == "disabled":
        raise Conflict("the account is disabled; enable it first")
    return send_invitation(account)


def update_account(account_id: uuid.UUID, data: dict[str, Any], principal: Principal
                   ) -> PortalAccount:
    account = get_account(account_id, principal)
    if "is_admin" in data:
        account.is_admin = bool(data["is_admin"])
    if "status" in data:
        if data["status"] == "disabled":
            account.status = "disabled"
            revoke_sessions(account)
        elif data["status"] == "active":
            account.status = "active" if account.password_hash else "invited"
        else:
            raise ValidationError({"status": ["use 'active' or 'disabled'"]})
    db.session.flush()
    return account


def revoke_sessions(account: PortalAccount) -> None:
    db.session.execute(sa.delete(PortalToken).where(PortalToken.account_id == account.id)
                       .execution_options(synchronize_session=False))


def delete_account(account_id: uuid.UUID, principal: Principal) -> None:
    account = get_account(account_id, principal)
    revoke_sessions(account)
    db.session.delete(account)
    db.session.flush()


# --- the portal's own authentication --------------------------------------------------------------


def check_password(password: str | None) -> str:
    if not isinstance(password, str) or len(password) < security.MIN_PASSWORD_LENGTH:
        raise ValidationError({"password": [f"use at least {security.MIN_PASSWORD_LENGTH} "
                                            "characters"]})
    return password


def accept_invitation(raw: str, password: str) -> dict[str, Any]:
    """Set the password from an invitation (once) and open a session. In the token's tenant."""
    found = find_token(raw, "invite")
    if found is None:
        raise Unauthorized("this invitation link is invalid, used or expired")
    token, account = found
    account.password_hash = security.hash_password(check_password(password))
    account.status = "active"
    token.used_at = utcnow()
    return open_session(account, "invitation")


def login_with_link(raw: str) -> dict[str, Any]:
    found = find_token(raw, "link")
    if found is None:
        raise Unauthorized("this login link is invalid, used or expired")
    token, account = found
    token.used_at = utcnow()
    if account.status == "invited":
        account.status = "active"  # the link proves the address, as an invitation does
    return open_session(account, "link")


def login_with_password(email: str, password: str) -> dict[str, Any]:
    account = db.session.execute(db.select(PortalAccount).where(
        PortalAccount.email == (email or "").strip().lower())).scalar_one_or_none()
    if account is None or account.status != "active" or not security.verify_password(
            account.password_hash, password or ""):
        db.session.add(AuditEvent(action="portal_login_failed",
                                  entity_type=PortalAccount.__tablename__,
                                  entity_id=account.id if account else None, origin="portal",
                                  changes={"email": [None, (email or "")[:320]]}))
        db.session.commit()
        raise Unauthorized("invalid e-mail or password")
    return open_session(account, "password")


def send_login_link(email: str) -> None:
    """E-mail a one-time login link when an active account has this address; silent otherwise
    (the answer must not tell who has an account)."""
    account = db.session.execute(db.select(PortalAccount).where(
        PortalAccount.email == (email or "").strip().lower())).scalar_one_or_none()
    if account is None or account.status == "disabled":
        return
    customer = services.get_customer(account.customer_id)
    _spend(account, "link")
    raw = new_token(account, "link", dt.timedelta(
        minutes=float(current_app.config["COLLABORATIVE_PORTAL_LINK_MINUTES"])))
    link = portal_url(f"/portal/login#token={raw}")
    _send_link(customer, account, "Your login link for the customer portal",
               f"Open this link to log in (it works once):\n\n{link}\n", raw, "portal_login_link")


def purge_tokens() -> int:
    """Delete the tokens expired for longer than ``TOKEN_RETENTION`` (a daily job)."""
    result = db.session.execute(sa.delete(PortalToken).where(
        PortalToken.expires_at < utcnow() - TOKEN_RETENTION)
        .execution_options(synchronize_session=False))
    return result.rowcount


def session_account(raw: str) -> PortalAccount | None:
    """The account of a valid session token, in the current (the token's) tenant."""
    found = find_token(raw, "session")
    if found is None or found[1].status != "active":
        return None
    return found[1]


def logout(raw: str) -> None:
    db.session.execute(sa.delete(PortalToken).where(
        PortalToken.token_hash == security.hash_token(raw), PortalToken.kind == "session")
        .execution_options(synchronize_session=False))


def change_password(account: PortalAccount, current: str, new: str) -> None:
    if not security.verify_password(account.password_hash, current or ""):
        raise ValidationError({"current_password": ["this is not your current password"]})
    account.password_hash = security.hash_password(check_password(new))
    db.session.flush()


# --- what a portal customer may do ----------------------------------------------------------------


def own_customer(account: PortalAccount) -> Customer:
    customer = db.session.execute(db.select(Customer).where(
        Customer.id == account.customer_id)).scalar_one_or_none()
    if customer is None:
        raise NotFound("not found")
    return customer


def customer_view(customer: Customer) -> dict[str, Any]:
    return {field: getattr(customer, field) for field in VISIBLE_FIELDS}


def me(account: PortalAccount) -> dict[str, Any]:
    customer = own_customer(account)
    organisation = None
    if customer.organisation_id:
        org = db.session.execute(db.select(Customer).where(
            Customer.id == customer.organisation_id)).scalar_one_or_none()
        organisation = {"id": org.id, "display_name": org.display_name} if org else None
    return {"account": {"id": account.id, "email": account.email, "is_admin": account.is_admin,
                        "last_login_at": account.last_login_at},
            "customer": customer_view(customer), "organisation": organisation,
            "editable_fields": list(EDITABLE_FIELDS)}


def correct_master_data(account: PortalAccount, data: dict[str, Any]) -> dict[str, Any]:
    """Change the few fields a customer may correct themselves (recorded as an update
    made through the portal in the audit trail)."""
    unknown = sorted(set(data) - set(EDITABLE_FIELDS))
    if unknown:
        raise ValidationError({k: [f"not editable in the portal; you may change "
                                   f"{', '.join(EDITABLE_FIELDS)}"] for k in unknown})
    customer = own_customer(account)
    errors: dict[str, list[str]] = {}
    for field, value in data.items():
        if field == "phone":
            try:
                value = services.normalise_phone(value, current_app.config.get(
                    "PHONE_DEFAULT_REGION"))
            except ValidationError as exc:
                errors.update(exc.errors)
                continue
        elif field == "addresses":
            if not isinstance(value, list) or len(value) > MAX_ADDRESSES or not all(
                    isinstance(a, dict) and all(isinstance(k, str) and len(k) <= 50 and (
                        v is None or isinstance(v, str) and len(v) <= 200)
                        for k, v in a.items()) for a in value):
                errors[field] = [f"at most {MAX_ADDRESSES} addresses, each an object of "
                                 "texts (at most 200 characters)"]
                continue
        elif value is not None and (not isinstance(value, str) or len(value) > 100):
            errors[field] = ["text of at most 100 characters"]
            continue
        setattr(customer, field, value)
    if errors:
        db.session.rollback()
        raise ValidationError(errors)
    if {"first_name", "last_name"} & set(data):
        customer.display_name = services._display_name(customer.kind, {
            "first_name": customer.first_name, "last_name": customer.last_name,
            "email": customer.email}) or customer.display_name
    db.session.flush()
    return customer_view(customer)


def interactions_query(account: PortalAccount):
    """The customer's own interactions (internal notes are not theirs to see)."""
    return (db.select(Interaction)
            .where(Interaction.customer_id == account.customer_id,
                   Interaction.direction != "internal")
            .order_by(Interaction.occurred_at.desc(), Interaction.id.desc()))


def interaction_view(interaction: Interaction) -> dict[str, Any]:
    return {"id": interaction.id, "channel": interaction.channel,
            "direction": interaction.direction, "occurred_at": interaction.occurred_at,
            "subject": interaction.subject, "body": interaction.body}


def get_interaction(account: PortalAccount, interaction_id: uuid.UUID) -> Interaction:
    found = db.session.execute(interactions_query(account).where(
        Interaction.id == interaction_id)).scalar_one_or_none()
    if found is None:
        raise NotFound("not found")
    return found


def write_message(account: PortalAccount, subject: str, body: str) -> Interaction:
    """A message from the customer: an inbound interaction on the ``portal`` channel (which
    lands in the communication centre like any other inbound message)."""
    errors = {}
    if not (subject or "").strip():
        errors["subject"] = ["give a subject"]
    if not (body or "").strip():
        errors["body"] = ["write a message"]
    if errors:
        raise ValidationError(errors)
    interaction = services.record_interaction(
        account.customer_id, PORTAL_CHANNEL, direction="inbound", subject=subject.strip()[:500],
        body=body, attributes={"portal_account_id": str(account.id)})
    # like any inbound message, it is offered to plugins (the operational plugin opens a
    # service case for it)
    from clientela.core.events import plugin_hooks
    from clientela.plugins.collaborative.services import offer_inbound

    hook = plugin_hooks()
    if hook is not None:
        linked = offer_inbound(hook, interaction, [])
        if linked:
            interaction.attributes = {**interaction.attributes, "linked": linked}
            db.session.flush()
    return interaction


def records(account: PortalAccount) -> dict[str, list]:
    """Every plugin's records about the customer, as the customer may see them, by kind."""
    from clientela.core.events import plugin_hooks

    merged: dict[str, list] = {}
    hook = plugin_hooks()
    if hook is not None:
        for answer in hook.clientela_portal_records(customer_id=account.customer_id):
            for kind, rows in (answer or {}).items():
                merged.setdefault(kind, []).extend(rows)
    return merged


def consents(account: PortalAccount) -> dict[str, Any]:
    return {"current": consent.current(account.customer_id),
            "history": db.session.execute(
                consent.history_query(account.customer_id)).scalars().all()}


def set_consent(account: PortalAccount, data: dict[str, Any]):
    return consent.record(account.customer_id, data["channel"], data["purpose"],
                          data["granted"], "portal", note=f"portal account {account.id}")


def organisation_id_of(account: PortalAccount) -> uuid.UUID | None:
    """The organisation whose people an admin account may see (``None``: not an admin)."""
    if not account.is_admin:
        return None
    customer = own_customer(account)
    return customer.id if customer.kind == "organisation" else customer.organisation_id


def people_query(account: PortalAccount):
    """The people of the admin's organisation; nobody for other accounts."""
    org_id = organisation_id_of(account)
    if org_id is None:
        raise NotFound("not found")
    return (db.select(Customer).where(Customer.organisation_id == org_id)
            .order_by(Customer.display_name, Customer.id))


def get_person(account: PortalAccount, customer_id: uuid.UUID) -> Customer:
    found = db.session.execute(people_query(account).where(
        Customer.id == customer_id)).scalar_one_or_none()
    if found is None:
        raise NotFound("not found")
    return found


# --- the portal channel: replies from the communication centre ------------------------------------


def send_on_portal(message: dict[str, Any]) -> dict[str, Any]:
    """A message to the customer on the portal: an outbound interaction they see there."""
    attributes = dict(message.get("attributes") or {})
    user_id = attributes.get("user_id") or tenancy.current_actor_id()
    interaction = services.record_interaction(
        message["customer_id"], PORTAL_CHANNEL, direction="outbound",
        subject=message.get("subject") or "", body=message.get("body") or "",
        source=message.get("source"), external_id=message.get("external_id"),
        user_id=uuid.UUID(str(user_id)) if user_id else None,
        attributes={**attributes, "purpose": message.get("purpose") or "service"})
    return {"status": "sent", "interaction_id": interaction.id, "message_id": None}


# --- customers: merge, export, erase --------------------------------------------------------------


def merge_into(survivor_id: uuid.UUID, merged_id: uuid.UUID) -> None:
    """The survivor keeps its own account; the merged customer's moves over only if it has none."""
    has_own = db.session.execute(db.select(PortalAccount.id).where(
        PortalAccount.customer_id == survivor_id)).first()
    if has_own:
        for account in db.session.execute(db.select(PortalAccount).where(
                PortalAccount.customer_id == merged_id)).scalars():
            revoke_sessions(account)
            db.session.delete(account)
        db.session.flush()
        return
    db.session.execute(sa.update(PortalAccount).where(PortalAccount.customer_id == merged_id)
                       .values(customer_id=survivor_id)
                       .execution_options(synchronize_session="fetch"))


def export_for(customer_id: uuid.UUID) -> dict[str, Any] | None:
    account = db.session.execute(db.select(PortalAccount).where(
        PortalAccount.customer_id == customer_id)).scalar_one_or_none()
    if account is None:
        return None
    return {"email": account.email, "status": account.status, "is_admin": account.is_admin,
            "created_at": account.created_at.isoformat(),
            "last_login_at": account.last_login_at.isoformat() if account.last_login_at else None}


def erase_for(customer_id: uuid.UUID) -> int:
    """An erased customer keeps no portal login, and its e-mail leaves the audit trail."""
    from clientela.plugins.collaborative.inbox import redact_audit

    accounts = db.session.execute(db.select(PortalAccount).where(
        PortalAccount.customer_id == customer_id)).scalars().all()
    ids = [a.id for a in accounts]
    ids += list(db.session.execute(db.select(PortalToken.id).where(
        PortalToken.account_id.in_(ids))).scalars())
    for account in accounts:
        revoke_sessions(account)
        db.session.delete(account)
    db.session.flush()
    redact_audit(ids)
    return len(accounts)


@dataclasses.dataclass
class PortalIdentity:
    """Who a portal request acts as: the account, and the tenant its token named."""

    account: PortalAccount
    tenant_id: uuid.UUID
    token: str


__all__ = ["CONSENT_PURPOSES", "PortalIdentity", "accept_invitation", "create_account",
           "login_with_link", "login_with_password", "session_account", "write_message"]
