"""Campaigns through HTTP, on both backends: target lists and segments, sending by the real
job runner to a real SMTP server with consent, idempotent re-sends, tracking, unsubscribe,
results with ROI, and who may do what."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import uuid
from urllib.parse import urlsplit

import sqlalchemy as sa
from itsdangerous import URLSafeSerializer
from test_hosted import hosted, slug, tenant_id_of  # noqa: F401 - the hosted instance fixture

from clientela.core import hookimpl, jobs, tenancy
from clientela.core.db import db
from clientela.core.models import Job
from clientela.plugins.operational import campaigns as service
from clientela.plugins.operational.campaign_models import Campaign, CampaignRecipient

CAMPAIGNS = "/api/v1/campaigns"


def ok(response, status=200):
    assert response.status_code == status, (response.status_code, response.json)
    return response.json


class Consent:
    """A stand-in for the consent plugin: marketing allowed for the customers it names."""

    def __init__(self, allowed):
        self.allowed = {uuid.UUID(str(i)) for i in allowed}

    @hookimpl
    def clientela_contact_allowed(self, customer, channel, purpose):
        return True if customer.id in self.allowed else None


class Segments:
    """A stand-in for the analytical plugin: one segment, ``test:vip``."""

    def __init__(self, members):
        self.members = [uuid.UUID(str(i)) for i in members]

    @hookimpl
    def clientela_segments(self):
        return [{"id": "test:vip", "name": "VIP", "size": len(self.members), "source": "test"}]

    @hookimpl
    def clientela_segment_members(self, segment_id):
        return list(self.members) if segment_id == "test:vip" else None


@contextlib.contextmanager
def plugged(app, *plugins):
    """Register test plugins into the app's plugin manager for the block, then remove them."""
    pm = app.extensions["clientela"].plugins.pm
    for plugin in plugins:
        pm.register(plugin)
    try:
        yield
    finally:
        for plugin in plugins:
            pm.unregister(plugin)


def run(api, job_id) -> str | None:
    """Run one job now, in this thread, as a consumer would."""
    return jobs.queue_for(api.app).run(api.tenant.id, uuid.UUID(str(job_id)))


def campaign(api, role="admin", **data) -> dict:
    data.setdefault("name", "Spring offer")
    data.setdefault("subject", "Hello {{ first_name }}")
    data.setdefault("body", "Dear {{ first_name }}, see https://shop.example/spring today.")
    return ok(api.post(CAMPAIGNS, json=data, role=role), 201)


def with_members(api, *customers, role="admin", **data) -> dict:
    created = campaign(api, role=role, **data)
    if customers:
        ok(api.post(f"{CAMPAIGNS}/{created['id']}/members",
                    json={"customer_ids": [c["id"] for c in customers]}, role=role))
    return created


def send(api, campaign_id, role="admin") -> str:
    """Ask for the send and run its job with the real job runner; the job's id."""
    started = ok(api.post(f"{CAMPAIGNS}/{campaign_id}/send", role=role), 202)
    assert started["campaign"]["status"] == "sending"
    assert run(api, started["job_id"]) == "succeeded"
    return started["job_id"]


def recipients(api, campaign_id, **query) -> dict[str, dict]:
    rows = ok(api.get(f"{CAMPAIGNS}/{campaign_id}/recipients", query_string=query))
    return {r["customer_id"]: r for r in rows}


def results(api, campaign_id) -> dict:
    return ok(api.get(f"{CAMPAIGNS}/{campaign_id}/results"))


def timeline(api, customer_id) -> list[dict]:
    return ok(api.get(f"/api/v1/customers/{customer_id}/interactions"))


def links(message) -> dict:
    """The tracked links, pixel and unsubscribe address of a received message."""
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    return {
        "html": html, "text": text,
        "pixel": re.search(r'<img src="([^"]+\.gif)"', html).group(1),
        "clicks": [h.replace("&amp;", "&") for h in re.findall(r'href="([^"]*/t/c/[^"]+)"', html)],
        "text_clicks": re.findall(r"(http://\S*/t/c/\S+)", text),
        "unsubscribe": message["List-Unsubscribe"].strip("<>"),
    }


def local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


# --- managing campaigns ---------------------------------------------------------------


def test_create_read_update_list_and_delete_a_campaign(api):
    created = campaign(api, description="Flowers", budget="1500.00", cost="250.5",
                       html="<p>Hi {{ first_name }}</p>")
    assert created["status"] == "draft" and created["channel"] == "email"
    assert created["purpose"] == "marketing" and created["audience"] == "list"
    assert created["currency"] == "EUR" and created["cost"] == "250.50"
    assert created["owner_id"] == str(api.users["admin"].id)
    path = f"{CAMPAIGNS}/{created['id']}"
    assert ok(api.get(path)) == created
    changed = ok(api.patch(path, json={"subject": "Hi {{ display_name }}", "currency": "usd"}))
    assert changed["subject"] == "Hi {{ display_name }}" and changed["currency"] == "USD"
    campaign(api, name="Autumn offer")
    assert [c["name"] for c in ok(api.get(f"{CAMPAIGNS}?sort=name"))] == ["Autumn offer",
                                                                          "Spring offer"]
    assert [c["name"] for c in ok(api.get(f"{CAMPAIGNS}?q=autumn"))] == ["Autumn offer"]
    assert api.delete(path).status_code == 204
    assert api.get(path).status_code == 404


def test_invalid_campaigns_are_422_with_per_field_messages(api):
    response = api.post(CAMPAIGNS, json={"name": "Bad", "subject": "Hi {{ first_name",
                                         "body": "{% for %}"})
    assert response.status_code == 422
    assert set(response.json["errors"]["json"]) == {"subject", "body"}
    response = api.post(CAMPAIGNS, json={"name": "", "status": "sent", "currency": "euro",
                                         "cost": "-1", "audience": "everyone"})
    assert response.status_code == 422
    assert set(response.json["errors"]["json"]) == {"name", "status", "currency", "cost",
                                                    "audience"}
    response = api.post(CAMPAIGNS, json={"name": "Seg", "audience": "segment"})
    assert response.status_code == 422 and "segment_id" in response.json["errors"]["json"]
    response = api.post(CAMPAIGNS, json={"name": "Seg", "audience": "segment",
                                         "segment_id": "nobody:offers-this"})
    assert response.status_code == 422 and "segment_id" in response.json["errors"]["json"]
    # nothing to send
    empty = ok(api.post(CAMPAIGNS, json={"name": "Empty"}), 201)
    response = api.post(f"{CAMPAIGNS}/{empty['id']}/send")
    assert response.status_code == 422
    assert set(response.json["errors"]["json"]) == {"subject", "body"}
    response = api.post(f"{CAMPAIGNS}/{empty['id']}/schedule", json={"send_at": "2030-01-01"})
    assert response.status_code == 422


def test_the_static_list_is_managed_and_holds_only_the_tenants_customers(api, other_api):
    ada, bob = api.customer(first_name="Ada"), api.customer(first_name="Bob")
    created = campaign(api)
    members = f"{CAMPAIGNS}/{created['id']}/members"
    assert ok(api.post(members, json={"customer_ids": [ada["id"], bob["id"]]})) == {
        "added": 2, "already_members": 0, "members": 2}
    assert ok(api.post(members, json={"customer_ids": [ada["id"]]})) == {
        "added": 0, "already_members": 1, "members": 2}
    assert [m["display_name"] for m in ok(api.get(members))] == ["Ada", "Bob"]
    stranger = other_api.customer(first_name="Stranger")
    response = api.post(members, json={"customer_ids": [stranger["id"], ada["id"]]})
    assert response.status_code == 422 and stranger["id"] in str(response.json["errors"])
    assert api.delete(f"{members}/{bob['id']}").status_code == 204
    assert api.delete(f"{members}/{bob['id']}").status_code == 404
    assert [m["display_name"] for m in ok(api.get(members))] == ["Ada"]


def test_preview_fills_in_the_merge_fields_in_a_sandbox(api):
    ada = api.customer(first_name="Ada", last_name="Byron", attributes={})
    created = campaign(api, subject="For {{ first_name }} {{ last_name }}",
                       body="{{ missing }}|{{ campaign.name }}",
                       html="<b>{{ display_name }}</b> {{ '<script>' }}")
    path = f"{CAMPAIGNS}/{created['id']}/preview"
    shown = ok(api.post(path, json={"customer_id": ada["id"]}))
    assert shown["subject"] == "For Ada Byron"
    assert shown["body"] == "|Spring offer"  # an unknown name renders empty
    assert shown["html"] == "<b>Ada Byron</b> &lt;script&gt;"  # the HTML is autoescaped
    # the sandbox refuses what would reach into Python
    ok(api.patch(f"{CAMPAIGNS}/{created['id']}",
                 json={"body": "{{ first_name.__class__.__mro__ }}"}))
    response = api.post(path, json={"customer_id": ada["id"]})
    assert response.status_code == 422 and "unsafe" in str(response.json["errors"])


# --- sending ------------------------------------------------------------------------------


def test_sending_to_a_real_smtp_server_skips_customers_without_consent(api, clientela_smtp):
    clientela_smtp.configure(api.app)
    ada = api.customer(first_name="Ada", email="ada@example.com")
    bob = api.customer(first_name="Bob", email="bob@example.com")
    cy = api.customer(first_name="Cy")  # consent, but no address
    created = with_members(api, ada, bob, cy, html="<p>Hi {{ first_name }}, "
                                                   '<a href="https://shop.example/spring">shop'
                                                   "</a></p>")
    with plugged(api.app, Consent([ada["id"], cy["id"]])):
        send(api, created["id"])

    assert [m["To"] for m in clientela_smtp.messages] == ["ada@example.com"]
    message = clientela_smtp.messages[0]
    assert message["Subject"] == "Hello Ada"
    found = links(message)
    assert found["text"].startswith("Dear Ada, see http://localhost/t/c/")
    assert "Unsubscribe: http://localhost/t/u/" in found["text"]
    assert len(found["clicks"]) == 1 and found["pixel"].startswith("http://localhost/t/o/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    sent = recipients(api, created["id"])
    assert sent[ada["id"]]["status"] == "sent" and sent[ada["id"]]["message_id"] == \
        message["Message-ID"]
    assert (sent[bob["id"]]["status"], sent[bob["id"]]["reason"]) == (
        "blocked", "no marketing consent on email")
    assert (sent[cy["id"]]["status"], sent[cy["id"]]["reason"]) == (
        "blocked", "the customer has no e-mail address")
    assert list(recipients(api, created["id"], status="blocked")) == [bob["id"], cy["id"]]
    after = ok(api.get(f"{CAMPAIGNS}/{created['id']}"))
    assert after["status"] == "sent" and after["finished_at"]
    (outbound,) = timeline(api, ada["id"])
    assert (outbound["direction"], outbound["channel"], outbound["subject"]) == (
        "outbound", "email", "Hello Ada")
    assert timeline(api, bob["id"]) == []
    figures = results(api, created["id"])
    assert (figures["audience"], figures["reach"], figures["blocked"], figures["failed"]) == (
        3, 1, 2, 0)
    # a sent campaign's message is fixed; its bookkeeping is not
    assert api.patch(f"{CAMPAIGNS}/{created['id']}", json={"body": "x"}).status_code == 409
    assert ok(api.patch(f"{CAMPAIGNS}/{created['id']}", json={"cost": "10"}))["cost"] == "10.00"
    assert api.delete(f"{CAMPAIGNS}/{created['id']}").status_code == 409
    assert api.post(f"{CAMPAIGNS}/{created['id']}/members",
                    json={"customer_ids": [bob["id"]]}).status_code == 409


def test_a_service_campaign_needs_no_marketing_consent(api, clientela_smtp):
    clientela_smtp.configure(api.app)
    ada = api.customer(first_name="Ada", email="ada@example.com")
    created = with_members(api, ada, purpose="service", subject="Maintenance",
                           body="We will be down on Sunday.")
    send(api, created["id"])
    assert [m["To"] for m in clientela_smtp.messages] == ["ada@example.com"]
    assert "Unsubscribe" not in clientela_smtp.messages[0].get_body(("plain",)).get_content()


def test_sending_again_never_sends_twice_to_the_same_customer(api, clientela_smtp):
    ada = api.customer(first_name="Ada", email="ada@example.com")
    bob = api.customer(first_name="Bob", email="bob@example.com")
    cy = api.customer(first_name="Cy", email="cy@example.com")
    created = with_members(api, ada, bob, cy)
    closed_port = clientela_smtp.port
    with plugged(api.app, Consent([ada["id"], bob["id"], cy["id"]])):
        # first round: the mail server is down; every send fails and says why
        clientela_smtp.configure(api.app)
        api.app.config["MAIL_SMTP_PORT"] = 1  # nothing listens there
        job_id = send(api, created["id"])
        failed = recipients(api, created["id"])
        assert {r["status"] for r in failed.values()} == {"failed"}
        assert "SMTP 127.0.0.1:1" in failed[ada["id"]]["error"]
        assert results(api, created["id"])["failed"] == 3
        # the same job run again does nothing: the runner knows it succeeded
        assert run(api, job_id) is None
        # second round: the server is back; a crashed run had left Bob "sending"
        api.app.config["MAIL_SMTP_PORT"] = closed_port
        started = ok(api.post(f"{CAMPAIGNS}/{created['id']}/send"), 202)
        assert api.post(f"{CAMPAIGNS}/{created['id']}/send").status_code == 409
        with tenancy.tenant_context(api.tenant.id):
            db.session.execute(sa.update(CampaignRecipient).where(
                CampaignRecipient.customer_id == uuid.UUID(bob["id"])).values(status="sending"))
            db.session.commit()
        assert run(api, started["job_id"]) == "succeeded"
        assert sorted(m["To"] for m in clientela_smtp.messages) == ["ada@example.com",
                                                                    "cy@example.com"]
        final = recipients(api, created["id"])
        assert (final[ada["id"]]["status"], final[ada["id"]]["attempts"]) == ("sent", 2)
        assert final[bob["id"]]["status"] == "unknown"
        assert "not sent again" in final[bob["id"]]["error"]
        # a duplicate run of the send itself (a retry after a crash) sends nothing more
        with tenancy.tenant_context(api.tenant.id):
            db.session.execute(sa.update(Campaign).where(
                Campaign.id == uuid.UUID(created["id"])).values(status="sending"))
            db.session.commit()
            assert service.send_campaign(uuid.UUID(created["id"])) == {
                "sent": 0, "blocked": 0, "failed": 0}
            db.session.commit()
        assert len(clientela_smtp.messages) == 2
        # nothing failed is left: sending once more is a conflict
        assert api.post(f"{CAMPAIGNS}/{created['id']}/send").status_code == 409
    assert len([i for i in timeline(api, ada["id"]) if i["direction"] == "outbound"]) == 1


def test_a_segment_from_another_plugin_is_the_audience(api, other_api, clientela_smtp):
    clientela_smtp.configure(api.app)
    ada = api.customer(first_name="Ada", email="ada@example.com")
    bob = api.customer(first_name="Bob", email="bob@example.com")
    api.customer(first_name="Not in the segment", email="no@example.com")
    stranger = other_api.customer(first_name="Stranger", email="stranger@example.com")
    # the segment plugin answers ids; one of another tenant must never be sent to
    with plugged(api.app, Segments([ada["id"], bob["id"], stranger["id"]]),
                 Consent([ada["id"], bob["id"], stranger["id"]])):
        assert ok(api.get(f"{CAMPAIGNS}/segments")) == [
            {"id": "test:vip", "name": "VIP", "size": 3, "source": "test"}]
        created = campaign(api, audience="segment", segment_id="test:vip")
        response = api.post(f"{CAMPAIGNS}/{created['id']}/members",
                            json={"customer_ids": [ada["id"]]})
        assert response.status_code == 409
        send(api, created["id"])
    assert sorted(m["To"] for m in clientela_smtp.messages) == ["ada@example.com",
                                                                "bob@example.com"]
    assert set(recipients(api, created["id"])) == {ada["id"], bob["id"]}


def send_jobs(api) -> dict[tuple[str, int], uuid.UUID]:
    """The tenant's send jobs by (campaign id, round)."""
    with tenancy.tenant_context(api.tenant.id):
        rows = db.session.execute(sa.select(Job.id, Job.payload).where(
            Job.name == service.SEND_JOB)).all()
        db.session.rollback()
    found = {}
    for job_id, payload in rows:
        campaign_id, send_round = jobs.decode_arguments(payload["args"])
        found[(str(campaign_id), send_round)] = job_id
    return found


def test_a_scheduled_campaign_is_sent_by_its_job_when_due(api, clientela_smtp):
    clientela_smtp.configure(api.app)
    ada = api.customer(first_name="Ada", email="ada@example.com")
    due = with_members(api, ada, name="Due")
    later = with_members(api, ada, name="Later")
    now = dt.datetime.now(dt.timezone.utc)
    assert ok(api.post(f"{CAMPAIGNS}/{due['id']}/schedule", json={
        "send_at": (now - dt.timedelta(minutes=1)).isoformat()}))["status"] == "scheduled"
    ok(api.post(f"{CAMPAIGNS}/{later['id']}/schedule", json={
        "send_at": (now + dt.timedelta(days=5)).isoformat()}))
    assert api.post(f"{CAMPAIGNS}/{due['id']}/schedule",
                    json={"send_at": "2030-01-01T00:00:00"}).status_code == 422  # no zone
    queued = send_jobs(api)
    assert set(queued) == {(due["id"], 1), (later["id"], 1)}
    with plugged(api.app, Consent([ada["id"]])):
        # run before its time (a consumer gone wrong), the job leaves the campaign alone
        assert run(api, queued[(later["id"], 1)]) == "succeeded"
        assert run(api, queued[(due["id"], 1)]) == "succeeded"
    assert [m["Subject"] for m in clientela_smtp.messages] == ["Hello Ada"]
    assert ok(api.get(f"{CAMPAIGNS}/{due['id']}"))["status"] == "sent"
    assert ok(api.get(f"{CAMPAIGNS}/{later['id']}"))["status"] == "scheduled"
    assert ok(api.post(f"{CAMPAIGNS}/{later['id']}/cancel"))["status"] == "cancelled"
    assert api.post(f"{CAMPAIGNS}/{later['id']}/send").status_code == 409


def test_the_periodic_job_starts_a_scheduled_campaign_its_job_missed(api, clientela_smtp):
    clientela_smtp.configure(api.app)
    ada = api.customer(first_name="Ada", email="ada@example.com")
    late = with_members(api, ada, name="Late")
    ok(api.post(f"{CAMPAIGNS}/{late['id']}/schedule", json={
        "send_at": (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10)).isoformat()}))
    own_job = send_jobs(api)[(late["id"], 1)]
    assert jobs.queue_for(api.app).definitions[service.DUE_JOB].schedule is not None
    with tenancy.tenant_context(api.tenant.id):
        picker = jobs.enqueue(service.DUE_JOB)
        db.session.commit()
    with plugged(api.app, Consent([ada["id"]])):
        assert run(api, picker) == "succeeded"
        assert ok(api.get(f"{CAMPAIGNS}/{late['id']}"))["status"] == "sending"
        # the campaign's own job, arriving late, belongs to a round that is over
        assert run(api, own_job) == "succeeded"
        assert clientela_smtp.messages == []
        assert run(api, send_jobs(api)[(late["id"], 2)]) == "succeeded"
    assert [m["To"] for m in clientela_smtp.messages] == ["ada@example.com"]
    assert ok(api.get(f"{CAMPAIGNS}/{late['id']}"))["status"] == "sent"


# --- responses ----------------------------------------------------------------------------


def sent_to(api, clientela_smtp, *people, blocked=(), **data):
    """A campaign sent to ``people`` (with consent) and ``blocked`` (without); the campaign
    and the messages ``people`` received."""
    clientela_smtp.configure(api.app)
    data.setdefault("html", '<p>Hi {{ first_name }} <a href="https://shop.example/spring?a=1&b=2">'
                            "shop</a> <a href='{{ unsubscribe_url }}'>unsubscribe</a></p>")
    created = with_members(api, *people, *blocked, **data)
    with plugged(api.app, Consent([p["id"] for p in people])):
        send(api, created["id"])
    by_address = {m["To"]: m for m in clientela_smtp.messages}
    return created, [by_address[p["email"]] for p in people]


def test_opens_and_clicks_are_tracked_on_the_timeline(api, clientela_smtp):
    ada = api.customer(first_name="Ada", email="ada@example.com")
    created, (message,) = sent_to(api, clientela_smtp, ada)
    found = links(message)
    # the unsubscribe link in the HTML is left as it is, not tracked
    assert len(found["clicks"]) == 1 and "/t/u/" in found["html"]

    pixel = api.client.get(local(found["pixel"]))
    assert pixel.status_code == 200 and pixel.mimetype == "image/gif"
    assert "no-store" in pixel.headers["Cache-Control"]
    api.client.get(local(found["pixel"]))
    click = api.client.get(local(found["clicks"][0]))
    assert click.status_code == 302
    assert click.headers["Location"] == "https://shop.example/spring?a=1&b=2"
    # the plain-text part's link is tracked too
    assert api.client.get(local(found["text_clicks"][0])).headers["Location"] == \
        "https://shop.example/spring"

    row = recipients(api, created["id"])[ada["id"]]
    assert (row["opens"], row["clicks"]) == (2, 2)
    assert row["opened_at"] and row["clicked_at"] and row["delivered_at"]
    outcomes = sorted(i["outcome"] or "" for i in timeline(api, ada["id"]))
    # one "opened" however many times, one "clicked" per link
    assert outcomes == ["", "clicked", "clicked", "opened"]
    figures = results(api, created["id"])
    assert figures["responses"]["opened"] == {"count": 1, "rate": "1.0000"}
    assert (figures["opens"], figures["clicks"]) == (2, 2)


def test_tracking_links_refuse_forged_tampered_and_foreign_tokens(api, other_api,
                                                                  clientela_smtp):
    ada = api.customer(first_name="Ada", email="ada@example.com")
    created, (message,) = sent_to(api, clientela_smtp, ada)
    found = links(message)
    token = re.search(r"/t/c/([^?]+)\?", found["clicks"][0]).group(1)
    # no open redirect: the token is only good for the link the message carried
    for url in ("https://evil.example/", "https://shop.example/spring?a=1&b=3", "javascript:x"):
        response = api.client.get(f"/t/c/{token}", query_string={"u": url})
        assert response.status_code == 404, url
    assert api.client.get(f"/t/c/{token}").status_code == 404
    assert api.client.get("/t/o/not-a-token.gif").status_code == 404
    assert api.client.post("/t/u/not-a-token").status_code == 404
    recipient_id = next(iter(recipients(api, created["id"]).values()))["id"]
    # signed with another key: refused
    forged = URLSafeSerializer("guessed-key", salt=service.TOKEN_SALT).dumps(
        [api.tenant.id.hex, uuid.UUID(recipient_id).hex])
    assert api.client.get(f"/t/o/{forged}.gif").status_code == 404
    # validly signed, but naming another tenant: the recipient is not found there
    foreign = URLSafeSerializer(api.app.config["SECRET_KEY"], salt=service.TOKEN_SALT).dumps(
        [other_api.tenant.id.hex, uuid.UUID(recipient_id).hex])
    assert api.client.get(f"/t/o/{foreign}.gif").status_code == 404
    row = recipients(api, created["id"])[ada["id"]]
    assert (row["opens"], row["clicks"]) == (0, 0)


def test_unsubscribe_records_it_and_stops_future_marketing(api, clientela_smtp):
    ada = api.customer(first_name="Ada", email="ada@example.com")
    created, (message,) = sent_to(api, clientela_smtp, ada)
    address = local(links(message)["unsubscribe"])
    page = api.client.get(address)
    assert page.status_code == 200 and b'<form method="post">' in page.data
    # showing the page changes nothing (mail scanners follow links)
    assert recipients(api, created["id"])[ada["id"]]["unsubscribed_at"] is None
    # the mail client's one-click unsubscribe (RFC 8058)
    done = api.client.post(address, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and b"You are unsubscribed" in done.data
    assert api.client.post(address).status_code == 200  # again: still fine, recorded once
    assert recipients(api, created["id"])[ada["id"]]["unsubscribed_at"]
    assert [i["outcome"] for i in timeline(api, ada["id"])].count("unsubscribed") == 1
    assert results(api, created["id"])["responses"]["unsubscribed"]["count"] == 1

    # the next campaign does not reach her, even though the consent plugin says yes
    clientela_smtp.messages.clear()
    second = with_members(api, ada, name="Summer offer")
    with plugged(api.app, Consent([ada["id"]])):
        send(api, second["id"])
    assert clientela_smtp.messages == []
    row = recipients(api, second["id"])[ada["id"]]
    assert (row["status"], row["reason"]) == ("blocked", "no marketing consent on email")
    # service messages still go out
    third = with_members(api, ada, name="Invoice", purpose="service")
    send(api, third["id"])
    assert [m["To"] for m in clientela_smtp.messages] == ["ada@example.com"]


def test_responses_learnt_elsewhere_are_recorded(api, clientela_smtp):
    ada = api.customer(first_name="Ada", email="ada@example.com")
    bob = api.customer(first_name="Bob", email="bob@example.com")
    created, _ = sent_to(api, clientela_smtp, ada)
    path = f"{CAMPAIGNS}/{created['id']}/responses"
    row = ok(api.post(path, json={"customer_id": ada["id"], "kind": "replied",
                                  "detail": "Send me the catalogue"}))
    assert row["replied_at"] and row["delivered_at"]
    (reply,) = [i for i in timeline(api, ada["id"]) if i["outcome"] == "replied"]
    assert reply["direction"] == "inbound" and reply["body"] == "Send me the catalogue"
    response = api.post(path, json={"customer_id": bob["id"], "kind": "delivered"})
    assert response.status_code == 422 and "customer_id" in response.json["errors"]["json"]
    response = api.post(path, json={"customer_id": ada["id"], "kind": "converted"})
    assert response.status_code == 422


# --- results ------------------------------------------------------------------------------


def won_deal(api, customer, amount, currency="EUR", won=True) -> dict:
    deal = ok(api.post("/api/v1/deals", json={"title": f"Deal {amount}", "amount": amount,
                                              "currency": currency,
                                              "customer_id": customer["id"]}), 201)
    if won:
        ok(api.post(f"/api/v1/deals/{deal['id']}/close", json={"outcome": "won"}))
    return deal


def test_results_and_roi_on_a_known_data_set(api, clientela_smtp):
    people = [api.customer(first_name=n, email=f"{n.lower()}@example.com")
              for n in ("Ada", "Bob", "Cy", "Dee")]
    ada, bob, cy, dee = people
    eve = api.customer(first_name="Eve", email="eve@example.com")  # no consent: blocked
    created, messages = sent_to(api, clientela_smtp, *people, blocked=[eve], cost="1000.00",
                                budget="1200")
    # Ada and Bob open; Ada clicks; Cy replies
    for message in messages[:2]:
        assert api.client.get(local(links(message)["pixel"])).status_code == 200
    assert api.client.get(local(links(messages[0])["clicks"][0])).status_code == 302
    ok(api.post(f"{CAMPAIGNS}/{created['id']}/responses",
                json={"customer_id": cy["id"], "kind": "replied"}))
    # deals: Ada won 3000 and 500, Bob an open 2000, Dee won 100 USD, Eve (not reached) won
    # 250, and a won deal of Cy's that belongs to no campaign
    linked = [won_deal(api, ada, "3000.00"), won_deal(api, ada, "500.00"),
              won_deal(api, bob, "2000.00", won=False), won_deal(api, dee, "100.00", "USD"),
              won_deal(api, eve, "250.00")]
    won_deal(api, cy, "9999.00")
    for deal in linked:
        ok(api.post(f"{CAMPAIGNS}/{created['id']}/deals", json={"deal_id": deal["id"]}), 201)
    assert len(ok(api.get(f"{CAMPAIGNS}/{created['id']}/deals"))) == 5
    other = campaign(api, name="Other")
    response = api.post(f"{CAMPAIGNS}/{other['id']}/deals", json={"deal_id": linked[0]["id"]})
    assert response.status_code == 409

    figures = results(api, created["id"])
    assert (figures["audience"], figures["reach"], figures["blocked"]) == (5, 4, 1)
    rates = {kind: (r["count"], r["rate"]) for kind, r in figures["responses"].items()}
    assert rates == {
        "delivered": (3, "0.7500"),     # implied by Ada's and Bob's opens, Cy's reply
        "opened": (2, "0.5000"),
        "clicked": (1, "0.2500"),
        "replied": (1, "0.2500"),
        "converted": (3, "0.7500"),     # Ada, Bob and Dee have deals of the campaign
        "unsubscribed": (0, "0.0000"),
    }
    assert figures["deals"] == {"count": 5, "open": 1, "won": 4, "lost": 0}
    assert figures["converted_deals"] == 4
    # revenue: won deals in the campaign's currency: 3000 + 500 + 250
    assert figures["revenue"] == "3750.00"
    assert figures["revenue_other_currencies"] == {"USD": "100.00"}
    assert (figures["cost"], figures["budget"], figures["currency"]) == ("1000.00", "1200.00",
                                                                          "EUR")
    assert figures["roi"] == "2.7500"  # (3750 - 1000) / 1000
    (converted,) = [i for i in timeline(api, ada["id"])
                    if i["outcome"] == "converted" and "3000" in i["body"]]
    assert converted["direction"] == "internal"

    # unlinking a deal changes the figures; no cost means no ROI
    assert api.delete(f"{CAMPAIGNS}/{created['id']}/deals/{linked[0]['id']}").status_code == 204
    ok(api.patch(f"{CAMPAIGNS}/{created['id']}", json={"cost": "0"}))
    figures = results(api, created["id"])
    assert (figures["revenue"], figures["roi"]) == ("750.00", None)
    ok(api.patch(f"{CAMPAIGNS}/{created['id']}", json={"cost": "1500.00"}))
    assert results(api, created["id"])["roi"] == "-0.5000"  # (750 - 1500) / 1500


def test_results_of_a_campaign_not_sent_have_no_rates(api):
    figures = results(api, campaign(api)["id"])
    assert (figures["reach"], figures["revenue"], figures["roi"]) == (0, "0.00", None)
    assert figures["responses"]["opened"] == {"count": 0, "rate": None}


# --- who may do what ----------------------------------------------------------------------


def test_marketing_manages_and_sends_campaigns_and_sales_cannot(api, clientela_smtp):
    clientela_smtp.configure(api.app)
    ada = api.customer(first_name="Ada", email="ada@example.com")
    created = with_members(api, ada, role="marketing")
    path = f"{CAMPAIGNS}/{created['id']}"
    assert ok(api.patch(path, json={"name": "Renamed"}, role="marketing"))["name"] == "Renamed"
    with plugged(api.app, Consent([ada["id"]])):
        send(api, created["id"], role="marketing")
    assert len(clientela_smtp.messages) == 1
    assert results(api, created["id"])["reach"] == 1
    for role in ("sales", "service"):
        assert api.get(CAMPAIGNS, role=role).status_code == 403
        assert api.get(path, role=role).status_code == 403
        assert api.post(CAMPAIGNS, json={"name": "x"}, role=role).status_code == 403
        assert api.get(f"{path}/results", role=role).status_code == 403
    # the analyst reads but neither writes nor sends
    assert api.get(f"{path}/results", role="analyst").status_code == 200
    assert api.patch(path, json={"name": "x"}, role="analyst").status_code == 403
    draft = campaign(api, role="marketing")
    assert api.post(f"{CAMPAIGNS}/{draft['id']}/send", role="analyst").status_code == 403
    assert api.post(CAMPAIGNS, json={"name": "x"}, role="analyst").status_code == 403


def test_campaigns_of_another_tenant_are_not_found(api, other_api):
    created = campaign(api, name="Secret campaign")
    assert other_api.get(f"{CAMPAIGNS}/{created['id']}").status_code == 404
    assert other_api.get(f"{CAMPAIGNS}/{created['id']}/results").status_code == 404
    assert "Secret" not in other_api.get(CAMPAIGNS).get_data(as_text=True)


def test_export_and_merge_cover_campaign_rows(api, clientela_smtp):
    ada = api.customer(first_name="Ada", email="ada@example.com")
    twin = api.customer(first_name="Ada", last_name="Twin", email="twin@example.com")
    created, (message,) = sent_to(api, clientela_smtp, ada)
    api.client.post(local(links(message)["unsubscribe"]))
    exported = ok(api.get(f"/api/v1/customers/{ada['id']}/export"))
    section = exported["plugins"]["operational"]["campaigns"]
    assert [r["status"] for r in section["received"]] == ["sent"]
    assert [o["channel"] for o in section["opt_outs"]] == ["email"]
    ok(api.post(f"/api/v1/customers/{twin['id']}/merge", json={"other_id": ada["id"]}))
    assert list(recipients(api, created["id"])) == [twin["id"]]
    # the opt-out moved with her: the survivor gets no marketing either
    assert ok(api.get(f"/api/v1/customers/{twin['id']}/export"))["plugins"]["operational"][
        "campaigns"]["opt_outs"][0]["channel"] == "email"
    summary = ok(api.post(f"/api/v1/customers/{twin['id']}/erase"))
    assert summary["plugins"]["operational"]["campaign_recipients_cleared"] == 1
    assert recipients(api, created["id"])[twin["id"]]["message_id"] is None


def test_a_reply_in_the_campaigns_thread_is_recorded_as_a_response(api, clientela_smtp):
    from clientela.core import services
    from clientela.core.models import Interaction

    ada = api.customer(first_name="Ada", email="ada@example.com")
    created, _ = sent_to(api, clientela_smtp, ada)
    hook = api.app.extensions["clientela"].plugins.hook
    with tenancy.tenant_context(api.tenant.id):
        outbound = db.session.execute(sa.select(Interaction).where(
            Interaction.customer_id == uuid.UUID(ada["id"]),
            Interaction.direction == "outbound")).scalar_one()
        reply = services.record_interaction(uuid.UUID(ada["id"]), "email",
                                            subject="Re: Hello Ada")
        # what the collaborative plugin asks for every inbound message it threads
        hook.clientela_inbound_message(interaction=reply, thread=[outbound])
        unrelated = services.record_interaction(uuid.UUID(ada["id"]), "email", subject="Hi")
        hook.clientela_inbound_message(interaction=unrelated, thread=[])
        db.session.commit()
    row = recipients(api, created["id"])[ada["id"]]
    assert row["replied_at"]
    assert results(api, created["id"])["responses"]["replied"] == {"count": 1,
                                                                   "rate": "1.0000"}
    (replied,) = [i for i in timeline(api, ada["id"]) if i["outcome"] == "replied"]
    assert replied["body"] == "Re: Hello Ada"


# --- the hosted profile: Row-Level Security underneath ----------------------------------


def test_sending_and_tracking_work_under_row_level_security(hosted, clientela_smtp):
    """The send job and the public endpoints find their tenant themselves; as the
    application role that RLS restricts, they see and write only that tenant's rows."""
    tokens = {}
    for name in ("a", "b"):
        s = slug(name)
        output = hosted.tenant(s, "--admin-email", f"admin@{s}.example")
        tokens[name] = (s, output.strip().splitlines()[-1].split()[-1])
    app = hosted.app
    clientela_smtp.configure(app)
    client = app.test_client()
    auth = {"Authorization": f"Bearer {tokens['a'][1]}"}
    ada = ok(client.post("/api/v1/customers", json={"first_name": "Ada",
                                                    "email": "ada@example.com"},
                         headers=auth), 201)
    created = ok(client.post(CAMPAIGNS, json={
        "name": "RLS", "subject": "Hi {{ first_name }}", "body": "https://shop.example/x",
        "html": '<a href="https://shop.example/x">x</a>'}, headers=auth), 201)
    ok(client.post(f"{CAMPAIGNS}/{created['id']}/members", json={"customer_ids": [ada["id"]]},
                   headers=auth))
    with plugged(app, Consent([ada["id"]])):
        started = ok(client.post(f"{CAMPAIGNS}/{created['id']}/send", headers=auth), 202)
        tenant_a = tenant_id_of(hosted, tokens["a"][0])
        assert jobs.queue_for(app).run(tenant_a, uuid.UUID(started["job_id"])) == "succeeded"
    (message,) = clientela_smtp.messages
    found = links(message)
    assert client.get(local(found["pixel"])).status_code == 200
    assert client.get(local(found["clicks"][0])).headers["Location"] == "https://shop.example/x"
    assert client.post(local(found["unsubscribe"])).status_code == 200
    figures = ok(client.get(f"{CAMPAIGNS}/{created['id']}/results", headers=auth))
    assert figures["reach"] == 1
    assert {k: v["count"] for k, v in figures["responses"].items()} == {
        "delivered": 1, "opened": 1, "clicked": 1, "replied": 0, "converted": 0,
        "unsubscribed": 1}
    other = {"Authorization": f"Bearer {tokens['b'][1]}"}
    assert client.get(f"{CAMPAIGNS}/{created['id']}", headers=other).status_code == 404
    assert client.get(CAMPAIGNS, headers=other).json == []
    with app.app_context():
        db.session.remove()
