"""Backup and restore of an on-premise instance: its database and the files of its home folder.

A backup is a portable archive (``clientela.core.archive``) of every table, plus the
files of ``CLIENTELA_HOME``. It is consistent while the server runs: on SQLite the
database (and any other SQLite file in the home, such as the job queue) is first copied
with SQLite's online backup API; on PostgreSQL every table is read in one
``REPEATABLE READ`` read-only transaction. Because the format is the same for both
backends, a backup made on SQLite restores on PostgreSQL and the other way round, and a
tenant exported from the hosted service restores here.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Iterator

import click
import sqlalchemy as sa
from alembic import command
from alembic.util import CommandError
from flask import Flask

from clientela.core import archive, migrations
from clientela.core.db import db
from clientela.core.errors import ConfigurationError

SQLITE_HEADER = b"SQLite format 3\x00"
#: files of the home folder that a backup never copies as they are
_SKIPPED_SUFFIXES = ("-wal", "-shm", "-journal", ".partial")
#: what a home folder just created by ``clientela restore`` itself may already hold
#: (the key it just generated, a configuration file written to point at the database)
_FRESH_HOME_FILES = {"secret_key", "clientela.toml"}


def _database_file(app: Flask) -> str | None:
    url = db.engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return os.path.abspath(url.database)
    return None


def home_files(app: Flask, exclude: set[str] = frozenset()) -> list[str]:
    """Paths (relative to the home) of the files a backup holds.

    Everything in ``CLIENTELA_HOME`` except the live database (which the archive holds
    as rows), SQLite's side files and ``exclude`` (e.g. the backup being written). The
    secret key is included: sessions and signed links survive a restore, which makes
    the backup file as secret as the database itself (it is written with mode 0600).
    """
    home = os.path.abspath(app.config["HOME"])
    skip = {os.path.abspath(p) for p in exclude}
    database = _database_file(app)
    if database:
        skip.add(database)
    found = []
    for folder, dirs, names in os.walk(home):
        dirs.sort()
        for name in sorted(names):
            full = os.path.join(folder, name)
            if full in skip or name.endswith(_SKIPPED_SUFFIXES) or not os.path.isfile(full):
                continue
            if database and full.startswith(database):  # clientela.db-wal and friends
                continue
            found.append(os.path.relpath(full, home))
    return found


def _is_sqlite(path: str) -> bool:
    with open(path, "rb") as fh:
        return fh.read(16) == SQLITE_HEADER


def sqlite_snapshot(source: str, target: str) -> None:
    """Copy a live SQLite database consistently (the online backup API)."""
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        with dst:
            src.backup(dst)
    finally:
        dst.close()
        src.close()


@contextlib.contextmanager
def _snapshot_connection(app: Flask, workdir: str) -> Iterator[sa.Connection]:
    """A connection that sees one consistent moment of the database."""
    database = _database_file(app)
    if database:
        snapshot = os.path.join(workdir, "database.db")
        sqlite_snapshot(database, snapshot)
        engine = sa.create_engine(f"sqlite:///{snapshot}")
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            engine.dispose()
        return
    with db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                yield conn
        else:
            with conn.begin():
                yield conn


def backup(app: Flask, path: str) -> dict:
    """Write a backup of the instance to ``path``; returns the archive's manifest."""
    path = os.path.abspath(path)
    home = os.path.abspath(app.config["HOME"])
    rels = home_files(app, exclude={path, path + ".partial"})
    with tempfile.TemporaryDirectory(prefix="clientela-backup-") as workdir:
        files = {}
        for rel in rels:
            full = os.path.join(home, rel)
            if _is_sqlite(full):
                # other SQLite files in the home (the job queue, ...): a consistent copy too
                staged = os.path.join(workdir, "home", rel)
                os.makedirs(os.path.dirname(staged), exist_ok=True)
                sqlite_snapshot(full, staged)
                full = staged
            files[rel] = full
        old_umask = os.umask(0o077)
        try:
            with _snapshot_connection(app, workdir) as conn:
                manifest = archive.write(path, conn, db.metadata, scope="instance", files=files,
                                         source={"profile": app.config["PROFILE"]})
        finally:
            os.umask(old_umask)
    os.chmod(path, 0o600)
    return manifest


def _fresh_files(app: Flask) -> set[str]:
    # and the job queue's SQLite file, which starting the app may create empty
    jobs = app.config.get("JOBS_SQLITE_FILE")
    return _FRESH_HOME_FILES | ({jobs} if jobs else set())


def _unexpected_home_files(app: Flask) -> list[str]:
    fresh = _fresh_files(app)
    return [f for f in home_files(app) if f not in fresh]


def _clear_replaced_sqlite_files(app: Flask, manifest: dict) -> None:
    """A SQLite file about to be replaced goes with its -wal/-shm, which would corrupt
    the restored copy if SQLite replayed them into it."""
    home = app.config["HOME"]
    for entry in manifest.get("files", []):
        full = os.path.join(home, entry["path"])
        if os.path.exists(full) and _is_sqlite(full):
            for path in (full, full + "-wal", full + "-shm", full + "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)


def restore(app: Flask, path: str) -> dict:
    """Restore a backup (or a tenant exported from the hosted service) into an empty instance.

    The database is brought to the archive's schema revisions, the rows are loaded in
    one transaction, then the database is upgraded to this version's schema, so an
    older backup restores into a newer Clientela. Refuses a database that holds any
    row, or a home folder that holds files of its own.
    """
    manifest = archive.read_manifest(path)
    with db.engine.connect() as conn:
        if not archive.is_empty(conn):
            raise ConfigurationError(
                "restore needs an empty instance, and this database already holds data: "
                "point CLIENTELA_HOME (and DATABASE_URL) at a new, empty one"
            )
    unexpected = _unexpected_home_files(app)
    if unexpected:
        raise ConfigurationError(
            f"restore needs an empty instance, and {app.config['HOME']} already holds "
            f"{', '.join(unexpected[:3])}{' ...' if len(unexpected) > 3 else ''}"
        )
    cfg = migrations.alembic_config(app)
    try:
        for revision in manifest["schema_revisions"]:
            command.upgrade(cfg, revision)
    except CommandError as exc:
        raise archive.ArchiveError(
            f"the archive was made at schema {', '.join(manifest['schema_revisions'])}, "
            f"which this version of Clientela does not know ({exc}): upgrade Clientela "
            "(or install the plugins that made it) first"
        ) from None
    with db.engine.begin() as conn:
        archive.load(path, conn, db.metadata, manifest)
        if manifest["scope"] == "tenant":
            # a tenant the hosted service had suspended is its own master here
            tenants = db.metadata.tables[archive.TENANTS_TABLE]
            conn.execute(tenants.update().where(tenants.c.status != "active")
                         .values(status="active"))
    _clear_replaced_sqlite_files(app, manifest)
    archive.extract_files(path, manifest, app.config["HOME"], keep={"clientela.toml"})
    secret = os.path.join(app.config["HOME"], "secret_key")
    if os.path.exists(secret):
        os.chmod(secret, 0o600)
    migrations.upgrade(app)
    return manifest


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
def backup_command(file: str):
    """Write a consistent backup of the database and the home folder to FILE (server may run)."""
    from flask import current_app

    manifest = backup(current_app._get_current_object(), file)
    rows = sum(t["rows"] for t in manifest["tables"])
    click.echo(f"backup written to {file}: {len(manifest['tables'])} tables, {rows} rows, "
               f"{len(manifest['files'])} files")


@click.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def restore_command(file: str):
    """Restore FILE (a backup, or a tenant exported from a hosted service) into an empty instance."""
    from flask import current_app

    manifest = restore(current_app._get_current_object(), file)
    rows = sum(t["rows"] for t in manifest["tables"])
    what = f"tenant '{manifest['tenant']['slug']}'" if manifest.get("tenant") else "instance"
    click.echo(f"restored {what}: {len(manifest['tables'])} tables, {rows} rows, "
               f"{len(manifest['files'])} files")
