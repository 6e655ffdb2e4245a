"""The built-in channels (in person, phone, e-mail, letter, fax, web form, portal, chat, SMS)
and the check of the fields an interaction records for its channel."""

from __future__ import annotations

from typing import Any

from flask import current_app

from clientela.core import channels
from clientela.core.errors import ValidationError
from clientela.core.models import Interaction
from clientela.core.services import normalise_phone


def phone_region() -> str | None:
    """The region national numbers are read in (the core's ``PHONE_DEFAULT_REGION``)."""
    return current_app.config.get("PHONE_DEFAULT_REGION")


#: the built-in channels: key -> (label, fields, outbound)
BUILTIN_CHANNELS: dict[str, tuple[str, dict[str, str], bool]] = {
    "in_person": ("In person", {"location": "text", "attendees": "list"}, False),
    "phone": ("Phone call", {"number": "phone", "duration_seconds": "integer",
                             "recording_url": "text", "call_id": "text"}, False),
    "email": ("E-mail", {"message_id": "text", "in_reply_to": "text", "thread_id": "text",
                         "from": "text"}, True),
    "letter": ("Letter", {"postal_address": "text", "document_ref": "text"}, False),
    "fax": ("Fax", {"number": "phone", "pages": "integer", "document_ref": "text"}, False),
    "web_form": ("Web form", {"form": "text", "url": "text"}, False),
    "portal": ("Customer portal", {"portal_user_id": "text"}, False),
    "chat": ("Chat", {"conversation_id": "text", "handle": "text"}, False),
    "sms": ("SMS", {"number": "phone", "conversation_id": "text"}, False),
}


def validate_interaction(interaction: Interaction) -> dict[str, list[str]] | None:
    """Type-check the attributes an interaction records for its channel's fields.

    Fields are optional (a letter may be logged before it is scanned); present ones
    must have their channel's type. Channels nobody registered are not checked.
    """
    channel = channels.registry().get(interaction.channel)
    if channel is None:
        return None
    values = interaction.attributes or {}
    errors: dict[str, list[str]] = {}
    for field, type_ in channel.fields.items():
        if field not in values or values[field] is None:
            continue
        problem = _type_problem(values[field], type_)
        if problem:
            errors[f"attributes.{field}"] = [problem]
    return errors or None


def _type_problem(value: Any, type_: str) -> str | None:
    if type_ == "integer":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return "must be a whole number >= 0"
    elif type_ == "list":
        if not isinstance(value, list):
            return "must be a list"
    elif type_ == "phone":
        if not isinstance(value, str):
            return "must be a phone number"
        try:
            normalise_phone(value, phone_region())
        except ValidationError:
            return f"'{value}' is not a valid phone number"
    elif type_ == "text" and not isinstance(value, str):
        return "must be text"
    return None


def register_builtin_channels(register) -> None:
    for key, (label, fields, outbound) in BUILTIN_CHANNELS.items():
        register(key, label, fields=fields, outbound=outbound)


def record_on_channel(key: str, data: dict[str, Any], principal) -> Interaction:
    """Record an interaction on channel ``key`` with that channel's ``fields``.

    Unknown fields are refused, phone fields are stored in E.164, the others are
    type-checked (again by ``validate_interaction`` before commit). Permissions and
    record scope are the core's (``interactions:write`` on a customer you may see).
    """
    from clientela.core import customers

    channel = channels.registry().get(key)
    if channel is None:
        from clientela.core.errors import NotFound

        raise NotFound(f"no channel {key!r}")
    data = dict(data)
    values = dict(data.pop("fields", None) or {})
    errors = {f"fields.{name}": [f"not a field of the {key} channel; use "
                                 f"{', '.join(sorted(channel.fields)) or 'none'}"]
              for name in values if name not in channel.fields}
    for name, type_ in channel.fields.items():
        value = values.get(name)
        if value is None or f"fields.{name}" in errors:
            continue
        problem = _type_problem(value, type_)
        if problem:
            errors[f"fields.{name}"] = [problem]
        elif type_ == "phone":
            values[name] = normalise_phone(value, phone_region())
    if errors:
        raise ValidationError(errors)
    customer_id = data.pop("customer_id")
    data["channel"] = key
    data["attributes"] = {k: v for k, v in values.items() if v is not None}
    return customers.record_interaction(customer_id, data, principal)
