"""The collaborative plugin's channel, e-mail and call records for the cross-tenant test."""

from email.message import EmailMessage

ORDER = 30

BODIES = {
    ("PATCH", "/api/v1/mail-accounts/<uuid:account_id>"): {"name": "pwned"},
    ("PATCH", "/api/v1/mailboxes/<uuid:mailbox_id>"): {"name": "pwned"},
    ("PATCH", "/api/v1/mail-templates/<uuid:template_id>"): {"name": "pwned"},
    ("POST", "/api/v1/customers/<uuid:customer_id>/emails"): {"subject": "pwned",
                                                              "body": "pwned"},
    ("POST", "/api/v1/customers/<uuid:customer_id>/messages"): {"channel": "sms",
                                                                "body": "pwned"},
    ("POST", "/api/v1/mail/messages/<uuid:message_id>/match"): {
        "customer_id": "00000000-0000-0000-0000-000000000001"},
    # a channel is no tenant record: what must not be reached is the customer
    ("POST", "/api/v1/channels/<key>/interactions"): {
        "customer_id": "00000000-0000-0000-0000-000000000001",
        "fields": {"document_ref": "pwned"}},
}


def make(api, records):
    account = api.post("/api/v1/mail-accounts", json={
        "name": "secret account", "host": "smtp.secret.example", "port": 587,
        "username": "secret", "password": "secret", "from_address": "secret@shop.example"}).json
    mailbox = api.post("/api/v1/mailboxes", json={
        "name": "secret mailbox", "host": "imap.secret.example", "username": "secret",
        "password": "secret", "private": True, "owner_id": str(api.users["admin"].id)}).json
    template = api.post("/api/v1/mail-templates", json={
        "name": "secret template", "subject": "secret", "body": "secret"}).json
    message = EmailMessage()
    message["From"] = "secret@example.com"
    message["To"] = "secret@shop.example"
    message["Subject"] = "secret message"
    message["Message-ID"] = "<secret-1@example.com>"
    message.set_content("secret body")
    message.add_attachment(b"secret", maintype="application", subtype="pdf",
                           filename="secret.pdf")
    imported = api.client.post("/api/v1/mail/import?filename=secret.eml", data=bytes(message),
                               headers={**api.headers(), "Content-Type": "message/rfc822"}).json
    (message_id,) = imported["ids"]
    thread = api.get(f"/api/v1/mail/messages/{message_id}").json["thread_id"]
    key = api.post("/api/v1/inbound-keys", json={"name": "secret key", "scope": "calls"}).json
    call = api.client.post("/api/v1/calls/webhook", headers={"X-Clientela-Key": key["key"]},
                           json={"from": "+390212345678", "duration": 7}).json
    return {
        "account_id": account["id"],
        "mailbox_id": mailbox["id"],
        "template_id": template["id"],
        "message_id": message_id,
        "thread_id": thread,
        "key_id": key["id"],
        "call_id": call["id"],
        "index": "0",
        "key": "letter",
    }
