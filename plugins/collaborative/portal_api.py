"""``/portal/api/v1/...``: the customer self-service portal's API, with its own login,
and the public unsubscribe page ``/u/<token>``.

These routes live outside ``/api/v1`` and the core's authentication: a portal request
carries a portal session token (``Authorization: Bearer clps_...``), whose prefix names
the tenant and whose hash is then looked up inside that tenant. Staff tokens are refused
here, and portal tokens are refused by the staff API (they are not ``cla_`` tokens).
"""

from __future__ import annotations

import html
import json
import uuid
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from marshmallow import Schema, fields, validate
from marshmallow import ValidationError as MarshmallowError
from werkzeug.exceptions import HTTPException

from clientela.core import customers, security, tenancy
from clientela.core.api import error_body
from clientela.core.api.auth import check_login_rate
from clientela.core.db import db
from clientela.core.errors import NotFound, Unauthorized, ValidationError
from clientela.core.models import Tenant
from clientela.plugins.collaborative import consent, portal
from clientela.plugins.collaborative.collab_models import CONSENT_PURPOSES

PORTAL_PREFIX = "/portal/api/v1"
#: routes that need no portal session
PUBLIC_ENDPOINTS = {"login", "accept_invitation", "login_with_link", "request_link"}

bp = Blueprint("collaborative_portal", __name__, url_prefix=PORTAL_PREFIX)
unsubscribe_bp = Blueprint("collaborative_unsubscribe", __name__)


# --- input -------------------------------------------------------------------------------------


class LoginInput(Schema):
    email = fields.String(required=True, validate=validate.Length(max=320))
    password = fields.String(required=True, validate=validate.Length(max=1000))


class AcceptInput(Schema):
    token = fields.String(required=True, validate=validate.Length(max=300))
    password = fields.String(required=True, validate=validate.Length(max=1000))


class LinkInput(Schema):
    token = fields.String(required=True, validate=validate.Length(max=300))


class RequestLinkInput(Schema):
    email = fields.String(required=True, validate=validate.Length(max=320))


class PasswordInput(Schema):
    current_password = fields.String(required=True, validate=validate.Length(max=1000))
    new_password = fields.String(required=True, validate=validate.Length(max=1000))


class MeUpdate(Schema):
    first_name = fields.String(allow_none=True, validate=validate.Length(max=100))
    last_name = fields.String(allow_none=True, validate=validate.Length(max=100))
    phone = fields.String(allow_none=True, validate=validate.Length(max=50))
    addresses = fields.List(fields.Dict())


class MessageInput(Schema):
    subject = fields.String(required=True, validate=validate.Length(min=1, max=500))
    body = fields.String(required=True, validate=validate.Length(min=1, max=20000))


class ConsentInput(Schema):
    channel = fields.String(required=True, validate=validate.Length(max=40))
    purpose = fields.String(required=True, validate=validate.OneOf(CONSENT_PURPOSES))
    granted = fields.Boolean(required=True)


def _load(schema: Schema) -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationError({"json": {"_schema": ["send a JSON object"]}})
    try:
        return schema.load(data)
    except MarshmallowError as exc:
        raise ValidationError({"json": exc.messages}) from None


def _page_args() -> tuple[int, int]:
    try:
        number = int(request.args.get("page", 1))
        size = int(request.args.get("page_size", 20))
    except ValueError:
        raise ValidationError({"query": {"page": ["page and page_size are numbers"]}},
                              message="Invalid query.") from None
    if number < 1 or not 1 <= size <= 100:
        raise ValidationError({"query": {"page": ["page >= 1, 1 <= page_size <= 100"]}},
                              message="Invalid query.")
    return number, size


def _paged(stmt, view):
    number, size = _page_args()
    items, total = customers.page(stmt, number, size)
    response = jsonify([_safe(view(i)) for i in items])
    response.headers["X-Pagination"] = json.dumps({
        "total": total, "total_pages": (total + size - 1) // size, "page": number,
        "page_size": size})
    return response


def _safe(value: Any) -> Any:
    from clientela.core.events import json_safe

    return json_safe(value)


def _consent_view(c) -> dict[str, Any]:
    return {"channel": c.channel, "purpose": c.purpose, "granted": c.granted,
            "source": c.source, "recorded_at": c.recorded_at}


# --- authentication ------------------------------------------------------------------------------


def _bearer() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _enter_tenant(tenant_id: uuid.UUID) -> None:
    context = tenancy.tenant_context(tenant_id, origin="portal")
    context.__enter__()
    g.portal_tenancy = context


@bp.before_request
def authenticate_portal():
    """Resolve the tenant from the token (a session, or the link in a public call's body is
    read by the view) and the account from the token's hash inside that tenant."""
    if request.endpoint and request.endpoint.rpartition(".")[2] in PUBLIC_ENDPOINTS:
        return None
    raw = _bearer()
    if raw is None:
        raise Unauthorized("portal authentication required: send "
                           "'Authorization: Bearer <portal session token>'")
    tenant = portal.active_tenant(portal.tenant_of_token(raw, "session"))
    if tenant is None:
        raise Unauthorized("invalid or expired portal session")
    _enter_tenant(tenant.id)
    account = portal.session_account(raw)
    if account is None:
        raise Unauthorized("invalid or expired portal session")
    g.portal = portal.PortalIdentity(account=account, tenant_id=tenant.id, token=raw)
    return None


@bp.teardown_request
def leave_tenant(exc=None):
    context = g.pop("portal_tenancy", None)
    if context is not None:
        context.__exit__(None, None, None)


@bp.errorhandler(HTTPException)
def portal_http_error(exc: HTTPException):
    response = jsonify(error_body(exc.code or 500, exc.description or ""))
    response.status_code = exc.code or 500
    return response


def _account():
    return g.portal.account


def _token_tenant(raw: str, kind: str) -> Tenant:
    tenant = portal.active_tenant(portal.tenant_of_token(raw, kind))
    if tenant is None:
        raise Unauthorized(f"this {'invitation' if kind == 'invite' else 'login'} link is "
                           "invalid, used or expired")
    _enter_tenant(tenant.id)
    return tenant


@bp.post("/auth/login/<portal_name>")
def login(portal_name: str):
    """Password login to the portal of the tenant ``portal_name`` (its slug)."""
    data = _load(LoginInput())
    check_login_rate(f"portal:{data['email']}")
    tenant = db.session.execute(db.select(Tenant).where(
        Tenant.slug == portal_name)).scalar_one_or_none()
    if tenant is None or portal.active_tenant(tenant.id) is None:
        raise Unauthorized("invalid e-mail or password")
    _enter_tenant(tenant.id)
    session = portal.login_with_password(data["email"], data["password"])
    db.session.commit()
    return jsonify(_safe(session)), 200


@bp.post("/auth/invitation")
def accept_invitation():
    """Choose a password with the invitation link's token; opens a session."""
    data = _load(AcceptInput())
    check_login_rate(f"portal-invite:{security.hash_token(data['token'])[:16]}")
    _token_tenant(data["token"], "invite")
    session = portal.accept_invitation(data["token"], data["password"])
    db.session.commit()
    return jsonify(_safe(session)), 200


@bp.post("/auth/link")
def login_with_link():
    """Log in with a one-time link's token; opens a session."""
    data = _load(LinkInput())
    _token_tenant(data["token"], "link")
    session = portal.login_with_link(data["token"])
    db.session.commit()
    return jsonify(_safe(session)), 200


@bp.post("/auth/link/<portal_name>")
def request_link(portal_name: str):
    """E-mail a one-time login link; the same answer whether the address has an account."""
    data = _load(RequestLinkInput())
    check_login_rate(f"portal-link:{data['email']}")
    tenant = db.session.execute(db.select(Tenant).where(
        Tenant.slug == portal_name)).scalar_one_or_none()
    if tenant is not None and portal.active_tenant(tenant.id) is not None:
        _enter_tenant(tenant.id)
        portal.send_login_link(data["email"])
        db.session.commit()
    return jsonify({"status": "sent if the address has a portal account"}), 202


@bp.post("/auth/logout")
def logout():
    portal.logout(g.portal.token)
    db.session.commit()
    return "", 204


@bp.post("/auth/password")
def change_password():
    data = _load(PasswordInput())
    portal.change_password(_account(), data["current_password"], data["new_password"])
    db.session.commit()
    return "", 204


# --- self-service ---------------------------------------------------------------------------------


@bp.get("/me")
def me():
    """The account, and the customer's own master data."""
    return jsonify(_safe(portal.me(_account())))


@bp.patch("/me")
def correct_me():
    """Correct one's own master data (names, phone, addresses)."""
    data = request.get_json(silent=True)
    if isinstance(data, dict):
        unknown = sorted(set(data) - set(portal.EDITABLE_FIELDS))
        if unknown:
            raise ValidationError({"json": {k: ["not editable in the portal"] for k in unknown}})
    view = portal.correct_master_data(_account(), _load(MeUpdate()))
    db.session.commit()
    return jsonify(_safe(view))


@bp.get("/interactions")
def interactions():
    """One's own interactions, newest first (paginated)."""
    return _paged(portal.interactions_query(_account()), portal.interaction_view)


@bp.get("/interactions/<uuid:interaction_id>")
def interaction(interaction_id: uuid.UUID):
    return jsonify(_safe(portal.interaction_view(
        portal.get_interaction(_account(), interaction_id))))


@bp.post("/messages")
def write_message():
    """Write to the company: recorded as an inbound interaction on the ``portal`` channel."""
    data = _load(MessageInput())
    interaction = portal.write_message(_account(), data["subject"], data["body"])
    db.session.commit()
    return jsonify(_safe(portal.interaction_view(interaction))), 201


@bp.get("/records")
def records():
    """What other plugins hold about oneself and show in the portal, by kind (the
    operational plugin's service cases under ``cases``)."""
    return jsonify(_safe(portal.records(_account())))


@bp.get("/consents")
def consents():
    """The current consent per channel and purpose, and the history."""
    found = portal.consents(_account())
    return jsonify(_safe({"current": [_consent_view(c) for c in found["current"]],
                          "history": [_consent_view(c) for c in found["history"]]}))


@bp.post("/consents")
def set_consent():
    """Grant or withdraw one's consent on a channel for a purpose (source ``portal``)."""
    record = portal.set_consent(_account(), _load(ConsentInput()))
    db.session.commit()
    return jsonify(_safe(_consent_view(record))), 201


@bp.get("/people")
def people():
    """An organisation's portal admin: the organisation's people (404 for other accounts)."""
    return _paged(portal.people_query(_account()), portal.customer_view)


@bp.get("/people/<uuid:customer_id>")
def person(customer_id: uuid.UUID):
    return jsonify(_safe(portal.customer_view(portal.get_person(_account(), customer_id))))


@bp.route("/<path:anything>", methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
def unknown_route(anything: str):
    raise NotFound("not found")


# --- the public unsubscribe page ------------------------------------------------------------------

PAGE = ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>"
        "<body><h1>{title}</h1>{body}</body></html>")


def _page(title: str, body: str, status: int = 200):
    return current_app.response_class(PAGE.format(title=html.escape(title), body=body),
                                      status=status, mimetype="text/html")


def unsubscribe_page(token: str):
    """``GET`` asks to confirm (mail scanners follow links; a GET must change nothing);
    ``POST`` (the form, or a one-click ``List-Unsubscribe-Post``) withdraws marketing."""
    found = consent.read_unsubscribe_token(token)
    tenant = portal.active_tenant(found[0]) if found else None
    if tenant is None:
        return _page("Link not valid", "<p>This unsubscribe link is not valid.</p>", 404)
    tenant_id, customer_id, channel = found
    with tenancy.tenant_context(tenant_id, origin="web"):
        customer_exists = db.session.execute(db.select(portal.Customer.id).where(
            portal.Customer.id == customer_id)).first() is not None
        if not customer_exists:
            db.session.rollback()
            return _page("Link not valid", "<p>This unsubscribe link is not valid.</p>", 404)
        if request.method == "GET":
            db.session.rollback()
            return _page("Unsubscribe", (
                f"<p>Stop receiving marketing messages by {html.escape(channel)}?</p>"
                f"<form method=\"post\"><button type=\"submit\">Unsubscribe</button></form>"))
        consent.unsubscribe(customer_id, channel,
                            note="one-click" if request.form.get("List-Unsubscribe") else "")
        db.session.commit()
    return _page("Unsubscribed", "<p>You will not receive marketing messages by "
                                 f"{html.escape(channel)} any more.</p>")


unsubscribe_bp.add_url_rule("/u/<token>", endpoint="unsubscribe", view_func=unsubscribe_page,
                            methods=["GET", "POST"])


__all__ = ["PORTAL_PREFIX", "bp", "unsubscribe_bp"]
