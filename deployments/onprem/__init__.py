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

    def request_tenant(self) -> Tenant | None:
        return self.tenant()

    def set_plugin_enabled(self, app: Flask, registry, name: str, enabled: bool,
                           tenant_slug: str | None) -> str:
        """Instance-wide: recorded in ``[plugins] disabled`` of ``clientela.toml``."""
        import tomlkit

        from clientela.core.config import CONFIG_FILE

        current = {info.name for info in registry.plugins.values() if info.enabled}
        after = registry.check_change(name, enabled, current)
        path = os.path.join(app.config["HOME"], CONFIG_FILE)
        document = tomlkit.document()
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                document = tomlkit.parse(fh.read())
        section = document.setdefault("plugins", tomlkit.table())
        disabled = sorted(set(registry.plugins) - after)
        section["disabled"] = disabled
        if "enabled" in section and enabled:
            section["enabled"] = sorted(set(section["enabled"]) | {name})
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(tomlkit.dumps(document))
        state = "enabled" if enabled else "disabled"
        hint = "; run 'clientela db upgrade' and restart the server" if enabled else \
            "; restart the server"
        return f"plugin '{name}' {state} in {path}{hint}"

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
        from clientela.deployments.onprem.backup import backup_command, restore_command

        return [init, backup_command, restore_command]


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
