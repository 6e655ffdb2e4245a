"""Saved segments: rule-based definitions over the warehouse's per-customer analytics,
evaluated to the ids of the customers who meet every rule (what campaigns will target)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from clientela.core import access
from clientela.core.access import Principal
from clientela.core.db import db
from clientela.core.errors import Conflict, NotFound, ValidationError
from clientela.plugins.analytical import metrics, warehouse
from clientela.plugins.analytical.models import AnalyticalSegment

#: field -> kind; ``attribute:<name>`` reads an imported customer attribute (as text)
FIELDS = {
    "rfm_segment": "text", "rfm_score": "text", "churn_risk": "text", "stage": "text",
    "r_score": "number", "f_score": "number", "m_score": "number", "recency_days": "number",
    "orders": "number", "revenue": "number", "average_order_value": "number",
    "clv": "number", "churn_ratio": "number", "interactions": "number",
    "tenure_days": "number", "churned": "boolean",
    # from the fitted BG/NBD model (metrics.bgnbd_scores_sql)
    "p_alive": "number", "churn_probability": "number",
}
MODEL_FIELDS = ("p_alive", "churn_probability")
OPERATORS = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=",
             "in": "IN", "present": "IS NOT NULL", "absent": "IS NULL"}


def _rule_errors(rules: Any) -> list[str]:
    if not isinstance(rules, list) or not rules:
        return ["give a non-empty list of rules"]
    errors = []
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict) or set(rule) - {"field", "op", "value"}:
            errors.append(f"rule {i}: use {{'field', 'op', 'value'}}")
            continue
        field, op, value = rule.get("field"), rule.get("op"), rule.get("value")
        attribute = isinstance(field, str) and field.startswith("attribute:") and len(field) > 10
        if field not in FIELDS and not attribute:
            errors.append(f"rule {i}: unknown field {field!r}; use {', '.join(FIELDS)} "
                          "or attribute:<name>")
            continue
        if op not in OPERATORS:
            errors.append(f"rule {i}: unknown op {op!r}; use {', '.join(OPERATORS)}")
            continue
        kind = "text" if attribute else FIELDS[field]
        if op in ("present", "absent"):
            continue
        values = value if op == "in" else [value]
        if op == "in" and (not isinstance(value, list) or not value):
            errors.append(f"rule {i}: 'in' needs a non-empty list")
            continue
        for v in values:
            if kind == "number" and (isinstance(v, bool) or not isinstance(v, (int, float))):
                errors.append(f"rule {i}: {field} compares with numbers")
                break
            if kind == "boolean" and (not isinstance(v, bool) or op not in ("eq", "ne")):
                errors.append(f"rule {i}: {field} is true or false (eq, ne)")
                break
            if kind == "text" and not isinstance(v, str):
                errors.append(f"rule {i}: {field} compares with text")
                break
        if field == "rfm_segment":
            unknown = [v for v in values if v not in metrics.SEGMENT_NAMES]
            if unknown:
                errors.append(f"rule {i}: unknown RFM segment {unknown[0]!r}; use "
                              f"{', '.join(metrics.SEGMENT_NAMES)}")
        if field == "churn_risk" and any(v not in metrics.CHURN_RISKS for v in values):
            errors.append(f"rule {i}: churn_risk is one of {', '.join(metrics.CHURN_RISKS)}")
    return errors


def _check(data: dict[str, Any]) -> None:
    if "rules" in data:
        errors = _rule_errors(data["rules"])
        if errors:
            raise ValidationError({"rules": errors})


def list_segments(principal: Principal) -> list[AnalyticalSegment]:
    access.require(principal, "analytics:read")
    return list(db.session.execute(
        db.select(AnalyticalSegment).order_by(AnalyticalSegment.name)).scalars())


def get_segment(segment_id: uuid.UUID, principal: Principal) -> AnalyticalSegment:
    access.require(principal, "analytics:read")
    segment = db.session.execute(
        db.select(AnalyticalSegment).where(AnalyticalSegment.id == segment_id)
    ).scalar_one_or_none()
    if segment is None:
        raise NotFound("segment not found")
    return segment


def _unique_name(name: str, self_id: uuid.UUID | None = None) -> None:
    clash = db.session.execute(db.select(AnalyticalSegment.id).where(
        AnalyticalSegment.name == name)).scalar_one_or_none()
    if clash is not None and clash != self_id:
        raise Conflict(f"a segment named {name!r} exists")


def create_segment(data: dict[str, Any], principal: Principal) -> AnalyticalSegment:
    access.require(principal, "segments:write")
    _check({"rules": data.get("rules")})
    _unique_name(data["name"])
    segment = AnalyticalSegment(name=data["name"], description=data.get("description", ""),
                                rules=data["rules"])
    db.session.add(segment)
    db.session.flush()
    return segment


def update_segment(segment_id: uuid.UUID, data: dict[str, Any], principal: Principal
                   ) -> AnalyticalSegment:
    segment = get_segment(segment_id, principal)
    access.require(principal, "segments:write")
    _check(data)
    if "name" in data:
        _unique_name(data["name"], segment.id)
    for key in ("name", "description", "rules"):
        if key in data:
            setattr(segment, key, data[key])
    db.session.flush()
    return segment


def delete_segment(segment_id: uuid.UUID, principal: Principal) -> None:
    segment = get_segment(segment_id, principal)
    access.require(principal, "segments:write")
    db.session.delete(segment)
    db.session.flush()


def _condition(rule: dict[str, Any], params: dict[str, Any], index: int) -> str:
    field, op, value = rule["field"], rule["op"], rule.get("value")
    if field.startswith("attribute:"):
        params[f"attr{index}"] = field.split(":", 1)[1]
        column = (f"(SELECT a.value FROM dim_customer_attribute a WHERE a.customer_id = "
                  f"m.customer_id AND a.name = $attr{index})")
    elif field in MODEL_FIELDS:
        column = f"b.{field}"
    else:
        column = f"m.{field}"  # a key of FIELDS: never caller text
    if op in ("present", "absent"):
        return f"{column} {OPERATORS[op]}"
    if op == "in":
        params[f"v{index}"] = list(value)
        return f"list_contains($v{index}, {column})"
    params[f"v{index}"] = value
    return f"{column} {OPERATORS[op]} $v{index}"


def evaluate(rules: list[dict[str, Any]], as_of: dt.date | None = None) -> list[uuid.UUID]:
    """The ids of the customers meeting every rule, as of ``as_of`` (ordered by id)."""
    errors = _rule_errors(rules)
    if errors:
        raise ValidationError({"rules": errors})
    with warehouse.connect() as con:
        sql, params = _members_query(con, rules, as_of, "m.customer_id")
        return [row[0] for row in con.execute(sql, params).fetchall()]


def _members_query(con, rules: list[dict[str, Any]], as_of: dt.date | None, columns: str
                   ) -> tuple[str, dict[str, Any]]:
    """SQL selecting ``columns`` of the customers meeting every rule, ordered by id: the
    per-customer metrics ``m``, and, when a rule needs them, the BG/NBD scores ``b``."""
    params = metrics.parameters(as_of)
    conditions = [_condition(rule, params, i) for i, rule in enumerate(rules)]
    join = ""
    if any(rule["field"] in MODEL_FIELDS for rule in rules):
        join = (f"LEFT JOIN ({metrics.bgnbd_scores_sql(con, params['as_of'], params)}) b "
                "USING (customer_id)")
    sql = (f"SELECT {columns} FROM ({metrics.customer_metrics_sql()}) m {join} "
           f"WHERE {' AND '.join(conditions)} ORDER BY m.customer_id")
    return sql, params


def member_ids(segment_id: uuid.UUID, as_of: dt.date | None = None) -> list[uuid.UUID]:
    """The ids of a segment's members as last materialised (see ``membership``), or its
    rules evaluated as of a day — for system callers (a campaign's job) in the tenant."""
    from clientela.plugins.analytical import membership

    if as_of is None:
        return membership.member_ids(segment_id)
    segment = db.session.execute(
        db.select(AnalyticalSegment).where(AnalyticalSegment.id == segment_id)
    ).scalar_one_or_none()
    if segment is None:
        raise NotFound("segment not found")
    return evaluate(segment.rules, as_of)


def members(segment_id: uuid.UUID, principal: Principal, as_of: dt.date | None = None
            ) -> dict[str, Any]:
    """A segment's members: as last materialised (what a campaign sends to, with
    ``refreshed_at``), or evaluated from the rules as of a past or future day."""
    from clientela.plugins.analytical import membership

    segment = get_segment(segment_id, principal)
    if as_of is None:
        return membership.members(segment)
    ids = evaluate(segment.rules, as_of)
    return {"segment_id": segment.id, "name": segment.name, "as_of": as_of,
            "refreshed_at": None, "count": len(ids), "customer_ids": ids}


EXPORT_COLUMNS = ("customer_id", "display_name", "email", "external_id", "stage", "orders",
                  "revenue", "rfm_segment", "clv", "churn_risk")


def iter_members_csv(segment_id: uuid.UUID, principal: Principal,
                     as_of: dt.date | None = None, chunk_rows: int = 5000):
    """A segment's members as CSV text chunks (header first): ids, names, e-mails and their
    key figures — for a mailing tool outside the CRM. Without ``as_of``, the materialised
    membership with its figures as of the last refresh; with it, the rules evaluated as of
    that day. Needs ``customers:read`` on all records as well (the file holds personal
    data), as the core's customer export does."""
    import csv
    import io

    from clientela.core.errors import Forbidden
    from clientela.plugins.analytical import membership

    segment = get_segment(segment_id, principal)
    if principal.scope("customers:read") != "all":
        raise Forbidden("exporting a segment needs 'customers:read' on all records")
    errors = _rule_errors(segment.rules)
    if errors:
        raise ValidationError({"rules": errors})

    def chunks():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(EXPORT_COLUMNS)
        if as_of is None:
            membership.ensure_current(segment)
        with warehouse.connect() as con:
            if as_of is None:
                cursor = membership.csv_rows(con, segment)
            else:
                sql, params = _members_query(
                    con, segment.rules, as_of,
                    "m.customer_id, m.display_name, (SELECT c.email FROM dim_customer c WHERE "
                    "c.customer_id = m.customer_id) AS email, (SELECT c.external_id FROM "
                    "dim_customer c WHERE c.customer_id = m.customer_id) AS external_id, "
                    "m.stage, m.orders, m.revenue, m.rfm_segment, m.clv, m.churn_risk")
                cursor = con.execute(sql, params)
            while True:
                rows = cursor.fetchmany(chunk_rows)
                if not rows:
                    break
                writer.writerows(rows)
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        if buffer.getvalue():
            yield buffer.getvalue()

    return segment, chunks()
