"""The analytical plugin: warehouse refresh, imports, every metric on hand-computed data,
segments, the profile and data-subject hooks, and tenant isolation — SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import os
import uuid

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clientela.core import customers, services, tenancy
from clientela.core.db import db
from clientela.core.errors import ValidationError
from clientela.plugins.analytical import imports, metrics, segments, warehouse

AS_OF = dt.date(2026, 6, 30)
UTC = dt.timezone.utc


# --- helpers ---------------------------------------------------------------------------


def customer(**data):
    data.setdefault("first_name", data.get("external_id", "Someone"))
    return services.create_customer(data)


def write_csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


LINE_MAPPING = {"Order": "order_id", "Date": "ordered_at", "Customer": "customer_external_id",
                "SKU": "product_id", "Total": "amount"}


def import_lines(tmp_path, lines, name="lines.csv"):
    """``lines``: (order id, date, customer external id, product, amount)."""
    path = write_csv(tmp_path / name, ["Order", "Date", "Customer", "SKU", "Total"],
                     [(o, d.isoformat(), c, p, a) for o, d, c, p, a in lines])
    report = imports.import_transactions(path, columns=LINE_MAPPING)
    assert report.rejected == 0, report.rejections
    return report


# The RFM data set, computed by hand in docs/plugins/analytical.md ("A worked example"):
# customer -> (days since last purchase, orders, amount per order, days between orders)
RFM_DATA = {
    "A": (2, 8, 50, 10),
    "B": (5, 6, 100, 30),
    "C": (10, 1, 1000, None),
    "D": (20, 4, 25, 5),
    "E": (40, 2, 150, 30),
    "F": (60, 3, 100, 25),
    "G": (100, 7, 10, 20),
    "H": (200, 1, 20, None),
    "I": (300, 2, 250, 100),
    "J": (400, 1, 80, None),
}
EXPECTED_RFM = {  # r, f, m, segment
    "A": (5, 5, 4, "Champions"),
    "B": (5, 4, 5, "Champions"),
    "C": (4, 1, 5, "Promising"),
    "D": (4, 4, 2, "Loyal"),
    "E": (3, 2, 3, "About to sleep"),
    "F": (3, 3, 3, "Need attention"),
    "G": (2, 5, 1, "Can't lose them"),
    "H": (2, 1, 1, "Hibernating"),
    "I": (1, 2, 4, "Hibernating"),
    "J": (1, 1, 2, "Hibernating"),
}


def load_rfm_data(tmp_path) -> dict[str, uuid.UUID]:
    ids = {key: customer(external_id=key).id for key in RFM_DATA}
    db.session.commit()
    lines = []
    for key, (recency, orders, amount, gap) in RFM_DATA.items():
        for n in range(orders):
            day = AS_OF - dt.timedelta(days=recency + n * (gap or 0))
            lines.append((f"{key}{n}", day, key, f"P-{key}", amount))
    # a purchase after the as-of day counts for nothing
    lines.append(("A-late", AS_OF + dt.timedelta(days=3), "A", "P-A", 9999))
    import_lines(tmp_path, lines)
    return ids


# --- the warehouse and its refresh -------------------------------------------------------


def test_each_tenant_has_its_own_warehouse_file(app_ctx, make_tenant):
    first, second = make_tenant("a"), make_tenant("b")
    for t in (first, second):
        with tenancy.tenant_context(t.id):
            customer(first_name=f"Only in {t.slug}")
            db.session.commit()
            warehouse.refresh()
    paths = {t.id: warehouse.warehouse_path(t.id) for t in (first, second)}
    assert paths[first.id] != paths[second.id]
    for t in (first, second):
        assert paths[t.id] == os.path.join(app_ctx.config["HOME"], "tenants", str(t.id),
                                           "warehouse.duckdb")
        con = duckdb.connect(paths[t.id], read_only=True)
        names = [r[0] for r in con.execute("SELECT display_name FROM dim_customer").fetchall()]
        con.close()
        assert names == [f"Only in {t.slug}"]
    with tenancy.tenant_context(first.id):
        tables = set(warehouse.status()["tables"])
    assert {"dim_customer", "dim_date", "dim_channel", "dim_product", "fact_interaction",
            "fact_transaction", "dim_customer_attribute"} <= tables


def test_second_refresh_loads_only_what_changed(tenant):
    people = [customer(first_name=f"P{i}") for i in range(3)]
    when = dt.datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
    for person in people[:2]:
        services.record_interaction(person.id, "phone", occurred_at=when)
    db.session.commit()

    first = warehouse.refresh()
    assert first.loaded == {"dim_customer": 3, "fact_interaction": 2}

    assert warehouse.refresh().loaded == {"dim_customer": 0, "fact_interaction": 0}

    customers.update(people[0].id, {"stage": "customer"}, _admin_principal())
    services.record_interaction(people[2].id, "email", occurred_at=when)
    db.session.commit()
    third = warehouse.refresh()
    assert third.loaded == {"dim_customer": 1, "fact_interaction": 1}

    with warehouse.connect() as con:
        assert con.execute("SELECT count(*), count(DISTINCT customer_id) FROM dim_customer"
                           ).fetchall()[0] == (3, 3)
        assert con.execute("SELECT stage FROM dim_customer WHERE customer_id = ?",
                           [str(people[0].id)]).fetchall()[0] == ("customer",)
        assert con.execute("SELECT count(*) FROM fact_interaction").fetchall()[0] == (3,)
        assert con.execute("SELECT * FROM dim_channel ORDER BY 1").fetchall() == [
            ("email",), ("phone",)]
        assert con.execute("SELECT min(date_key), max(date_key), count(*) FROM dim_date"
                           ).fetchall()[0] == (dt.date(2026, 5, 4), dt.date(2026, 5, 4), 1)


def _admin_principal():
    from clientela.core import access

    user = services.create_user(f"admin-{uuid.uuid4().hex[:6]}@example.com", roles=["admin"])
    return access.principal_for(user, "cli")


def test_deleted_and_merged_customers_leave_the_dimension(tenant, tmp_path):
    admin = _admin_principal()
    keep = customer(external_id="K", email="keep@example.com")
    merged = customer(external_id="M")
    gone = customer(external_id="G")
    for person in (keep, merged, gone):
        services.record_interaction(person.id, "visit",
                                    occurred_at=dt.datetime(2026, 1, 1, tzinfo=UTC))
    db.session.commit()
    import_lines(tmp_path, [("o1", dt.date(2026, 1, 2), "M", "X", 10),
                            ("o2", dt.date(2026, 1, 3), "G", "X", 20),
                            ("o3", dt.date(2026, 1, 4), "K", "X", 30)])

    extra = services.record_interaction(keep.id, "visit",
                                        occurred_at=dt.datetime(2026, 1, 5, tzinfo=UTC))
    db.session.commit()
    warehouse.refresh()

    customers.merge(keep.id, merged.id, admin)
    customers.delete(gone.id, admin)
    db.session.delete(extra)
    db.session.commit()
    report = warehouse.refresh()
    assert (report.merged_customers, report.deleted_customers) == (1, 1)
    with warehouse.connect() as con:
        assert con.execute("SELECT customer_id FROM dim_customer").fetchall() == [(keep.id,)]
        # the merged customer's facts follow it to the survivor; the deleted one's go, and
        # so does a deleted interaction
        assert con.execute("SELECT customer_id, count(*) FROM fact_interaction GROUP BY 1"
                           ).fetchall() == [(keep.id, 2)]
        assert con.execute("SELECT customer_id, sum(amount) FROM fact_transaction GROUP BY 1"
                           ).fetchall() == [(keep.id, 40)]


def test_full_refresh_rebuilds_the_same_warehouse(tenant, tmp_path):
    load_rfm_data(tmp_path)
    with warehouse.connect() as con:
        before = metrics.customer_table(con, "rfm", as_of=AS_OF)[0]
    report = warehouse.refresh(full=True)
    assert report.loaded["dim_customer"] == 10
    with warehouse.connect() as con:
        assert metrics.customer_table(con, "rfm", as_of=AS_OF)[0] == before
        assert con.execute("SELECT count(*) FROM fact_transaction").fetchall()[0] == (36,)


def test_refresh_hands_columns_to_duckdb_not_rows(tenant, monkeypatch):
    for i in range(5):
        customer(first_name=f"C{i}")
    db.session.commit()
    batches = []
    real = warehouse._arrow_batch

    def spy(columns, rows, names):
        table = real(columns, rows, names)
        batches.append(table)
        return table

    monkeypatch.setattr(warehouse, "_arrow_batch", spy)
    monkeypatch.setattr(duckdb.DuckDBPyConnection, "executemany",
                        lambda *a, **k: pytest.fail("row-by-row load"), raising=False)
    warehouse.refresh()
    assert [(b.num_rows, type(b)) for b in batches if "display_name" in b.column_names] == [
        (5, pa.Table)]


def test_the_refresh_command_and_the_scheduled_job(app, tenant):
    from click.testing import CliRunner

    from clientela.core import jobs
    from clientela.plugins.analytical.cli import warehouse_group

    customer(first_name="Via CLI")
    db.session.commit()
    definition = jobs.queue_for(app).definitions["analytical.refresh_warehouse"]
    assert definition.schedule is not None
    job_id = jobs.enqueue("analytical.refresh_warehouse")
    db.session.commit()
    assert jobs.queue_for(app).run(tenant.id, job_id) == "succeeded"
    assert warehouse.status()["tables"]["dim_customer"] == 1
    result = CliRunner().invoke(warehouse_group, ["--help"])
    assert result.exit_code == 0 and "refresh" in result.output


# --- imports -------------------------------------------------------------------------------


IMPORT_HEADER = ["Order No", "Date", "Customer", "E-mail", "SKU", "Product", "Qty", "Total",
                 "Curr"]
IMPORT_ROWS = [
    ["1001", "2026-03-01", "C-1", "", "SKU1", "Tea", "2", "10.50", "EUR"],
    ["1001", "2026-03-01", "", "BOB@Example.com", "SKU2", "Cup", "1", "4", "EUR"],
    ["1002", "2026-03-02", "C-404", "", "SKU1", "Tea", "1", "5", "EUR"],
    ["1003", "31/02/2026", "C-1", "", "SKU1", "Tea", "1", "5", "EUR"],
    ["1004", "2026-03-04", "C-1", "", "SKU3", "Pot", "1", "20", "USD"],
    ["1005", "2026-03-05", "C-1", "", "SKU3", "Pot", "1", "20", "GBP"],
    ["1006", "2026-03-06", "C-1", "", "SKU3", "Pot", "abc", "20", "EUR"],
    ["", "2026-03-06", "C-1", "", "SKU3", "Pot", "1", "20", "EUR"],
]
IMPORT_MAPPING = {"Order No": "order_id", "Date": "ordered_at", "Customer": "customer_external_id",
                  "E-mail": "customer_email", "SKU": "product_id", "Product": "product_name",
                  "Qty": "quantity", "Total": "amount", "Curr": "currency"}
EXPECTED_REJECTIONS = [
    {"row": 3, "reason": "no customer with this external id or e-mail"},
    {"row": 4, "reason": "order date is not a date: 31/02/2026"},
    {"row": 6, "reason": "no exchange rate for currency GBP"},
    {"row": 7, "reason": "quantity is not a number: abc"},
    {"row": 8, "reason": "no order id"},
]


@pytest.fixture
def usd_rate(app, monkeypatch):
    monkeypatch.setitem(app.config, "ANALYTICAL_EXCHANGE_RATES", {"USD": 0.9})


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_transaction_import_reports_every_row_and_is_idempotent(tenant, tmp_path, usd_rate, kind):
    ann = customer(external_id="C-1", first_name="Ann")
    bob = customer(first_name="Bob", email="bob@example.com")
    db.session.commit()
    if kind == "csv":
        path = write_csv(tmp_path / "shop.csv", IMPORT_HEADER, IMPORT_ROWS)
    else:
        path = str(tmp_path / "shop.parquet")
        pq.write_table(pa.table({h: [r[i] for r in IMPORT_ROWS]
                                 for i, h in enumerate(IMPORT_HEADER)}), path)
    imports.save_mapping("shop", "transactions", IMPORT_MAPPING)
    db.session.commit()

    report = imports.import_transactions(path, mapping="shop")
    assert (report.rows_read, report.matched, report.rejected) == (8, 3, 5)
    assert report.rejections == EXPECTED_REJECTIONS

    again = imports.import_transactions(path, mapping="shop")
    assert (again.rows_read, again.matched, again.rejected) == (8, 3, 5)
    with warehouse.connect() as con:
        rows = con.execute("""SELECT line_id, customer_id, product_id, quantity, amount,
                                     original_amount, currency FROM fact_transaction
                              ORDER BY line_id""").fetchall()
        products = con.execute("SELECT * FROM dim_product ORDER BY 1").fetchall()
        runs = con.execute("SELECT rows_read, matched, rejected FROM import_runs").fetchall()
        stored = con.execute("SELECT row_number, reason FROM import_rejections WHERE import_id = ?"
                             " ORDER BY 1", [report.import_id]).fetchall()
    from decimal import Decimal

    assert rows == [
        ("import:1001:1", ann.id, "SKU1", 2.0, Decimal("10.50"), Decimal("10.50"), "EUR"),
        ("import:1001:2", bob.id, "SKU2", 1.0, Decimal("4.00"), Decimal("4.00"), "EUR"),
        ("import:1004:1", ann.id, "SKU3", 1.0, Decimal("18.00"), Decimal("20.00"), "USD"),
    ]
    assert products == [("SKU1", "Tea", None), ("SKU2", "Cup", None), ("SKU3", "Pot", None)]
    assert runs == [(8, 3, 5), (8, 3, 5)]
    assert stored == [(r["row"], r["reason"]) for r in EXPECTED_REJECTIONS]


def test_transaction_lines_match_by_external_id_then_by_a_single_email(tenant, tmp_path):
    solo = customer(first_name="Solo", email="solo@example.com", external_id="S-1")
    customer(first_name="Twin A", email="twin@example.com")
    customer(first_name="Twin B", email="twin@example.com")
    db.session.commit()
    path = write_csv(tmp_path / "lines.csv", IMPORT_HEADER, [
        ["3001", "2026-03-01", "S-1", "twin@example.com", "SKU1", "", "1", "5", "EUR"],
        ["3002", "2026-03-01", "S-404", "SOLO@example.com", "SKU1", "", "1", "5", "EUR"],
        ["3003", "2026-03-01", "", "twin@example.com", "SKU1", "", "1", "5", "EUR"],
        ["3004", "2026-03-01", "", "nobody@example.com", "SKU1", "", "1", "5", "EUR"],
    ])
    report = imports.import_transactions(path, columns=IMPORT_MAPPING)
    # the external id wins over an e-mail; an unknown external id falls back to the e-mail;
    # an e-mail alone must name one customer
    assert (report.rows_read, report.matched, report.rejected) == (4, 2, 2)
    assert report.rejections == [
        {"row": 3, "reason": "several customers have this e-mail"},
        {"row": 4, "reason": "no customer with this external id or e-mail"}]
    with warehouse.connect() as con:
        assert con.execute("SELECT order_id, customer_id FROM fact_transaction ORDER BY 1"
                           ).fetchall() == [("3001", solo.id), ("3002", solo.id)]


def test_an_import_needs_a_usable_mapping(tenant, tmp_path):
    path = write_csv(tmp_path / "x.csv", ["A"], [["1"]])
    with pytest.raises(ValidationError) as exc:
        imports.import_transactions(path, columns={"A": "order_id"})
    assert "map a column to ordered_at" in exc.value.errors["columns"]
    with pytest.raises(ValidationError) as exc:
        imports.import_transactions(path, columns={"A": "price"})
    assert "unknown field 'price'" in exc.value.errors["columns"][0]
    with pytest.raises(ValidationError) as exc:
        imports.import_transactions(path, columns={"Missing": "order_id", "A": "ordered_at",
                                                   "B": "product_id"})
    with pytest.raises(ValidationError):
        imports.import_transactions(str(tmp_path / "nope.csv"), columns=LINE_MAPPING)
    with pytest.raises(ValidationError) as exc:
        imports.save_mapping("bad", "transactions", LINE_MAPPING,
                             {"currency": "EUR'; DROP TABLE dim_customer; --", "colour": 1})
    assert exc.value.errors["options"] == ["currency: use a three-letter currency code",
                                           "unknown option 'colour'; use date_format, "
                                           "decimal_separator, currency, source, delimiter"]


def test_attribute_import_matches_by_external_id_or_email(tenant, tmp_path):
    ann = customer(external_id="C-1")
    bob = customer(email="bob@example.com")
    db.session.commit()
    path = write_csv(tmp_path / "demo.csv", ["Id", "Mail", "Age band", "Region"], [
        ["C-1", "", "35-44", "North"],
        ["", "Bob@example.com", "25-34", ""],
        ["C-9", "", "55-64", "South"],
        ["", "", "18-24", "East"],
    ])
    report = imports.import_attributes(path, columns={"Id": "customer_external_id",
                                                      "Mail": "customer_email"})
    assert (report.rows_read, report.matched, report.rejected) == (4, 2, 2)
    assert report.rejections == [
        {"row": 3, "reason": "no customer with this external id or e-mail"},
        {"row": 4, "reason": "no customer external id or e-mail"},
    ]
    with warehouse.connect() as con:
        rows = con.execute("SELECT customer_id, name, value FROM dim_customer_attribute "
                           "ORDER BY value").fetchall()
    assert sorted(rows, key=lambda r: (str(r[0]), r[1])) == sorted([
        (ann.id, "Age band", "35-44"), (ann.id, "Region", "North"),
        (bob.id, "Age band", "25-34")], key=lambda r: (str(r[0]), r[1]))


# --- metrics on hand-computed data ---------------------------------------------------------


def test_rfm_scores_and_segments_match_the_hand_computed_table(tenant, tmp_path):
    ids = load_rfm_data(tmp_path)
    with warehouse.connect() as con:
        rows, total = metrics.customer_table(con, "rfm", as_of=AS_OF)
        summary = metrics.rfm_summary(con, AS_OF)
    assert total == 10
    by_key = {key: row for row in rows for key, cid in ids.items() if row["customer_id"] == cid}
    got = {k: (r["r_score"], r["f_score"], r["m_score"], r["rfm_segment"])
           for k, r in by_key.items()}
    assert got == EXPECTED_RFM
    assert by_key["A"]["recency_days"] == 2 and by_key["A"]["orders"] == 8
    assert by_key["A"]["revenue"] == 400 and by_key["A"]["rfm_score"] == "554"
    counts = {s["segment"]: s["customers"] for s in summary}
    assert counts == {"Champions": 2, "Loyal": 1, "Potential loyalist": 0, "New": 0,
                      "Promising": 1, "Need attention": 1, "About to sleep": 1,
                      "Can't lose them": 1, "At risk": 0, "Hibernating": 3}


def test_every_score_pair_has_exactly_one_segment():
    for r in range(1, 6):
        for f in range(1, 6):
            matches = [name for name, (rl, rh), (fl, fh) in metrics.RFM_SEGMENTS
                       if rl <= r <= rh and fl <= f <= fh]
            assert len(matches) == 1, (r, f, matches)


def test_lifetime_value_and_churn_risk_by_hand(tenant, tmp_path):
    ids = load_rfm_data(tmp_path)
    with warehouse.connect() as con:
        clv = {r["customer_id"]: r for r in metrics.customer_table(con, "clv", as_of=AS_OF)[0]}
        churn = {r["customer_id"]: r
                 for r in metrics.customer_table(con, "churn", as_of=AS_OF)[0]}
    # A: 400 over 8 orders, first purchase 72 days ago -> one year observed (the minimum)
    a = clv[ids["A"]]
    assert (a["average_order_value"], a["observed_years"], a["orders_per_year"], a["clv"]) == (
        50.0, 1.0, 8.0, 1200.0)
    # I: 500 over 400 days -> 500 * 365 / 400 = 456.25 a year, x 3 years
    assert clv[ids["I"]]["clv"] == 1368.75
    expected = {  # usual interval, ratio, risk, churned (factor 2)
        "A": (10.0, 0.2, "low", False),
        "B": (30.0, 0.1667, "low", False),
        "C": (90.0, 0.1111, "low", False),
        "D": (5.0, 4.0, "high", True),
        "E": (30.0, 1.3333, "medium", False),
        "F": (25.0, 2.4, "high", True),
        "G": (20.0, 5.0, "high", True),
        "H": (90.0, 2.2222, "high", True),
        "I": (100.0, 3.0, "high", True),
        "J": (90.0, 4.4444, "high", True),
    }
    got = {k: (churn[cid]["usual_interval_days"], churn[cid]["churn_ratio"],
               churn[cid]["churn_risk"], churn[cid]["churned"]) for k, cid in ids.items()}
    assert got == expected
    with warehouse.connect() as con:
        lenient = {r["customer_id"]: r["churn_risk"] for r in
                   metrics.customer_table(con, "churn", as_of=AS_OF, factor=5)[0]}
    assert lenient[ids["D"]] == "medium" and lenient[ids["G"]] == "medium"


def test_cohort_retention_matrix_and_monthly_trends_by_hand(tenant, tmp_path):
    ids = {key: customer(external_id=key).id for key in "PQRST"}
    db.session.commit()
    days = {"P": ["2026-01-05", "2026-02-10", "2026-04-01", "2026-05-01"],
            "Q": ["2026-01-20", "2026-03-03"], "R": ["2026-01-25"],
            "S": ["2026-02-14", "2026-03-01", "2026-03-20"], "T": ["2026-03-31", "2026-04-02"]}
    import_lines(tmp_path, [(f"{k}{i}", dt.date.fromisoformat(d), k, "X", 1)
                            for k, ds in days.items() for i, d in enumerate(ds)])
    services.record_interaction(ids["P"], "phone",
                                occurred_at=dt.datetime(2026, 2, 3, tzinfo=UTC))
    services.record_interaction(ids["P"], "email",
                                occurred_at=dt.datetime(2026, 2, 4, tzinfo=UTC))
    services.record_interaction(ids["Q"], "email",
                                occurred_at=dt.datetime(2026, 4, 20, tzinfo=UTC))
    db.session.commit()
    warehouse.refresh()
    with warehouse.connect() as con:
        matrix = metrics.cohorts(con, dt.date(2026, 4, 15))
        trend = metrics.trends(con, dt.date(2026, 4, 15), months=5)
    # the same lines by calendar month (each line one order of amount 1)
    assert trend == [
        {"month": "2025-12", "orders": 0, "revenue": 0.0, "customers": 0, "interactions": {}},
        {"month": "2026-01", "orders": 3, "revenue": 3.0, "customers": 3, "interactions": {}},
        {"month": "2026-02", "orders": 2, "revenue": 2.0, "customers": 2,
         "interactions": {"email": 1, "phone": 1}},
        {"month": "2026-03", "orders": 4, "revenue": 4.0, "customers": 3, "interactions": {}},
        {"month": "2026-04", "orders": 2, "revenue": 2.0, "customers": 2, "interactions": {}},
    ]
    assert matrix == [
        {"cohort": "2026-01", "size": 3, "active": [3, 1, 1, 1],
         "retention": [1.0, 0.3333, 0.3333, 0.3333]},
        {"cohort": "2026-02", "size": 1, "active": [1, 1, 0], "retention": [1.0, 1.0, 0.0]},
        {"cohort": "2026-03", "size": 1, "active": [1, 1], "retention": [1.0, 1.0]},
    ]


def load_baskets(tmp_path):
    ids = {key: customer(external_id=key).id for key in ("c1", "c2", "c3", "c4", "c5")}
    db.session.commit()
    day = dt.date(2026, 2, 1)
    import_lines(tmp_path, [
        ("o1", day, "c1", "A", 1), ("o1", day, "c1", "B", 1),
        ("o2a", day, "c2", "A", 1), ("o2a", day, "c2", "B", 1), ("o2b", day, "c2", "C", 1),
        ("o3", day, "c3", "A", 1), ("o3", day, "c3", "C", 1),
        ("o4", day, "c4", "B", 1),
        ("o5", day, "c5", "A", 1), ("o5", day, "c5", "B", 1),
    ])
    return ids


def test_association_rules_match_hand_counted_support_confidence_and_lift(tenant, tmp_path):
    ids = load_baskets(tmp_path)
    with warehouse.connect() as con:
        by_customer = metrics.associations(con, AS_OF)
        by_order = metrics.associations(con, AS_OF, basket="order", product_id="A")
        strict = metrics.associations(con, AS_OF, min_support=0.4, min_confidence=0.75)
        offers = metrics.next_best_offers(con, str(ids["c4"]), AS_OF)
    rules = [(r["antecedent"], r["consequent"], r["baskets"], r["support"], r["confidence"],
              r["lift"]) for r in by_customer["rules"]]
    assert by_customer["baskets"] == 5
    assert rules == [
        ("C", "A", 2, 0.4, 1.0, 1.25),
        ("A", "C", 2, 0.4, 0.5, 1.25),
        ("A", "B", 3, 0.6, 0.75, 0.9375),
        ("B", "A", 3, 0.6, 0.75, 0.9375),
        ("C", "B", 1, 0.2, 0.5, 0.625),
        ("B", "C", 1, 0.2, 0.25, 0.625),
    ]
    assert by_order["baskets"] == 6
    assert [(r["consequent"], r["support"], r["confidence"], r["lift"])
            for r in by_order["rules"]] == [("B", 0.5, 0.75, 1.125),
                                            ("C", 0.166667, 0.25, 0.75)]
    assert [(r["antecedent"], r["consequent"]) for r in strict["rules"]] == [
        ("C", "A"), ("A", "B"), ("B", "A")]
    assert [(o["product_id"], o["because_of"], o["lift"]) for o in offers] == [
        ("A", "B", 0.9375), ("C", "B", 0.625)]


# --- HTTP: analytics, segments, the profile, data-subject rights --------------------------


def test_analytics_through_the_api(api, tmp_path):
    ids = load_rfm_data(tmp_path)
    response = api.get(f"/api/v1/analytics/rfm?as_of={AS_OF}&page_size=3", role="analyst")
    assert response.status_code == 200, response.json
    assert [r["rfm_score"] for r in response.json] == ["554", "545", "442"]
    assert '"total": 10' in response.headers["X-Pagination"]
    champions = api.get(f"/api/v1/analytics/rfm?as_of={AS_OF}&segment=Champions").json
    assert {r["customer_id"] for r in champions} == {str(ids["A"]), str(ids["B"])}
    one = api.get(f"/api/v1/analytics/customers/{ids['D']}?as_of={AS_OF}", role="marketing").json
    assert (one["rfm_segment"], one["orders"], one["revenue"], one["churn_risk"], one["clv"]) == (
        "Loyal", 4, 100.0, "high", 300.0)
    assert one["first_purchase"] == "2026-05-26" and one["last_purchase"] == "2026-06-10"
    summary = api.get(f"/api/v1/analytics/rfm/segments?as_of={AS_OF}").json
    assert summary["segments"][0] == {"segment": "Champions", "customers": 2, "revenue": 1000.0,
                                      "average_recency_days": 3.5, "average_orders": 7.0}
    for path in ("profiles", "clv", "churn", "cohorts", "associations", "warehouse", "trends"):
        assert api.get(f"/api/v1/analytics/{path}", role="manager").status_code == 200, path
    assert api.get("/api/v1/analytics/rfm", role="sales").status_code == 403
    assert api.get("/api/v1/analytics/rfm?segment=Nobody").status_code == 422
    refreshed = api.post("/api/v1/analytics/warehouse/refresh", json={}, role="analyst")
    assert refreshed.status_code == 200 and refreshed.json["loaded"]["dim_customer"] == 0
    assert api.post("/api/v1/analytics/warehouse/refresh", json={},
                    role="marketing").status_code == 403


def test_segments_are_saved_and_evaluated_to_customer_ids(api, tmp_path):
    ids = load_rfm_data(tmp_path)
    created = api.post("/api/v1/segments", role="marketing", json={
        "name": "Win back", "description": "valuable but slipping",
        "rules": [{"field": "churn_risk", "op": "eq", "value": "high"},
                  {"field": "clv", "op": "gte", "value": 300}]})
    assert created.status_code == 201, created.json
    members = api.get(f"/api/v1/segments/{created.json['id']}/members?as_of={AS_OF}").json
    # high churn risk: D F G H I J; CLV >= 300: D 300, F 900, I 1368.75 (G 210, H 60, J 219)
    assert members["count"] == 3
    assert set(members["customer_ids"]) == {str(ids[k]) for k in "DFI"}
    assert segments.evaluate([{"field": "rfm_segment", "op": "in",
                               "value": ["Champions", "Loyal"]}], AS_OF) == sorted(
        [ids["A"], ids["B"], ids["D"]])

    patched = api.patch(f"/api/v1/segments/{created.json['id']}", json={
        "rules": [{"field": "rfm_segment", "op": "eq", "value": "Hibernating"}]})
    assert patched.status_code == 200
    members = api.get(f"/api/v1/segments/{created.json['id']}/members?as_of={AS_OF}").json
    assert set(members["customer_ids"]) == {str(ids[k]) for k in "HIJ"}
    assert [s["name"] for s in api.get("/api/v1/segments", role="analyst").json] == ["Win back"]
    # what a campaign's job calls, without a user
    assert segments.member_ids(uuid.UUID(created.json["id"]), AS_OF) == sorted(
        [ids["H"], ids["I"], ids["J"]])

    bad = api.post("/api/v1/segments", json={"name": "Bad", "rules": [
        {"field": "rfm_segment", "op": "eq", "value": "Heroes"},
        {"field": "password", "op": "eq", "value": "x"},
        {"field": "clv", "op": "gt", "value": "a lot"}]})
    assert bad.status_code == 422
    assert len(bad.json["errors"]["json"]["rules"]) == 3
    assert api.post("/api/v1/segments", json={"name": "Win back", "rules": [
        {"field": "orders", "op": "gt", "value": 0}]}).status_code == 409
    assert api.post("/api/v1/segments", role="sales", json={"name": "S", "rules": [
        {"field": "orders", "op": "gt", "value": 0}]}).status_code == 403
    assert api.delete(f"/api/v1/segments/{created.json['id']}", role="analyst").status_code == 204
    assert api.get(f"/api/v1/segments/{created.json['id']}").status_code == 404


def test_segments_can_use_imported_attributes(tenant, tmp_path):
    ids = load_rfm_data(tmp_path)
    path = write_csv(tmp_path / "demo.csv", ["Id", "Region"], [["A", "North"], ["B", "South"],
                                                               ["J", "North"]])
    imports.import_attributes(path, columns={"Id": "customer_external_id"})
    assert segments.evaluate([{"field": "attribute:Region", "op": "eq", "value": "North"},
                              {"field": "rfm_segment", "op": "eq", "value": "Champions"}],
                             AS_OF) == [ids["A"]]


def test_profile_export_and_erase_hooks(api, tmp_path):
    ids = load_rfm_data(tmp_path)
    profile = api.get(f"/api/v1/customers/{ids['A']}/profile").json
    section = next(s for s in profile["sections"] if s["key"] == "analytics")
    assert section["title"] == "Analytics"
    # as of today, so the purchase after AS_OF counts
    assert section["data"]["orders"] == 9 and section["data"]["rfm_segment"] is not None
    # a role without analytics:read sees no analytics section
    sales = api.get(f"/api/v1/customers/{ids['A']}/profile", role="sales").json
    assert all(s["key"] != "analytics" for s in sales["sections"])

    exported = api.get(f"/api/v1/customers/{ids['A']}/export").json
    held = exported["plugins"]["analytical_warehouse"]
    assert held["dim_customer"][0]["external_id"] == "A"
    assert len(held["fact_transaction"]) == 9

    path = write_csv(tmp_path / "demo.csv", ["Id", "Age"], [["A", "41"]])
    imports.import_attributes(path, columns={"Id": "customer_external_id"})
    erased = api.post(f"/api/v1/customers/{ids['A']}/erase")
    assert erased.status_code == 200, erased.json
    assert erased.json["plugins"]["analytical"] == {"customers_anonymised": 1,
                                                    "attributes_deleted": 1,
                                                    "segment_memberships_deleted": 0}
    with warehouse.connect() as con:
        assert con.execute("SELECT display_name, email, external_id FROM dim_customer WHERE "
                           "customer_id = ?", [str(ids["A"])]).fetchall()[0] == (
            "Erased customer", None, None)
        # amounts and dates stay for reporting
        assert con.execute("SELECT count(*) FROM fact_transaction WHERE customer_id = ?",
                           [str(ids["A"])]).fetchall()[0] == (9,)


def test_another_tenant_sees_none_of_the_warehouse(api, other_api, tmp_path):
    ids = load_rfm_data(tmp_path)
    segment = api.post("/api/v1/segments", json={"name": "Secret", "rules": [
        {"field": "orders", "op": "gte", "value": 1}]}).json
    for path in (f"/api/v1/analytics/customers/{ids['A']}", f"/api/v1/segments/{segment['id']}",
                 f"/api/v1/segments/{segment['id']}/members"):
        assert other_api.get(path).status_code == 404, path
    assert other_api.get(f"/api/v1/analytics/rfm?as_of={AS_OF}").json == []
    assert other_api.get("/api/v1/segments").json == []
    assert other_api.get(f"/api/v1/analytics/cohorts?as_of={AS_OF}").json["cohorts"] == []
    rules = other_api.get(f"/api/v1/analytics/associations?as_of={AS_OF}").json
    assert rules["baskets"] == 0 and rules["rules"] == []
    with tenancy.tenant_context(other_api.tenant.id):
        assert warehouse.warehouse_path() != warehouse.warehouse_path(api.tenant.id)



# --- the command --------------------------------------------------------------------------


def test_warehouse_commands_refresh_and_import_with_a_saved_mapping(backend, fresh_database_url,
                                                                    tmp_path):
    import json

    from click.testing import CliRunner

    from clientela.cli import cli
    from clientela.core.app import create_app

    home = tmp_path / "home"
    env = {"CLIENTELA_HOME": str(home), "DATABASE_URL": fresh_database_url(backend),
           "CLIENTELA_PROFILE": "onprem"}
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, list(args), env=env, catch_exceptions=False)

    assert invoke("init", "--admin-email", "a@example.com",
                  "--admin-password", "long-enough-pw").exit_code == 0
    app = create_app("onprem", HOME=str(home), DATABASE_URL=env["DATABASE_URL"])
    with app.app_context():
        tenant_id = app.extensions["clientela"].profile.tenant().id
        with tenancy.tenant_context(tenant_id):
            customer(external_id="C-1")
            db.session.commit()
        db.engine.dispose()

    first = invoke("warehouse", "refresh", "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["loaded"] == {"dim_customer": 1, "fact_interaction": 0}
    assert json.loads(invoke("warehouse", "refresh", "--json").output)["loaded"] == {
        "dim_customer": 0, "fact_interaction": 0}
    assert os.path.exists(home / "tenants" / str(tenant_id) / "warehouse.duckdb")

    path = write_csv(tmp_path / "erp.csv", ["Nr", "Datum", "Kunde", "Artikel", "Betrag"], [
        ["1", "03.02.2026", "C-1", "X", "12,50"], ["2", "04.02.2026", "C-2", "X", "1"]])
    maps = ["--map", "Nr=order_id", "--map", "Datum=ordered_at", "--map",
            "Kunde=customer_external_id", "--map", "Artikel=product_id", "--map", "Betrag=amount",
            "--option", "date_format=%d.%m.%Y", "--option", "decimal_separator=,"]
    result = invoke("warehouse", "import-transactions", path, *maps, "--save-mapping", "erp")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith("2 rows read, 1 matched, 1 rejected")
    assert "row 2: no customer with this external id or e-mail" in result.output
    again = invoke("warehouse", "import-transactions", path, "--mapping", "erp", "--json")
    assert json.loads(again.output)["matched"] == 1
    status = json.loads(invoke("warehouse", "status").output)
    assert status["tables"]["fact_transaction"] == 1 and status["tables"]["import_runs"] == 2

    exported = invoke("warehouse", "export", str(tmp_path / "parquet"), "--json")
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.output)["tables"]["fact_transaction"] == 1
    assert os.path.exists(tmp_path / "parquet" / "fact_transaction" / f"tenant_id={tenant_id}"
                          / "data_0.parquet")

    missing = invoke("warehouse", "import-transactions", str(tmp_path / "nope.csv"),
                     "--mapping", "erp")
    assert missing.exit_code != 0 and "no such file" in missing.output
    unknown = invoke("warehouse", "import-transactions", path, "--mapping", "other")
    assert unknown.exit_code != 0 and "no transactions mapping named 'other'" in unknown.output


def test_a_warehouse_held_by_another_process_is_busy_not_a_crash(api):
    import subprocess
    import sys

    person = api.customer(first_name="Waiting")
    warehouse.refresh()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('holding', flush=True); time.sleep(30)", warehouse.warehouse_path()],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(warehouse.WarehouseBusy):
            with warehouse.connect(wait=0.3):
                pass
        profile = api.get(f"/api/v1/customers/{person['id']}/profile")
        assert profile.status_code == 200
        section = next(s for s in profile.json["sections"] if s["key"] == "analytics")
        assert "being refreshed" in section["data"]["unavailable"]
    finally:
        holder.kill()
        holder.wait()
    with warehouse.connect(wait=5) as con:
        assert con.execute("SELECT count(*) FROM dim_customer").fetchall() == [(1,)]


# --- probabilistic lifetime value and churn (BG/NBD + Gamma-Gamma) --------------------------

CDNOW = os.path.join(os.path.dirname(__file__), "data", "cdnow")
CDNOW_END = dt.date(1997, 9, 30)  # the end of the 39-week calibration period
#: Fader, Hardie & Lee (2005), table 1 / p. 279, and Fader & Hardie (2013), note 025
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_LL = -9582.4
PUBLISHED_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def cdnow_summary():
    """The published per-customer summary: (x, t_x, T, zbar) of the 2,357 customers."""
    with open(os.path.join(CDNOW, "cdnow_customers_summary_with_transactions.csv")) as fh:
        rows = list(csv.DictReader(fh))
    return {int(r["ID"]): (int(r["x"]), float(r["t_x"]), float(r["T"]), float(r["zbar"]))
            for r in rows}


def cdnow_transactions():
    """(sample id, day, value) of every CDNOW sample purchase, 1997-01-01 to 1998-06-30."""
    out = []
    with open(os.path.join(CDNOW, "CDNOW_sample.txt")) as fh:
        for line in fh:
            _, sample_id, day, _, value = line.split()
            out.append((int(sample_id), dt.datetime.strptime(day, "%Y%m%d").date(),
                        float(value)))
    return out


def rounded(params: dict, digits: int) -> dict:
    return {k: round(v, digits) for k, v in params.items()}


def test_bgnbd_fit_reproduces_the_published_cdnow_estimates():
    from clientela.plugins.analytical import clv

    data = cdnow_summary()
    x, t_x, T, _ = zip(*data.values())
    fit = clv.fit_bgnbd(x, t_x, T)
    assert fit.customers == 2357
    # to the precision published: 3 decimals, the log-likelihood to 1
    assert rounded(fit.params(), 3) == PUBLISHED_BGNBD
    assert round(fit.log_likelihood, 1) == PUBLISHED_LL
    # and it is the maximum: the published (rounded) parameters do no better
    assert fit.log_likelihood >= clv.bgnbd_log_likelihood(
        list(PUBLISHED_BGNBD.values()), x, t_x, T)
    # FHL 2005 worked example: customer 1 (x=2, t_x=30.43, T=38.86) is expected to make
    # 1.226 purchases in the next 39 weeks
    assert round(float(fit.expected_purchases(39, 2, 30.43, 38.86)), 3) == 1.226
    # P(alive) is 1 without a repeat purchase and falls as the last purchase ages
    alive = fit.p_alive([0, 2, 2], [0, 30.43, 5.0], [38.86, 38.86, 38.86])
    assert alive[0] == 1.0 and 0 < alive[2] < alive[1] < 1


def test_gamma_gamma_fit_reproduces_the_published_cdnow_estimates():
    from clientela.plugins.analytical import clv

    # the mean repeat spend computed from the transactions themselves: p, q, gamma as
    # published (6.25, 3.74, 15.44)
    by_day: dict[int, dict[dt.date, float]] = {}
    for sample_id, day, value in cdnow_transactions():
        if day <= CDNOW_END:
            days = by_day.setdefault(sample_id, {})
            days[day] = days.get(day, 0.0) + value
    x, zbar = [], []
    for days in by_day.values():
        repeats = [days[d] for d in sorted(days)[1:]]
        x.append(len(repeats))
        zbar.append(sum(repeats) / len(repeats) if repeats else 0.0)
    fit = clv.fit_gamma_gamma(x, zbar)
    assert fit.customers == 946  # the customers with a repeat purchase
    assert rounded(fit.params(), 2) == PUBLISHED_GAMMA_GAMMA
    # the published summary rounds zbar to cents; the likelihood is flat along a ridge,
    # so gamma moves in the second decimal (15.448), p and q do not
    summary = cdnow_summary().values()
    coarse = clv.fit_gamma_gamma([s[0] for s in summary], [s[3] for s in summary])
    assert rounded(coarse.params(), 2) == {"p": 6.25, "q": 3.74, "gamma": 15.45}
    # E[Z | x, zbar] shrinks a customer's own mean towards the population mean
    population = fit.mean_spend()
    assert fit.expected_spend(0, 0) == pytest.approx(population)
    own = float(fit.expected_spend(2, 100.0))
    assert population < own < 100.0


def simulate_bgnbd(rng, n, r, alpha, a, b, T):
    """Customers drawn from the BG/NBD story, all acquired at 0 and observed until T:
    purchases at rate lambda ~ Gamma(r, alpha) while alive; after each purchase the customer
    drops out with probability p ~ Beta(a, b). Returns x, t_x, T and whether each is dead."""
    import numpy as np

    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    xs, txs, dead = np.zeros(n), np.zeros(n), np.zeros(n, bool)
    for i in range(n):
        t, x, t_x = 0.0, 0, 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > T:
                break
            x, t_x = x + 1, t
            if rng.random() < p[i]:
                dead[i] = True
                break
        xs[i], txs[i] = x, t_x
    # the BG/NBD counts repeat purchases after a first one at time 0
    return xs, txs, np.full(n, T), dead


def test_p_alive_identifies_simulated_dropouts_and_the_fit_recovers_the_truth():
    import numpy as np

    from clientela.plugins.analytical import clv, metrics

    rng = np.random.default_rng(20260630)
    x, t_x, T, dead = simulate_bgnbd(rng, 4000, r=0.5, alpha=5.0, a=1.2, b=3.0, T=52.0)
    fit = clv.fit_bgnbd(x, t_x, T)
    assert fit.r == pytest.approx(0.5, rel=0.2)
    assert fit.alpha == pytest.approx(5.0, rel=0.3)
    p_alive = fit.p_alive(x, t_x, T)
    # the known dropout mechanism: 1 - P(alive) ranks the dead above the living
    auc = metrics._auc(1 - p_alive, dead)
    assert auc > 0.8
    # and P(alive) is calibrated: its mean is close to the share still alive
    assert float(p_alive.mean()) == pytest.approx(1 - dead.mean(), abs=0.05)


def load_cdnow(tmp_path) -> dict[int, uuid.UUID]:
    from clientela.core.models import Customer

    people = {sid: Customer(**services.clean_customer_data(
        {"first_name": f"CDNOW {sid}", "external_id": f"cdnow-{sid}"})) for sid in range(1, 2358)}
    db.session.add_all(people.values())
    db.session.commit()
    path = write_csv(tmp_path / "cdnow.csv", ["Order", "Date", "Customer", "SKU", "Total"], [
        (f"{sid}-{n}", day.strftime("%Y%m%d"), f"cdnow-{sid}", "CD", f"{value:.2f}")
        for n, (sid, day, value) in enumerate(cdnow_transactions())])
    report = imports.import_transactions(path, columns=LINE_MAPPING,
                                         options={"date_format": "%Y%m%d"})
    assert (report.rows_read, report.rejected) == (6919, 0)
    return {sid: person.id for sid, person in people.items()}


def test_cdnow_through_the_warehouse_and_the_api(api, tmp_path):
    ids = load_cdnow(tmp_path)
    by_id = {cid: sid for sid, cid in ids.items()}
    # the warehouse computes the published summary from the order lines
    with warehouse.connect() as con:
        rows = con.execute(metrics.bgnbd_inputs_sql(), {"as_of": CDNOW_END}).fetchall()
    expected = cdnow_summary()
    assert len(rows) == 2357
    for customer_id, x, t_x, T, zbar in rows:
        ex = expected[by_id[customer_id]]
        # the published file is rounded to 2 decimals
        assert x == ex[0] and (t_x, T, zbar) == pytest.approx(ex[1:], abs=0.0051), ex

    model = api.get(f"/api/v1/analytics/clv/model?as_of={CDNOW_END}", role="analyst")
    assert model.status_code == 200, model.json
    assert rounded({k: model.json["bgnbd"][k] for k in PUBLISHED_BGNBD}, 3) == PUBLISHED_BGNBD
    assert round(model.json["bgnbd"]["log_likelihood"], 1) == PUBLISHED_LL
    assert rounded({k: model.json["gamma_gamma"][k] for k in PUBLISHED_GAMMA_GAMMA},
                   2) == PUBLISHED_GAMMA_GAMMA

    top = api.get(f"/api/v1/analytics/clv?method=bgnbd&as_of={CDNOW_END}&page_size=5"
                  "&horizon_months=12&discount_rate=0.1").json
    assert len(top) == 5 and [r["clv"] for r in top] == sorted((r["clv"] for r in top),
                                                               reverse=True)
    assert all(r["method"] == "bgnbd" and r["horizon_months"] == 12 for r in top)
    # customer 1 (x=2, t_x=30.43, T=38.86): the published model's figures
    one = api.get(f"/api/v1/analytics/customers/{ids[1]}?as_of={CDNOW_END}").json
    assert one["bgnbd"]["expected_purchases"] == pytest.approx(
        _published_expected_purchases(36 * 52.1775 / 12, 2, 30.43, 38.86), rel=2e-3)
    assert 0 < one["bgnbd"]["p_alive"] < 1 and one["bgnbd"]["clv"] > 0

    churn = api.get(f"/api/v1/analytics/churn?method=bgnbd&as_of={CDNOW_END}&page_size=3").json
    probabilities = [r["churn_probability"] for r in churn]
    assert probabilities == sorted(probabilities, reverse=True)
    assert churn[0]["churn_risk"] == "high" and churn[0]["churn_horizon_weeks"] == 26

    # held out: calibrate on the published 39 weeks, score who buys nothing in the next 39
    valid = api.get("/api/v1/analytics/churn/validation?as_of=1998-06-30&holdout_weeks=39")
    assert valid.status_code == 200, valid.json
    assert valid.json["calibration_end"] == "1997-09-30"
    assert valid.json["customers"] == 2357
    # measured: 0.757 for P(no purchase), 0.32 for 1 - P(alive) alone (one-time buyers
    # keep P(alive) = 1 but mostly never return), 71% churned, 74% predicted
    report = valid.json
    assert report["auc"]["bgnbd"] > 0.7 and report["auc"]["p_alive"] < 0.5
    assert report["predicted_churn_rate"] == pytest.approx(report["churn_rate"], abs=0.05)


def _published_expected_purchases(t, x, t_x, T):
    from clientela.plugins.analytical import clv

    fit = clv.BetaGeoFit(**PUBLISHED_BGNBD, log_likelihood=0.0, customers=0, converged=True)
    return float(fit.expected_purchases(t, x, t_x, T))


def test_bgnbd_needs_repeat_buyers_and_says_so(api, tmp_path):
    api.customer(first_name="Lonely", external_id="L1")
    import_lines(tmp_path, [("o1", dt.date(2026, 1, 2), "L1", "X", 10)])
    response = api.get("/api/v1/analytics/clv?method=bgnbd")
    assert response.status_code == 422
    assert "repeat purchase" in response.json["message"]
    assert api.get("/api/v1/analytics/clv?method=magic").status_code == 422
    # the historical method still answers, and the profile has no BG/NBD figures
    assert api.get("/api/v1/analytics/clv").status_code == 200
    one = api.get("/api/v1/analytics/customers/"
                  f"{api.get('/api/v1/analytics/profiles').json[0]['customer_id']}").json
    assert one["bgnbd"] is None


# --- Parquet export ----------------------------------------------------------------------------


def test_parquet_export_is_partitioned_by_tenant_and_reads_back(app_ctx, make_tenant, tmp_path):
    import pyarrow.dataset as ds

    out = tmp_path / "export"
    first, second = make_tenant("a"), make_tenant("b")
    with tenancy.tenant_context(first.id):
        (tmp_path / "a").mkdir()
        ids = load_rfm_data(tmp_path / "a")
        services.record_interaction(ids["A"], "phone",
                                    occurred_at=dt.datetime(2026, 6, 1, tzinfo=UTC))
        db.session.commit()
        warehouse.refresh()
        report = warehouse.export_parquet(str(out))
        with warehouse.connect() as con:
            original = con.execute("SELECT * FROM fact_transaction ORDER BY line_id").fetchall()
    assert report["tables"]["fact_transaction"] == 36
    assert report["tables"]["dim_customer"] == 10 and report["tables"]["fact_interaction"] == 1
    with tenancy.tenant_context(second.id):
        customer(external_id="Z")
        db.session.commit()
        (tmp_path / "b").mkdir()
        import_lines(tmp_path / "b", [("z1", dt.date(2026, 3, 1), "Z", "P-Z", 5)])
        warehouse.export_parquet(str(out))
        # exporting again replaces the tenant's partition: nothing doubles
        warehouse.export_parquet(str(out))

    assert sorted(os.listdir(out / "fact_transaction")) == sorted(
        [f"tenant_id={first.id}", f"tenant_id={second.id}"])
    con = duckdb.connect()
    pattern = str(out / "fact_transaction" / "*" / "*.parquet")
    counts = dict(con.execute("SELECT tenant_id, count(*) FROM read_parquet(?, "
                              "hive_partitioning = true) GROUP BY 1", [pattern]).fetchall())
    assert counts == {str(first.id): 36, str(second.id): 1}
    back = con.execute("SELECT * EXCLUDE (tenant_id) FROM read_parquet(?, hive_partitioning = "
                       "true) WHERE tenant_id = ? ORDER BY line_id",
                       [pattern, str(first.id)]).fetchall()
    assert back == original
    # pyarrow reads the same data set, the tenant as its partition key
    dataset = ds.dataset(str(out / "dim_customer"), format="parquet", partitioning="hive")
    table = dataset.to_table(filter=ds.field("tenant_id") == str(second.id))
    assert table.num_rows == 1 and table.column("external_id").to_pylist() == ["Z"]
    assert dataset.count_rows() == 11


# --- the import API ---------------------------------------------------------------------------


def upload(api, kind, content: bytes, filename, role="admin", **form):
    import io

    data = {"kind": kind, "file": (io.BytesIO(content), filename), **form}
    return api.post("/api/v1/analytics/imports", role=role, data=data,
                    content_type="multipart/form-data")


def csv_bytes(header, rows) -> bytes:
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def test_imports_through_the_api_with_a_saved_mapping_and_the_row_report(api, usd_rate):
    import io
    import json

    ann = api.customer(external_id="C-1", first_name="Ann")
    api.customer(first_name="Bob", email="bob@example.com")
    saved = api.client.put("/api/v1/analytics/imports/mappings", headers=api.headers("analyst"),
                           json={"name": "shop", "kind": "transactions",
                                 "columns": IMPORT_MAPPING})
    assert saved.status_code == 200, saved.json
    assert [m["name"] for m in api.get("/api/v1/analytics/imports/mappings").json] == ["shop"]

    response = upload(api, "transactions", csv_bytes(IMPORT_HEADER, IMPORT_ROWS), "shop.csv",
                      role="analyst", mapping="shop")
    assert response.status_code == 201, response.json
    report = response.json
    assert (report["rows_read"], report["matched"], report["rejected"]) == (8, 3, 5)
    assert report["rejections"] == EXPECTED_REJECTIONS
    assert report["filename"] == "shop.csv"

    # Parquet, with the mapping given inline
    table = pa.table({h: [r[i] for r in IMPORT_ROWS] for i, h in enumerate(IMPORT_HEADER)})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    inline = upload(api, "transactions", sink.getvalue(), "shop.parquet",
                    columns=json.dumps(IMPORT_MAPPING))
    assert inline.status_code == 201, inline.json
    assert inline.json["matched"] == 3  # the same lines again: replaced, not doubled
    profile = api.get(f"/api/v1/analytics/customers/{ann['id']}?as_of=2026-12-31").json
    assert profile["orders"] == 2

    attributes = upload(api, "attributes", csv_bytes(["Id", "Region"], [["C-1", "North"],
                                                                        ["C-9", "South"]]),
                        "demo.csv", columns=json.dumps({"Id": "customer_external_id"}))
    assert attributes.status_code == 201
    assert attributes.json["rejections"] == [
        {"row": 2, "reason": "no customer with this external id or e-mail"}]

    runs = api.get("/api/v1/analytics/imports", role="marketing").json
    assert [r["rows_read"] for r in runs][:3] == [2, 8, 8]
    one = api.get(f"/api/v1/analytics/imports/{report['import_id']}").json
    assert one["rejections"] == EXPECTED_REJECTIONS and one["mapping"] == "shop"
    assert api.get(f"/api/v1/analytics/imports/{uuid.uuid4()}").status_code == 404

    # what is refused, and how
    assert upload(api, "transactions", b"x", "shop.xlsx", mapping="shop").status_code == 422
    unknown = upload(api, "transactions", b"a,b\n1,2\n", "x.csv", mapping="nope")
    assert unknown.status_code == 422
    assert unknown.json["errors"]["json"] == {"mapping": ["no transactions mapping named 'nope'"]}
    bad_json = upload(api, "transactions", b"a\n1\n", "x.csv", columns="[1, 2]")
    assert bad_json.status_code == 422
    assert bad_json.json["errors"]["json"] == {"columns": ["give a JSON object"]}
    wrong_kind = upload(api, "everything", b"a\n1\n", "x.csv")
    assert wrong_kind.status_code == 422 and "kind" in wrong_kind.json["errors"]["json"]["form"]
    no_file = api.post("/api/v1/analytics/imports", data={"kind": "attributes"},
                       content_type="multipart/form-data")
    assert no_file.status_code == 422 and "file" in no_file.json["errors"]["json"]
    broken = upload(api, "transactions", b"PAR1 not really", "x.parquet", mapping="shop")
    assert broken.status_code == 422 and "uploads" not in json.dumps(broken.json)
    assert upload(api, "transactions", b"a\n1\n", "x.csv", role="marketing",
                  mapping="shop").status_code == 403
    assert api.client.put("/api/v1/analytics/imports/mappings", headers=api.headers("sales"),
                          json={"name": "x", "kind": "transactions",
                                "columns": {"A": "order_id"}}).status_code == 403
    # nothing is left behind in the tenant's folder
    folder = os.path.join(warehouse.warehouse_dir(api.tenant.id), "uploads")
    assert os.listdir(folder) == []


# --- the segment hooks (campaigns) ----------------------------------------------------------


def test_saved_segments_are_offered_to_campaigns_through_the_hooks(app, api, other_api,
                                                                   tmp_path):
    from clientela.core.errors import NotFound

    hook = app.extensions["clientela"].hook
    with tenancy.tenant_context(api.tenant.id):
        ids = load_rfm_data(tmp_path)
    lapsed = api.post("/api/v1/segments", json={"name": "Lapsed", "rules": [
        {"field": "recency_days", "op": "gte", "value": 100}]}).json
    api.post("/api/v1/segments", json={"name": "Buyers", "rules": [
        {"field": "orders", "op": "gte", "value": 1}]})
    with tenancy.tenant_context(api.tenant.id):
        offered = [s for answer in hook.clientela_segments() if answer for s in answer]
        ours = [s for s in offered if s["source"] == "analytical"]
        assert [(s["id"], s["name"]) for s in ours] == [
            (next(s["id"] for s in ours if s["name"] == "Buyers"), "Buyers"),
            (f"analytical:{lapsed['id']}", "Lapsed")]
        assert all(s["id"].startswith("analytical:") for s in ours)
        members = hook.clientela_segment_members(segment_id=f"analytical:{lapsed['id']}")
        # as of today: every customer's last purchase (<= AS_OF + 3 days) ages alike, so the
        # members are those with recency >= 100 days today
        expected = segments.evaluate([{"field": "recency_days", "op": "gte", "value": 100}])
        assert members == expected and ids["J"] in members
        assert hook.clientela_segment_members(segment_id="operational:list:1") is None
        with pytest.raises(NotFound):
            hook.clientela_segment_members(segment_id="analytical:not-a-uuid")
    # another tenant neither lists nor reaches the segment
    with tenancy.tenant_context(other_api.tenant.id):
        offered = [s for answer in hook.clientela_segments() if answer for s in answer]
        assert [s for s in offered if s["source"] == "analytical"] == []
        with pytest.raises(NotFound):
            hook.clientela_segment_members(segment_id=f"analytical:{lapsed['id']}")


# --- startup ----------------------------------------------------------------------------------


def test_creating_the_app_does_not_import_duckdb_pyarrow_or_scipy(tmp_path):
    """The warehouse's libraries load when a warehouse is first used, not at startup."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from clientela.core.app import create_app\n"
        f"app = create_app('onprem', DATABASE_URL='sqlite:///{tmp_path}/x.db', "
        f"HOME='{tmp_path}')\n"
        "assert 'clientela.plugins.analytical.api' in sys.modules\n"
        "print(sorted(m for m in ('duckdb', 'pyarrow', 'numpy', 'scipy', 'pandas') "
        "if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_segment_exports_its_members_as_csv(api, tmp_path):
    import io

    ids = load_rfm_data(tmp_path)
    created = api.post("/api/v1/segments", json={"name": "Top / VIP", "rules": [
        {"field": "rfm_segment", "op": "eq", "value": "Champions"}]}).json
    response = api.get(f"/api/v1/segments/{created['id']}/members.csv?as_of={AS_OF}",
                       role="marketing")
    assert response.status_code == 200, response.data
    assert response.mimetype == "text/csv"
    assert 'filename="segment-Top---VIP.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(r["customer_id"], r["external_id"], r["rfm_segment"], r["orders"])
            for r in rows] == sorted([(str(ids["A"]), "A", "Champions", "8"),
                                      (str(ids["B"]), "B", "Champions", "6")])
    # a role without analytics:read may not export
    assert api.get(f"/api/v1/segments/{created['id']}/members.csv",
                   role="sales").status_code == 403


def test_segment_rules_can_use_the_bgnbd_scores(api, tmp_path):
    ids = load_cdnow(tmp_path)
    with warehouse.connect() as con:
        rows, _ = metrics.probabilistic_table(con, CDNOW_END)
    # the SQL closed forms agree with numpy
    expected_alive = sorted(r["customer_id"] for r in rows if r["p_alive"] < 0.3)
    with warehouse.connect() as con:
        revenue = {r["customer_id"]: r["revenue"]
                   for r in metrics.customer_table(con, "profiles", as_of=CDNOW_END)[0]}
    expected_loyal = sorted(r["customer_id"] for r in rows
                            if r["churn_probability"] <= 0.2 and revenue[r["customer_id"]] >= 100)
    assert expected_alive and expected_loyal
    assert segments.evaluate([{"field": "p_alive", "op": "lt", "value": 0.3}],
                             CDNOW_END) == expected_alive
    created = api.post("/api/v1/segments", json={"name": "Likely to stay", "rules": [
        {"field": "churn_probability", "op": "lte", "value": 0.2},
        {"field": "revenue", "op": "gte", "value": 100}]})
    assert created.status_code == 201, created.json
    members = api.get(f"/api/v1/segments/{created.json['id']}/members?as_of={CDNOW_END}").json
    assert members["customer_ids"] == [str(i) for i in expected_loyal]
    assert ids[1] not in expected_alive


def test_bgnbd_fit_ends_soon_where_the_likelihood_rises_towards_a_bound(monkeypatch):
    """Purchases on days drawn at random over two years, nobody dropping out (the shape of
    the benchmark's data): the likelihood keeps rising as a -> 0, L-BFGS-B reports no
    convergence and Nelder-Mead polishes. With its tolerances on the summed likelihood that
    polish ran to its 20,000-iteration cap (about 120,000 evaluations: the 1,000,000-customer
    benchmark did not finish in 18 minutes); on the per-customer mean it ends in a few
    hundred."""
    import numpy as np

    from clientela.plugins.analytical import clv

    rng = np.random.default_rng(20261203)
    n = 2000
    buyer = np.floor(n * rng.random(10 * n) ** 2.5).astype(int)  # a few buy often
    day = np.floor(rng.random(10 * n) * 730)
    x, t_x, T = [], [], []
    for c in np.unique(buyer):
        days = np.unique(day[buyer == c])
        x.append(len(days) - 1)
        t_x.append((days[-1] - days[0]) / 7)
        T.append((730 - days[0]) / 7)
    evaluations = []
    log_likelihood = clv._BgnbdData.log_likelihood

    def counted(self, *params):
        evaluations.append(params)
        return log_likelihood(self, *params)

    monkeypatch.setattr(clv._BgnbdData, "log_likelihood", counted)
    fit = clv.fit_bgnbd(x, t_x, T)
    assert fit.converged and fit.a < 1e-3  # towards the bound: nobody drops out
    assert len(evaluations) < 2000, len(evaluations)
