"""The customer self-service portal's pages (``/portal/...``): log in, my data, my cases, my
messages, write a message, my consent.

They stand on the same functions as the portal API (``/portal/api/v1``, ``portal.py``): the
same password login, one-time links and invitations, the same session tokens. The token is
kept in a cookie of its own (``clientela_portal``: HttpOnly, SameSite=Lax, path ``/portal``),
never in the staff session; the tenant comes from the token, as in the API. Every page
reaches only the account's own customer: anything else is 404. Forms carry the CSRF token.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from flask import (Blueprint, current_app, flash, g, redirect, render_template, request,
                   url_for)
from werkzeug.exceptions import HTTPException

from clientela.core import customers as customer_service
from clientela.core import tenancy
from clientela.core.api.auth import check_login_rate
from clientela.core.db import db
from clientela.core.errors import (ClientelaError, CrossTenantError, NoTenantError, NotFound,
                                   RateLimited, Unauthorized, ValidationError)
from clientela.core.models import Tenant
from clientela.core.web import check_csrf, field_errors, parse_id
from clientela.core.web.i18n import _, _l
from clientela.plugins.collaborative import consent, portal
from clientela.plugins.collaborative.collab_models import CONSENT_PURPOSES

COOKIE = "clientela_portal"
PATH = "/portal"
#: pages that need no portal session
PUBLIC = {"login", "link", "invitation", "request_link", "static"}
PURPOSE_LABELS = {"marketing": _l("Offers and news"), "service": _l("Service messages")}
CASE_STATUS_LABELS = {"new": _l("New"), "open": _l("Open"), "pending": _l("Waiting for you"),
                      "resolved": _l("Resolved"),
                      "closed": _l("Closed")}
#: the channels offered on the consent page (those the customer can be reached on)
CONSENT_CHANNELS = ("email", "phone", "sms", "letter", "portal")

bp = Blueprint("collaborative_portal_web", __name__, url_prefix=PATH,
               template_folder="templates", static_folder="static",
               static_url_path="/static")


# --- session ----------------------------------------------------------------------------------


def _enter_tenant(tenant_id: uuid.UUID) -> None:
    leave_tenant()  # a login while a session cookie is still set: one context at a time
    context = tenancy.tenant_context(tenant_id, origin="portal")
    context.__enter__()
    g.portal_web_tenancy = context


@bp.before_request
def authenticate():
    """The portal session from the cookie; the CSRF token on unsafe requests."""
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        check_csrf()
    endpoint = (request.endpoint or "").rpartition(".")[2]
    raw = request.cookies.get(COOKIE)
    tenant = portal.active_tenant(portal.tenant_of_token(raw, "session")) if raw else None
    if tenant is not None:
        _enter_tenant(tenant.id)
        account = portal.session_account(raw)
        if account is not None:
            g.portal_web = portal.PortalIdentity(account=account, tenant_id=tenant.id, token=raw)
    if endpoint in PUBLIC or g.get("portal_web") is not None:
        return None
    if request.method == "GET":
        return redirect(url_for(".login", next=request.path))
    raise Unauthorized("log in to the portal first")


@bp.teardown_request
def leave_tenant(exc=None):
    context = g.pop("portal_web_tenancy", None)
    if context is not None:
        context.__exit__(None, None, None)


@bp.after_request
def no_store(response):
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.errorhandler(ClientelaError)
@bp.errorhandler(HTTPException)
def portal_error(exc):
    from clientela.core.api import _status_of

    db.session.rollback()
    if isinstance(exc, ClientelaError):
        status = _status_of(exc)
        if isinstance(exc, (NoTenantError, CrossTenantError)):
            current_app.logger.error("tenancy violation in %s %s: %s", request.method,
                                     request.path, exc)
            status = 500
    else:
        status = exc.code or 500
    if status == 401 and request.method == "GET":
        return redirect(url_for(".login"))
    titles = {401: _("Please log in."), 403: _("You are not allowed to do this."),
              404: _("This page does not exist, or you cannot see it."),
              422: _("Some values were not accepted."),
              429: _("Too many requests. Wait a minute and try again.")}
    title = titles.get(status, _("Something went wrong on our side. It has been logged."))
    response = current_app.make_response((render_template(
        "collaborative/portal/error.html", status=status, title=title), status))
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def account():
    return g.portal_web.account


def _set_cookie(response, session: dict[str, Any]):
    lifetime = session["expires_at"] - dt.datetime.now(dt.timezone.utc)
    response.set_cookie(COOKIE, session["token"], max_age=max(0, int(lifetime.total_seconds())),
                        path=PATH, httponly=True, samesite="Lax",
                        secure=request.is_secure or bool(current_app.config.get(
                            "SESSION_COOKIE_SECURE")))
    return response


def _safe_next(target: str | None) -> str:
    if target and target.startswith(PATH + "/") and not target.startswith("//") \
            and "\\" not in target:
        return target
    return url_for(".home")


def _portal_tenant() -> Tenant | None:
    """The tenant a password login addresses: the profile's (the single tenant on-premise,
    the subdomain's when hosted), else ``?portal=<tenant slug>``."""
    profile = current_app.extensions["clientela"].profile
    tenant = profile.request_tenant()
    if tenant is None:
        slug = request.values.get("portal") or ""
        tenant = db.session.execute(db.select(Tenant).where(
            Tenant.slug == slug)).scalar_one_or_none() if slug else None
    return portal.active_tenant(tenant.id) if tenant is not None else None


# --- logging in ---------------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Password login; with a one-time link (``#token=``) the static script posts the token."""
    error, email = None, ""
    status = 200
    if request.method == "POST":
        email = (request.form.get("email") or "").strip()
        try:
            check_login_rate(f"portal:{email}")
            tenant = _portal_tenant()
            if tenant is None:
                raise Unauthorized("invalid e-mail or password")
            _enter_tenant(tenant.id)
            session = portal.login_with_password(email, request.form.get("password") or "")
            db.session.commit()
        except Unauthorized:
            error, status = _("Wrong e-mail or password."), 401
        except RateLimited:
            error, status = _("Too many attempts. Wait a minute and try again."), 429
        else:
            return _set_cookie(redirect(_safe_next(request.args.get("next"))), session)
    return render_template("collaborative/portal/login.html", error=error, email=email,
                           portal_name=request.values.get("portal") or ""), status


def _token_login(kind: str, template: str):
    raw = (request.form.get("token") or "").strip()
    password = request.form.get("password") or ""
    try:
        if kind == "invite":
            check_login_rate(f"portal-invite:{raw[-16:]}")
        tenant = portal.active_tenant(portal.tenant_of_token(raw, kind))
        if tenant is None:
            raise Unauthorized("invalid link")
        _enter_tenant(tenant.id)
        session = (portal.accept_invitation(raw, password) if kind == "invite"
                   else portal.login_with_link(raw))
        db.session.commit()
    except ValidationError as exc:
        db.session.rollback()
        return render_template(template, errors=field_errors(exc)), 422
    except Unauthorized:
        db.session.rollback()
        return render_template(template, errors={"token": [
            _("This link is invalid, used or expired. Ask for a new one.")]}), 401
    return _set_cookie(redirect(url_for(".home")), session)


@bp.route("/link", methods=["POST"])
def link():
    """Log in with a one-time link's token (the login page's script posts it)."""
    return _token_login("link", "collaborative/portal/login.html")


@bp.route("/invitation", methods=["GET", "POST"])
def invitation():
    """Choose a password with the invitation link's token (read from ``#token=`` by the
    page's script, or pasted)."""
    if request.method == "GET":
        return render_template("collaborative/portal/invitation.html", errors={})
    return _token_login("invite", "collaborative/portal/invitation.html")


@bp.route("/login-link", methods=["POST"])
def request_link():
    """E-mail a one-time login link; the same answer whether the address has an account."""
    email = (request.form.get("email") or "").strip()
    check_login_rate(f"portal-link:{email}")
    tenant = _portal_tenant()
    if tenant is not None and email:
        _enter_tenant(tenant.id)
        portal.send_login_link(email)
        db.session.commit()
    flash(_("If this address has a portal account, a login link is on its way."), "success")
    return redirect(url_for(".login", portal=request.values.get("portal") or None))


@bp.route("/logout", methods=["POST"])
def logout():
    portal.logout(g.portal_web.token)
    db.session.commit()
    response = redirect(url_for(".login"))
    response.delete_cookie(COOKIE, path=PATH)
    return response


# --- the customer's pages ---------------------------------------------------------------------


def _cases() -> list[dict[str, Any]]:
    return portal.records(account()).get("cases", [])


@bp.route("/")
def home():
    me = portal.me(account())
    recent = db.session.execute(portal.interactions_query(account()).limit(5)).scalars().all()
    cases = _cases()
    return render_template("collaborative/portal/home.html", me=me, recent=recent,
                           cases=cases[:5], open_cases=[c for c in cases
                                                        if not c.get("resolved_at")])


@bp.route("/me", methods=["GET", "POST"])
def my_data():
    errors: dict = {}
    status = 200
    if request.method == "POST":
        data = {field: (request.form.get(field) or "").strip() or None
                for field in ("first_name", "last_name", "phone") if field in request.form}
        try:
            portal.correct_master_data(account(), data)
        except ValidationError as exc:
            db.session.rollback()
            errors, status = field_errors(exc), 422
        else:
            db.session.commit()
            flash(_("Your details are saved."), "success")
            return redirect(url_for(".my_data"))
    return render_template("collaborative/portal/me.html", me=portal.me(account()),
                           errors=errors, form=request.form), status


@bp.route("/cases")
def cases():
    return render_template("collaborative/portal/cases.html", cases=_cases(),
                           case_status=_case_status)


def _case_status(status: str | None) -> str:
    return str(CASE_STATUS_LABELS.get(status or "", status or ""))


@bp.route("/cases/<case_id>")
def case(case_id: str):
    key = str(parse_id(case_id))
    found = next((c for c in _cases() if c.get("id") == key), None)
    if found is None:
        raise NotFound("not found")
    return render_template("collaborative/portal/case.html", case=found,
                           case_status=_case_status)


@bp.route("/messages")
def messages():
    page = max(1, request.args.get("page", 1, type=int) or 1)
    stmt = portal.interactions_query(account())
    rows, total = customer_service.page(stmt, page, 20)
    return render_template("collaborative/portal/messages.html", messages=rows, page=page,
                           pages=max(1, (total + 19) // 20), args={})


@bp.route("/messages/<message_id>")
def message(message_id: str):
    found = portal.get_interaction(account(), parse_id(message_id))
    return render_template("collaborative/portal/message.html", message=found)


@bp.route("/messages/new", methods=["GET", "POST"])
def write_message():
    errors: dict = {}
    status = 200
    if request.method == "POST":
        subject = (request.form.get("subject") or "").strip()
        body = request.form.get("body") or ""
        if len(subject) > 500 or len(body) > 20000:
            errors, status = {"body": [_("The message is too long.")]}, 422
        else:
            try:
                portal.write_message(account(), subject, body)
            except ValidationError as exc:
                db.session.rollback()
                errors, status = field_errors(exc), 422
            else:
                db.session.commit()
                flash(_("Thank you: your message has been sent. We will answer soon."),
                      "success")
                return redirect(url_for(".messages"))
    return render_template("collaborative/portal/write.html", errors=errors,
                           form=request.form), status


def _consent_rows() -> list[dict[str, Any]]:
    from clientela.core.web import channel_label

    found = portal.consents(account())
    current = {(c.channel, c.purpose): c for c in found["current"]}
    known = consent.known_channels()
    rows = []
    for channel in CONSENT_CHANNELS:
        if channel not in known:
            continue
        for purpose in CONSENT_PURPOSES:
            decision = current.get((channel, purpose))
            rows.append({"channel": channel, "channel_label": channel_label(channel),
                         "purpose": purpose, "purpose_label": str(PURPOSE_LABELS[purpose]),
                         "granted": decision.granted if decision else None,
                         "recorded_at": decision.recorded_at if decision else None})
    return rows


@bp.route("/consent", methods=["GET", "POST"])
def consents():
    if request.method == "POST":
        channel = request.form.get("channel") or ""
        purpose = request.form.get("purpose") or ""
        granted = request.form.get("granted")
        if (channel not in CONSENT_CHANNELS or purpose not in CONSENT_PURPOSES
                or granted not in ("yes", "no")):
            raise ValidationError({"consent": ["choose a channel, a purpose and yes or no"]})
        portal.set_consent(account(), {"channel": channel, "purpose": purpose,
                                       "granted": granted == "yes"})
        db.session.commit()
        flash(_("Your choice is saved."), "success")
        return redirect(url_for(".consents"))
    history = portal.consents(account())["history"]
    return render_template("collaborative/portal/consent.html", rows=_consent_rows(),
                           history=history, purpose_labels=PURPOSE_LABELS)


__all__ = ["bp", "COOKIE"]
