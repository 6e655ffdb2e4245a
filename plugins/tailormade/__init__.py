"""Tailor-made CRM: custom fields and objects, automation rules, webhooks, import mappings."""

import logging

from clientela.core import hookimpl

log = logging.getLogger(__name__)

name = "tailormade"
version = "0.1.0"
requires: tuple[str, ...] = ()

PERMISSIONS = {
    "customization:read": "see the custom field definitions",
    "customization:write": "define, change and remove custom fields",
    "webhooks:read": "see webhooks and their delivery log",
    "webhooks:write": "create, change and delete webhooks",
    "custom_objects:read": "see the records of custom objects",
    "custom_objects:write": "create, change and delete records of custom objects",
    "automations:read": "see automation rules and their execution log",
    "automations:write": "create, change and delete automation rules",
}


@hookimpl
def clientela_models(register):
    from clientela.plugins.tailormade.models import MODELS

    for model in MODELS:
        register(model)


@hookimpl
def clientela_config_defaults(register):
    register("TAILORMADE_WEBHOOK_TIMEOUT", 10, "seconds a webhook receiver has to answer")
    register("TAILORMADE_WEBHOOK_KEEP_DAYS", 30, "days the webhook delivery log is kept")
    register("TAILORMADE_WEBHOOK_DISABLE_AFTER", 5,
             "a webhook is switched off after this many deliveries in a row failed for good")
    register("TAILORMADE_WEBHOOK_ALLOW_PRIVATE", None,
             "deliver webhooks to loopback and private addresses (default: yes on-premise, "
             "no in the hosted profile)")
    register("TAILORMADE_AUTOMATION_MAX_DEPTH", 5,
             "automation rules triggering one another stop after this many in a chain")
    register("TAILORMADE_AUTOMATION_DATE_WINDOW_DAYS", 7,
             "a date trigger missed (worker down) still fires within this many days")


@hookimpl
def clientela_permissions(register):
    for permission, description in PERMISSIONS.items():
        register(permission, description)


@hookimpl
def clientela_roles(register):
    register("admin", list(PERMISSIONS))
    # everyone who writes records needs to know the fields they may fill
    for role in ("manager", "sales", "marketing", "service", "analyst"):
        register(role, ["customization:read"])
    # records of custom objects: like customers, owned, with the record scope
    register("manager", ["custom_objects:read", "custom_objects:write"])
    for role in ("sales", "marketing", "service"):
        register(role, [("custom_objects:read", "all"), ("custom_objects:write", "own")])
    register("analyst", ["custom_objects:read"])
    register("manager", ["automations:read"])


@hookimpl
def clientela_api_blueprints(register):
    from clientela.plugins.tailormade import api

    for blueprint in api.BLUEPRINTS:
        register(blueprint)


@hookimpl
def clientela_cli_commands(register):
    from clientela.plugins.tailormade.cli import customizations_group

    register(customizations_group)


@hookimpl
def clientela_jobs(register):
    from clientela.plugins.tailormade import automations, webhooks

    register(webhooks.deliver, name=webhooks.DELIVER_JOB, retries=webhooks.RETRIES,
             retry_delay=webhooks.RETRY_DELAY, backoff=webhooks.BACKOFF)
    register(webhooks.housekeeping, name="tailormade.webhook_housekeeping",
             schedule={"minute": "41"})
    register(automations.run_rule, name=automations.RUN_JOB)
    register(automations.scan_dates, name=automations.DATES_JOB, schedule={"minute": "7"})


@hookimpl
def clientela_validate(entity, change):
    from clientela.plugins.tailormade import custom_fields

    with custom_fields.plain_tenant():
        return custom_fields.validate(entity, change)


@hookimpl
def clientela_entity_changed_precommit(change):
    from clientela.plugins.tailormade import automations, custom_fields, webhooks

    with custom_fields.plain_tenant():
        custom_fields.apply_defaults(change)
        webhooks.remember_subscriptions(change)
        automations.remember_rules(change)


@hookimpl
def clientela_entity_changed_postcommit(change):
    from clientela.plugins.tailormade import automations, custom_fields, webhooks

    with custom_fields.plain_tenant():
        # webhooks and rules are independent: one failing must not stop the other
        for react in (webhooks.on_entity_changed, automations.on_entity_changed):
            try:
                react(change)
            except Exception:
                log.exception("tailormade: %s failed for %s.%s", react.__module__,
                              change.entity_type, change.operation)


@hookimpl
def clientela_automation_actions(register):
    from clientela.plugins.tailormade import automations

    automations.register_actions(register)


@hookimpl
def clientela_attribute_types(entity_type):
    from clientela.plugins.tailormade import custom_fields

    return custom_fields.attribute_types(entity_type)


@hookimpl
def clientela_customer_profile(customer):
    from clientela.plugins.tailormade import custom_objects

    return custom_objects.profile_section(customer)


@hookimpl
def clientela_customer_export(customer):
    from clientela.plugins.tailormade import custom_objects, webhooks

    exported = {**(webhooks.export_for(customer) or {}),
                **(custom_objects.export_for(customer) or {})}
    return exported or None


@hookimpl
def clientela_customer_erase(customer):
    from clientela.plugins.tailormade import custom_objects, webhooks

    return {**webhooks.erase_for(customer), **custom_objects.erase_for(customer)}
from clientela.plugins.tailormade.web_hooks import *  # noqa: F401,F403,E402
