"""The collaborative plugin's channels, e-mail in and out, and calls, through HTTP.

Real servers: SMTP (aiosmtpd, the ``clientela_smtp`` fixture) and IMAP (pymap, a pure
Python IMAP4rev1 server, started here in a subprocess); jobs run through the real queue.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import imaplib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from email.message import EmailMessage

import pytest
import sqlalchemy as sa

from clientela.core import jobs, tenancy
from clientela.core.db import db
from clientela.core.models import Customer, Interaction
from clientela.plugins.collaborative.models import MailAccount, Mailbox, MailMessage

KEY = "X-Clientela-Key"


# --- helpers ----------------------------------------------------------------------------


def eml(sender: str, subject: str, body: str = "Hello", *, to: str = "support@shop.example",
        message_id: str | None = None, in_reply_to: str | None = None,
        references: list[str] | None = None, attachments=()) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = "Mon, 23 Nov 2026 10:00:00 +0100"
    message["Message-ID"] = message_id or f"<{uuid.uuid4().hex}@mail.example>"
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = " ".join(references)
    message.set_content(body)
    for filename, payload in attachments:
        message.add_attachment(payload, maintype="application", subtype="pdf",
                               filename=filename)
    return bytes(message)


def import_eml(api, raw: bytes, role="admin", **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return api.client.post(f"/api/v1/mail/import?{query}", data=raw,
                           headers={**api.headers(role), "Content-Type": "message/rfc822"})


def messages(api, role="admin", **filters) -> list[dict]:
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    response = api.get(f"/api/v1/mail/messages?page_size=100&{query}", role=role)
    assert response.status_code == 200, response.json
    return response.json


def make_key(api, scope: str) -> str:
    response = api.post("/api/v1/inbound-keys", json={"name": f"{scope} hook", "scope": scope})
    assert response.status_code == 201, response.json
    return response.json["key"]


@contextlib.contextmanager
def config(app, **values):
    saved = {k: app.config.get(k) for k in values}
    app.config.update(values)
    try:
        yield
    finally:
        app.config.update(saved)


def run_jobs(app, tenant_id, name: str) -> list[str]:
    """Run the tenant's queued jobs called ``name`` now, in this thread, as a consumer would."""
    db.session.rollback()
    with tenancy.tenant_context(tenant_id):
        ids = db.session.execute(sa.select(jobs.Job.id).where(
            jobs.Job.name == name, jobs.Job.status == "queued")
            .order_by(jobs.Job.created_at)).scalars().all()
    db.session.rollback()
    return [jobs.queue_for(app).run(tenant_id, job_id) for job_id in ids]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- channels ---------------------------------------------------------------------------


def test_channel_registry_lists_the_builtin_channels_with_their_fields(api):
    response = api.get("/api/v1/channels", role="sales")
    assert response.status_code == 200
    found = {c["key"]: c for c in response.json}
    assert set(found) >= {"in_person", "phone", "email", "letter", "fax", "web_form",
                          "portal", "chat", "sms"}
    assert found["letter"]["fields"] == {"postal_address": "text", "document_ref": "text"}
    assert found["phone"]["fields"]["duration_seconds"] == "integer"
    assert found["phone"]["fields"]["number"] == "phone"
    assert found["email"]["outbound"] is True and found["letter"]["outbound"] is False
    assert {c["plugin"] for c in response.json} == {"collaborative"}


def test_recording_on_a_channel_checks_its_fields(api, other_api, app):
    customer = api.customer(first_name="Lettie")
    url = "/api/v1/channels/letter/interactions"
    bad = api.post(url, json={"customer_id": customer["id"], "fields": {
        "postal_address": 12, "stamp": "blue"}}, role="sales")
    assert bad.status_code == 422
    assert set(bad.json["errors"]["json"]) == {"fields.postal_address", "fields.stamp"}
    good = api.post(url, json={"customer_id": customer["id"], "subject": "Complaint letter",
                               "fields": {"postal_address": "Via Roma 1, 20100 Milano",
                                          "document_ref": "scan-2026-001.pdf"}}, role="sales")
    assert good.status_code == 201, good.json
    assert good.json["channel"] == "letter"
    assert good.json["fields"]["document_ref"] == "scan-2026-001.pdf"
    with config(app, PHONE_DEFAULT_REGION="IT"):
        call = api.post("/api/v1/channels/phone/interactions", json={
            "customer_id": customer["id"], "direction": "outbound",
            "fields": {"number": "02 1234 5678", "duration_seconds": 95}})
        assert call.status_code == 201, call.json
        assert call.json["fields"]["number"] == "+390212345678"
        wrong = api.post("/api/v1/channels/phone/interactions", json={
            "customer_id": customer["id"], "fields": {"duration_seconds": "long"}})
        assert wrong.status_code == 422
    assert api.post("/api/v1/channels/pigeon/interactions",
                    json={"customer_id": customer["id"]}).status_code == 404
    # another tenant cannot record on this customer through the channel endpoint
    assert other_api.post(url, json={"customer_id": customer["id"]}).status_code == 404


def test_every_interaction_is_checked_by_clientela_validate(api, app):
    from clientela.core import services
    from clientela.core.errors import ValidationError

    customer = api.customer(first_name="Val")
    with app.app_context(), tenancy.tenant_context(api.tenant.id):
        services.record_interaction(uuid.UUID(customer["id"]), "phone",
                                    attributes={"duration_seconds": 30})
        with pytest.raises(ValidationError) as caught:
            services.record_interaction(uuid.UUID(customer["id"]), "phone",
                                        attributes={"duration_seconds": -4})
            db.session.flush()
            db.session.commit()
        assert "attributes.duration_seconds" in caught.value.errors
        db.session.rollback()


# --- outbound e-mail --------------------------------------------------------------------


def test_mail_account_password_is_encrypted_at_rest_and_never_returned(api, app):
    created = api.post("/api/v1/mail-accounts", json={
        "name": "Office", "host": "smtp.example", "port": 587, "username": "office",
        "password": "s3cret-passw0rd", "from_address": "office@shop.example"})
    assert created.status_code == 201, created.json
    assert "password" not in created.json and created.json["has_password"] is True
    listed = api.get("/api/v1/mail-accounts").json
    assert all("password" not in a and "password_encrypted" not in a for a in listed)
    assert b"s3cret" not in api.get(f"/api/v1/mail-accounts/{created.json['id']}").data
    with tenancy.tenant_context(api.tenant.id):
        raw = db.session.execute(sa.text(
            "SELECT password_encrypted FROM collaborative_mail_accounts WHERE id = :id"),
            {"id": uuid.UUID(created.json["id"]).hex if db.engine.dialect.name == "sqlite"
             else created.json["id"]}).scalar_one()
        from clientela.plugins.collaborative import services

        assert "s3cret" not in raw and raw.startswith("gAAAA")  # a Fernet token
        assert services.decrypt(raw) == "s3cret-passw0rd"
        # the audit trail does not keep the ciphertext either
        from clientela.core.models import AuditEvent

        (event,) = db.session.execute(sa.select(AuditEvent).where(
            AuditEvent.entity_type == "collaborative_mail_accounts")).scalars().all()
        assert event.changes["password_encrypted"] == [None, "[redacted]"]
    db.session.rollback()
    # the marketing role may send mail but not read the accounts
    assert api.get("/api/v1/mail-accounts", role="marketing").status_code == 403


def test_outbound_mail_goes_through_the_tenant_account_and_threads(api, app, clientela_smtp):
    account = api.post("/api/v1/mail-accounts", json={
        "name": "Support", "from_address": "support@shop.example", "from_name": "Shop Support",
        **clientela_smtp.settings})
    assert account.status_code == 201 and account.json["is_default"] is True
    template = api.post("/api/v1/mail-templates", json={
        "name": "welcome", "subject": "Welcome, {{ customer.first_name }}!",
        "body": "Dear {{ customer.display_name }}, your code is {{ data.code }}. "
                "{{ sender.email }}"})
    assert template.status_code == 201, template.json
    customer = api.customer(first_name="Maria", last_name="Rossi", email="maria@rossi.example")
    sent = api.post(f"/api/v1/customers/{customer['id']}/emails", role="sales", json={
        "template_id": template.json["id"], "data": {"code": "X-42"}})
    assert sent.status_code == 201, sent.json
    assert sent.json["status"] == "sent"
    (delivered,) = clientela_smtp.messages
    assert delivered["To"] == "maria@rossi.example"
    assert "support@shop.example" in delivered["From"]
    assert delivered["Subject"] == "Welcome, Maria!"
    text = delivered.get_body(("plain",)).get_content()
    assert "Dear Maria Rossi, your code is X-42." in text
    assert f"sales@{api.tenant.slug}.example" in text
    assert delivered["Message-ID"] == sent.json["message_id"]
    # the outbound interaction and message are recorded with the Message-ID
    timeline = api.get(f"/api/v1/interactions?customer_id={customer['id']}").json
    (outbound,) = [i for i in timeline if i["channel"] == "email"]
    assert outbound["direction"] == "outbound" and outbound["id"] == sent.json["interaction_id"]
    (first,) = messages(api, customer_id=customer["id"])
    assert first["message_id"] == sent.json["message_id"] and first["direction"] == "outbound"

    # the customer answers (webhook), and we answer that: one thread of three
    key = make_key(api, "mail")
    reply = api.client.post("/api/v1/mail/inbound", headers={KEY: key}, json={
        "from": "Maria Rossi <MARIA@rossi.example>", "to": ["support@shop.example"],
        "subject": "Re: Welcome, Maria!", "text": "Thanks! One question...",
        "message_id": "<answer-1@rossi.example>", "in_reply_to": sent.json["message_id"],
        "references": [sent.json["message_id"]]})
    assert reply.status_code == 201, reply.json
    assert reply.json["status"] == "matched" and reply.json["customer_id"] == customer["id"]
    assert reply.json["thread_id"] == first["thread_id"]
    answer = api.post(f"/api/v1/customers/{customer['id']}/emails", role="sales", json={
        "reply_to": reply.json["id"], "body": "Here is the answer."})
    assert answer.status_code == 201, answer.json
    second = clientela_smtp.messages[1]
    assert second["Subject"] == "Re: Welcome, Maria!"
    assert second["In-Reply-To"] == "<answer-1@rossi.example>"
    assert second["References"].split() == [sent.json["message_id"], "<answer-1@rossi.example>"]
    thread = api.get(f"/api/v1/mail/threads/{first['thread_id']}").json
    assert [m["direction"] for m in thread] == ["outbound", "inbound", "outbound"]
    # a customer address that is not theirs is refused
    stray = api.post(f"/api/v1/customers/{customer['id']}/emails", json={
        "to": "someone@else.example", "subject": "x", "body": "y"})
    assert stray.status_code == 422 and "to" in stray.json["errors"]["json"]


def test_without_an_account_the_core_mail_driver_sends(api, app, clientela_smtp):
    clientela_smtp.configure(app)
    customer = api.customer(first_name="Core", email="core@driver.example")
    sent = api.post(f"/api/v1/customers/{customer['id']}/emails",
                    json={"subject": "Hi", "body": "via the app's driver"})
    assert sent.status_code == 201, sent.json
    (delivered,) = clientela_smtp.messages
    assert delivered["To"] == "core@driver.example"
    with tenancy.tenant_context(api.tenant.id):
        interaction = db.session.get(Interaction, (api.tenant.id,
                                                   uuid.UUID(sent.json["interaction_id"])))
        assert interaction.direction == "outbound" and interaction.channel == "email"
    db.session.rollback()


def test_a_refused_smtp_send_is_a_502_and_records_nothing(api):
    api.post("/api/v1/mail-accounts", json={"name": "Down", "host": "127.0.0.1",
                                            "port": free_port(), "security": "none",
                                            "from_address": "down@shop.example"})
    customer = api.customer(first_name="Nobody", email="nobody@example.com")
    response = api.post(f"/api/v1/customers/{customer['id']}/emails",
                        json={"subject": "Hi", "body": "lost"})
    assert response.status_code == 502 and response.json["status"] == 502
    assert api.get(f"/api/v1/interactions?customer_id={customer['id']}").json == []


def test_marketing_mail_needs_consent_and_templates_are_sandboxed(api, clientela_smtp):
    api.post("/api/v1/mail-accounts", json={"name": "M", "from_address": "m@shop.example",
                                            **clientela_smtp.settings})
    customer = api.customer(first_name="Ann", email="ann@example.com")
    blocked = api.post(f"/api/v1/customers/{customer['id']}/emails", json={
        "subject": "Sale!", "body": "50% off", "purpose": "marketing"})
    assert blocked.status_code == 409
    evil = api.post("/api/v1/mail-templates", json={
        "name": "evil", "subject": "x",
        "body": "{{ ''.__class__.__mro__[1].__subclasses__() }}"})
    assert evil.status_code == 201
    response = api.post(f"/api/v1/customers/{customer['id']}/emails",
                        json={"template_id": evil.json["id"]})
    assert response.status_code == 422
    assert "unsafe" in str(response.json["errors"])
    broken = api.post("/api/v1/mail-templates", json={"name": "b", "subject": "{{ oops",
                                                      "body": "x"})
    assert broken.status_code == 422 and "subject" in broken.json["errors"]["json"]
    assert clientela_smtp.messages == []


# --- inbound e-mail ---------------------------------------------------------------------


def test_imported_eml_and_mbox_thread_and_match_by_any_customer_address(api, other_api, app):
    customer = api.customer(first_name="Luca", email="luca@main.example",
                            emails=[{"label": "work", "value": "Luca.B@work.example"}])
    first = eml("Luca B <luca.b@work.example>", "Broken order", message_id="<q1@work.example>",
                attachments=[("invoice.pdf", b"%PDF-1.4 invoice")])
    response = import_eml(api, first, filename="q1.eml")
    assert response.status_code == 201, response.json
    assert response.json["imported"] == 1 and response.json["matched"] == 1
    (message,) = messages(api, customer_id=customer["id"])
    assert message["from_address"] == "luca.b@work.example"
    assert message["status"] == "matched" and message["interaction_id"]
    (attachment,) = message["attachments"]
    assert attachment["stored"] is True and attachment["filename"] == "invoice.pdf"
    download = api.get(f"/api/v1/mail/messages/{message['id']}/attachments/0")
    assert download.status_code == 200 and download.data == b"%PDF-1.4 invoice"
    assert other_api.get(f"/api/v1/mail/messages/{message['id']}/attachments/0").status_code \
        == 404
    # the file lives in the tenant's own folder under CLIENTELA_HOME
    folder = os.path.join(app.config["HOME"], "tenants", str(api.tenant.id), "files", "mail",
                          message["id"])
    assert os.listdir(folder) == ["0-invoice.pdf"]

    # an mbox: a reply (References only) from the main address, and a stranger's message
    reply = eml("luca@main.example", "Re: Broken order", message_id="<q2@main.example>",
                references=["<q1@work.example>"])
    stranger = eml("Who Ever <who@nowhere.example>", "Prices?", message_id="<s1@nowhere.example>")
    mbox = b"".join(b"From someone@example Mon Nov 23 10:00:00 2026\n" + m.replace(b"\r\n", b"\n")
                    + b"\n" for m in (reply, stranger))
    report = import_eml(api, mbox, filename="export.mbox").json
    assert report["format"] == "mbox" and report["imported"] == 2
    assert report["matched"] == 1 and report["unmatched"] == 1
    thread = api.get(f"/api/v1/mail/threads/{message['thread_id']}").json
    assert [m["message_id"] for m in thread] == ["<q1@work.example>", "<q2@main.example>"]
    (unmatched,) = messages(api, status="unmatched")
    assert unmatched["from_address"] == "who@nowhere.example" and unmatched["customer_id"] is None
    # the same file again: nothing twice
    again = import_eml(api, mbox, filename="export.mbox").json
    assert again["imported"] == 0 and again["duplicates"] == 2
    with tenancy.tenant_context(api.tenant.id):
        count = db.session.execute(sa.select(sa.func.count()).select_from(Interaction).where(
            Interaction.customer_id == uuid.UUID(customer["id"]))).scalar()
    db.session.rollback()
    assert count == 2
    # an unmatched message can be given to a customer by hand
    matched = api.post(f"/api/v1/mail/messages/{unmatched['id']}/match",
                       json={"customer_id": customer["id"]})
    assert matched.status_code == 200 and matched.json["status"] == "matched"


def test_attachments_over_the_size_limit_are_listed_not_stored(api, app):
    api.customer(first_name="Big", email="big@example.com")
    with config(app, COLLABORATIVE_MAX_ATTACHMENT_BYTES=10):
        report = import_eml(api, eml("big@example.com", "Scan", attachments=[
            ("small.pdf", b"tiny"), ("large.pdf", b"x" * 11)])).json
    (message,) = messages(api, status="matched")
    small, large = message["attachments"]
    assert report["imported"] == 1
    assert small["stored"] is True
    assert large["stored"] is False and "limit" in large["reason"] and large["size"] == 11
    assert api.get(f"/api/v1/mail/messages/{message['id']}/attachments/1").status_code == 404


def test_overlong_message_ids_are_stored_and_still_thread(api):
    long_id = "<" + "x" * 600 + "@mail.example>"
    api.customer(first_name="Long", email="long@example.com")
    assert import_eml(api, eml("long@example.com", "One", message_id=long_id)).status_code == 201
    reply = import_eml(api, eml("long@example.com", "Two", in_reply_to=long_id))
    assert reply.status_code == 201, reply.json
    one, two = sorted(messages(api), key=lambda m: m["subject"])
    assert one["thread_id"] == two["thread_id"] and len(one["message_id"]) < 100
    again = import_eml(api, eml("long@example.com", "One", message_id=long_id)).json
    assert again["duplicates"] == 1


def test_unknown_senders_become_customers_at_stage_lead_when_configured(api, app):
    with config(app, COLLABORATIVE_UNKNOWN_SENDERS="customer"):
        report = import_eml(api, eml("New Person <new@prospect.example>", "Interested")).json
    assert report["matched"] == 1
    found = api.get("/api/v1/customers?q=new@prospect.example").json
    assert [(c["display_name"], c["stage"]) for c in found] == [("New Person", "lead")]


def test_unknown_senders_become_leads_when_configured(api, app):
    """``lead`` mode: the message stays unmatched, the operational plugin captures a lead,
    and a second message from the same address joins that lead instead of a new one."""
    with config(app, COLLABORATIVE_UNKNOWN_SENDERS="lead"):
        first = import_eml(api, eml("Nadia Verdi <nadia@prospect.example>", "Quote please"))
        again = import_eml(api, eml("Nadia Verdi <nadia@prospect.example>", "Any news?"))
    assert first.json["matched"] == 0 and again.json["matched"] == 0
    leads = api.get("/api/v1/leads?q=nadia@prospect.example").json
    assert [(l["first_name"], l["last_name"], l["source"]) for l in leads] == [
        ("Nadia", "Verdi", "email")]
    assert "Quote please" in leads[0]["message"]
    assert api.get("/api/v1/customers?q=nadia@prospect.example").json == []


def test_the_inbound_webhook_needs_a_mail_key_of_the_tenant(api, other_api):
    customer = api.customer(first_name="Hook", email="hook@example.com")
    body = {"from": "hook@example.com", "subject": "Hi", "text": "by webhook",
            "to": ["Support <support@shop.example>"], "date": "2026-11-23T10:00:00+01:00",
            "attachments": [{"filename": "a.txt", "content_type": "text/plain",
                             "content": base64.b64encode(b"attached").decode()}]}
    client = api.client
    assert client.post("/api/v1/mail/inbound", json=body).status_code == 401
    assert client.post("/api/v1/mail/inbound", json=body,
                       headers={KEY: "nonsense"}).status_code == 401
    calls_key = make_key(api, "calls")
    assert client.post("/api/v1/mail/inbound", json=body,
                       headers={KEY: calls_key}).status_code == 401
    # a user token is no key
    assert client.post("/api/v1/mail/inbound", json=body,
                       headers=api.headers()).status_code == 401
    key = make_key(api, "mail")
    ok = client.post("/api/v1/mail/inbound", json=body, headers={KEY: key})
    assert ok.status_code == 201, ok.json
    assert ok.json["customer_id"] == customer["id"]
    (message,) = messages(api, customer_id=customer["id"])
    assert message["attachments"][0]["filename"] == "a.txt"
    assert message["to"] == ["support@shop.example"]
    assert message["sent_at"].startswith("2026-11-23T09:00:00")
    raw = client.post("/api/v1/mail/inbound", headers={KEY: key}, json={
        "raw": eml("hook@example.com", "raw MIME", message_id="<raw-1@example.com>").decode()})
    assert raw.status_code == 201 and raw.json["status"] == "matched"
    assert client.post("/api/v1/mail/inbound", headers={KEY: key},
                       json={"subject": "no sender"}).status_code == 422

    # tenant B's key files mail in B only, even for an address A knows
    other_key = make_key(other_api, "mail")
    crossed = client.post("/api/v1/mail/inbound", headers={KEY: other_key}, json=body)
    assert crossed.status_code == 201 and crossed.json["status"] == "unmatched"
    assert len(messages(api)) == 2
    assert [m["id"] for m in messages(other_api)] == [crossed.json["id"]]
    # B's secret under A's tenant prefix is no key of A's
    forged = api.tenant.id.hex + other_key[32:]
    assert client.post("/api/v1/mail/inbound", headers={KEY: forged},
                       json=body).status_code == 401
    # a revoked key stops working
    (listed,) = [k for k in api.get("/api/v1/inbound-keys").json if k["scope"] == "mail"]
    assert "key" not in listed and key.startswith(api.tenant.id.hex)
    assert api.delete(f"/api/v1/inbound-keys/{listed['id']}").status_code == 204
    assert client.post("/api/v1/mail/inbound", headers={KEY: key}, json=body).status_code == 401


def test_inbound_messages_are_offered_to_plugins_with_their_thread(api, app):
    from clientela.core import hookimpl

    seen = []

    class CaseOpener:
        @staticmethod
        @hookimpl
        def clientela_inbound_message(interaction, thread):
            seen.append((interaction.subject, [i.subject for i in thread]))
            return {"type": "case", "id": "case-1", "created": not thread}

    customer = api.customer(first_name="Case", email="case@example.com")
    pm = app.extensions["clientela"].plugins.pm
    pm.register(CaseOpener, name="test-case-opener")
    try:
        import_eml(api, eml("case@example.com", "Help", message_id="<h1@example.com>"))
        import_eml(api, eml("case@example.com", "Re: Help", message_id="<h2@example.com>",
                            in_reply_to="<h1@example.com>"))
    finally:
        pm.unregister(name="test-case-opener")
    assert seen == [("Help", []), ("Re: Help", ["Help"])]
    linked = [m["linked"] for m in messages(api, customer_id=customer["id"])]
    assert {"type": "case", "id": "case-1", "created": False} in linked[0] + linked[1]


def test_a_private_mailbox_is_seen_by_its_owner_and_whom_it_is_shared_with(api):
    owner, friend = api.users["sales"], api.users["service"]
    mailbox = api.post("/api/v1/mailboxes", json={
        "name": "Sales rep", "private": True, "owner_id": str(owner.id),
        "shared_with": [str(friend.id)]})
    assert mailbox.status_code == 201, mailbox.json
    assert api.post("/api/v1/mailboxes", json={"name": "x", "private": True}).status_code == 422
    customer = api.customer(first_name="Private", email="private@example.com")
    report = import_eml(api, eml("private@example.com", "Salary details", "confidential"),
                        mailbox_id=mailbox.json["id"]).json
    (message_id,) = report["ids"]
    for role in ("sales", "service"):
        assert api.get(f"/api/v1/mail/messages/{message_id}", role=role).status_code == 200
        assert [m["id"] for m in messages(api, role=role)] == [message_id]
    for role in ("marketing", "admin", "manager"):
        assert api.get(f"/api/v1/mail/messages/{message_id}", role=role).status_code == 404
        assert messages(api, role=role) == []
    assert api.get(f"/api/v1/mailboxes/{mailbox.json['id']}", role="marketing").status_code == 404
    # the shared timeline shows that an e-mail came, not what it said
    (interaction,) = api.get(f"/api/v1/interactions?customer_id={customer['id']}",
                             role="marketing").json
    assert "Salary" not in interaction["subject"] and interaction["body"] == ""


# --- IMAP -------------------------------------------------------------------------------


@pytest.fixture
def imap_server(tmp_path):
    """pymap's in-memory IMAP server in a subprocess, with one user."""
    port = free_port()
    script = os.path.join(os.path.dirname(sys.executable), "pymap")
    process = subprocess.Popen(
        [sys.executable, script, "--host", "127.0.0.1", "--port", str(port), "--no-tls",
         "dict", "--demo-user", "inbox@shop.example", "--demo-password", "imap-pass"],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "pymap.log", "wb"))
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"pymap did not start: {(tmp_path / 'pymap.log').read_text()}")
            time.sleep(0.1)

    def deliver(raw: bytes) -> None:
        client = imaplib.IMAP4("127.0.0.1", port)
        client.login("inbox@shop.example", "imap-pass")
        client.append("INBOX", None, None, raw)
        client.logout()

    try:
        yield {"host": "127.0.0.1", "port": port, "username": "inbox@shop.example",
               "password": "imap-pass", "deliver": deliver}
    finally:
        process.terminate()
        process.wait(10)


def test_imap_mailboxes_are_polled_by_the_job(api, app, imap_server):
    customer = api.customer(first_name="Imap", email="imap@customer.example")
    imap_server["deliver"](eml("imap@customer.example", "First by IMAP",
                               message_id="<i1@customer.example>"))
    imap_server["deliver"](eml("stranger@else.example", "Spam?"))
    mailbox = api.post("/api/v1/mailboxes", json={
        "name": "Support inbox", "address": "inbox@shop.example", "security": "none",
        **{k: imap_server[k] for k in ("host", "port", "username", "password")}})
    assert mailbox.status_code == 201, mailbox.json
    assert "password" not in mailbox.json
    poll = api.post(f"/api/v1/mailboxes/{mailbox.json['id']}/poll")
    assert poll.status_code == 202
    db.session.commit()
    assert run_jobs(app, api.tenant.id, "collaborative.poll_mailbox") == ["succeeded"]
    (matched,) = messages(api, customer_id=customer["id"])
    assert matched["subject"] == "First by IMAP" and matched["source"] == "imap"
    assert matched["mailbox_id"] == mailbox.json["id"]
    assert len(messages(api, status="unmatched")) == 1

    # the periodic job reads only what is new
    imap_server["deliver"](eml("imap@customer.example", "Re: First by IMAP",
                               in_reply_to="<i1@customer.example>"))
    with tenancy.tenant_context(api.tenant.id):
        jobs.enqueue("collaborative.poll_mailboxes")
        db.session.commit()
    assert run_jobs(app, api.tenant.id, "collaborative.poll_mailboxes") == ["succeeded"]
    thread = api.get(f"/api/v1/mail/threads/{matched['thread_id']}").json
    assert [m["subject"] for m in thread] == ["First by IMAP", "Re: First by IMAP"]
    assert len(messages(api)) == 3
    state = api.get(f"/api/v1/mailboxes/{mailbox.json['id']}").json
    assert state["last_error"] is None and state["last_uid"] > 0

    # a wrong password is recorded on the mailbox, not raised
    api.patch(f"/api/v1/mailboxes/{mailbox.json['id']}", json={"password": "wrong"})
    with tenancy.tenant_context(api.tenant.id):
        jobs.enqueue("collaborative.poll_mailboxes")
        db.session.commit()
    assert run_jobs(app, api.tenant.id, "collaborative.poll_mailboxes") == ["succeeded"]
    assert api.get(f"/api/v1/mailboxes/{mailbox.json['id']}").json["last_error"]


def test_sms_and_chat_arrive_through_the_channel_webhook(api, other_api, app):
    from clientela.core import hookimpl

    seen = []

    class Listener:
        @staticmethod
        @hookimpl
        def clientela_inbound_message(interaction, thread):
            seen.append((interaction.channel, interaction.body, [i.body for i in thread]))

    key = make_key(api, "messages")
    pm = app.extensions["clientela"].plugins.pm
    pm.register(Listener, name="test-sms-listener")
    try:
        with config(app, PHONE_DEFAULT_REGION="IT"):
            customer = api.customer(first_name="Texter", phone="+39 347 123 4567",
                                    email="texter@example.com")
            url = "/api/v1/channels/inbound"
            body = {"channel": "sms", "from": "347 123 4567", "to": "+39 02 0000 0000", "text": "Where is my parcel?",
                    "conversation_id": "c-1", "message_id": "sms-1"}
            assert api.client.post(url, json=body).status_code == 401
            assert api.client.post(url, json=body,
                                   headers={KEY: make_key(api, "mail")}).status_code == 401
            first = api.client.post(url, json=body, headers={KEY: key})
            assert first.status_code == 201, first.json
            assert first.json["status"] == "matched"
            assert first.json["customer_id"] == customer["id"]
            again = api.client.post(url, json=body, headers={KEY: key})
            assert again.json["id"] == first.json["id"]  # delivered twice, recorded once
            second = api.client.post(url, headers={KEY: key}, json={
                **body, "text": "Any news?", "message_id": "sms-2"})
            assert second.status_code == 201
            chat = api.client.post(url, headers={KEY: key}, json={
                "channel": "chat", "from": "texter@example.com", "text": "Hello from the chat"})
            assert chat.json["customer_id"] == customer["id"]
            stranger = api.client.post(url, headers={KEY: key}, json={
                "channel": "sms", "from": "+39 333 000 0000", "text": "hi"})
            assert stranger.status_code == 201 and stranger.json["status"] == "unmatched"
            for wrong in ("email", "pigeon"):
                assert api.client.post(url, headers={KEY: key}, json={
                    **body, "channel": wrong}).status_code == 404
            assert api.client.post(url, headers={KEY: key},
                                   json={"channel": "sms", "text": "x"}).status_code == 422
            # another tenant's key files the message there, unmatched
            crossed = api.client.post(url, headers={KEY: make_key(other_api, "messages")},
                                      json={**body, "message_id": "sms-x"})
            assert crossed.json["status"] == "unmatched"
    finally:
        pm.unregister(name="test-sms-listener")
    assert seen == [("sms", "Where is my parcel?", []),
                    ("sms", "Any news?", ["Where is my parcel?"]),
                    ("chat", "Hello from the chat", [])]
    sms = [i for i in api.get(f"/api/v1/interactions?customer_id={customer['id']}").json
           if i["channel"] == "sms"]
    assert len(sms) == 2 and {i["direction"] for i in sms} == {"inbound"}
    with tenancy.tenant_context(api.tenant.id):
        stored = db.session.get(Interaction, (api.tenant.id, uuid.UUID(first.json["interaction_id"])))
        assert stored.attributes == {"number": "+393471234567", "conversation_id": "c-1"}
    db.session.rollback()
    unmatched = api.get("/api/v1/channels/messages?status=unmatched", role="service").json
    assert [m["from"] for m in unmatched] == ["+39 333 000 0000"]
    assert [m["id"] for m in other_api.get("/api/v1/channels/messages").json] == [
        crossed.json["id"]]


# --- calls ------------------------------------------------------------------------------


def test_call_lookup_finds_the_customer_in_any_number_format(api, app):
    with config(app, PHONE_DEFAULT_REGION="IT"):
        milan = api.customer(first_name="Milano", phone="+39 02 1234 5678")
        rome = api.customer(first_name="Roma", phones=[{"label": "office",
                                                         "value": "06 9876 5432"}])
        for number in ("+39 02 1234 5678", "00390212345678", "02 1234 5678", "+390212345678"):
            found = api.get(f"/api/v1/calls/lookup?number={number.replace('+', '%2B')}",
                            role="service")
            assert found.status_code == 200, found.json
            assert found.json["number"] == "+390212345678"
            assert [c["id"] for c in found.json["customers"]] == [milan["id"]], number
        # one digit fewer is another number
        assert api.get("/api/v1/calls/lookup?number=0039021234567").json["customers"] == []
        secondary = api.get("/api/v1/calls/lookup?number=%2B39 06 9876 5432").json
        assert [c["id"] for c in secondary["customers"]] == [rome["id"]]
        assert api.get("/api/v1/calls/lookup?number=banana").status_code == 422
    # without a default region a national number cannot be read
    assert api.get("/api/v1/calls/lookup?number=02 1234 5678").status_code == 422


def test_the_telephony_webhook_records_call_interactions(api, app):
    key = make_key(api, "calls")
    with config(app, PHONE_DEFAULT_REGION="IT"):
        customer = api.customer(first_name="Caller", phone="+39 02 1234 5678")
        body = {"call_id": "pbx-1", "from": "02 1234 5678", "to": "+39 02 0000 0000",
                "direction": "inbound", "start": "2026-11-23T09:30:00+01:00", "duration": 125,
                "recording_url": "https://pbx.example/rec/1.mp3",
                "agent": f"service@{api.tenant.slug}.example"}
        assert api.client.post("/api/v1/calls/webhook", json=body).status_code == 401
        assert api.client.post("/api/v1/calls/webhook", json=body,
                               headers={KEY: make_key(api, "mail")}).status_code == 401
        response = api.client.post("/api/v1/calls/webhook", json=body, headers={KEY: key})
        assert response.status_code == 201, response.json
        call = response.json
        assert call["customer_id"] == customer["id"] and call["duration_seconds"] == 125
        assert call["agent_id"] == str(api.users["service"].id)
        again = api.client.post("/api/v1/calls/webhook", json=body, headers={KEY: key})
        assert again.json["id"] == call["id"]  # the same call_id is recorded once
        unknown = api.client.post("/api/v1/calls/webhook", headers={KEY: key}, json={
            "from": "+39 06 5555 1234", "direction": "inbound", "duration": 3})
        assert unknown.status_code == 201 and unknown.json["customer_id"] is None
        outbound = api.client.post("/api/v1/calls/webhook", headers={KEY: key}, json={
            "from": "+39 02 0000 0000", "to": "0212345678", "direction": "outbound",
            "duration": 60})
        assert outbound.json["customer_id"] == customer["id"]
        bad = api.client.post("/api/v1/calls/webhook", headers={KEY: key},
                              json={"direction": "inbound", "duration": -1})
        assert bad.status_code == 422
        assert set(bad.json["errors"]["json"]) >= {"from", "duration"}
    (first, second) = sorted(
        [i for i in api.get(f"/api/v1/interactions?customer_id={customer['id']}").json],
        key=lambda i: i["direction"])
    assert first["channel"] == "phone" and first["direction"] == "inbound"
    assert "2:05" in first["subject"]
    with tenancy.tenant_context(api.tenant.id):
        stored = db.session.get(Interaction, (api.tenant.id, uuid.UUID(first["id"])))
        assert stored.attributes["duration_seconds"] == 125
        assert stored.attributes["number"] == "+390212345678"
        assert stored.attributes["recording_url"] == "https://pbx.example/rec/1.mp3"
    db.session.rollback()
    assert len(api.get("/api/v1/calls", role="service").json) == 3
    assert api.get(f"/api/v1/calls/{call['id']}", role="analyst").status_code == 200


def test_calls_keys_do_not_cross_tenants(api, other_api, app):
    with config(app, PHONE_DEFAULT_REGION="IT"):
        api.customer(first_name="Mine", phone="+39 02 1234 5678")
        other_key = make_key(other_api, "calls")
        response = api.client.post("/api/v1/calls/webhook", headers={KEY: other_key},
                                   json={"from": "+39 02 1234 5678", "duration": 1})
        assert response.status_code == 201 and response.json["customer_id"] is None
        assert api.get("/api/v1/calls").json == []
        assert api.get(f"/api/v1/calls/{response.json['id']}").status_code == 404
        assert other_api.get("/api/v1/calls/lookup?number=%2B390212345678").json[
            "customers"] == []


def test_customer_erase_and_export_cover_mail_and_calls(api):
    customer = api.customer(first_name="Gone", email="gone@example.com")
    import_eml(api, eml("gone@example.com", "Please forget me", attachments=[
        ("id.pdf", b"passport")]))
    exported = api.get(f"/api/v1/customers/{customer['id']}/export")
    assert exported.status_code == 200
    assert "Please forget me" in exported.get_data(as_text=True)
    erased = api.post(f"/api/v1/customers/{customer['id']}/erase")
    assert erased.status_code == 200, erased.json
    assert messages(api) == []


# --- the hosted profile: the webhooks under Row-Level Security ----------------------------


def test_webhooks_work_through_the_rls_restricted_role_and_stay_in_the_keys_tenant(
        pg_databases, tmp_path_factory):
    """As web workers run in the hosted profile: no user token, the tenant from the key,
    PostgreSQL RLS forced underneath for the application role."""
    from sqlalchemy.engine import make_url
    from test_hosted import Hosted, _drop_roles, slug  # the hosted instance builder

    from clientela.testing import require_postgresql

    require_postgresql()
    admin_url = pg_databases.create("collab-hosted")
    suffix = uuid.uuid4().hex[:10]
    instance = Hosted(admin_url, f"clientela_own_{suffix}", f"clientela_app_{suffix}",
                      str(tmp_path_factory.mktemp("collab-hosted")))
    try:
        result = instance("hosted", "setup-roles", "--owner", instance.owner, "--app",
                          instance.app_role, "--owner-password", "owner-pw", "--app-password",
                          "app-pw", DATABASE_URL=admin_url)
        assert result.exit_code == 0, result.output
        assert instance("db", "upgrade", DATABASE_URL=instance.owner_url).exit_code == 0
        tokens = {}
        for name in ("a", "b"):
            s = slug(name)
            output = instance.tenant(s, "--admin-email", f"admin@{s}.example")
            tokens[name] = output.strip().splitlines()[-1].split()[-1]
        client = instance.app.test_client()

        def post(path, name, json):
            return client.post(path, json=json,
                               headers={"Authorization": f"Bearer {tokens[name]}"})

        customer = post("/api/v1/customers", "a", {"first_name": "Rls", "email": "r@x.example",
                                                   "phone": "+390212345678"})
        assert customer.status_code == 201, customer.json
        keys = {name: {scope: post("/api/v1/inbound-keys", name,
                                   {"name": scope, "scope": scope}).json["key"]
                       for scope in ("mail", "calls")} for name in ("a", "b")}
        mail = client.post("/api/v1/mail/inbound", headers={KEY: keys["a"]["mail"]}, json={
            "from": "r@x.example", "subject": "under RLS", "text": "hello"})
        assert mail.status_code == 201, mail.json
        assert mail.json["customer_id"] == customer.json["id"]
        call = client.post("/api/v1/calls/webhook", headers={KEY: keys["a"]["calls"]},
                           json={"from": "+390212345678", "duration": 5})
        assert call.status_code == 201 and call.json["customer_id"] == customer.json["id"]
        # B's keys reach only B: the same sender and number are unknown there
        crossed = client.post("/api/v1/mail/inbound", headers={KEY: keys["b"]["mail"]},
                              json={"from": "r@x.example", "subject": "b", "text": "b"})
        assert crossed.status_code == 201 and crossed.json["customer_id"] is None
        forged_key = keys["a"]["mail"][:32] + keys["b"]["mail"][32:]
        assert client.post("/api/v1/mail/inbound", headers={KEY: forged_key}, json={
            "from": "r@x.example"}).status_code == 401
        with instance.admin.connect() as conn:  # the superuser sees through RLS
            rows = conn.execute(sa.text(
                "SELECT t.slug, m.status FROM collaborative_mail_messages m "
                "JOIN tenants t ON t.id = m.tenant_id ORDER BY m.created_at")).all()
        assert [r.status for r in rows] == ["matched", "unmatched"]
    finally:
        if instance._app is not None:
            with instance._app.app_context():
                db.engine.dispose()
        instance.admin.dispose()
        _drop_roles(admin_url, make_url(admin_url).database, instance.owner, instance.app_role)


class Gateway(http.server.BaseHTTPRequestHandler):
    """A real HTTP SMS/chat gateway for the test: records what it is sent."""

    received: list = []
    status = 200

    def do_POST(self):  # noqa: N802 (the standard library's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.headers.get("Authorization"), json.loads(body)))
        self.send_response(type(self).status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"id": f"gw-{len(type(self).received)}"}).encode())

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def gateway():
    class Handler(Gateway):
        received = []
        status = 200

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/send", Handler
    finally:
        server.shutdown()
        server.server_close()


def test_sms_goes_out_through_the_gateway_and_lands_on_the_timeline(api, app):
    with config(app, PHONE_DEFAULT_REGION="IT"):
        customer = api.customer(first_name="Texted", phone="+39 347 765 4321")
    url = f"/api/v1/customers/{customer['id']}/messages"
    with gateway() as (endpoint, handler), config(
            app, COLLABORATIVE_MESSAGING_DRIVER="http", COLLABORATIVE_MESSAGING_URL=endpoint,
            COLLABORATIVE_MESSAGING_TOKEN="gw-secret"):
        sent = api.post(url, json={"channel": "sms", "body": "Your order has shipped"})
        assert sent.status_code == 201, sent.json
        assert handler.received == [("Bearer gw-secret", {
            "channel": "sms", "to": "+393477654321", "text": "Your order has shipped",
            "reference": None})]
        assert sent.json["message_id"] == "gw-1"
        timeline = api.get(f"/api/v1/customers/{customer['id']}/interactions").json
        out = [i for i in timeline if i["id"] == sent.json["interaction_id"]]
        assert [(i["channel"], i["direction"], i["body"]) for i in out] == [
            ("sms", "outbound", "Your order has shipped")]
        # marketing without consent is refused before the gateway hears of it
        blocked = api.post(url, json={"channel": "sms", "body": "Sale!",
                                      "purpose": "marketing"})
        assert blocked.status_code == 409 and len(handler.received) == 1
        # a gateway that refuses: 502, nothing recorded
        handler.status = 500
        refused = api.post(url, json={"channel": "sms", "body": "Again"})
        assert refused.status_code == 502
        after = api.get(f"/api/v1/customers/{customer['id']}/interactions").json
        assert len(after) == len(timeline)


def test_without_a_gateway_messages_go_to_the_outbox_file(api, app, tmp_path):
    customer = api.customer(first_name="Boxed", phone="+44 20 7946 0958")
    with config(app, COLLABORATIVE_MESSAGING_DRIVER="outbox", HOME=str(tmp_path)):
        sent = api.post(f"/api/v1/customers/{customer['id']}/messages",
                        json={"channel": "sms", "body": "Hello from the outbox"})
    assert sent.status_code == 201, sent.json
    lines = (tmp_path / "outbox" / "messages.jsonl").read_text().splitlines()
    assert [json.loads(line)["text"] for line in lines] == ["Hello from the outbox"]
    no_phone = api.customer(first_name="Nophone")
    assert api.post(f"/api/v1/customers/{no_phone['id']}/messages",
                    json={"channel": "sms", "body": "x"}).status_code == 409
