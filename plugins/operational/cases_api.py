"""``/api/v1/cases`` (with the interactions attached to a case) and ``/api/v1/sla-policies``."""

from __future__ import annotations

import uuid

from flask.views import MethodView
from flask_smorest import Blueprint

from clientela.core import customers
from clientela.core.api.auth import current_principal
from clientela.core.db import db
from clientela.plugins.operational import cases
from clientela.plugins.operational import work_schemas as schemas
from clientela.plugins.operational.work_models import ServiceCase

cases_blp = Blueprint("cases", __name__, url_prefix="/cases",
                      description="Service cases: status, assignee, queue, SLA and interactions")
sla_blp = Blueprint("sla_policies", __name__, url_prefix="/sla-policies",
                    description="First-response and resolution targets in business hours")


@cases_blp.route("")
class Cases(MethodView):
    @cases_blp.arguments(schemas.CaseQuery, location="query")
    @cases_blp.response(200, schemas.Case(many=True))
    @cases_blp.paginate()
    def get(self, args, pagination_parameters):
        """List the cases you may see, filtered and sorted (default: newest first)."""
        sort = args.pop("sort", None)
        stmt = cases.cases_query(current_principal(), **args)
        stmt = customers.order_by(stmt, ServiceCase, sort, cases.CASE_SORT, "-created_at")
        return customers.paginated(stmt, pagination_parameters)

    @cases_blp.arguments(schemas.CaseCreate)
    @cases_blp.response(201, schemas.Case)
    def post(self, data):
        """Open a case; its due times come from its SLA policy (default: the default one)."""
        case = cases.create_case(data, current_principal())
        db.session.commit()
        return case


@cases_blp.route("/<uuid:case_id>")
class CaseById(MethodView):
    @cases_blp.response(200, schemas.Case)
    def get(self, case_id: uuid.UUID):
        """One case."""
        return cases.get_case(case_id, current_principal())

    @cases_blp.arguments(schemas.CaseInput)
    @cases_blp.response(200, schemas.Case)
    def patch(self, data, case_id: uuid.UUID):
        """Change a case: assign, reprioritise (due times follow), resolve, close with a
        satisfaction rating, reopen."""
        case = cases.update_case(case_id, data, current_principal())
        db.session.commit()
        return case

    @cases_blp.response(204)
    def delete(self, case_id: uuid.UUID):
        """Delete a case (its interactions stay on the customer's timeline)."""
        cases.delete_case(case_id, current_principal())
        db.session.commit()


@cases_blp.route("/<uuid:case_id>/interactions")
class CaseInteractions(MethodView):
    @cases_blp.response(200, schemas.CaseInteraction(many=True))
    def get(self, case_id: uuid.UUID):
        """The interactions attached to the case, oldest first."""
        return cases.case_interactions(case_id, current_principal())

    @cases_blp.arguments(schemas.CaseInteractionInput)
    @cases_blp.response(201, schemas.CaseInteraction)
    def post(self, data, case_id: uuid.UUID):
        """Log a call (or another touchpoint) on the case: recorded on the customer's
        timeline and attached to the case; an outbound one is the first response."""
        interaction = cases.log_interaction(case_id, data, current_principal())
        db.session.commit()
        return interaction


@sla_blp.route("")
class SlaPolicies(MethodView):
    @sla_blp.response(200, schemas.SlaPolicy(many=True))
    @sla_blp.paginate()
    def get(self, pagination_parameters):
        """The SLA policies (the default one first)."""
        return customers.paginated(cases.policies_query(current_principal()),
                                   pagination_parameters)

    @sla_blp.arguments(schemas.SlaPolicyInput)
    @sla_blp.response(201, schemas.SlaPolicy)
    def post(self, data):
        """Add a policy (the first one becomes the default)."""
        policy = cases.create_policy(data, current_principal())
        db.session.commit()
        return policy


@sla_blp.route("/<uuid:policy_id>")
class SlaPolicyById(MethodView):
    @sla_blp.response(200, schemas.SlaPolicy)
    def get(self, policy_id: uuid.UUID):
        """One policy."""
        return cases.get_policy(policy_id, current_principal())

    @sla_blp.arguments(schemas.SlaPolicyUpdate(partial=True))
    @sla_blp.response(200, schemas.SlaPolicy)
    def patch(self, data, policy_id: uuid.UUID):
        """Change a policy; the due times of its open cases are computed again."""
        policy = cases.update_policy(policy_id, data, current_principal())
        db.session.commit()
        return policy

    @sla_blp.response(204)
    def delete(self, policy_id: uuid.UUID):
        """Delete a policy (its cases keep their due times)."""
        cases.delete_policy(policy_id, current_principal())
        db.session.commit()


BLUEPRINTS = [cases_blp, sla_blp]
