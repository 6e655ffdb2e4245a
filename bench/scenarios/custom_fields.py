"""Custom field filter: list customers filtered on a custom field vs on an indexed column."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
import uuid

from bench import harness

NAME = "custom_fields"
DESCRIPTION = ("GET /customers-style list (first page of 25 by name, and the total) filtered "
               "on a custom field (attr.segment, attr.contact: expression indexes) vs the same "
               "filter on the built-in indexed column (stage, email), SIZE customers of one "
               "tenant, on PostgreSQL and SQLite")
DEFAULT_SIZE = 200_000  # SIZE=1000000 for the issue-size run
DEFAULT_REPEATS = 5
TARGET_RATIO = 0.5  # ours (custom field) at least half as fast as the built-in column
PAGE = 25

COLUMNS = ("tenant_id", "id", "kind", "display_name", "first_name", "last_name",
           "organisation_name", "email", "phone", "emails", "phones", "addresses", "stage",
           "tags", "attributes", "created_at", "updated_at")


def _seed(backend: str, url: str, rows: list[dict]) -> None:
    if backend == "postgresql":
        import psycopg
        from psycopg.types.json import Jsonb

        with psycopg.connect(harness.psycopg_dsn(url)) as conn:
            with conn.cursor().copy(f"COPY customers ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([row["tenant_id"], row["id"], row["kind"],
                                    row["display_name"], row["first_name"], row["last_name"],
                                    row["organisation_name"], row["email"], row["phone"],
                                    Jsonb([]), Jsonb([]), Jsonb([]), row["stage"], Jsonb([]),
                                    Jsonb(row["attributes"]), row["created_at"],
                                    row["created_at"]])
            conn.execute("ANALYZE customers")
        return
    import json
    import sqlite3

    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    with conn:
        conn.executemany(
            f"INSERT INTO customers ({', '.join(COLUMNS)}) VALUES "
            f"({', '.join('?' * len(COLUMNS))})",
            ((row["tenant_id"].hex, row["id"].hex, row["kind"], row["display_name"],
              row["first_name"], row["last_name"], row["organisation_name"], row["email"],
              row["phone"], "[]", "[]", "[]", row["stage"], "[]", json.dumps(row["attributes"]),
              row["created_at"].strftime("%Y-%m-%d %H:%M:%S.%f"),
              row["created_at"].strftime("%Y-%m-%d %H:%M:%S.%f")) for row in rows))
        conn.execute("ANALYZE")
    conn.close()


def _build(backend: str, url: str, home: str, rows: list[dict]):
    """A migrated database, a tenant with the custom fields defined (and indexed), then
    ``rows`` loaded in bulk; returns (app, tenant id)."""
    from clientela.core import migrations, tenancy
    from clientela.core.app import create_app
    from clientela.core.db import db
    from clientela.core.models import Tenant
    from clientela.plugins.tailormade import custom_fields, packages

    app = create_app("onprem", DATABASE_URL=url, HOME=home, SECRET_KEY="bench")
    with app.app_context():
        migrations.upgrade(app)
        tenant = Tenant(slug="bench-fields", name="bench-fields")
        db.session.add(tenant)
        db.session.commit()
        tenant_id = uuid.UUID(int=tenant.id.int)
        with tenancy.tenant_context(tenant_id):
            principal = packages.principal_for_cli(tenant_id)
            custom_fields.create_field(principal, {
                "entity_type": "customers", "key": "segment", "type": "single_choice",
                "choices": ["lead", "prospect", "customer", "former"]})
            custom_fields.create_field(principal, {
                "entity_type": "customers", "key": "contact", "type": "email"})
            db.session.commit()
        db.session.remove()
        db.engine.dispose()
    for row in rows:
        row["tenant_id"] = tenant_id
    _seed(backend, url, rows)
    return app, tenant_id


def _measure_backend(backend: str, url: str, home: str, rows: list[dict], repeats: int
                     ) -> list[dict]:
    import sqlalchemy as sa

    from clientela.core import customers, tenancy
    from clientela.core.db import db
    from clientela.core.models import Customer

    t0 = time.perf_counter()
    app, tenant_id = _build(backend, url, home, rows)
    load_s = time.perf_counter() - t0
    out = []
    with app.app_context(), tenancy.tenant_context(tenant_id):
        def listing(condition) -> tuple[int, int]:
            stmt = customers.order_by(sa.select(Customer).where(condition), Customer, None,
                                      customers.SORTABLE, "display_name")
            items, total = customers.page(stmt, 1, PAGE)
            db.session.rollback()  # a request ends its transaction
            return len(items), total

        sample = [row["email"] for row in rows[:: max(1, len(rows) // 10)]][:10]
        cases = {
            # the same rows either way: the custom field holds a copy of the column
            "stage=former (1 in 4)": (
                lambda i: customers.attribute_conditions(Customer, {"segment": "former"})[0],
                lambda i: Customer.stage == "former"),
            "e-mail = one (1 row)": (
                lambda i: customers.attribute_conditions(
                    Customer, {"contact": sample[i % len(sample)]})[0],
                lambda i: Customer.email == sample[i % len(sample)]),
        }
        for label, (custom, builtin) in cases.items():
            for i in range(len(sample)):
                if listing(custom(i)) != listing(builtin(i)):
                    raise AssertionError(f"{backend} {label}: the custom field and the "
                                         "column disagree")

            def run(make):
                def go():
                    return [harness.timed(lambda: listing(make(i))) * 1000 for i in range(10)]
                return go

            ours_runs, base_runs = harness.alternate(run(custom), run(builtin), repeats)
            ours_ms = harness.median(harness.median(r) for r in ours_runs)
            base_ms = harness.median(harness.median(r) for r in base_runs)
            speed = base_ms / ours_ms if ours_ms else None
            total = listing(custom(0))[1]
            out.append(harness.result(
                NAME, f"{backend} {label} list", "ms", ours_ms, base_ms,
                "same filter on an indexed column", f"speed >= {TARGET_RATIO:g}x the column",
                speed is not None and speed >= TARGET_RATIO,
                note=(f"{len(rows):,} customers loaded in {load_s:.0f} s; {total:,} match; "
                      f"first page of {PAGE} by name + total, median of 10 queries; "
                      f"speed vs the column {speed:.2f}x")))
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    return out


def run(size: int, repeats: int) -> list[dict]:
    from clientela.core.db import new_id

    rows = harness.customer_rows(size)
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    for i, row in enumerate(rows):
        row["id"] = new_id()
        row["created_at"] = now
        row["attributes"] = {"segment": row["stage"], "contact": row["email"]}
    results = []
    problem = harness.postgres_problem()
    if problem:
        results.append(harness.result(NAME, "postgresql", "ms", None, None, "indexed column",
                                      f"speed >= {TARGET_RATIO:g}x", None, note=problem))
    else:
        with tempfile.TemporaryDirectory() as home, harness.postgres_database("fields") as url:
            results += _guarded("postgresql", url, home, rows, repeats)
    with tempfile.TemporaryDirectory() as home:
        url = f"sqlite:///{os.path.join(home, 'clientela.db')}"
        results += _guarded("sqlite", url, home, rows, repeats)
    return results


def _guarded(backend: str, url: str, home: str, rows: list[dict], repeats: int) -> list[dict]:
    try:
        return _measure_backend(backend, url, home, rows, repeats)
    except Exception as exc:  # noqa: BLE001 - reported in the table
        return [harness.result(NAME, f"{backend} error", "ms", None, None, "indexed column",
                               f"speed >= {TARGET_RATIO:g}x", None,
                               note=f"{type(exc).__name__}: {str(exc).splitlines()[0]}")]
