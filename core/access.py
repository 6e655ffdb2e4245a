"""Who may do what: the principal of a request or command, roles, permissions and record scope.

Permissions are declared by the core and by plugins (``clientela_permissions``); roles map
to permissions, each with a record scope — ``own`` (records the user owns), ``team``
(records owned by the user's team mates, answered by ``clientela_team_members``) or
``all``. Built-in roles come from ``clientela_roles``; a tenant adds its own (``Role``).
Scope is enforced in the query (``scope_filter``), never by filtering results after it.
"""

from __future__ import annotations

import dataclasses
import uuid

from flask import current_app

from clientela.core.db import db
from clientela.core.errors import Conflict, Forbidden, NotFound, ValidationError
from clientela.core.models import Role, User

SCOPES = ("own", "team", "all")
_RANK = {scope: i for i, scope in enumerate(SCOPES)}


@dataclasses.dataclass
class Principal:
    """The authenticated actor: a staff user of one tenant, with resolved permissions."""

    user_id: uuid.UUID
    tenant_id: uuid.UUID
    email: str
    roles: list[str]
    permissions: dict[str, str]  # permission -> broadest scope granted
    via: str = "token"  # token | session | cli

    def scope(self, permission: str) -> str | None:
        return self.permissions.get(permission)

    def can(self, permission: str) -> bool:
        return permission in self.permissions


def _ext():
    return current_app.extensions["clientela"]


def builtin_roles() -> dict[str, dict[str, str]]:
    return _ext().roles


def custom_roles() -> dict[str, Role]:
    return {r.name: r for r in db.session.execute(db.select(Role)).scalars()}


def resolve_permissions(role_names: list[str]) -> dict[str, str]:
    """The union of the roles' permissions, keeping the broadest scope of each."""
    builtin = builtin_roles()
    custom = None
    granted: dict[str, str] = {}
    for name in role_names:
        perms = builtin.get(name)
        if perms is None:
            if custom is None:
                custom = custom_roles()
            role = custom.get(name)
            perms = role.permissions if role is not None else {}
        for perm, scope in perms.items():
            if perm not in granted or _RANK[scope] > _RANK[granted[perm]]:
                granted[perm] = scope
    return granted


def principal_for(user: User, via: str) -> Principal:
    return Principal(
        user_id=user.id,
        tenant_id=user.tenant_id,
        email=user.email,
        roles=list(user.roles),
        permissions=resolve_permissions(list(user.roles)),
        via=via,
    )


def require(principal: Principal, permission: str) -> str:
    """The scope ``principal`` holds for ``permission``; raises ``Forbidden`` without it."""
    scope = principal.scope(permission)
    if scope is None:
        raise Forbidden(f"you lack the permission '{permission}'")
    return scope


def team_member_ids(principal: Principal) -> set[uuid.UUID]:
    """The user and the members of the user's teams (from plugins; the user alone without)."""
    ids = {principal.user_id}
    for answer in _ext().hook.clientela_team_members(user_id=principal.user_id):
        ids.update(answer or [])
    return ids


def owner_ids_in_scope(principal: Principal, permission: str) -> set[uuid.UUID] | None:
    """The owners whose records ``permission`` reaches; ``None`` means every record."""
    scope = require(principal, permission)
    if scope == "all":
        return None
    if scope == "team":
        return team_member_ids(principal)
    return {principal.user_id}


def scope_filter(stmt, owner_column, principal: Principal, permission: str):
    """Add the record-scope condition of ``permission`` to ``stmt`` (a WHERE on the owner)."""
    owners = owner_ids_in_scope(principal, permission)
    if owners is None:
        return stmt
    return stmt.where(owner_column.in_(owners))


def in_scope(owner_id: uuid.UUID | None, principal: Principal, permission: str) -> bool:
    owners = owner_ids_in_scope(principal, permission)
    return owners is None or owner_id in owners


def check_record(owner_id: uuid.UUID | None, principal: Principal, read: str, write: str) -> None:
    """For a write to a record: 404 if it is outside the read scope, 403 if only the write
    permission or scope is missing (the caller may see the record, so saying so leaks nothing)."""
    if not in_scope(owner_id, principal, read):
        raise NotFound("not found")
    if principal.scope(write) is None or not in_scope(owner_id, principal, write):
        raise Forbidden(f"you lack the permission '{write}' on this record")


# --- custom roles -------------------------------------------------------------


def validate_role_permissions(permissions: dict[str, str]) -> dict[str, str]:
    known = _ext().permissions
    errors = {}
    for perm, scope in permissions.items():
        if perm not in known:
            errors[perm] = ["unknown permission"]
        elif scope not in SCOPES:
            errors[perm] = [f"scope must be one of {', '.join(SCOPES)}"]
    if errors:
        raise ValidationError({"permissions": [f"{k}: {v[0]}" for k, v in errors.items()]})
    return dict(permissions)


def create_role(name: str, permissions: dict[str, str], description: str = "") -> Role:
    if name in builtin_roles():
        raise Conflict(f"'{name}' is a built-in role")
    if db.session.execute(db.select(Role.id).where(Role.name == name)).first():
        raise Conflict(f"role '{name}' already exists")
    role = Role(name=name, description=description,
                permissions=validate_role_permissions(permissions))
    db.session.add(role)
    db.session.flush()
    return role


def get_role(role_id: uuid.UUID) -> Role:
    role = db.session.execute(db.select(Role).where(Role.id == role_id)).scalar_one_or_none()
    if role is None:
        raise NotFound("role not found")
    return role


def role_in_use(name: str) -> bool:
    users = db.session.execute(db.select(User.roles)).scalars()
    return any(name in roles for roles in users)


def known_role_names() -> set[str]:
    return set(builtin_roles()) | set(custom_roles())


__all__ = ["Principal", "SCOPES", "check_record", "require", "scope_filter"]
