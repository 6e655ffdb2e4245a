"""``/api/v1/loyalty/customers/{customer_id}``: balance, ledger, purchases, redemptions."""

import uuid

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from clientela.core import access, customers
from clientela.core.api.auth import current_principal
from clientela.core.db import db
from clientela_loyalty import services

blp = Blueprint("loyalty", __name__, url_prefix="/loyalty",
                description="Loyalty programme: points, tiers, redemptions")


class Entry(Schema):
    id = fields.UUID()
    kind = fields.String()
    points = fields.Integer()
    amount = fields.Decimal(as_string=True, allow_none=True)
    currency = fields.String(allow_none=True)
    description = fields.String()
    occurred_at = fields.DateTime()
    expires_at = fields.DateTime(allow_none=True)


class Account(Schema):
    customer_id = fields.UUID()
    balance = fields.Integer()
    lifetime_points = fields.Integer()
    tier = fields.String()
    entries = fields.List(fields.Nested(Entry))


class Purchase(Schema):
    amount = fields.Decimal(required=True, places=2, validate=validate.Range(min=0, min_inclusive=False))
    currency = fields.String(required=True, validate=validate.Length(equal=3))
    description = fields.String(load_default="", validate=validate.Length(max=300))
    occurred_at = fields.AwareDateTime()


class Redemption(Schema):
    points = fields.Integer(required=True, validate=validate.Range(min=1))
    description = fields.String(load_default="", validate=validate.Length(max=300))


def _account(customer_id: uuid.UUID) -> dict:
    principal = current_principal()
    access.require(principal, "loyalty:read")
    customers.get_customer(customer_id, principal)
    rows = services.entries(customer_id)
    return {"customer_id": customer_id, **services.summary(customer_id), "entries": rows}


@blp.route("/customers/<uuid:customer_id>")
class LoyaltyAccount(MethodView):
    @blp.response(200, Account)
    def get(self, customer_id: uuid.UUID):
        """A customer's balance, tier and ledger."""
        return _account(customer_id)


@blp.route("/customers/<uuid:customer_id>/purchases")
class Purchases(MethodView):
    @blp.arguments(Purchase)
    @blp.response(201, Entry)
    def post(self, data, customer_id: uuid.UUID):
        """Record a purchase; it earns points."""
        entry = services.record_purchase(current_principal(), customer_id, data["amount"],
                                         data["currency"], data["description"],
                                         data.get("occurred_at"))
        db.session.commit()
        return entry


@blp.route("/customers/<uuid:customer_id>/redemptions")
class Redemptions(MethodView):
    @blp.arguments(Redemption)
    @blp.response(201, Entry)
    def post(self, data, customer_id: uuid.UUID):
        """Redeem points (409 when the balance is short)."""
        entry = services.redeem(current_principal(), customer_id, data["points"],
                                data["description"])
        db.session.commit()
        return entry
