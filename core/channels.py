"""The channel registry, the consent question, and sending a message on a channel.

Channels are contributed by plugins through ``clientela_channels``; whether a customer
may be contacted is asked of every plugin through ``clientela_contact_allowed``; a
message goes out through the plugin that owns its channel (``clientela_send_message``),
or, for e-mail with no such plugin, through the application's mail driver.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from clientela.core import mail
from clientela.core.errors import ValidationError
from clientela.core.events import plugin_hooks

#: purposes that need a recorded permission (an explicit ``True``) to contact someone
CONSENT_REQUIRED = frozenset({"marketing"})


@dataclasses.dataclass(frozen=True)
class Channel:
    key: str
    label: str
    fields: dict[str, str]
    outbound: bool
    plugin: str

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "fields": dict(self.fields),
                "outbound": self.outbound, "plugin": self.plugin}


def registry() -> dict[str, Channel]:
    """Every registered channel, by key."""
    from clientela.core.app import current_clientela

    return dict(current_clientela().channels)


def contact_allowed(customer: Any, channel: str, purpose: str) -> bool:
    """Ask every plugin; any ``False`` forbids; no opinion forbids only marketing."""
    hook = plugin_hooks()
    answers = [] if hook is None else [
        a for a in hook.clientela_contact_allowed(customer=customer, channel=channel,
                                                  purpose=purpose) if a is not None
    ]
    if any(a is False for a in answers):
        return False
    if any(a is True for a in answers):
        return True
    return purpose not in CONSENT_REQUIRED


def send_message(message: dict[str, Any], customer: Any) -> dict[str, Any]:
    """Send ``message`` (see ``clientela_send_message``) to ``customer``.

    Returns ``{"status": "blocked", "reason": ...}`` without sending when the customer
    may not be contacted, else the owning plugin's answer, else (e-mail only) the core's
    own send through :mod:`clientela.core.mail`. Runs in the caller's transaction.
    """
    from clientela.core import services

    message = dict(message)
    channel = message.get("channel") or "email"
    purpose = message.get("purpose") or "service"
    message.update(channel=channel, purpose=purpose, customer_id=customer.id)
    if not contact_allowed(customer, channel, purpose):
        return {"status": "blocked", "reason": f"no {purpose} consent on {channel}"}
    if channel == "email" and not message.get("to"):
        message["to"] = customer.email
        if not message["to"]:
            return {"status": "blocked", "reason": "the customer has no e-mail address"}
    hook = plugin_hooks()
    answer = None if hook is None else hook.clientela_send_message(message=message)
    if answer is not None:
        return answer
    if channel != "email":
        raise ValidationError({"channel": [f"no installed plugin sends on {channel!r}"]})
    return send_email_directly(message, customer)


def send_email_directly(message: dict[str, Any], customer: Any) -> dict[str, Any]:
    """The core's own e-mail send (no plugin owns ``email``): mail driver + interaction."""
    from clientela.core import services

    purpose = message.get("purpose") or "service"
    email = mail.build_message(message["to"], message.get("subject") or "",
                               message.get("body") or "", html=message.get("html"),
                               headers=message.get("headers"))
    try:
        message_id = mail.send(email)
    except mail.MailError as exc:
        return {"status": "failed", "error": str(exc), "interaction_id": None,
                "message_id": None}
    interaction = services.record_interaction(
        customer.id, "email", direction="outbound", subject=message.get("subject") or "",
        body=message.get("body") or "", source=message.get("source"),
        external_id=message.get("external_id") or message_id,
        attributes={**(message.get("attributes") or {}), "message_id": message_id,
                    "to": message["to"], "purpose": purpose},
    )
    return {"status": "sent", "interaction_id": interaction.id, "message_id": message_id}


__all__ = ["CONSENT_REQUIRED", "Channel", "contact_allowed", "registry", "send_message"]
