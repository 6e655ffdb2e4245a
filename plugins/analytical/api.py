"""``/api/v1/analytics/...`` (warehouse, profiles, RFM, CLV, churn, cohorts, associations)
and ``/api/v1/segments`` (saved segments and their members)."""

from __future__ import annotations

import uuid

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from clientela.core import access
from clientela.core.api.auth import current_principal
from clientela.core.db import db
from clientela.core.errors import ValidationError
from clientela.plugins.analytical import (
    imports,
    membership,
    metrics,
    segments,
    services,
    warehouse,
)

analytics = Blueprint("analytics", __name__, url_prefix="/analytics",
                      description="Customer analytics from the tenant's data warehouse")
segments_blp = Blueprint("segments", __name__, url_prefix="/segments",
                         description="Saved rule-based customer segments")


# --- schemas ---------------------------------------------------------------------------


class AsOfQuery(Schema):
    as_of = fields.Date(metadata={"description": "count purchases up to this day (default today)"})


class CustomerTableQuery(AsOfQuery):
    factor = fields.Float(validate=validate.Range(min=1),
                          metadata={"description": "churn: N x the usual interval"})
    method = fields.String(load_default="rule", validate=validate.OneOf(metrics.CHURN_METHODS),
                           metadata={"description": "rule (recency / usual interval) or "
                                                    "bgnbd (1 - P(alive))"})


class ClvQuery(AsOfQuery):
    method = fields.String(load_default="historical",
                           validate=validate.OneOf(metrics.CLV_METHODS),
                           metadata={"description": "historical (AOV x frequency x lifespan) "
                                                    "or bgnbd (BG/NBD + Gamma-Gamma)"})
    horizon_months = fields.Integer(validate=validate.Range(min=1, max=240),
                                    metadata={"description": "bgnbd: months ahead (default "
                                                             "the lifespan setting)"})
    discount_rate = fields.Float(validate=validate.Range(min=0, max=1),
                                 metadata={"description": "bgnbd: annual discount rate"})


class ChurnValidationQuery(AsOfQuery):
    holdout_weeks = fields.Integer(load_default=26, validate=validate.Range(min=1, max=260))


class RfmQuery(AsOfQuery):
    segment = fields.String(validate=validate.OneOf(metrics.SEGMENT_NAMES))


class AssociationQuery(AsOfQuery):
    basket = fields.String(load_default="customer", validate=validate.OneOf(metrics.BASKETS))
    min_support = fields.Float(load_default=0.0, validate=validate.Range(min=0, max=1))
    min_confidence = fields.Float(load_default=0.0, validate=validate.Range(min=0, max=1))
    product_id = fields.String(validate=validate.Length(max=200))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class PurchaseProfile(Schema):
    customer_id = fields.UUID()
    display_name = fields.String(allow_none=True)
    first_purchase = fields.Date(allow_none=True)
    last_purchase = fields.Date(allow_none=True)
    orders = fields.Integer(allow_none=True)
    units = fields.Float(allow_none=True)
    revenue = fields.Float(allow_none=True)
    average_order_value = fields.Float(allow_none=True)
    tenure_days = fields.Integer(allow_none=True)
    interactions = fields.Integer()
    last_interaction = fields.DateTime(allow_none=True)


class RfmScore(Schema):
    customer_id = fields.UUID()
    recency_days = fields.Integer()
    orders = fields.Integer()
    revenue = fields.Float()
    r_score = fields.Integer()
    f_score = fields.Integer()
    m_score = fields.Integer()
    rfm_score = fields.String()
    rfm_segment = fields.String()


class RfmSegment(Schema):
    segment = fields.String()
    customers = fields.Integer()
    revenue = fields.Float(allow_none=True)
    average_recency_days = fields.Float(allow_none=True)
    average_orders = fields.Float(allow_none=True)


class RfmSummary(Schema):
    as_of = fields.Date()
    segments = fields.List(fields.Nested(RfmSegment))


class Probabilistic(Schema):
    """The fields of ``method=bgnbd`` (absent from the historical and rule methods)."""

    method = fields.String()
    repeat_purchases = fields.Integer(metadata={"description": "x: purchase days after the "
                                                               "first"})
    recency_weeks = fields.Float(metadata={"description": "t_x: first to last purchase day"})
    age_weeks = fields.Float(metadata={"description": "T: first purchase day to as_of"})
    average_repeat_value = fields.Float()
    p_alive = fields.Float()
    expected_purchases = fields.Float(metadata={"description": "over the horizon"})
    expected_spend = fields.Float(allow_none=True, metadata={"description": "per purchase"})
    horizon_months = fields.Integer()
    churn_probability = fields.Float(metadata={"description": "P(no purchase in the next "
                                                              "churn_horizon_weeks)"})
    churn_horizon_weeks = fields.Float()


class LifetimeValue(Probabilistic):
    customer_id = fields.UUID()
    orders = fields.Integer()
    revenue = fields.Float()
    average_order_value = fields.Float()
    observed_years = fields.Float()
    orders_per_year = fields.Float()
    clv = fields.Float(allow_none=True)


class ChurnRisk(Probabilistic):
    customer_id = fields.UUID()
    last_purchase = fields.Date()
    orders = fields.Integer()
    recency_days = fields.Integer()
    usual_interval_days = fields.Float()
    churn_ratio = fields.Float()
    churn_risk = fields.String()
    churned = fields.Boolean()


class BgnbdParameters(Schema):
    r = fields.Float()
    alpha = fields.Float()
    a = fields.Float()
    b = fields.Float()
    log_likelihood = fields.Float()
    customers = fields.Integer()
    converged = fields.Boolean()


class GammaGammaParameters(Schema):
    p = fields.Float()
    q = fields.Float()
    gamma = fields.Float()
    log_likelihood = fields.Float()
    customers = fields.Integer()
    converged = fields.Boolean()


class ClvModel(Schema):
    as_of = fields.Date()
    bgnbd = fields.Nested(BgnbdParameters)
    gamma_gamma = fields.Nested(GammaGammaParameters, allow_none=True)
    horizon_months = fields.Integer()
    annual_discount_rate = fields.Float()
    margin = fields.Float()


class ChurnAuc(Schema):
    bgnbd = fields.Float(allow_none=True,
                         metadata={"description": "P(no purchase in the holdout)"})
    p_alive = fields.Float(allow_none=True, metadata={"description": "1 - P(alive)"})
    rule = fields.Float(allow_none=True, metadata={"description": "recency / usual interval"})


class ChurnValidation(Schema):
    as_of = fields.Date()
    calibration_end = fields.Date()
    holdout_weeks = fields.Integer()
    customers = fields.Integer()
    churned = fields.Integer()
    churn_rate = fields.Float(allow_none=True)
    predicted_churn_rate = fields.Float(allow_none=True)
    auc = fields.Nested(ChurnAuc)


class RetentionCohort(Schema):
    cohort = fields.String(metadata={"description": "month of first purchase, YYYY-MM"})
    size = fields.Integer()
    active = fields.List(fields.Integer())
    retention = fields.List(fields.Float())


class RetentionMatrix(Schema):
    as_of = fields.Date()
    cohorts = fields.List(fields.Nested(RetentionCohort))


class TrendQuery(AsOfQuery):
    months = fields.Integer(load_default=12, validate=validate.Range(min=1, max=120))


class MonthTrend(Schema):
    month = fields.String(metadata={"description": "YYYY-MM"})
    orders = fields.Integer()
    revenue = fields.Float()
    customers = fields.Integer()
    interactions = fields.Dict(keys=fields.String(), values=fields.Integer())


class Trends(Schema):
    as_of = fields.Date()
    months = fields.List(fields.Nested(MonthTrend))


class AssociationRule(Schema):
    antecedent = fields.String()
    consequent = fields.String()
    baskets = fields.Integer()
    support = fields.Float()
    confidence = fields.Float()
    lift = fields.Float()


class AssociationRules(Schema):
    as_of = fields.Date()
    basket = fields.String()
    baskets = fields.Integer()
    rules = fields.List(fields.Nested(AssociationRule))


class NextBestOffer(Schema):
    product_id = fields.String()
    because_of = fields.String()
    lift = fields.Float()
    confidence = fields.Float()


class CustomerBgnbd(Schema):
    p_alive = fields.Float()
    expected_purchases = fields.Float()
    expected_spend = fields.Float(allow_none=True)
    clv = fields.Float(allow_none=True)
    horizon_months = fields.Integer()
    churn_probability = fields.Float()
    churn_horizon_weeks = fields.Float()
    churn_risk = fields.String()


class CustomerAnalytics(PurchaseProfile, RfmScore, LifetimeValue, ChurnRisk):
    as_of = fields.Date()
    bgnbd = fields.Nested(CustomerBgnbd, allow_none=True,
                          metadata={"description": "the probabilistic model's figures"})
    in_warehouse = fields.Boolean()
    channels = fields.Dict(keys=fields.String(), values=fields.Integer())
    attributes = fields.Dict(keys=fields.String(), values=fields.String())
    next_best_offers = fields.List(fields.Nested(NextBestOffer))


class WarehouseStatus(Schema):
    refreshed_at = fields.String(allow_none=True)
    watermarks = fields.Dict(keys=fields.String(), values=fields.String())
    tables = fields.Dict(keys=fields.String(), values=fields.Integer())


class RefreshInput(Schema):
    full = fields.Boolean(load_default=False)


class RefreshResult(Schema):
    full = fields.Boolean()
    loaded = fields.Dict(keys=fields.String(), values=fields.Integer())
    deleted_customers = fields.Integer()
    merged_customers = fields.Integer()
    seconds = fields.Float()


class SegmentCondition(Schema):
    field = fields.String(required=True)
    op = fields.String(required=True, validate=validate.OneOf(segments.OPERATORS))
    value = fields.Raw(allow_none=True)


class SegmentInput(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    description = fields.String(load_default="", validate=validate.Length(max=500))
    rules = fields.List(fields.Nested(SegmentCondition), required=True,
                        validate=validate.Length(min=1, max=50))


class SegmentUpdate(Schema):
    name = fields.String(validate=validate.Length(min=1, max=100))
    description = fields.String(validate=validate.Length(max=500))
    rules = fields.List(fields.Nested(SegmentCondition), validate=validate.Length(min=1, max=50))


class SavedSegment(Schema):
    id = fields.UUID()
    name = fields.String()
    description = fields.String()
    rules = fields.List(fields.Nested(SegmentCondition))
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class SegmentMembership(Schema):
    segment_id = fields.UUID()
    name = fields.String()
    as_of = fields.Date()
    refreshed_at = fields.DateTime(allow_none=True, metadata={
        "description": "when the stored membership was computed; null for an as_of query, "
                       "which evaluates the rules"})
    count = fields.Integer()
    customer_ids = fields.List(fields.UUID())


class SegmentRefreshResult(Schema):
    segment_id = fields.UUID()
    name = fields.String()
    refreshed_at = fields.DateTime()
    count = fields.Integer()
    seconds = fields.Float()


class ImportForm(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(("transactions", "attributes")))
    mapping = fields.String(validate=validate.Length(min=1, max=100),
                            metadata={"description": "a saved mapping's name: the "
                                      "plugin's own, else an import mapping of kind "
                                      "transactions or attributes"})
    columns = fields.String(metadata={"description": 'JSON object HEADER -> field, e.g. '
                                                     '{"Order no": "order_id"}'})
    options = fields.String(metadata={"description": "JSON object: date_format, "
                                                     "decimal_separator, currency, source, "
                                                     "delimiter"})


class ImportRejection(Schema):
    row = fields.Integer(metadata={"description": "1-based data row (header not counted)"})
    reason = fields.String()


class WarehouseImportReportSchema(Schema):
    import_id = fields.UUID()
    kind = fields.String()
    filename = fields.String()
    rows_read = fields.Integer()
    matched = fields.Integer()
    rejected = fields.Integer()
    rejections = fields.List(fields.Nested(ImportRejection),
                             metadata={"description": "the first 1,000 rejected rows"})


class ImportRun(WarehouseImportReportSchema):
    mapping = fields.String(allow_none=True)
    started_at = fields.DateTime()


class WarehouseImportMappingInput(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    kind = fields.String(required=True, validate=validate.OneOf(("transactions", "attributes")))
    columns = fields.Dict(keys=fields.String(), values=fields.String(allow_none=True),
                          required=True)
    options = fields.Dict(keys=fields.String(), load_default=dict)


class WarehouseImportMappingSchema(WarehouseImportMappingInput):
    id = fields.UUID()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


# --- analytics -------------------------------------------------------------------------


@analytics.route("/warehouse")
class Warehouse(MethodView):
    @analytics.response(200, WarehouseStatus)
    def get(self):
        """The warehouse: last refresh, watermarks, rows per table."""
        access.require(current_principal(), "analytics:read")
        return warehouse.status()


@analytics.route("/warehouse/refresh")
class WarehouseRefresh(MethodView):
    @analytics.arguments(RefreshInput)
    @analytics.response(200, RefreshResult)
    def post(self, data):
        """Load what changed since the last refresh (``full`` rebuilds) and wait for it."""
        access.require(current_principal(), "analytics:refresh")
        return warehouse.refresh(full=data["full"]).as_dict()


def _table_view(kind: str, schema: type[Schema], query: type[Schema], doc: str):
    class View(MethodView):
        @analytics.arguments(query, location="query")
        @analytics.response(200, schema(many=True))
        @analytics.paginate()
        def get(self, args, pagination_parameters):
            rows, total = services.customer_table(
                current_principal(), kind, as_of=args.get("as_of"), factor=args.get("factor"),
                segment=args.get("segment"), page=pagination_parameters.page,
                page_size=pagination_parameters.page_size, method=args.get("method"),
                horizon_months=args.get("horizon_months"),
                discount_rate=args.get("discount_rate"))
            pagination_parameters.item_count = total
            return rows

    View.get.__doc__ = doc
    View.__name__ = f"{kind.capitalize()}List"
    return View


analytics.route("/profiles")(_table_view(
    "profiles", PurchaseProfile, AsOfQuery,
    "Per customer: first and last purchase, orders, revenue, average order value, tenure."))
analytics.route("/rfm")(_table_view(
    "rfm", RfmScore, RfmQuery, "RFM quintile scores (1-5) and segment of every buying customer."))
analytics.route("/clv")(_table_view(
    "clv", LifetimeValue, ClvQuery,
    "Lifetime value: historical (AOV x orders per year x lifespan x margin) or, with "
    "method=bgnbd, BG/NBD + Gamma-Gamma (discounted expected spend over the horizon)."))
analytics.route("/churn")(_table_view(
    "churn", ChurnRisk, CustomerTableQuery,
    "Churn risk: days since the last purchase against N x the usual interval, or, with "
    "method=bgnbd, P(no purchase in the next ANALYTICAL_CHURN_HORIZON_WEEKS) and P(alive)."))


@analytics.route("/clv/model")
class ClvModelView(MethodView):
    @analytics.arguments(AsOfQuery, location="query")
    @analytics.response(200, ClvModel)
    def get(self, args):
        """The BG/NBD and Gamma-Gamma parameters fitted by maximum likelihood as of a day."""
        return services.clv_model(current_principal(), args.get("as_of"))


@analytics.route("/churn/validation")
class ChurnValidationView(MethodView):
    @analytics.arguments(ChurnValidationQuery, location="query")
    @analytics.response(200, ChurnValidation)
    def get(self, args):
        """AUC of the churn scores on a held-out period (who bought nothing in it)."""
        return services.churn_validation(current_principal(), args.get("as_of"),
                                         args["holdout_weeks"])


@analytics.route("/rfm/segments")
class RfmSegments(MethodView):
    @analytics.arguments(AsOfQuery, location="query")
    @analytics.response(200, RfmSummary)
    def get(self, args):
        """Customers and revenue per RFM segment."""
        return services.rfm_summary(current_principal(), args.get("as_of"))


@analytics.route("/cohorts")
class CohortMatrix(MethodView):
    @analytics.arguments(AsOfQuery, location="query")
    @analytics.response(200, RetentionMatrix)
    def get(self, args):
        """Monthly acquisition cohorts x months since first purchase (retention matrix)."""
        return services.cohorts(current_principal(), args.get("as_of"))


@analytics.route("/trends")
class MonthlyTrends(MethodView):
    @analytics.arguments(TrendQuery, location="query")
    @analytics.response(200, Trends)
    def get(self, args):
        """Orders, revenue, buying customers and interactions by channel, per month."""
        return services.trends(current_principal(), args.get("as_of"), args["months"])


@analytics.route("/associations")
class ProductAssociations(MethodView):
    @analytics.arguments(AssociationQuery, location="query")
    @analytics.response(200, AssociationRules)
    def get(self, args):
        """Cross-sell rules X -> Y with support, confidence and lift."""
        return services.associations(current_principal(), **args)


def _json_object(value: str | None, field: str) -> dict | None:
    import json

    if value is None or value == "":
        return None
    try:
        loaded = json.loads(value)
    except ValueError:
        loaded = None
    if not isinstance(loaded, dict):
        raise ValidationError({field: ["give a JSON object"]})
    return loaded


@analytics.route("/imports")
class Imports(MethodView):
    @analytics.response(200, ImportRun(many=True))
    def get(self):
        """The tenant's last 50 imports, newest first."""
        access.require(current_principal(), "analytics:read")
        return imports.import_runs(50)

    @analytics.doc(requestBody={"required": True, "content": {"multipart/form-data": {
        "schema": {"type": "object", "required": ["kind", "file"], "properties": {
            "kind": {"type": "string", "enum": ["transactions", "attributes"]},
            "mapping": {"type": "string", "description": "a saved mapping's name: the "
                        "plugin's own, else an import mapping (/import-mappings) of kind "
                        "transactions or attributes, with its value transformations"},
            "columns": {"type": "string", "description": "JSON object HEADER -> field"},
            "options": {"type": "string", "description": "JSON object of options"},
            "file": {"type": "string", "format": "binary",
                     "description": "a .csv or .parquet file"}}}}}})
    @analytics.response(201, WarehouseImportReportSchema)
    def post(self):
        """Import order lines or customer attributes from an uploaded CSV or Parquet file
        (multipart/form-data), with a saved mapping or ``columns``; answers with the report:
        rows read, matched, rejected, and the reason for each rejected row."""
        from flask import request
        from marshmallow import ValidationError as SchemaError

        access.require(current_principal(), "analytics:import")
        try:
            form = ImportForm().load(request.form.to_dict())
        except SchemaError as exc:
            raise ValidationError({"form": exc.messages}) from None
        upload = request.files.get("file")
        if upload is None:
            raise ValidationError({"file": ["attach the file as the form field 'file'"]})
        report = imports.import_upload(
            form["kind"], upload.stream, upload.filename or "", mapping=form.get("mapping"),
            columns=_json_object(form.get("columns"), "columns"),
            options=_json_object(form.get("options"), "options"))
        result = report.as_dict()
        result["rejections"] = result["rejections"][:imports.REJECTIONS_SHOWN]
        return result


@analytics.route("/imports/<uuid:import_id>")
class ImportById(MethodView):
    @analytics.response(200, ImportRun)
    def get(self, import_id: uuid.UUID):
        """One import: its counts and its first 1,000 rejected rows with their reasons."""
        access.require(current_principal(), "analytics:read")
        return imports.get_run(str(import_id))


@analytics.route("/imports/mappings")
class ImportMappings(MethodView):
    @analytics.response(200, WarehouseImportMappingSchema(many=True))
    def get(self):
        """The saved column mappings."""
        access.require(current_principal(), "analytics:read")
        return imports.list_mappings()

    @analytics.arguments(WarehouseImportMappingInput)
    @analytics.response(200, WarehouseImportMappingSchema)
    def put(self, data):
        """Save a mapping under its kind and name (replacing one of the same name)."""
        access.require(current_principal(), "analytics:import")
        mapping = imports.save_mapping(data["name"], data["kind"], data["columns"],
                                       data["options"])
        db.session.commit()
        return mapping


@analytics.route("/customers/<uuid:customer_id>")
class CustomerAnalyticsView(MethodView):
    @analytics.arguments(AsOfQuery, location="query")
    @analytics.response(200, CustomerAnalytics)
    def get(self, args, customer_id: uuid.UUID):
        """One customer's profile, RFM, CLV, churn risk, channels and next best offers."""
        return services.customer_analytics(customer_id, current_principal(), args.get("as_of"))


# --- segments --------------------------------------------------------------------------


@segments_blp.route("")
class Segments(MethodView):
    @segments_blp.response(200, SavedSegment(many=True))
    def get(self):
        """The tenant's saved segments."""
        return segments.list_segments(current_principal())

    @segments_blp.arguments(SegmentInput)
    @segments_blp.response(201, SavedSegment)
    def post(self, data):
        """Save a segment (rules are ANDed)."""
        segment = segments.create_segment(data, current_principal())
        db.session.commit()
        return segment


@segments_blp.route("/<uuid:segment_id>")
class SegmentById(MethodView):
    @segments_blp.response(200, SavedSegment)
    def get(self, segment_id: uuid.UUID):
        """One segment."""
        return segments.get_segment(segment_id, current_principal())

    @segments_blp.arguments(SegmentUpdate)
    @segments_blp.response(200, SavedSegment)
    def patch(self, data, segment_id: uuid.UUID):
        """Change a segment's name, description or rules."""
        segment = segments.update_segment(segment_id, data, current_principal())
        db.session.commit()
        return segment

    @segments_blp.response(204)
    def delete(self, segment_id: uuid.UUID):
        """Delete a segment."""
        segments.delete_segment(segment_id, current_principal())
        db.session.commit()


@segments_blp.route("/<uuid:segment_id>/members")
class SegmentMembers(MethodView):
    @segments_blp.arguments(AsOfQuery, location="query")
    @segments_blp.response(200, SegmentMembership)
    def get(self, args, segment_id: uuid.UUID):
        """The segment's members as last materialised (or its rules evaluated as of a day)."""
        return segments.members(segment_id, current_principal(), args.get("as_of"))


@segments_blp.route("/<uuid:segment_id>/refresh")
class SegmentRefresh(MethodView):
    @segments_blp.response(200, SegmentRefreshResult)
    def post(self, segment_id: uuid.UUID):
        """Recompute and store the segment's members now (the job does it every hour)."""
        return membership.refresh_one(segment_id, current_principal())


@segments_blp.route("/<uuid:segment_id>/members.csv")
class SegmentMembersCsv(MethodView):
    @segments_blp.arguments(AsOfQuery, location="query")
    @segments_blp.doc(responses={"200": {
        "description": "The members with name, e-mail, external id, stage, orders, revenue, "
                       "RFM segment, CLV and churn risk, as CSV.",
        "content": {"text/csv": {"schema": {"type": "string"}}}}})
    def get(self, args, segment_id: uuid.UUID):
        """Export a segment's members as CSV (needs customers:read on all records too)."""
        from flask import Response, stream_with_context

        segment, chunks = segments.iter_members_csv(segment_id, current_principal(),
                                                    args.get("as_of"))
        name = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in segment.name)
        return Response(stream_with_context(chunks), mimetype="text/csv",
                        headers={"Content-Disposition":
                                 f'attachment; filename="segment-{name}.csv"'})


BLUEPRINTS = (analytics, segments_blp)
