"""Analytics warehouse: a full refresh of SIZE customers and 2 x SIZE interactions from the
operational database (SQLite and PostgreSQL) into the tenant's DuckDB file, beside DuckDB
loading the same rows from Parquet files of its own, in the same run."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
import tempfile
import uuid

from bench import harness

NAME = "analytics"
DESCRIPTION = (
    "warehouse refresh (full) of SIZE customers and 2 x SIZE interactions: read with "
    "SQLAlchemy in the tenant's context, handed to DuckDB as Arrow batches, vs DuckDB's own "
    "CREATE TABLE AS read_parquet() of the same rows (no operational database read at all)"
)
DEFAULT_SIZE = 100_000
DEFAULT_REPEATS = 3
#: the baseline reads nothing from a database and converts nothing in Python; the warehouse
#: must still stay within a tenth of its speed
TARGET_RATIO = 0.1
CHANNELS = ("phone", "email", "meeting", "web", "letter")


@contextlib.contextmanager
def loaded_app(backend: str, workdir: str, size: int):
    """A migrated database with one tenant holding SIZE customers and 2 x SIZE interactions."""
    import sqlalchemy as sa

    from clientela.core import migrations, services, tenancy
    from clientela.core.app import create_app
    from clientela.core.db import db, new_id
    from clientela.core.models import Customer, Interaction

    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite:///{os.path.join(workdir, uuid.uuid4().hex[:8] + '.db')}"
        else:
            url = stack.enter_context(harness.postgres_database("analytics"))
        home = os.path.join(workdir, uuid.uuid4().hex[:8])
        app = create_app("onprem", DATABASE_URL=url, HOME=home, SECRET_KEY="bench")
        with app.app_context():
            migrations.upgrade(app)
            tenant_id = services.create_tenant(f"bench-{uuid.uuid4().hex[:8]}").id
            db.session.commit()
            with tenancy.tenant_context(tenant_id):
                rows = harness.customer_rows(size)
                for row in rows:
                    row["id"] = new_id()
                for start in range(0, size, 20_000):
                    db.session.execute(sa.insert(Customer), rows[start:start + 20_000])
                r = harness.rng(1)
                base = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
                interactions = [{"customer_id": rows[i % size]["id"],
                                 "channel": CHANNELS[i % len(CHANNELS)], "direction": "inbound",
                                 "occurred_at": base + dt.timedelta(minutes=r.randrange(10**6)),
                                 "subject": "", "body": "", "attributes": {}}
                                for i in range(2 * size)]
                for start in range(0, len(interactions), 20_000):
                    db.session.execute(sa.insert(Interaction), interactions[start:start + 20_000])
                db.session.commit()
            db.session.remove()
        try:
            yield app, tenant_id
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


def export_parquet(app, tenant_id, workdir: str) -> tuple[str, str]:
    """The tenant's rows as Parquet files (untimed): what the baseline loads."""
    import duckdb

    from clientela.core import tenancy
    from clientela.plugins.analytical import warehouse

    with app.app_context(), tenancy.tenant_context(tenant_id):
        warehouse.refresh(full=True)
        path = warehouse.warehouse_path()
    paths = (os.path.join(workdir, "customers.parquet"),
             os.path.join(workdir, "interactions.parquet"))
    con = duckdb.connect(path)
    con.execute(f"COPY dim_customer TO '{paths[0]}' (FORMAT parquet)")
    con.execute(f"COPY fact_interaction TO '{paths[1]}' (FORMAT parquet)")
    con.close()
    return paths


def ours(app, tenant_id, rows: int) -> float:
    from clientela.core import tenancy
    from clientela.core.db import db
    from clientela.plugins.analytical import warehouse

    with app.app_context(), tenancy.tenant_context(tenant_id):
        done = []
        seconds = harness.timed(lambda: done.append(warehouse.refresh(full=True)))
        db.session.remove()
    loaded = sum(done[0].loaded.values())
    if loaded != rows:
        raise RuntimeError(f"the refresh loaded {loaded} rows of {rows}")
    return rows / seconds


def baseline(paths: tuple[str, str], workdir: str, rows: int) -> float:
    import duckdb

    target = os.path.join(workdir, f"raw-{uuid.uuid4().hex[:8]}.duckdb")

    def load():
        con = duckdb.connect(target)
        con.execute("CREATE TABLE dim_customer AS SELECT * FROM read_parquet(?)", [paths[0]])
        con.execute("CREATE TABLE fact_interaction AS SELECT * FROM read_parquet(?)", [paths[1]])
        con.close()

    seconds = harness.timed(load)
    os.remove(target)
    return rows / seconds


def run(size: int, repeats: int) -> list[dict]:
    results = []
    rows = 3 * size
    for backend in ("sqlite", "postgresql"):
        metric = (f"rows/s, full refresh of {size:,} customers + {2 * size:,} interactions, "
                  f"{backend}")
        raw_name = "DuckDB CREATE TABLE AS read_parquet()"
        if backend == "postgresql":
            problem = harness.postgres_problem()
            if problem:
                print(f"{NAME}: {problem}; PostgreSQL skipped", file=sys.stderr)
                results.append(harness.result(NAME, metric, "rows/s", None, None, raw_name,
                                              f">= {TARGET_RATIO}x", None, note=problem))
                continue
        with tempfile.TemporaryDirectory(prefix="clientela-analytics-") as workdir:
            with loaded_app(backend, workdir, size) as (app, tenant_id):
                paths = export_parquet(app, tenant_id, workdir)
                ours_runs, raw_runs = harness.alternate(
                    lambda: ours(app, tenant_id, rows),
                    lambda: baseline(paths, workdir, rows), repeats)
        ours_rps, raw_rps = harness.median(ours_runs), harness.median(raw_runs)
        ratio = ours_rps / raw_rps
        results.append(harness.result(
            NAME, metric, "rows/s", ours_rps, raw_rps, raw_name, f">= {TARGET_RATIO}x",
            ratio >= TARGET_RATIO,
            note=f"runs: ours {[round(x) for x in ours_runs]}, "
                 f"baseline {[round(x) for x in raw_runs]}"))
    return results


if __name__ == "__main__":
    import json

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    print(json.dumps(run(n, int(sys.argv[2]) if len(sys.argv) > 2 else 1), indent=2))
