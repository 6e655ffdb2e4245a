"""The operator console of the hosted profile, ``/console/``: HTML pages over the same
services as the operator API (``/operator/api/v1``) — tenants with their plan and usage,
suspend, resume, change plan.

Logging in: the operator pastes an operator token (``clientela operator tokens create
NAME``) into ``/console/login`` once. The session keeps the token's id, never the token;
every request checks that the token still exists and is not revoked, so revoking it
(``clientela operator tokens revoke NAME``) ends its console sessions at once. Writes
need the session's CSRF token, like the staff pages. The on-premise profile does not
register these pages (404).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import uuid

from flask import (Blueprint, Flask, flash, g, redirect, render_template, request, session,
                   url_for)

from clientela.core.api import auth
from clientela.core.db import db, utcnow
from clientela.core.errors import NotFound, RateLimited, ValidationError
from clientela.core.models.plan import OperatorToken
from clientela.core.web import charts, check_csrf, field_errors
from clientela.core.web.i18n import _
from clientela.deployments.hosted import services as hosted

log = logging.getLogger(__name__)

bp = Blueprint("hosted_console", __name__, url_prefix="/console", template_folder="templates")
PUBLIC = {"hosted_console.login"}
TOUCH_INTERVAL = dt.timedelta(minutes=5)


@bp.before_request
def authenticate_operator_session():
    if request.endpoint in PUBLIC:
        return None
    token = None
    raw_id = session.get("operator_token_id")
    if raw_id:
        try:
            token = db.session.get(OperatorToken, uuid.UUID(raw_id))
        except ValueError:
            token = None
    if token is None or token.revoked_at is not None:
        session.pop("operator_token_id", None)
        return redirect(url_for("hosted_console.login", next=request.path))
    g.operator = token.name
    if token.last_used_at is None or utcnow() - token.last_used_at > TOUCH_INTERVAL:
        token.last_used_at = utcnow()
        db.session.commit()
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        check_csrf()
        log.info("operator %s (console): %s %s", token.name, request.method, request.path)
    return None


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    if request.method == "POST":
        check_csrf()
        try:
            auth.check_login_rate("operator-console")
        except RateLimited:
            error = _("Too many attempts. Wait a minute and try again.")
        else:
            token = hosted.authenticate_operator_token((request.form.get("token") or "").strip())
            if token is None:
                error = _("This is not a valid operator token.")
            else:
                session.clear()
                session["operator_token_id"] = str(token.id)
                session["csrf"] = secrets.token_urlsafe(32)  # a new session, a new token
                session.permanent = False  # ends with the browser
                log.info("operator %s logged in to the console", token.name)
                target = request.args.get("next") or ""
                if not target.startswith("/console/") or target.startswith("//"):
                    target = url_for("hosted_console.tenants")
                return redirect(target)
    return render_template("hosted/login.html", error=error), 401 if error else 200


@bp.route("/logout", methods=["POST"])
def logout():
    session.clear()
    return redirect(url_for("hosted_console.login"))


def _plans():
    return hosted.list_plans()


@bp.route("/")
def tenants():
    usage = {row["tenant"]: row for row in hosted.usage_report(days=1)}
    rows = hosted.list_tenants()
    return render_template("hosted/tenants.html", tenants=rows, usage=usage, plans=_plans(),
                           errors={})


@bp.route("/tenants/<slug>")
def tenant(slug: str):
    found = hosted.services.get_tenant(slug)
    usage = hosted.usage_report(slug, days=30)
    chart = charts.column_chart([(row["day"][5:], row["api_calls"]) for row in usage],
                                label=_("API calls per day"))
    return render_template("hosted/tenant.html", tenant=found, usage=usage, chart=chart,
                           plans=_plans(), plugins=sorted(hosted.enabled_plugins(found)))


def _back(slug: str):
    if request.form.get("back") == "tenant":
        return redirect(url_for("hosted_console.tenant", slug=slug))
    return redirect(url_for("hosted_console.tenants"))


@bp.route("/tenants/<slug>/suspend", methods=["POST"])
def suspend(slug: str):
    hosted.suspend_tenant(slug)
    flash(_("Tenant %(slug)s suspended.", slug=slug), "success")
    return _back(slug)


@bp.route("/tenants/<slug>/resume", methods=["POST"])
def resume(slug: str):
    hosted.resume_tenant(slug)
    flash(_("Tenant %(slug)s resumed.", slug=slug), "success")
    return _back(slug)


@bp.route("/tenants/<slug>/plan", methods=["POST"])
def change_plan(slug: str):
    hosted.services.get_tenant(slug)  # 404 first
    plan = request.form.get("plan") or None
    try:
        if plan is not None:
            try:
                hosted.get_plan(plan)
            except NotFound:
                raise ValidationError({"plan": [_("There is no plan %(plan)s.", plan=plan)]}
                                      ) from None
        hosted.change_plan(slug, plan)
    except ValidationError as exc:
        db.session.rollback()
        usage = {row["tenant"]: row for row in hosted.usage_report(days=1)}
        return render_template("hosted/tenants.html", tenants=hosted.list_tenants(),
                               usage=usage, plans=_plans(),
                               errors={slug: field_errors(exc)}), 422
    flash(_("Tenant %(slug)s moved to plan %(plan)s.", slug=slug, plan=plan or _("none")),
          "success")
    return _back(slug)


def init_app(app: Flask) -> None:
    """Register the console (the hosted profile calls this; on-premise has no console)."""
    ext = app.extensions["clientela"]
    ext.route_owners[bp.name] = "profile hosted"
    app.register_blueprint(bp)


__all__ = ["bp", "init_app"]
