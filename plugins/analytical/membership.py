"""Materialised segment membership: each saved segment's members, stored in the tenant's
warehouse with the time they were computed, refreshed by a job, a command or on request.

Campaigns (``clientela_segment_members``) and the CSV export read these rows rather than
evaluating the rules on every call, so a campaign sends to the list a marketer saw, and a
large segment costs one query per refresh instead of one per reader. The rows live in the
warehouse (``segment_member``, ``segment_refresh``), beside the figures they are computed
from: a refresh is one ``INSERT … SELECT`` inside DuckDB, with no row crossing databases,
and the per-tenant file keeps one tenant's lists away from another's.

A segment whose rules changed since its last refresh (or that was never refreshed) is
refreshed the first time its members are read.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from typing import Any

from clientela.core import access
from clientela.core.access import Principal
from clientela.core.db import db, utcnow
from clientela.core.errors import NotFound, ValidationError
from clientela.plugins.analytical import segments, warehouse
from clientela.plugins.analytical.models import AnalyticalSegment

log = logging.getLogger(__name__)

#: the figures kept with each member (as of the refresh): what the CSV export shows
FIGURES = ("stage", "orders", "revenue", "rfm_segment", "clv", "churn_risk")


def _rules_key(rules: list[dict[str, Any]]) -> str:
    return json.dumps(rules, sort_keys=True, separators=(",", ":"))


def _segment(segment_id: uuid.UUID) -> AnalyticalSegment:
    segment = db.session.execute(
        db.select(AnalyticalSegment).where(AnalyticalSegment.id == segment_id)
    ).scalar_one_or_none()
    if segment is None:
        raise NotFound("segment not found")
    return segment


def _materialise(con, segment: AnalyticalSegment) -> dict[str, Any]:
    """Replace one segment's member rows by those meeting its rules now (in ``con``'s
    open transaction)."""
    started = time.perf_counter()
    errors = segments._rule_errors(segment.rules)
    if errors:
        raise ValidationError({"rules": errors})
    refreshed_at = utcnow().replace(tzinfo=None)
    sid = str(segment.id)
    sql, params = segments._members_query(
        con, segment.rules, None,
        "CAST($segment_id AS UUID), m.customer_id, CAST($refreshed_at AS TIMESTAMP), "
        + ", ".join(f"m.{name}" for name in FIGURES))
    params.update(segment_id=sid, refreshed_at=refreshed_at)
    con.execute("DELETE FROM segment_member WHERE segment_id = ?", [sid])
    con.execute(f"INSERT INTO segment_member (segment_id, customer_id, refreshed_at, "
                f"{', '.join(FIGURES)}) {sql}", params)
    count = con.execute("SELECT count(*) FROM segment_member WHERE segment_id = ?",
                        [sid]).fetchall()[0][0]
    con.execute("DELETE FROM segment_refresh WHERE segment_id = ?", [sid])
    con.execute("INSERT INTO segment_refresh VALUES (?, ?, ?, ?, ?)",
                [sid, refreshed_at, params["as_of"], count, _rules_key(segment.rules)])
    return {"segment_id": segment.id, "name": segment.name,
            "refreshed_at": refreshed_at.replace(tzinfo=dt.timezone.utc), "count": count,
            "seconds": round(time.perf_counter() - started, 3)}


def refresh(segment_ids: list[uuid.UUID] | None = None) -> list[dict[str, Any]]:
    """Recompute the membership of the current tenant's segments (all, or ``segment_ids``).

    Refreshing all of them also drops the rows of segments deleted since. Each segment is
    replaced in a transaction of its own: a reader sees the old list or the new one.
    """
    query = db.select(AnalyticalSegment).order_by(AnalyticalSegment.name)
    if segment_ids is not None:
        query = query.where(AnalyticalSegment.id.in_(list(segment_ids)))
    saved = list(db.session.execute(query).scalars())
    reports = []
    with warehouse.connect(write=True) as con:
        for segment in saved:
            con.execute("BEGIN TRANSACTION")
            try:
                reports.append(_materialise(con, segment))
                con.execute("COMMIT")
            except ValidationError as exc:
                con.execute("ROLLBACK")
                if segment_ids is not None:
                    raise
                # one segment that cannot be evaluated now (a BG/NBD rule with too few
                # repeat buyers) keeps its previous list and does not stop the others
                log.warning("segment %s (%s) not refreshed: %s", segment.id, segment.name,
                            exc)
            except BaseException:
                con.execute("ROLLBACK")
                raise
        if segment_ids is None:
            keep = [str(s.id) for s in saved]
            for table in ("segment_member", "segment_refresh"):
                con.execute(f"DELETE FROM {table} WHERE NOT list_contains("
                            "CAST(? AS UUID[]), segment_id)", [keep])
    return reports


def refresh_segments(segment_id: str | None = None) -> list[dict[str, Any]]:
    """The job: refresh every segment of the tenant, or the one named (run per tenant)."""
    ids = None if segment_id is None else [uuid.UUID(str(segment_id))]
    return refresh(ids)


def refresh_one(segment_id: uuid.UUID, principal: Principal) -> dict[str, Any]:
    """Refresh one segment's membership now, for a caller allowed to change segments."""
    segments.get_segment(segment_id, principal)
    access.require(principal, "segments:write")
    return refresh([segment_id])[0]


def _state(con, segment: AnalyticalSegment) -> tuple[dt.datetime, int] | None:
    """``(refreshed_at, count)`` of the segment's stored membership, ``None`` if there is
    none for its current rules."""
    rows = con.execute("SELECT refreshed_at, members, rules FROM segment_refresh "
                       "WHERE segment_id = ?", [str(segment.id)]).fetchall()
    if not rows or rows[0][2] != _rules_key(segment.rules):
        return None
    return rows[0][0].replace(tzinfo=dt.timezone.utc), rows[0][1]


def ensure_current(segment: AnalyticalSegment) -> tuple[dt.datetime, int]:
    """The segment's stored membership, materialised first if its rules have none."""
    with warehouse.connect() as con:
        state = _state(con, segment)
    if state is None:
        report = refresh([segment.id])[0]
        state = report["refreshed_at"], report["count"]
    return state


def stored_ids(segment: AnalyticalSegment) -> tuple[dt.datetime, list[uuid.UUID]]:
    refreshed_at, _ = ensure_current(segment)
    with warehouse.connect() as con:
        ids = [row[0] for row in con.execute(
            "SELECT customer_id FROM segment_member WHERE segment_id = ? ORDER BY customer_id",
            [str(segment.id)]).fetchall()]
    return refreshed_at, ids


def member_ids(segment_id: uuid.UUID) -> list[uuid.UUID]:
    """The stored members of a segment of the current tenant (for campaigns' jobs)."""
    return stored_ids(_segment(segment_id))[1]


def members(segment: AnalyticalSegment) -> dict[str, Any]:
    refreshed_at, ids = stored_ids(segment)
    return {"segment_id": segment.id, "name": segment.name, "as_of": refreshed_at.date(),
            "refreshed_at": refreshed_at, "count": len(ids), "customer_ids": ids}


def sizes(wait: float = 2) -> dict[uuid.UUID, int]:
    """Segment id -> stored member count, for segments whose membership matches their rules;
    empty when the warehouse does not exist or is busy (listing must not wait long)."""
    if not warehouse.exists():
        return {}
    saved = list(db.session.execute(db.select(AnalyticalSegment)).scalars())
    try:
        with warehouse.connect(wait=wait) as con:
            return {segment.id: state[1] for segment in saved
                    if (state := _state(con, segment)) is not None}
    except warehouse.WarehouseBusy:
        return {}


def csv_rows(con, segment: AnalyticalSegment):
    """A cursor over the stored members with their contact details and figures."""
    return con.execute(
        "SELECT s.customer_id, c.display_name, c.email, c.external_id, "
        + ", ".join(f"s.{name}" for name in FIGURES)
        + " FROM segment_member s LEFT JOIN dim_customer c USING (customer_id) "
          "WHERE s.segment_id = ? ORDER BY s.customer_id", [str(segment.id)])
