"""marshmallow schemas of the PRM plugin's API and partner portal."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from clientela.plugins.operational.schemas import Currency, Money, Stamped
from clientela.plugins.prm.models import (
    COMMISSION_STATUSES,
    CONTRACT_STATUSES,
    OFFER_STATUSES,
    PARTNER_STATUSES,
    PARTNER_TYPES,
    REGISTRATION_STATUSES,
    TARGET_PERIODS,
)

def Codes(**kw) -> fields.List:  # noqa: N802 - used like a field class
    """A list of short codes (countries, specialisations, sources)."""
    return fields.List(fields.String(validate=validate.Length(min=1, max=100)),
                       validate=validate.Length(max=200), **kw)


# --- tiers ------------------------------------------------------------------------------


class PartnerTierInput(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    weight = fields.Integer(validate=validate.Range(min=0, max=1000))
    position = fields.Integer(validate=validate.Range(min=0, max=10000))
    description = fields.String(validate=validate.Length(max=2000))


class PartnerTierUpdate(PartnerTierInput):
    """Every field optional (used with ``partial=True``)."""


class PartnerTier(PartnerTierInput, Stamped):
    pass


# --- partners ----------------------------------------------------------------------------


class PartnerInput(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    type = fields.String(required=True, validate=validate.OneOf(PARTNER_TYPES))
    tier_id = fields.UUID(allow_none=True)
    territories = Codes(metadata={"description": "ISO country codes the partner covers"})
    specialisations = Codes()
    owner_id = fields.UUID(allow_none=True, metadata={"description": "the channel manager"})
    capacity = fields.Integer(allow_none=True, validate=validate.Range(min=0, max=100000))
    email = fields.String(allow_none=True, validate=validate.Length(max=320))
    phone = fields.String(allow_none=True, validate=validate.Length(max=40))
    website = fields.String(allow_none=True, validate=validate.Length(max=300))
    notes = fields.String(validate=validate.Length(max=10000))
    attributes = fields.Dict(keys=fields.String())


class PartnerUpdate(PartnerInput):
    """Every field optional (used with ``partial=True``)."""


class OnboardingStepInput(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    required = fields.Boolean()
    position = fields.Integer(validate=validate.Range(min=0, max=10000))


class OnboardingStepUpdate(Schema):
    completed = fields.Boolean()
    required = fields.Boolean()


class OnboardingStep(Stamped):
    name = fields.String()
    required = fields.Boolean()
    position = fields.Integer()
    completed_at = fields.DateTime(allow_none=True)
    completed_by = fields.UUID(allow_none=True)


class Partner(PartnerInput, Stamped):
    status = fields.String(dump_only=True)
    status_changed_at = fields.DateTime(dump_only=True)
    tier = fields.String(dump_only=True, allow_none=True)
    onboarding = fields.List(fields.Nested(OnboardingStep), dump_only=True)


class PartnerQuery(Schema):
    status = fields.String(validate=validate.OneOf(PARTNER_STATUSES))
    type = fields.String(validate=validate.OneOf(PARTNER_TYPES))
    tier_id = fields.UUID()
    owner_id = fields.UUID()
    territory = fields.String()
    specialisation = fields.String()
    q = fields.String()
    sort = fields.String(metadata={"description": "e.g. name or -created_at"})


class StatusInput(Schema):
    status = fields.String(required=True, validate=validate.OneOf(PARTNER_STATUSES))
    reason = fields.String(validate=validate.Length(max=500))


class StatusChange(Stamped):
    from_status = fields.String(allow_none=True)
    to_status = fields.String()
    changed_at = fields.DateTime()
    user_id = fields.UUID(allow_none=True)
    reason = fields.String()


class PartnerUserInput(Schema):
    email = fields.String(required=True, validate=validate.Length(max=320))
    name = fields.String(validate=validate.Length(max=200))
    password = fields.String(load_only=True, validate=validate.Length(max=200))
    issue_token = fields.Boolean(load_default=False,
                                 metadata={"description": "also make a portal API token"})


class PartnerUser(Schema):
    id = fields.UUID()
    email = fields.String()
    name = fields.String()
    is_active = fields.Boolean()
    token = fields.String(allow_none=True, metadata={"description": "shown once"})


class AttributionInput(Schema):
    deal_id = fields.UUID(required=True)


class Attribution(Stamped):
    deal_id = fields.UUID()
    partner_id = fields.UUID()
    registration_id = fields.UUID(allow_none=True)
    protected_until = fields.Date(allow_none=True)


class PartnerTargetInput(Schema):
    period = fields.String(required=True, validate=validate.OneOf(TARGET_PERIODS))
    period_start = fields.Date(required=True)
    amount = Money(required=True)


class PartnerTarget(PartnerTargetInput, Stamped):
    partner_id = fields.UUID()


# --- deal registrations ---------------------------------------------------------------------


class RegistrationInput(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=300))
    customer_id = fields.UUID(allow_none=True)
    company_name = fields.String(allow_none=True, validate=validate.Length(max=200))
    contact_email = fields.String(allow_none=True, validate=validate.Length(max=320))
    amount = Money(required=True)
    currency = Currency()
    expected_close_date = fields.Date(allow_none=True)
    notes = fields.String(validate=validate.Length(max=10000))


class StaffRegistrationInput(RegistrationInput):
    partner_id = fields.UUID(required=True)


class Conflict(Schema):
    kind = fields.String()
    id = fields.String()
    title = fields.String()
    partner_id = fields.String()
    status = fields.String()


class PortalRegistration(RegistrationInput, Stamped):
    """What a partner sees of its registration: whether it conflicts, not with whom."""

    partner_id = fields.UUID()
    status = fields.String()
    in_conflict = fields.Method("_in_conflict")
    decided_at = fields.DateTime(allow_none=True)
    decision_reason = fields.String(allow_none=True)
    deal_id = fields.UUID(allow_none=True)
    protected_until = fields.Date(allow_none=True)

    def _in_conflict(self, obj) -> bool:
        return bool(obj.conflicts)


class DealRegistration(PortalRegistration):
    conflicts = fields.List(fields.Nested(Conflict))
    submitted_by = fields.UUID(allow_none=True)
    decided_by = fields.UUID(allow_none=True)


class RegistrationQuery(Schema):
    status = fields.String(validate=validate.OneOf(REGISTRATION_STATUSES))
    partner_id = fields.UUID()
    customer_id = fields.UUID()


class ApproveInput(Schema):
    override = fields.Boolean(load_default=False,
                              metadata={"description": "approve despite conflicts"})
    pipeline_id = fields.UUID()
    owner_id = fields.UUID()
    reason = fields.String(validate=validate.Length(max=500))


class RejectInput(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


# --- commissions --------------------------------------------------------------------------


class Bracket(Schema):
    up_to = fields.Decimal(as_string=True, allow_none=True, load_default=None,
                           metadata={"description": "upper bound; none: no bound (last only)"})
    rate = fields.Decimal(as_string=True, required=True, metadata={"description": "percent"})


class CommissionPlanInput(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    tier_id = fields.UUID(allow_none=True)
    product = fields.String(allow_none=True, validate=validate.Length(max=200))
    brackets = fields.List(fields.Nested(Bracket), required=True,
                           validate=validate.Length(min=1, max=20))
    active = fields.Boolean()


class CommissionPlan(CommissionPlanInput, Stamped):
    brackets = fields.List(fields.Dict())


class CommissionPlanUpdate(CommissionPlanInput):
    """Every field optional (used with ``partial=True``)."""


class PortalCommission(Stamped):
    partner_id = fields.UUID()
    deal_id = fields.UUID()
    plan_id = fields.UUID(allow_none=True)
    period_start = fields.Date()
    base_amount = fields.Decimal(as_string=True, places=2)
    amount = fields.Decimal(as_string=True, places=2)
    currency = fields.String()
    status = fields.String()
    breakdown = fields.List(fields.Dict())
    approved_at = fields.DateTime(allow_none=True)
    paid_at = fields.DateTime(allow_none=True)
    payment_reference = fields.String(allow_none=True)


class Commission(PortalCommission):
    approved_by = fields.UUID(allow_none=True)


class CommissionQuery(Schema):
    partner_id = fields.UUID()
    status = fields.String(validate=validate.OneOf(COMMISSION_STATUSES))
    period_from = fields.Date()
    period_to = fields.Date()


class PayInput(Schema):
    reference = fields.String(allow_none=True, validate=validate.Length(max=200))


class StatementQuery(Schema):
    partner_id = fields.UUID(required=True)
    period = fields.String(load_default="month", validate=validate.OneOf(TARGET_PERIODS))
    start = fields.Date(required=True)


class Statement(Schema):
    partner_id = fields.UUID()
    period = fields.String()
    start = fields.Date()
    end = fields.Date()
    lines = fields.List(fields.Nested(Commission))
    totals = fields.Dict(keys=fields.String(), values=fields.String())
    total = fields.String()


# --- lead distribution ---------------------------------------------------------------------


class DistributionRuleInput(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    position = fields.Integer(validate=validate.Range(min=0, max=10000))
    countries = Codes()
    sources = Codes()
    specialisation = fields.String(allow_none=True, validate=validate.Length(max=100))
    tier_ids = fields.List(fields.UUID(), validate=validate.Length(max=50))
    active = fields.Boolean()


class DistributionRuleUpdate(DistributionRuleInput):
    """Every field optional (used with ``partial=True``)."""


class DistributionRule(DistributionRuleInput, Stamped):
    tier_ids = fields.List(fields.String())


class DistributeInput(Schema):
    lead_id = fields.UUID(required=True)


class LeadOffer(Stamped):
    lead_id = fields.UUID()
    partner_id = fields.UUID()
    rule_id = fields.UUID(allow_none=True)
    status = fields.String()
    offered_at = fields.DateTime()
    deadline = fields.DateTime()
    responded_at = fields.DateTime(allow_none=True)
    reason = fields.String(allow_none=True)


class OfferQuery(Schema):
    partner_id = fields.UUID()
    lead_id = fields.UUID()
    status = fields.String(validate=validate.OneOf(OFFER_STATUSES))


class OfferAnswer(Schema):
    reason = fields.String(validate=validate.Length(max=500))


# --- contracts ------------------------------------------------------------------------------


class Document(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    url = fields.String(required=True, validate=validate.Length(min=1, max=1000))


class ContractInput(Schema):
    partner_id = fields.UUID(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    terms = fields.String(validate=validate.Length(max=100000))
    start_date = fields.Date(required=True)
    end_date = fields.Date(allow_none=True)
    auto_renew = fields.Boolean()
    renewal_months = fields.Integer(validate=validate.Range(min=1, max=120))
    status = fields.String(validate=validate.OneOf(CONTRACT_STATUSES))
    commission_plan_id = fields.UUID(allow_none=True)
    territories = Codes()
    documents = fields.List(fields.Nested(Document), validate=validate.Length(max=100))


class ContractUpdate(ContractInput):
    """Every field optional (used with ``partial=True``); the partner cannot change."""

    class Meta:
        exclude = ("partner_id",)


class PartnerContract(ContractInput, Stamped):
    alerted_for = fields.Date(dump_only=True, allow_none=True)


class ContractQuery(Schema):
    partner_id = fields.UUID()
    status = fields.String(validate=validate.OneOf(CONTRACT_STATUSES))


# --- reports --------------------------------------------------------------------------------


class PeriodQuery(Schema):
    from_ = fields.Date(data_key="from")
    to = fields.Date()


class PrmForecastQuery(Schema):
    period = fields.String(load_default="quarter", validate=validate.OneOf(TARGET_PERIODS))
    year = fields.Integer(validate=validate.Range(min=1900, max=3000))
    partner_id = fields.UUID()


class Figures(Schema):
    leads_received = fields.Integer()
    leads_accepted = fields.Integer()
    leads_converted = fields.Integer()
    acceptance_rate = fields.String(allow_none=True)
    conversion_rate = fields.String(allow_none=True)
    deals_won = fields.Integer()
    deals_lost = fields.Integer()
    win_rate = fields.String(allow_none=True)
    revenue = fields.String()
    average_deal = fields.String(allow_none=True)
    average_days_to_close = fields.String(allow_none=True)
    commission_earned = fields.String()


class Scorecard(Figures):
    partner_id = fields.UUID()
    partner = fields.String()
    tier = fields.String(allow_none=True)
    status = fields.String()
    from_ = fields.Date(data_key="from", attribute="from")
    to = fields.Date()
    contract_status = fields.String()


class TierFigures(Figures):
    tier_id = fields.UUID()
    tier = fields.String()
    partners = fields.Integer()


class PrmReport(Schema):
    from_ = fields.Date(data_key="from", attribute="from")
    to = fields.Date()
    partners = fields.List(fields.Nested(Scorecard))
    tiers = fields.List(fields.Nested(TierFigures))


class PartnerForecastRow(Schema):
    period = fields.String()
    start = fields.Date()
    partner_id = fields.UUID()
    partner = fields.String()
    open = fields.String()
    weighted = fields.String()
    won = fields.String()
    target = fields.String()


class ChannelForecastRow(Schema):
    period = fields.String()
    start = fields.Date()
    open = fields.String()
    weighted = fields.String()
    won = fields.String()
    target = fields.String()


class PartnerForecast(Schema):
    period = fields.String()
    year = fields.Integer()
    currency = fields.String()
    rows = fields.List(fields.Nested(PartnerForecastRow))
    channel = fields.List(fields.Nested(ChannelForecastRow))
