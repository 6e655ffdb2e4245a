"""``/api/v1/auth``, ``/me``, ``/users``, ``/roles``, ``/tokens`` and ``/audit``."""

from __future__ import annotations

import uuid

from flask import g, session
from flask.views import MethodView
from flask_smorest import Blueprint

from clientela.core import access, services
from clientela.core.api import schemas
from clientela.core.api.auth import current_principal, login
from clientela.core.customers import paginated
from clientela.core.db import db, utcnow
from clientela.core.errors import Conflict, NotFound, ValidationError
from clientela.core.models import ApiToken, AuditEvent, Role, User

auth_blp = Blueprint("auth", __name__, url_prefix="/auth", description="Password sessions")
me_blp = Blueprint("me", __name__, url_prefix="/me", description="The authenticated user")
users_blp = Blueprint("users", __name__, url_prefix="/users", description="Staff users")
roles_blp = Blueprint("roles", __name__, url_prefix="/roles", description="Roles and permissions")
tokens_blp = Blueprint("tokens", __name__, url_prefix="/tokens", description="API tokens")
audit_blp = Blueprint("audit", __name__, url_prefix="/audit", description="The audit trail")


@auth_blp.route("/login")
class Login(MethodView):
    @auth_blp.arguments(schemas.Login)
    @auth_blp.response(200, schemas.Session)
    def post(self, data):
        """Open a browser session (cookie) with e-mail and password. Rate limited."""
        user, csrf = login(data["email"], data["password"])
        return {"user": user, "csrf_token": csrf}


@auth_blp.route("/logout")
class Logout(MethodView):
    @auth_blp.response(204)
    def post(self):
        """Close the session."""
        current_principal()
        session.clear()


# --- me and users ----------------------------------------------------------------


@me_blp.route("")
class Me(MethodView):
    @me_blp.response(200, schemas.Me)
    def get(self):
        """Who you are, your roles and your permissions with their scopes."""
        principal = current_principal()
        user = db.session.execute(db.select(User).where(User.id == principal.user_id)).scalar_one()
        tenant = g.tenant
        me = {field: getattr(user, field) for field in schemas.User().fields}
        return {**me, "permissions": principal.permissions,
                "tenant": {"id": str(tenant.id), "slug": tenant.slug, "name": tenant.name}}


def _check_roles(roles: list[str]) -> None:
    unknown = sorted(set(roles) - access.known_role_names())
    if unknown:
        raise ValidationError({"roles": [f"unknown role: {', '.join(unknown)}"]})


def _get_user(user_id: uuid.UUID) -> User:
    user = db.session.execute(db.select(User).where(User.id == user_id)).scalar_one_or_none()
    if user is None:
        raise NotFound("user not found")
    return user


@users_blp.route("")
class Users(MethodView):
    @users_blp.response(200, schemas.User(many=True))
    @users_blp.paginate()
    def get(self, pagination_parameters):
        """The tenant's users."""
        access.require(current_principal(), "users:read")
        return paginated(db.select(User).order_by(User.email), pagination_parameters)

    @users_blp.arguments(schemas.UserInput)
    @users_blp.response(201, schemas.User)
    def post(self, data):
        """Create a user (admins)."""
        access.require(current_principal(), "users:write")
        _check_roles(data["roles"])
        user = services.create_user(data["email"], roles=data["roles"],
                                    password=data.get("password"), name=data["name"])
        db.session.commit()
        return user


@users_blp.route("/<uuid:user_id>")
class UserById(MethodView):
    @users_blp.response(200, schemas.User)
    def get(self, user_id: uuid.UUID):
        """One user."""
        principal = current_principal()
        if user_id != principal.user_id:
            access.require(principal, "users:read")
        return _get_user(user_id)

    @users_blp.arguments(schemas.UserUpdate)
    @users_blp.response(200, schemas.User)
    def patch(self, data, user_id: uuid.UUID):
        """Change a user's name, roles, password or whether it is active (admins)."""
        principal = current_principal()
        user = _get_user(user_id)
        access.require(principal, "users:write")
        if "roles" in data:
            _check_roles(data["roles"])
            if user.id == principal.user_id and "admin" in user.roles and "admin" not in data["roles"]:
                raise Conflict("you cannot remove your own admin role")
        if data.get("is_active") is False and user.id == principal.user_id:
            raise Conflict("you cannot deactivate yourself")
        password = data.pop("password", None)
        for key, value in data.items():
            setattr(user, key, value)
        if password:
            user.password_hash = services.security.hash_password(password)
        db.session.commit()
        return user


# --- roles -------------------------------------------------------------------------


def _role_rows() -> list[dict]:
    rows = [{"id": None, "name": name, "description": "built-in", "builtin": True,
             "permissions": perms} for name, perms in sorted(access.builtin_roles().items())]
    for role in db.session.execute(db.select(Role).order_by(Role.name)).scalars():
        rows.append({"id": role.id, "name": role.name, "description": role.description,
                     "builtin": False, "permissions": role.permissions})
    return rows


def _role_row(role: Role) -> dict:
    return {"id": role.id, "name": role.name, "description": role.description,
            "builtin": False, "permissions": role.permissions}


@roles_blp.route("")
class Roles(MethodView):
    @roles_blp.response(200, schemas.Role(many=True))
    def get(self):
        """Built-in and custom roles with their permissions and scopes."""
        access.require(current_principal(), "users:read")
        return _role_rows()

    @roles_blp.arguments(schemas.RoleInput)
    @roles_blp.response(201, schemas.Role)
    def post(self, data):
        """Define a custom role for this tenant (admins)."""
        access.require(current_principal(), "users:write")
        role = access.create_role(data["name"], data["permissions"], data["description"])
        db.session.commit()
        return _role_row(role)


@roles_blp.route("/<uuid:role_id>")
class RoleById(MethodView):
    @roles_blp.response(200, schemas.Role)
    def get(self, role_id: uuid.UUID):
        """One custom role."""
        access.require(current_principal(), "users:read")
        return _role_row(access.get_role(role_id))

    @roles_blp.arguments(schemas.RoleUpdate)
    @roles_blp.response(200, schemas.Role)
    def patch(self, data, role_id: uuid.UUID):
        """Change a custom role (admins)."""
        access.require(current_principal(), "users:write")
        role = access.get_role(role_id)
        if "permissions" in data:
            role.permissions = access.validate_role_permissions(data["permissions"])
        if "description" in data:
            role.description = data["description"]
        db.session.commit()
        return _role_row(role)

    @roles_blp.response(204)
    def delete(self, role_id: uuid.UUID):
        """Delete a custom role no user holds (admins)."""
        access.require(current_principal(), "users:write")
        role = access.get_role(role_id)
        if access.role_in_use(role.name):
            raise Conflict(f"role '{role.name}' is still held by users")
        db.session.delete(role)
        db.session.commit()


# --- tokens ------------------------------------------------------------------------


def _token_query(principal):
    stmt = db.select(ApiToken).order_by(ApiToken.created_at.desc())
    if not principal.can("users:write"):
        stmt = stmt.where(ApiToken.user_id == principal.user_id)
    return stmt


@tokens_blp.route("")
class Tokens(MethodView):
    @tokens_blp.response(200, schemas.Token(many=True))
    def get(self):
        """Your tokens (admins see every token of the tenant). Never the token itself."""
        return db.session.execute(_token_query(current_principal())).scalars().all()

    @tokens_blp.arguments(schemas.TokenInput)
    @tokens_blp.response(201, schemas.NewToken)
    def post(self, data):
        """Create a token for yourself; the response is the only time it is shown."""
        principal = current_principal()
        access.require(principal, "tokens:write")
        if data.get("expires_at") and data["expires_at"] <= utcnow():
            raise ValidationError({"expires_at": ["must be in the future"]})
        user = _get_user(principal.user_id)
        token, raw = services.create_token(user, name=data["name"],
                                           expires_at=data.get("expires_at"))
        db.session.commit()
        token.token = raw  # only on this response object; never stored
        return token


@tokens_blp.route("/<uuid:token_id>")
class TokenById(MethodView):
    @tokens_blp.response(200, schemas.Token)
    def get(self, token_id: uuid.UUID):
        """One token's metadata."""
        return self._get(token_id)

    @tokens_blp.response(204)
    def delete(self, token_id: uuid.UUID):
        """Revoke a token."""
        token = self._get(token_id)
        if token.revoked_at is None:
            token.revoked_at = utcnow()
            db.session.commit()

    @staticmethod
    def _get(token_id):
        stmt = _token_query(current_principal()).where(ApiToken.id == token_id)
        token = db.session.execute(stmt).scalar_one_or_none()
        if token is None:
            raise NotFound("token not found")
        return token


# --- audit -------------------------------------------------------------------------


@audit_blp.route("")
class Audit(MethodView):
    @audit_blp.arguments(schemas.AuditQuery, location="query")
    @audit_blp.response(200, schemas.AuditEvent(many=True))
    @audit_blp.paginate()
    def get(self, args, pagination_parameters):
        """The audit trail, newest first (admins and managers)."""
        access.require(current_principal(), "audit:read")
        stmt = db.select(AuditEvent)
        for key in ("entity_type", "entity_id", "actor_id", "action"):
            if key in args:
                stmt = stmt.where(getattr(AuditEvent, key) == args[key])
        if "since" in args:
            stmt = stmt.where(AuditEvent.created_at >= args["since"])
        if "until" in args:
            stmt = stmt.where(AuditEvent.created_at < args["until"])
        stmt = stmt.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
        return paginated(stmt, pagination_parameters)


BLUEPRINTS = [auth_blp, me_blp, users_blp, roles_blp, tokens_blp, audit_blp]
