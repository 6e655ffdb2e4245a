"""``clientela warehouse ...``: refresh the tenant's warehouse, import external files, status."""

from __future__ import annotations

import json

import click

from clientela.core.commands import tenant_command
from clientela.core.db import db


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, field = value.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"use HEADER=FIELD, not {value!r}", param_hint=option)
        out[key.strip()] = field.strip() or None
    return out


@click.group("warehouse")
def warehouse_group():
    """The tenant's customer data warehouse (DuckDB): refresh, import, status."""


@warehouse_group.command("refresh")
@click.option("--full", is_flag=True, help="rebuild from scratch instead of loading changes")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@tenant_command
def refresh_command(tenant, full: bool, as_json: bool):
    """Load customers and facts changed since the last refresh from the operational database."""
    from clientela.plugins.analytical import warehouse

    report = warehouse.refresh(full=full)
    db.session.rollback()
    if as_json:
        click.echo(json.dumps(report.as_dict()))
        return
    loaded = ", ".join(f"{table} {count}" for table, count in report.loaded.items())
    click.echo(f"warehouse refreshed in {report.seconds:.2f}s: {loaded}; "
               f"{report.deleted_customers} customers removed, "
               f"{report.merged_customers} merged")


@warehouse_group.command("refresh-segments")
@click.option("--segment", "segment_id", type=click.UUID, help="only this segment")
@click.option("--json", "as_json", is_flag=True, help="print the reports as JSON")
@tenant_command
def refresh_segments_command(tenant, segment_id, as_json: bool):
    """Recompute and store the members of every saved segment (or of one)."""
    from clientela.core.errors import NotFound
    from clientela.plugins.analytical import membership

    reports = membership.refresh(None if segment_id is None else [segment_id])
    db.session.rollback()
    if segment_id is not None and not reports:
        raise NotFound("segment not found")
    if as_json:
        click.echo(json.dumps(reports, default=str))
        return
    for report in reports:
        click.echo(f"{report['name']}: {report['count']} members "
                   f"({report['seconds']:.2f}s)")
    if not reports:
        click.echo("no saved segments")


@warehouse_group.command("status")
@tenant_command
def status_command(tenant):
    """Show the last refresh, the watermarks and the rows of every table."""
    from clientela.plugins.analytical import warehouse

    click.echo(json.dumps(warehouse.status(), indent=2))


@warehouse_group.command("export")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@tenant_command
def export_command(tenant, directory: str, as_json: bool):
    """Export the star schema as Parquet partitioned by tenant (DIR/<table>/tenant_id=<id>/)."""
    from clientela.plugins.analytical import warehouse

    report = warehouse.export_parquet(directory)
    if as_json:
        click.echo(json.dumps(report))
        return
    tables = ", ".join(f"{table} {rows}" for table, rows in report["tables"].items())
    click.echo(f"exported to {report['directory']} (tenant {report['tenant_id']}): {tables}")


def _import(kind: str, path: str, mapping, columns, options, save_as, as_json: bool):
    from clientela.plugins.analytical import imports

    columns = _pairs(columns, "--map") if columns else None
    options = _pairs(options, "--option") if options else None
    if save_as:
        imports.save_mapping(save_as, kind, columns or {}, options or {})
        db.session.commit()
        mapping, columns, options = save_as, None, None
    function = imports.import_transactions if kind == "transactions" else imports.import_attributes
    report = function(path, mapping=mapping, columns=columns, options=options)
    db.session.rollback()
    if as_json:
        click.echo(json.dumps(report.as_dict()))
        return
    click.echo(f"{report.rows_read} rows read, {report.matched} matched, "
               f"{report.rejected} rejected (import {report.import_id})")
    for rejection in report.rejections[:50]:
        click.echo(f"  row {rejection['row']}: {rejection['reason']}")
    if report.rejected > 50:
        click.echo(f"  ... and {report.rejected - 50} more")


_map_help = "HEADER=FIELD, repeatable (see docs/plugins/analytical.md)"


@warehouse_group.command("import-transactions")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--mapping", help="a saved mapping's name (the plugin's own, else an "
              "import mapping of this kind, with its value transformations)")
@click.option("--map", "columns", multiple=True, help=_map_help)
@click.option("--option", "options", multiple=True,
              help="date_format=..., decimal_separator=..., currency=..., source=...")
@click.option("--save-mapping", "save_as", help="save --map/--option under this name first")
@click.option("--json", "as_json", is_flag=True)
@tenant_command
def import_transactions_command(tenant, path, mapping, columns, options, save_as, as_json):
    """Import order lines from an ERP or shop export (CSV or Parquet)."""
    _import("transactions", path, mapping, columns, options, save_as, as_json)


@warehouse_group.command("import-attributes")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--mapping", help="a saved mapping's name (the plugin's own, else an "
              "import mapping of this kind, with its value transformations)")
@click.option("--map", "columns", multiple=True, help=_map_help)
@click.option("--option", "options", multiple=True, help="delimiter=...")
@click.option("--save-mapping", "save_as", help="save --map/--option under this name first")
@click.option("--json", "as_json", is_flag=True)
@tenant_command
def import_attributes_command(tenant, path, mapping, columns, options, save_as, as_json):
    """Import customer attributes (demographics) from a CSV or Parquet file."""
    _import("attributes", path, mapping, columns, options, save_as, as_json)
