"""The core's mail drivers, the channel registry and the consent question."""

from __future__ import annotations

import contextlib
import email
import os

import pytest

from clientela.core import channels, hookimpl, mail, services
from clientela.core.db import db
from clientela.core.errors import ConfigurationError
from clientela.core.models import Interaction


def test_smtp_driver_delivers_to_a_real_server(app_ctx, clientela_smtp):
    clientela_smtp.configure(app_ctx)
    message = mail.build_message("ada@example.com", "Hello", "Body text", html="<p>Body</p>")
    message_id = mail.send(message)
    assert len(clientela_smtp.messages) == 1
    received = clientela_smtp.messages[0]
    assert received["Message-ID"] == message_id
    assert received["To"] == "ada@example.com"
    assert received.get_body(("plain",)).get_content().strip() == "Body text"


def test_an_unreachable_smtp_server_is_a_mail_error(app_ctx, clientela_smtp):
    port = clientela_smtp.port
    clientela_smtp.stop()
    with pytest.raises(mail.MailError, match=str(port)):
        mail.send_smtp(mail.build_message("a@example.com", "s", "b"), host="127.0.0.1",
                       port=port, security="none", timeout=5)


def test_outbox_driver_writes_eml_files(tmp_path):
    message = mail.EmailMessage()
    message["Subject"], message["To"] = "S", "b@example.com"
    message.set_content("B")
    message_id = mail.OutboxDriver().send(message, {"HOME": str(tmp_path)})
    files = os.listdir(tmp_path / "outbox")
    assert len(files) == 1
    parsed = email.message_from_bytes((tmp_path / "outbox" / files[0]).read_bytes())
    assert parsed["Message-ID"] == message_id and parsed["Subject"] == "S"


def test_unknown_driver_is_a_configuration_error(app_ctx):
    with pytest.raises(ConfigurationError, match="unknown mail driver 'pigeon'"):
        mail.driver("pigeon")


class Opinion:
    def __init__(self, answer):
        self.answer = answer

    @hookimpl
    def clientela_contact_allowed(self, customer, channel, purpose):
        return self.answer


@contextlib.contextmanager
def opinions(app, *answers):
    """Register plugins answering the consent question, and only them."""
    pm = app.extensions["clientela"].plugins.pm
    # keep each plugin's name: the core keys plugins' answers by it (export, erase)
    hidden = [(impl.plugin, impl.plugin_name)
              for impl in pm.hook.clientela_contact_allowed.get_hookimpls()]
    for plugin, _ in hidden:
        pm.unregister(plugin)
    added = [Opinion(a) for a in answers]
    for plugin in added:
        pm.register(plugin)
    try:
        yield
    finally:
        for plugin in added:
            pm.unregister(plugin)
        for plugin, name in hidden:
            pm.register(plugin, name=name)


def test_consent_rules(app_ctx, tenant):
    customer = services.create_customer({"first_name": "Ada", "email": "ada@example.com"})
    with opinions(app_ctx):
        assert channels.contact_allowed(customer, "email", "marketing") is False
        assert channels.contact_allowed(customer, "email", "service") is True
    with opinions(app_ctx, True, None):
        assert channels.contact_allowed(customer, "email", "marketing") is True
    with opinions(app_ctx, True, False):
        assert channels.contact_allowed(customer, "email", "service") is False


def test_blocked_marketing_sends_nothing(app_ctx, tenant, clientela_smtp):
    clientela_smtp.configure(app_ctx)
    customer = services.create_customer({"first_name": "Ada", "email": "ada@example.com"})
    with opinions(app_ctx, False):
        result = channels.send_message({"subject": "Offer", "body": "Buy",
                                        "purpose": "marketing"}, customer)
    assert result["status"] == "blocked"
    assert clientela_smtp.messages == []


def test_the_core_sends_email_itself_and_records_the_interaction(app_ctx, tenant,
                                                                  clientela_smtp):
    clientela_smtp.configure(app_ctx)
    customer = services.create_customer({"first_name": "Ada", "email": "ada@example.com"})
    result = channels.send_email_directly(
        {"subject": "Your case", "body": "Solved", "to": "ada@example.com"}, customer)
    db.session.commit()
    assert result["status"] == "sent"
    assert [m["To"] for m in clientela_smtp.messages] == ["ada@example.com"]
    interaction = db.session.get(Interaction, (tenant.id, result["interaction_id"]))
    assert (interaction.direction, interaction.channel) == ("outbound", "email")
    assert interaction.attributes["message_id"] == result["message_id"]
