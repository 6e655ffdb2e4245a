"""Collaborative CRM: every channel, e-mail in and out, calls, the communication centre, teams, consent, the self-service portal."""

from clientela.core import hookimpl
from clientela.plugins.collaborative.web_hooks import *  # noqa: F401,F403  (web UI pages)

name = "collaborative"
version = "0.1.0"
requires: tuple[str, ...] = ()

# --- channels, e-mail and calls (channels.py, services.py, api.py) -------------------------

MAIL_PERMISSIONS = {
    "mail:read": "see e-mail messages and threads (private mailboxes: their owner and "
                 "whom it is shared with only) and the mail templates",
    "mail:write": "send e-mail to customers, import .eml/mbox files, match unmatched mail",
    "mail:configure": "manage SMTP accounts, mailboxes, mail templates and inbound keys",
    "calls:read": "see calls and look up callers by number",
}


@hookimpl
def clientela_models(register):
    from clientela.plugins.collaborative.models import MODELS

    for model in MODELS:
        register(model)


@hookimpl
def clientela_config_defaults(register):
    register("COLLABORATIVE_UNKNOWN_SENDERS", "unmatched",
             "inbound mail from an address no customer has: 'unmatched' (kept in the "
             "unmatched messages), 'customer' (a new customer at stage lead) or 'lead' "
             "(kept unmatched, and offered to plugins as a lead: clientela_unknown_sender)")
    register("COLLABORATIVE_MAX_ATTACHMENT_BYTES", 10 * 1024 * 1024,
             "larger inbound attachments are listed but not stored")
    register("COLLABORATIVE_MAX_IMPORT_BYTES", 200 * 1024 * 1024,
             "the largest .eml/mbox file POST /mail/import reads")
    register("COLLABORATIVE_MESSAGING_DRIVER", "outbox",
             "outbound SMS/chat transport: 'outbox' ($CLIENTELA_HOME/outbox/messages.jsonl) "
             "or 'http' (a gateway at COLLABORATIVE_MESSAGING_URL)")
    register("COLLABORATIVE_MESSAGING_URL", "", "the SMS/chat gateway the http driver posts to")
    register("COLLABORATIVE_MESSAGING_TOKEN", "", "bearer token for that gateway")
    register("COLLABORATIVE_MESSAGING_TIMEOUT", 15, "seconds before the gateway is given up")
    register("COLLABORATIVE_IMAP_TIMEOUT", 30, "seconds before an IMAP server is given up")
    register("COLLABORATIVE_IMAP_BATCH", 500, "messages one poll reads from a mailbox at most")


@hookimpl
def clientela_permissions(register):
    for permission, description in MAIL_PERMISSIONS.items():
        register(permission, description)


@hookimpl
def clientela_roles(register):
    register("admin", list(MAIL_PERMISSIONS))
    register("manager", list(MAIL_PERMISSIONS))
    for role in ("sales", "service", "marketing"):
        register(role, ["mail:read", "mail:write", "calls:read"])
    register("analyst", ["mail:read", "calls:read"])


@hookimpl
def clientela_api_blueprints(register):
    from clientela.plugins.collaborative import api

    for blueprint in api.BLUEPRINTS:
        register(blueprint)


@hookimpl
def clientela_channels(register):
    from clientela.plugins.collaborative.channels import register_builtin_channels

    register_builtin_channels(register)


@hookimpl
def clientela_validate(entity):
    from clientela.core.models import Interaction

    if isinstance(entity, Interaction):
        from clientela.plugins.collaborative.channels import validate_interaction

        return validate_interaction(entity)
    return None


@hookimpl
def clientela_send_message(message):
    from clientela.plugins.collaborative import messaging, services

    if message.get("channel") in messaging.CHANNELS:
        return messaging.send(message)
    return services.send_on_account(message)


@hookimpl
def clientela_jobs(register):
    from clientela.plugins.collaborative import services

    register(services.poll_mailboxes_job, name="collaborative.poll_mailboxes", schedule=300)
    register(services.poll_mailbox_job, name="collaborative.poll_mailbox")


@hookimpl
def clientela_customer_merged_precommit(survivor, merged_id):
    from clientela.plugins.collaborative import services

    services.merge_into(survivor, merged_id)


@hookimpl
def clientela_customer_export(customer):
    from clientela.plugins.collaborative import services

    return services.export_for(customer)


@hookimpl
def clientela_customer_erase(customer):
    from clientela.plugins.collaborative import services

    return services.erase_for(customer)


# =============================================================================================
# Teams, communication centre, consent and customer portal (collab-portal half).
# Modules: teams, inbox, consent, portal, portal_api, collab_models, collab_api.
# =============================================================================================

PORTAL_PERMISSIONS = {
    "teams:read": "see teams and their members",
    "teams:write": "create, change and delete teams and their members",
    "inbox:read": "see the communication centre's items (own: assigned to you or mentioning "
                  "you; team: your teams' queues; all)",
    "inbox:write": "assign, change the status of, annotate and answer inbox items",
    "consents:read": "see customers' consent records",
    "consents:write": "record customers' consent decisions",
    "portal:manage": "invite customers to the self-service portal and manage their accounts",
}


@hookimpl(specname="clientela_models")
def portal_half_models(register):
    from clientela.plugins.collaborative.collab_models import MODELS

    for model in MODELS:
        register(model)


@hookimpl(specname="clientela_config_defaults")
def portal_half_config_defaults(register):
    register("COLLABORATIVE_PUBLIC_BASE_URL", "",
             "public base URL of unsubscribe links (default: the request's host)")
    register("COLLABORATIVE_PORTAL_URL", "",
             "base URL of the portal front end that invitation and login links open")
    register("COLLABORATIVE_PORTAL_INVITE_HOURS", 72, "how long an invitation link works")
    register("COLLABORATIVE_PORTAL_LINK_MINUTES", 15, "how long a one-time login link works")
    register("COLLABORATIVE_PORTAL_SESSION_HOURS", 12, "how long a portal session lasts")


@hookimpl(specname="clientela_jobs")
def portal_half_jobs(register):
    from clientela.plugins.collaborative import portal

    register(portal.purge_tokens, name="collaborative.purge_portal_tokens",
             schedule={"minute": "17", "hour": "3"})


@hookimpl(specname="clientela_permissions")
def portal_half_permissions(register):
    for permission, description in PORTAL_PERMISSIONS.items():
        register(permission, description)


@hookimpl(specname="clientela_roles")
def portal_half_roles(register):
    register("admin", list(PORTAL_PERMISSIONS))
    register("manager", list(PORTAL_PERMISSIONS))
    register("service", ["teams:read", ("inbox:read", "team"), ("inbox:write", "team"),
                         "consents:read", "consents:write", "portal:manage"])
    for role in ("sales", "marketing"):
        register(role, ["teams:read", ("inbox:read", "own"), ("inbox:write", "own"),
                        "consents:read", "consents:write"])
    register("analyst", ["teams:read", "consents:read"])


@hookimpl(specname="clientela_api_blueprints")
def portal_half_api_blueprints(register):
    from clientela.plugins.collaborative import collab_api

    for blueprint in collab_api.BLUEPRINTS:
        register(blueprint)


@hookimpl(specname="clientela_web_blueprints")
def portal_half_web_blueprints(register):
    from clientela.plugins.collaborative import portal_api

    register(portal_api.bp)
    register(portal_api.unsubscribe_bp)


@hookimpl(specname="clientela_team_members")
def portal_half_team_members(user_id):
    from clientela.plugins.collaborative import teams

    return teams.team_mates(user_id)


@hookimpl(specname="clientela_interaction_recorded_precommit")
def portal_half_interaction_recorded_precommit(entity, change):
    from clientela.plugins.collaborative import inbox

    inbox.item_for_interaction(entity)


@hookimpl(specname="clientela_contact_allowed")
def portal_half_contact_allowed(customer, channel, purpose):
    from clientela.plugins.collaborative import consent

    return consent.contact_allowed(customer, channel, purpose)


@hookimpl(specname="clientela_send_message")
def portal_half_send_message(message):
    if message.get("channel") != "portal":
        return None
    from clientela.plugins.collaborative import portal

    return portal.send_on_portal(message)


@hookimpl(specname="clientela_entity_changed_precommit")
def portal_half_entity_changed_precommit(change):
    if change.entity_type == "collaborative_consents" and change.operation != "insert":
        from clientela.core.errors import ValidationError

        raise ValidationError({"consent": ["consent records are append-only: record a new "
                                           "decision instead of changing or deleting one"]})


@hookimpl(specname="clientela_customer_merged_precommit")
def portal_half_customer_merged_precommit(survivor, merged_id):
    from clientela.plugins.collaborative import consent, inbox, portal

    for module in (consent, inbox, portal):
        module.merge_into(survivor.id, merged_id)


@hookimpl(specname="clientela_customer_export")
def portal_half_customer_export(customer):
    from clientela.plugins.collaborative import consent, inbox, portal

    return {"consents": consent.export_for(customer.id), "inbox": inbox.export_for(customer.id),
            "portal_account": portal.export_for(customer.id)}


@hookimpl(specname="clientela_customer_erase")
def portal_half_customer_erase(customer):
    from clientela.plugins.collaborative import consent, inbox, portal

    return {"portal_accounts_deleted": portal.erase_for(customer.id),
            "consent_notes_erased": consent.erase_for(customer.id), **inbox.erase_for(customer.id)}


# ===================================== end of collab-portal ==================================
