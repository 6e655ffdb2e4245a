"""Authentication of API requests (Bearer tokens, sessions), login with rate limiting, and
the per-request tenant context.

The tenant comes only from the credential: a token belongs to one tenant, a session was
opened in one tenant. It is never read from a header or a field the caller chooses.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import secrets
import time

from flask import Flask, current_app, g, request, session
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse
from werkzeug.exceptions import NotFound as RouteNotFound

from clientela.core import access, services, tenancy
from clientela.core.db import db, utcnow
from clientela.core.errors import Forbidden, RateLimited, Unauthorized
from clientela.core.models import AuditEvent, Tenant, User

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
#: paths under the API prefix that need no credential
PUBLIC = {f"{API_PREFIX}/openapi.json", f"{API_PREFIX}/auth/login"}
PUBLIC_PREFIXES = (f"{API_PREFIX}/docs",)
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
#: body types that may carry the CSRF token as the form field ``csrf_token`` (web UI forms)
_FORMS = {"application/x-www-form-urlencoded", "multipart/form-data"}
TOUCH_INTERVAL = dt.timedelta(minutes=5)



def public(view=None, *, tenant=None):
    """Mark a view (function or ``MethodView`` class) under ``/api/v1`` as needing no user
    credential: it authenticates the caller itself (a webhook's tenant-owned key) and
    sets the tenant context on its own.

    ``tenant``, when given, is called before the request's input is read and returns the
    caller's ``Tenant`` (or raises 401): the route then answers 404 to a tenant whose
    plan hides the route's plugin, as token-authenticated routes do, and input
    validation never answers a caller who is not authenticated.
    """
    def mark(view):
        view.clientela_public = True
        if tenant is not None:
            view.clientela_tenant = staticmethod(tenant) if isinstance(view, type) else tenant
        return view

    return mark if view is None else mark(view)


def _view():
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    return getattr(view, "view_class", None) or view


def _public_view() -> bool:
    return bool(getattr(_view(), "clientela_public", False))


def current_principal() -> access.Principal:
    principal = g.get("principal")
    if principal is None:
        raise Unauthorized("authentication required")
    return principal


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        if header:
            raise Unauthorized("the Authorization header must be 'Bearer <token>'")
        return None
    return value.strip()


def _activate(tenant_id, user: User, via: str) -> None:
    tenant = db.session.get(Tenant, tenant_id)
    if tenant is None:
        raise Unauthorized("invalid credentials")
    if tenant.status != "active":
        raise Forbidden(f"this account is {tenant.status}; contact your provider")
    g.tenant = tenant
    g._tenancy_token = tenancy._tenant.set(tenant_id)
    g._actor_token = tenancy._actor.set(user.id)
    g._origin_token = tenancy._origin.set("api")
    g.principal = access.principal_for(user, via)
    ext = current_app.extensions["clientela"]
    ext.profile.request_authenticated(tenant, g.principal)
    _check_route_visible(tenant)


def _check_route_visible(tenant: Tenant) -> None:
    ext = current_app.extensions["clientela"]
    if ext.profile.plugins_per_tenant and request.blueprints:
        owner = ext.route_owners.get(request.blueprints[-1])
        if owner is not None and owner in ext.hidden_plugins(tenant):
            # a plugin outside the tenant's plan: as if the route did not exist
            raise RouteNotFound()


def authenticate() -> None:
    """``before_request``: resolve the credential, set the tenant and the principal."""
    path = request.path
    if not path.startswith(API_PREFIX + "/") or path in PUBLIC or path.startswith(PUBLIC_PREFIXES):
        return
    if _public_view():
        resolve = getattr(_view(), "clientela_tenant", None)
        if resolve is not None:
            _check_route_visible(resolve())
        return
    if not authenticate_credentials():
        raise Unauthorized("authentication required: send 'Authorization: Bearer <token>'")


def authenticate_credentials() -> bool:
    """Authenticate the request's token or session, if it carries one (``False`` if none);
    a wrong credential raises. Public routes that answer per tenant (the OpenAPI document)
    call it themselves."""
    raw = _bearer()
    if raw is not None:
        found = services.authenticate_token(raw)
        if found is None:
            log.info("rejected API token from %s", get_remote_address())
            raise Unauthorized("invalid or expired token")
        token, user = found
        _activate(token.tenant_id, user, "token")
        if token.last_used_at is None or utcnow() - token.last_used_at > TOUCH_INTERVAL:
            token.last_used_at = utcnow()  # at most every few minutes: no write per request
            db.session.commit()
        return True
    if session.get("user_id") and session.get("tenant_id"):
        import uuid

        tenant_id = uuid.UUID(session["tenant_id"])
        with tenancy.tenant_context(tenant_id):
            user = db.session.execute(
                db.select(User).where(User.id == uuid.UUID(session["user_id"]))
            ).scalar_one_or_none()
        if user is None or not user.is_active:
            session.clear()
            raise Unauthorized("your session has ended; log in again")
        if request.method in UNSAFE:
            sent = request.headers.get("X-CSRF-Token", "") or (
                request.form.get("csrf_token", "") if request.mimetype in _FORMS else "")
            if not hmac.compare_digest(sent, session.get("csrf", "")):
                raise Forbidden("missing or wrong X-CSRF-Token header for a session request")
        _activate(tenant_id, user, "session")
        return True
    return False


def release(exc=None) -> None:
    """``teardown_request``: leave the request's tenant context."""
    for name, var in (("_origin_token", tenancy._origin), ("_actor_token", tenancy._actor),
                      ("_tenancy_token", tenancy._tenant)):
        token = g.pop(name, None)
        if token is not None:
            var.reset(token)


def login(email: str, password: str) -> tuple[User, str]:
    """Open a session for a staff user of the request's tenant; returns the user and CSRF token."""
    check_login_rate(email)
    tenant = current_app.extensions["clientela"].profile.request_tenant()
    if tenant is None or tenant.status != "active":
        raise Unauthorized("invalid e-mail or password")
    with tenancy.tenant_context(tenant.id, origin="api"):
        user = services.find_user(email) if "@" in (email or "") else None
        if user is None or not user.is_active or not services.security.verify_password(
            user.password_hash, password
        ):
            db.session.add(AuditEvent(action="login_failed", entity_type="users",
                                      entity_id=user.id if user else None,
                                      changes={"email": [None, (email or "")[:320]],
                                               "ip": [None, get_remote_address()]},
                                      origin="api"))
            db.session.commit()
            raise Unauthorized("invalid e-mail or password")
        user.last_login_at = utcnow()
        db.session.add(AuditEvent(actor_id=user.id, action="login", entity_type="users",
                                  entity_id=user.id, changes={}, origin="api"))
        db.session.commit()
        # reload what the caller reads while the tenant is set: under Row-Level Security
        # the expired row cannot be refreshed outside the tenant's context
        db.session.refresh(user)
    session.clear()
    session["user_id"] = str(user.id)
    session["tenant_id"] = str(tenant.id)
    session["csrf"] = secrets.token_urlsafe(32)
    session.permanent = True
    return user, session["csrf"]


def audit_denial(message: str) -> None:
    """Record a permission denial in the tenant's trail (in its own transaction)."""
    principal = g.get("principal")
    if principal is None:
        return
    db.session.rollback()
    db.session.add(AuditEvent(actor_id=principal.user_id, action="permission_denied",
                              entity_type=None, entity_id=None, origin="api",
                              changes={"route": [None, f"{request.method} {request.path}"],
                                       "reason": [None, message]}))
    db.session.commit()


def check_login_rate(email: str) -> None:
    """Throttle password attempts per client address and per account (Flask-Limiter's
    storage: Redis when ``REDIS_URL`` is set, so the limit holds across workers)."""
    limiter: Limiter = current_app.extensions["clientela_limiter"]
    rate = parse(current_app.config["LOGIN_RATE_LIMIT"])
    for key in (f"login-ip:{get_remote_address()}", f"login-user:{(email or '').lower()}"):
        if not limiter.limiter.hit(rate, key):
            stats = limiter.limiter.get_window_stats(rate, key)
            wait = max(1, int(stats.reset_time - time.time()))
            raise RateLimited("too many login attempts; try again later", retry_after=wait)


def init_app(app: Flask) -> None:
    if app.config.get("REDIS_URL") and not app.config.get("RATELIMIT_STORAGE_URI"):
        app.config["RATELIMIT_STORAGE_URI"] = app.config["REDIS_URL"]
    app.config.setdefault("RATELIMIT_STORAGE_URI", "memory://")
    limiter = Limiter(key_func=get_remote_address, default_limits=[], app=app)
    app.extensions["clientela_limiter"] = limiter
    app.before_request(authenticate)
    app.teardown_request(release)
