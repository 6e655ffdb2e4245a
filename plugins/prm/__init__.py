"""Partner relationship management: partners of a network, deal registration, contracts, commissions, scorecards."""

from clientela.core import hookimpl

name = "prm"
version = "0.1.0"
requires: tuple[str, ...] = ("operational",)

PERMISSIONS = {
    "partners:read": "see partners, their users, targets, onboarding and lead offers",
    "partners:write": "add, change, move along the lifecycle and delete partners; give "
                      "them users; distribute leads to them",
    "partners:configure": "manage partner tiers and lead distribution rules",
    "registrations:read": "see deal registrations",
    "registrations:write": "register deals on behalf of partners",
    "registrations:approve": "approve or reject deal registrations",
    "commissions:read": "see commission plans, commissions and statements",
    "commissions:write": "create, change and delete commission plans",
    "commissions:approve": "approve commissions and record their payment",
    "contracts:read": "see partner contracts",
    "contracts:write": "create, change and delete partner contracts",
    "prm:reports": "see partner scorecards, reports and the partner forecast",
    "partner-portal:use": "act for one partner in the partner portal (/partner/api/v1)",
}
STAFF = [p for p in PERMISSIONS if p != "partner-portal:use"]


@hookimpl
def clientela_models(register):
    from clientela.plugins.prm.models import MODELS

    for model in MODELS:
        register(model)


@hookimpl
def clientela_config_defaults(register):
    register("PRM_PROTECTION_DAYS", 90,
             "days an approved deal registration protects its customer for the partner")
    register("PRM_OFFER_HOURS", 48, "hours a partner has to accept or decline a lead")
    register("PRM_CONTRACT_ALERT_DAYS", 30,
             "days before a partner contract ends that its channel manager is told")
    register("PRM_AUTO_DISTRIBUTE", True,
             "offer every new lead to a partner (by a job) when a distribution rule exists")
    register("PRM_ONBOARDING_STEPS",
             "Agreement signed,Training completed,Portal access set up",
             "the required onboarding steps of a new partner (comma-separated)")


@hookimpl
def clientela_permissions(register):
    for permission, description in PERMISSIONS.items():
        register(permission, description)


@hookimpl
def clientela_roles(register):
    register("admin", STAFF)
    register("manager", STAFF)
    # a channel manager handles the partners it owns, and the deals their registrations open
    register("channel_manager", [(p, "own") for p in STAFF if p != "partners:configure"]
             + [("deals:read", "own"), ("deals:write", "own"), "leads:read",
                "customers:read"])
    register("sales", [("partners:read", "all"), ("registrations:read", "all")])
    register("analyst", ["partners:read", "registrations:read", "commissions:read",
                         "contracts:read", "prm:reports"])
    # partner users reach nothing under /api/v1: only their own partner, in the portal
    register("partner", ["partner-portal:use"])


@hookimpl
def clientela_api_blueprints(register):
    from clientela.plugins.prm import api

    for blueprint in api.BLUEPRINTS:
        register(blueprint)


@hookimpl
def clientela_web_blueprints(register):
    from clientela.plugins.prm.portal import portal

    register(portal)


@hookimpl
def clientela_jobs(register):
    from clientela.plugins.prm import jobs

    register(jobs.expire_lead_offers, name="prm.expire_lead_offers",
             schedule={"minute": "*/15"})
    register(jobs.contract_alerts, name="prm.contract_alerts",
             schedule={"minute": "0", "hour": "6"}, retries=2)
    register(jobs.distribute_lead, name="prm.distribute_lead", retries=3)
    register(jobs.sync_commissions, name="prm.sync_commissions",
             schedule={"minute": "30", "hour": "2"})


@hookimpl
def clientela_tenant_created_precommit(tenant):
    import uuid

    from clientela.core import tenancy
    from clientela.plugins.prm import services

    with tenancy.tenant_context(uuid.UUID(int=tenant.id.int)):
        services.ensure_default_tiers()


@hookimpl
def clientela_entity_changed_precommit(change):
    from clientela.plugins.prm import services

    if change.entity_type == "operational_leads" and change.operation == "insert":
        # a new lead goes to a partner by a job sent when this transaction commits
        services.schedule_distribution(change.entity)
    elif change.entity_type == "operational_deals" and change.operation == "update" and (
            {"status", "amount", "closed_at"} & set(change.changes)):
        # a deal won, reopened or changed in amount: its partner's commission follows, in
        # the same transaction (idempotent; the nightly job repairs anything missed)
        services.sync_commission(change.entity)
    elif change.entity_type == "operational_deals" and change.operation == "delete":
        services.forget_deal(change.entity_id)


@hookimpl
def clientela_demo_data(tenant):
    from clientela.plugins.prm import services

    services.load_demo()


@hookimpl
def clientela_customer_profile(customer):
    from flask import g, has_request_context

    from clientela.plugins.prm import services

    principal = g.get("principal") if has_request_context() else None
    return services.profile_section(customer, principal)


@hookimpl
def clientela_customer_export(customer):
    from clientela.plugins.prm import services

    return services.export_for(customer)


@hookimpl
def clientela_customer_erase(customer):
    from clientela.plugins.prm import services

    return services.erase_for(customer)


@hookimpl
def clientela_customer_merged_precommit(survivor, merged_id):
    from clientela.plugins.prm import services

    services.merge_into(survivor, merged_id)
from clientela.plugins.prm.web_hooks import *  # noqa: F401,F403,E402
