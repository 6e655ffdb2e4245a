"""The on-premise profile: one tenant, SQLite in ``CLIENTELA_HOME`` unless ``DATABASE_URL`` says otherwise."""

from __future__ import annotations

import os

import click
from flask import Flask

from clientela.core import migrations, services, tenancy
from clientela.core.config import ensure_secret_key
from clientela.core.db import db
from clientela.core.errors import ConfigurationError
from clientela.core.models import Tenant
from clientela.core.profile import Profile

DATABASE_FILE = "clientela.db"
TENANT_SLUG = "default"


class OnPremProfile(Profile):
    name = "onprem"

    def configure(self, app: Flask) -> None:
        home = app.config["HOME"]
        os.makedirs(home, exist_ok=True)
        app.config.setdefault(
            "SQLALCHEMY_DATABASE_URI", "sqlite:///" + os.path.join(home, DATABASE_FILE)
        )
        ensure_secret_key(app)

    def tenant(self) -> Tenant | None:
        return db.session.execute(db.select(Tenant).order_by(Tenant.created_at)).scalars().first()

    def cli_tenant(self, slug: str | None) -> Tenant:
        tenant = self.tenant()
        if tenant is None:
            raise ConfigurationError("this instance has no tenant yet: run 'clientela init' first")
        if slug and slug != tenant.slug:
            raise ConfigurationError(
                f"the on-premise profile has one tenant ('{tenant.slug}'), not '{slug}'"
            )
        return tenant

    def cli_commands(self) -> list:
        return [init]


@click.command("init")
@click.option("--admin-email", required=True, help="E-mail of the first administrator.")
@click.option("--admin-password", help="Omit to generate one (printed once).")
@click.option("--name", "org_name", default="My company", show_default=True,
              help="Your organisation's name.")
def init(admin_email: str, admin_password: str | None, org_name: str):
    """Create or upgrade the database, the tenant and the first admin (safe to run again)."""
    from flask import current_app

    migrations.upgrade(current_app)
    profile: OnPremProfile = current_app.extensions["clientela"].profile
    tenant = profile.tenant()
    if tenant is None:
        tenant = services.create_tenant(TENANT_SLUG, name=org_name)
        click.echo(f"created tenant '{tenant.slug}'")
    with tenancy.tenant_context(tenant.id, origin="cli"):
        admin = services.find_user(admin_email)
        if admin is not None:
            click.echo(f"admin {admin.email} already exists; password unchanged")
            return
        generated = admin_password is None
        if generated:
            admin_password = services.security.generate_password()
        admin = services.create_user(admin_email, roles=["admin"], password=admin_password,
                                     name="Administrator")
        db.session.commit()
    click.echo(f"created admin {admin.email}")
    if generated:
        click.echo(f"admin password (shown once): {admin_password}")
