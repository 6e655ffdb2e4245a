"""Outbound e-mail transport: a driver chosen by configuration.

The transport is a driver of the entry-point group ``clientela.drivers.mail``, chosen by
``MAIL_DRIVER``:

* ``smtp`` sends through ``MAIL_SMTP_HOST``/``MAIL_SMTP_PORT`` with ``MAIL_SMTP_SECURITY``
  ``starttls`` (default), ``ssl`` or ``none``, and ``MAIL_SMTP_USERNAME``/``PASSWORD``;
* ``outbox`` (the default, so that a fresh on-premise install sends nothing by accident)
  writes each message as an ``.eml`` file into ``$CLIENTELA_HOME/outbox``.

Plugins with per-tenant settings (the collaborative plugin's SMTP accounts) call
:func:`send_smtp` with their own settings rather than the application's.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import uuid
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any, Protocol

from flask import current_app
from stevedore import DriverManager
from stevedore.exception import NoMatches

from clientela.core.errors import ConfigurationError

DRIVER_GROUP = "clientela.drivers.mail"

DEFAULTS: dict[str, Any] = {
    "MAIL_DRIVER": "outbox",
    "MAIL_FROM": "clientela@localhost",
    "MAIL_SMTP_HOST": "localhost",
    "MAIL_SMTP_PORT": 25,
    "MAIL_SMTP_SECURITY": "starttls",  # starttls | ssl | none
    "MAIL_SMTP_USERNAME": None,
    "MAIL_SMTP_PASSWORD": None,
    "MAIL_SMTP_TIMEOUT": 30,
}


class MailError(Exception):
    """The message could not be handed to the transport."""


class MailDriver(Protocol):
    def send(self, message: EmailMessage, config: dict[str, Any]) -> str: ...


def send_smtp(message: EmailMessage, *, host: str, port: int, security: str = "starttls",
              username: str | None = None, password: str | None = None,
              timeout: float = 30) -> str:
    """Send one message over SMTP; returns its Message-ID. Raises :class:`MailError`."""
    if security not in ("starttls", "ssl", "none"):
        raise ConfigurationError(f"SMTP security {security!r}: use starttls, ssl or none")
    if not message.get("Message-ID"):
        message["Message-ID"] = make_msgid(domain=(message.get("From") or "x@localhost")
                                           .rpartition("@")[2].strip("> ") or "localhost")
    try:
        if security == "ssl":
            client = smtplib.SMTP_SSL(host, port, timeout=timeout,
                                      context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        with client:
            if security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if username:
                client.login(username, password or "")
            client.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        raise MailError(f"SMTP {host}:{port}: {exc}") from exc
    return str(message["Message-ID"])


class SmtpDriver:
    def send(self, message: EmailMessage, config: dict[str, Any]) -> str:
        return send_smtp(message, host=config["MAIL_SMTP_HOST"],
                         port=int(config["MAIL_SMTP_PORT"]),
                         security=config["MAIL_SMTP_SECURITY"],
                         username=config["MAIL_SMTP_USERNAME"],
                         password=config["MAIL_SMTP_PASSWORD"],
                         timeout=float(config["MAIL_SMTP_TIMEOUT"]))


class OutboxDriver:
    """Writes ``$CLIENTELA_HOME/outbox/<message id>.eml``; nothing leaves the machine."""

    def send(self, message: EmailMessage, config: dict[str, Any]) -> str:
        if not message.get("Message-ID"):
            message["Message-ID"] = make_msgid(domain="localhost")
        folder = os.path.join(config["HOME"], "outbox")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"{uuid.uuid4().hex}.eml")
        with open(path, "wb") as handle:
            handle.write(bytes(message))
        return str(message["Message-ID"])


def driver(name: str | None = None) -> MailDriver:
    name = name or current_app.config.get("MAIL_DRIVER") or DEFAULTS["MAIL_DRIVER"]
    try:
        return DriverManager(DRIVER_GROUP, name, invoke_on_load=True).driver
    except NoMatches:
        raise ConfigurationError(f"unknown mail driver {name!r} (MAIL_DRIVER): "
                                 f"use 'smtp' or 'outbox'") from None


def build_message(to: str, subject: str, body: str, *, sender: str | None = None,
                  html: str | None = None, headers: dict[str, str] | None = None
                  ) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender or current_app.config.get("MAIL_FROM") or DEFAULTS["MAIL_FROM"]
    message["To"] = to
    message["Subject"] = subject
    for key, value in (headers or {}).items():
        message[key] = value
    message.set_content(body)
    if html:
        message.add_alternative(html, subtype="html")
    return message


def send(message: EmailMessage) -> str:
    """Send through the application's driver; returns the Message-ID."""
    config = {**DEFAULTS, **{k: v for k, v in current_app.config.items() if k in DEFAULTS}}
    config["HOME"] = current_app.config["HOME"]
    return driver(config["MAIL_DRIVER"]).send(message, config)


__all__ = ["DEFAULTS", "MailError", "build_message", "driver", "send", "send_smtp"]
