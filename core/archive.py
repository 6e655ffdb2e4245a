"""The portable archive: every row of one tenant (or of the instance) as JSON lines in a zip.

Both profiles use it: the on-premise ``clientela backup``/``restore`` and the hosted
``clientela tenants export``, so that a tenant exported from the hosted service restores
on a server of its own. The layout of an archive::

    manifest.json          format, version, scope, schema revisions, tables (in load
                           order) with row counts and SHA-256 checksums, files
    tables/<name>.jsonl    one row per line, canonical JSON (sorted keys), rows in
                           primary-key order
    files/<path>           files of the instance folder (backups only)

The checksum of a table is the SHA-256 of its ``.jsonl`` member, which is the same as
``table_checksums()`` of the live database: comparing the two proves a round trip lost
nothing, on either backend. The tables come from the metadata (the core's and every
loaded plugin's models), never from a list written here.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import decimal
import hashlib
import json
import os
import uuid
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext

from clientela.core import __version__
from clientela.core.errors import ClientelaError

FORMAT = "clientela-archive"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
TABLES_DIR = "tables/"
FILES_DIR = "files/"
TENANTS_TABLE = "tenants"
_BATCH = 1000


class ArchiveError(ClientelaError):
    """The archive cannot be written or loaded (unreadable, corrupt, wrong schema, ...)."""


# --- values ----------------------------------------------------------------


def _python_type(column: sa.Column) -> type | None:
    kind = column.type
    while isinstance(kind, sa.types.TypeDecorator):
        kind = kind.impl_instance
    try:
        return kind.python_type
    except NotImplementedError:
        return None


def encode_value(value: Any) -> Any:
    """A column value as portable JSON: UUIDs and decimals as strings, times in UTC ISO 8601."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:  # stored without a zone: Clientela stores UTC
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc).isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(k): encode_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode_value(v) for v in value]
    raise ArchiveError(f"cannot archive a value of type {type(value).__name__}")


def decode_value(column: sa.Column, value: Any) -> Any:
    """The inverse of ``encode_value``, guided by the column's type."""
    if value is None:
        return None
    kind = _python_type(column)
    if kind is uuid.UUID:
        return uuid.UUID(value)
    if kind is dt.datetime:
        return dt.datetime.fromisoformat(value)
    if kind is dt.date:
        return dt.date.fromisoformat(value)
    if kind is dt.time:
        return dt.time.fromisoformat(value)
    if kind is decimal.Decimal:
        return decimal.Decimal(value)
    if kind is bytes:
        return base64.b64decode(value)
    return value


def canonical_line(row: dict[str, Any]) -> bytes:
    return json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# --- which tables, which rows ----------------------------------------------


def archived_tables(metadata: sa.MetaData, scope: str) -> list[sa.Table]:
    """The tables an archive of ``scope`` holds, parents before children.

    ``tenant``: the ``tenants`` table (one row) and every table with a ``tenant_id``;
    ``instance``: every table of the metadata.
    """
    tables = list(metadata.sorted_tables)
    if scope == "instance":
        return tables
    if scope != "tenant":
        raise ValueError(f"unknown archive scope {scope!r}")
    return [t for t in tables if t.name == TENANTS_TABLE or "tenant_id" in t.c]


def _rows_query(table: sa.Table, tenant_id: uuid.UUID | None) -> sa.Select:
    query = sa.select(table).order_by(*table.primary_key.columns)
    if tenant_id is not None:
        if table.name == TENANTS_TABLE:
            query = query.where(table.c.id == tenant_id)
        elif "tenant_id" in table.c:
            query = query.where(table.c.tenant_id == tenant_id)
    return query


def table_lines(conn: sa.Connection, table: sa.Table,
                tenant_id: uuid.UUID | None = None) -> Iterator[bytes]:
    """The canonical JSON line of every row of ``table`` (of one tenant), in key order."""
    # a server-side cursor on PostgreSQL: big tables are not held in memory
    options = {"stream_results": True, "yield_per": _BATCH}
    for row in conn.execute(_rows_query(table, tenant_id), execution_options=options):
        mapping = row._mapping
        yield canonical_line({c.name: encode_value(mapping[c]) for c in table.columns})


def table_checksums(conn: sa.Connection, metadata: sa.MetaData, scope: str = "instance",
                    tenant_id: uuid.UUID | None = None) -> dict[str, dict[str, Any]]:
    """``{table: {"rows": n, "sha256": hex}}`` of the live database, as an archive records it."""
    present = set(sa.inspect(conn).get_table_names())
    result = {}
    for table in archived_tables(metadata, scope):
        if table.name not in present:
            continue
        digest, count = hashlib.sha256(), 0
        for line in table_lines(conn, table, tenant_id):
            digest.update(line + b"\n")
            count += 1
        result[table.name] = {"rows": count, "sha256": digest.hexdigest()}
    return result


def schema_revisions(conn: sa.Connection) -> list[str]:
    return sorted(MigrationContext.configure(conn).get_current_heads())


def unknown_tables(conn: sa.Connection, metadata: sa.MetaData) -> list[str]:
    """Tables in the database that no loaded model describes (e.g. a disabled plugin's)."""
    known = set(metadata.tables) | {"alembic_version"}
    return sorted(
        name for name in set(sa.inspect(conn).get_table_names()) - known
        if not _derived(name)
    )


def _derived(name: str) -> bool:
    """A table only migrations make and triggers fill (a search index): never archived."""
    from clientela.core import migrations

    prefixes = tuple(getattr(migrations, "MIGRATION_ONLY_TABLE_PREFIXES", ()))
    return bool(prefixes) and name.startswith(prefixes)


# --- writing ---------------------------------------------------------------


def write(path: str, conn: sa.Connection, metadata: sa.MetaData, *, scope: str,
          tenant: dict[str, Any] | None = None, files: Mapping[str, str] | None = None,
          source: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write an archive of the database behind ``conn`` to ``path``; returns the manifest.

    Read everything in one transaction the caller opened (on PostgreSQL make it
    ``REPEATABLE READ`` so the tables agree with each other). For ``scope="tenant"``
    pass ``tenant={"id": ..., "slug": ...}``. ``files`` maps the relative path to store
    under ``files/`` to the file to read it from.
    """
    tenant_id = uuid.UUID(str(tenant["id"])) if tenant else None
    if scope == "tenant" and tenant_id is None:
        raise ValueError("a tenant archive needs the tenant")
    if scope == "instance":
        strangers = unknown_tables(conn, metadata)
        if strangers:
            raise ArchiveError(
                f"the database holds tables no enabled plugin describes ({', '.join(strangers)}):"
                " enable their plugins so that nothing is left out"
            )
    present = set(sa.inspect(conn).get_table_names())
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "scope": scope,
        "tenant": {"id": str(tenant_id), "slug": tenant.get("slug")} if tenant else None,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "clientela_version": __version__,
        "source": dict(source or {}, backend=conn.dialect.name),
        "schema_revisions": schema_revisions(conn),
        "tables": [],
        "files": [],
    }
    tmp = path + ".partial"
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for table in archived_tables(metadata, scope):
                if table.name not in present:
                    continue
                digest, count = hashlib.sha256(), 0
                with zf.open(TABLES_DIR + table.name + ".jsonl", "w", force_zip64=True) as out:
                    for line in table_lines(conn, table, tenant_id):
                        out.write(line + b"\n")
                        digest.update(line + b"\n")
                        count += 1
                manifest["tables"].append({
                    "name": table.name,
                    "rows": count,
                    "sha256": digest.hexdigest(),
                    "columns": [c.name for c in table.columns],
                })
            for rel, full in sorted((files or {}).items()):
                digest = hashlib.sha256()
                with open(full, "rb") as src, zf.open(FILES_DIR + rel, "w",
                                                      force_zip64=True) as out:
                    for chunk in iter(lambda: src.read(1 << 20), b""):
                        digest.update(chunk)
                        out.write(chunk)
                manifest["files"].append(
                    {"path": rel, "size": os.path.getsize(full), "sha256": digest.hexdigest()}
                )
            zf.writestr(MANIFEST, json.dumps(manifest, indent=2))
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return manifest


# --- reading ---------------------------------------------------------------


def read_manifest(path: str) -> dict[str, Any]:
    """The manifest of the archive at ``path``; ``ArchiveError`` when it is not one."""
    try:
        with zipfile.ZipFile(path) as zf:
            manifest = json.loads(zf.read(MANIFEST))
    except FileNotFoundError:
        raise ArchiveError(f"{path}: no such file") from None
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ArchiveError(f"{path} is not a Clientela archive ({exc})") from None
    if manifest.get("format") != FORMAT:
        raise ArchiveError(f"{path} is not a Clientela archive")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise ArchiveError(
            f"{path} has archive format {manifest['format_version']}; this version of "
            f"Clientela reads up to {FORMAT_VERSION}: upgrade Clientela first"
        )
    return manifest


def check_schema(manifest: dict[str, Any], conn: sa.Connection, metadata: sa.MetaData) -> None:
    """Refuse an archive whose schema is not the one of the database it is loaded into."""
    applied = set(schema_revisions(conn))
    missing = sorted(set(manifest["schema_revisions"]) - applied)
    if missing:
        raise ArchiveError(
            "the archive was made at schema revisions "
            f"{', '.join(manifest['schema_revisions'])}, which this database does not have "
            f"(it is at {', '.join(sorted(applied)) or 'nothing'}): restore it with the "
            "Clientela version (and plugins) that made it, then run 'clientela db upgrade'"
        )
    for entry in manifest["tables"]:
        table = metadata.tables.get(entry["name"])
        if table is None:
            raise ArchiveError(
                f"the archive holds table {entry['name']!r}, which no enabled plugin describes"
            )
        extra = set(entry["columns"]) - {c.name for c in table.columns}
        if extra:
            raise ArchiveError(f"table {entry['name']!r} has no column {', '.join(sorted(extra))}")


def _deferred_columns(table: sa.Table, loaded_before: set[str]) -> list[str]:
    """Nullable reference columns to fill in after every row is in (self and forward refs)."""
    deferred = []
    for fk in table.foreign_key_constraints:
        target = fk.referred_table.name
        if target == table.name or target not in loaded_before:
            for col in fk.columns:
                if col.nullable and col.name not in deferred and not col.primary_key:
                    deferred.append(col.name)
    return deferred


def _plain_table(table: sa.Table, columns: list[str]) -> sa.TableClause:
    by_name = {c.name: c for c in table.columns}
    return sa.table(table.name, *[sa.column(n, by_name[n].type) for n in columns])


def load(path: str, conn: sa.Connection, metadata: sa.MetaData,
         manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    """Insert every row of the archive through ``conn``; returns the manifest.

    Runs inside the caller's transaction: the caller commits, or rolls back on any error,
    so a failed load leaves nothing behind. Each member's checksum is verified against
    the manifest before its rows are inserted. References to rows of the same table (or
    of a table loaded later) are filled in by a second pass.
    """
    manifest = manifest or read_manifest(path)
    check_schema(manifest, conn, metadata)
    entries = {e["name"]: e for e in manifest["tables"]}
    order = [t for t in metadata.sorted_tables if t.name in entries]
    loaded: set[str] = set()
    fixups: list[tuple[sa.Table, list[str], list[dict[str, Any]]]] = []
    with zipfile.ZipFile(path) as zf:
        for table in order:
            entry = entries[table.name]
            member = TABLES_DIR + table.name + ".jsonl"
            # verified before any row goes in; read twice rather than held in memory
            digest = hashlib.sha256()
            with zf.open(member) as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
            if digest.hexdigest() != entry["sha256"]:
                raise ArchiveError(f"table {table.name!r} is corrupt in the archive (checksum)")
            by_name = {c.name: c for c in table.columns}
            deferred = _deferred_columns(table, loaded)
            pk = [c.name for c in table.primary_key.columns]
            # exactly the archive's columns: no Python-side defaults of newer columns,
            # so an archive of an older schema loads into a database at that schema
            target = _plain_table(table, entry["columns"])
            later: list[dict[str, Any]] = []
            batch: list[dict[str, Any]] = []
            count = 0
            with zf.open(member) as fh:
                for line in fh:
                    if not line.strip():
                        continue
                    raw = json.loads(line)
                    row = {name: decode_value(by_name[name], value)
                           for name, value in raw.items()}
                    if deferred and any(row.get(c) is not None for c in deferred):
                        later.append({**{f"k_{k}": row[k] for k in pk},
                                      **{f"v_{c}": row[c] for c in deferred}})
                        row.update({c: None for c in deferred})
                    batch.append(row)
                    count += 1
                    if len(batch) >= _BATCH:
                        conn.execute(target.insert(), batch)
                        batch = []
            if batch:
                conn.execute(target.insert(), batch)
            if count != entry["rows"]:
                raise ArchiveError(f"table {table.name!r}: {count} rows, manifest says "
                                   f"{entry['rows']}")
            if later:
                fixups.append((table, deferred, later))
            loaded.add(table.name)
    for table, deferred, rows in fixups:
        pk = [c.name for c in table.primary_key.columns]
        table = _plain_table(table, pk + deferred)
        stmt = (
            table.update()
            .where(*[table.c[k] == sa.bindparam(f"k_{k}") for k in pk])
            .values({c: sa.bindparam(f"v_{c}") for c in deferred})
        )
        conn.execute(stmt, rows)
    return manifest


def archived_tenant(path: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """The one tenant an archive holds: a tenant archive's, or the single tenant of an
    instance archive (an on-premise backup). ``ArchiveError`` when there is not one."""
    if manifest["scope"] == "tenant":
        return manifest["tenant"]
    with zipfile.ZipFile(path) as zf:
        rows = [json.loads(line) for line in
                zf.read(TABLES_DIR + TENANTS_TABLE + ".jsonl").splitlines() if line]
    if len(rows) != 1:
        raise ArchiveError(f"{path} holds {len(rows)} tenants, not one")
    return {"id": rows[0]["id"], "slug": rows[0]["slug"]}


def load_tenant(path: str) -> dict[str, Any]:
    """Load the one tenant of an archive into the current app's database, all or nothing.

    Accepts a tenant archive or an instance archive holding one tenant (an on-premise
    backup: its shared tables, such as plans, are left out). Runs in one transaction
    of the app's session, as the archive's tenant (so that Row-Level Security in the
    hosted profile accepts its rows) with ORM scoping lifted (the rows carry their
    ``tenant_id``). On any error nothing is left behind. Returns the manifest.
    """
    from clientela.core import tenancy
    from clientela.core.db import db

    manifest = read_manifest(path)
    tenant = archived_tenant(path, manifest)
    keep = {t.name for t in archived_tables(db.metadata, "tenant")}
    manifest = {**manifest, "tenant": tenant,
                "tables": [t for t in manifest["tables"] if t["name"] in keep]}
    with tenancy.tenant_context(uuid.UUID(tenant["id"])), tenancy.unscoped():
        try:
            load(path, db.session.connection(), db.metadata, manifest)
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
    return manifest


def extract_files(path: str, manifest: dict[str, Any], dest: str,
                  keep: Iterable[str] = ()) -> list[str]:
    """Write the archive's files under ``dest`` (checking each checksum); returns their paths.

    Files named in ``keep`` that already exist in ``dest`` are left as they are.
    """
    written = []
    root = os.path.realpath(dest)
    with zipfile.ZipFile(path) as zf:
        for entry in manifest.get("files", []):
            target = os.path.realpath(os.path.join(dest, entry["path"]))
            if entry["path"] in keep and os.path.exists(target):
                continue
            if not target.startswith(root + os.sep):
                raise ArchiveError(f"refusing to write {entry['path']!r} outside {dest}")
            os.makedirs(os.path.dirname(target), exist_ok=True)
            digest = hashlib.sha256()
            tmp = target + ".partial"
            with zf.open(FILES_DIR + entry["path"]) as src, open(tmp, "wb") as out:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != entry["sha256"]:
                os.unlink(tmp)
                raise ArchiveError(f"file {entry['path']!r} is corrupt in the archive")
            os.replace(tmp, target)
            written.append(entry["path"])
    return written


def is_empty(conn: sa.Connection) -> bool:
    """True when the database has no tables, or only migrated-but-empty ones."""
    inspector = sa.inspect(conn)
    for name in inspector.get_table_names():
        if name == "alembic_version" or name.startswith("sqlite_") or _derived(name):
            continue
        table = sa.table(name)
        if conn.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first():
            return False
    return True


__all__ = [
    "ArchiveError",
    "FORMAT",
    "FORMAT_VERSION",
    "archived_tables",
    "check_schema",
    "extract_files",
    "is_empty",
    "load",
    "load_tenant",
    "read_manifest",
    "table_checksums",
    "write",
]
