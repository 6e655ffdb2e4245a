"""Collaborative CRM: every channel, e-mail in and out, calls, the communication centre, teams, consent, the self-service portal."""

from clientela.core import hookimpl

name = "collaborative"
version = "0.1.0"
requires: tuple[str, ...] = ()

# --- channels, e-mail and calls (channels.py, services.py, api.py) ---------------------------

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
             "unmatched messages) or 'customer' (a new customer at stage lead)")
    register("COLLABORATIVE_MAX_ATTACHMENT_BYTES", 10 * 1024 * 1024,
             "larger inbound attachments are listed but not stored")
    register("COLLABORATIVE_MAX_IMPORT_BYTES", 200 * 1024 * 1024,
             "the largest .eml/mbox file POST /mail/import reads")
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
    from clientela.plugins.collaborative import services

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
