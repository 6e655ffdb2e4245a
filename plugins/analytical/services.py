"""Analytics for callers with a principal: permission checks around the warehouse's metrics.

The analytics read the whole tenant (they are granted with scope ``all``); one customer's
figures need that customer to be visible to the caller as well.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from clientela.core import access, customers
from clientela.core.access import Principal
from clientela.plugins.analytical import metrics, warehouse


def customer_table(principal: Principal, kind: str, *, as_of: dt.date | None = None,
                   factor: float | None = None, segment: str | None = None,
                   page: int = 1, page_size: int = 10, method: str | None = None,
                   horizon_months: int | None = None, discount_rate: float | None = None
                   ) -> tuple[list[dict[str, Any]], int]:
    access.require(principal, "analytics:read")
    with warehouse.connect() as con:
        if method == "bgnbd" and kind in ("clv", "churn"):
            return metrics.probabilistic_table(
                con, as_of, horizon_months=horizon_months, discount_rate=discount_rate,
                order=kind, limit=page_size, offset=(page - 1) * page_size)
        return metrics.customer_table(con, kind, as_of=as_of, factor=factor, segment=segment,
                                      limit=page_size, offset=(page - 1) * page_size)


def clv_model(principal: Principal, as_of: dt.date | None = None) -> dict[str, Any]:
    access.require(principal, "analytics:read")
    with warehouse.connect() as con:
        return metrics.model_summary(con, as_of)


def churn_validation(principal: Principal, as_of: dt.date | None = None,
                     holdout_weeks: int = 26) -> dict[str, Any]:
    access.require(principal, "analytics:read")
    with warehouse.connect() as con:
        return metrics.churn_validation(con, as_of, holdout_weeks)


def rfm_summary(principal: Principal, as_of: dt.date | None = None) -> dict[str, Any]:
    access.require(principal, "analytics:read")
    with warehouse.connect() as con:
        return {"as_of": as_of or metrics.today(),
                "segments": metrics.rfm_summary(con, as_of)}


def cohorts(principal: Principal, as_of: dt.date | None = None) -> dict[str, Any]:
    access.require(principal, "analytics:read")
    with warehouse.connect() as con:
        return {"as_of": as_of or metrics.today(), "cohorts": metrics.cohorts(con, as_of)}


def trends(principal: Principal, as_of: dt.date | None = None, months: int = 12
           ) -> dict[str, Any]:
    access.require(principal, "analytics:read")
    with warehouse.connect() as con:
        return {"as_of": as_of or metrics.today(), "months": metrics.trends(con, as_of, months)}


def associations(principal: Principal, **kwargs: Any) -> dict[str, Any]:
    access.require(principal, "analytics:read")
    with warehouse.connect() as con:
        result = metrics.associations(con, **kwargs)
    return {"as_of": kwargs.get("as_of") or metrics.today(), **result}


def customer_analytics(customer_id: uuid.UUID, principal: Principal,
                       as_of: dt.date | None = None) -> dict[str, Any]:
    """One customer's profile, RFM, CLV, churn risk, channel mix and next best offers."""
    access.require(principal, "analytics:read")
    customers.get_customer(customer_id, principal)
    return summary(customer_id, as_of)


def summary(customer_id: uuid.UUID, as_of: dt.date | None = None,
            with_offers: bool = True, wait: float | None = None) -> dict[str, Any]:
    """What the warehouse knows of one customer (no permission check: callers do it)."""
    as_of = as_of or metrics.today()
    with warehouse.connect(wait=wait) as con:
        rows, _ = metrics.customer_table(con, "profiles", as_of=as_of,
                                         customer_id=str(customer_id))
        data: dict[str, Any] = {"customer_id": customer_id, "as_of": as_of,
                                "in_warehouse": bool(rows)}
        if rows:
            params = metrics.parameters(as_of)
            params["customer_id"] = str(customer_id)
            cursor = con.execute(
                f"SELECT * FROM ({metrics.customer_metrics_sql()}) "
                "WHERE customer_id = CAST($customer_id AS UUID)", params)
            names = [d[0] for d in cursor.description]
            full = dict(zip(names, cursor.fetchall()[0]))
            for key in (*metrics.PROFILE_FIELDS, *metrics.RFM_FIELDS, *metrics.CLV_FIELDS,
                        *metrics.CHURN_FIELDS):
                data[key] = full[key]
            data["customer_id"] = customer_id
            data["channels"] = metrics.channel_mix(con, str(customer_id), as_of)
            data["attributes"] = dict(con.execute(
                "SELECT name, value FROM dim_customer_attribute WHERE customer_id = ? "
                "ORDER BY name", [str(customer_id)]).fetchall())
            data.update(_probabilistic(con, customer_id, as_of))
            if with_offers:
                data["next_best_offers"] = metrics.next_best_offers(con, str(customer_id), as_of)
    return data


PROBABILISTIC_KEYS = ("p_alive", "expected_purchases", "expected_spend", "clv",
                      "horizon_months", "churn_probability", "churn_horizon_weeks",
                      "churn_risk")


def _probabilistic(con, customer_id: uuid.UUID, as_of: dt.date) -> dict[str, Any]:
    """The customer's BG/NBD figures, under ``bgnbd``; ``None`` when no model can be fitted
    (too few repeat buyers) or the customer has not bought."""
    from clientela.plugins.analytical import clv

    try:
        rows, _ = metrics.probabilistic_table(con, as_of, customer_id=str(customer_id))
    except clv.NotEnoughData:
        return {"bgnbd": None}
    if not rows:
        return {"bgnbd": None}
    return {"bgnbd": {key: rows[0][key] for key in PROBABILISTIC_KEYS}}
