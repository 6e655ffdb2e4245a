"""The analytical plugin's staff pages (``/app/analytics``): saved segments with their sizes
and members (CSV export), and the RFM summary.

The views call the same functions as ``/api/v1/segments`` and ``/api/v1/analytics/rfm/
segments`` (``segments.list_segments``, ``members``, ``iter_members_csv``,
``services.rfm_summary``) with the logged-in user's principal; a segment's member list shows
only the customers the user may read.
"""

from __future__ import annotations

import math
from typing import Any

import sqlalchemy as sa
from flask import Response, render_template, request, stream_with_context

from clientela.core import customers as customer_service
from clientela.core import tenancy
from clientela.core.db import db
from clientela.core.errors import ClientelaError
from clientela.core.models import Customer
from clientela.core.web import charts, parse_id, principal, requires, staff_blueprint
from clientela.core.web.i18n import _, _l
from clientela.plugins.analytical import metrics, segments, services, warehouse

bp = staff_blueprint("analytical_web", __name__, "/analytics")

PAGE_SIZE = 25

#: the RFM segment names (metrics.RFM_SEGMENTS, in English): translated at display
SEGMENT_LABELS = {
    "Champions": _l("Champions"), "Loyal": _l("Loyal"),
    "Potential loyalist": _l("Potential loyalist"), "New": _l("New"),
    "Promising": _l("Promising"), "Need attention": _l("Need attention"),
    "About to sleep": _l("About to sleep"), "Can't lose them": _l("Can't lose them"),
    "At risk": _l("At risk"), "Hibernating": _l("Hibernating"),
}
CHURN_LABELS = {"low": _l("Low risk"), "medium": _l("Medium risk"), "high": _l("High risk")}


def segment_label(name: str | None) -> str:
    return str(SEGMENT_LABELS.get(name or "", name or "—"))


def churn_label(risk: str | None) -> str:
    return str(CHURN_LABELS.get(risk or "", risk or "—"))


def _size(segment) -> int | None:
    """How many customers the segment holds now (``None`` when it cannot be evaluated)."""
    try:
        return len(segments.evaluate(segment.rules))
    except (ClientelaError, warehouse.WarehouseBusy):
        return None


@bp.route("/segments")
@requires("analytics:read")
def segment_list():
    who = principal()
    found = segments.list_segments(who)
    rows = [{"segment": s, "size": _size(s)} for s in found]
    return render_template("analytical/segments.html", rows=rows,
                           may_export=who.scope("customers:read") == "all")


@bp.route("/segments/<segment_id>")
@requires("analytics:read")
def segment(segment_id: str):
    who = principal()
    key = parse_id(segment_id)
    found = segments.members(key, who)
    page = max(1, request.args.get("page", 1, type=int) or 1)
    ids = found["customer_ids"]
    customers: list[Customer] = []
    visible = 0
    if ids and who.can("customers:read"):
        stmt = customer_service.customers_query(who).where(Customer.id.in_(ids))
        visible = db.session.execute(
            sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery())).scalar_one()
        customers = db.session.execute(
            stmt.order_by(Customer.display_name, Customer.id).limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)).scalars().all()
    return render_template("analytical/segment.html", segment=segments.get_segment(key, who),
                           count=found["count"], as_of=found["as_of"], customers=customers,
                           visible=visible, page=page,
                           pages=max(1, math.ceil(visible / PAGE_SIZE)), args={},
                           may_export=who.scope("customers:read") == "all")


@bp.route("/segments/<segment_id>/members.csv")
@requires("analytics:read")
def segment_csv(segment_id: str):
    found, chunks = segments.iter_members_csv(parse_id(segment_id), principal())
    name = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in found.name)
    tenant_id = tenancy.current_tenant_id()

    def rows():
        # the body is streamed after the view returns: keep the tenant for the warehouse
        with tenancy.tenant_context(tenant_id):
            yield from chunks

    return Response(stream_with_context(rows()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="segment-{name}.csv"'})


def rfm_rows(who) -> tuple[list[dict[str, Any]], Any]:
    summary = services.rfm_summary(who)
    return summary["segments"], summary["as_of"]


@bp.route("/rfm")
@requires("analytics:read")
def rfm():
    rows, as_of = rfm_rows(principal())
    currency = metrics.setting("ANALYTICAL_CURRENCY")
    chart = charts.bar_chart([(segment_label(r["segment"]), r["customers"]) for r in rows],
                             label=_("Customers per RFM segment"))
    revenue = charts.bar_chart([(segment_label(r["segment"]), r["revenue"] or 0) for r in rows],
                               label=_("Revenue per RFM segment"), money=currency)
    return render_template("analytical/rfm.html", rows=rows, as_of=as_of, chart=chart,
                           revenue_chart=revenue, currency=currency,
                           segment_label=segment_label)


__all__ = ["bp", "segment_label", "churn_label", "rfm_rows"]
