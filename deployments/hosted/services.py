"""The hosted operator's business functions: plans, tenant lifecycle, quotas and usage.

They take plain arguments and need no request, so the CLI (``clientela tenants ...``) and
the operator API (``/operator/api/v1``) call the same code. Functions that change data
commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import uuid
from typing import Any

import sqlalchemy as sa
from flask import current_app

from clientela.core import archive, services, tenancy
from clientela.core.db import db, utcnow
from clientela.core.errors import Conflict, Forbidden, NotFound, ValidationError
from clientela.core.models import Customer, OperatorToken, Plan, Tenant, TenantUsage

#: where a tenant's files live (warehouse, uploads): ``$CLIENTELA_HOME/tenants/<id>/``
TENANT_FILES = "tenants"


# --- plans ---------------------------------------------------------------------


def create_plan(name: str, *, title: str = "", plugins: list[str] | None = None,
                max_records: int | None = None, api_requests_per_minute: int | None = None,
                max_storage_bytes: int | None = None) -> Plan:
    """Create or replace a plan. ``plugins=None``: every installed plugin. Commits."""
    if not services.SLUG_RE.match(name or ""):
        raise ValidationError({"name": ["use lower-case letters, digits and hyphens"]})
    if plugins is not None:
        installed = set(current_app.extensions["clientela"].plugins.plugins)
        unknown = sorted(set(plugins) - installed)
        if unknown:
            raise ValidationError({"plugins": [f"not installed: {', '.join(unknown)}"]})
    plan = db.session.get(Plan, name) or Plan(name=name)
    plan.title = title or name
    plan.plugins = sorted(set(plugins)) if plugins is not None else None
    plan.max_records = max_records
    plan.api_requests_per_minute = api_requests_per_minute
    plan.max_storage_bytes = max_storage_bytes
    db.session.add(plan)
    db.session.commit()
    return plan


def get_plan(name: str | None) -> Plan | None:
    if name is None:
        return None
    plan = db.session.get(Plan, name)
    if plan is None:
        raise NotFound(f"no plan '{name}'")
    return plan


def list_plans() -> list[Plan]:
    return list(db.session.execute(db.select(Plan).order_by(Plan.name)).scalars())


def _plan_plugins(tenant: Tenant) -> set[str]:
    """The plan's plugins with what they require, among those enabled on the instance."""
    registry = current_app.extensions["clientela"].plugins
    enabled = {info.name for info in registry.enabled()}
    plan = db.session.get(Plan, tenant.plan) if tenant.plan else None
    if plan is None or plan.plugins is None:
        return enabled
    wanted, todo = set(), list(plan.plugins)
    while todo:
        name = todo.pop()
        if name in wanted or name not in registry.plugins:
            continue
        wanted.add(name)
        todo.extend(registry.plugins[name].requires)
    return wanted & enabled


def enabled_plugins(tenant: Tenant) -> set[str]:
    """The plugins ``tenant`` may use: its plan's (with what they require), among those
    enabled on the instance, minus what the tenant switched off (and what requires it)."""
    registry = current_app.extensions["clientela"].plugins
    result = _plan_plugins(tenant)
    off = set((tenant.settings or {}).get("plugins_disabled", []))
    changed = True
    while changed:
        changed = False
        for name in sorted(result):
            info = registry.plugins.get(name)
            if name in off or (info is not None and set(info.requires) - result):
                result.discard(name)
                changed = True
    return result


def set_plugin_enabled(slug: str, name: str, enabled: bool) -> str:
    """Switch a plugin of the tenant's plan off or on again for that tenant; commits."""
    tenant = services.get_tenant(slug)
    if enabled and name not in _plan_plugins(tenant):
        raise Forbidden(f"plugin '{name}' is not in the plan of tenant '{slug}' "
                        f"({tenant.plan or 'no plan'})")
    off = set((tenant.settings or {}).get("plugins_disabled", []))
    off = off - {name} if enabled else off | {name}
    tenant.settings = {**tenant.settings, "plugins_disabled": sorted(off)}
    db.session.commit()
    return f"plugin '{name}' {'enabled' if enabled else 'disabled'} for tenant '{slug}'"


# --- lifecycle -------------------------------------------------------------------


def provision_tenant(slug: str, *, name: str | None = None, plan: str | None = None,
                     admin_email: str | None = None) -> dict[str, Any]:
    """Create a tenant on ``plan`` and, with ``admin_email``, its first admin and an API token.

    Returns ``{"tenant", "admin", "password", "token"}``: the tenant, the admin's e-mail
    and the secrets (shown once). Objects of the tenant are not returned: outside its
    context Row-Level Security hides them.
    """
    get_plan(plan)
    if admin_email is not None:
        services.normalise_email(admin_email, field="admin_email")
    tenant = services.create_tenant(slug, name=name, plan=plan)
    result: dict[str, Any] = {"tenant": tenant, "admin": None, "password": None, "token": None}
    if admin_email:
        with tenancy.tenant_context(tenant.id, origin="cli"):
            password = services.security.generate_password()
            admin = services.create_user(admin_email, roles=["admin"], password=password,
                                         name="Administrator")
            _, token = services.create_token(admin, name="provisioning")
            email = admin.email
            db.session.commit()
        result.update(admin=email, password=password, token=token)
    return result


def change_plan(slug: str, plan: str | None) -> Tenant:
    """Move the tenant to ``plan`` (``None``: no plan, every plugin, no quota). Commits.

    The plugins and quotas of the new plan apply from the tenant's next request; data of
    plugins the new plan leaves out is kept (hidden, not deleted).
    """
    get_plan(plan)
    tenant = services.get_tenant(slug)
    tenant.plan = plan
    db.session.commit()
    return tenant


def list_tenants() -> list[Tenant]:
    return list(db.session.execute(db.select(Tenant).order_by(Tenant.slug)).scalars())


def _set_status(slug: str, status: str) -> Tenant:
    tenant = services.get_tenant(slug)
    tenant.status = status
    db.session.commit()
    return tenant


def suspend_tenant(slug: str) -> Tenant:
    """Stop every request and command of the tenant; its data stays. Commits."""
    return _set_status(slug, "suspended")


def resume_tenant(slug: str) -> Tenant:
    return _set_status(slug, "active")


def ensure_active(tenant: Tenant) -> None:
    """Raise ``Forbidden`` for a suspended tenant (the API answers 403 with this message)."""
    if tenant.status != "active":
        raise Forbidden(f"tenant '{tenant.slug}' is {tenant.status}: contact your provider")


def export_tenant(slug: str, path: str) -> dict[str, Any]:
    """Write every row of the tenant (every plugin's tables) to an archive at ``path``.

    The archive is the one ``clientela restore`` of the on-premise profile reads: a
    customer can take it to a server of their own. Records the export on the tenant,
    which ``delete_tenant`` asks for. Returns the manifest.
    """
    tenant = services.get_tenant(slug)
    tenant_id, tenant_slug = tenant.id, tenant.slug
    db.session.commit()  # the export reads in a snapshot transaction of its own
    home = current_app.config["HOME"]
    folder = os.path.join(home, TENANT_FILES, str(tenant_id))
    files = {}
    for root, _dirs, names in os.walk(folder):
        for name in names:
            full = os.path.join(root, name)
            files[os.path.join(TENANT_FILES, str(tenant_id), os.path.relpath(full, folder))] = full
    with tenancy.tenant_context(tenant_id, origin="cli"), db.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            manifest = archive.write(
                path, conn, db.metadata, scope="tenant",
                tenant={"id": tenant_id, "slug": tenant_slug}, files=files,
                source={"profile": current_app.config["PROFILE"]},
            )
    with open(path, "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    tenant = services.get_tenant(slug)
    tenant.settings = {**tenant.settings, "last_export": {
        "at": manifest["created_at"], "file": os.path.abspath(path), "sha256": digest,
        "rows": sum(t["rows"] for t in manifest["tables"]),
    }}
    db.session.commit()
    return manifest


def import_tenant(path: str) -> dict[str, Any]:
    """Load a tenant from an archive: a hosted export, or an on-premise backup (one tenant).

    The way into the hosted service from a server of one's own. Refuses a slug or an
    id already taken; loads everything or nothing. Returns the manifest.
    """
    manifest = archive.read_manifest(path)
    tenant = archive.archived_tenant(path, manifest)
    if db.session.execute(db.select(Tenant.id).where(Tenant.slug == tenant["slug"])).first():
        raise Conflict(f"tenant '{tenant['slug']}' already exists")
    if db.session.get(Tenant, uuid.UUID(tenant["id"])) is not None:
        raise Conflict(f"tenant {tenant['id']} already exists (under another slug)")
    db.session.commit()
    return archive.load_tenant(path)


def delete_tenant(slug: str, *, force: bool = False) -> dict[str, int]:
    """Remove every row of the tenant, in every table, then the tenant itself. Commits.

    Refuses unless the tenant was exported (``export_tenant``) or ``force`` is given.
    Returns the rows deleted per table.
    """
    tenant = services.get_tenant(slug)
    if not force and not tenant.settings.get("last_export"):
        raise Conflict(
            f"tenant '{slug}' has never been exported: run 'clientela tenants export {slug} "
            "FILE' first (or delete with --force)"
        )
    tenant_id = tenant.id
    deleted: dict[str, int] = {}
    with tenancy.tenant_context(tenant_id, origin="cli"), tenancy.unscoped():
        conn = db.session.connection()
        known = archive.archived_tables(db.metadata, "tenant")
        # tables the loaded models do not describe (a plugin disabled since) go first:
        # nothing of the core refers to them
        present = set(sa.inspect(conn).get_table_names())
        others = sorted(_tables_with_tenant_id(conn) - {t.name for t in known})
        for name in others:
            table = sa.table(name, sa.column("tenant_id"))
            deleted[name] = db.session.execute(
                sa.delete(table).where(table.c.tenant_id == tenant_id)).rowcount
        for table in reversed(known):
            if table.name == archive.TENANTS_TABLE or table.name not in present:
                continue
            deleted[table.name] = db.session.execute(
                sa.delete(table).where(table.c.tenant_id == tenant_id)).rowcount
        tenants = Tenant.__table__
        deleted["tenants"] = db.session.execute(
            sa.delete(tenants).where(tenants.c.id == tenant_id)).rowcount
    db.session.commit()
    _forget_counters(tenant_id)
    return deleted


def _tables_with_tenant_id(conn: sa.Connection) -> set[str]:
    inspector = sa.inspect(conn)
    return {
        name for name in inspector.get_table_names()
        if any(c["name"] == "tenant_id" for c in inspector.get_columns(name))
    }


# --- operator tokens ---------------------------------------------------------------


def create_operator_token(name: str) -> tuple[OperatorToken, str]:
    """A new token of the operator API; returns the row and the token (shown once). Commits.

    Operator tokens are a kind of their own (prefix ``clo_``, table ``operator_tokens``):
    they belong to no tenant and are never accepted by ``/api/v1``, as tenant tokens are
    never accepted by ``/operator/api/v1``.
    """
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationError({"name": ["give the token a name of 1-100 characters"]})
    if db.session.execute(db.select(OperatorToken.id).where(OperatorToken.name == name)).first():
        raise Conflict(f"operator token '{name}' already exists")
    raw = services.security.generate_token(services.security.OPERATOR_TOKEN_PREFIX)
    token = OperatorToken(name=name, prefix=services.security.token_display_prefix(raw),
                          token_hash=services.security.hash_token(raw))
    db.session.add(token)
    db.session.commit()
    return token, raw


def list_operator_tokens() -> list[OperatorToken]:
    return list(db.session.execute(
        db.select(OperatorToken).order_by(OperatorToken.name)).scalars())


def revoke_operator_token(name: str) -> OperatorToken:
    """Revoke the operator token called ``name``: it stops working at once. Commits."""
    token = db.session.execute(
        db.select(OperatorToken).where(OperatorToken.name == name)).scalar_one_or_none()
    if token is None:
        raise NotFound(f"no operator token '{name}'")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        db.session.commit()
    return token


def authenticate_operator_token(raw: str | None) -> OperatorToken | None:
    """The live operator token presented as ``raw``, or ``None`` (unknown, revoked, or
    not an operator token at all, e.g. a tenant's API token)."""
    if not raw or not raw.startswith(services.security.OPERATOR_TOKEN_PREFIX):
        return None
    token = db.session.execute(db.select(OperatorToken).where(
        OperatorToken.token_hash == services.security.hash_token(raw))).scalar_one_or_none()
    if token is None or token.revoked_at is not None:
        return None
    return token


# --- quotas ----------------------------------------------------------------------


def tenant_plan(tenant_id: uuid.UUID) -> Plan | None:
    tenant = db.session.get(Tenant, tenant_id)
    return db.session.get(Plan, tenant.plan) if tenant is not None and tenant.plan else None


def check_record_quota(tenant_id: uuid.UUID, adding: int) -> None:
    """Raise ``Forbidden`` when ``adding`` customers would exceed the plan's record quota."""
    plan = tenant_plan(tenant_id)
    if plan is None or plan.max_records is None or adding <= 0:
        return
    with tenancy.tenant_context(tenant_id):
        count = db.session.execute(
            sa.select(sa.func.count()).select_from(Customer)
        ).scalar_one()
    if count + adding > plan.max_records:
        raise Forbidden(
            f"record quota of {plan.max_records} customers reached for plan {plan.name}"
        )


def storage_bytes(tenant_id: uuid.UUID) -> int:
    """Bytes of the tenant's files (``$CLIENTELA_HOME/tenants/<id>/``)."""
    folder = os.path.join(current_app.config["HOME"], TENANT_FILES, str(tenant_id))
    total = 0
    for root, _dirs, names in os.walk(folder):
        total += sum(os.path.getsize(os.path.join(root, n)) for n in names)
    return total


def check_storage_quota(tenant_id: uuid.UUID, adding: int) -> None:
    """Raise ``Forbidden`` when storing ``adding`` more bytes would exceed the plan's quota."""
    plan = tenant_plan(tenant_id)
    if plan is None or plan.max_storage_bytes is None:
        return
    if storage_bytes(tenant_id) + adding > plan.max_storage_bytes:
        raise Forbidden(
            f"storage quota of {plan.max_storage_bytes} bytes reached for plan {plan.name}"
        )


# --- usage -----------------------------------------------------------------------


def _redis():
    from clientela.deployments.hosted import ratelimit

    return ratelimit.redis_client(optional=True)


def _forget_counters(tenant_id: uuid.UUID) -> None:
    client = _redis()
    if client is None:
        return
    from clientela.deployments.hosted import ratelimit

    keys = list(client.scan_iter(f"{ratelimit.PREFIX}:*:{tenant_id}:*"))
    if keys:
        client.delete(*keys)


def collect_usage(tenant_id: uuid.UUID, day: dt.date | None = None) -> TenantUsage:
    """Bring the tenant's counters of ``day`` (today, UTC) up to date; commits.

    Records and storage are measured now; API calls are counted per request in Redis
    (``ratelimit.record_api_call``), across every worker, and copied here.
    """
    from clientela.deployments.hosted import ratelimit

    day = day or utcnow().date()
    with tenancy.tenant_context(tenant_id):
        records = db.session.execute(
            sa.select(sa.func.count()).select_from(Customer)
        ).scalar_one()
        usage = db.session.get(TenantUsage, (tenant_id, day))
        if usage is None:
            usage = TenantUsage(tenant_id=tenant_id, day=day, api_calls=0)
            db.session.add(usage)
        client = _redis()
        if client is not None:
            usage.api_calls = max(usage.api_calls or 0,
                                  ratelimit.api_calls(client, tenant_id, day))
        usage.records = records
        usage.storage_bytes = storage_bytes(tenant_id)
        usage.updated_at = utcnow()
        db.session.commit()
    return usage


def usage_report(slug: str | None = None, days: int = 1) -> list[dict[str, Any]]:
    """Counters per tenant per day for the last ``days`` days (today's collected first)."""
    tenants = [services.get_tenant(slug)] if slug else list_tenants()
    since = utcnow().date() - dt.timedelta(days=days - 1)
    rows = []
    for tenant in tenants:
        tenant_id, tenant_slug = tenant.id, tenant.slug
        collect_usage(tenant_id)
        with tenancy.tenant_context(tenant_id):
            for usage in db.session.execute(
                # TenantUsage is not an Entity (no audit rows), so the ORM does not scope it
                sa.select(TenantUsage)
                .where(TenantUsage.tenant_id == tenant_id, TenantUsage.day >= since)
                .order_by(TenantUsage.day)
            ).scalars():
                rows.append({"tenant": tenant_slug, "day": usage.day.isoformat(),
                             "api_calls": usage.api_calls, "records": usage.records,
                             "storage_bytes": usage.storage_bytes})
    return rows


__all__ = [
    "authenticate_operator_token",
    "change_plan",
    "create_operator_token",
    "list_operator_tokens",
    "revoke_operator_token",
    "check_record_quota",
    "check_storage_quota",
    "collect_usage",
    "create_plan",
    "delete_tenant",
    "enabled_plugins",
    "ensure_active",
    "export_tenant",
    "import_tenant",
    "list_plans",
    "list_tenants",
    "provision_tenant",
    "set_plugin_enabled",
    "resume_tenant",
    "suspend_tenant",
    "usage_report",
]
