"""The hosted profile: PostgreSQL only, many tenants on one instance, isolated by Row-Level Security."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask, has_app_context
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import ORMExecuteState, Session

from clientela.core import services as core_services
from clientela.core import tenancy
from clientela.core.db import db
from clientela.core.errors import ConfigurationError
from clientela.core.models import Customer, Tenant
from clientela.core.profile import Profile


class HostedProfile(Profile):
    name = "hosted"
    plugins_per_tenant = True

    def configure(self, app: Flask) -> None:
        url = app.config.get("SQLALCHEMY_DATABASE_URI")
        if not url:
            raise ConfigurationError(
                "the hosted profile needs DATABASE_URL (postgresql+psycopg://...)"
            )
        backend = make_url(url).get_backend_name()
        if backend != "postgresql":
            raise ConfigurationError(
                f"the hosted profile runs on PostgreSQL only; DATABASE_URL is a {backend} URL"
            )
        if not app.config.get("SECRET_KEY"):
            raise ConfigurationError("the hosted profile needs CLIENTELA_SECRET_KEY")

    def init_app(self, app: Flask) -> None:
        from clientela.deployments.hosted import operator, rls

        with app.app_context():
            rls.install(db.engine)
        _install_quota_listeners()
        operator.init_app(app)
        from clientela.deployments.hosted import console

        console.init_app(app)

    def after_upgrade(self, app: Flask, connection: sa.Connection) -> None:
        from clientela.deployments.hosted import rls

        rls.apply_policies(connection)

    def cli_tenant(self, slug: str | None) -> Tenant:
        if not slug:
            raise ConfigurationError("this command acts inside a tenant: add --tenant SLUG")
        tenant = core_services.get_tenant(slug)
        if tenant.status != "active":
            raise ConfigurationError(f"tenant '{slug}' is {tenant.status}")
        return tenant

    def enabled_plugins(self, tenant: Tenant) -> set[str]:
        from clientela.deployments.hosted import services as hosted

        return hosted.enabled_plugins(tenant)

    def set_plugin_enabled(self, app: Flask, registry, name: str, enabled: bool,
                           tenant_slug: str | None) -> str:
        """Per tenant: a plugin of the tenant's plan can be switched off (and on again)."""
        from clientela.deployments.hosted import services as hosted

        if not tenant_slug:
            raise ConfigurationError(
                "the hosted profile enables plugins per tenant: add --tenant SLUG "
                "(instance-wide, use CLIENTELA_PLUGINS_DISABLED)"
            )
        return hosted.set_plugin_enabled(tenant_slug, name, enabled)

    def request_tenant(self) -> Tenant | None:
        """The tenant of the subdomain ``<slug>.<CLIENTELA_BASE_DOMAIN>``, if any."""
        from flask import current_app, request

        base = (current_app.config.get("BASE_DOMAIN") or "").lower().strip(".")
        host = request.host.split(":")[0].lower()
        if not base or not host.endswith("." + base):
            return None
        slug = host[: -len(base) - 1]
        if "." in slug:
            return None
        return db.session.execute(
            db.select(Tenant).where(Tenant.slug == slug)).scalar_one_or_none()

    def request_authenticated(self, tenant: Tenant, principal) -> None:
        """Per request: refuse a suspended tenant, apply the plan's rate limit, count the call."""
        from clientela.deployments.hosted import ratelimit
        from clientela.deployments.hosted import services as hosted

        hosted.ensure_active(tenant)
        plan = hosted.tenant_plan(tenant.id)
        ratelimit.check_request_if_configured(
            tenant.id, plan.api_requests_per_minute if plan is not None else None)

    def token_tenant(self, token_hash: str):
        """The tenant id of a token (by its hash) before any tenant is set, through the
        ``SECURITY DEFINER`` function that Row-Level Security leaves open for it."""
        from clientela.deployments.hosted import rls

        return rls.token_tenant(db.session.connection(), token_hash)

    def cli_commands(self) -> list:
        from clientela.deployments.hosted.commands import COMMANDS

        return COMMANDS


# --- record quotas -----------------------------------------------------------------


def _hosted_app() -> bool:
    from flask import current_app

    if not has_app_context():
        return False
    ext = current_app.extensions.get("clientela")
    return ext is not None and isinstance(ext.profile, HostedProfile)


def _check_new_customers(session: Session, flush_context, instances) -> None:
    if not _hosted_app():
        return
    adding: dict = {}
    for obj in session.new:
        if isinstance(obj, Customer):
            tenant_id = obj.tenant_id or tenancy.get_tenant_id()
            adding[tenant_id] = adding.get(tenant_id, 0) + 1
    if not adding:
        return
    from clientela.deployments.hosted import services as hosted

    with session.no_autoflush:
        for tenant_id, count in adding.items():
            if tenant_id is not None:
                hosted.check_record_quota(tenant_id, count)


def _check_bulk_customers(state: ORMExecuteState) -> None:
    if not state.is_insert or not _hosted_app():
        return
    if not any(m.class_ is Customer for m in state.all_mappers):
        return
    params = state.parameters
    rows = len(params) if isinstance(params, list) else (1 if params else 0)
    tenant_id = tenancy.get_tenant_id()
    if tenant_id is not None and rows:
        from clientela.deployments.hosted import services as hosted

        hosted.check_record_quota(tenant_id, rows)


def _install_quota_listeners() -> None:
    # process-wide session events, acting only inside an app of this profile
    if not event.contains(Session, "before_flush", _check_new_customers):
        event.listen(Session, "before_flush", _check_new_customers)
    if not event.contains(Session, "do_orm_execute", _check_bulk_customers):
        event.listen(Session, "do_orm_execute", _check_bulk_customers)
