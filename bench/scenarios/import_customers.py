"""Customer import: SIZE generated customers from a CSV file through ``clientela import``'s
code path, beside a raw bulk load of the same rows, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import os
import sys
import tempfile
import uuid
from collections.abc import Iterator

from bench import harness

NAME = "import_customers"
DESCRIPTION = (
    "import SIZE customers from a CSV file (header names mapped, e-mails and phones "
    "validated and normalised, matched on e-mail, batched writes) through the same "
    "function as 'clientela import customers', vs a raw bulk load of the same rows in the "
    "same run: psycopg COPY on PostgreSQL, sqlite3.executemany in one transaction on SQLite"
)
DEFAULT_SIZE = 300_000  # make bench fits ~15 min on 2 cores; SIZE=1000000 for the issue-size run
DEFAULT_REPEATS = 1
TARGET_RATIO = 0.5
#: the installed plugins' ``clientela_validate`` runs once per imported row (what a default
#: install does); measured on at most this many rows, BENCH_IMPORT_PLUGINS_SIZE=1000000 for
#: the issue-size run of that case too
WITH_PLUGINS_SIZE = int(os.environ.get("BENCH_IMPORT_PLUGINS_SIZE", 20_000))

HEADER = ["First name", "Last name", "Company", "Type", "E-mail", "Phone", "Stage"]
RAW_COLUMNS = ("tenant_id", "id", "kind", "display_name", "first_name", "last_name",
               "organisation_name", "email", "phone", "emails", "phones", "addresses", "stage",
               "tags", "attributes", "created_at", "updated_at")


def write_csv(path: str, rows: list[dict]) -> None:
    """The rows as another system would export them: its own header names, phones spaced."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for row in rows:
            phone = row["phone"]
            spaced = f"{phone[:3]} {phone[3:6]} {phone[6:]}"
            if row["kind"] == "organisation":
                writer.writerow(["", "", row["organisation_name"], "Organisation",
                                 row["email"], spaced, row["stage"].capitalize()])
            else:
                writer.writerow([row["first_name"], row["last_name"], "", "",
                                 row["email"], spaced, row["stage"]])


@contextlib.contextmanager
def fresh_app(backend: str, workdir: str, plugins: bool = False
              ) -> Iterator[tuple[object, uuid.UUID, str]]:
    """A migrated, empty database with one tenant; yields (app, tenant id, database URL)."""
    from clientela.core import migrations, services
    from clientela.core.app import create_app
    from clientela.core.db import db

    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite:///{os.path.join(workdir, uuid.uuid4().hex[:8] + '.db')}"
        else:
            url = stack.enter_context(harness.postgres_database("import"))
        app = create_app("onprem", DATABASE_URL=url, HOME=workdir, SECRET_KEY="bench",
                         PLUGINS_ENABLED=None if plugins else [])
        with app.app_context():
            migrations.upgrade(app)
            tenant_id = services.create_tenant(f"bench-{uuid.uuid4().hex[:8]}").id
            db.session.remove()
        try:
            yield app, tenant_id, url
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
            if backend == "sqlite":
                path = url[len("sqlite:///"):]
                for suffix in ("", "-wal", "-shm"):
                    with contextlib.suppress(OSError):
                        os.remove(path + suffix)


def ours(backend: str, workdir: str, path: str, size: int, plugins: bool = False) -> float:
    """Rows per second of ``transfer.import_customers`` (what the CLI command calls)."""
    from clientela.core import tenancy, transfer

    with fresh_app(backend, workdir, plugins) as (app, tenant_id, _):
        with app.app_context(), tenancy.tenant_context(tenant_id, origin="cli"):
            done = []
            with open(path, "rb") as fh:
                seconds = harness.timed(lambda: done.append(
                    transfer.import_customers(fh, filename=path)))
            report = done[0]
        if report.created != size or report.failed:
            raise RuntimeError(f"the import created {report.created} of {size} rows, "
                               f"{report.failed} failed: {report.errors[:3]}")
    return size / seconds


def raw_rows(rows: list[dict], tenant_id: uuid.UUID) -> list[tuple]:
    from clientela.core.db import new_id

    now = dt.datetime.now(dt.timezone.utc)
    return [(tenant_id, new_id(), r["kind"], r["display_name"], r["first_name"], r["last_name"],
             r["organisation_name"], r["email"], r["phone"], "[]", "[]", "[]", r["stage"], "[]",
             "{}", now, now) for r in rows]


def baseline(backend: str, workdir: str, rows: list[dict], plugins: bool = False) -> float:
    """Rows per second of the bare driver loading the same rows, already in table form."""
    size = len(rows)
    with fresh_app(backend, workdir, plugins) as (app, tenant_id, url):
        table_rows = raw_rows(rows, tenant_id)
        columns = ", ".join(RAW_COLUMNS)
        if backend == "sqlite":
            import sqlite3

            stamp = table_rows[0][-1].astimezone(dt.timezone.utc).strftime(
                "%Y-%m-%d %H:%M:%S.%f")
            # stored as SQLAlchemy stores them: uuids as 32 hex digits, times as text
            table_rows = [(r[0].hex, r[1].hex, *r[2:15], stamp, stamp) for r in table_rows]
            conn = sqlite3.connect(url[len("sqlite:///"):])
            # the same settings as the product's connections (core/app.py)
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")
            sql = (f"INSERT INTO customers ({columns}) VALUES "
                   f"({', '.join('?' * len(RAW_COLUMNS))})")

            def load():
                with conn:
                    conn.executemany(sql, table_rows)

            seconds = harness.timed(load)
            conn.close()
        else:
            import psycopg

            with psycopg.connect(harness.psycopg_dsn(url)) as conn:
                def load():
                    with conn.cursor() as cur, cur.copy(
                            f"COPY customers ({columns}) FROM STDIN") as copy:
                        for r in table_rows:
                            copy.write_row(r)
                    conn.commit()

                seconds = harness.timed(load)
    return size / seconds


def generated_rows(size: int) -> list[dict]:
    """``harness.customer_rows``, with the North American numbers made possible ones.

    The harness draws 9 national digits for every country; +1 numbers need 10, and the
    import rightly refuses the others.
    """
    rows = harness.customer_rows(size)
    for row in rows:
        if row["phone"].startswith("+1"):
            row["phone"] += "0"
    return rows


def run(size: int, repeats: int) -> list[dict]:
    """Per backend: the import with the core alone (the bulk path; the target), then with
    every installed plugin enabled, on at most ``WITH_PLUGINS_SIZE`` rows."""
    results = []
    with tempfile.TemporaryDirectory(prefix="clientela-import-") as workdir:
        for plugins in (False, True):
            n = min(size, WITH_PLUGINS_SIZE) if plugins else size
            rows = generated_rows(n)
            path = os.path.join(workdir, f"customers-{n}.csv")
            write_csv(path, rows)
            label = "every installed plugin" if plugins else "core only"
            for backend in ("postgresql", "sqlite"):
                metric = f"rows/s, {n:,} customers, {backend}, {label}"
                raw_name = "psycopg COPY" if backend == "postgresql" else \
                    "sqlite3.executemany, one transaction"
                if backend == "postgresql":
                    problem = harness.postgres_problem()
                    if problem:
                        print(f"{NAME}: {problem}; PostgreSQL skipped", file=sys.stderr)
                        results.append(harness.result(NAME, metric, "rows/s", None, None,
                                                      raw_name, f">= {TARGET_RATIO}x", None,
                                                      note=problem))
                        continue
                ours_runs, raw_runs = harness.alternate(
                    lambda: ours(backend, workdir, path, n, plugins),
                    lambda: baseline(backend, workdir, rows, plugins), repeats)
                ours_rps, raw_rps = harness.median(ours_runs), harness.median(raw_runs)
                ratio = ours_rps / raw_rps
                note = (f"runs: ours {[round(x) for x in ours_runs]}, "
                        f"baseline {[round(x) for x in raw_runs]}")
                if plugins:
                    note += "; every plugin implementing clientela_validate runs once per row"
                results.append(harness.result(
                    NAME, metric, "rows/s", ours_rps, raw_rps, raw_name, f">= {TARGET_RATIO}x",
                    ratio >= TARGET_RATIO, note=note))
    return results


if __name__ == "__main__":
    import json

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    print(json.dumps(run(n, int(sys.argv[2]) if len(sys.argv) > 2 else 1), indent=2))
