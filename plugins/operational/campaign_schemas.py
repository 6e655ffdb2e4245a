"""marshmallow schemas of the campaigns API."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from clientela.plugins.operational.campaign_models import (
    AUDIENCES,
    CAMPAIGN_STATUSES,
    RECIPIENT_STATUSES,
    RESPONSE_KINDS,
)
from clientela.plugins.operational.schemas import Currency, Money, Stamped


class CampaignInput(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(validate=validate.Length(max=5000))
    channel = fields.String(validate=validate.Regexp(r"^[a-z][a-z0-9_]{0,39}$",
                                                     error="a channel key such as email"))
    purpose = fields.String(validate=validate.Length(min=1, max=40),
                            metadata={"description": "marketing (default; needs consent) or "
                                                     "service"})
    subject = fields.String(validate=validate.Length(max=500),
                            metadata={"description": "a template: {{ first_name }}, ..."})
    body = fields.String(validate=validate.Length(max=100_000),
                         metadata={"description": "the plain-text template"})
    html = fields.String(allow_none=True, validate=validate.Length(max=500_000),
                         metadata={"description": "the HTML template (autoescaped); opens "
                                                  "are tracked only with one"})
    audience = fields.String(validate=validate.OneOf(AUDIENCES))
    segment_id = fields.String(allow_none=True, validate=validate.Length(max=200))
    budget = Money(allow_none=True)
    cost = Money()
    currency = Currency()
    attributes = fields.Dict(keys=fields.String())


class CampaignUpdate(CampaignInput):
    """Every field optional (used with ``partial=True``)."""


class Campaign(CampaignInput, Stamped):
    status = fields.String(dump_only=True)
    send_at = fields.DateTime(dump_only=True, allow_none=True)
    started_at = fields.DateTime(dump_only=True, allow_none=True)
    finished_at = fields.DateTime(dump_only=True, allow_none=True)
    owner_id = fields.UUID(dump_only=True, allow_none=True)
    created_by = fields.UUID(dump_only=True, allow_none=True)


class CampaignQuery(Schema):
    q = fields.String(metadata={"description": "search names"})
    status = fields.String(validate=validate.OneOf(CAMPAIGN_STATUSES))
    channel = fields.String()
    sort = fields.String(metadata={"description": "e.g. `-send_at,name`"})


class Segment(Schema):
    id = fields.String()
    name = fields.String()
    size = fields.Integer(allow_none=True)
    source = fields.String()


class MembersInput(Schema):
    customer_ids = fields.List(fields.UUID(), required=True,
                               validate=validate.Length(min=1, max=10_000))


class MembersAdded(Schema):
    added = fields.Integer()
    already_members = fields.Integer()
    members = fields.Integer()


class CampaignMember(Schema):
    id = fields.UUID()
    display_name = fields.String()
    email = fields.String(allow_none=True)


class ScheduleInput(Schema):
    send_at = fields.AwareDateTime(required=True, default_timezone=None,
                                   metadata={"description": "with a time zone"})


class SendStarted(Schema):
    campaign = fields.Nested(Campaign)
    job_id = fields.UUID()


class RecipientQuery(Schema):
    status = fields.String(validate=validate.OneOf(RECIPIENT_STATUSES))


class Recipient(Schema):
    id = fields.UUID()
    customer_id = fields.UUID()
    status = fields.String()
    reason = fields.String(allow_none=True)
    error = fields.String(allow_none=True)
    attempts = fields.Integer()
    message_id = fields.String(allow_none=True)
    interaction_id = fields.UUID(allow_none=True)
    sent_at = fields.DateTime(allow_none=True)
    opens = fields.Integer()
    clicks = fields.Integer()
    delivered_at = fields.DateTime(allow_none=True)
    opened_at = fields.DateTime(allow_none=True)
    clicked_at = fields.DateTime(allow_none=True)
    replied_at = fields.DateTime(allow_none=True)
    converted_at = fields.DateTime(allow_none=True)
    unsubscribed_at = fields.DateTime(allow_none=True)


class ResponseInput(Schema):
    customer_id = fields.UUID(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(
        [k for k in RESPONSE_KINDS if k != "converted"]))
    detail = fields.String(validate=validate.Length(max=5000))
    occurred_at = fields.AwareDateTime(default_timezone=None)


class PreviewInput(Schema):
    customer_id = fields.UUID(required=True)


class Preview(Schema):
    subject = fields.String()
    body = fields.String()
    html = fields.String(allow_none=True)


class DealLinkInput(Schema):
    deal_id = fields.UUID(required=True)


class LinkedDeal(Schema):
    id = fields.UUID()
    title = fields.String()
    customer_id = fields.UUID(allow_none=True)
    status = fields.String()
    amount = Money()
    currency = fields.String()


class Rate(Schema):
    count = fields.Integer()
    rate = fields.Decimal(as_string=True, allow_none=True,
                          metadata={"description": "count ÷ reach, 4 decimals"})


class DealCounts(Schema):
    count = fields.Integer()
    open = fields.Integer()
    won = fields.Integer()
    lost = fields.Integer()


class Results(Schema):
    campaign_id = fields.UUID()
    status = fields.String()
    audience = fields.Integer(metadata={"description": "customers the send took in"})
    reach = fields.Integer(metadata={"description": "messages sent"})
    pending = fields.Integer()
    blocked = fields.Integer()
    failed = fields.Integer()
    unknown = fields.Integer()
    responses = fields.Dict(keys=fields.String(), values=fields.Nested(Rate))
    opens = fields.Integer()
    clicks = fields.Integer()
    deals = fields.Nested(DealCounts)
    converted_deals = fields.Integer(metadata={"description": "won deals of the campaign"})
    revenue = Money()
    revenue_other_currencies = fields.Dict(keys=fields.String(), values=fields.String())
    currency = fields.String()
    budget = Money(allow_none=True)
    cost = Money()
    roi = fields.Decimal(as_string=True, allow_none=True,
                         metadata={"description": "(revenue − cost) ÷ cost, 4 decimals"})
