"""marshmallow schemas of the operational plugin's API."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from clientela.plugins.operational.models import (
    FORECAST_CATEGORIES,
    LEAD_STATUSES,
    RULE_OPERATORS,
    STAGE_KINDS,
    TARGET_PERIODS,
)

MAX_AMOUNT = 10 ** 12


def _amount(value) -> None:
    # not validate.Range: apispec would render a Decimal bound as a string, which OpenAPI
    # refuses for ``maximum``
    if not value.is_finite() or not 0 <= value < MAX_AMOUNT:
        raise ValidationError(f"must be at least 0 and less than {MAX_AMOUNT}")


def Money(**kw) -> fields.Decimal:  # noqa: N802 - used like a field class
    return fields.Decimal(as_string=True, places=2, validate=_amount, **kw)


def Currency(**kw) -> fields.String:  # noqa: N802 - used like a field class
    return fields.String(validate=validate.Regexp(
        r"^[A-Za-z]{3}$", error="an ISO 4217 code such as EUR"), **kw)


class Stamped(Schema):
    id = fields.UUID(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


# --- leads -----------------------------------------------------------------------------


class LeadInput(Schema):
    first_name = fields.String(allow_none=True, validate=validate.Length(max=100))
    last_name = fields.String(allow_none=True, validate=validate.Length(max=100))
    company = fields.String(allow_none=True, validate=validate.Length(max=200))
    title = fields.String(allow_none=True, validate=validate.Length(max=100))
    email = fields.String(allow_none=True, validate=validate.Length(max=320))
    phone = fields.String(allow_none=True, validate=validate.Length(max=40),
                          metadata={"description": "stored in E.164"})
    country = fields.String(allow_none=True, validate=validate.Length(equal=2))
    message = fields.String(validate=validate.Length(max=5000))
    status = fields.String(validate=validate.OneOf(LEAD_STATUSES))
    source = fields.String(validate=validate.Length(min=1, max=50))
    owner_id = fields.UUID(allow_none=True)
    attributes = fields.Dict(keys=fields.String())


class LeadUpdate(LeadInput):
    """Every field optional (used with ``partial=True``)."""


class Lead(LeadInput, Stamped):
    score = fields.Integer(dump_only=True)
    web_form_id = fields.UUID(dump_only=True, allow_none=True)
    customer_id = fields.UUID(dump_only=True, allow_none=True)
    deal_id = fields.UUID(dump_only=True, allow_none=True)
    converted_at = fields.DateTime(dump_only=True, allow_none=True)
    created_by = fields.UUID(dump_only=True, allow_none=True)


class LeadQuery(Schema):
    q = fields.String(metadata={"description": "search names, company, e-mail and phone"})
    status = fields.String(validate=validate.OneOf(LEAD_STATUSES))
    source = fields.String()
    owner_id = fields.UUID()
    web_form_id = fields.UUID()
    customer_id = fields.UUID()
    min_score = fields.Integer()
    sort = fields.String(metadata={"description": "e.g. `-score,created_at`"})


class DealInput(Schema):
    title = fields.String(validate=validate.Length(min=1, max=300))
    pipeline_id = fields.UUID(metadata={"description": "default: the default pipeline"})
    stage_id = fields.UUID(metadata={"description": "default: the pipeline's first open stage"})
    customer_id = fields.UUID(allow_none=True)
    owner_id = fields.UUID(allow_none=True)
    amount = Money(metadata={"description": "the total of the lines when there are lines"})
    currency = Currency()
    expected_close_date = fields.Date(allow_none=True)
    forecast_category = fields.String(validate=validate.OneOf(FORECAST_CATEGORIES))
    close_reason = fields.String(allow_none=True, validate=validate.Length(max=500))
    items = fields.List(fields.Nested(lambda: DealItemInput()))
    attributes = fields.Dict(keys=fields.String())


class ConvertInput(Schema):
    customer_id = fields.UUID(metadata={"description": "attach to this customer instead of "
                                                      "matching by e-mail or phone"})
    deal = fields.Nested(DealInput, metadata={"description": "also open a deal"})


class ConvertResult(Schema):
    lead = fields.Nested(Lead)
    customer_id = fields.UUID()
    customer_created = fields.Boolean()
    matched_by = fields.String(allow_none=True, metadata={
        "description": "email, phone or customer_id when an existing customer was used"})
    deal = fields.Nested(lambda: Deal(), allow_none=True)


class ScoringRuleInput(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    field = fields.String(required=True, metadata={
        "description": "a lead field (source, status, email, company, country, ...) or "
                       "`attributes.<name>`"}, validate=validate.Length(min=1, max=40))
    operator = fields.String(load_default="equals", validate=validate.OneOf(RULE_OPERATORS))
    value = fields.String(load_default="", validate=validate.Length(max=200))
    points = fields.Integer(required=True, validate=validate.Range(min=-1000, max=1000))
    active = fields.Boolean(load_default=True)


class ScoringRuleUpdate(ScoringRuleInput):
    """Every field optional (used with ``partial=True``)."""


class ScoringRule(ScoringRuleInput, Stamped):
    pass


# --- web forms ---------------------------------------------------------------------------


class WebFormInput(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    # ``fields`` is taken on a Schema: the attribute has another name
    form_fields = fields.List(fields.String(), data_key="fields", attribute="fields",
                              metadata={"description": "lead fields the form asks"})
    required = fields.List(fields.String())
    source = fields.String(load_default="web_form", validate=validate.Length(min=1, max=50))
    owner_id = fields.UUID(allow_none=True, metadata={"description": "who gets its leads"})
    honeypot = fields.String(load_default="nickname", validate=validate.Regexp(
        r"^[a-z_][a-z0-9_]{0,49}$"))
    redirect_url = fields.Url(allow_none=True, validate=validate.Length(max=500))
    active = fields.Boolean(load_default=True)


class WebFormUpdate(WebFormInput):
    rotate_key = fields.Boolean(load_only=True, metadata={
        "description": "give the form a new key (the old snippet stops working)"})


class WebForm(WebFormInput, Stamped):
    key = fields.String(dump_only=True)
    url = fields.String(dump_only=True, metadata={"description": "where the form posts"})


class Snippet(Schema):
    url = fields.String()
    html = fields.String()


# --- pipelines ---------------------------------------------------------------------------


class StageInput(Schema):
    id = fields.UUID(metadata={"description": "an existing stage (when changing a pipeline)"})
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    probability = fields.Integer(validate=validate.Range(min=0, max=100),
                                 metadata={"description": "per cent; default 0"})
    kind = fields.String(validate=validate.OneOf(STAGE_KINDS),
                         metadata={"description": "default open"})


class Stage(Schema):
    id = fields.UUID()
    name = fields.String()
    position = fields.Integer()
    probability = fields.Integer()
    kind = fields.String()


class PipelineInput(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    is_default = fields.Boolean()
    position = fields.Integer(validate=validate.Range(min=0, max=10000))
    stages = fields.List(fields.Nested(StageInput), validate=validate.Length(min=1, max=50),
                         metadata={"description": "in order; default: a standard sales process"})


class PipelineUpdate(PipelineInput):
    """Every field optional (used with ``partial=True``)."""


class PipelineSummary(Stamped):
    name = fields.String()
    is_default = fields.Boolean()
    position = fields.Integer()


class Pipeline(PipelineSummary):
    stages = fields.List(fields.Nested(Stage))


class BoardQuery(Schema):
    owner_id = fields.UUID()
    limit = fields.Integer(load_default=50, validate=validate.Range(min=0, max=500),
                           metadata={"description": "deals listed per stage"})


class BoardColumn(Schema):
    stage = fields.Nested(Stage)
    count = fields.Integer()
    totals = fields.Dict(keys=fields.String(), values=fields.String(),
                         metadata={"description": "amount per currency"})
    weighted_totals = fields.Dict(keys=fields.String(), values=fields.String())
    deals = fields.List(fields.Nested(lambda: Deal()))


class Board(Schema):
    pipeline = fields.Nested(PipelineSummary)
    stages = fields.List(fields.Nested(BoardColumn))


# --- deals ---------------------------------------------------------------------------------


class DealItemInput(Schema):
    product = fields.String(required=True, validate=validate.Length(min=1, max=200))
    quantity = fields.Decimal(required=True, as_string=True, places=3, validate=_amount)
    unit_price = Money(required=True)


class DealItem(DealItemInput):
    id = fields.UUID()


class DealCreate(DealInput):
    title = fields.String(required=True, validate=validate.Length(min=1, max=300))


class Deal(DealCreate, Stamped):
    status = fields.String(dump_only=True)
    closed_at = fields.DateTime(dump_only=True, allow_none=True)
    probability = fields.Integer(dump_only=True)
    items = fields.List(fields.Nested(DealItem), dump_only=True)
    created_by = fields.UUID(dump_only=True, allow_none=True)


class DealQuery(Schema):
    q = fields.String(metadata={"description": "search titles"})
    pipeline_id = fields.UUID()
    stage_id = fields.UUID()
    status = fields.String(validate=validate.OneOf(("open", "won", "lost")))
    owner_id = fields.UUID()
    customer_id = fields.UUID()
    forecast_category = fields.String(validate=validate.OneOf(FORECAST_CATEGORIES))
    close_from = fields.Date()
    close_to = fields.Date()
    sort = fields.String(metadata={"description": "e.g. `expected_close_date,-amount`"})


class CloseInput(Schema):
    outcome = fields.String(required=True, validate=validate.OneOf(("won", "lost")))
    reason = fields.String(allow_none=True, validate=validate.Length(max=500),
                           metadata={"description": "required when lost"})


class StageChange(Schema):
    id = fields.UUID()
    from_stage_id = fields.UUID(allow_none=True)
    to_stage_id = fields.UUID()
    changed_at = fields.DateTime()
    user_id = fields.UUID(allow_none=True)


# --- targets and forecast --------------------------------------------------------------------


class TargetInput(Schema):
    owner_id = fields.UUID(required=True)
    period = fields.String(required=True, validate=validate.OneOf(TARGET_PERIODS))
    period_start = fields.Date(required=True, metadata={"description": "the first day"})
    amount = Money(required=True)
    currency = Currency()


class TargetUpdate(TargetInput):
    """Every field optional (used with ``partial=True``)."""


class Target(TargetInput, Stamped):
    pass


class TargetQuery(Schema):
    owner_id = fields.UUID()
    period = fields.String(validate=validate.OneOf(TARGET_PERIODS))
    year = fields.Integer(validate=validate.Range(min=1900, max=9999))


class ForecastQuery(Schema):
    period = fields.String(load_default="quarter", validate=validate.OneOf(TARGET_PERIODS))
    year = fields.Integer(validate=validate.Range(min=1900, max=9999))
    owner_id = fields.UUID()
    pipeline_id = fields.UUID()
    currency = Currency()


class ForecastFigures(Schema):
    open = Money()
    weighted = Money()
    commit = Money()
    best_case = Money()
    won = Money()
    target = Money()
    attainment = fields.Decimal(as_string=True, allow_none=True,
                                metadata={"description": "won ÷ target"})


class ForecastRow(ForecastFigures):
    period = fields.String()
    start = fields.Date()
    end = fields.Date()
    owner_id = fields.UUID(allow_none=True)


class Forecast(Schema):
    period = fields.String()
    year = fields.Integer()
    currency = fields.String()
    rows = fields.List(fields.Nested(ForecastRow))
    totals = fields.Nested(ForecastFigures)
