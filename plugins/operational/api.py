"""``/api/v1/leads``, ``lead-scoring-rules``, ``web-forms``, ``pipelines``, ``deals``,
``sales-targets``, ``forecast``, and the public web-to-lead endpoint ``POST /forms/<key>``."""

from __future__ import annotations

import logging
import time
import uuid

from flask import Blueprint as FlaskBlueprint
from flask import current_app, jsonify, redirect, request
from flask.views import MethodView
from flask_limiter.util import get_remote_address
from flask_smorest import Blueprint
from limits import parse

from clientela.core import customers, tenancy
from clientela.core.api import error_body
from clientela.core.api.auth import current_principal
from clientela.core.db import db
from clientela.core.errors import RateLimited, ValidationError
from clientela.core.models import Tenant
from clientela.plugins.operational import schemas
from clientela.plugins.operational import services as ops
from clientela.plugins.operational.models import Deal, Lead

log = logging.getLogger(__name__)

leads_blp = Blueprint("leads", __name__, url_prefix="/leads",
                      description="Leads: capture, qualification, score and conversion")
rules_blp = Blueprint("lead_scoring_rules", __name__, url_prefix="/lead-scoring-rules",
                      description="The rules that score leads")
forms_blp = Blueprint("web_forms", __name__, url_prefix="/web-forms",
                      description="Public web-to-lead forms")
pipelines_blp = Blueprint("pipelines", __name__, url_prefix="/pipelines",
                          description="Sales pipelines, their stages and the kanban board")
deals_blp = Blueprint("deals", __name__, url_prefix="/deals",
                      description="Deals (opportunities), their lines and stage history")
targets_blp = Blueprint("sales_targets", __name__, url_prefix="/sales-targets",
                        description="What each owner should win per month or quarter")
forecast_blp = Blueprint("forecast", __name__, url_prefix="/forecast",
                         description="Weighted, commit and best-case forecast against targets")



# --- leads ----------------------------------------------------------------------------------


@leads_blp.route("")
class Leads(MethodView):
    @leads_blp.arguments(schemas.LeadQuery, location="query")
    @leads_blp.response(200, schemas.Lead(many=True))
    @leads_blp.paginate()
    def get(self, args, pagination_parameters):
        """List the leads you may see, filtered, sorted (default: best score first)."""
        sort = args.pop("sort", None)
        stmt = ops.leads_query(current_principal(), **args)
        stmt = customers.order_by(stmt, Lead, sort, ops.LEAD_SORT, "-score,-created_at")
        return customers.paginated(stmt, pagination_parameters)

    @leads_blp.arguments(schemas.LeadInput)
    @leads_blp.response(201, schemas.Lead)
    def post(self, data):
        """Capture a lead (you are its owner unless ``owner_id`` says otherwise)."""
        lead = ops.create_lead(data, current_principal())
        db.session.commit()
        return lead


@leads_blp.route("/<uuid:lead_id>")
class LeadById(MethodView):
    @leads_blp.response(200, schemas.Lead)
    def get(self, lead_id: uuid.UUID):
        """One lead."""
        return ops.get_lead(lead_id, current_principal())

    @leads_blp.arguments(schemas.LeadUpdate(partial=True))
    @leads_blp.response(200, schemas.Lead)
    def patch(self, data, lead_id: uuid.UUID):
        """Change a lead (its score is computed again)."""
        lead = ops.update_lead(lead_id, data, current_principal())
        db.session.commit()
        return lead

    @leads_blp.response(204)
    def delete(self, lead_id: uuid.UUID):
        """Delete a lead."""
        ops.delete_lead(lead_id, current_principal())
        db.session.commit()


@leads_blp.route("/<uuid:lead_id>/convert")
class LeadConvert(MethodView):
    @leads_blp.arguments(schemas.ConvertInput)
    @leads_blp.response(200, schemas.ConvertResult)
    def post(self, data, lead_id: uuid.UUID):
        """Convert a lead into a customer (an existing one with the same e-mail or phone when
        there is one) and optionally a deal; recorded on the customer's timeline."""
        result = ops.convert_lead(lead_id, data, current_principal())
        db.session.commit()
        if result["deal"] is not None:
            ops.decorate([result["deal"]])
        return result


# --- scoring rules ---------------------------------------------------------------------------


@rules_blp.route("")
class ScoringRules(MethodView):
    @rules_blp.response(200, schemas.ScoringRule(many=True))
    @rules_blp.paginate()
    def get(self, pagination_parameters):
        """The tenant's lead scoring rules."""
        return customers.paginated(ops.rules_query(current_principal()), pagination_parameters)

    @rules_blp.arguments(schemas.ScoringRuleInput)
    @rules_blp.response(201, schemas.ScoringRule)
    def post(self, data):
        """Add a rule; the score of every open lead is computed again."""
        rule = ops.create_rule(data, current_principal())
        db.session.commit()
        return rule


@rules_blp.route("/<uuid:rule_id>")
class ScoringRuleById(MethodView):
    @rules_blp.response(200, schemas.ScoringRule)
    def get(self, rule_id: uuid.UUID):
        """One rule."""
        return ops.get_rule(rule_id, current_principal())

    @rules_blp.arguments(schemas.ScoringRuleUpdate(partial=True))
    @rules_blp.response(200, schemas.ScoringRule)
    def patch(self, data, rule_id: uuid.UUID):
        """Change a rule; scores are computed again."""
        rule = ops.update_rule(rule_id, data, current_principal())
        db.session.commit()
        return rule

    @rules_blp.response(204)
    def delete(self, rule_id: uuid.UUID):
        """Delete a rule; scores are computed again."""
        ops.delete_rule(rule_id, current_principal())
        db.session.commit()


# --- web forms --------------------------------------------------------------------------------


def form_url(form) -> str:
    base = current_app.config.get("OPERATIONAL_FORMS_BASE_URL") or request.host_url
    return f"{base.rstrip('/')}/forms/{form.key}"


def _with_url(form):
    form.url = form_url(form)
    return form


@forms_blp.route("")
class WebForms(MethodView):
    @forms_blp.response(200, schemas.WebForm(many=True))
    @forms_blp.paginate()
    def get(self, pagination_parameters):
        """The tenant's web forms."""
        forms = customers.paginated(ops.forms_query(current_principal()), pagination_parameters)
        return [_with_url(f) for f in forms]

    @forms_blp.arguments(schemas.WebFormInput)
    @forms_blp.response(201, schemas.WebForm)
    def post(self, data):
        """Create a web form; its key is made for you."""
        form = ops.create_form(data, current_principal())
        db.session.commit()
        return _with_url(form)


@forms_blp.route("/<uuid:form_id>")
class WebFormById(MethodView):
    @forms_blp.response(200, schemas.WebForm)
    def get(self, form_id: uuid.UUID):
        """One web form."""
        return _with_url(ops.get_form(form_id, current_principal()))

    @forms_blp.arguments(schemas.WebFormUpdate(partial=True))
    @forms_blp.response(200, schemas.WebForm)
    def patch(self, data, form_id: uuid.UUID):
        """Change a web form (``rotate_key`` gives it a new key)."""
        form = ops.update_form(form_id, data, current_principal())
        db.session.commit()
        return _with_url(form)

    @forms_blp.response(204)
    def delete(self, form_id: uuid.UUID):
        """Delete a web form (its leads stay)."""
        ops.delete_form(form_id, current_principal())
        db.session.commit()


@forms_blp.route("/<uuid:form_id>/snippet")
class WebFormSnippet(MethodView):
    @forms_blp.response(200, schemas.Snippet)
    def get(self, form_id: uuid.UUID):
        """The HTML to paste into a web page (with the hidden honeypot field)."""
        form = ops.get_form(form_id, current_principal())
        url = form_url(form)
        return {"url": url, "html": ops.snippet(form, url)}


# --- the public endpoint ----------------------------------------------------------------------


def check_form_rate() -> None:
    """Throttle submissions per client address with the app's limiter (Redis when
    ``REDIS_URL`` is set, so the limit holds across workers)."""
    limiter = current_app.extensions["clientela_limiter"]
    rate = parse(current_app.config["OPERATIONAL_FORM_RATE_LIMIT"])
    key = f"web-form-ip:{get_remote_address()}"
    if not limiter.limiter.hit(rate, key):
        stats = limiter.limiter.get_window_stats(rate, key)
        raise RateLimited("too many submissions; try again later",
                          retry_after=max(1, int(stats.reset_time - time.time())))


def _not_found():
    return jsonify(error_body(404, "no such form")), 404


def _received(form, as_json: bool):
    """The same answer whether the lead was stored or a bot filled the honeypot."""
    if as_json:
        return jsonify({"status": "received"}), 201
    if form.redirect_url:
        return redirect(form.redirect_url, code=303)
    return current_app.response_class(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Thank you</title></head>"
        "<body><p>Thank you, we received your message.</p></body></html>",
        status=200, mimetype="text/html")


def submit_form(form_key: str):
    """``POST /forms/<form_key>``: a public submission, form-encoded or JSON; no login."""
    check_form_rate()
    tenant_id = ops.tenant_of_form_key(form_key)
    if tenant_id is None:
        return _not_found()
    tenant = db.session.get(Tenant, tenant_id)
    if tenant is None or tenant.status != "active":
        return _not_found()
    as_json = request.is_json
    where = "json" if as_json else "form"
    with tenancy.tenant_context(tenant_id, origin="web"):
        form = ops.find_form(form_key)
        if form is None:
            db.session.rollback()
            return _not_found()
        values = request.get_json(silent=True) if as_json else request.form.to_dict()
        if not isinstance(values, dict):
            db.session.rollback()
            return jsonify(error_body(422, "Invalid input.", errors={
                where: {"_schema": ["send a JSON object or form fields"]}})), 422
        try:
            lead = ops.submit_form(form, values)
        except ValidationError as exc:
            db.session.rollback()
            return jsonify(error_body(422, "Invalid input.", errors={where: exc.errors})), 422
        if lead is None:
            log.info("web form %s: honeypot filled by %s; nothing stored", form.id,
                     get_remote_address())
            answer = _received(form, as_json)
            db.session.rollback()
            return answer
        answer = _received(form, as_json)
        db.session.commit()
    return answer


public = FlaskBlueprint("operational_public", __name__)


# the public form lives at the site's root, outside the authenticated API
public.add_url_rule("/forms/<form_key>", endpoint="form_submit", view_func=submit_form,
                    methods=["POST"])


# --- pipelines --------------------------------------------------------------------------------


def _with_stages(pipeline):
    pipeline.stages = ops.stages_of(pipeline.id)
    return pipeline


@pipelines_blp.route("")
class Pipelines(MethodView):
    @pipelines_blp.response(200, schemas.Pipeline(many=True))
    def get(self):
        """Every pipeline with its stages, in order."""
        pipelines = db.session.execute(ops.pipelines_query(current_principal())).scalars()
        return [_with_stages(p) for p in pipelines]

    @pipelines_blp.arguments(schemas.PipelineInput)
    @pipelines_blp.response(201, schemas.Pipeline)
    def post(self, data):
        """Create a pipeline with its stages (default: a standard sales process)."""
        pipeline = ops.create_pipeline(data, current_principal())
        db.session.commit()
        return _with_stages(pipeline)


@pipelines_blp.route("/<uuid:pipeline_id>")
class PipelineById(MethodView):
    @pipelines_blp.response(200, schemas.Pipeline)
    def get(self, pipeline_id: uuid.UUID):
        """One pipeline with its stages."""
        return _with_stages(ops.get_pipeline(pipeline_id, current_principal()))

    @pipelines_blp.arguments(schemas.PipelineUpdate(partial=True))
    @pipelines_blp.response(200, schemas.Pipeline)
    def patch(self, data, pipeline_id: uuid.UUID):
        """Rename, reorder or make default; ``stages`` replaces the stage list (give ``id``
        to keep a stage)."""
        pipeline = ops.update_pipeline(pipeline_id, data, current_principal())
        db.session.commit()
        return _with_stages(pipeline)

    @pipelines_blp.response(204)
    def delete(self, pipeline_id: uuid.UUID):
        """Delete a pipeline that holds no deals."""
        ops.delete_pipeline(pipeline_id, current_principal())
        db.session.commit()


@pipelines_blp.route("/<uuid:pipeline_id>/board")
class PipelineBoard(MethodView):
    @pipelines_blp.arguments(schemas.BoardQuery, location="query")
    @pipelines_blp.response(200, schemas.Board)
    def get(self, args, pipeline_id: uuid.UUID):
        """The kanban board: the deals you may see, by stage, with counts and totals."""
        board = ops.board(pipeline_id, current_principal(), **args)
        for column in board["stages"]:
            ops.decorate(column["deals"], with_items=False)
        return board


# --- deals ------------------------------------------------------------------------------------


@deals_blp.route("")
class Deals(MethodView):
    @deals_blp.arguments(schemas.DealQuery, location="query")
    @deals_blp.response(200, schemas.Deal(many=True))
    @deals_blp.paginate()
    def get(self, args, pagination_parameters):
        """List the deals you may see, filtered and sorted."""
        sort = args.pop("sort", None)
        stmt = ops.deals_query(current_principal(), **args)
        stmt = customers.order_by(stmt, Deal, sort, ops.DEAL_SORT, "expected_close_date")
        return ops.decorate(customers.paginated(stmt, pagination_parameters))

    @deals_blp.arguments(schemas.DealCreate)
    @deals_blp.response(201, schemas.Deal)
    def post(self, data):
        """Open a deal (in the default pipeline's first stage unless told otherwise)."""
        deal = ops.create_deal(data, current_principal())
        db.session.commit()
        return ops.decorate([deal])[0]


@deals_blp.route("/<uuid:deal_id>")
class DealById(MethodView):
    @deals_blp.response(200, schemas.Deal)
    def get(self, deal_id: uuid.UUID):
        """One deal with its lines."""
        return ops.decorate([ops.get_deal(deal_id, current_principal())])[0]

    @deals_blp.arguments(schemas.DealInput)
    @deals_blp.response(200, schemas.Deal)
    def patch(self, data, deal_id: uuid.UUID):
        """Change a deal; a new ``stage_id`` moves it (and a won/lost stage closes it)."""
        deal = ops.update_deal(deal_id, data, current_principal())
        db.session.commit()
        return ops.decorate([deal])[0]

    @deals_blp.response(204)
    def delete(self, deal_id: uuid.UUID):
        """Delete a deal."""
        ops.delete_deal(deal_id, current_principal())
        db.session.commit()


@deals_blp.route("/<uuid:deal_id>/close")
class DealClose(MethodView):
    @deals_blp.arguments(schemas.CloseInput)
    @deals_blp.response(200, schemas.Deal)
    def post(self, data, deal_id: uuid.UUID):
        """Mark a deal won or lost (a reason is required when lost)."""
        deal = ops.close_deal(deal_id, data["outcome"], data.get("reason"), current_principal())
        db.session.commit()
        return ops.decorate([deal])[0]


@deals_blp.route("/<uuid:deal_id>/history")
class DealHistory(MethodView):
    @deals_blp.response(200, schemas.StageChange(many=True))
    def get(self, deal_id: uuid.UUID):
        """Every move of the deal between stages, oldest first."""
        return ops.deal_history(deal_id, current_principal())


# --- targets and forecast ---------------------------------------------------------------------


@targets_blp.route("")
class Targets(MethodView):
    @targets_blp.arguments(schemas.TargetQuery, location="query")
    @targets_blp.response(200, schemas.Target(many=True))
    @targets_blp.paginate()
    def get(self, args, pagination_parameters):
        """Sales targets (yours only with an ``own`` forecast scope)."""
        return customers.paginated(ops.targets_query(current_principal(), **args), pagination_parameters)

    @targets_blp.arguments(schemas.TargetInput)
    @targets_blp.response(201, schemas.Target)
    def post(self, data):
        """Set an owner's target for a month or a quarter."""
        target = ops.create_target(data, current_principal())
        db.session.commit()
        return target


@targets_blp.route("/<uuid:target_id>")
class TargetById(MethodView):
    @targets_blp.response(200, schemas.Target)
    def get(self, target_id: uuid.UUID):
        """One target."""
        return ops.get_target(target_id, current_principal())

    @targets_blp.arguments(schemas.TargetUpdate(partial=True))
    @targets_blp.response(200, schemas.Target)
    def patch(self, data, target_id: uuid.UUID):
        """Change a target."""
        target = ops.update_target(target_id, data, current_principal())
        db.session.commit()
        return target

    @targets_blp.response(204)
    def delete(self, target_id: uuid.UUID):
        """Delete a target."""
        ops.delete_target(target_id, current_principal())
        db.session.commit()


@forecast_blp.route("")
class ForecastView(MethodView):
    @forecast_blp.arguments(schemas.ForecastQuery, location="query")
    @forecast_blp.response(200, schemas.Forecast)
    def get(self, args):
        """The forecast of a year by month or quarter and owner: open, weighted, commit,
        best case and won, against targets."""
        return ops.forecast(current_principal(), **args)


BLUEPRINTS = [leads_blp, rules_blp, forms_blp, pipelines_blp, deals_blp, targets_blp,
              forecast_blp]

__all__ = ["BLUEPRINTS", "public"]
