"""``clientela customizations export FILE`` / ``import FILE``: move a tenant's
customizations (objects, fields, rules, webhooks, import mappings) as a package."""

from __future__ import annotations

import json
import sys

import click

from clientela.core.cli_context import tenant_command
from clientela.core.db import db
from clientela.core.errors import ClientelaError


@click.group("customizations")
def customizations_group():
    """Export and import the tenant's customizations as a versioned JSON package."""


@customizations_group.command("export")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@tenant_command
def export_command(tenant, file: str):
    """Write the tenant's custom objects, fields, automation rules, webhooks (without
    their secrets) and import mappings to FILE ('-' for stdout)."""
    from clientela.plugins.tailormade import packages

    text = packages.dumps(packages.export_package())
    db.session.rollback()
    if file == "-":
        click.echo(text, nl=False)
        return
    try:
        with open(file, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise click.ClickException(f"cannot write {file}: {exc.strerror}") from None
    document = json.loads(text)
    counts = ", ".join(f"{len(document[s])} {s}" for s in packages.SECTIONS)
    click.echo(f"exported {counts} to {file}", err=True)


@customizations_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--dry-run", is_flag=True, help="check the package, write nothing")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@tenant_command
def import_command(tenant, file: str, dry_run: bool, as_json: bool):
    """Merge the package in FILE into the tenant: what exists (same object key, field,
    rule or mapping name, webhook URL) is updated, the rest created; all or nothing."""
    from clientela.plugins.tailormade import packages

    try:
        if file == "-":
            document = json.load(sys.stdin)
        else:
            with open(file, encoding="utf-8-sig") as fh:
                document = json.load(fh)
    except OSError as exc:
        raise click.ClickException(f"cannot read {file}: {exc.strerror}") from None
    except ValueError as exc:
        raise click.ClickException(f"{file} is not JSON: {exc}") from None
    try:
        report = packages.import_package(document, packages.principal_for_cli(tenant.id))
    except ClientelaError as exc:
        db.session.rollback()
        raise click.ClickException(f"nothing was imported: {exc}") from None
    if dry_run:
        db.session.rollback()
    else:
        try:
            db.session.commit()
        except ClientelaError as exc:
            db.session.rollback()
            raise click.ClickException(f"nothing was imported: {exc}") from None
    if as_json:
        click.echo(json.dumps(report, default=str))
        return
    counts = "; ".join(f"{s}: {report[s]['created']} created, {report[s]['updated']} updated"
                       for s in packages.SECTIONS)
    click.echo(("dry run, nothing written: " if dry_run else "imported: ") + counts)
    for note in report["notes"]:
        click.echo(f"note: {note}")
    for url, secret in report["webhook_secrets"].items():
        click.echo(f"new webhook secret for {url}: {secret}")


@customizations_group.command("indexes")
def indexes_command():
    """Create the expression indexes of every tenant's custom fields (run it as the
    database owner, as migrations are: in the hosted profile the application's own role
    cannot create indexes, so fields defined through the API wait for this)."""
    import sqlalchemy as sa

    from clientela.core import tenancy
    from clientela.plugins.tailormade import custom_fields
    from clientela.plugins.tailormade.models import CustomField

    with tenancy.unscoped():
        rows = db.session.execute(sa.select(
            CustomField.tenant_id, CustomField.entity_type, CustomField.key, CustomField.type
        ).order_by(CustomField.tenant_id)).all()
    db.session.rollback()
    made = set()
    for row in rows:
        with tenancy.tenant_context(row.tenant_id, origin="cli"):
            name = custom_fields.ensure_index(row.entity_type, row.key, row.type)
            db.session.commit()
        if name:
            made.add(name)
    click.echo(f"{len(made)} index(es) in place for {len(rows)} custom field(s)")
