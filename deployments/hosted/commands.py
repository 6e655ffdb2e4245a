"""The hosted profile's commands: tenant lifecycle, plans, usage, database roles."""

from __future__ import annotations

import json

import click
import sqlalchemy as sa
from flask import current_app
from sqlalchemy.engine import make_url

from clientela.deployments.hosted import rls
from clientela.deployments.hosted import services as hosted


@click.group("tenants")
def tenants_group():
    """Tenant lifecycle (operator): create, list, suspend, resume, plan, export, delete, usage."""


@tenants_group.command("create")
@click.argument("slug")
@click.option("--name", help="Display name (default: the slug).")
@click.option("--plan", help="The plan that names the tenant's plugins and quotas.")
@click.option("--admin-email", help="Create the tenant's first admin and print an API token.")
def tenants_create(slug: str, name: str | None, plan: str | None, admin_email: str | None):
    """Provision a tenant (and, with --admin-email, its first admin and a token)."""
    result = hosted.provision_tenant(slug, name=name, plan=plan, admin_email=admin_email)
    tenant = result["tenant"]
    click.echo(f"created tenant '{tenant.slug}' ({tenant.id})")
    if result["admin"] is not None:
        click.echo(f"admin {result['admin']}, password (shown once): {result['password']}")
        click.echo(f"token (shown once): {result['token']}")


@tenants_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def tenants_list(as_json: bool):
    """List tenants with their status and plan."""
    tenants = hosted.list_tenants()
    if as_json:
        click.echo(json.dumps([{"slug": t.slug, "id": str(t.id), "name": t.name,
                                "status": t.status, "plan": t.plan} for t in tenants], indent=2))
        return
    for tenant in tenants:
        click.echo(f"{tenant.slug}\t{tenant.status}\t{tenant.plan or '-'}\t{tenant.name}")


@tenants_group.command("suspend")
@click.argument("slug")
def tenants_suspend(slug: str):
    """Stop every request and command of a tenant; its data stays."""
    hosted.suspend_tenant(slug)
    click.echo(f"tenant '{slug}' suspended")


@tenants_group.command("resume")
@click.argument("slug")
def tenants_resume(slug: str):
    """Let a suspended tenant work again."""
    hosted.resume_tenant(slug)
    click.echo(f"tenant '{slug}' active")


@tenants_group.command("plan")
@click.argument("slug")
@click.argument("plan")
def tenants_plan(slug: str, plan: str):
    """Move a tenant to PLAN ('none': no plan, every plugin, no quotas)."""
    tenant = hosted.change_plan(slug, None if plan == "none" else plan)
    click.echo(f"tenant '{slug}' is on plan {tenant.plan or '(none)'}")


@tenants_group.command("export")
@click.argument("slug")
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
def tenants_export(slug: str, file: str):
    """Write every row of a tenant to FILE (restorable with the on-premise 'clientela restore')."""
    manifest = hosted.export_tenant(slug, file)
    rows = sum(t["rows"] for t in manifest["tables"])
    click.echo(f"exported tenant '{slug}' to {file}: {len(manifest['tables'])} tables, {rows} rows")


@tenants_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def tenants_import(file: str):
    """Load a tenant from FILE: a tenant export, or an on-premise backup (one tenant)."""
    manifest = hosted.import_tenant(file)
    rows = sum(t["rows"] for t in manifest["tables"])
    click.echo(f"imported tenant '{manifest['tenant']['slug']}': {rows} rows")


@tenants_group.command("delete")
@click.argument("slug")
@click.option("--force", is_flag=True, help="Delete even though the tenant was never exported.")
def tenants_delete(slug: str, force: bool):
    """Remove every row of a tenant (refused unless it was exported, or --force)."""
    deleted = hosted.delete_tenant(slug, force=force)
    click.echo(f"deleted tenant '{slug}': {sum(deleted.values())} rows")


@tenants_group.command("usage")
@click.argument("slug", required=False)
@click.option("--days", default=1, show_default=True, type=int, help="How many days back.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def tenants_usage(slug: str | None, days: int, as_json: bool):
    """Usage counters per tenant per day: API calls, records, storage (what you bill on)."""
    rows = hosted.usage_report(slug, days=days)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo("tenant\tday\tapi_calls\trecords\tstorage_bytes")
    for row in rows:
        click.echo(f"{row['tenant']}\t{row['day']}\t{row['api_calls']}\t{row['records']}\t"
                   f"{row['storage_bytes']}")


@click.group("plans")
def plans_group():
    """Plans: the plugins a tenant gets and its quotas."""


def _plugin_list(value: str | None) -> list[str] | None:
    if value is None or value == "all":
        return None
    return [p for p in value.replace(",", " ").split() if p]


@plans_group.command("create")
@click.argument("name")
@click.option("--title", default="")
@click.option("--plugins", help="Comma-separated plugin names, or 'all' (default).")
@click.option("--max-records", type=int, help="Customers a tenant may have.")
@click.option("--requests-per-minute", type=int, help="API requests per minute.")
@click.option("--max-storage", type=int, help="Bytes of files a tenant may store.")
def plans_create(name, title, plugins, max_records, requests_per_minute, max_storage):
    """Create or replace a plan."""
    plan = hosted.create_plan(name, title=title, plugins=_plugin_list(plugins),
                              max_records=max_records,
                              api_requests_per_minute=requests_per_minute,
                              max_storage_bytes=max_storage)
    click.echo(f"plan '{plan.name}' saved")


@plans_group.command("list")
def plans_list():
    """List plans with their plugins and quotas."""
    for plan in hosted.list_plans():
        plugins = ",".join(plan.plugins) if plan.plugins is not None else "all"
        click.echo(f"{plan.name}\tplugins={plugins}\trecords={plan.max_records or '-'}\t"
                   f"rpm={plan.api_requests_per_minute or '-'}\t"
                   f"storage={plan.max_storage_bytes or '-'}")


@click.group("operator")
def operator_group():
    """The operator API (/operator/api/v1): its tokens."""


@operator_group.group("tokens")
def operator_tokens_group():
    """Operator tokens: they belong to no tenant and work only on /operator/api/v1."""


@operator_tokens_group.command("create")
@click.argument("name")
def operator_tokens_create(name: str):
    """Create an operator token called NAME and print it (only the token, shown once)."""
    _, raw = hosted.create_operator_token(name)
    click.echo(raw)


@operator_tokens_group.command("list")
def operator_tokens_list():
    """List operator tokens (name, prefix, created, last used, revoked)."""
    for token in hosted.list_operator_tokens():
        click.echo(f"{token.name}\t{token.prefix}...\t{token.created_at:%Y-%m-%d %H:%M}\t"
                   f"used={token.last_used_at or '-'}\t"
                   f"{'revoked' if token.revoked_at else 'active'}")


@operator_tokens_group.command("revoke")
@click.argument("name")
def operator_tokens_revoke(name: str):
    """Revoke the operator token NAME: it stops working at once."""
    hosted.revoke_operator_token(name)
    click.echo(f"operator token '{name}' revoked")


@click.group("hosted")
def hosted_group():
    """Hosted operations: database roles."""


@hosted_group.command("setup-roles")
@click.option("--owner", default="clientela_owner", show_default=True,
              help="Role that owns the tables; migrations run as it.")
@click.option("--app", "app_role", default="clientela_app", show_default=True,
              help="Role the web and job workers connect as.")
@click.option("--owner-password", envvar="CLIENTELA_OWNER_PASSWORD")
@click.option("--app-password", envvar="CLIENTELA_APP_PASSWORD")
@click.option("--admin-url", envvar="CLIENTELA_ADMIN_DATABASE_URL",
              help="A superuser URL of the same database (default: DATABASE_URL).")
def setup_roles(owner, app_role, owner_password, app_password, admin_url):
    """Create the owner and the application roles with their grants (run as a superuser)."""
    url = admin_url or current_app.config["SQLALCHEMY_DATABASE_URI"]
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            rls.setup_roles(conn, owner, app_role, owner_password, app_password)
    finally:
        engine.dispose()
    base = make_url(url)
    for label, role, password in (("migrations (CLIENTELA_MIGRATION_DATABASE_URL)", owner,
                                   owner_password),
                                  ("application (DATABASE_URL)", app_role, app_password)):
        shown = base.set(username=role, password=password or None)
        click.echo(f"{label}: {shown.render_as_string(hide_password=True)}")


COMMANDS = [tenants_group, plans_group, operator_group, hosted_group]

__all__ = ["COMMANDS"]
