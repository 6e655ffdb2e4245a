"""Settings pages: the tenant's users (create, roles, deactivate) and roles (built-in and
custom). The same services and rules as ``/api/v1/users`` and ``/api/v1/roles``: reading
needs ``users:read``, every change ``users:write``."""

from __future__ import annotations

from typing import Any

import marshmallow
from flask import current_app, flash, redirect, render_template, request, url_for

from clientela.core import access, security, services
from clientela.core.api import schemas
from clientela.core.api.admin import _check_roles, _get_user
from clientela.core.db import db
from clientela.core.errors import Conflict, ValidationError
from clientela.core.models import Role, User
from clientela.core.web import bp, field_errors, i18n, parse_id, principal, requires
from clientela.core.web.customers import schema_errors
from clientela.core.web.i18n import _, _l

SCOPE_LABELS = {"own": _l("Own records"), "team": _l("Team's records"), "all": _l("All records")}


def _role_names() -> list[str]:
    return sorted(access.known_role_names())


def _load(schema: marshmallow.Schema, raw: dict[str, Any]) -> dict[str, Any]:
    try:
        return schema.load(raw)
    except marshmallow.ValidationError as exc:
        raise schema_errors(exc) from None


# --- users ------------------------------------------------------------------------------


def _users_page(values=None, errors=None, status=200, created=None, password=None):
    users = db.session.execute(db.select(User).order_by(User.email)).scalars().all()
    return render_template(
        "web/settings_users.html", users=users, role_names=_role_names(),
        values=values or {"roles": []}, errors=errors or {}, created=created,
        password=password, can_write=principal().can("users:write"),
        me=principal().user_id), status


@bp.route("/settings/users", methods=["GET", "POST"])
@requires("users:read")
def settings_users():
    if request.method == "GET":
        return _users_page()
    access.require(principal(), "users:write")
    form = request.form
    values = {"email": (form.get("email") or "").strip(), "name": (form.get("name") or "").strip(),
              "roles": form.getlist("roles")}
    raw = dict(values)
    password = form.get("password") or ""
    if password:
        raw["password"] = password
    try:
        data = _load(schemas.UserInput(), raw)
        _check_roles(data["roles"])
        generated = None if data.get("password") else security.generate_password()
        user = services.create_user(data["email"], roles=data["roles"],
                                    password=data.get("password") or generated,
                                    name=data["name"])
        db.session.commit()
    except ValidationError as exc:
        db.session.rollback()
        return _users_page(values, field_errors(exc), 422)
    except Conflict as exc:
        db.session.rollback()
        return _users_page(values, {"email": [i18n.gettext(str(exc))]}, 409)
    # the generated password is shown on this answer only (never stored in the session)
    return _users_page(created=user, password=generated)


@bp.route("/settings/users/<user_id>", methods=["GET", "POST"])
@requires("users:read")
def settings_user(user_id: str):
    who = principal()
    user = _get_user(parse_id(user_id))
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        access.require(who, "users:write")
        raw = {"name": (request.form.get("name") or "").strip(),
               "roles": request.form.getlist("roles")}
        try:
            data = _load(schemas.UserUpdate(), raw)
            _check_roles(data["roles"])
            if user.id == who.user_id and "admin" in user.roles and "admin" not in data["roles"]:
                raise ValidationError({"roles": [_("You cannot remove your own admin role.")]})
            user.name, user.roles = data["name"], data["roles"]
            db.session.commit()
        except ValidationError as exc:
            db.session.rollback()
            errors, status = field_errors(exc), 422
        else:
            flash(_("User %(email)s saved.", email=user.email), "success")
            return redirect(url_for("web.settings_users"))
    values = ({"name": request.form.get("name", ""), "roles": request.form.getlist("roles")}
              if errors else {"name": user.name, "roles": list(user.roles)})
    return render_template("web/settings_user.html", user=user, values=values, errors=errors,
                           role_names=_role_names(), can_write=who.can("users:write")), status


@bp.route("/settings/users/<user_id>/active", methods=["POST"])
@requires("users:write")
def settings_user_active(user_id: str):
    who = principal()
    user = _get_user(parse_id(user_id))
    active = request.form.get("is_active") == "1"
    if not active and user.id == who.user_id:
        raise Conflict("you cannot deactivate yourself")
    user.is_active = active
    db.session.commit()
    flash((_("User %(email)s reactivated.", email=user.email) if active
           else _("User %(email)s deactivated.", email=user.email)), "success")
    return redirect(url_for("web.settings_users"))


# --- roles ------------------------------------------------------------------------------


def _permissions() -> dict[str, str]:
    return dict(sorted(current_app.extensions["clientela"].permissions.items()))


def scope_label(scope: str) -> str:
    return str(SCOPE_LABELS.get(scope, scope))


@bp.route("/settings/roles")
@requires("users:read")
def settings_roles():
    builtin = sorted(access.builtin_roles().items())
    custom = db.session.execute(db.select(Role).order_by(Role.name)).scalars().all()
    return render_template("web/settings_roles.html", builtin=builtin, custom=custom,
                           permissions=_permissions(), scope_label=scope_label,
                           can_write=principal().can("users:write"))


def _role_form_permissions(form) -> dict[str, str]:
    return {perm: form.get(f"perm:{perm}") for perm in _permissions()
            if form.get(f"perm:{perm}")}


def _role_page(role: Role | None, values: dict[str, Any], errors=None, status=200):
    return render_template("web/settings_role.html", role=role, values=values,
                           errors=errors or {}, permissions=_permissions(),
                           scopes=[(s, scope_label(s)) for s in access.SCOPES]), status


@bp.route("/settings/roles/new", methods=["GET", "POST"])
@requires("users:write")
def settings_new_role():
    if request.method == "GET":
        return _role_page(None, {"name": "", "description": "", "permissions": {}})
    values = {"name": (request.form.get("name") or "").strip(),
              "description": (request.form.get("description") or "").strip(),
              "permissions": _role_form_permissions(request.form)}
    try:
        data = _load(schemas.RoleInput(), values)
        role = access.create_role(data["name"], data["permissions"], data["description"])
        db.session.commit()
    except ValidationError as exc:
        db.session.rollback()
        return _role_page(None, values, field_errors(exc), 422)
    except Conflict as exc:
        db.session.rollback()
        return _role_page(None, values, {"name": [i18n.gettext(str(exc))]}, 409)
    flash(_("Role %(name)s created.", name=role.name), "success")
    return redirect(url_for("web.settings_roles"))


@bp.route("/settings/roles/<role_id>", methods=["GET", "POST"])
@requires("users:write")
def settings_role(role_id: str):
    role = access.get_role(parse_id(role_id))
    if request.method == "GET":
        return _role_page(role, {"name": role.name, "description": role.description,
                                 "permissions": dict(role.permissions)})
    values = {"name": role.name, "description": (request.form.get("description") or "").strip(),
              "permissions": _role_form_permissions(request.form)}
    try:
        data = _load(schemas.RoleUpdate(), {k: values[k] for k in ("description", "permissions")})
        role.permissions = access.validate_role_permissions(data["permissions"])
        role.description = data["description"]
        db.session.commit()
    except ValidationError as exc:
        db.session.rollback()
        return _role_page(access.get_role(role.id), values, field_errors(exc), 422)
    flash(_("Role %(name)s saved.", name=role.name), "success")
    return redirect(url_for("web.settings_roles"))


@bp.route("/settings/roles/<role_id>/delete", methods=["POST"])
@requires("users:write")
def settings_delete_role(role_id: str):
    role = access.get_role(parse_id(role_id))
    if access.role_in_use(role.name):
        raise Conflict(f"role '{role.name}' is still held by users")
    name = role.name
    db.session.delete(role)
    db.session.commit()
    flash(_("Role %(name)s deleted.", name=name), "success")
    return redirect(url_for("web.settings_roles"))


