"""The core's customer pages: list with search, the 360° page with its timeline."""

from __future__ import annotations

import math

import sqlalchemy as sa
from flask import render_template, request

from clientela.core import customers as service
from clientela.core.db import db
from clientela.core.models import Customer, Interaction
from clientela.core.web import bp, customer_panels, parse_id, principal, requires

PAGE_SIZE = 25


@bp.route("/customers")
@requires("customers:read")
def customers():
    q = (request.args.get("q") or "").strip()
    stage = request.args.get("stage") or None
    page = max(1, request.args.get("page", 1, type=int) or 1)
    stmt = service.customers_query(principal(), q=q or None, stage=stage)
    total = db.session.execute(sa.select(sa.func.count()).select_from(stmt.subquery())).scalar_one()
    rows = db.session.execute(
        stmt.order_by(Customer.display_name, Customer.id)
        .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).scalars().all()
    args = {key: value for key, value in (("q", q), ("stage", stage)) if value}
    template = ("web/customers_rows.html" if request.headers.get("HX-Request")
                else "web/customers.html")
    return render_template(template, customers=rows, total=total, page=page,
                           pages=max(1, math.ceil(total / PAGE_SIZE)), args=args, q=q,
                           stage=stage)


@bp.route("/customers/<customer_id>")
@requires("customers:read")
def customer(customer_id: str):
    who = principal()
    found = service.get_customer(parse_id(customer_id), who)
    timeline = []
    if who.can("interactions:read"):
        timeline = db.session.execute(
            service.interactions_query(who, customer_id=found.id)
            .order_by(Interaction.occurred_at.desc(), Interaction.id.desc()).limit(200)
        ).scalars().all()
    return render_template("web/customer.html", customer=found, timeline=timeline,
                           panels=customer_panels(found.id))
