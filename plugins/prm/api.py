"""``/api/v1/partners``, ``partner-tiers``, ``deal-registrations``, ``commission-plans``,
``commissions``, ``lead-distribution-rules``, ``lead-offers``, ``partner-contracts`` and
``prm`` (forecast, reports): the staff side of partner relationship management."""

from __future__ import annotations

import uuid

from flask.views import MethodView
from flask_smorest import Blueprint

from clientela.core import access, customers
from clientela.core.api.auth import current_principal
from clientela.core.db import db
from clientela.core.errors import Conflict, ValidationError
from clientela.plugins.operational import schemas as ops_schemas
from clientela.plugins.operational import services as ops
from clientela.plugins.prm import schemas
from clientela.plugins.operational.models import Deal
from clientela.plugins.prm import services as prm
from clientela.plugins.prm.models import DealRegistration, Partner

partners_blp = Blueprint("partners", __name__, url_prefix="/partners",
                         description="Partners of the network: lifecycle, onboarding, users, "
                                     "targets, attributed deals, scorecards")
tiers_blp = Blueprint("partner_tiers", __name__, url_prefix="/partner-tiers",
                      description="Tiers of the partner programme and their weights")
registrations_blp = Blueprint("deal_registrations", __name__, url_prefix="/deal-registrations",
                              description="Opportunities registered by partners")
plans_blp = Blueprint("commission_plans", __name__, url_prefix="/commission-plans",
                      description="Commission plans: marginal rates over thresholds")
commissions_blp = Blueprint("commissions", __name__, url_prefix="/commissions",
                            description="Commissions earned on won deals, statements")
rules_blp = Blueprint("lead_distribution_rules", __name__, url_prefix="/lead-distribution-rules",
                      description="Which partners may receive which leads")
offers_blp = Blueprint("lead_offers", __name__, url_prefix="/lead-offers",
                       description="Leads offered to partners, accepted or declined")
contracts_blp = Blueprint("partner_contracts", __name__, url_prefix="/partner-contracts",
                          description="Partner contracts, renewal and expiry")
prm_blp = Blueprint("prm", __name__, url_prefix="/prm",
                    description="Partner forecasts and reports")

BLUEPRINTS = (partners_blp, tiers_blp, registrations_blp, plans_blp, commissions_blp, rules_blp,
              offers_blp, contracts_blp, prm_blp)


def _partner(partner):
    return prm.decorate_partners([partner])[0]


# --- partners ------------------------------------------------------------------------------


@partners_blp.route("")
class Partners(MethodView):
    @partners_blp.arguments(schemas.PartnerQuery, location="query")
    @partners_blp.response(200, schemas.Partner(many=True))
    @partners_blp.paginate()
    def get(self, args, pagination_parameters):
        """The partners you may see, filtered (default order: name)."""
        sort = args.pop("sort", None)
        stmt = prm.partners_query(current_principal(), **args)
        stmt = customers.order_by(stmt, Partner, sort, prm.PARTNER_SORT, "name")
        return prm.decorate_partners(customers.paginated(stmt, pagination_parameters))

    @partners_blp.arguments(schemas.PartnerInput)
    @partners_blp.response(201, schemas.Partner)
    def post(self, data):
        """Add a partner (a ``prospect``, with the configured onboarding steps)."""
        partner = prm.create_partner(data, current_principal())
        db.session.commit()
        return _partner(partner)


@partners_blp.route("/<uuid:partner_id>")
class PartnerById(MethodView):
    @partners_blp.response(200, schemas.Partner)
    def get(self, partner_id: uuid.UUID):
        """One partner."""
        return _partner(prm.get_partner(partner_id, current_principal()))

    @partners_blp.arguments(schemas.PartnerUpdate(partial=True))
    @partners_blp.response(200, schemas.Partner)
    def patch(self, data, partner_id: uuid.UUID):
        """Change a partner (its status changes through ``/status``)."""
        partner = prm.update_partner(partner_id, data, current_principal())
        db.session.commit()
        return _partner(partner)

    @partners_blp.response(204)
    def delete(self, partner_id: uuid.UUID):
        """Delete a partner with everything it owns (refused once commissions are approved
        or paid); its portal users are deactivated."""
        prm.delete_partner(partner_id, current_principal())
        db.session.commit()


@partners_blp.route("/<uuid:partner_id>/status")
class PartnerStatus(MethodView):
    @partners_blp.arguments(schemas.StatusInput)
    @partners_blp.response(200, schemas.Partner)
    def post(self, data, partner_id: uuid.UUID):
        """Move the partner along its lifecycle: prospect → onboarding → active → inactive →
        terminated (409 for a move the lifecycle does not allow, or for ``active`` while a
        required onboarding step is open)."""
        partner = prm.change_status(partner_id, data["status"], data.get("reason"),
                                    current_principal())
        db.session.commit()
        return _partner(partner)


@partners_blp.route("/<uuid:partner_id>/history")
class PartnerHistory(MethodView):
    @partners_blp.response(200, schemas.StatusChange(many=True))
    def get(self, partner_id: uuid.UUID):
        """The partner's lifecycle, oldest first."""
        return prm.status_history(partner_id, current_principal())


@partners_blp.route("/<uuid:partner_id>/onboarding-steps")
class OnboardingSteps(MethodView):
    @partners_blp.response(200, schemas.OnboardingStep(many=True))
    def get(self, partner_id: uuid.UUID):
        """The partner's onboarding steps."""
        prm.get_partner(partner_id, current_principal())
        return prm.onboarding_steps(partner_id)

    @partners_blp.arguments(schemas.OnboardingStepInput)
    @partners_blp.response(201, schemas.OnboardingStep)
    def post(self, data, partner_id: uuid.UUID):
        """Add a step to this partner's onboarding."""
        step = prm.add_onboarding_step(partner_id, data, current_principal())
        db.session.commit()
        return step


@partners_blp.route("/<uuid:partner_id>/onboarding-steps/<uuid:step_id>")
class OnboardingStepById(MethodView):
    @partners_blp.arguments(schemas.OnboardingStepUpdate)
    @partners_blp.response(200, schemas.OnboardingStep)
    def patch(self, data, partner_id: uuid.UUID, step_id: uuid.UUID):
        """Mark a step done (``completed: true``) or open again."""
        step = prm.update_onboarding_step(partner_id, step_id, data, current_principal())
        db.session.commit()
        return step


@partners_blp.route("/<uuid:partner_id>/users")
class PartnerUsers(MethodView):
    @partners_blp.response(200, schemas.PartnerUser(many=True))
    def get(self, partner_id: uuid.UUID):
        """The partner's portal users."""
        return prm.partner_users(partner_id, current_principal())

    @partners_blp.arguments(schemas.PartnerUserInput)
    @partners_blp.response(201, schemas.PartnerUser)
    def post(self, data, partner_id: uuid.UUID):
        """Give the partner a portal user (role ``partner``); ``issue_token`` returns an API
        token for ``/partner/api/v1`` once."""
        user, raw = prm.add_partner_user(partner_id, data, current_principal())
        db.session.commit()
        return {"id": user.id, "email": user.email, "name": user.name,
                "is_active": user.is_active, "token": raw}


@partners_blp.route("/<uuid:partner_id>/users/<uuid:user_id>")
class PartnerUserById(MethodView):
    @partners_blp.response(204)
    def delete(self, partner_id: uuid.UUID, user_id: uuid.UUID):
        """Take a user away from the partner (the user is deactivated)."""
        prm.remove_partner_user(partner_id, user_id, current_principal())
        db.session.commit()


@partners_blp.route("/<uuid:partner_id>/targets")
class PartnerTargets(MethodView):
    @partners_blp.response(200, schemas.PartnerTarget(many=True))
    def get(self, partner_id: uuid.UUID):
        """The partner's targets per month or quarter."""
        return prm.targets(partner_id, current_principal())

    @partners_blp.arguments(schemas.PartnerTargetInput)
    @partners_blp.response(200, schemas.PartnerTarget)
    def put(self, data, partner_id: uuid.UUID):
        """Set the partner's target for one period (replacing the one it had)."""
        target = prm.set_target(partner_id, data, current_principal())
        db.session.commit()
        return target


@partners_blp.route("/<uuid:partner_id>/deals")
class PartnerDeals(MethodView):
    @partners_blp.response(200, ops_schemas.Deal(many=True))
    @partners_blp.paginate()
    def get(self, partner_id: uuid.UUID, pagination_parameters):
        """The deals attributed to the partner that you may see."""
        principal = current_principal()
        prm.get_partner(partner_id, principal)
        access.require(principal, "deals:read")
        stmt = access.scope_filter(prm.partner_deals_query(partner_id),
                                   Deal.owner_id, principal, "deals:read")
        return ops.decorate(customers.paginated(stmt.order_by(Deal.created_at),
                                                pagination_parameters))

    @partners_blp.arguments(schemas.AttributionInput)
    @partners_blp.response(201, schemas.Attribution)
    def post(self, data, partner_id: uuid.UUID):
        """Attribute an existing deal to the partner (a won one earns its commission now)."""
        link = prm.attribute_deal_for(partner_id, data["deal_id"], current_principal())
        db.session.commit()
        return link


@partners_blp.route("/<uuid:partner_id>/scorecard")
class PartnerScorecard(MethodView):
    @partners_blp.arguments(schemas.PeriodQuery, location="query")
    @partners_blp.response(200, schemas.Scorecard)
    def get(self, args, partner_id: uuid.UUID):
        """The partner's figures for a period (default: this calendar year)."""
        principal = current_principal()
        access.require(principal, "prm:reports")
        partner = prm.get_partner(partner_id, principal)
        return prm.scorecard(partner, args.get("from_"), args.get("to"))


# --- tiers ---------------------------------------------------------------------------------


@tiers_blp.route("")
class Tiers(MethodView):
    @tiers_blp.response(200, schemas.PartnerTier(many=True))
    def get(self):
        """The tiers, by position."""
        return db.session.execute(prm.tiers_query(current_principal())).scalars().all()

    @tiers_blp.arguments(schemas.PartnerTierInput)
    @tiers_blp.response(201, schemas.PartnerTier)
    def post(self, data):
        """Add a tier."""
        tier = prm.create_tier(data, current_principal())
        db.session.commit()
        return tier


@tiers_blp.route("/<uuid:tier_id>")
class TierById(MethodView):
    @tiers_blp.response(200, schemas.PartnerTier)
    def get(self, tier_id: uuid.UUID):
        """One tier."""
        return prm.get_tier(tier_id, current_principal())

    @tiers_blp.arguments(schemas.PartnerTierUpdate(partial=True))
    @tiers_blp.response(200, schemas.PartnerTier)
    def patch(self, data, tier_id: uuid.UUID):
        """Change a tier (its weight steers lead distribution)."""
        tier = prm.update_tier(tier_id, data, current_principal())
        db.session.commit()
        return tier

    @tiers_blp.response(204)
    def delete(self, tier_id: uuid.UUID):
        """Delete a tier no partner or plan uses."""
        prm.delete_tier(tier_id, current_principal())
        db.session.commit()


# --- deal registrations ----------------------------------------------------------------------


@registrations_blp.route("")
class Registrations(MethodView):
    @registrations_blp.arguments(schemas.RegistrationQuery, location="query")
    @registrations_blp.response(200, schemas.DealRegistration(many=True))
    @registrations_blp.paginate()
    def get(self, args, pagination_parameters):
        """Registrations of the partners you may see, newest first."""
        stmt = prm.registrations_query(current_principal(), **args).order_by(
            DealRegistration.created_at.desc(), DealRegistration.id)
        return customers.paginated(stmt, pagination_parameters)

    @registrations_blp.arguments(schemas.StaffRegistrationInput)
    @registrations_blp.response(201, schemas.DealRegistration)
    def post(self, data):
        """Register a deal on behalf of a partner; conflicts are checked and kept."""
        registration = prm.create_registration(data, current_principal())
        db.session.commit()
        return registration


@registrations_blp.route("/<uuid:registration_id>")
class RegistrationById(MethodView):
    @registrations_blp.response(200, schemas.DealRegistration)
    def get(self, registration_id: uuid.UUID):
        """One registration."""
        return prm.get_registration(registration_id, current_principal())


@registrations_blp.route("/<uuid:registration_id>/approve")
class RegistrationApprove(MethodView):
    @registrations_blp.arguments(schemas.ApproveInput)
    @registrations_blp.response(200, schemas.DealRegistration)
    def post(self, data, registration_id: uuid.UUID):
        """Approve: a deal opens, attributed to the partner and protected for the configured
        days. 409 while it conflicts, unless ``override`` is true."""
        principal = current_principal()
        try:
            registration = prm.approve_registration(registration_id, data, principal)
        except Conflict:
            db.session.commit()  # keep the conflicts found now on the registration
            raise
        db.session.commit()
        return registration


@registrations_blp.route("/<uuid:registration_id>/reject")
class RegistrationReject(MethodView):
    @registrations_blp.arguments(schemas.RejectInput)
    @registrations_blp.response(200, schemas.DealRegistration)
    def post(self, data, registration_id: uuid.UUID):
        """Reject, saying why (the partner sees the reason)."""
        registration = prm.reject_registration(registration_id, data["reason"],
                                               current_principal())
        db.session.commit()
        return registration


# --- commission plans and commissions -----------------------------------------------------------


@plans_blp.route("")
class Plans(MethodView):
    @plans_blp.response(200, schemas.CommissionPlan(many=True))
    @plans_blp.paginate()
    def get(self, pagination_parameters):
        """The commission plans."""
        return customers.paginated(prm.plans_query(current_principal()), pagination_parameters)

    @plans_blp.arguments(schemas.CommissionPlanInput)
    @plans_blp.response(201, schemas.CommissionPlan)
    def post(self, data):
        """Add a plan: for a tier and/or a product, or for everyone."""
        plan = prm.create_plan(data, current_principal())
        db.session.commit()
        return plan


@plans_blp.route("/<uuid:plan_id>")
class PlanById(MethodView):
    @plans_blp.response(200, schemas.CommissionPlan)
    def get(self, plan_id: uuid.UUID):
        """One plan."""
        return prm.get_plan(plan_id, current_principal())

    @plans_blp.arguments(schemas.CommissionPlanUpdate(partial=True))
    @plans_blp.response(200, schemas.CommissionPlan)
    def patch(self, data, plan_id: uuid.UUID):
        """Change a plan (pending commissions follow at the next computation)."""
        plan = prm.update_plan(plan_id, data, current_principal())
        db.session.commit()
        return plan

    @plans_blp.response(204)
    def delete(self, plan_id: uuid.UUID):
        """Delete a plan nothing uses."""
        prm.delete_plan(plan_id, current_principal())
        db.session.commit()


@commissions_blp.route("")
class Commissions(MethodView):
    @commissions_blp.arguments(schemas.CommissionQuery, location="query")
    @commissions_blp.response(200, schemas.Commission(many=True))
    @commissions_blp.paginate()
    def get(self, args, pagination_parameters):
        """Commissions of the partners you may see, by period."""
        return customers.paginated(prm.commissions_query(current_principal(), **args),
                                   pagination_parameters)


@commissions_blp.route("/statement")
class CommissionStatement(MethodView):
    @commissions_blp.arguments(schemas.StatementQuery, location="query")
    @commissions_blp.response(200, schemas.Statement)
    def get(self, args):
        """A partner's statement for one month or quarter."""
        principal = current_principal()
        access.require(principal, "commissions:read")
        partner = prm.get_partner(args["partner_id"], principal)
        return prm.statement(partner.id, args["period"], args["start"], principal)


@commissions_blp.route("/<uuid:commission_id>")
class CommissionById(MethodView):
    @commissions_blp.response(200, schemas.Commission)
    def get(self, commission_id: uuid.UUID):
        """One commission, with its breakdown by bracket."""
        return prm.get_commission(commission_id, current_principal())


@commissions_blp.route("/<uuid:commission_id>/approve")
class CommissionApprove(MethodView):
    @commissions_blp.response(200, schemas.Commission)
    def post(self, commission_id: uuid.UUID):
        """Approve a pending commission (it is never computed again)."""
        commission = prm.approve_commission(commission_id, current_principal())
        db.session.commit()
        return commission


@commissions_blp.route("/<uuid:commission_id>/pay")
class CommissionPay(MethodView):
    @commissions_blp.arguments(schemas.PayInput)
    @commissions_blp.response(200, schemas.Commission)
    def post(self, data, commission_id: uuid.UUID):
        """Record the payment of an approved commission."""
        commission = prm.pay_commission(commission_id, data.get("reference"),
                                        current_principal())
        db.session.commit()
        return commission


# --- lead distribution ----------------------------------------------------------------------


@rules_blp.route("")
class Rules(MethodView):
    @rules_blp.response(200, schemas.DistributionRule(many=True))
    def get(self):
        """The distribution rules, in the order they are tried."""
        return db.session.execute(prm.rules_query(current_principal())).scalars().all()

    @rules_blp.arguments(schemas.DistributionRuleInput)
    @rules_blp.response(201, schemas.DistributionRule)
    def post(self, data):
        """Add a rule."""
        rule = prm.create_rule(data, current_principal())
        db.session.commit()
        return rule


@rules_blp.route("/<uuid:rule_id>")
class RuleById(MethodView):
    @rules_blp.response(200, schemas.DistributionRule)
    def get(self, rule_id: uuid.UUID):
        """One rule."""
        return prm.get_rule(rule_id, current_principal())

    @rules_blp.arguments(schemas.DistributionRuleUpdate(partial=True))
    @rules_blp.response(200, schemas.DistributionRule)
    def patch(self, data, rule_id: uuid.UUID):
        """Change a rule."""
        rule = prm.update_rule(rule_id, data, current_principal())
        db.session.commit()
        return rule

    @rules_blp.response(204)
    def delete(self, rule_id: uuid.UUID):
        """Delete a rule (offers it made stay)."""
        prm.delete_rule(rule_id, current_principal())
        db.session.commit()


@offers_blp.route("")
class Offers(MethodView):
    @offers_blp.arguments(schemas.OfferQuery, location="query")
    @offers_blp.response(200, schemas.LeadOffer(many=True))
    @offers_blp.paginate()
    def get(self, args, pagination_parameters):
        """Leads offered to the partners you may see."""
        return customers.paginated(prm.offers_query(current_principal(), **args),
                                   pagination_parameters)

    @offers_blp.arguments(schemas.DistributeInput)
    @offers_blp.response(201, schemas.LeadOffer)
    def post(self, data):
        """Distribute a lead: the rules choose a partner, who has the configured hours to
        answer (422 when no partner fits)."""
        offer = prm.distribute_for(data["lead_id"], current_principal())
        if offer is None:
            raise ValidationError({"lead_id": ["no partner fits this lead now"]})
        db.session.commit()
        return offer


@offers_blp.route("/<uuid:offer_id>")
class OfferById(MethodView):
    @offers_blp.response(200, schemas.LeadOffer)
    def get(self, offer_id: uuid.UUID):
        """One offer."""
        return prm.get_offer(offer_id, current_principal())


@offers_blp.route("/<uuid:offer_id>/withdraw")
class OfferWithdraw(MethodView):
    @offers_blp.response(200, schemas.LeadOffer)
    def post(self, offer_id: uuid.UUID):
        """Take a lead back from a partner."""
        offer = prm.withdraw_offer(offer_id, current_principal())
        db.session.commit()
        return offer


# --- contracts -----------------------------------------------------------------------------


@contracts_blp.route("")
class Contracts(MethodView):
    @contracts_blp.arguments(schemas.ContractQuery, location="query")
    @contracts_blp.response(200, schemas.PartnerContract(many=True))
    @contracts_blp.paginate()
    def get(self, args, pagination_parameters):
        """Contracts of the partners you may see."""
        return customers.paginated(prm.contracts_query(current_principal(), **args),
                                   pagination_parameters)

    @contracts_blp.arguments(schemas.ContractInput)
    @contracts_blp.response(201, schemas.PartnerContract)
    def post(self, data):
        """Add a contract."""
        contract = prm.create_contract(data, current_principal())
        db.session.commit()
        return contract


@contracts_blp.route("/<uuid:contract_id>")
class ContractById(MethodView):
    @contracts_blp.response(200, schemas.PartnerContract)
    def get(self, contract_id: uuid.UUID):
        """One contract."""
        return prm.get_contract(contract_id, current_principal())

    @contracts_blp.arguments(schemas.ContractUpdate(partial=True))
    @contracts_blp.response(200, schemas.PartnerContract)
    def patch(self, data, contract_id: uuid.UUID):
        """Change a contract (``status: active`` puts it in force)."""
        contract = prm.update_contract(contract_id, data, current_principal())
        db.session.commit()
        return contract

    @contracts_blp.response(204)
    def delete(self, contract_id: uuid.UUID):
        """Delete a contract."""
        prm.delete_contract(contract_id, current_principal())
        db.session.commit()


# --- forecast and reports ---------------------------------------------------------------------


@prm_blp.route("/forecast")
class Forecast(MethodView):
    @prm_blp.arguments(schemas.PrmForecastQuery, location="query")
    @prm_blp.response(200, schemas.PartnerForecast)
    def get(self, args):
        """Weighted pipeline, won and target per partner and for the channel, by period."""
        principal = current_principal()
        access.require(principal, "prm:reports")
        return prm.forecast(principal, **args)


@prm_blp.route("/reports")
class Reports(MethodView):
    @prm_blp.arguments(schemas.PeriodQuery, location="query")
    @prm_blp.response(200, schemas.PrmReport)
    def get(self, args):
        """Scorecards of every partner and the same figures per tier, for a period."""
        return prm.report(current_principal(), args.get("from_"), args.get("to"))

