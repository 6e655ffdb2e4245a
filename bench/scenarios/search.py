"""Search: ``q=`` by name prefix, e-mail and phone over SIZE customers, PostgreSQL and SQLite."""

from __future__ import annotations

import os
import re
import tempfile
import time
import uuid

from bench import harness

NAME = "search"
DESCRIPTION = ("q= search (first page, 25 rows by name) by name prefix, e-mail prefix and "
               "phone over SIZE customers of one tenant, on PostgreSQL and SQLite, vs the "
               "same query as hand-written SQL through the bare driver on the same indexes")
DEFAULT_SIZE = 200_000  # make bench fits ~15 min on 2 cores; SIZE=1000000 for the issue-size run
DEFAULT_REPEATS = 5
QUERIES_PER_KIND = 40
TARGET_P95_MS = 20.0
PAGE = 25

COLUMNS = ("tenant_id", "id", "kind", "display_name", "first_name", "last_name",
           "organisation_name", "email", "phone", "emails", "phones", "addresses", "stage",
           "tags", "attributes", "created_at", "updated_at")


# --- queries -----------------------------------------------------------------------


def sample_queries(rows: list[dict]) -> dict[str, list[str]]:
    """What people type: name prefixes, e-mail prefixes, phones as written (deterministic)."""
    r = harness.rng(7)
    people = [row for row in rows if row["kind"] == "person"]
    orgs = [row for row in rows if row["kind"] == "organisation"] or people
    names, emails, phones = [], [], []
    for i in range(QUERIES_PER_KIND):
        person = r.choice(people)
        if i % 3 == 0:
            names.append(person["last_name"][:4])  # "Ross"
        elif i % 3 == 1:
            names.append(f"{person['first_name']} {person['last_name'][:3]}")  # "Mario Ros"
        else:
            names.append(r.choice(orgs)["display_name"][:8])  # "Acme Ros"
        email = r.choice(rows)["email"]
        local = email.split("@")[0]
        emails.append(email[: len(local) + 1] if i % 2 else ".".join(local.split(".")[:2]))
        phone = r.choice(rows)["phone"]
        digits = phone[1:]
        if i % 2:  # international, as written: "+39 612 3456"
            phones.append(f"+{digits[:2]} {digits[2:5]} {digits[5:9]}")
        else:  # national with a trunk 0, whatever the country: "0 612 345"
            cc = next(c for c in harness.COUNTRY_CODES if digits.startswith(c))
            national = digits[len(cc):]
            phones.append(f"0{national[:2]} {national[2:6]}")
    return {"name": names, "email": emails, "phone": phones}


def handwritten(dialect: str, tenant_id: uuid.UUID, q: str) -> tuple[str, list]:
    """The search written by hand for the bare driver, on the indexes of 0006_search."""
    digits = re.sub(r"\D", "", q)
    phone_like = bool(re.fullmatch(r"[\d\s()+.\-/]+", q)) and len(digits) >= 3
    international = ("+" + digits[2:] if digits.startswith("00") else "+" + digits) \
        if phone_like else None
    national = [] if not phone_like or q.startswith("+") else [digits] + (
        [digits[1:]] if digits.startswith("0") and len(digits) > 3 else [])
    order = f" ORDER BY display_name, id LIMIT {PAGE}"
    if dialect == "sqlite":
        term = '"' + q.lower().replace('"', '""') + '"'
        parts = [f"({{display_name first_name last_name organisation_name}} : ^{term}*)",
                 f"(email : ^{term}*)"]
        alts = ([f'"p{international[1:]}"*'] if international else []) + [
            f'"{n}"*' for n in national]
        if alts:
            parts.append("(phone : (" + " OR ".join(alts) + "))")
        sql = ("SELECT customers.* FROM customers JOIN customers_fts "
               "ON customers_fts.rowid = customers.rowid "
               "WHERE customers.tenant_id = ? AND customers_fts MATCH ?" + order)
        return sql, [tenant_id.hex, " OR ".join(parts)]
    # a byte-order range on the text_pattern_ops indexes (a LIKE would lose the index in
    # the generic plan PostgreSQL uses once psycopg prepares the repeated statement)
    top = "\U0010ffff"
    conds, params = [], []

    def prefix(expression: str, value: str) -> None:
        conds.append(f"({expression} ~>=~ %s AND {expression} ~<~ %s)")
        params.extend([value, value + top])

    for column in ("display_name", "first_name", "last_name", "organisation_name"):
        prefix(f"lower({column})", q.lower())
    prefix("email", q.lower())
    if international:
        prefix("phone", international)
    for n in national:
        for start in (3, 4, 5):
            prefix(f"substr(phone, {start})", n)
    # ids first, then sort and page: see clientela.core.search._postgresql_condition
    sql = (f"SELECT * FROM customers WHERE tenant_id = %s AND id = ANY(ARRAY("
           f"SELECT id FROM customers WHERE tenant_id = %s AND ({' OR '.join(conds)})))"
           + order)
    return sql, [tenant_id, tenant_id] + params


# --- data ---------------------------------------------------------------------------


def _seed_postgresql(url: str, tenant_id: uuid.UUID, rows: list[dict]) -> None:
    import psycopg
    from psycopg.types.json import Jsonb

    with psycopg.connect(harness.psycopg_dsn(url)) as conn:
        with conn.cursor().copy(f"COPY customers ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row["tenant_id"], row["id"], row["kind"], row["display_name"],
                                row["first_name"], row["last_name"], row["organisation_name"],
                                row["email"], row["phone"], Jsonb([]), Jsonb([]), Jsonb([]),
                                row["stage"], Jsonb([]), Jsonb({}), row["created_at"],
                                row["created_at"]])
        conn.execute("ANALYZE customers")


def _seed_sqlite(path: str, tenant_id: uuid.UUID, rows: list[dict]) -> None:
    import sqlite3

    conn = sqlite3.connect(path)
    sql = (f"INSERT INTO customers ({', '.join(COLUMNS)}) VALUES "
           f"({', '.join('?' * len(COLUMNS))})")
    with conn:
        conn.executemany(sql, (
            (row["tenant_id"].hex, row["id"].hex, row["kind"], row["display_name"],
             row["first_name"], row["last_name"], row["organisation_name"], row["email"],
             row["phone"], "[]", "[]", "[]", row["stage"], "[]", "{}",
             row["created_at"].strftime("%Y-%m-%d %H:%M:%S.%f"),
             row["created_at"].strftime("%Y-%m-%d %H:%M:%S.%f"))
            for row in rows))
    conn.close()


def _build(backend: str, url: str, home: str, rows: list[dict]):
    """An app on a migrated database holding ``rows`` in one tenant; returns (app, tenant id)."""
    from clientela.core import migrations
    from clientela.core.app import create_app
    from clientela.core.db import db
    from clientela.core.models import Tenant

    app = create_app("onprem", DATABASE_URL=url, HOME=home, SECRET_KEY="bench")
    with app.app_context():
        migrations.upgrade(app)
        # the tenant row alone: plugins' per-tenant defaults play no part in search
        tenant = Tenant(slug="bench-search", name="bench-search")
        db.session.add(tenant)
        db.session.commit()
        tenant_id = tenant.id
        db.session.remove()
        db.engine.dispose()
    for row in rows:
        row["tenant_id"] = tenant_id
    if backend == "postgresql":
        _seed_postgresql(url, tenant_id, rows)
    else:
        _seed_sqlite(url.removeprefix("sqlite:///"), tenant_id, rows)
    return app, tenant_id


# --- measuring ---------------------------------------------------------------------------


def _measure_backend(backend: str, url: str, home: str, rows: list[dict], repeats: int
                     ) -> list[dict]:
    import sqlalchemy as sa

    from clientela.core import search, tenancy
    from clientela.core.db import db
    from clientela.core.models import Customer

    t0 = time.perf_counter()
    app, tenant_id = _build(backend, url, home, rows)
    load_s = time.perf_counter() - t0
    queries = sample_queries(rows)

    if backend == "postgresql":
        import psycopg

        raw = psycopg.connect(harness.psycopg_dsn(url), autocommit=True)
    else:
        import sqlite3

        raw = sqlite3.connect(url.removeprefix("sqlite:///"))

    out = []
    with app.app_context(), tenancy.tenant_context(tenant_id):
        def ours(q: str) -> int:
            stmt = search.filter_customers(sa.select(Customer), q).order_by(
                Customer.display_name, Customer.id).limit(PAGE)
            found = db.session.execute(stmt).scalars().all()
            db.session.rollback()  # a request ends its transaction
            return len(found)

        def bare(q: str) -> int:
            sql, params = handwritten(backend, tenant_id, q)
            if backend == "postgresql":
                # planned for its own values each time, as the product's query is
                return len(raw.execute(sql, params, prepare=False).fetchall())
            return len(raw.execute(sql, params).fetchall())

        # the two must agree before their speed means anything
        for kind, qs in queries.items():
            for q in qs:
                if ours(q) != bare(q):
                    raise AssertionError(f"{backend}: ours and the baseline disagree on {q!r}")

        for kind, qs in queries.items():
            def run_all(fn):
                def go():
                    times = []
                    for q in qs:
                        start = time.perf_counter()
                        fn(q)
                        times.append((time.perf_counter() - start) * 1000)
                    return times
                return go

            ours_runs, bare_runs = harness.alternate(run_all(ours), run_all(bare), repeats)
            ours_p95 = harness.median(harness.percentile(t, 95) for t in ours_runs)
            bare_p95 = harness.median(harness.percentile(t, 95) for t in bare_runs)
            ours_p50 = harness.median(harness.percentile(t, 50) for t in ours_runs)
            hits = [bare(q) for q in qs]
            out.append(harness.result(
                NAME, f"{backend} {kind} p95", "ms", ours_p95, bare_p95, "hand-written SQL",
                f"p95 <= {TARGET_P95_MS:g} ms", ours_p95 <= TARGET_P95_MS,
                note=(f"{len(rows):,} customers loaded in {load_s:.0f} s; p50 {ours_p50:.2f} ms; "
                      f"{len(qs)} queries such as {qs[0]!r}, {qs[1]!r}; "
                      f"{sum(1 for h in hits if h)} found something, "
                      f"{sum(1 for h in hits if h == PAGE)} filled a page"),
            ))
    raw.close()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    return out


def run(size: int, repeats: int) -> list[dict]:
    import datetime as dt

    from clientela.core.db import new_id

    rows = harness.customer_rows(size)
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    for i, row in enumerate(rows):
        row["id"] = new_id()
        row["created_at"] = now
    results = []
    problem = harness.postgres_problem()
    if problem:
        results.append(harness.result(NAME, "postgresql", "ms", None, None, "hand-written SQL",
                                      f"p95 <= {TARGET_P95_MS:g} ms", None, note=problem))
    else:
        with tempfile.TemporaryDirectory() as home, harness.postgres_database("search") as url:
            results += _guarded("postgresql", url, home, rows, repeats)
    with tempfile.TemporaryDirectory() as home:
        url = f"sqlite:///{os.path.join(home, 'clientela.db')}"
        results += _guarded("sqlite", url, home, rows, repeats)
    return results


def _guarded(backend: str, url: str, home: str, rows: list[dict], repeats: int) -> list[dict]:
    """One backend's rows, or a row saying why it failed (the other backend still runs)."""
    try:
        return _measure_backend(backend, url, home, rows, repeats)
    except Exception as exc:  # noqa: BLE001 - reported in the table
        return [harness.result(NAME, f"{backend} error", "ms", None, None, "hand-written SQL",
                               f"p95 <= {TARGET_P95_MS:g} ms", None,
                               note=f"{type(exc).__name__}: {str(exc).splitlines()[0]}")]
