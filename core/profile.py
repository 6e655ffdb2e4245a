"""The interface of a deployment profile, and how the core finds one by name.

A profile sets the database, decides which tenant a request or a command acts as and
which plugins are enabled, and adds its own commands. Profiles are drivers in the
``clientela.profiles`` entry-point group, so the core never imports one by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stevedore import DriverManager
from stevedore.exception import NoMatches

from clientela.core.errors import ConfigurationError

if TYPE_CHECKING:
    import uuid

    import sqlalchemy as sa
    from flask import Flask

    from clientela.core.models import Tenant

PROFILE_GROUP = "clientela.profiles"


class Profile:
    """Base class of deployment profiles."""

    name = "base"
    #: whether ``enabled_plugins`` can differ between tenants (hosted plans): then routes,
    #: hooks and the OpenAPI document are narrowed per tenant, at the cost of one look-up
    #: per request
    plugins_per_tenant = False

    def configure(self, app: Flask) -> None:
        """Set configuration defaults and refuse what this profile cannot run on."""

    def init_app(self, app: Flask) -> None:
        """Install request handling (tenant resolution) once the app is built."""

    def request_tenant(self) -> Tenant | None:
        """The tenant a browser request addresses before anyone logs in (password login):
        the single tenant on-premise, the subdomain's tenant when hosted."""
        return None

    def request_authenticated(self, tenant: Tenant, principal) -> None:
        """Called for every authenticated API request, inside the tenant's context; may
        raise ``Forbidden`` or ``RateLimited`` (suspension, quotas, rate limits)."""

    def cli_tenant(self, slug: str | None) -> Tenant:
        """The tenant a tenant-scoped command acts as (``clientela --tenant SLUG``)."""
        raise NotImplementedError

    def set_plugin_enabled(self, app: Flask, registry, name: str, enabled: bool,
                           tenant_slug: str | None) -> str:
        """Enable or disable an installed plugin; returns what was done, in one line."""
        raise ConfigurationError(f"the {self.name} profile cannot enable or disable plugins")

    def cli_commands(self) -> list:
        """click commands that only this profile has."""
        return []

    def after_upgrade(self, app: Flask, connection: sa.Connection) -> None:
        """Called once by ``clientela db upgrade`` after the revisions are applied.

        Runs in a transaction of its own on ``connection`` (the migration's database
        role), for what the profile keeps in the database besides the models: the
        hosted profile enables Row-Level Security on every tenant table. Must be
        idempotent. Default: nothing.
        """

    def token_tenant(self, token_hash: str) -> uuid.UUID | None:
        """The tenant of the API token with ``token_hash``, found before any tenant is set.

        Authentication asks this first, then checks the token *inside* that tenant. The
        default looks the hash up with the ORM's scoping lifted; the hosted profile,
        where Row-Level Security hides every row until a tenant is set, asks a
        ``SECURITY DEFINER`` function that returns only the tenant id.
        """
        from clientela.core import tenancy
        from clientela.core.db import db
        from clientela.core.models import ApiToken

        with tenancy.unscoped():
            return db.session.execute(
                db.select(ApiToken.tenant_id).where(ApiToken.token_hash == token_hash)
            ).scalar_one_or_none()

    def enabled_plugins(self, tenant: Tenant) -> set[str]:
        """The names of the plugins ``tenant`` may use (routes, hooks, OpenAPI, CLI).

        Default: every plugin enabled on the instance. The hosted profile narrows it
        to the plugins of the tenant's plan.
        """
        from flask import current_app

        return {info.name for info in current_app.extensions["clientela"].plugins.enabled()}


def load_profile(name: str) -> Profile:
    try:
        manager = DriverManager(PROFILE_GROUP, name, invoke_on_load=True)
    except NoMatches:
        raise ConfigurationError(
            f"unknown profile '{name}' (CLIENTELA_PROFILE): use 'onprem' or 'hosted'"
        ) from None
    return manager.driver
