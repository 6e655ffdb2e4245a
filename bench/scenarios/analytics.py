"""Analytics warehouse load: SIZE customers from the operational database (SQLite and
PostgreSQL) and 10 x SIZE order lines from an ERP export (Parquet) into the tenant's DuckDB
file, through the plugin (full refresh + transaction import), beside DuckDB loading the same
rows from Parquet files of its own, in the same run.

The data are generated column-wise with numpy (and written by DuckDB), never row by row in
Python: the only per-row Python is the dicts SQLAlchemy needs to insert the customers.
"""

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
    "warehouse load of SIZE customers (operational database, full refresh: SQLAlchemy in "
    "the tenant's context, Arrow batches into DuckDB) and 10 x SIZE order lines (ERP "
    "Parquet export: matched by external id, validated, converted), vs DuckDB's own CREATE "
    "TABLE AS read_parquet() of the same customers and lines (no database read, no checks)"
)
DEFAULT_SIZE = 100_000
DEFAULT_REPEATS = 3
#: the baseline reads nothing from a database and checks nothing; the warehouse must still
#: stay within a tenth of its speed
TARGET_RATIO = 0.1
LINES_PER_CUSTOMER = 10
LINES_PER_ORDER = 2
MAPPING = {"Order": "order_id", "Date": "ordered_at", "Customer": "customer_external_id",
           "SKU": "product_id", "Qty": "quantity", "Total": "amount"}
#: BENCH_ANALYTICS_BACKENDS=sqlite runs one backend only (the full size takes long on PG)
BACKENDS = tuple(b for b in os.environ.get("BENCH_ANALYTICS_BACKENDS",
                                           "sqlite,postgresql").split(",") if b)


def customer_columns(size: int) -> dict:
    """``size`` customers as numpy columns (persons; external ids C0, C1, ...)."""
    import numpy as np

    rng = np.random.default_rng(harness.SEED)
    first = np.array(harness.FIRST_NAMES)[rng.integers(0, len(harness.FIRST_NAMES), size)]
    last = np.array(harness.LAST_NAMES)[rng.integers(0, len(harness.LAST_NAMES), size)]
    numbers = np.arange(size).astype(str)
    return {
        "first_name": first, "last_name": last,
        "display_name": np.char.add(np.char.add(first, " "), last),
        "email": np.char.add(np.char.add(np.char.add(np.char.add(
            np.char.lower(first), "."), np.char.lower(last)), "."),
            np.char.add(numbers, "@example.com")),
        "external_id": np.char.add("C", numbers),
        "stage": np.array(harness.STAGES)[np.arange(size) % len(harness.STAGES)],
    }


def write_transactions(path: str, size: int) -> int:
    """10 x ``size`` order lines (two per order) as an ERP's Parquet export; returns the
    number of lines. Buyers are skewed (a few buy often, many once or twice), days span two
    years, 50 products, amounts around a customer-specific mean."""
    import duckdb
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(harness.SEED + 1)
    orders = size * LINES_PER_CUSTOMER // LINES_PER_ORDER
    buyer = np.floor(size * rng.random(orders) ** 2.5).astype(np.int64)
    day = rng.integers(0, 730, orders)
    lines = orders * LINES_PER_ORDER
    table = pa.table({
        "order_no": np.repeat(np.arange(orders), LINES_PER_ORDER),
        "buyer": np.repeat(buyer, LINES_PER_ORDER),
        "day": np.repeat(day, LINES_PER_ORDER).astype(np.int32),
        "product": rng.integers(0, 50, lines),
        "qty": rng.integers(1, 4, lines),
        "amount": np.round(5 + rng.random(lines) * 20 * (1 + np.repeat(buyer, LINES_PER_ORDER)
                                                         % 7), 2),
    })
    con = duckdb.connect()
    con.register("generated", table)
    con.execute(f"""
        COPY (SELECT 'O' || order_no AS "Order", DATE '2024-01-01' + day AS "Date",
                     'C' || buyer AS "Customer", 'P' || product AS "SKU", qty AS "Qty",
                     amount AS "Total"
              FROM generated ORDER BY order_no)
        TO '{path}' (FORMAT parquet)""")
    con.close()
    return lines


@contextlib.contextmanager
def loaded_app(backend: str, workdir: str, size: int):
    """A migrated database with one tenant holding SIZE customers; their rows as Parquet
    (what the baseline loads) and the ERP export of 10 x SIZE lines."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    import sqlalchemy as sa

    from clientela.core import migrations, services, tenancy
    from clientela.core.app import create_app
    from clientela.core.db import db, new_id
    from clientela.core.models import Customer

    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite:///{os.path.join(workdir, uuid.uuid4().hex[:8] + '.db')}"
        else:
            url = stack.enter_context(harness.postgres_database("analytics"))
        home = os.path.join(workdir, uuid.uuid4().hex[:8])
        app = create_app("onprem", DATABASE_URL=url, HOME=home, SECRET_KEY="bench")
        columns = customer_columns(size)
        ids = [new_id() for _ in range(size)]
        now = dt.datetime(2025, 12, 1, tzinfo=dt.timezone.utc)
        with app.app_context():
            migrations.upgrade(app)
            tenant_id = services.create_tenant(f"bench-{uuid.uuid4().hex[:8]}").id
            db.session.commit()
            with tenancy.tenant_context(tenant_id):
                names = list(columns)
                lists = [columns[n].tolist() for n in names]
                for start in range(0, size, 20_000):
                    chunk = [dict(zip(names, values), id=ids[start + i], kind="person",
                                  emails=[], phones=[], addresses=[], tags=[], attributes={})
                             for i, values in enumerate(zip(*(c[start:start + 20_000]
                                                              for c in lists)))]
                    db.session.execute(sa.insert(Customer), chunk)
                db.session.commit()
            db.session.remove()
        paths = {"customers": os.path.join(workdir, "customers.parquet"),
                 "transactions": os.path.join(workdir, "erp-lines.parquet")}
        stamps = pa.array(np.full(size, np.datetime64(now.replace(tzinfo=None), "us")))
        pq.write_table(pa.table({
            "customer_id": pa.array([str(i) for i in ids]), "kind": pa.array(["person"] * size),
            "display_name": columns["display_name"], "email": columns["email"],
            "external_id": columns["external_id"], "stage": columns["stage"],
            "created_at": stamps, "updated_at": stamps}), paths["customers"])
        lines = write_transactions(paths["transactions"], size)
        try:
            yield app, tenant_id, paths, lines
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


def ours(app, tenant_id, paths: dict, size: int, lines: int) -> float:
    """Seconds for a fresh warehouse: full refresh of the customers, then the ERP import."""
    from clientela.core import tenancy
    from clientela.core.db import db
    from clientela.plugins.analytical import imports, warehouse

    with app.app_context(), tenancy.tenant_context(tenant_id):
        path = warehouse.warehouse_path()
        for leftover in (path, path + ".wal"):
            if os.path.exists(leftover):
                os.remove(leftover)
        done = {}

        def load():
            done["refresh"] = warehouse.refresh(full=True)
            done["import"] = imports.import_transactions(paths["transactions"],
                                                         columns=MAPPING)

        seconds = harness.timed(load)
        db.session.remove()
    loaded = done["refresh"].loaded["dim_customer"]
    if loaded != size or done["import"].matched != lines or done["import"].rejected:
        raise RuntimeError(f"loaded {loaded} customers of {size}, matched "
                           f"{done['import'].matched} lines of {lines} "
                           f"({done['import'].rejected} rejected)")
    return seconds


def baseline(paths: dict, workdir: str) -> float:
    import duckdb

    target = os.path.join(workdir, f"raw-{uuid.uuid4().hex[:8]}.duckdb")

    def load():
        con = duckdb.connect(target)
        con.execute("CREATE TABLE dim_customer AS SELECT * FROM read_parquet(?)",
                    [paths["customers"]])
        con.execute("CREATE TABLE fact_transaction AS SELECT * FROM read_parquet(?)",
                    [paths["transactions"]])
        con.close()

    seconds = harness.timed(load)
    os.remove(target)
    return seconds


def run(size: int, repeats: int) -> list[dict]:
    results = []
    lines = size * LINES_PER_CUSTOMER
    rows = size + lines
    for backend in BACKENDS:
        metric = (f"rows/s, warehouse load of {size:,} customers ({backend}) + {lines:,} "
                  "order lines (Parquet import)")
        raw_name = "DuckDB CREATE TABLE AS read_parquet()"
        if backend == "postgresql":
            problem = harness.postgres_problem()
            if problem:
                print(f"{NAME}: {problem}; PostgreSQL skipped", file=sys.stderr)
                results.append(harness.result(NAME, metric, "rows/s", None, None, raw_name,
                                              f">= {TARGET_RATIO}x", None, note=problem))
                continue
        with tempfile.TemporaryDirectory(prefix="clientela-analytics-") as workdir:
            with loaded_app(backend, workdir, size) as (app, tenant_id, paths, made):
                assert made == lines
                ours_runs, raw_runs = harness.alternate(
                    lambda: ours(app, tenant_id, paths, size, lines),
                    lambda: baseline(paths, workdir), repeats)
        ours_rps = rows / harness.median(ours_runs)
        raw_rps = rows / harness.median(raw_runs)
        ratio = ours_rps / raw_rps
        results.append(harness.result(
            NAME, metric, "rows/s", ours_rps, raw_rps, raw_name, f">= {TARGET_RATIO}x",
            ratio >= TARGET_RATIO,
            note=f"seconds: ours {[round(x, 1) for x in ours_runs]}, "
                 f"baseline {[round(x, 1) for x in raw_runs]}"))
    return results


if __name__ == "__main__":
    import json

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    print(json.dumps(run(n, int(sys.argv[2]) if len(sys.argv) > 2 else 1), indent=2))
