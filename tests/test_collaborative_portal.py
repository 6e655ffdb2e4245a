"""The collaborative plugin's teams, communication centre, consent and customer self-service
portal, through HTTP on both backends; with the portal matrix: every portal route, customer
X's credentials never reach customer Y's data, in the same tenant or another one."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest

from clientela.core import channels, services, tenancy
from clientela.core.db import db
from clientela.core.errors import ValidationError

# the hosted instance (its own database, owner and RLS-restricted application roles)
from test_hosted import hosted  # noqa: E402,F401  (a fixture)
from test_hosted import slug as hosted_slug  # noqa: E402

TEAMS = "/api/v1/teams"
INBOX = "/api/v1/inbox"
PORTAL = "/portal/api/v1"
ACCOUNTS = "/api/v1/portal-accounts"


def ok(response, status=200):
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def ip() -> dict:
    """A client address of its own, so that login rate limits of tests never meet."""
    n = uuid.uuid4().int
    return {"REMOTE_ADDR": f"10.{n % 250}.{n // 250 % 250}.{n // 62500 % 250 + 1}"}


def staff(api, email: str, roles: list[str]) -> dict[str, str]:
    """A new user of ``api``'s tenant; returns its Authorization header."""
    ok(api.post("/api/v1/users", json={"email": email, "roles": roles}), 201)
    with tenancy.tenant_context(api.tenant.id):
        user = services.find_user(email)
        _, token = services.create_token(user)
        db.session.commit()
    return {"Authorization": f"Bearer {token}", "user_id": str(user.id)}


def as_user(api, method, path, who, json=None):
    headers = {"Authorization": who["Authorization"]}
    return api.client.open(path, method=method, headers=headers, json=json)


def inbound(api, customer_id, channel="email", subject="Help please", **extra):
    return ok(api.post(f"/api/v1/customers/{customer_id}/interactions",
                       json={"channel": channel, "direction": "inbound", "subject": subject,
                             **extra}), 201)


def item_of(api, interaction_id) -> dict:
    items = ok(api.get(f"{INBOX}?page_size=100"))
    return next(i for i in items if i["interaction_id"] == interaction_id)


def visible(api, who, path=INBOX) -> set[str]:
    return {i["id"] for i in ok(as_user(api, "GET", f"{path}", who))}


# --- teams and the team record scope ------------------------------------------------------------


def test_team_scope_sees_team_mates_customers_but_not_others(api):
    ok(api.post("/api/v1/roles", json={"name": "team-agent", "permissions": {
        "customers:read": "team", "customers:write": "team", "teams:read": "all"}}), 201)
    ada = staff(api, "ada@example.com", ["team-agent"])
    bob = staff(api, "bob@example.com", ["team-agent"])
    cyd = staff(api, "cyd@example.com", ["team-agent"])
    team = ok(api.post(TEAMS, json={"name": "North", "members": [
        {"user_id": ada["user_id"], "is_lead": True}, {"user_id": bob["user_id"]}]}), 201)
    of_ada = api.customer(first_name="OfAda", owner_id=ada["user_id"])
    of_bob = api.customer(first_name="OfBob", owner_id=bob["user_id"])
    of_cyd = api.customer(first_name="OfCyd", owner_id=cyd["user_id"])
    names = {c["first_name"] for c in ok(as_user(api, "GET", "/api/v1/customers", ada))}
    assert names == {"OfAda", "OfBob"}
    assert as_user(api, "GET", f"/api/v1/customers/{of_bob['id']}", ada).status_code == 200
    assert as_user(api, "GET", f"/api/v1/customers/{of_cyd['id']}", ada).status_code == 404
    # cyd, in no team, reaches only their own
    names = {c["first_name"] for c in ok(as_user(api, "GET", "/api/v1/customers", cyd))}
    assert names == {"OfCyd"}
    # removing bob from the team takes his customers out of ada's scope
    assert api.delete(f"{TEAMS}/{team['id']}/members/{bob['user_id']}").status_code == 204
    assert as_user(api, "GET", f"/api/v1/customers/{of_bob['id']}", ada).status_code == 404
    assert as_user(api, "GET", f"/api/v1/customers/{of_ada['id']}", ada).status_code == 200


def test_teams_members_and_leads(api):
    team = ok(api.post(TEAMS, json={"name": "Support", "description": "first line"}), 201)
    path = f"{TEAMS}/{team['id']}"
    assert api.post(TEAMS, json={"name": "support"}).status_code == 409
    lead = staff(api, "lead@example.com", ["service"])
    member = ok(api.post(f"{path}/members", json={"user_id": lead["user_id"]}), 201)
    assert member["is_lead"] is False and member["email"] == "lead@example.com"
    assert api.post(f"{path}/members", json={"user_id": lead["user_id"]}).status_code == 409
    # a service user without teams:write cannot manage members until made lead
    sales_id = str(api.users["sales"].id)
    denied = as_user(api, "POST", f"{path}/members", lead, json={"user_id": sales_id})
    assert denied.status_code == 403
    ok(api.patch(f"{path}/members/{lead['user_id']}", json={"is_lead": True}))
    ok(as_user(api, "POST", f"{path}/members", lead, json={"user_id": sales_id}), 201)
    members = ok(api.get(f"{path}/members"))
    assert {(m["email"], m["is_lead"]) for m in members} == {
        ("lead@example.com", True), (api.users["sales"].email, False)}
    assert api.post(f"{path}/members", json={"user_id": str(uuid.uuid4())}).status_code == 422
    assert ok(api.patch(path, json={"name": "Support EU"}))["name"] == "Support EU"
    assert api.patch(path, json={"name": "x"}, role="service").status_code == 403
    assert api.delete(path).status_code == 204
    assert api.get(path).status_code == 404


# --- the communication centre --------------------------------------------------------------------


def test_inbound_interactions_land_in_the_inbox_and_outbound_do_not(api):
    customer = api.customer(first_name="Ines", email="ines@example.com")
    first = inbound(api, customer["id"], channel="phone", subject="Call me back")
    ok(api.post(f"/api/v1/customers/{customer['id']}/interactions",
                json={"channel": "email", "direction": "outbound", "subject": "Newsletter"}), 201)
    items = ok(api.get(INBOX))
    assert [(i["interaction_id"], i["channel"], i["status"], i["customer_name"])
            for i in items] == [(first["id"], "phone", "open", "Ines")]
    with tenancy.tenant_context(api.tenant.id):
        services.record_interaction(uuid.UUID(customer["id"]), "letter", subject="By post")
        db.session.commit()
    assert {i["channel"] for i in ok(api.get(INBOX))} == {"phone", "letter"}


def test_inbox_assignment_and_team_queues(api):
    customer = api.customer(first_name="Queue")
    support = ok(api.post(TEAMS, json={"name": "Support"}), 201)
    billing = ok(api.post(TEAMS, json={"name": "Billing"}), 201)
    sam = staff(api, "sam@example.com", ["service"])
    bea = staff(api, "bea@example.com", ["service"])
    ok(api.post(f"{TEAMS}/{support['id']}/members", json={"user_id": sam["user_id"]}), 201)
    ok(api.post(f"{TEAMS}/{billing['id']}/members", json={"user_id": bea["user_id"]}), 201)
    to_support = item_of(api, inbound(api, customer["id"], subject="Broken")["id"])
    to_billing = item_of(api, inbound(api, customer["id"], subject="Invoice")["id"])
    shared = item_of(api, inbound(api, customer["id"], subject="Hello")["id"])
    ok(api.patch(f"{INBOX}/{to_support['id']}", json={"team_id": support["id"]}))
    ok(api.patch(f"{INBOX}/{to_billing['id']}", json={"team_id": billing["id"]}))
    # team scope: my teams' queues and the shared queue, never another team's
    assert visible(api, sam) == {to_support["id"], shared["id"]}
    assert visible(api, bea) == {to_billing["id"], shared["id"]}
    assert visible(api, sam, f"{INBOX}?team={support['id']}") == {to_support["id"]}
    assert as_user(api, "GET", f"{INBOX}/{to_billing['id']}", sam).status_code == 404
    assert as_user(api, "PATCH", f"{INBOX}/{to_billing['id']}", sam,
                   json={"status": "done"}).status_code == 404
    # the admin sees everything and filters per queue
    assert {i["id"] for i in ok(api.get(f"{INBOX}?team={billing['id']}"))} == {to_billing["id"]}
    # assignment to a user: own scope (sales) sees only what is assigned to them
    sales = {"Authorization": api.headers("sales")["Authorization"]}
    assert visible(api, sales) == set()
    assigned = ok(api.patch(f"{INBOX}/{shared['id']}",
                            json={"assignee_id": str(api.users["sales"].id)}))
    assert assigned["assignee_id"] == str(api.users["sales"].id)
    assert visible(api, sales) == {shared["id"]}
    assert visible(api, sales, f"{INBOX}?assignee=me") == {shared["id"]}
    # the shared item left the shared queue: sam no longer sees it
    assert visible(api, sam) == {to_support["id"]}
    # statuses
    done = ok(as_user(api, "PATCH", f"{INBOX}/{to_support['id']}", sam, json={"status": "done"}))
    assert done["status"] == "done" and done["done_at"]
    assert visible(api, sam, f"{INBOX}?status=open,pending") == set()
    assert api.patch(f"{INBOX}/{shared['id']}", json={"status": "closed"}).status_code == 422
    assert api.patch(f"{INBOX}/{shared['id']}",
                     json={"assignee_id": str(uuid.uuid4())}).status_code == 422
    assert api.patch(f"{INBOX}/{shared['id']}",
                     json={"team_id": str(uuid.uuid4())}).status_code == 422
    # an analyst has no inbox at all
    assert api.get(INBOX, role="analyst").status_code == 403


def test_mentions_show_the_item_to_the_mentioned_user(api, other_api):
    customer = api.customer(first_name="Mentioned")
    item = item_of(api, inbound(api, customer["id"], subject="Tricky")["id"])
    sales = {"Authorization": api.headers("sales")["Authorization"]}
    assert visible(api, sales) == set()
    marketing_local = api.users["marketing"].email.split("@")[0]
    note = ok(api.post(f"{INBOX}/{item['id']}/notes", json={
        "body": f"@{api.users['sales'].email} can you check? also @nobody and "
                f"@{other_api.users['sales'].email}, cc @{marketing_local}"}), 201)
    assert set(note["mentions"]) == {str(api.users["sales"].id), str(api.users["marketing"].id)}
    assert set(note["unresolved_mentions"]) == {"nobody", other_api.users["sales"].email}
    assert visible(api, sales) == {item["id"]}
    assert visible(api, sales, f"{INBOX}?mentioned=true") == {item["id"]}
    assert ok(as_user(api, "GET", f"{INBOX}/{item['id']}", sales))["subject"] == "Tricky"
    # the mentioned colleague answers in a note, without taking the item over
    ok(as_user(api, "POST", f"{INBOX}/{item['id']}/notes", sales, json={"body": "Checked."}), 201)
    notes = ok(as_user(api, "GET", f"{INBOX}/{item['id']}/notes", sales))
    assert [n["body"][:1] for n in notes] == ["@", "C"]
    assert as_user(api, "PATCH", f"{INBOX}/{item['id']}", sales,
                   json={"status": "done"}).status_code == 403
    # the other tenant's mentioned user sees nothing
    assert ok(other_api.get(INBOX, role="sales")) == []


def test_reply_goes_out_on_the_items_channel(api, clientela_smtp):
    clientela_smtp.configure(api.app)
    customer = api.customer(first_name="Rita", email="rita@example.com")
    item = item_of(api, inbound(api, customer["id"], channel="email", subject="Order 42")["id"])
    result = ok(api.post(f"{INBOX}/{item['id']}/reply", json={"body": "It ships today."}))
    assert result["status"] == "sent" and result["item"]["status"] == "pending"
    assert result["item"]["assignee_id"] == str(api.users["admin"].id)
    [message] = clientela_smtp.messages
    assert message["To"] == "rita@example.com" and message["Subject"] == "Re: Order 42"
    timeline = ok(api.get(f"/api/v1/customers/{customer['id']}/interactions"))
    assert any(i["direction"] == "outbound" and i["subject"] == "Re: Order 42" for i in timeline)
    # a reply on the portal channel is an outbound portal interaction
    portal_item = item_of(api, inbound(api, customer["id"], channel="portal", subject="Q")["id"])
    result = ok(api.post(f"{INBOX}/{portal_item['id']}/reply",
                         json={"body": "Answer", "status": "done"}))
    assert result["status"] == "sent" and result["item"]["status"] == "done"
    assert len(clientela_smtp.messages) == 1
    # a user who may not write the item cannot reply
    assert api.post(f"{INBOX}/{item['id']}/reply", json={"body": "x"},
                    role="analyst").status_code == 403


# --- consent ------------------------------------------------------------------------------------


def consent_path(customer) -> str:
    return f"/api/v1/customers/{customer['id']}/consents"


def test_consent_blocks_marketing_contact(api):
    customer = api.customer(first_name="Carla", email="carla@example.com")

    def allowed(purpose, channel="email"):
        with tenancy.tenant_context(api.tenant.id):
            found = services.get_customer(uuid.UUID(customer["id"]))
            return channels.contact_allowed(found, channel, purpose)

    # no record: marketing is forbidden (no recorded consent), service allowed
    assert allowed("marketing") is False and allowed("service") is True
    ok(api.post(consent_path(customer), json={"channel": "email", "purpose": "marketing",
                                              "granted": True, "source": "web_form:newsletter"}),
       201)
    assert allowed("marketing") is True
    assert allowed("marketing", channel="phone") is False
    ok(api.post(consent_path(customer), json={"channel": "email", "purpose": "marketing",
                                              "granted": False}), 201)
    assert allowed("marketing") is False
    with tenancy.tenant_context(api.tenant.id):
        found = services.get_customer(uuid.UUID(customer["id"]))
        result = channels.send_message({"channel": "email", "purpose": "marketing",
                                        "subject": "Sale!", "body": "..."}, found)
        db.session.rollback()
    assert result["status"] == "blocked"
    state = ok(api.get(consent_path(customer)))
    assert [(c["purpose"], c["granted"]) for c in state["current"]] == [("marketing", False)]
    assert [(c["granted"], c["source"]) for c in state["history"]] == [
        (False, "staff:" + api.users["admin"].email), (True, "web_form:newsletter")]
    listed = ok(api.get(f"/api/v1/consents?customer_id={customer['id']}&granted=false"))
    assert len(listed) == 1
    assert api.post(consent_path(customer), json={"channel": "pigeon", "purpose": "marketing",
                                                  "granted": True}).status_code == 422
    assert api.post(consent_path(customer), json={"channel": "email", "purpose": "spam",
                                                  "granted": True}).status_code == 422
    assert api.post(consent_path(customer), json={
        "channel": "email", "purpose": "marketing", "granted": True,
        "recorded_at": "2999-01-01T00:00:00Z"}).status_code == 422
    # withdrawing service consent blocks even service messages
    ok(api.post(consent_path(customer), json={"channel": "email", "purpose": "service",
                                              "granted": False}), 201)
    assert allowed("service") is False


def test_consent_records_are_append_only(api):
    customer = api.customer(first_name="Proof")
    record = ok(api.post(consent_path(customer), json={
        "channel": "email", "purpose": "marketing", "granted": True, "source": "fair"}), 201)
    from clientela.plugins.collaborative.collab_models import Consent

    with tenancy.tenant_context(api.tenant.id):
        row = db.session.execute(db.select(Consent).where(
            Consent.id == uuid.UUID(record["id"]))).scalar_one()
        row.granted = False
        with pytest.raises(ValidationError, match="append-only"):
            db.session.commit()
        db.session.rollback()
        row = db.session.execute(db.select(Consent).where(
            Consent.id == uuid.UUID(record["id"]))).scalar_one()
        db.session.delete(row)
        with pytest.raises(ValidationError, match="append-only"):
            db.session.commit()
        db.session.rollback()
    assert ok(api.get(consent_path(customer)))["current"][0]["granted"] is True


def test_unsubscribe_link_withdraws_marketing_consent(api, other_api):
    customer = api.customer(first_name="Una", email="una@example.com")
    ok(api.post(consent_path(customer), json={"channel": "email", "purpose": "marketing",
                                              "granted": True, "source": "signup"}), 201)
    link = ok(api.get(f"/api/v1/customers/{customer['id']}/unsubscribe-link"))
    path = "/u/" + link["token"]
    assert link["url"].endswith(path)
    page = api.client.get(path)
    assert page.status_code == 200 and b"<form" in page.data
    # a GET (a mail scanner following the link) changes nothing
    assert ok(api.get(consent_path(customer)))["current"][0]["granted"] is True
    done = api.client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and b"Unsubscribed" in done.data
    state = ok(api.get(consent_path(customer)))
    assert state["current"][0]["granted"] is False
    assert state["history"][0]["source"] == "unsubscribe_link"
    # a forged or altered token is refused, and another tenant cannot use it to reach Una
    assert api.client.post(path[:-2] + "xx").status_code == 404
    assert api.client.get("/u/not-a-token").status_code == 404
    from clientela.plugins.collaborative import consent

    with api.app.test_request_context():
        forged = consent.unsubscribe_token(other_api.tenant.id, uuid.UUID(customer["id"]))
    assert api.client.post("/u/" + forged).status_code == 404
    assert other_api.get(f"/api/v1/customers/{customer['id']}/unsubscribe-link").status_code == 404


# --- the customer self-service portal -----------------------------------------------------------

TOKEN_RE = re.compile(r"token=(clp[il]_[A-Za-z0-9_\-]+)")


def invite(api, smtp, customer, **data) -> tuple[dict, str]:
    """Open a portal account through the staff API; returns it and the e-mailed token."""
    before = len(smtp.messages)
    account = ok(api.post(ACCOUNTS, json={"customer_id": customer["id"], **data}), 201)
    assert account["invitation"]["status"] == "sent", account
    message = smtp.messages[before]
    assert message["To"] == data.get("email", customer["email"])
    body = message.get_body(("plain",)).get_content()
    return account, TOKEN_RE.search(body).group(1)


def portal_login(api, smtp, customer, password="portal-pass-1", **data) -> dict:
    account, token = invite(api, smtp, customer, **data)
    session = ok(api.client.post(f"{PORTAL}/auth/invitation",
                                 json={"token": token, "password": password},
                                 environ_base=ip()))
    return {"account": account, "token": session["token"],
            "headers": {"Authorization": f"Bearer {session['token']}"}}


def pget(api, who, path, **kw):
    return api.client.get(f"{PORTAL}{path}", headers=who["headers"], **kw)


def psend(api, who, method, path, json=None):
    return api.client.open(f"{PORTAL}{path}", method=method, headers=who["headers"], json=json)


def test_portal_invitation_password_and_one_time_link(api, clientela_smtp):
    clientela_smtp.configure(api.app)
    customer = api.customer(first_name="Paula", email="paula@example.com")
    account, token = invite(api, clientela_smtp, customer)
    assert account["status"] == "invited"
    assert token.startswith(f"clpi_{uuid.UUID(str(api.tenant.id)).hex}_")
    short = api.client.post(f"{PORTAL}/auth/invitation", json={"token": token, "password": "x"},
                            environ_base=ip())
    assert short.status_code == 422
    session = ok(api.client.post(f"{PORTAL}/auth/invitation",
                                 json={"token": token, "password": "a-long-secret"},
                                 environ_base=ip()))
    assert session["customer_id"] == customer["id"]
    # the invitation works once
    again = api.client.post(f"{PORTAL}/auth/invitation",
                            json={"token": token, "password": "another-secret"}, environ_base=ip())
    assert again.status_code == 401
    me = ok(api.client.get(f"{PORTAL}/me", headers={"Authorization": f"Bearer {session['token']}"}))
    assert me["customer"]["email"] == "paula@example.com" and me["account"]["is_admin"] is False
    # password login on the tenant's portal
    login = f"{PORTAL}/auth/login/{api.tenant.slug}"
    wrong = api.client.post(login, json={"email": "paula@example.com", "password": "nope-nope-1"},
                            environ_base=ip())
    assert wrong.status_code == 401
    good = ok(api.client.post(login, json={"email": "Paula@example.com",
                                           "password": "a-long-secret"}, environ_base=ip()))
    headers = {"Authorization": f"Bearer {good['token']}"}
    assert api.client.get(f"{PORTAL}/me", headers=headers).status_code == 200
    # the password of another tenant's portal does not open this one
    elsewhere = api.client.post(f"{PORTAL}/auth/login/no-such-tenant", json={
        "email": "paula@example.com", "password": "a-long-secret"}, environ_base=ip())
    assert elsewhere.status_code == 401
    # a one-time login link, e-mailed; the answer is the same for unknown addresses
    asked = api.client.post(f"{PORTAL}/auth/link/{api.tenant.slug}",
                            json={"email": "paula@example.com"}, environ_base=ip())
    assert asked.status_code == 202
    unknown = api.client.post(f"{PORTAL}/auth/link/{api.tenant.slug}",
                              json={"email": "ghost@example.com"}, environ_base=ip())
    assert unknown.status_code == 202 and unknown.json == asked.json
    body = clientela_smtp.messages[-1].get_body(("plain",)).get_content()
    link = TOKEN_RE.search(body).group(1)
    assert link.startswith("clpl_")
    linked = ok(api.client.post(f"{PORTAL}/auth/link", json={"token": link}))
    assert api.client.post(f"{PORTAL}/auth/link", json={"token": link}).status_code == 401
    # logout ends that session only
    link_headers = {"Authorization": f"Bearer {linked['token']}"}
    assert api.client.post(f"{PORTAL}/auth/logout", headers=link_headers).status_code == 204
    assert api.client.get(f"{PORTAL}/me", headers=link_headers).status_code == 401
    assert api.client.get(f"{PORTAL}/me", headers=headers).status_code == 200
    # disabling the account ends every session
    ok(api.patch(f"{ACCOUNTS}/{account['id']}", json={"status": "disabled"}))
    assert api.client.get(f"{PORTAL}/me", headers=headers).status_code == 401
    # tokens are stored hashed
    from clientela.plugins.collaborative.collab_models import PortalToken

    with tenancy.tenant_context(api.tenant.id):
        hashes = db.session.execute(db.select(PortalToken.token_hash)).scalars().all()
        db.session.rollback()
    assert all(good["token"] not in h for h in hashes) and all(len(h) == 64 for h in hashes)


def test_portal_customer_serves_themselves(api, clientela_smtp):
    clientela_smtp.configure(api.app)
    customer = api.customer(first_name="Sela", last_name="Self", email="sela@example.com")
    ok(api.post(f"/api/v1/customers/{customer['id']}/interactions",
                json={"channel": "phone", "direction": "outbound", "subject": "Welcome call"}), 201)
    ok(api.post(f"/api/v1/customers/{customer['id']}/interactions",
                json={"channel": "phone", "direction": "internal", "subject": "Staff only"}), 201)
    who = portal_login(api, clientela_smtp, customer)
    # master data: limited fields
    changed = ok(psend(api, who, "PATCH", "/me", {"last_name": "Selfridge",
                                                   "phone": "+39 06 1234 5678"}))
    assert changed["display_name"] == "Sela Selfridge" and changed["phone"] == "+390612345678"
    refused = psend(api, who, "PATCH", "/me", {"email": "new@example.com", "stage": "customer"})
    assert refused.status_code == 422 and set(refused.json["errors"]["json"]) == {"email", "stage"}
    assert ok(api.get(f"/api/v1/customers/{customer['id']}"))["last_name"] == "Selfridge"
    address = {"street": "Via Roma 1", "city": "Roma", "country": "IT"}
    assert ok(psend(api, who, "PATCH", "/me", {"addresses": [address]}))["addresses"] == [address]
    assert psend(api, who, "PATCH", "/me", {"addresses": [{"street": {"nested": 1}}]}
                 ).status_code == 422
    assert psend(api, who, "PATCH", "/me", {"addresses": [address] * 11}).status_code == 422
    # interactions: their own, without internal notes; the invitation's token is not kept
    mine = ok(pget(api, who, "/interactions"))
    assert [i["subject"] for i in mine] == ["Your invitation to the customer portal",
                                            "Welcome call"]
    assert "clpi_" not in mine[0]["body"] and "[one-time token removed]" in mine[0]["body"]
    # a message lands as an inbound portal interaction, in the communication centre
    message = ok(psend(api, who, "POST", "/messages", {"subject": "Question", "body": "When?"}),
                 201)
    assert message["channel"] == "portal" and message["direction"] == "inbound"
    item = item_of(api, message["id"])
    assert item["channel"] == "portal" and item["customer_id"] == customer["id"]
    ok(api.post(f"{INBOX}/{item['id']}/reply", json={"body": "Tomorrow."}))
    subjects = [i["subject"] for i in ok(pget(api, who, "/interactions"))]
    assert subjects[0] == "Re: Question" and "Question" in subjects
    assert psend(api, who, "POST", "/messages", {"subject": ""}).status_code == 422
    # consents
    ok(psend(api, who, "POST", "/consents", {"channel": "email", "purpose": "marketing",
                                             "granted": True}), 201)
    state = ok(pget(api, who, "/consents"))
    assert state["current"] == [{**state["current"][0], "granted": True, "source": "portal"}]
    staff_view = ok(api.get(consent_path(customer)))
    assert staff_view["current"][0]["source"] == "portal"
    # not an organisation admin: no people
    assert pget(api, who, "/people").status_code == 404
    # password change
    assert psend(api, who, "POST", "/auth/password", {"current_password": "wrong-one-1",
                                                      "new_password": "new-secret-1"}
                 ).status_code == 422
    assert psend(api, who, "POST", "/auth/password", {"current_password": "portal-pass-1",
                                                      "new_password": "new-secret-1"}
                 ).status_code == 204


def test_organisation_portal_admin_sees_the_organisations_people(api, clientela_smtp):
    clientela_smtp.configure(api.app)
    org = api.customer(kind="organisation", organisation_name="Acme")
    other_org = api.customer(kind="organisation", organisation_name="Globex")
    boss = api.customer(first_name="Boss", email="boss@acme.example", organisation_id=org["id"])
    worker = api.customer(first_name="Worker", organisation_id=org["id"])
    stranger = api.customer(first_name="Stranger", organisation_id=other_org["id"])
    who = portal_login(api, clientela_smtp, boss, is_admin=True)
    people = {p["first_name"] for p in ok(pget(api, who, "/people"))}
    assert people == {"Boss", "Worker"}
    assert ok(pget(api, who, f"/people/{worker['id']}"))["first_name"] == "Worker"
    assert pget(api, who, f"/people/{stranger['id']}").status_code == 404
    assert pget(api, who, f"/people/{other_org['id']}").status_code == 404
    assert ok(pget(api, who, "/me"))["organisation"]["display_name"] == "Acme"
    # an organisation cannot itself hold a portal account
    assert api.post(ACCOUNTS, json={"customer_id": org["id"],
                                    "email": "org@acme.example"}).status_code == 422


# --- the portal matrix --------------------------------------------------------------------------

ID_PARAM = re.compile(r"<(?:uuid:)?(\w+)>")
#: routes without a portal session, and what each is sent in the matrix
PUBLIC_ROUTES = {
    ("POST", f"{PORTAL}/auth/login/<portal_name>"),
    ("POST", f"{PORTAL}/auth/invitation"),
    ("POST", f"{PORTAL}/auth/link"),
    ("POST", f"{PORTAL}/auth/link/<portal_name>"),
}
#: bodies valid enough to get past input validation
BODIES = {
    ("PATCH", f"{PORTAL}/me"): {"first_name": "Pwned"},
    ("POST", f"{PORTAL}/messages"): {"subject": "s", "body": "b"},
    ("POST", f"{PORTAL}/consents"): {"channel": "email", "purpose": "marketing",
                                     "granted": False},
    ("POST", f"{PORTAL}/auth/password"): {"current_password": "wrong-password",
                                          "new_password": "whatever-1"},
}


def portal_routes(app):
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(PORTAL + "/") and "<path:" not in rule.rule:
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield method, rule.rule


def portal_world(api, smtp, marker: str) -> dict:
    """An organisation with an admin contact (X) and a colleague, their interactions."""
    org = api.customer(kind="organisation", organisation_name=f"{marker} Org")
    x = api.customer(first_name=f"{marker}X", email=f"{marker.lower()}x@example.com",
                     organisation_id=org["id"])
    mate = api.customer(first_name=f"{marker}Mate", organisation_id=org["id"])
    interaction = inbound(api, x["id"], subject=f"{marker} secret subject")
    case = api.post("/api/v1/cases", json={"subject": f"{marker} secret case",
                                           "customer_id": x["id"]})
    assert case.status_code == 201, case.json
    who = portal_login(api, smtp, x, is_admin=True)
    return {"org": org, "customer": x, "mate": mate, "interaction": interaction, "who": who,
            "case": case.json}


def test_portal_matrix_customer_x_never_reaches_customer_y(api, other_api, clientela_smtp):
    clientela_smtp.configure(api.app)
    x = portal_world(api, clientela_smtp, "Xena")
    y_same = portal_world(api, clientela_smtp, "Yuri")
    y_other = portal_world(other_api, clientela_smtp, "Zoe")
    # logging out ends X's session: that route goes last
    routes = sorted(portal_routes(api.app), key=lambda r: r[1].endswith("/auth/logout"))
    assert len(routes) >= 14
    targets = {"same tenant": y_same, "other tenant": y_other}
    checked = 0
    for method, rule in routes:
        body = BODIES.get((method, rule))
        if (method, rule) in PUBLIC_ROUTES:
            continue
        params = ID_PARAM.findall(rule)
        for label, y in targets.items():
            ids = {"interaction_id": y["interaction"]["id"], "customer_id": y["mate"]["id"]}
            for name in params:
                assert name in ids, f"give the matrix a record for <{name}> ({rule})"
            path = ID_PARAM.sub(lambda m: ids[m.group(1)], rule)
            # X's credentials on Y's records: not found, and nothing of Y in the answer
            response = api.client.open(path, method=method, headers=x["who"]["headers"],
                                       json=body)
            text = response.get_data(as_text=True)
            if params:
                assert response.status_code == 404, (label, method, rule, response.status_code)
            else:
                assert response.status_code < 500, (label, method, rule, response.json)
            for secret in ("Yuri", "Zoe", y["customer"]["id"], y["mate"]["id"]):
                assert secret not in text, (label, method, rule, secret)
            # and the same route with X's own ids works (the 404 was about Y)
            own = ID_PARAM.sub(lambda m: {"interaction_id": x["interaction"]["id"],
                                          "customer_id": x["mate"]["id"]}[m.group(1)], rule)
            if params and method == "GET":
                assert api.client.get(own, headers=x["who"]["headers"]).status_code == 200, own
            checked += 1
        # staff tokens do not work on the portal, whatever the route
        path = ID_PARAM.sub(lambda m: x["interaction"]["id"] if "interaction" in m.group(1)
                            else x["mate"]["id"], rule)
        for headers in (api.headers("admin"), other_api.headers("admin"), {}):
            response = api.client.open(path, method=method, headers=headers, json=body)
            assert response.status_code == 401, (method, rule, response.status_code)
    assert checked >= 20
    # writes through the matrix landed on X alone; Y's data is untouched
    assert ok(api.get(f"/api/v1/customers/{y_same['customer']['id']}"))["first_name"] == "YuriX"
    assert ok(other_api.get(f"/api/v1/customers/{y_other['customer']['id']}"))[
        "first_name"] == "ZoeX"
    assert ok(api.get(f"/api/v1/customers/{x['customer']['id']}"))["first_name"] == "Pwned"


def test_portal_tokens_are_refused_by_the_staff_api_and_tenant_bound(api, other_api,
                                                                     clientela_smtp):
    clientela_smtp.configure(api.app)
    x = portal_world(api, clientela_smtp, "Xavi")
    token = x["who"]["token"]
    headers = x["who"]["headers"]
    for path in ("/api/v1/me", "/api/v1/customers", f"/api/v1/customers/{x['customer']['id']}",
                 INBOX, "/api/v1/consents", ACCOUNTS):
        assert api.client.get(path, headers=headers).status_code == 401, path
    # the tenant comes from the token: pointing it at another tenant breaks it
    forged = token.replace(uuid.UUID(str(api.tenant.id)).hex,
                           uuid.UUID(str(other_api.tenant.id)).hex)
    assert api.client.get(f"{PORTAL}/me", headers={
        "Authorization": f"Bearer {forged}"}).status_code == 401
    # no header or parameter chooses the tenant
    response = api.client.get(f"{PORTAL}/me",
                              headers={**headers, "X-Tenant": other_api.tenant.slug},
                              query_string={"tenant": other_api.tenant.slug})
    assert ok(response)["customer"]["id"] == x["customer"]["id"]
    # public routes never accept a staff token or a session as a link
    for raw in (api.tokens["admin"], token):
        assert api.client.post(f"{PORTAL}/auth/link", json={"token": raw}).status_code == 401
        assert api.client.post(f"{PORTAL}/auth/invitation", json={
            "token": raw, "password": "long-enough-1"}, environ_base=ip()).status_code == 401
    # staff login credentials are not portal credentials
    assert api.client.post(f"{PORTAL}/auth/login/{api.tenant.slug}", json={
        "email": api.users["admin"].email, "password": "whatever-123"},
        environ_base=ip()).status_code == 401
    # unknown portal paths: 401 without a session, 404 with one, never a 500
    assert api.client.get(f"{PORTAL}/customers").status_code == 401
    assert api.client.get(f"{PORTAL}/customers", headers=headers).status_code == 404
    for payload in ("", "null", "[]", '{"first_name": 5}', '{"addresses": "x"}'):
        response = api.client.patch(f"{PORTAL}/me", data=payload, headers={
            **headers, "Content-Type": "application/json"})
        assert response.status_code == 422, payload


def test_staff_portal_accounts_are_scoped(api, other_api, clientela_smtp):
    clientela_smtp.configure(api.app)
    customer = api.customer(first_name="Scoped", email="scoped@example.com")
    account, _ = invite(api, clientela_smtp, customer)
    assert api.post(ACCOUNTS, json={"customer_id": customer["id"]}).status_code == 409
    assert [a["id"] for a in ok(api.get(ACCOUNTS))] == [account["id"]]
    assert ok(other_api.get(ACCOUNTS)) == []
    assert api.get(ACCOUNTS, role="sales").status_code == 403
    resent = ok(api.post(f"{ACCOUNTS}/{account['id']}/invitation"))
    assert resent["status"] == "sent" and len(clientela_smtp.messages) == 2
    assert api.delete(f"{ACCOUNTS}/{account['id']}").status_code == 204
    assert api.get(f"{ACCOUNTS}/{account['id']}").status_code == 404


def test_merge_and_erase_carry_the_plugins_records(api, clientela_smtp):
    clientela_smtp.configure(api.app)
    keep = api.customer(first_name="Keep", email="keep@example.com")
    gone = api.customer(first_name="Gone", email="gone@example.com")
    ok(api.post(consent_path(gone), json={"channel": "email", "purpose": "marketing",
                                          "granted": True, "source": "fair"}), 201)
    item = item_of(api, inbound(api, gone["id"])["id"])
    invite(api, clientela_smtp, gone)
    ok(api.post(f"/api/v1/customers/{keep['id']}/merge", json={"other_id": gone["id"]}))
    assert ok(api.get(consent_path(keep)))["current"][0]["granted"] is True
    assert ok(api.get(f"{INBOX}/{item['id']}"))["customer_id"] == keep["id"]
    assert [a["customer_id"] for a in ok(api.get(ACCOUNTS))] == [keep["id"]]
    exported = ok(api.get(f"/api/v1/customers/{keep['id']}/export"))
    assert exported["plugins"]["portal_account"]["email"] == "gone@example.com"
    assert exported["plugins"]["consents"][0]["source"] == "fair"
    ok(api.post(f"{INBOX}/{item['id']}/notes", json={"body": "gone@example.com called twice"}),
       201)
    erased = ok(api.post(f"/api/v1/customers/{keep['id']}/erase"))
    assert erased["plugins"]["collaborative"]["portal_accounts_deleted"] == 1
    assert ok(api.get(ACCOUNTS)) == []
    assert ok(api.get(f"{INBOX}/{item['id']}"))["subject"] == ""
    assert ok(api.get(f"{INBOX}/{item['id']}/notes"))[0]["body"] == "[erased]"
    # the proof stays, without its free text; no trace of the e-mail in the audit trail
    assert ok(api.get(consent_path(keep)))["current"][0]["source"] == "fair"
    audit = api.get("/api/v1/audit?page_size=100").get_data(as_text=True)
    assert "gone@example.com" not in audit


# --- under PostgreSQL Row-Level Security, as the hosted profile's web workers run ---------------


def test_the_portal_works_under_row_level_security(hosted, clientela_smtp):
    """Portal tokens find their tenant before any row is visible: from the token itself."""
    clientela_smtp.configure(hosted.app)
    s = hosted_slug("portal")
    staff_token = hosted.tenant(s, "--admin-email", f"admin@{s}.example").strip().split()[-1]
    client = hosted.app.test_client()
    headers = {"Authorization": f"Bearer {staff_token}"}
    customer = ok(client.post("/api/v1/customers", json={
        "first_name": "Rosa", "email": "rosa@example.com"}, headers=headers), 201)
    account = ok(client.post(ACCOUNTS, json={"customer_id": customer["id"]}, headers=headers), 201)
    assert account["invitation"]["status"] == "sent"
    body = clientela_smtp.messages[-1].get_body(("plain",)).get_content()
    invitation = TOKEN_RE.search(body).group(1)
    session = ok(client.post(f"{PORTAL}/auth/invitation", json={
        "token": invitation, "password": "rls-portal-1"}, environ_base=ip()))
    portal_headers = {"Authorization": f"Bearer {session['token']}"}
    me = ok(client.get(f"{PORTAL}/me", headers=portal_headers))
    assert me["customer"]["id"] == customer["id"]
    message = ok(client.post(f"{PORTAL}/messages", json={"subject": "Under RLS", "body": "hi"},
                             headers=portal_headers), 201)
    items = ok(client.get(INBOX, headers=headers))
    assert [i["interaction_id"] for i in items] == [message["id"]]
    login = ok(client.post(f"{PORTAL}/auth/login/{s}", json={
        "email": "rosa@example.com", "password": "rls-portal-1"}, environ_base=ip()))
    assert client.get(f"{PORTAL}/interactions", headers={
        "Authorization": f"Bearer {login['token']}"}).status_code == 200
    link = ok(client.get(f"/api/v1/customers/{customer['id']}/unsubscribe-link", headers=headers))
    assert client.post(f"/u/{link['token']}").status_code == 200
    state = ok(client.get(f"/api/v1/customers/{customer['id']}/consents", headers=headers))
    assert state["current"][0]["source"] == "unsubscribe_link"
    with hosted.app.app_context():
        db.session.remove()


def test_no_input_produces_a_500(api, clientela_smtp):
    clientela_smtp.configure(api.app)
    customer = api.customer(first_name="Robust", email="robust@example.com")
    item = item_of(api, inbound(api, customer["id"])["id"])
    team = ok(api.post(TEAMS, json={"name": "Robust"}), 201)
    who = portal_login(api, clientela_smtp, customer)
    weird = ["", "null", "[]", "{}", '{"name": null}', '{"body": 5}', '{"user_id": "nope"}',
             '{"status": []}', '{"assignee_id": "x"}', '{"granted": "maybe"}', "\x00\x01",
             '{"channel": "' + "x" * 5000 + '"}', '{"customer_id": null}', '{"token": 7}']
    staff_paths = [TEAMS, f"{TEAMS}/{team['id']}", f"{TEAMS}/{team['id']}/members",
                   f"{INBOX}/{item['id']}", f"{INBOX}/{item['id']}/notes",
                   f"{INBOX}/{item['id']}/reply", consent_path(customer), ACCOUNTS]
    for path in staff_paths:
        for payload in weird:
            for method in ("POST", "PATCH"):
                response = api.client.open(path, method=method, data=payload, headers={
                    **api.headers(), "Content-Type": "application/json"})
                assert response.status_code < 500, (method, path, payload, response.json)
    portal_paths = ["/me", "/messages", "/consents", "/auth/password", "/auth/link",
                    "/auth/invitation", f"/auth/login/{api.tenant.slug}"]
    for path in portal_paths:
        for payload in weird:
            for method in ("POST", "PATCH"):
                response = api.client.open(f"{PORTAL}{path}", method=method, data=payload,
                                           environ_base=ip(), headers={
                                               **who["headers"],
                                               "Content-Type": "application/json"})
                assert response.status_code < 500, (method, path, payload, response.json)
    for query in ("status=%00", "team=nope", "assignee=nope", "page=-1", "mentioned=maybe"):
        assert api.get(f"{INBOX}?{query}").status_code < 500, query
    for query in ("page=0", "page=x", "page_size=1000"):
        assert pget(api, who, f"/interactions?{query}").status_code == 422, query


def test_expired_portal_tokens_are_purged_by_a_daily_job(api, clientela_smtp):
    import sqlalchemy as sa

    from clientela.core import jobs
    from clientela.core.db import utcnow
    from clientela.plugins.collaborative.collab_models import PortalToken

    clientela_smtp.configure(api.app)
    customer = api.customer(first_name="Old", email="old@example.com")
    who = portal_login(api, clientela_smtp, customer)
    with tenancy.tenant_context(api.tenant.id):
        # the used invitation expired long ago; the session is current
        db.session.execute(sa.update(PortalToken).where(PortalToken.kind == "invite")
                           .values(expires_at=utcnow() - dt.timedelta(days=40)))
        job_id = jobs.enqueue("collaborative.purge_portal_tokens")
        db.session.commit()
    assert jobs.queue_for(api.app).run(api.tenant.id, job_id) == "succeeded"
    with tenancy.tenant_context(api.tenant.id):
        kinds = db.session.execute(db.select(PortalToken.kind)).scalars().all()
        db.session.rollback()
    assert kinds == ["session"]
    assert pget(api, who, "/me").status_code == 200


def test_the_portal_shows_ones_cases_and_a_message_opens_one(api, other_api, clientela_smtp):
    """With the operational plugin, the customer sees their service cases in the portal,
    and a message written there opens a case (or joins none of anyone else's)."""
    clientela_smtp.configure(api.app)
    x = portal_world(api, clientela_smtp, "Xiomara")
    y = portal_world(api, clientela_smtp, "Yannick")
    headers = x["who"]["headers"]
    seen = api.client.get("/portal/api/v1/records", headers=headers)
    assert seen.status_code == 200
    assert [c["subject"] for c in seen.json["cases"]] == ["Xiomara secret case"]
    assert "Yannick" not in seen.get_data(as_text=True)
    written = api.client.post("/portal/api/v1/messages", headers=headers,
                              json={"subject": "Broken hinge", "body": "It squeaks."})
    assert written.status_code == 201, written.json
    cases = ok(api.get(f"/api/v1/cases?customer_id={x['customer']['id']}"))
    assert sorted(c["subject"] for c in cases) == ["Broken hinge", "Xiomara secret case"]
    again = api.client.get("/portal/api/v1/records", headers=headers).json["cases"]
    assert {c["subject"] for c in again} == {"Broken hinge", "Xiomara secret case"}
    assert all(set(c) == {"id", "subject", "status", "priority", "category", "opened_at",
                          "resolved_at"} for c in again)
    theirs = api.client.get("/portal/api/v1/records", headers=y["who"]["headers"]).json
    assert [c["subject"] for c in theirs["cases"]] == ["Yannick secret case"]
