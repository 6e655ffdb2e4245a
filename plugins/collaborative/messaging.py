"""Outbound SMS and chat: a transport driver chosen by configuration.

The transport is a driver of the entry-point group ``clientela.drivers.messaging``, chosen
by ``COLLABORATIVE_MESSAGING_DRIVER``:

* ``outbox`` (the default, so that nothing leaves a fresh install) appends each message as
  a JSON line to ``$CLIENTELA_HOME/outbox/messages.jsonl``;
* ``http`` posts ``{"channel", "to", "text", "reference"}`` as JSON to
  ``COLLABORATIVE_MESSAGING_URL`` (an SMS/chat gateway, or a small adapter in front of a
  provider), with ``Authorization: Bearer COLLABORATIVE_MESSAGING_TOKEN`` when set; any 2xx
  answer is a send, and a JSON answer's ``id`` is kept as the provider's reference.

An integrator ships a provider's own driver in their distribution under the same group.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

from flask import current_app
from stevedore import DriverManager
from stevedore.exception import NoMatches

from clientela.core import services as core
from clientela.core.errors import ConfigurationError

DRIVER_GROUP = "clientela.drivers.messaging"
CHANNELS = ("sms", "chat")


class MessagingError(Exception):
    """The gateway did not take the message."""


class OutboxDriver:
    def send(self, payload: dict[str, Any], config) -> str | None:
        folder = os.path.join(config["HOME"], "outbox")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "messages.jsonl"), "a", encoding="utf-8") as handle:
            handle.write(json.dumps(payload) + "\n")
        return None


class HttpDriver:
    def send(self, payload: dict[str, Any], config) -> str | None:
        url = config.get("COLLABORATIVE_MESSAGING_URL")
        if not url:
            raise ConfigurationError("COLLABORATIVE_MESSAGING_URL is not set for the http "
                                     "messaging driver")
        headers = {"Content-Type": "application/json"}
        if config.get("COLLABORATIVE_MESSAGING_TOKEN"):
            headers["Authorization"] = f"Bearer {config['COLLABORATIVE_MESSAGING_TOKEN']}"
        request = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                         headers=headers, method="POST")
        timeout = float(config.get("COLLABORATIVE_MESSAGING_TIMEOUT") or 15)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body = response.read(65536)
        except urllib.error.HTTPError as exc:
            raise MessagingError(f"the gateway answered {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise MessagingError(f"the gateway could not be reached: {exc}") from None
        try:
            answer = json.loads(body or b"null")
        except ValueError:
            return None
        return str(answer["id"])[:200] if isinstance(answer, dict) and answer.get("id") else None


def driver():
    name = current_app.config.get("COLLABORATIVE_MESSAGING_DRIVER") or "outbox"
    try:
        return DriverManager(DRIVER_GROUP, name, invoke_on_load=True).driver
    except NoMatches:
        raise ConfigurationError(f"unknown messaging driver {name!r} "
                                 f"(COLLABORATIVE_MESSAGING_DRIVER): use 'outbox' or 'http'"
                                 ) from None


def _recipient(message: dict[str, Any], customer) -> str | None:
    if message.get("to"):
        return str(message["to"])
    if message["channel"] == "sms":
        return customer.phone
    # chat: the conversation the customer last wrote in
    from clientela.core.db import db
    from clientela.plugins.collaborative.models import ChannelMessage

    return db.session.execute(
        db.select(ChannelMessage.conversation_id).where(
            ChannelMessage.customer_id == customer.id, ChannelMessage.channel == "chat",
            ChannelMessage.conversation_id.is_not(None))
        .order_by(ChannelMessage.occurred_at.desc()).limit(1)).scalar_one_or_none()


def send(message: dict[str, Any]) -> dict[str, Any] | None:
    """``clientela_send_message`` for ``sms`` and ``chat``: the driver, then an outbound
    interaction on the customer's timeline. ``None`` for other channels."""
    if message.get("channel") not in CHANNELS:
        return None
    from clientela.core.db import db
    from clientela.core.models import Interaction

    source, external_id = message.get("source"), message.get("external_id")
    if source and external_id:
        done = db.session.execute(db.select(Interaction).where(
            Interaction.source == source, Interaction.external_id == external_id)
        ).scalar_one_or_none()
        if done is not None:
            return {"status": "sent", "interaction_id": done.id,
                    "message_id": (done.attributes or {}).get("reference"), "error": None}
    customer = core.get_customer(message["customer_id"])
    to = _recipient(message, customer)
    if not to:
        return {"status": "blocked", "reason": f"no {message['channel']} address for the "
                                               f"customer", "interaction_id": None}
    text = message.get("body") or ""
    config = {**current_app.config}
    payload = {"channel": message["channel"], "to": to, "text": text,
               "reference": external_id or None}
    try:
        reference = driver().send(payload, config)
    except MessagingError as exc:
        return {"status": "failed", "error": str(exc), "interaction_id": None,
                "message_id": None}
    interaction = core.record_interaction(
        customer.id, message["channel"], direction="outbound", subject=message.get("subject")
        or "", body=text, source=source, external_id=external_id,
        attributes={**(message.get("attributes") or {}), "to": to, "reference": reference,
                    "purpose": message.get("purpose")})
    return {"status": "sent", "interaction_id": interaction.id, "message_id": reference,
            "error": None}


def send_to_customer(customer_id, data: dict[str, Any], principal) -> dict[str, Any]:
    """Staff send an SMS or chat message to a customer they may see (through
    ``clientela.core.channels.send_message``, which asks consent first)."""
    from clientela.core import access, channels, customers

    access.require(principal, "mail:write")
    access.require(principal, "interactions:write")
    customer = customers.get_customer(customer_id, principal)
    return channels.send_message({"channel": data["channel"], "body": data["body"],
                                  "to": data.get("to"), "purpose": data["purpose"]}, customer)
