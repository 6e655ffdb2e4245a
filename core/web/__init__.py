"""The staff web UI: server-rendered Flask + Jinja pages under ``/app``.

Pages call the same service functions as the API, with the same principal, so the UI can
reach nothing the user could not reach through the API. Plugins add pages with
``clientela_web_blueprints`` (a blueprint made by :func:`staff_blueprint`), navigation
entries with ``clientela_web_nav``, dashboard widgets with
``clientela_web_dashboard_widgets`` and customer 360° panels with
``clientela_web_customer_panels``. A plugin outside a tenant's plan, or disabled, adds
nothing: its routes answer 404 and its hooks are not called.

Security: sessions only (the cookie is HttpOnly and SameSite=Lax), a CSRF token on every
unsafe request (form field ``csrf_token`` or header ``X-CSRF-Token``), and a
Content-Security-Policy that allows no inline script or style: scripts are the static files
shipped here (htmx and ``app.js``), charts are server-rendered SVG.
"""

from __future__ import annotations

import functools
import secrets
import uuid
from typing import Any, Callable
from urllib.parse import urlsplit

from flask import (Blueprint, Flask, current_app, flash, g, redirect, render_template,
                   request, session, url_for)
from markupsafe import Markup

from clientela.core import tenancy
from clientela.core.db import db
from clientela.core.errors import (ClientelaError, Forbidden, NotFound, RateLimited,
                                   Unauthorized, ValidationError)
from clientela.core.web import charts, i18n
from clientela.core.web.i18n import _, _l, LOCALES

PREFIX = "/app"

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'self'; object-src 'none'")

bp = Blueprint("web", __name__, url_prefix=PREFIX, template_folder="templates",
               static_folder="static", static_url_path="/static")


# --- for plugin pages ---------------------------------------------------------------


def staff_blueprint(name: str, import_name: str, url_prefix: str, **kwargs) -> Blueprint:
    """A blueprint of staff pages: every view needs a logged-in user of the tenant.

    ``url_prefix`` is taken under ``/app`` (``"/deals"`` serves ``/app/deals``). Templates
    go in the plugin's ``templates/<plugin>/`` folder and extend ``"web/base.html"``.
    Register it with ``clientela_web_blueprints``.
    """
    kwargs.setdefault("template_folder", "templates")
    blueprint = Blueprint(name, import_name, url_prefix=PREFIX + url_prefix, **kwargs)
    blueprint.before_request(require_login)
    blueprint.clientela_staff = True  # type: ignore[attr-defined]
    return blueprint


def requires(permission: str) -> Callable:
    """A view decorator: answer 403 unless the user has ``permission`` (any scope)."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if not principal().can(permission):
                raise Forbidden(f"you lack the permission {permission}")
            return view(*args, **kwargs)

        return wrapper

    return decorate


def principal():
    """The logged-in user's principal (permissions and record scopes)."""
    found = g.get("principal")
    if found is None:
        raise Unauthorized("log in first")
    return found


def parse_id(value: str) -> uuid.UUID:
    """A record id from the URL; anything else is a 404, as in the API."""
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError):
        raise NotFound("no such record") from None


def field_errors(exc: ValidationError) -> dict[str, list[str]]:
    """A validation error's messages per form field (nested ``json``/``query`` unwrapped)."""
    errors = exc.errors if isinstance(exc.errors, dict) else {"_schema": [str(exc.errors)]}
    for key in ("json", "query", "form"):
        if set(errors) == {key} and isinstance(errors[key], dict):
            errors = errors[key]
    # messages the catalogue knows (marshmallow's and the services' common ones) are shown
    # in the user's language; the others as written
    return {key: [i18n.gettext(str(m)) for m in (value if isinstance(value, list) else [value])]
            for key, value in errors.items()}


def safe_next(target: str | None) -> str:
    """A redirect target from the request, kept on this site."""
    if not target:
        return url_for("web.dashboard")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("web.dashboard")
    return target


# --- authentication and CSRF -------------------------------------------------------


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def require_login():
    """``before_request`` of staff pages: a session of an active user, the tenant context,
    the CSRF token on unsafe requests, and the plan's hidden plugins."""
    from clientela.core.api import auth
    from clientela.core.models import User

    if request.endpoint in ("web.login", "web.static"):
        return None
    if not session.get("user_id"):
        if request.method == "GET":
            return redirect(url_for("web.login", next=request.full_path.rstrip("?")))
        raise Unauthorized("log in first")
    try:
        auth.authenticate_credentials()
    except Unauthorized:
        return redirect(url_for("web.login"))
    who = principal()
    g.web_user = db.session.get(User, (who.tenant_id, who.user_id))
    return None


def login_page():
    from clientela.core.api import auth

    error = None
    email = ""
    status = 200
    if request.method == "POST":
        check_csrf()
        email = (request.form.get("email") or "").strip()
        try:
            user, _csrf = auth.login(email, request.form.get("password") or "")
        except Unauthorized:
            error, status = _("Wrong e-mail or password."), 401
        except RateLimited:
            error, status = _("Too many attempts. Wait a minute and try again."), 429
        else:
            return redirect(landing_page(user) or safe_next(request.args.get("next")))
    return render_template("web/login.html", error=error, email=email), status


def landing_page(user) -> str | None:
    """Where a user of a non-staff role lands after the login form: a web blueprint may
    claim roles with ``blueprint.clientela_landing_roles = ("partner",)``; its ``index``
    view is then the user's home (e.g. the partner portal) instead of the staff dashboard."""
    roles = set(user.roles or [])
    for blueprint in current_app.blueprints.values():
        if roles & set(getattr(blueprint, "clientela_landing_roles", ())):
            return url_for(f"{blueprint.name}.index")
    return None


def check_csrf() -> None:
    import hmac

    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token", "")
    if not sent or not hmac.compare_digest(sent, session.get("csrf", "")):
        raise Forbidden("the form has expired; reload the page and try again")


def logout():
    check_csrf()
    session.clear()
    return redirect(url_for("web.login"))


def set_locale():
    locale = request.form.get("locale")
    if locale not in LOCALES:
        raise ValidationError({"locale": [_("Choose one of the offered languages.")]})
    user = g.web_user
    user.attributes = {**(user.attributes or {}), "locale": locale}
    db.session.commit()
    g.pop("clientela_locale", None)
    return redirect(safe_next(request.form.get("next")))


# --- navigation, dashboard, panels --------------------------------------------------


def nav_items(section: str = "main") -> list[dict[str, Any]]:
    """The navigation entries the user may see: the core's and every plugin's."""
    who = principal()
    items: list[dict[str, Any]] = [
        {"label": _l("Dashboard"), "endpoint": "web.dashboard", "order": 0},
        {"label": _l("Customers"), "endpoint": "web.customers", "order": 10,
         "permission": "customers:read"},
        {"label": _l("Plugins"), "endpoint": "web.plugins", "order": 90,
         "section": "settings", "permission": "users:read"},
        {"label": _l("Users"), "endpoint": "web.settings_users", "order": 10,
         "section": "settings", "permission": "users:read"},
        {"label": _l("Roles"), "endpoint": "web.settings_roles", "order": 20,
         "section": "settings", "permission": "users:read"},
    ]
    for answer in current_app.extensions["clientela"].hook.clientela_web_nav(principal=who):
        items.extend(answer or [])
    shown = []
    for item in items:
        if item.get("section", "main") != section:
            continue
        if item.get("permission") and not who.can(item["permission"]):
            continue
        if item["endpoint"] not in current_app.view_functions:
            continue
        shown.append(item)
    return sorted(shown, key=lambda item: (item.get("order", 50), str(item["label"])))


def _collect(hook_name: str, **kwargs) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    hook = getattr(current_app.extensions["clientela"].hook, hook_name)
    for answer in hook(**kwargs):
        parts.extend(answer or [])
    return sorted(parts, key=lambda part: (part.get("order", 50), str(part.get("title", ""))))


def dashboard_widgets() -> list[dict[str, Any]]:
    who = principal()
    widgets = [_customers_widget(who)] if who.can("customers:read") else []
    widgets += _collect("clientela_web_dashboard_widgets", principal=who)
    return sorted(widgets, key=lambda w: w.get("order", 50))


def customer_panels(customer_id: uuid.UUID) -> list[dict[str, Any]]:
    """The panels plugins add to the customer 360° page."""
    return _collect("clientela_web_customer_panels", customer_id=customer_id,
                    principal=principal())


def _customers_widget(who) -> dict[str, Any]:
    import sqlalchemy as sa

    from clientela.core import customers as customer_service
    from clientela.core.models.customer import LIFECYCLE_STAGES

    stmt = customer_service.customers_query(who).order_by(None)
    sub = stmt.subquery()
    rows = dict(db.session.execute(
        sa.select(sub.c.stage, sa.func.count()).group_by(sub.c.stage)).all())
    data = [(stage_label(stage), rows.get(stage, 0)) for stage in LIFECYCLE_STAGES]
    return {"key": "customers_by_stage", "title": _("Customers by stage"), "order": 5,
            "html": charts.bar_chart(data, label=_("Customers by stage"))}


STAGE_LABELS = {"lead": _l("Lead"), "prospect": _l("Prospect"), "customer": _l("Customer"),
                "former": _l("Former customer")}
DIRECTION_LABELS = {"inbound": _l("Inbound"), "outbound": _l("Outbound"),
                    "internal": _l("Internal")}


def stage_label(stage: str) -> str:
    return str(STAGE_LABELS.get(stage, stage))


def direction_label(direction: str) -> str:
    return str(DIRECTION_LABELS.get(direction, direction))


def channel_label(key: str) -> str:
    """A channel's label from the registry, in the user's language when the catalogue has it."""
    channel = current_app.extensions["clientela"].channels.get(key)
    return i18n.gettext(channel.label) if channel is not None else key


# --- pages --------------------------------------------------------------------------


def dashboard():
    return render_template("web/dashboard.html", widgets=dashboard_widgets())


def plugins_page():
    if not principal().can("users:read"):
        raise Forbidden("you lack the permission users:read")
    ext = current_app.extensions["clientela"]
    hidden = ext.hidden_plugins(g.tenant)
    plugins = sorted(ext.plugins.plugins.values(), key=lambda info: info.name)
    plugins = [info for info in plugins if info.name not in hidden]
    return render_template("web/plugins.html", plugins=plugins)


def error_page(status: int, exc: Exception | None = None):
    """The HTML answer to an error on a page (the API answers JSON)."""
    if status == 401 and request.method == "GET":
        return redirect(url_for("web.login", next=request.full_path.rstrip("?")))
    titles = {
        400: _("The request could not be understood."),
        401: _("Please log in."),
        403: _("You are not allowed to do this."),
        404: _("This page does not exist, or you cannot see it."),
        405: _("This action is not available here."),
        409: _("This conflicts with existing data."),
        413: _("The file is too large."),
        422: _("Some values were not accepted."),
        429: _("Too many requests. Wait a minute and try again."),
        500: _("Something went wrong on our side. It has been logged."),
    }
    title = titles.get(status, titles[500] if status >= 500 else titles[400])
    errors = field_errors(exc) if isinstance(exc, ValidationError) else {}
    detail = i18n.gettext(str(exc)) if isinstance(exc, ClientelaError) and status == 409 else ""
    try:
        html = render_template("web/error.html", status=status, title=title, errors=errors,
                               detail=detail)
    except Exception:  # the error page itself must never fail
        html = f"<!doctype html><title>{status}</title><h1>{status}</h1>"
    response = current_app.make_response((html, status))
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def security_headers(response):
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if request.path.startswith(PREFIX):
            response.headers.setdefault("Cache-Control", "no-store")
    return response


def _template_globals() -> dict[str, Any]:
    return {"csrf_token": csrf_token, "nav_items": nav_items, "charts": charts,
            "stage_label": stage_label,
            "direction_label": direction_label, "channel_label": channel_label, "web_user": lambda: g.get("web_user")}


bp.add_url_rule("/login", "login", login_page, methods=["GET", "POST"])
bp.add_url_rule("/logout", "logout", logout, methods=["POST"])
bp.add_url_rule("/", "dashboard", dashboard)
bp.add_url_rule("/locale", "locale", set_locale, methods=["POST"])
bp.add_url_rule("/settings/plugins", "plugins", plugins_page)
bp.before_request(require_login)


def init_app(app: Flask) -> None:
    from clientela.core.web import customers, imports, settings  # noqa: F401  (core pages)

    ext = app.extensions["clientela"]
    ext.route_owners[bp.name] = "core"
    app.register_blueprint(bp)
    app.add_url_rule("/", "root", lambda: redirect(url_for("web.dashboard")))
    i18n.init_app(app)
    app.jinja_env.globals.update(_template_globals())
    app.extensions["clientela_web_errors"] = error_page
    app.after_request(security_headers)


__all__ = ["staff_blueprint", "requires", "principal", "parse_id", "field_errors",
           "safe_next", "check_csrf", "customer_panels", "charts", "Markup", "_", "_l",
           "flash", "PREFIX"]
