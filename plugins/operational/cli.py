"""``clientela import leads FILE``: the operational plugin's part of the ``import`` group."""

from __future__ import annotations

import sys

import click

from clientela.core import access, transfer, transfer_commands
from clientela.core.cli_context import tenant_command
from clientela.core.db import db
from clientela.core.models import User

#: the most per-row errors printed when no --report file is given
PRINTED_ERRORS = 50


@click.group("import")
def import_group():
    """Import records from files."""


@import_group.command("leads")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--as", "as_email", metavar="EMAIL",
              help="The user the leads are imported as (their owner unless routed); "
                   "default: the first admin.")
@click.option("--source", help="The source of rows that name none (default: import).")
@click.option("--delimiter", help="CSV delimiter (default: sniffed). 'tab' for a tab.")
@click.option("--encoding", default="utf-8-sig", show_default=True)
@click.option("--dry-run", is_flag=True, help="Validate and report; write nothing.")
@click.option("--all-or-nothing", is_flag=True,
              help="Any bad row refuses the whole file (default: keep the good rows).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="Write the per-row errors to this CSV file (row,field,message).")
@click.option("--mapping", metavar="FILE.json|NAME",
              help='Column mapping: a JSON file {"Header": "field"} or the name of a saved '
                   "import mapping of kind 'leads' (its value transformations apply too).")
@tenant_command
def import_leads_command(tenant, file, as_email, source, delimiter, encoding, dry_run,
                         all_or_nothing, report_path, mapping):
    """Import leads from a CSV FILE ('-' for stdin) with a header row (First name,
    Last name, Company, Email, Phone, Country, Source, Owner, attributes.<key>, ...).

    Each row is scored and routed like a lead captured through the API.
    """
    from clientela.plugins.operational import lead_import

    principal = _importer(as_email)
    columns, transforms = transfer_commands.mapping_option(mapping, "leads")
    try:
        stream = sys.stdin.buffer if file == "-" else open(file, "rb")
    except OSError as exc:
        raise click.ClickException(f"cannot open {file}: {exc.strerror}") from None
    with stream:
        report = lead_import.import_leads(
            stream, principal, filename=None if file == "-" else file,
            all_or_nothing=all_or_nothing, dry_run=dry_run, source_name=source,
            delimiter=delimiter, encoding=encoding, mapping=columns, transforms=transforms)
    counts = f"{report.created} created, {report.failed} failed of {report.rows} rows"
    if dry_run:
        click.echo(f"dry run, nothing was written: would have {counts}")
    elif report.refused:
        click.echo(f"all-or-nothing: {report.failed} bad rows, nothing was written")
    else:
        click.echo(f"imported leads from {'stdin' if file == '-' else file}: {counts}")
    if report.ignored_columns:
        click.echo(f"ignored columns: {', '.join(report.ignored_columns)}")
    if not report.failed:
        return
    if report_path:
        with open(report_path, "w", newline="", encoding="utf-8") as out:
            transfer.write_error_report(report, out)
        where = report_path
    else:
        for error in report.errors[:PRINTED_ERRORS]:
            click.echo(str(error))
        where = "above"
    raise click.ClickException(f"{report.failed} rows were not imported (errors: {where})")


def _importer(email: str | None) -> access.Principal:
    stmt = db.select(User).where(User.is_active.is_(True))
    if email:
        user = db.session.execute(stmt.where(User.email == email.strip().lower())
                                  ).scalar_one_or_none()
        if user is None:
            raise click.ClickException(f"no active user {email}")
    else:
        user = next((u for u in db.session.execute(stmt.order_by(User.created_at)).scalars()
                     if "admin" in (u.roles or [])), None)
        if user is None:
            raise click.ClickException("no active admin to import as; give --as EMAIL")
    principal = access.principal_for(user, "cli")
    if not principal.can("leads:write"):
        raise click.ClickException(f"{user.email} may not write leads (leads:write)")
    return principal


COMMANDS = [import_group]
