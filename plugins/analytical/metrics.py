"""What the warehouse computes: profiles, RFM, lifetime value, churn risk, cohorts, product
associations — each one DuckDB query over the star schema, as of a date.

Every metric counts only purchases on or before ``as_of`` (default: today, UTC) and only
customers still in ``dim_customer``. Formulas and references: docs/plugins/analytical.md.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import current_app

from clientela.core.errors import ValidationError

#: The R x F segment grid (scores 1-5), first match wins; see docs/plugins/analytical.md
RFM_SEGMENTS: tuple[tuple[str, tuple[int, int], tuple[int, int]], ...] = (
    # segment,            R range, F range
    ("Champions",          (5, 5), (4, 5)),
    ("Loyal",              (3, 4), (4, 5)),
    ("Potential loyalist", (4, 5), (2, 3)),
    ("New",                (5, 5), (1, 1)),
    ("Promising",          (4, 4), (1, 1)),
    ("Need attention",     (3, 3), (3, 3)),
    ("About to sleep",     (3, 3), (1, 2)),
    ("Can't lose them",    (1, 2), (5, 5)),
    ("At risk",            (1, 2), (3, 4)),
    ("Hibernating",        (1, 2), (1, 2)),
)
SEGMENT_NAMES = tuple(name for name, _, _ in RFM_SEGMENTS)
CHURN_RISKS = ("low", "medium", "high")


def setting(key: str):
    from clientela.plugins.analytical import DEFAULTS

    return current_app.config.get(key, DEFAULTS[key][0])


def today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def _segment_case(r: str = "r_score", f: str = "f_score") -> str:
    whens = []
    for name, (r_lo, r_hi), (f_lo, f_hi) in RFM_SEGMENTS:
        label = name.replace("'", "''")
        whens.append(f"WHEN {r} BETWEEN {r_lo} AND {r_hi} AND {f} BETWEEN {f_lo} AND {f_hi} "
                     f"THEN '{label}'")
    return "CASE " + " ".join(whens) + " END"


def _score(column: str, direction: str) -> str:
    # quintile by rank: ties share the score of their first position, so equal values
    # always score alike (pandas: qcut of rank(method="min"))
    return (f"CAST(1 + floor(5 * (rank() OVER (ORDER BY {column} {direction}) - 1) "
            f"/ count(*) OVER ()) AS INTEGER)")


def customer_metrics_sql() -> str:
    """One row per customer of ``dim_customer``: profile, RFM, CLV and churn as of ``$as_of``.

    Parameters: ``$as_of`` (DATE), ``$lifespan``, ``$margin``, ``$min_years``, ``$factor``,
    ``$default_interval``. Customers without a purchase have NULL purchase figures and
    churn risk.
    """
    return f"""
    WITH purchases AS (
        SELECT t.customer_id, min(t.date_key) AS first_purchase, max(t.date_key) AS last_purchase,
               count(DISTINCT t.order_id) AS orders, sum(t.amount) AS revenue,
               sum(t.quantity) AS units
        FROM fact_transaction t
        WHERE t.date_key <= $as_of AND t.customer_id IN (SELECT customer_id FROM dim_customer)
        GROUP BY t.customer_id),
    rfm AS (
        SELECT customer_id, date_diff('day', last_purchase, $as_of) AS recency_days,
               {_score("date_diff('day', last_purchase, $as_of)", "DESC")} AS r_score,
               {_score("orders", "ASC")} AS f_score,
               {_score("revenue", "ASC")} AS m_score
        FROM purchases),
    interactions AS (
        SELECT customer_id, count(*) AS interactions, max(occurred_at) AS last_interaction
        FROM fact_interaction WHERE date_key <= $as_of GROUP BY customer_id),
    metrics AS (
        SELECT c.customer_id, c.display_name, c.stage, c.created_at,
               date_diff('day', CAST(c.created_at AS DATE), $as_of) AS tenure_days,
               p.first_purchase, p.last_purchase, p.orders, p.units,
               CAST(p.revenue AS DOUBLE) AS revenue,
               round(CAST(p.revenue AS DOUBLE) / p.orders, 2) AS average_order_value,
               rfm.recency_days, rfm.r_score, rfm.f_score, rfm.m_score,
               greatest(date_diff('day', p.first_purchase, $as_of) / 365.0, $min_years)
                   AS observed_years,
               CASE WHEN p.orders >= 2
                    THEN greatest(date_diff('day', p.first_purchase, p.last_purchase)
                                  / (p.orders - 1.0), 1.0)
                    ELSE $default_interval END AS usual_interval_days,
               coalesce(i.interactions, 0) AS interactions, i.last_interaction
        FROM dim_customer c
        LEFT JOIN purchases p USING (customer_id)
        LEFT JOIN rfm USING (customer_id)
        LEFT JOIN interactions i USING (customer_id))
    SELECT *,
           CAST(r_score AS VARCHAR) || CAST(f_score AS VARCHAR) || CAST(m_score AS VARCHAR)
               AS rfm_score,
           {_segment_case()} AS rfm_segment,
           round(orders / observed_years, 4) AS orders_per_year,
           round(revenue / observed_years * $lifespan * $margin, 2) AS clv,
           round(recency_days / usual_interval_days, 4) AS churn_ratio,
           CASE WHEN orders IS NULL THEN NULL
                WHEN recency_days <= usual_interval_days THEN 'low'
                WHEN recency_days <= $factor * usual_interval_days THEN 'medium'
                ELSE 'high' END AS churn_risk,
           CASE WHEN orders IS NULL THEN NULL
                ELSE recency_days > $factor * usual_interval_days END AS churned
    FROM metrics
    """


def parameters(as_of: dt.date | None = None, factor: float | None = None) -> dict[str, Any]:
    return {
        "as_of": as_of or today(),
        "lifespan": float(setting("ANALYTICAL_CLV_LIFESPAN_YEARS")),
        "margin": float(setting("ANALYTICAL_CLV_MARGIN")),
        "min_years": float(setting("ANALYTICAL_CLV_MIN_YEARS")),
        "factor": float(factor if factor is not None else setting("ANALYTICAL_CHURN_FACTOR")),
        "default_interval": float(setting("ANALYTICAL_CHURN_DEFAULT_INTERVAL_DAYS")),
    }


def _rows(con, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


PROFILE_FIELDS = ("customer_id", "display_name", "first_purchase", "last_purchase", "orders",
                  "units", "revenue", "average_order_value", "tenure_days", "interactions",
                  "last_interaction")
RFM_FIELDS = ("customer_id", "recency_days", "orders", "revenue", "r_score", "f_score",
              "m_score", "rfm_score", "rfm_segment")
CLV_FIELDS = ("customer_id", "orders", "revenue", "average_order_value", "observed_years",
              "orders_per_year", "clv")
CHURN_FIELDS = ("customer_id", "last_purchase", "orders", "recency_days",
                "usual_interval_days", "churn_ratio", "churn_risk", "churned")

ORDERS = {
    "profiles": "revenue DESC NULLS LAST, customer_id",
    "rfm": "r_score DESC, f_score DESC, m_score DESC, customer_id",
    "clv": "clv DESC, customer_id",
    "churn": "churn_ratio DESC, customer_id",
}


def customer_table(con, kind: str, as_of: dt.date | None = None, factor: float | None = None,
                   limit: int | None = None, offset: int = 0, segment: str | None = None,
                   customer_id: str | None = None) -> tuple[list[dict[str, Any]], int]:
    """Rows of one per-customer view (``profiles``, ``rfm``, ``clv``, ``churn``) and their total."""
    fields = {"profiles": PROFILE_FIELDS, "rfm": RFM_FIELDS, "clv": CLV_FIELDS,
              "churn": CHURN_FIELDS}[kind]
    params = parameters(as_of, factor)
    where = ["orders IS NOT NULL"] if kind != "profiles" else ["TRUE"]
    if segment:
        where.append("rfm_segment = $segment")
        params["segment"] = segment
    if customer_id:
        where.append("customer_id = CAST($customer_id AS UUID)")
        params["customer_id"] = str(customer_id)
    base = f"SELECT * FROM ({customer_metrics_sql()}) WHERE {' AND '.join(where)}"
    if limit is None:
        rows = _rows(con, f"SELECT {', '.join(fields)} FROM ({base}) ORDER BY {ORDERS[kind]}"
                          + (f" OFFSET {int(offset)}" if offset else ""), params)
        if not offset:
            return rows, len(rows)
    else:
        # the total in the same pass: the metrics query runs once, not once more to count
        rows = _rows(con, f"SELECT {', '.join(fields)}, count(*) OVER () AS _total "
                          f"FROM ({base}) ORDER BY {ORDERS[kind]} "
                          f"LIMIT {int(limit)} OFFSET {int(offset)}", params)
        if rows:
            total = rows[0]["_total"]
            for row in rows:
                del row["_total"]
            return rows, total
    # a page past the end (or an offset without a limit): count on its own
    return rows, con.execute(f"SELECT count(*) FROM ({base})", params).fetchall()[0][0]


def rfm_summary(con, as_of: dt.date | None = None) -> list[dict[str, Any]]:
    """Customers, revenue and average scores per RFM segment (every segment, even empty)."""
    params = parameters(as_of)
    found = {r["segment"]: r for r in _rows(con, f"""
        SELECT rfm_segment AS segment, count(*) AS customers, sum(revenue) AS revenue,
               round(avg(recency_days), 2) AS average_recency_days,
               round(avg(orders), 2) AS average_orders
        FROM ({customer_metrics_sql()}) WHERE orders IS NOT NULL GROUP BY rfm_segment""",
                                           params)}
    return [found.get(name, {"segment": name, "customers": 0, "revenue": 0.0,
                             "average_recency_days": None, "average_orders": None})
            for name in SEGMENT_NAMES]


def channel_mix(con, customer_id: str, as_of: dt.date | None = None) -> dict[str, int]:
    rows = con.execute("SELECT channel, count(*) FROM fact_interaction WHERE customer_id = ? "
                       "AND date_key <= ? GROUP BY channel ORDER BY channel",
                       [str(customer_id), as_of or today()]).fetchall()
    return dict(rows)


def cohorts(con, as_of: dt.date | None = None) -> list[dict[str, Any]]:
    """Monthly acquisition cohorts (month of first purchase) x months since: the retention matrix.

    ``active[k]`` is the number of the cohort's customers who bought in the k-th month after
    their first (``active[0]`` is the cohort's size); ``retention[k] = active[k] / size``.
    """
    as_of = as_of or today()
    rows = con.execute("""
        WITH purchases AS (
            SELECT customer_id, date_trunc('month', date_key) AS month FROM fact_transaction
            WHERE date_key <= $as_of AND customer_id IN (SELECT customer_id FROM dim_customer)),
        firsts AS (SELECT customer_id, min(month) AS cohort FROM purchases GROUP BY 1)
        SELECT f.cohort, date_diff('month', f.cohort, p.month) AS month_offset,
               count(DISTINCT p.customer_id) AS customers
        FROM purchases p JOIN firsts f USING (customer_id)
        GROUP BY 1, 2 ORDER BY 1, 2""", {"as_of": as_of}).fetchall()
    last_month = dt.date(as_of.year, as_of.month, 1)
    matrix: dict[dt.date, dict[int, int]] = {}
    for cohort, offset, customers in rows:
        matrix.setdefault(cohort, {})[offset] = customers
    result = []
    for cohort, counts in matrix.items():
        span = (last_month.year - cohort.year) * 12 + last_month.month - cohort.month
        active = [counts.get(k, 0) for k in range(span + 1)]
        size = active[0]
        result.append({"cohort": cohort.strftime("%Y-%m"), "size": size, "active": active,
                       "retention": [round(n / size, 4) for n in active]})
    return result


BASKETS = {"customer": "customer_id", "order": "order_id"}


def associations(con, as_of: dt.date | None = None, basket: str = "customer",
                 min_support: float = 0.0, min_confidence: float = 0.0,
                 product_id: str | None = None, limit: int = 100) -> dict[str, Any]:
    """Rules X -> Y between products bought in the same basket, with support, confidence, lift.

    ``basket`` is ``customer`` (everything a customer bought: "customers who bought X also
    bought Y") or ``order``. support = n(X and Y) / N, confidence = n(X and Y) / n(X),
    lift = confidence / (n(Y) / N), N the number of baskets.
    """
    if basket not in BASKETS:
        raise ValidationError({"basket": [f"use one of {', '.join(BASKETS)}"]},
                              message="Invalid query.")
    key = BASKETS[basket]
    params: dict[str, Any] = {"as_of": as_of or today(), "min_support": min_support,
                              "min_confidence": min_confidence}
    only = ""
    if product_id:
        only = "AND x = $product_id"
        params["product_id"] = product_id
    sql = f"""
        WITH baskets AS (
            SELECT DISTINCT CAST({key} AS VARCHAR) AS basket, product_id FROM fact_transaction
            WHERE date_key <= $as_of AND customer_id IN (SELECT customer_id FROM dim_customer)),
        n AS (SELECT count(DISTINCT basket) AS n FROM baskets),
        items AS (SELECT product_id, count(*) AS baskets FROM baskets GROUP BY 1),
        pairs AS (
            SELECT a.product_id AS x, b.product_id AS y, count(*) AS both_count
            FROM baskets a JOIN baskets b ON a.basket = b.basket AND a.product_id <> b.product_id
            GROUP BY 1, 2)
        SELECT x AS antecedent, y AS consequent, both_count AS baskets,
               round(both_count / n.n, 6) AS support,
               round(both_count / ix.baskets, 6) AS confidence,
               round((both_count / ix.baskets) / (iy.baskets / n.n), 6) AS lift
        FROM pairs, n, items ix, items iy
        WHERE ix.product_id = x AND iy.product_id = y
          AND both_count / n.n >= $min_support AND both_count / ix.baskets >= $min_confidence
          {only}
        ORDER BY lift DESC, confidence DESC, antecedent, consequent
        LIMIT {int(limit)}"""
    total = con.execute("SELECT count(DISTINCT CAST(" + key + " AS VARCHAR)) FROM fact_transaction "
                        "WHERE date_key <= $as_of AND customer_id IN "
                        "(SELECT customer_id FROM dim_customer)",
                        {"as_of": params["as_of"]}).fetchall()[0][0]
    return {"basket": basket, "baskets": total, "rules": _rows(con, sql, params)}


def next_best_offers(con, customer_id: str, as_of: dt.date | None = None, limit: int = 3
                     ) -> list[dict[str, Any]]:
    """Products the customer has not bought, ranked by the best lift of a rule from theirs."""
    rules = associations(con, as_of, "customer", limit=100_000)["rules"]
    owned = {r[0] for r in con.execute(
        "SELECT DISTINCT product_id FROM fact_transaction WHERE customer_id = ? AND date_key <= ?",
        [str(customer_id), as_of or today()]).fetchall()}
    best: dict[str, dict[str, Any]] = {}
    for rule in rules:
        if rule["antecedent"] in owned and rule["consequent"] not in owned:
            current = best.get(rule["consequent"])
            if current is None or (rule["lift"], rule["confidence"]) > (current["lift"],
                                                                         current["confidence"]):
                best[rule["consequent"]] = {"product_id": rule["consequent"],
                                            "because_of": rule["antecedent"],
                                            "lift": rule["lift"],
                                            "confidence": rule["confidence"]}
    ranked = sorted(best.values(), key=lambda o: (-o["lift"], -o["confidence"], o["product_id"]))
    return ranked[:limit]


def trends(con, as_of: dt.date | None = None, months: int = 12) -> list[dict[str, Any]]:
    """Per calendar month, the ``months`` months up to ``as_of``'s: orders, revenue, buying
    customers, and interactions by channel (months without activity show zeros)."""
    as_of = as_of or today()
    last = dt.date(as_of.year, as_of.month, 1)
    index = last.year * 12 + last.month - 1 - (months - 1)
    first = dt.date(index // 12, index % 12 + 1, 1)
    sales = {m: (o, float(r), c) for m, o, r, c in con.execute("""
        SELECT CAST(date_trunc('month', date_key) AS DATE), count(DISTINCT order_id),
               sum(amount), count(DISTINCT customer_id)
        FROM fact_transaction
        WHERE date_key BETWEEN ? AND ? AND customer_id IN (SELECT customer_id FROM dim_customer)
        GROUP BY 1""", [first, as_of]).fetchall()}
    touches: dict[dt.date, dict[str, int]] = {}
    for month, channel, n in con.execute("""
        SELECT CAST(date_trunc('month', date_key) AS DATE), channel, count(*)
        FROM fact_interaction WHERE date_key BETWEEN ? AND ?
          AND customer_id IN (SELECT customer_id FROM dim_customer)
        GROUP BY 1, 2 ORDER BY 1, 2""", [first, as_of]).fetchall():
        touches.setdefault(month, {})[channel] = n
    result = []
    for i in range(months):
        month = dt.date((index + i) // 12, (index + i) % 12 + 1, 1)
        orders, revenue, buyers = sales.get(month, (0, 0.0, 0))
        result.append({"month": month.strftime("%Y-%m"), "orders": orders,
                       "revenue": round(revenue, 2), "customers": buyers,
                       "interactions": touches.get(month, {})})
    return result


# --- probabilistic models: BG/NBD + Gamma-Gamma lifetime value, P(alive) churn ------------

CLV_METHODS = ("historical", "bgnbd")
CHURN_METHODS = ("rule", "bgnbd")


def bgnbd_inputs_sql(customer_filter: str = "") -> str:
    """Per buying customer, as of ``$as_of``: the BG/NBD and Gamma-Gamma inputs.

    A purchase occasion is a day with at least one order line (several orders on one day
    count once, as in the CDNOW data of Fader, Hardie & Lee); ``x`` = occasions - 1 (repeat
    purchases), ``t_x`` = weeks from the first to the last occasion, ``T`` = weeks from the
    first occasion to ``$as_of``, ``zbar`` = the mean value of the repeat occasions (0
    without one).
    """
    return f"""
    WITH days AS (
        SELECT customer_id, date_key, CAST(sum(amount) AS DOUBLE) AS value
        FROM fact_transaction
        WHERE date_key <= $as_of AND customer_id IN (SELECT customer_id FROM dim_customer)
              {customer_filter}
        GROUP BY customer_id, date_key),
    firsts AS (SELECT customer_id, min(date_key) AS first_day FROM days GROUP BY 1)
    SELECT d.customer_id, CAST(count(*) - 1 AS DOUBLE) AS x,
           date_diff('day', f.first_day, max(d.date_key)) / 7.0 AS t_x,
           date_diff('day', f.first_day, $as_of) / 7.0 AS "T",
           coalesce(avg(d.value) FILTER (WHERE d.date_key > f.first_day), 0.0) AS zbar
    FROM days d JOIN firsts f USING (customer_id)
    GROUP BY d.customer_id, f.first_day
    ORDER BY d.customer_id"""


def _data_version(con) -> tuple:
    """Changes whenever the warehouse's facts may have: the last refresh and import."""
    refreshed = con.execute("SELECT value FROM warehouse_meta WHERE key = 'refreshed_at'"
                            ).fetchall()
    imported = con.execute("SELECT max(started_at), count(*) FROM import_runs").fetchall()[0]
    return (refreshed[0][0] if refreshed else None, *imported)


#: (warehouse file, as_of, data version) -> (BetaGeoFit, GammaGammaFit | None); a few only
_fits: dict[tuple, tuple] = {}
_FITS_KEPT = 16


def _inputs(con, as_of: dt.date, customer_id: str | None = None) -> dict[str, Any]:
    """The BG/NBD inputs as numpy arrays (``customer_id`` an array of UUIDs)."""
    params: dict[str, Any] = {"as_of": as_of}
    only = ""
    if customer_id:
        only = "AND customer_id = CAST($customer_id AS UUID)"
        params["customer_id"] = str(customer_id)
    return con.execute(bgnbd_inputs_sql(only), params).fetchnumpy()


def fit_models(con, as_of: dt.date | None = None, data: dict[str, Any] | None = None):
    """The BG/NBD and Gamma-Gamma fits on every buying customer as of ``as_of``.

    Fitted once per warehouse state and day in this process (a fit on 1,000,000 customers
    takes seconds). Gamma-Gamma is ``None`` when too few customers bought twice with a
    positive value; BG/NBD raises ``clv.NotEnoughData`` then. ``data``: the inputs of every
    customer, when the caller has them already.
    """
    from clientela.plugins.analytical import clv

    as_of = as_of or today()
    path = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = "
                       "current_database()").fetchall()[0][0]
    key = (path, as_of, _data_version(con))
    if key in _fits:
        return _fits[key]
    if data is None:
        data = con.execute(f"SELECT x, t_x, \"T\", zbar FROM ({bgnbd_inputs_sql()})",
                           {"as_of": as_of}).fetchnumpy()
    bg = clv.fit_bgnbd(data["x"], data["t_x"], data["T"])
    try:
        gg = clv.fit_gamma_gamma(data["x"], data["zbar"])
    except clv.NotEnoughData:
        gg = None
    if len(_fits) >= _FITS_KEPT:
        _fits.pop(next(iter(_fits)))
    _fits[key] = (bg, gg)
    return bg, gg


def model_summary(con, as_of: dt.date | None = None) -> dict[str, Any]:
    """The fitted parameters (and log-likelihoods) behind ``method=bgnbd``."""
    from clientela.plugins.analytical import clv

    bg, gg = fit_models(con, as_of)
    return {"as_of": as_of or today(), **clv.summary(bg, gg),
            "horizon_months": _horizon_months(),
            "annual_discount_rate": float(setting("ANALYTICAL_CLV_DISCOUNT_RATE")),
            "margin": float(setting("ANALYTICAL_CLV_MARGIN"))}


def _horizon_months() -> int:
    return max(1, round(float(setting("ANALYTICAL_CLV_LIFESPAN_YEARS")) * 12))


def _churn_risk(probability):
    import numpy as np

    medium, high = (float(v) for v in setting("ANALYTICAL_CHURN_PROBABILITY_LEVELS"))
    return np.where(probability < medium, "low", np.where(probability < high, "medium", "high"))


def bgnbd_scores_sql(con, as_of: dt.date, params: dict[str, Any]) -> str:
    """SQL of ``customer_id, p_alive, churn_probability`` per buying customer, the BG/NBD
    closed forms evaluated in DuckDB with the fitted parameters (added to ``params``), for
    segment rules. Raises ``clv.NotEnoughData`` (422) when no model can be fitted."""
    bg, _ = fit_models(con, as_of)
    params.update({"bg_r": bg.r, "bg_alpha": bg.alpha, "bg_a": bg.a, "bg_b": bg.b,
                   "bg_weeks": float(setting("ANALYTICAL_CHURN_HORIZON_WEEKS"))})
    return f"""
    SELECT customer_id, p_alive,
           1 - p_alive * (1 - pow(($bg_alpha + "T") / ($bg_alpha + "T" + $bg_weeks),
                                  $bg_r + x)) AS churn_probability
    FROM (SELECT customer_id, x, "T",
                 1 / (1 + CASE WHEN x > 0 THEN $bg_a / ($bg_b + x - 1)
                                   * pow(($bg_alpha + "T") / ($bg_alpha + t_x), $bg_r + x)
                               ELSE 0 END) AS p_alive
          FROM ({bgnbd_inputs_sql()}))"""


PROBABILISTIC_ORDERS = ("clv", "churn")


def probabilistic_table(con, as_of: dt.date | None = None, customer_id: str | None = None,
                        horizon_months: int | None = None, discount_rate: float | None = None,
                        order: str | None = None, limit: int | None = None, offset: int = 0
                        ) -> tuple[list[dict[str, Any]], int]:
    """Per buying customer: P(alive), expected purchases and spend, the discounted CLV over
    the horizon and the churn probability, from the fitted BG/NBD and Gamma-Gamma models.

    ``order``: ``clv`` (highest first) or ``churn`` (likeliest first), ``None`` unordered;
    ``limit``/``offset`` page after ordering. Everything is computed column-wise in numpy;
    rows are built for the page only. Returns the rows and the number of buying customers.
    """
    import numpy as np

    from clientela.plugins.analytical import clv

    as_of = as_of or today()
    data = _inputs(con, as_of, customer_id)
    bg, gg = fit_models(con, as_of, None if customer_id else data)
    total = len(data["x"])
    if total == 0:
        return [], 0
    months = horizon_months or _horizon_months()
    rate = float(discount_rate if discount_rate is not None
                 else setting("ANALYTICAL_CLV_DISCOUNT_RATE"))
    margin = float(setting("ANALYTICAL_CLV_MARGIN"))
    churn_weeks = float(setting("ANALYTICAL_CHURN_HORIZON_WEEKS"))
    x, t_x, T, zbar = data["x"], data["t_x"], data["T"], data["zbar"]
    columns: dict[str, Any] = {
        "p_alive": np.round(bg.p_alive(x, t_x, T), 6),
        "expected_purchases": np.round(bg.expected_purchases(months * clv.WEEKS_PER_MONTH,
                                                             x, t_x, T), 4),
        "churn_probability": np.round(bg.p_no_purchase(churn_weeks, x, t_x, T), 6),
    }
    if gg is not None:
        columns["expected_spend"] = np.round(gg.expected_spend(x, zbar), 2)
        columns["clv"] = np.round(clv.lifetime_value(bg, gg, x, t_x, T, zbar, months=months,
                                                     annual_discount=rate, margin=margin), 2)
    ids = data["customer_id"]
    # rows come ordered by customer id; a stable sort keeps that order among equals, so
    # pages do not overlap
    if order == "clv" and gg is not None:
        index = np.argsort(-columns["clv"], kind="stable")
    elif order == "churn":
        index = np.argsort(-columns["churn_probability"], kind="stable")
    else:
        index = np.arange(total)
    index = index[offset:offset + limit] if limit is not None else index[offset:]
    risk = _churn_risk(columns["churn_probability"][index])
    page = {
        "customer_id": ids[index].tolist(),
        "orders": (x[index] + 1).astype(int).tolist(),
        "repeat_purchases": x[index].astype(int).tolist(),
        "recency_weeks": np.round(t_x[index], 4).tolist(),
        "age_weeks": np.round(T[index], 4).tolist(),
        "average_repeat_value": np.round(zbar[index], 2).tolist(),
        **{name: values[index].tolist() for name, values in columns.items()},
        "churn_risk": risk.tolist(),
    }
    if gg is None:
        page["expected_spend"] = page["clv"] = [None] * len(index)
    constants = {"method": "bgnbd", "horizon_months": months,
                 "churn_horizon_weeks": churn_weeks}
    names = list(page)
    rows = [dict(zip(names, values), **constants) for values in zip(*page.values())]
    return rows, total


def _auc(scores, positives) -> float | None:
    """Area under the ROC curve (Mann-Whitney U, ties counted half)."""
    import numpy as np
    from scipy import stats

    scores, positives = np.asarray(scores, float), np.asarray(positives, bool)
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = stats.rankdata(scores)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def churn_validation(con, as_of: dt.date | None = None, holdout_weeks: int = 26
                     ) -> dict[str, Any]:
    """How well each churn score predicts who buys nothing in a held-out period.

    The models are fitted on the purchases up to ``as_of - holdout_weeks`` (calibration);
    a customer of the calibration period "churned" when they bought nothing in the
    ``holdout_weeks`` after. Reported: the area under the ROC curve (AUC; 0.5 is chance)
    of the BG/NBD P(no purchase in the holdout), of 1 - P(alive) alone, and of the rule's
    ratio (days since last purchase / usual interval), with the base rate and the mean
    predicted churn probability (calibration).
    """
    import numpy as np

    as_of = as_of or today()
    cutoff = as_of - dt.timedelta(weeks=holdout_weeks)
    data = _inputs(con, cutoff)
    bg, _ = fit_models(con, cutoff, data)
    params = parameters(cutoff)
    rule = dict(con.execute(f"SELECT customer_id, churn_ratio FROM ({customer_metrics_sql()}) "
                            "WHERE orders IS NOT NULL", params).fetchall())
    bought = {r[0] for r in con.execute(
        "SELECT DISTINCT customer_id FROM fact_transaction WHERE date_key > ? AND date_key <= ?",
        [cutoff, as_of]).fetchall()}
    ids = data["customer_id"]
    churned = np.array([cid not in bought for cid in ids], dtype=bool)
    p_alive = bg.p_alive(data["x"], data["t_x"], data["T"])
    silent = bg.p_no_purchase(holdout_weeks, data["x"], data["t_x"], data["T"])
    ratios = np.array([rule.get(cid, np.nan) for cid in ids], dtype=float)

    def four(value):
        return None if value is None else round(value, 4)

    return {"as_of": as_of, "calibration_end": cutoff, "holdout_weeks": holdout_weeks,
            "customers": int(len(ids)), "churned": int(churned.sum()),
            "churn_rate": four(float(churned.mean())),
            "predicted_churn_rate": four(float(silent.mean())),
            "auc": {"bgnbd": four(_auc(silent, churned)),
                    "p_alive": four(_auc(1 - p_alive, churned)),
                    "rule": four(_auc(ratios, churned))}}
