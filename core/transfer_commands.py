"""The ``clientela import`` and ``clientela export`` commands (customers: CSV, vCard)."""

from __future__ import annotations

import os
import sys

import click

from clientela.core import transfer
from clientela.core.cli_context import tenant_command
from clientela.core.db import db
from clientela.core.errors import ValidationError

#: the most per-row errors printed when no --report file is given
PRINTED_ERRORS = 50


def mapping_option(value: str | None, kind: str = "customers"
                   ) -> tuple[dict | None, dict | None]:
    """``(columns, transforms)`` of ``--mapping``: a JSON file or a saved mapping (name or
    id) for an import of ``kind``; every import command's ``--mapping`` reads it so."""
    if not value:
        return None, None
    if value.lower().endswith(".json") or os.path.isfile(value):
        try:
            with open(value, encoding="utf-8-sig") as fh:
                return transfer.load_mapping(fh.read(), customer_fields=kind == "customers"
                                             ), None
        except OSError as exc:
            raise click.BadParameter(f"cannot read {value}: {exc.strerror}",
                                     param_hint="--mapping") from None
        except transfer.ImportFileError as exc:
            raise click.BadParameter(str(exc), param_hint="--mapping") from None
    try:
        return transfer.saved_mapping(value, kind)
    except ValidationError as exc:
        message = "; ".join(exc.errors.get("mapping", [])) or exc.message
        if message.startswith("no saved import mapping"):
            message += " (nor a file of that name)"
        raise click.BadParameter(message, param_hint="--mapping") from None



@click.group("import")
def import_group():
    """Import records from files."""


@import_group.command("customers")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(["csv", "vcard"]),
              help="Default: from the extension (.vcf) or the content.")
@click.option("--mapping", metavar="FILE.json|NAME",
              help='Column mapping: a JSON file {"Header": "field"} or a saved mapping\'s name.')
@click.option("--save-mapping", metavar="NAME",
              help="Save the mapping applied under this name for the next import.")
@click.option("--match", type=click.Choice(transfer.MATCH_KEYS), default="email",
              show_default=True, help="Update the customer with the same key instead of "
              "creating a duplicate ('none' always creates).")
@click.option("--delimiter", help="CSV delimiter (default: sniffed). 'tab' for a tab.")
@click.option("--encoding", default="utf-8-sig", show_default=True,
              help="Text encoding (UTF-8 with or without a byte-order mark by default).")
@click.option("--phone-region", metavar="CC",
              help="Country (e.g. IT) for phone numbers written without +country code.")
@click.option("--dry-run", is_flag=True, help="Validate and report; write nothing.")
@click.option("--all-or-nothing", is_flag=True,
              help="Any bad row refuses the whole file (default: keep the good rows).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="Write the per-row errors to this CSV file (row,field,message).")
@tenant_command
def import_customers_command(tenant, file, fmt, mapping, save_mapping, match, delimiter,
                             encoding, phone_region, dry_run, all_or_nothing, report_path):
    """Import customers from a CSV or vCard (3.0/4.0) FILE ('-' for stdin).

    Columns are recognised by their header (Email, E-mail, First name, Company,
    Phone, Mobile, Tags, ...) or given with --mapping. The import is one
    transaction: it is written whole, or not at all.
    """
    columns, transforms = mapping_option(mapping)
    if file == "-":
        stream, size, name = sys.stdin.buffer, 0, None
    else:
        try:
            stream = open(file, "rb")
        except OSError as exc:
            raise click.ClickException(f"cannot open {file}: {exc.strerror}") from None
        size, name = os.fstat(stream.fileno()).st_size, file
    with stream, click.progressbar(length=max(size, 1), label="importing",
                                   file=sys.stderr, show_pos=False) as bar:
        done = [0]

        def progress(rows: int, read: int) -> None:
            bar.update(max(read - done[0], 0))
            done[0] = read

        report = transfer.import_customers(
            stream, filename=name, format=fmt, mapping=columns, transforms=transforms,
            match=match,
            all_or_nothing=all_or_nothing, dry_run=dry_run, delimiter=delimiter,
            encoding=encoding, phone_region=phone_region, save_mapping_as=save_mapping,
            progress=progress if size else None)
    if report.ignored_columns:
        click.echo(f"ignored columns: {', '.join(report.ignored_columns)}")
    counts = (f"{report.created} created, {report.updated} updated, "
              f"{report.unchanged} unchanged, {report.failed} failed of {report.rows} rows")
    if dry_run:
        click.echo(f"dry run, nothing was written: would have {counts}")
    elif report.refused:
        click.echo(f"all-or-nothing: {report.failed} bad rows, nothing was written")
    else:
        click.echo(f"imported {name or 'stdin'}: {counts}")
        if save_mapping:
            click.echo(f"mapping saved as '{save_mapping}'")
    if not report.failed:
        return
    if report_path:
        with open(report_path, "w", newline="", encoding="utf-8") as out:
            transfer.write_error_report(report, out)
        where = report_path
    else:
        for error in report.errors[:PRINTED_ERRORS]:
            click.echo(str(error))
        if len(report.errors) > PRINTED_ERRORS:
            click.echo(f"... and {len(report.errors) - PRINTED_ERRORS} more (use --report FILE)")
        where = "above"
    raise click.ClickException(f"{report.failed} rows were not imported (errors: {where})")


@import_group.command("mappings")
@tenant_command
def import_mappings_command(tenant):
    """List the saved column mappings."""
    for mapping in transfer.list_mappings():
        columns = ", ".join(f"{h} -> {t or '(ignored)'}" for h, t in mapping.columns.items())
        click.echo(f"{mapping.name}: {columns}")


@click.group("export")
def export_group():
    """Export records to files."""


@export_group.command("customers")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@tenant_command
def export_customers_command(tenant, file):
    """Write every customer to a CSV FILE ('-' for stdout) that 'import customers' reads back."""
    if file == "-":
        transfer.export_customers(click.get_text_stream("stdout"))
        return
    with open(file, "w", newline="", encoding="utf-8") as out:
        count = transfer.export_customers(out)
    db.session.rollback()
    click.echo(f"exported {count} customers to {file}", err=True)


COMMANDS = [import_group, export_group]
