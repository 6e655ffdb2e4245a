"""The core's business functions: tenants, users, tokens, customers, interactions.

They take plain arguments and need no request, so the API, the CLI, jobs and tests
all call the same code. Functions that change data flush but do not commit unless
they say so; the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

from marshmallow import ValidationError as MarshmallowError
from marshmallow.validate import Email

from clientela.core import phones, security, tenancy
from clientela.core.db import db, utcnow
from clientela.core.errors import Conflict, NotFound, ValidationError
from clientela.core.models import (
    CUSTOMER_KINDS,
    DIRECTIONS,
    LIFECYCLE_STAGES,
    ApiToken,
    Customer,
    Interaction,
    Tenant,
    User,
)

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_email = Email()


# --- tenants ---------------------------------------------------------------


def create_tenant(slug: str, name: str | None = None, plan: str | None = None) -> Tenant:
    """Provision a tenant and let every plugin create its defaults; commits."""
    from clientela.core.events import call_each, plugin_hooks

    hooks = plugin_hooks()
    if not SLUG_RE.match(slug or ""):
        raise ValidationError(
            {"slug": ["use 1-63 lower-case letters, digits and hyphens, not at either end"]}
        )
    if db.session.execute(db.select(Tenant.id).where(Tenant.slug == slug)).first():
        raise Conflict(f"tenant '{slug}' already exists")
    tenant = Tenant(slug=slug, name=name or slug, plan=plan)
    db.session.add(tenant)
    db.session.flush()
    with tenancy.tenant_context(tenant.id):
        if hooks is not None:
            hooks.clientela_tenant_created_precommit(tenant=tenant)
        db.session.commit()
    if hooks is not None:
        call_each(hooks.clientela_tenant_created_postcommit, tenant_id=tenant.id)
    return tenant


def get_tenant(slug: str) -> Tenant:
    tenant = db.session.execute(db.select(Tenant).where(Tenant.slug == slug)).scalar_one_or_none()
    if tenant is None:
        raise NotFound(f"no tenant '{slug}'")
    return tenant


# --- users and tokens ------------------------------------------------------


def normalise_email(value: str | None, field: str = "email") -> str | None:
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        _email(value)
    except MarshmallowError:
        raise ValidationError({field: [f"'{value}' is not a valid e-mail address"]}) from None
    local, _, domain = value.rpartition("@")
    return f"{local}@{domain.lower()}".lower()


def create_user(email: str, roles: list[str] | None = None, password: str | None = None,
                name: str = "") -> User:
    """Create a staff user in the current tenant. Flushes."""
    email = normalise_email(email)
    if email is None:
        raise ValidationError({"email": ["an e-mail address is required"]})
    if password is not None and len(password) < security.MIN_PASSWORD_LENGTH:
        raise ValidationError(
            {"password": [f"use at least {security.MIN_PASSWORD_LENGTH} characters"]}
        )
    if find_user(email) is not None:
        raise Conflict(f"a user with e-mail {email} already exists")
    user = User(
        email=email,
        name=name,
        roles=list(roles or []),
        password_hash=security.hash_password(password) if password else None,
    )
    db.session.add(user)
    db.session.flush()
    return user


def find_user(email: str) -> User | None:
    email = normalise_email(email)
    return db.session.execute(db.select(User).where(User.email == email)).scalar_one_or_none()


def create_token(user: User, name: str = "", expires_at: dt.datetime | None = None
                 ) -> tuple[ApiToken, str]:
    """Create an API token for ``user``; returns the row and the token (shown once). Flushes."""
    raw = security.generate_token()
    token = ApiToken(
        user_id=user.id,
        name=name,
        prefix=security.token_display_prefix(raw),
        token_hash=security.hash_token(raw),
        expires_at=expires_at,
    )
    db.session.add(token)
    db.session.flush()
    return token, raw


def authenticate_token(raw: str) -> tuple[ApiToken, User] | None:
    """The token and its user for a presented token, or ``None`` (unknown, revoked, expired).

    The profile says which tenant the token's hash belongs to (under Row-Level Security
    nothing is visible before that); the token and its user are then read inside it.
    """
    if not raw or not raw.startswith(security.TOKEN_PREFIX):
        return None
    from flask import current_app

    from clientela.core.profile import Profile

    token_hash = security.hash_token(raw)
    profile = current_app.extensions["clientela"].profile
    # the user's tenant row comes in the same query, so the request's later look-up of it
    # is answered from the session's identity map
    stmt = (
        db.select(ApiToken, User, Tenant)
        .join(User, (User.tenant_id == ApiToken.tenant_id) & (User.id == ApiToken.user_id))
        .join(Tenant, Tenant.id == ApiToken.tenant_id)
        .where(ApiToken.token_hash == token_hash)
    )
    if type(profile).token_tenant is Profile.token_tenant:
        # no Row-Level Security underneath: one query with the ORM's scoping lifted
        with tenancy.unscoped():
            row = db.session.execute(stmt).first()
    else:
        tenant_id = profile.token_tenant(token_hash)
        if tenant_id is None:
            return None
        with tenancy.tenant_context(tenant_id):
            row = db.session.execute(stmt).first()
    if row is None:
        return None
    token, user, _ = row
    if token.revoked_at is not None or security.is_expired(token.expires_at, utcnow()):
        return None
    if not user.is_active:
        return None
    return token, user


# --- customers and interactions ---------------------------------------------


def normalise_phone(value: str | None, region: str | None = None, field: str = "phone"
                    ) -> str | None:
    """A phone number in E.164 (``+390612345678``); ``region`` reads national numbers."""
    if value is None or not str(value).strip():
        return None
    number = phones.to_e164(str(value), region)  # phonenumbers, with a fast path and a cache
    if number is None:
        hint = "" if region else " (write it with its +country code)"
        raise ValidationError({field: [f"'{value}' is not a valid phone number{hint}"]})
    return number


def _display_name(kind: str, data: dict[str, Any]) -> str:
    if kind == "organisation":
        name = data.get("organisation_name") or data.get("display_name")
    else:
        parts = [data.get("first_name"), data.get("last_name")]
        name = " ".join(p for p in parts if p) or data.get("display_name")
    return (name or data.get("email") or "").strip()


CUSTOMER_FIELDS = {
    "kind", "first_name", "last_name", "organisation_name", "display_name", "email",
    "phone", "emails", "phones", "addresses", "website", "owner_id", "organisation_id",
    "stage", "tags", "external_id", "attributes",
}


def clean_customer_data(data: dict[str, Any], phone_region: str | None = None
                        ) -> dict[str, Any]:
    """Check and normalise a customer's plain data; returns a new dict ready for ``Customer``.

    The rules every write of a customer follows (``create_customer``, the bulk import):
    known fields only, ``kind`` and ``stage`` from their lists (default ``person`` and
    ``lead``), e-mail validated and lower-cased, phone normalised to E.164,
    ``display_name`` derived from the names. Raises ``ValidationError`` with the
    messages of every failing field.
    """
    unknown = set(data) - CUSTOMER_FIELDS
    if unknown:
        raise ValidationError({k: ["unknown field"] for k in sorted(unknown)})
    data = dict(data)
    errors: dict[str, list[str]] = {}
    kind = data.setdefault("kind", "person")
    if kind not in CUSTOMER_KINDS:
        errors["kind"] = [f"must be one of {', '.join(CUSTOMER_KINDS)}"]
    stage = data.setdefault("stage", "lead")
    if stage not in LIFECYCLE_STAGES:
        errors["stage"] = [f"must be one of {', '.join(LIFECYCLE_STAGES)}"]
    for field, fn in (("email", normalise_email), ("phone", normalise_phone)):
        try:
            data[field] = fn(data.get(field)) if field == "email" else fn(
                data.get(field), phone_region
            )
        except ValidationError as exc:
            errors.update(exc.errors)
    data["display_name"] = _display_name(kind, data)
    if not data["display_name"]:
        errors["display_name"] = ["give a name or an e-mail address"]
    if errors:
        raise ValidationError(errors)
    return data


def create_customer(data: dict[str, Any], phone_region: str | None = None) -> Customer:
    """Create a customer in the current tenant from plain data. Flushes.

    E-mails are validated and lower-cased, phones normalised to E.164
    (``clean_customer_data``).
    """
    customer = Customer(**clean_customer_data(data, phone_region))
    db.session.add(customer)
    db.session.flush()
    return customer


def get_customer(customer_id: uuid.UUID) -> Customer:
    customer = db.session.get(Customer, (tenancy.current_tenant_id(), customer_id))
    if customer is None:
        raise NotFound("customer not found")
    return customer


def record_interaction(customer_id: uuid.UUID, channel: str, *, direction: str = "inbound",
                       occurred_at: dt.datetime | None = None, subject: str = "",
                       body: str = "", outcome: str | None = None,
                       user_id: uuid.UUID | None = None, source: str | None = None,
                       external_id: str | None = None,
                       attributes: dict | None = None) -> Interaction:
    """Record one touchpoint on the customer's timeline. Flushes.

    With ``source`` and ``external_id``, recording the same interaction again
    returns the existing one instead of a duplicate.
    """
    if direction not in DIRECTIONS:
        raise ValidationError({"direction": [f"must be one of {', '.join(DIRECTIONS)}"]})
    get_customer(customer_id)
    if source and external_id:
        existing = db.session.execute(
            db.select(Interaction).where(
                Interaction.source == source, Interaction.external_id == external_id
            )
        ).scalar_one_or_none()
        if existing is not None:
            return existing
    interaction = Interaction(
        customer_id=customer_id,
        channel=channel,
        direction=direction,
        occurred_at=occurred_at or utcnow(),
        subject=subject,
        body=body,
        outcome=outcome,
        user_id=user_id,
        source=source,
        external_id=external_id,
    )
    if attributes:
        interaction.attributes = dict(attributes)
    db.session.add(interaction)
    db.session.flush()
    return interaction
