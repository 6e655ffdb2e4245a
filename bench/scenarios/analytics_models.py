"""Analytics models end to end: RFM scores and BG/NBD + Gamma-Gamma lifetime value of SIZE
customers with 10 x SIZE order lines in the tenant's warehouse, through the plugin
(``metrics.customer_table("rfm")`` + ``metrics.probabilistic_table``: SQL, fit, per-customer
rows), against hand-written DuckDB SQL and a direct scipy fit of the same models in the
same run."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
import tempfile
import uuid

from bench import harness

NAME = "analytics_models"
DESCRIPTION = (
    "RFM + BG/NBD/Gamma-Gamma CLV of SIZE customers and 10 x SIZE order lines: the plugin's "
    "metrics (all rows, as the API's dicts) vs hand-written DuckDB SQL + a direct "
    "scipy.optimize fit on the full arrays, numpy predictions (no per-row Python)"
)
DEFAULT_SIZE = 100_000
DEFAULT_REPEATS = 3
#: seconds ours / seconds baseline
TARGET_RATIO = 1.5
AS_OF = dt.date(2025, 12, 31)
LINES_PER_CUSTOMER = 10


@contextlib.contextmanager
def loaded_warehouse(workdir: str, size: int):
    """A tenant whose warehouse holds SIZE customers and 10 x SIZE order lines (untimed).

    Generated in DuckDB: buyers drawn with a skew (a few buy often, many once or twice),
    days over two years, 50 products, amounts around a customer-specific mean.
    """
    from clientela.core import migrations, services, tenancy
    from clientela.core.app import create_app
    from clientela.core.db import db
    from clientela.plugins.analytical import warehouse

    url = f"sqlite:///{os.path.join(workdir, 'bench.db')}"
    app = create_app("onprem", DATABASE_URL=url, HOME=os.path.join(workdir, "home"),
                     SECRET_KEY="bench")
    with app.app_context():
        migrations.upgrade(app)
        tenant_id = services.create_tenant(f"bench-{uuid.uuid4().hex[:8]}").id
        db.session.commit()
        with tenancy.tenant_context(tenant_id):
            with warehouse.connect(write=True) as con:
                con.execute("SELECT setseed(0.42)")
                con.execute("""
                    INSERT INTO dim_customer
                    SELECT uuid(), 'person', 'Customer ' || i, NULL, 'C' || i, 'customer',
                           NULL, NULL, TIMESTAMP '2023-06-01', TIMESTAMP '2023-06-01'
                    FROM range(?) r(i)""", [size])
                con.execute("CREATE TEMP TABLE ids AS SELECT row_number() OVER () - 1 AS n, "
                            "customer_id FROM dim_customer")
                con.execute("""
                    INSERT INTO fact_transaction
                    SELECT 'bench:' || i, 'o' || i, ids.customer_id, d, CAST(d AS TIMESTAMP),
                           'P' || CAST(floor(random() * 50) AS INTEGER), 1,
                           CAST(round(5 + random() * 20 * (1 + ids.n % 7), 2) AS DECIMAL(18, 2)),
                           NULL, 'EUR', 'bench', 'bench'
                    FROM (SELECT i, CAST(floor(? * pow(random(), 2.5)) AS BIGINT) AS n,
                                 DATE '2024-01-01' + CAST(floor(random() * 730) AS INTEGER) AS d
                          FROM range(?) r(i)) t
                    JOIN ids USING (n)""", [size, LINES_PER_CUSTOMER * size])
                warehouse.rebuild_derived_dimensions(con)
        db.session.remove()
    try:
        yield app, tenant_id
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def ours(app, tenant_id) -> tuple[float, int]:
    from clientela.core import tenancy
    from clientela.plugins.analytical import metrics, warehouse

    metrics._fits.clear()  # a fresh fit every run, as after a refresh
    out = {}

    def work():
        with warehouse.connect() as con:
            out["rfm"], _ = metrics.customer_table(con, "rfm", as_of=AS_OF)
            out["clv"], _ = metrics.probabilistic_table(con, AS_OF, horizon_months=36,
                                                        discount_rate=0.1)

    with app.app_context(), tenancy.tenant_context(tenant_id):
        seconds = harness.timed(work)
    return seconds, len(out["clv"])


RFM_SQL = """
WITH p AS (
    SELECT customer_id, max(date_key) AS last_day, count(DISTINCT order_id) AS orders,
           sum(amount) AS revenue
    FROM fact_transaction WHERE date_key <= $as_of GROUP BY 1)
SELECT customer_id,
       CAST(1 + floor(5 * (rank() OVER (ORDER BY date_diff('day', last_day, $as_of) DESC) - 1)
                      / count(*) OVER ()) AS INTEGER) AS r,
       CAST(1 + floor(5 * (rank() OVER (ORDER BY orders) - 1) / count(*) OVER ()) AS INTEGER)
           AS f,
       CAST(1 + floor(5 * (rank() OVER (ORDER BY revenue) - 1) / count(*) OVER ()) AS INTEGER)
           AS m
FROM p
"""

INPUTS_SQL = """
WITH d AS (SELECT customer_id, date_key, CAST(sum(amount) AS DOUBLE) AS v
           FROM fact_transaction WHERE date_key <= $as_of GROUP BY 1, 2),
f AS (SELECT customer_id, min(date_key) AS first_day FROM d GROUP BY 1)
SELECT d.customer_id, count(*) - 1.0 AS x,
       date_diff('day', first_day, max(date_key)) / 7.0 AS t_x,
       date_diff('day', first_day, $as_of) / 7.0 AS big_t,
       coalesce(avg(v) FILTER (WHERE date_key > first_day), 0.0) AS zbar
FROM d JOIN f USING (customer_id) GROUP BY d.customer_id, first_day
"""


def baseline(path: str) -> tuple[float, int]:
    """The same models written directly: DuckDB SQL, scipy.optimize on the full arrays."""
    import duckdb
    import numpy as np
    from scipy import optimize, special

    out = {}

    def work():
        con = duckdb.connect(path, read_only=True)
        out["rfm"] = con.execute(RFM_SQL, {"as_of": AS_OF}).fetchall()
        data = con.execute(INPUTS_SQL, {"as_of": AS_OF}).fetchnumpy()
        con.close()
        x, tx, T, z = data["x"], data["t_x"], data["big_t"], data["zbar"]
        rep = x > 0

        def bg_nll(lp):
            r, al, a, b = np.exp(lp)
            a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(al)
            a2 = (special.gammaln(a + b) + special.gammaln(b + x) - special.gammaln(b)
                  - special.gammaln(a + b + x))
            a3 = -(r + x) * np.log(al + T)
            a4 = np.full_like(x, -np.inf)
            a4[rep] = (np.log(a) - np.log(b + x[rep] - 1)
                       - (r + x[rep]) * np.log(al + tx[rep]))
            return -np.sum(a1 + a2 + np.logaddexp(a3, a4))

        r, al, a, b = np.exp(optimize.minimize(bg_nll, np.zeros(4), method="L-BFGS-B").x)
        xr, zr = x[rep & (z > 0)], z[rep & (z > 0)]

        def gg_nll(lp):
            p, q, g = np.exp(lp)
            return -np.sum(special.gammaln(p * xr + q) - special.gammaln(p * xr)
                           - special.gammaln(q) + q * np.log(g) + (p * xr - 1) * np.log(zr)
                           + p * xr * np.log(xr) - (p * xr + q) * np.log(g + xr * zr))

        p, q, g = np.exp(optimize.minimize(gg_nll, np.log([1.0, 2.0, zr.mean()]),
                                           method="L-BFGS-B").x)
        odds = np.where(rep, a / np.where(rep, b + x - 1, 1)
                        * ((al + T) / (al + np.where(rep, tx, 0))) ** (r + x), 0)
        alive = 1 / (1 + odds)

        def expected(t):
            hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, t / (al + T + t))
            return ((a + b + x - 1) / (a - 1) * (1 - ((al + T) / (al + T + t)) ** (r + x)
                                                  * hyp) / (1 + odds))

        spend = (g + x * np.where(rep, z, 0)) * p / (p * x + q - 1)
        monthly = 1.1 ** (1 / 12) - 1
        value, prev = np.zeros_like(x), np.zeros_like(x)
        for m in range(1, 37):
            cum = expected(m * 52.1775 / 12)
            value += (cum - prev) / (1 + monthly) ** m
            prev = cum
        out["clv"] = spend * value
        out["alive"] = alive

    seconds = harness.timed(work)
    return seconds, len(out["clv"])


def run(size: int, repeats: int) -> list[dict]:
    from clientela.core import tenancy
    from clientela.plugins.analytical import warehouse

    metric = (f"s, RFM + BG/NBD/Gamma-Gamma CLV of {size:,} customers, "
              f"{LINES_PER_CUSTOMER * size:,} order lines")
    with tempfile.TemporaryDirectory(prefix="clientela-models-") as workdir:
        with loaded_warehouse(workdir, size) as (app, tenant_id):
            with app.app_context(), tenancy.tenant_context(tenant_id):
                path = warehouse.warehouse_path()
            ours_runs, raw_runs = harness.alternate(lambda: ours(app, tenant_id),
                                                    lambda: baseline(path), repeats)
    if {n for _, n in ours_runs} != {n for _, n in raw_runs}:
        raise RuntimeError(f"different customer counts: {ours_runs} vs {raw_runs}")
    ours_s = harness.median([s for s, _ in ours_runs])
    raw_s = harness.median([s for s, _ in raw_runs])
    return [harness.result(
        NAME, metric, "s", ours_s, raw_s, "hand-written DuckDB SQL + direct scipy fit",
        f"<= {TARGET_RATIO}x", ours_s / raw_s <= TARGET_RATIO,
        note=f"buying customers {ours_runs[0][1]:,}; runs: ours "
             f"{[round(s, 2) for s, _ in ours_runs]}, baseline "
             f"{[round(s, 2) for s, _ in raw_runs]}")]


if __name__ == "__main__":
    import json

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    print(json.dumps(run(n, int(sys.argv[2]) if len(sys.argv) > 2 else 1), indent=2))
