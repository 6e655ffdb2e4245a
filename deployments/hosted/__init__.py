"""The hosted profile: PostgreSQL only, many tenants on one instance."""

from __future__ import annotations

import click
from flask import Flask
from sqlalchemy.engine import make_url

from clientela.core import services
from clientela.core.db import db
from clientela.core.errors import ConfigurationError
from clientela.core.models import Tenant
from clientela.core.profile import Profile


class HostedProfile(Profile):
    name = "hosted"

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

    def cli_tenant(self, slug: str | None) -> Tenant:
        if not slug:
            raise ConfigurationError("this command acts inside a tenant: add --tenant SLUG")
        tenant = services.get_tenant(slug)
        if tenant.status != "active":
            raise ConfigurationError(f"tenant '{slug}' is {tenant.status}")
        return tenant

    def cli_commands(self) -> list:
        return [tenants_group]


@click.group("tenants")
def tenants_group():
    """Tenant lifecycle (operator)."""


@tenants_group.command("create")
@click.argument("slug")
@click.option("--name", help="Display name (default: the slug).")
@click.option("--plan", help="The plan that names the tenant's plugins and quotas.")
def tenants_create(slug: str, name: str | None, plan: str | None):
    """Provision a tenant."""
    tenant = services.create_tenant(slug, name=name, plan=plan)
    click.echo(f"created tenant '{tenant.slug}' ({tenant.id})")


@tenants_group.command("list")
def tenants_list():
    """List tenants with their status and plan."""
    for tenant in db.session.execute(db.select(Tenant).order_by(Tenant.slug)).scalars():
        click.echo(f"{tenant.slug}\t{tenant.status}\t{tenant.plan or '-'}\t{tenant.name}")
