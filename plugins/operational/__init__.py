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
    "tasks:read": "see tasks and activities",
    "tasks:write": "create, change, complete and delete tasks",
    "cases:read": "see service cases and their interactions",
    "cases:write": "open, change, assign, resolve and close service cases",
    "routing:configure": "manage the routing rules that assign new leads, cases and tasks",
    "sla:configure": "manage SLA policies",
    "campaigns:read": "see campaigns, their recipients and results",
    "campaigns:write": "create, change and delete campaigns and their target lists",
    "campaigns:send": "schedule, send and cancel campaigns",
}
CAMPAIGN_PERMISSIONS = ["campaigns:read", "campaigns:write", "campaigns:send"]


@hookimpl
def clientela_models(register):
    from clientela.plugins.operational.campaign_models import MODELS as CAMPAIGN_MODELS
    from clientela.plugins.operational.models import MODELS

    from clientela.plugins.operational.work_models import WORK_MODELS

    for model in MODELS + WORK_MODELS + CAMPAIGN_MODELS:
        register(model)


@hookimpl
def clientela_config_defaults(register):
    register("OPERATIONAL_DEFAULT_CURRENCY", "EUR",
             "currency of deals and targets that name none, and of the forecast")
    register("OPERATIONAL_FORM_RATE_LIMIT", "20 per minute",
             "web-to-lead submissions allowed per client address")
    register("OPERATIONAL_FORMS_BASE_URL", "",
             "public base URL of POST /forms/<key> in snippets (default: the request's host)")
    register("OPERATIONAL_TASK_REMINDER_MINUTES", 60,
             "the reminder job notifies a task's owner this many minutes before it is due")
    register("OPERATIONAL_CASES_FROM_INBOUND", True,
             "open a service case for an inbound message (or add it to its thread's case)")
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
                       ("deals:write", "own"), ("forecast:read", "own"),
                       ("tasks:read", "own"), ("tasks:write", "own")])
    register("marketing", ["leads:read", "leads:write", "leads:configure", "forms:read",
                           "forms:write", ("tasks:read", "own"), ("tasks:write", "own"),
                           *CAMPAIGN_PERMISSIONS])
    # a service desk works one shared queue: every case; deals only when a role grants them
    register("service", ["cases:read", "cases:write", ("tasks:read", "own"),
                         ("tasks:write", "own")])
    register("analyst", ["leads:read", "deals:read", "forecast:read", "forms:read",
                         "tasks:read", "cases:read", "campaigns:read"])


@hookimpl
def clientela_api_blueprints(register):
    from clientela.plugins.operational import api

    from clientela.plugins.operational import campaigns_api, cases_api, work_api

    for blueprint in (api.BLUEPRINTS + work_api.BLUEPRINTS + cases_api.BLUEPRINTS
                      + campaigns_api.BLUEPRINTS):
        register(blueprint)


@hookimpl
def clientela_cli_commands(register):
    from clientela.plugins.operational import cli

    for command in cli.COMMANDS:
        register(command)


@hookimpl
def clientela_web_blueprints(register):
    from clientela.plugins.operational import api, campaigns_api

    register(api.public)
    register(campaigns_api.public)


@hookimpl
def clientela_tenant_created_precommit(tenant):
    import uuid

    from clientela.core import tenancy
    from clientela.plugins.operational import services

    # a fresh tenant's id may be a ``uuid.UUID`` subclass, which SQLite cannot bind in the tenancy
    # criteria; the same id as a plain ``uuid.UUID`` can (see the report on the core)
    with tenancy.tenant_context(uuid.UUID(int=tenant.id.int)):
        services.create_pipeline({"name": "Sales", "is_default": True})


@hookimpl
def clientela_demo_data(tenant):
    from clientela.plugins.operational import services, work_hooks

    services.load_demo()
    work_hooks.load_demo()


@hookimpl
def clientela_customer_profile(customer):
    from flask import g, has_request_context

    from clientela.plugins.operational import services, work_hooks

    principal = g.get("principal") if has_request_context() else None
    sections = [services.profile_section(customer, principal),
                *work_hooks.profile_sections(customer, principal)]
    return [s for s in sections if s] or None


@hookimpl
def clientela_customer_export(customer):
    from clientela.plugins.operational import campaigns, services, work_hooks

    answer = services.export_for(customer)
    answer["operational"].update(work_hooks.export_for(customer))
    answer["operational"].update(campaigns.export_for(customer))
    return answer


@hookimpl
def clientela_customer_erase(customer):
    from clientela.plugins.operational import campaigns, services, work_hooks

    return {**services.erase_for(customer), **work_hooks.erase_for(customer),
            **campaigns.erase_for(customer)}


@hookimpl
def clientela_customer_merged_precommit(survivor, merged_id):
    from clientela.plugins.operational import campaigns, services, work_hooks

    services.merge_into(survivor, merged_id)
    work_hooks.merge_into(survivor, merged_id)
    campaigns.merge_into(survivor, merged_id)


@hookimpl
def clientela_entity_changed_precommit(change):
    from clientela.plugins.operational import work_hooks

    work_hooks.unlink_deleted(change)


@hookimpl
def clientela_jobs(register):
    from clientela.plugins.operational import campaigns, cases, work

    register(work.remind_due_tasks, name="operational.remind_due_tasks",
             schedule={"minute": "*/5"})
    register(cases.check_sla_breaches, name="operational.check_sla_breaches",
             schedule={"minute": "*/5"})
    campaigns.register_jobs(register)


@hookimpl
def clientela_automation_actions(register):
    from clientela.plugins.operational import work

    register("create_task", "Create a task", work.automation_create_task,
             params={"title": "text", "due_in_days": "integer", "assignee_id": "text",
                     "kind": "text"})


@hookimpl
def clientela_inbound_message(interaction, thread):
    from clientela.plugins.operational import campaigns, cases

    # a reply to a campaign is recorded as its response; the case answers the hook
    campaigns.inbound_message(interaction, thread)
    return cases.on_inbound_message(interaction, thread)


@hookimpl
def clientela_unknown_sender(channel, address, name, subject, body):
    from clientela.plugins.operational import work_hooks

    return work_hooks.unknown_sender(channel, address, name, subject, body)


@hookimpl
def clientela_portal_records(customer_id):
    from clientela.plugins.operational import work_hooks

    return work_hooks.portal_records(customer_id)


@hookimpl
def clientela_search(query, limit, principal):
    from clientela.plugins.operational import work_hooks

    return work_hooks.search(query, limit, principal)


@hookimpl
def clientela_contact_allowed(customer, channel, purpose):
    from clientela.plugins.operational import campaigns

    return campaigns.contact_allowed(customer, channel, purpose)

from clientela.plugins.operational.web_hooks import *  # noqa: E402,F401,F403  (the web UI)
