"""The collaborative and analytical plugins' pages through the Flask test client, on SQLite and
PostgreSQL: the communication centre (inbox, conversation, reply, assign, notes), the customer
portal pages (only one's own data; 404 for anything else, in this tenant or another), the
segments and RFM pages, the dashboard widget and the customer panels; permissions and CSRF."""

from __future__ import annotations

import re
import uuid

import pytest

from clientela.core import security, services, tenancy
from clientela.core.db import db

INBOX = "/app/inbox"
_CLIENTS: dict = {}


def staff(site, role: str):
    """One logged-in test client per role and backend (logins are rate-limited per address)."""
    key = (site.backend, role)
    if key not in _CLIENTS:
        client = site.app.test_client()
        client.environ_base.update(ip())
        token = csrf_of(client.get("/app/login").text)
        answer = client.post("/app/login", data={"email": site.email(role),
                                                  "password": site.password,
                                                  "csrf_token": token})
        assert answer.status_code == 302, f"login as {role} failed: {answer.status_code}"
        client.csrf = re.search(r'name="csrf-token" content="([^"]+)"',
                                client.get("/app/").text).group(1)
        _CLIENTS[key] = client
    return _CLIENTS[key]


def ip() -> dict:
    """A client address of its own, so that login rate limits of tests never meet."""
    n = uuid.uuid4().int
    return {"REMOTE_ADDR": f"10.{n % 250}.{n // 250 % 250}.{n // 62500 % 250 + 1}"}


def in_tenant(site, tenant_id=None):
    """``with in_tenant(site):`` — the site's app context in its tenant (or another)."""
    import contextlib

    @contextlib.contextmanager
    def context():
        with site.app.app_context(), tenancy.tenant_context(tenant_id or site.tenant_id):
            yield
            db.session.commit()

    return context()


def new_customer(marker: str, **data):
    return services.create_customer({"first_name": marker, "last_name": "Webtest",
                                     "email": f"{marker.lower()}@example.com", **data})


def inbound_item(site, marker: str, channel: str = "email", tenant_id=None):
    """A customer of ``marker`` with one inbound message; returns (customer id, item id)."""
    from clientela.plugins.collaborative.collab_models import InboxItem

    with in_tenant(site, tenant_id):
        customer = new_customer(marker)
        interaction = services.record_interaction(
            customer.id, channel, direction="inbound", subject=f"Question {marker}",
            body=f"Body of {marker}", attributes={"from": customer.email} if channel == "email"
            else {})
        db.session.commit()  # the inbox item is made before the commit
        item = db.session.execute(db.select(InboxItem).where(
            InboxItem.interaction_id == interaction.id)).scalar_one()
        return customer.id, item.id


@pytest.fixture(scope="module")
def other_tenant(clientela_site):
    """A second tenant with a customer, an inbox item, a portal account, a case and a segment."""
    from clientela.plugins.analytical.models import AnalyticalSegment

    site = clientela_site
    with site.app.app_context():
        slug = f"other-{uuid.uuid4().hex[:8]}"
        tenant = services.create_tenant(slug, name="Other company")
        tenant_id = tenant.id
    customer_id, item_id = inbound_item(site, f"Foreign{uuid.uuid4().hex[:6]}",
                                        tenant_id=tenant_id)
    with in_tenant(site, tenant_id):
        account = portal_account(customer_id)
        message, case_id = portal_case(account, "Foreign case")
        segment = AnalyticalSegment(name="Foreign segment", description="",
                                    rules=[{"field": "orders", "op": "gte", "value": 1}])
        db.session.add(segment)
        db.session.flush()
        return {"tenant_id": tenant_id, "item_id": item_id, "customer_id": customer_id,
                "interaction_id": message, "case_id": case_id, "segment_id": segment.id}


# --- the communication centre ------------------------------------------------------------------


def test_inbox_lists_messages_with_filters(clientela_site):
    site = clientela_site
    _, item_id = inbound_item(site, f"Listed{uuid.uuid4().hex[:6]}")
    phone_customer, _ = inbound_item(site, f"Called{uuid.uuid4().hex[:6]}", channel="phone")
    client = staff(site, "admin")
    for view in ("open", "mine", "team", "all"):
        page = client.get(f"{INBOX}?view={view}")
        assert page.status_code == 200, view
        assert "Content-Security-Policy" in page.headers
    assert str(item_id) in client.get(f"{INBOX}?view=open").text
    assert str(item_id) not in client.get(f"{INBOX}?view=mine").text
    assert str(item_id) in client.get(f"{INBOX}?view=all&status=open").text
    assert str(item_id) not in client.get(f"{INBOX}?view=all&status=done").text
    # the navigation offers the inbox to whom may read it, and the channel label is translated
    assert 'href="/app/inbox"' in client.get("/app/").text
    italian = client.get(f"{INBOX}?view=all", headers={"Accept-Language": "it"}).text
    assert "Posta in arrivo" in italian and "E-mail" in italian
    assert "Telefonata" in staff(site, "admin").get(
        f"/app/customers/{phone_customer}", headers={"Accept-Language": "it"}).text


def test_inbox_needs_the_inbox_permission(clientela_site):
    site = clientela_site
    _, item_id = inbound_item(site, f"Perm{uuid.uuid4().hex[:6]}")
    analyst = staff(site, "analyst")  # no inbox:read
    assert analyst.get(INBOX).status_code == 403
    assert analyst.get(f"{INBOX}/{item_id}").status_code == 403
    assert 'href="/app/inbox"' not in analyst.get("/app/").text
    answer = analyst.post(f"{INBOX}/{item_id}/reply", data={"body": "x",
                                                           "csrf_token": analyst.csrf})
    assert answer.status_code == 403


def test_reply_from_the_inbox_goes_out_and_joins_the_conversation(clientela_site):
    from clientela.plugins.collaborative.collab_models import InboxItem

    site = clientela_site
    _, item_id = inbound_item(site, f"Reply{uuid.uuid4().hex[:6]}")
    client = staff(site, "service")
    page = client.get(f"{INBOX}/{item_id}")
    assert page.status_code == 200 and "Body of Reply" in page.text
    answer = client.post(f"{INBOX}/{item_id}/reply", data={
        "body": "We are on it: your order ships tomorrow.", "status": "pending",
        "csrf_token": client.csrf})
    assert answer.status_code == 302
    page = client.get(answer.headers["Location"])
    assert "Reply sent." in page.text
    assert "We are on it: your order ships tomorrow." in page.text
    with in_tenant(site):
        item = db.session.get(InboxItem, (site.tenant_id, item_id))
        assert item.status == "pending" and item.assignee_id is not None
    # an empty reply is a form error, not a send
    answer = client.post(f"{INBOX}/{item_id}/reply", data={"body": " ",
                                                           "csrf_token": client.csrf})
    assert answer.status_code == 422 and "Write a reply." in answer.text


def test_reply_on_a_channel_that_cannot_send_is_a_form_error(clientela_site):
    site = clientela_site
    _, item_id = inbound_item(site, f"Letter{uuid.uuid4().hex[:6]}", channel="letter")
    client = staff(site, "admin")
    answer = client.post(f"{INBOX}/{item_id}/reply", data={"body": "Hello",
                                                           "csrf_token": client.csrf})
    assert answer.status_code == 422
    assert "no installed plugin sends on" in answer.text


def test_assign_mark_done_and_note(clientela_site):
    from clientela.plugins.collaborative.collab_models import InboxItem

    site = clientela_site
    _, item_id = inbound_item(site, f"Assign{uuid.uuid4().hex[:6]}")
    client = staff(site, "manager")
    assert client.post(f"{INBOX}/{item_id}/update", data={
        "action": "take", "csrf_token": client.csrf}).status_code == 302
    assert str(item_id) in client.get(f"{INBOX}?view=mine").text
    assert client.post(f"{INBOX}/{item_id}/update", data={
        "action": "done", "csrf_token": client.csrf}).status_code == 302
    answer = client.post(f"{INBOX}/{item_id}/notes", data={
        "note": "Checked with @sales@demo.example", "csrf_token": client.csrf})
    assert answer.status_code == 302
    page = client.get(f"{INBOX}/{item_id}").text
    assert "Checked with @sales@demo.example" in page
    with in_tenant(site):
        item = db.session.get(InboxItem, (site.tenant_id, item_id))
        assert item.status == "done" and item.done_at is not None
    # a bad status and an unknown assignee are per-field errors
    answer = client.post(f"{INBOX}/{item_id}/update", data={
        "status": "bogus", "assignee_id": "not-a-uuid", "csrf_token": client.csrf})
    assert answer.status_code == 422
    answer = client.post(f"{INBOX}/{item_id}/update", data={
        "status": "bogus", "csrf_token": client.csrf})
    assert answer.status_code == 422 and "must be one of" in answer.text
    # a mentioned user now sees the item, whatever their scope
    assert staff(site, "sales").get(f"{INBOX}/{item_id}").status_code == 200


def test_inbox_forms_need_the_csrf_token(clientela_site):
    site = clientela_site
    _, item_id = inbound_item(site, f"Csrf{uuid.uuid4().hex[:6]}")
    client = staff(site, "admin")
    for path, data in ((f"{INBOX}/{item_id}/reply", {"body": "x"}),
                       (f"{INBOX}/{item_id}/update", {"action": "take"}),
                       (f"{INBOX}/{item_id}/notes", {"note": "x"})):
        assert client.post(path, data=data).status_code == 403, path
        assert client.post(path, data={**data, "csrf_token": "forged"}).status_code == 403


def test_inbox_items_out_of_scope_or_of_another_tenant_are_404(clientela_site, other_tenant):
    site = clientela_site
    _, item_id = inbound_item(site, f"Scope{uuid.uuid4().hex[:6]}")
    sales = staff(site, "sales")  # inbox scope own: neither assigned nor mentioned
    admin = staff(site, "admin")
    for client, target in ((sales, item_id), (admin, other_tenant["item_id"]),
                           (admin, "not-an-id"), (admin, uuid.uuid4())):
        assert client.get(f"{INBOX}/{target}").status_code == 404, target
        for action, data in (("reply", {"body": "x"}), ("update", {"action": "take"}),
                             ("notes", {"note": "x"})):
            answer = client.post(f"{INBOX}/{target}/{action}",
                                 data={**data, "csrf_token": client.csrf})
            assert answer.status_code == 404, (target, action)
    assert str(other_tenant["item_id"]) not in admin.get(f"{INBOX}?view=all").text


def test_customer_page_shows_consent_and_recent_messages(clientela_site):
    from clientela.plugins.collaborative import consent

    site = clientela_site
    customer_id, item_id = inbound_item(site, f"Panel{uuid.uuid4().hex[:6]}")
    with in_tenant(site):
        consent.record(customer_id, "email", "marketing", True, "test")
    page = staff(site, "service").get(f"/app/customers/{customer_id}").text
    assert 'id="panel-consent"' in page and "Granted" in page
    assert 'id="panel-inbox"' in page and str(item_id) in page
    # the analyst may read consent but not the inbox
    page = staff(site, "analyst").get(f"/app/customers/{customer_id}").text
    assert 'id="panel-consent"' in page and 'id="panel-inbox"' not in page


# --- the customer portal -----------------------------------------------------------------------


def portal_account(customer_id, password: str = "portal-pass-123"):
    from clientela.plugins.collaborative.collab_models import PortalAccount

    customer = services.get_customer(customer_id)
    account = PortalAccount(customer_id=customer_id, email=customer.email, status="active",
                            password_hash=security.hash_password(password))
    db.session.add(account)
    db.session.flush()
    return account


def portal_case(account, subject: str):
    """A message from the portal customer (the operational plugin opens a case for it)."""
    from clientela.plugins.collaborative import portal

    interaction = portal.write_message(account, subject, f"About {subject}")
    case_id = next(c["id"] for c in portal.records(account)["cases"] if c["subject"] == subject)
    return interaction.id, case_id


@pytest.fixture(scope="module")
def portal_world(clientela_site):
    """Customers A and B of the site's tenant, each with a portal account and a case."""
    site = clientela_site
    world = {}
    for key in ("A", "B"):
        marker = f"Portal{key}{uuid.uuid4().hex[:6]}"
        with in_tenant(site):
            customer = new_customer(marker, phone="+39 06 1234567")
            account = portal_account(customer.id)
            interaction_id, case_id = portal_case(account, f"Case of {marker}")
            world[key] = {"customer_id": customer.id, "email": customer.email,
                          "name": customer.display_name, "case_id": case_id,
                          "interaction_id": interaction_id, "marker": marker}
    return world


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def portal_client(site, email: str, password: str = "portal-pass-123"):
    client = site.app.test_client()
    client.environ_base.update(ip())
    token = csrf_of(client.get("/portal/login").text)
    answer = client.post("/portal/login", data={"email": email, "password": password,
                                                "csrf_token": token})
    assert answer.status_code == 302, answer.text
    client.csrf = token
    client.login_answer = answer
    return client


def test_portal_login_sets_its_own_cookie(clientela_site, portal_world):
    site = clientela_site
    client = site.app.test_client()
    client.environ_base.update(ip())
    assert client.get("/portal/").status_code == 302  # to the login page
    page = client.get("/portal/login")
    assert page.status_code == 200 and "Content-Security-Policy" in page.headers
    token = csrf_of(page.text)
    wrong = client.post("/portal/login", data={"email": portal_world["A"]["email"],
                                               "password": "wrong-password!",
                                               "csrf_token": token})
    assert wrong.status_code == 401 and "Wrong e-mail or password." in wrong.text
    assert client.post("/portal/login", data={"email": portal_world["A"]["email"],
                                              "password": "portal-pass-123"}).status_code == 403
    client = portal_client(site, portal_world["A"]["email"])
    cookie = client.login_answer.headers["Set-Cookie"]
    assert cookie.startswith("clientela_portal=clps_")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/portal" in cookie
    # a staff session is no portal session, and the portal cookie opens no staff page
    assert staff(site, "admin").get("/portal/").status_code == 302
    assert client.get("/app/").status_code == 302
    # logging out ends the session on the server
    raw = client.get_cookie("clientela_portal", path="/portal").value
    assert client.post("/portal/logout", data={"csrf_token": client.csrf}).status_code == 302
    fresh = site.app.test_client()
    fresh.set_cookie("clientela_portal", raw, path="/portal")
    assert fresh.get("/portal/").status_code == 302


def test_portal_customer_sees_only_their_own_data(clientela_site, portal_world, other_tenant):
    site = clientela_site
    a, b = portal_world["A"], portal_world["B"]
    client = portal_client(site, a["email"])
    pages = {path: client.get(path) for path in (
        "/portal/", "/portal/me", "/portal/cases", f"/portal/cases/{a['case_id']}",
        "/portal/messages", f"/portal/messages/{a['interaction_id']}", "/portal/messages/new",
        "/portal/consent")}
    for path, page in pages.items():
        assert page.status_code == 200, path
        assert b["marker"] not in page.text, path
        assert page.headers["Cache-Control"] == "no-store"
    assert a["name"] in pages["/portal/"].text and a["email"] in pages["/portal/me"].text
    assert f"Case of {a['marker']}" in pages["/portal/cases"].text
    # B's records, another tenant's, and ids that are no ids: 404
    for path in (f"/portal/cases/{b['case_id']}", f"/portal/messages/{b['interaction_id']}",
                 f"/portal/cases/{other_tenant['case_id']}",
                 f"/portal/messages/{other_tenant['interaction_id']}",
                 f"/portal/messages/{other_tenant['item_id']}",
                 "/portal/cases/nope", "/portal/messages/nope", f"/portal/cases/{uuid.uuid4()}"):
        page = client.get(path)
        assert page.status_code == 404, path
        assert b["marker"] not in page.text


def test_portal_customer_writes_corrects_and_consents(clientela_site, portal_world):
    from clientela.plugins.collaborative import consent

    site = clientela_site
    a = portal_world["A"]
    client = portal_client(site, a["email"])
    # open a case by writing a message
    assert client.post("/portal/messages/new", data={
        "subject": "Broken zip", "body": "The zip broke."}).status_code == 403  # no CSRF
    answer = client.post("/portal/messages/new", data={
        "subject": "Broken zip", "body": "The zip broke.", "csrf_token": client.csrf})
    assert answer.status_code == 302
    assert "Broken zip" in client.get("/portal/cases").text
    answer = client.post("/portal/messages/new", data={"subject": "", "body": "",
                                                       "csrf_token": client.csrf})
    assert answer.status_code == 422 and 'aria-invalid="true"' in answer.text
    # correct one's own data
    answer = client.post("/portal/me", data={"first_name": "Renamed", "last_name": "Webtest",
                                             "phone": "not a phone", "csrf_token": client.csrf})
    assert answer.status_code == 422
    answer = client.post("/portal/me", data={"first_name": a["marker"], "last_name": "Webtest",
                                             "phone": "+39 06 7654321",
                                             "csrf_token": client.csrf})
    assert answer.status_code == 302
    # consent
    answer = client.post("/portal/consent", data={"channel": "email", "purpose": "marketing",
                                                  "granted": "no", "csrf_token": client.csrf})
    assert answer.status_code == 302
    assert client.post("/portal/consent", data={
        "channel": "email", "purpose": "bogus", "granted": "no",
        "csrf_token": client.csrf}).status_code == 422
    with in_tenant(site):
        assert consent.contact_allowed(a["customer_id"], "email", "marketing") is False
        assert consent.latest(a["customer_id"], "email", "marketing").source == "portal"
        assert services.get_customer(a["customer_id"]).phone.endswith("7654321")
    assert "Withdraw" not in client.get("/portal/consent").text.split("History")[0].split(
        "Offers and news")[1].split("</tr>")[0]


def test_portal_one_time_link_logs_in(clientela_site, portal_world):
    from clientela.plugins.collaborative import portal
    from clientela.plugins.collaborative.collab_models import PortalAccount

    site = clientela_site
    with in_tenant(site):
        account = db.session.execute(db.select(PortalAccount).where(
            PortalAccount.email == portal_world["B"]["email"])).scalar_one()
        raw = portal.new_token(account, "link", __import__("datetime").timedelta(minutes=5))
    client = site.app.test_client()
    client.environ_base.update(ip())
    token = csrf_of(client.get("/portal/login").text)
    answer = client.post("/portal/link", data={"token": raw, "csrf_token": token})
    assert answer.status_code == 302
    assert portal_world["B"]["name"] in client.get("/portal/").text
    # once only
    other = site.app.test_client()
    token = csrf_of(other.get("/portal/login").text)
    assert other.post("/portal/link", data={"token": raw, "csrf_token": token}).status_code == 401


# --- analytics ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def analytics_world(clientela_site, tmp_path_factory):
    """Purchases of three new customers in the site's warehouse, and a saved segment."""
    import csv
    import datetime as dt

    from clientela.plugins.analytical import imports
    from clientela.plugins.analytical.models import AnalyticalSegment

    site = clientela_site
    marker = uuid.uuid4().hex[:6]
    path = tmp_path_factory.mktemp("analytics") / "orders.csv"
    today = dt.date.today()
    with in_tenant(site):
        # buyer i orders 1 + i % 5 times, last 10 + 45 * (i % 7) days ago: every RFM score
        buyers = [new_customer(f"Buyer{i}{marker}") for i in range(20)]
        db.session.flush()
        with open(path, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["Order", "Date", "Email", "SKU", "Total"])
            for i, buyer in enumerate(buyers):
                for n in range(1 + i % 5):
                    day = today - dt.timedelta(days=10 + 45 * (i % 7) + 30 * n)
                    writer.writerow([f"{marker}-{i}-{n}", day.isoformat(), buyer.email,
                                     f"SKU-{n % 3}", 100 * (i % 4 + 1)])
        db.session.commit()
        imports.import_transactions(str(path), columns={
            "Order": "order_id", "Date": "ordered_at", "Email": "customer_email",
            "SKU": "product_id", "Total": "amount"})
        segment = AnalyticalSegment(name=f"Repeat buyers {marker}", description="two or more",
                                    rules=[{"field": "orders", "op": "gte", "value": 2}])
        db.session.add(segment)
        db.session.flush()
        return {"segment_id": segment.id, "buyers": [b.id for b in buyers],
                "names": [b.display_name for b in buyers]}


def test_segments_pages_and_csv(clientela_site, analytics_world, other_tenant):
    site = clientela_site
    client = staff(site, "analyst")
    page = client.get("/app/analytics/segments")
    assert page.status_code == 200 and "Repeat buyers" in page.text
    assert "Foreign segment" not in page.text
    segment_id = analytics_world["segment_id"]
    page = client.get(f"/app/analytics/segments/{segment_id}")
    assert page.status_code == 200
    names = analytics_world["names"]
    assert names[1] in page.text and names[2] in page.text and names[0] not in page.text
    csv_answer = client.get(f"/app/analytics/segments/{segment_id}/members.csv")
    assert csv_answer.status_code == 200 and csv_answer.mimetype == "text/csv"
    assert str(analytics_world["buyers"][2]) in csv_answer.text
    for target in (other_tenant["segment_id"], "nope", uuid.uuid4()):
        assert client.get(f"/app/analytics/segments/{target}").status_code == 404
        assert client.get(f"/app/analytics/segments/{target}/members.csv").status_code == 404
    sales = staff(site, "sales")  # no analytics:read
    assert sales.get("/app/analytics/segments").status_code == 403
    assert sales.get(f"/app/analytics/segments/{segment_id}").status_code == 403
    assert sales.get("/app/analytics/rfm").status_code == 403


def test_rfm_page_dashboard_widget_and_customer_panel(clientela_site, analytics_world):
    site = clientela_site
    client = staff(site, "analyst")
    page = client.get("/app/analytics/rfm")
    assert page.status_code == 200 and "Champions" in page.text and "<svg" in page.text
    italian = client.get("/app/analytics/rfm", headers={"Accept-Language": "it"}).text
    assert "Campioni" in italian
    dashboard = client.get("/app/").text
    assert 'id="widget-rfm_segment_sizes"' in dashboard
    assert 'id="widget-rfm_segment_sizes"' not in staff(site, "sales").get("/app/").text
    buyer = analytics_world["buyers"][2]
    page = client.get(f"/app/customers/{buyer}").text
    assert 'id="panel-analytics"' in page and "RFM segment" in page
    assert 'id="panel-analytics"' not in staff(site, "sales").get(f"/app/customers/{buyer}").text


def test_catalogues_are_complete():
    import os

    from clientela.core.web import messages

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for package in ("plugins/collaborative", "plugins/analytical"):
        assert messages.missing(os.path.join(root, package)) == {}, package


def test_portal_invitation_sets_the_password_once(clientela_site):
    import datetime as dt

    from clientela.plugins.collaborative import portal
    from clientela.plugins.collaborative.collab_models import PortalAccount

    site = clientela_site
    with in_tenant(site):
        customer = new_customer(f"Invited{uuid.uuid4().hex[:6]}")
        account = PortalAccount(customer_id=customer.id, email=customer.email, status="invited")
        db.session.add(account)
        db.session.flush()
        raw = portal.new_token(account, "invite", dt.timedelta(hours=1))
        email, name = customer.email, customer.display_name
    client = site.app.test_client()
    client.environ_base.update(ip())
    page = client.get("/portal/invitation")
    assert page.status_code == 200 and 'data-token-form' in page.text
    token = csrf_of(page.text)
    short = client.post("/portal/invitation", data={"token": raw, "password": "short",
                                                    "csrf_token": token})
    assert short.status_code == 422 and 'aria-invalid="true"' in short.text
    answer = client.post("/portal/invitation", data={"token": raw, "password": "a-new-pass-42",
                                                     "csrf_token": token})
    assert answer.status_code == 302
    assert name in client.get("/portal/").text
    again = site.app.test_client()
    token = csrf_of(again.get("/portal/invitation").text)
    assert again.post("/portal/invitation", data={"token": raw, "password": "other-pass-42",
                                                  "csrf_token": token}).status_code == 401
    assert portal_client(site, email, "a-new-pass-42").get("/portal/").status_code == 200


def test_a_portal_session_of_another_tenant_reaches_only_its_own_customer(
        clientela_site, portal_world, other_tenant):
    from clientela.plugins.collaborative import portal
    from clientela.plugins.collaborative.collab_models import PortalAccount

    site = clientela_site
    with in_tenant(site, other_tenant["tenant_id"]):
        account = db.session.execute(db.select(PortalAccount).where(
            PortalAccount.customer_id == other_tenant["customer_id"])).scalar_one()
        raw = portal.open_session(account, "test")["token"]
        foreign_email = account.email
    client = site.app.test_client()
    client.set_cookie("clientela_portal", raw, path="/portal")
    assert client.get("/portal/").status_code == 200
    assert client.get(f"/portal/cases/{other_tenant['case_id']}").status_code == 200
    a = portal_world["A"]
    for path in (f"/portal/cases/{a['case_id']}", f"/portal/messages/{a['interaction_id']}"):
        page = client.get(path)
        assert page.status_code == 404 and a["marker"] not in page.text
    assert a["marker"] not in client.get("/portal/cases").text
    # the other tenant's account cannot log in to this instance's (on-premise) portal
    login = site.app.test_client()
    login.environ_base.update(ip())
    token = csrf_of(login.get("/portal/login").text)
    answer = login.post("/portal/login", data={"email": foreign_email,
                                               "password": "portal-pass-123",
                                               "csrf_token": token})
    assert answer.status_code == 401
