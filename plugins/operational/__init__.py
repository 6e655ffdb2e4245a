"""Operational CRM: leads and web forms, pipelines and deals, forecasts, tasks, service cases with SLAs, campaigns."""

from clientela.core import hookimpl

name = "operational"
version = "0.1.0"
requires: tuple[str, ...] = ()

PERMISSIONS = {
    "leads:read": "see leads",
    "leads:write": "capture, change, delete and convert leads",
    "leads:configure": "manage the lead scoring rules",
    "forms:read": "see web-to-lead forms and their snippets",
    "forms:write": "create, change and delete web-to-lead forms",
    "deals:read": "see deals, pipelines and the kanban board",
    "deals:write": "open, change, move, close and delete deals",
    "pipelines:write": "create, change and delete pipelines and their stages",
    "forecast:read": "see the sales forecast and targets",
    "targets:write": "set sales targets",
    "campaigns:read": "see campaigns, their recipients and results",
    "campaigns:write": "create, change and delete campaigns and their target lists",
    "campaigns:send": "schedule, send and cancel campaigns",
}
CAMPAIGN_PERMISSIONS = ["campaigns:read", "campaigns:write", "campaigns:send"]


@hookimpl
def clientela_models(register):
    from clientela.plugins.operational.campaign_models import MODELS as CAMPAIGN_MODELS
    from clientela.plugins.operational.models import MODELS

    for model in MODELS + CAMPAIGN_MODELS:
        register(model)


@hookimpl
def clientela_config_defaults(register):
    register("OPERATIONAL_DEFAULT_CURRENCY", "EUR",
             "currency of deals and targets that name none, and of the forecast")
    register("OPERATIONAL_FORM_RATE_LIMIT", "20 per minute",
             "web-to-lead submissions allowed per client address")
    register("OPERATIONAL_FORMS_BASE_URL", "",
             "public base URL of POST /forms/<key> in snippets (default: the request's host)")
    register("OPERATIONAL_TRACKING_BASE_URL", "",
             "public base URL of campaign tracking and unsubscribe links (default: the host "
             "the send or schedule request came to)")


@hookimpl
def clientela_permissions(register):
    for permission, description in PERMISSIONS.items():
        register(permission, description)


@hookimpl
def clientela_roles(register):
    register("admin", list(PERMISSIONS))
    register("manager", list(PERMISSIONS))
    register("sales", [("leads:read", "own"), ("leads:write", "own"), ("deals:read", "own"),
                       ("deals:write", "own"), ("forecast:read", "own")])
    register("marketing", ["leads:read", "leads:write", "leads:configure", "forms:read",
                           "forms:write", *CAMPAIGN_PERMISSIONS])
    register("analyst", ["leads:read", "deals:read", "forecast:read", "forms:read",
                         "campaigns:read"])


@hookimpl
def clientela_api_blueprints(register):
    from clientela.plugins.operational import api, campaigns_api

    for blueprint in api.BLUEPRINTS + campaigns_api.BLUEPRINTS:
        register(blueprint)


@hookimpl
def clientela_web_blueprints(register):
    from clientela.plugins.operational import api, campaigns_api

    register(api.public)
    register(campaigns_api.public)


@hookimpl
def clientela_jobs(register):
    from clientela.plugins.operational import campaigns

    campaigns.register_jobs(register)


@hookimpl
def clientela_inbound_message(interaction, thread):
    from clientela.plugins.operational import campaigns

    # a reply to a campaign is recorded as its response; cases may answer here too
    campaigns.inbound_message(interaction, thread)
    return None


@hookimpl
def clientela_contact_allowed(customer, channel, purpose):
    from clientela.plugins.operational import campaigns

    return campaigns.contact_allowed(customer, channel, purpose)


@hookimpl
def clientela_tenant_created_precommit(tenant):
    import uuid

    from clientela.core import tenancy
    from clientela.plugins.operational import services

    # a fresh tenant's id is a ``uuid6.UUID``, which SQLite cannot bind in the tenancy
    # criteria; the same id as a plain ``uuid.UUID`` can (see the report on the core)
    with tenancy.tenant_context(uuid.UUID(int=tenant.id.int)):
        services.create_pipeline({"name": "Sales", "is_default": True})


@hookimpl
def clientela_demo_data(tenant):
    from clientela.plugins.operational import services

    services.load_demo()


@hookimpl
def clientela_customer_profile(customer):
    from flask import g, has_request_context

    from clientela.plugins.operational import services

    principal = g.get("principal") if has_request_context() else None
    return services.profile_section(customer, principal)


@hookimpl
def clientela_customer_export(customer):
    from clientela.plugins.operational import campaigns, services

    exported = services.export_for(customer)
    exported["operational"].update(campaigns.export_for(customer))
    return exported


@hookimpl
def clientela_customer_erase(customer):
    from clientela.plugins.operational import campaigns, services

    return {**services.erase_for(customer), **campaigns.erase_for(customer)}


@hookimpl
def clientela_customer_merged_precommit(survivor, merged_id):
    from clientela.plugins.operational import campaigns, services

    services.merge_into(survivor, merged_id)
    campaigns.merge_into(survivor, merged_id)
