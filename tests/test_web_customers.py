"""The core's staff pages (customers list, form, 360°, import; users and roles settings)
through the Flask test client, on SQLite and PostgreSQL: the same services, permissions and
record scopes as the API, per-field validation errors, CSRF, and no way into another user's
(own scope) or another tenant's records."""

from __future__ import annotations

import io
import json
import re
import uuid

import pytest

from clientela.core import services, tenancy
from clientela.core.db import db
from clientela.core.models import Customer, Interaction, Role


def unique(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def make_customer(site, owner_email: str | None = None, **values) -> uuid.UUID:
    """A customer in the site's tenant, owned by the user with ``owner_email``."""
    with site.app.app_context(), tenancy.tenant_context(site.tenant_id):
        data = {"kind": "person", "first_name": "Ada", "last_name": unique("L"), **values}
        if owner_email:
            data["owner_id"] = services.find_user(owner_email).id
        customer = services.create_customer(data)
        db.session.commit()
        return customer.id


def read(site, fn):
    with site.app.app_context(), tenancy.tenant_context(site.tenant_id):
        return fn()


@pytest.fixture(scope="module")
def other_tenant(clientela_site):
    """A second tenant with a customer, a user and a custom role."""
    site = clientela_site
    with site.app.app_context():
        other = services.create_tenant(unique("other"), name="Other company")
        with tenancy.tenant_context(other.id):
            customer = services.create_customer({"kind": "person", "first_name": "Foreign",
                                                 "last_name": "Customer"})
            user = services.create_user(f"{unique('u')}@other.example", roles=["sales"])
            role = Role(name="foreign-role", description="", permissions={})
            db.session.add(role)
            db.session.commit()
            ids = {"customer": customer.id, "user": user.id, "role": role.id}
        db.session.remove()
    return ids


# --- the list ---------------------------------------------------------------------


def test_customers_list_filters_sorts_and_pages(clientela_site):
    site = clientela_site
    tag = unique("tag")
    for i in range(27):
        make_customer(site, "admin@demo.example", first_name=f"Zed{i:02d}", tags=[tag],
                      stage="prospect" if i % 2 else "lead")
    make_customer(site, kind="organisation", organisation_name=f"Org {tag}", tags=[tag])
    client = site.client("admin")
    page = client.get(f"/app/customers?tag={tag}")
    assert page.status_code == 200
    assert "28 customers" in page.text and "Page 1 of 2" in page.text
    assert client.get(f"/app/customers?tag={tag}&page=2").text.count("/app/customers/") >= 3
    only = client.get(f"/app/customers?tag={tag}&kind=organisation").text
    assert "1 customer<" in only and f"Org {tag}" in only
    leads = client.get(f"/app/customers?tag={tag}&stage=prospect").text
    assert "13 customers" in leads
    ordered = client.get(f"/app/customers?tag={tag}&sort=-display_name&kind=person").text
    names = re.findall(r">(Ada|Zed\d\d) [^<]*</a>", ordered)
    first = re.search(r">(Zed\d\d)", ordered).group(1)
    assert first == "Zed26", names
    owner_id = read(site, lambda: services.find_user("admin@demo.example").id)
    mine = client.get(f"/app/customers?tag={tag}&owner_id={owner_id}").text
    assert "27 customers" in mine
    # htmx asks for the rows only (search as you type)
    rows = client.get(f"/app/customers?q=Zed26&tag={tag}",
                      headers={"HX-Request": "true", "HX-Target": "customer-rows"})
    assert rows.status_code == 200 and "<html" not in rows.text and "Zed26" in rows.text
    assert 'id="view-filters" hx-swap-oob="true"' in rows.text
    # a bad filter value does not break the page
    assert client.get("/app/customers?owner_id=nope&sort=bogus&stage=x").status_code == 200


def test_saved_views_are_the_users_own(clientela_site):
    site = clientela_site
    tag = unique("view")
    client = site.client("manager")
    answer = client.post("/app/customers/views", data={
        "view_name": f"My {tag}", "tag": tag, "stage": "lead", "csrf_token": client.csrf})
    assert answer.status_code == 302
    page = client.get("/app/customers").text
    assert f"My {tag}" in page and f"tag={tag}" in page
    stored = read(site, lambda: services.find_user("manager@demo.example").attributes)
    assert {"name": f"My {tag}", "filters": {"stage": "lead", "tag": tag}} in stored["saved_views"]
    # another user does not see it
    assert f"My {tag}" not in site.client("analyst").get("/app/customers").text
    assert client.post("/app/customers/views", data={"view_name": "", "csrf_token": client.csrf}
                       ).status_code == 422
    client.post("/app/customers/views/delete", data={"view_name": f"My {tag}",
                                                     "csrf_token": client.csrf})
    page = client.get("/app/customers").text
    assert f"View “My {tag}” deleted." in page and f">My {tag}<" not in page


# --- the form ---------------------------------------------------------------------


def test_new_customer_form_creates_through_the_service(clientela_site):
    site = clientela_site
    client = site.client("sales")
    assert client.get("/app/customers/new").status_code == 200
    last = unique("Rossi")
    answer = client.post("/app/customers/new", data={
        "kind": "person", "first_name": "Giulia", "last_name": last,
        "email": f"{last}@Example.COM", "phone": "+39 02 1234 5678", "stage": "prospect",
        "tags": "vip, north", "csrf_token": client.csrf})
    assert answer.status_code == 302
    found = read(site, lambda: db.session.execute(
        db.select(Customer).where(Customer.last_name == last)).scalar_one())
    assert found.email == f"{last}@example.com".lower() and found.phone == "+390212345678"
    assert found.tags == ["vip", "north"]
    assert found.owner_id == read(site, lambda: services.find_user("sales@demo.example").id)
    assert answer.headers["Location"].endswith(f"/app/customers/{found.id}")


def test_customer_form_shows_errors_per_field(clientela_site):
    client = clientela_site.client("admin")
    answer = client.post("/app/customers/new", data={
        "kind": "person", "first_name": "Bad", "email": "not an address", "phone": "12",
        "website": "nope", "stage": "lead", "csrf_token": client.csrf})
    assert answer.status_code == 422
    page = answer.text
    for field in ("email", "website"):
        assert f'id="{field}-errors"' in page, field
    assert 'aria-invalid="true"' in page and 'value="Bad"' in page
    answer = client.post("/app/customers/new", data={
        "kind": "person", "first_name": "Bad", "phone": "12", "csrf_token": client.csrf})
    assert answer.status_code == 422 and 'id="phone-errors"' in answer.text


def test_edit_form_updates_and_validates(clientela_site):
    site = clientela_site
    customer_id = make_customer(site, "sales@demo.example")
    client = site.client("sales")
    page = client.get(f"/app/customers/{customer_id}/edit")
    assert page.status_code == 200 and "Ada" in page.text
    answer = client.post(f"/app/customers/{customer_id}/edit", data={
        "kind": "person", "first_name": "Adele", "last_name": "Verdi", "stage": "customer",
        "email": "", "tags": "", "csrf_token": client.csrf})
    assert answer.status_code == 302
    found = read(site, lambda: db.session.get(Customer, (site.tenant_id, customer_id)))
    assert (found.display_name, found.stage) == ("Adele Verdi", "customer")
    answer = client.post(f"/app/customers/{customer_id}/edit", data={
        "kind": "person", "first_name": "Adele", "email": "broken@", "stage": "lead",
        "csrf_token": client.csrf})
    assert answer.status_code == 422 and 'id="email-errors"' in answer.text
    assert read(site, lambda: db.session.get(Customer, (site.tenant_id, customer_id)).stage
                ) == "customer"


def test_delete_needs_the_permission_and_confirms(clientela_site):
    site = clientela_site
    customer_id = make_customer(site, "sales@demo.example")
    sales = site.client("sales")
    assert sales.get(f"/app/customers/{customer_id}/delete").status_code == 403
    assert "Delete" not in re.sub(r"Delete personal", "", sales.get(
        f"/app/customers/{customer_id}").text.split("<main")[1].split("two-columns")[0])
    admin = site.client("admin")
    page = admin.get(f"/app/customers/{customer_id}/delete")
    assert page.status_code == 200 and "cannot be undone" in page.text
    assert admin.post(f"/app/customers/{customer_id}/delete",
                      data={"csrf_token": admin.csrf}).status_code == 302
    assert admin.get(f"/app/customers/{customer_id}").status_code == 404


# --- the 360° page ------------------------------------------------------------------


def test_customer_360_shows_profile_timeline_and_logs_a_call(clientela_site):
    site = clientela_site
    org_id = make_customer(site, kind="organisation", organisation_name=unique("Org"))
    customer_id = make_customer(site, "sales@demo.example", organisation_id=org_id)
    client = site.client("sales")
    page = client.get(f"/app/customers/{customer_id}")
    assert page.status_code == 200
    assert "Log an interaction" in page.text and "No interactions yet." in page.text
    subject = unique("Call about the offer ")
    answer = client.post(f"/app/customers/{customer_id}/interactions", data={
        "channel": "phone", "direction": "outbound", "subject": subject,
        "body": "Wants a quote", "duration": "4:30", "occurred_at": "2026-11-30T10:15",
        "csrf_token": client.csrf})
    assert answer.status_code == 302
    client.post(f"/app/customers/{customer_id}/interactions", data={
        "channel": "email", "direction": "inbound", "subject": "Newer e-mail",
        "csrf_token": client.csrf})
    page = client.get(f"/app/customers/{customer_id}").text
    assert page.index("Newer e-mail") < page.index(subject)  # newest first
    assert "Phone call" in page and "4 min 30 s" in page
    stored = read(site, lambda: db.session.execute(
        db.select(Interaction).where(Interaction.subject == subject)).scalar_one())
    assert stored.attributes == {"duration_seconds": 270} and stored.channel == "phone"
    assert stored.occurred_at.replace(tzinfo=None).isoformat().startswith("2026-11-30T10:15")
    # the organisation's page lists its contact
    admin = site.client("admin")
    assert f"/app/customers/{customer_id}" in admin.get(f"/app/customers/{org_id}").text


def test_log_interaction_errors_per_field(clientela_site):
    site = clientela_site
    customer_id = make_customer(site, "sales@demo.example")
    client = site.client("sales")
    answer = client.post(f"/app/customers/{customer_id}/interactions", data={
        "channel": "pigeon", "direction": "sideways", "duration": "ten",
        "occurred_at": "yesterday", "csrf_token": client.csrf})
    assert answer.status_code == 422
    for field in ("channel", "direction", "duration", "occurred_at"):
        assert f'id="{field}-errors"' in answer.text, field
    answer = client.post(f"/app/customers/{customer_id}/interactions", data={
        "channel": "email", "direction": "inbound", "duration": "3",
        "csrf_token": client.csrf})
    assert answer.status_code == 422 and 'id="duration-errors"' in answer.text
    assert read(site, lambda: db.session.execute(db.select(Interaction).where(
        Interaction.customer_id == customer_id)).first()) is None


def test_analyst_reads_but_cannot_write(clientela_site):
    site = clientela_site
    customer_id = make_customer(site, "admin@demo.example")
    client = site.client("analyst")
    page = client.get(f"/app/customers/{customer_id}")
    assert page.status_code == 200 and "Log an interaction" not in page.text
    assert client.get("/app/customers/new").status_code == 403
    assert client.get(f"/app/customers/{customer_id}/edit").status_code == 403
    assert client.post(f"/app/customers/{customer_id}/interactions", data={
        "channel": "phone", "csrf_token": client.csrf}).status_code == 403
    assert client.get("/app/customers/import").status_code == 403


def test_gdpr_export_downloads_json_for_admins_only(clientela_site):
    site = clientela_site
    customer_id = make_customer(site, "admin@demo.example", email=f"{unique()}@x.example")
    admin = site.client("admin")
    assert "Download personal data" in admin.get(f"/app/customers/{customer_id}").text
    answer = admin.get(f"/app/customers/{customer_id}/export.json")
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    assert "attachment" in answer.headers["Content-Disposition"]
    assert json.loads(answer.data)["customer"]["id"] == str(customer_id)
    manager = site.client("manager")
    assert "Download personal data" not in manager.get(f"/app/customers/{customer_id}").text
    assert manager.get(f"/app/customers/{customer_id}/export.json").status_code == 403


# --- scope and tenants ---------------------------------------------------------------


def test_own_scope_cannot_reach_another_users_customer(clientela_site):
    site = clientela_site
    customer_id = make_customer(site, "admin@demo.example")
    # a role that reads and writes only its own customers
    name = unique("own-")
    with site.app.app_context(), tenancy.tenant_context(site.tenant_id):
        db.session.add(Role(name=name, description="", permissions={
            "customers:read": "own", "customers:write": "own", "interactions:read": "own",
            "interactions:write": "own"}))
        db.session.commit()
    email = f"{name}@demo.example"
    site.add_user(email, [name])
    client = site.client(email=email)
    assert client.get("/app/customers").status_code == 200
    assert client.get(f"/app/customers/{customer_id}").status_code == 404
    assert client.get(f"/app/customers/{customer_id}/edit").status_code == 404
    assert client.post(f"/app/customers/{customer_id}/edit", data={
        "first_name": "Hacked", "csrf_token": client.csrf}).status_code == 404
    assert client.post(f"/app/customers/{customer_id}/interactions", data={
        "channel": "phone", "csrf_token": client.csrf}).status_code == 404
    # the built-in sales role reads every customer but changes only its own
    sales = site.client("sales")
    assert sales.get(f"/app/customers/{customer_id}").status_code == 200
    assert sales.get(f"/app/customers/{customer_id}/edit").status_code == 403
    assert sales.post(f"/app/customers/{customer_id}/edit", data={
        "first_name": "Hacked", "csrf_token": sales.csrf}).status_code == 403
    assert read(site, lambda: db.session.get(Customer, (site.tenant_id, customer_id))
                .first_name) == "Ada"


CUSTOMER_ROUTES = [("GET", "/app/customers/{id}"), ("GET", "/app/customers/{id}/edit"),
                   ("POST", "/app/customers/{id}/edit"), ("GET", "/app/customers/{id}/delete"),
                   ("POST", "/app/customers/{id}/delete"),
                   ("POST", "/app/customers/{id}/interactions"),
                   ("GET", "/app/customers/{id}/export.json")]


def test_another_tenants_ids_answer_404_everywhere(clientela_site, other_tenant):
    client = clientela_site.client("admin")
    for method, route in CUSTOMER_ROUTES:
        for value in (other_tenant["customer"], "not-an-id"):
            url = route.format(id=value)
            answer = client.open(url, method=method, data={
                "csrf_token": client.csrf, "channel": "phone", "first_name": "X"})
            assert answer.status_code == 404, (method, url, answer.status_code)
    for method, url in [("GET", f"/app/settings/users/{other_tenant['user']}"),
                        ("POST", f"/app/settings/users/{other_tenant['user']}"),
                        ("POST", f"/app/settings/users/{other_tenant['user']}/active"),
                        ("GET", f"/app/settings/roles/{other_tenant['role']}"),
                        ("POST", f"/app/settings/roles/{other_tenant['role']}"),
                        ("POST", f"/app/settings/roles/{other_tenant['role']}/delete")]:
        answer = client.open(url, method=method, data={"csrf_token": client.csrf,
                                                       "roles": ["admin"], "is_active": "0"})
        assert answer.status_code == 404, (method, url)
    assert "Foreign Customer" not in client.get("/app/customers?q=Foreign").text


def test_unsafe_requests_need_the_csrf_token(clientela_site):
    site = clientela_site
    customer_id = make_customer(site, "admin@demo.example")
    client = site.client("admin")
    for url, data in [("/app/customers/new", {"first_name": "NoToken"}),
                      (f"/app/customers/{customer_id}/edit", {"first_name": "NoToken"}),
                      (f"/app/customers/{customer_id}/interactions", {"channel": "phone"}),
                      (f"/app/customers/{customer_id}/delete", {}),
                      ("/app/customers/views", {"view_name": "x"}),
                      ("/app/settings/users", {"email": "x@y.example", "roles": "admin"}),
                      ("/app/settings/roles/new", {"name": "x"})]:
        assert client.post(url, data=data).status_code == 403, url
    answer = client.post("/app/customers/import", data=b"first_name\nX\n",
                         content_type="text/csv")
    assert answer.status_code == 403
    assert client.get(f"/app/customers/{customer_id}").status_code == 200


# --- import -----------------------------------------------------------------------------


def _csv(tag: str) -> bytes:
    return (f"first_name,last_name,email,tags\n"
            f"Ann,{tag},ann.{tag}@example.com,{tag}\n"
            f"Bob,{tag},not-an-email,{tag}\n"
            f"Cy,{tag},cy.{tag}@example.com,{tag}\n").encode()


def _count(site, tag: str) -> int:
    return read(site, lambda: len(db.session.execute(
        db.select(Customer.id).where(Customer.last_name == tag)).all()))


def test_import_page_reports_rejected_rows(clientela_site):
    site = clientela_site
    client = site.client("admin")
    assert client.get("/app/customers/import").status_code == 200
    tag = unique("imp")
    answer = client.post("/app/customers/import", data={
        "file": (io.BytesIO(_csv(tag)), "people.csv"), "match": "email",
        "csrf_token": client.csrf}, content_type="multipart/form-data")
    assert answer.status_code == 200
    page = answer.text
    assert "Import report" in page and "people.csv" in page
    report = re.sub(r"\s+", " ", page)
    assert "<strong>2</strong> imported (new)" in report
    assert "<strong>1</strong> rejected" in report
    assert re.search(r'<th scope="row"[^>]*>3</th><td>email</td>', report)
    assert _count(site, tag) == 2


def test_import_dry_run_and_all_or_nothing_write_nothing(clientela_site):
    site = clientela_site
    client = site.client("manager")  # customers:write on all records
    tag = unique("dry")
    answer = client.post(f"/app/customers/import?dry_run=1&filename=d.csv", data=_csv(tag),
                         content_type="text/csv",
                         headers={"X-CSRF-Token": client.csrf, "X-Clientela-Fragment": "report"})
    assert answer.status_code == 200 and "<html" not in answer.text
    assert "Dry run" in answer.text and _count(site, tag) == 0
    answer = client.post("/app/customers/import", data={
        "file": (io.BytesIO(_csv(tag)), "all.csv"), "all_or_nothing": "1",
        "csrf_token": client.csrf}, content_type="multipart/form-data")
    assert answer.status_code == 422 and "The file was refused" in answer.text
    assert _count(site, tag) == 0
    answer = client.post("/app/customers/import", data={"csrf_token": client.csrf,
                                                        "file": (io.BytesIO(b""), "")},
                         content_type="multipart/form-data")
    assert answer.status_code == 422 and 'id="file-errors"' in answer.text
    answer = client.post("/app/customers/import", data={
        "file": (io.BytesIO(b""), "empty.csv"), "csrf_token": client.csrf},
        content_type="multipart/form-data")
    assert answer.status_code == 422 and "empty" in answer.text


def test_streamed_import_reports_progress_then_the_report(clientela_site):
    site = clientela_site
    client = site.client("admin")
    tag = unique("str")
    rows = "".join(f"P{i},{tag},p{i}.{tag}@example.com\n" for i in range(4500))
    body = f"first_name,last_name,email\n{rows}Bad,{tag},nope\n".encode()
    answer = client.post("/app/customers/import?filename=big.csv", data=body,
                         content_type="text/csv",
                         headers={"X-CSRF-Token": client.csrf, "X-Clientela-Progress": "stream"})
    assert answer.status_code == 200
    head, _, html = answer.text.partition("report\n")
    progress = [line.split() for line in head.splitlines()]
    # one line per batch of 2,000 rows: bytes read and rows so far, growing
    assert [p[0] for p in progress] == ["progress"] * 3
    assert [int(p[2]) for p in progress] == [2000, 4000, 4501]
    assert int(progress[-1][1]) == len(body)
    assert "Import report: big.csv" in html and "<html" not in html
    assert re.search(r'<th scope="row"[^>]*>4502</th><td>email</td>', html)
    assert _count(site, tag) == 4500
    # a file that cannot be read: the reason, after the report line
    answer = client.post("/app/customers/import?filename=e.csv", data=b"",
                         content_type="text/csv",
                         headers={"X-CSRF-Token": client.csrf, "X-Clientela-Progress": "stream"})
    assert answer.status_code == 200 and answer.text.startswith("report\n")
    assert "empty" in answer.text


def test_import_needs_write_on_all_records(clientela_site):
    client = clientela_site.client("sales")
    assert client.get("/app/customers/import").status_code == 403
    assert client.post("/app/customers/import", data=b"first_name\nX\n", content_type="text/csv",
                       headers={"X-CSRF-Token": client.csrf}).status_code == 403


# --- settings -------------------------------------------------------------------------


def test_admin_creates_a_user_with_roles(clientela_site):
    site = clientela_site
    client = site.client("admin")
    assert client.get("/app/settings/users").status_code == 200
    email = f"{unique('new')}@demo.example"
    answer = client.post("/app/settings/users", data={
        "email": email, "name": "New Person", "roles": ["sales", "marketing"],
        "csrf_token": client.csrf})
    assert answer.status_code == 200 and email in answer.text
    password = re.search(r'<code class="password">([^<]+)</code>', answer.text).group(1)
    user = read(site, lambda: services.find_user(email))
    assert sorted(user.roles) == ["marketing", "sales"]
    # the new user can log in with the shown password
    fresh = site.app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', fresh.get("/app/login").text).group(1)
    assert fresh.post("/app/login", data={"email": email, "password": password,
                                          "csrf_token": token}).status_code == 302
    # errors per field
    answer = client.post("/app/settings/users", data={"email": "nope", "roles": [],
                                                      "password": "short",
                                                      "csrf_token": client.csrf})
    assert answer.status_code == 422
    for field in ("email", "roles", "password"):
        assert f'id="{field}-errors"' in answer.text, field
    answer = client.post("/app/settings/users", data={"email": email, "roles": ["sales"],
                                                      "csrf_token": client.csrf})
    assert answer.status_code == 409 and 'id="email-errors"' in answer.text
    answer = client.post("/app/settings/users", data={"email": f"x{email}", "roles": ["ghost"],
                                                      "csrf_token": client.csrf})
    assert answer.status_code == 422 and "unknown role" in answer.text


def test_admin_edits_and_deactivates_a_user(clientela_site):
    site = clientela_site
    email = f"{unique('deact')}@demo.example"
    user_id = site.add_user(email, ["sales"])
    client = site.client("admin")
    assert client.get(f"/app/settings/users/{user_id}").status_code == 200
    assert client.post(f"/app/settings/users/{user_id}", data={
        "name": "Renamed", "roles": ["service"], "csrf_token": client.csrf}).status_code == 302
    assert client.post(f"/app/settings/users/{user_id}/active", data={
        "is_active": "0", "csrf_token": client.csrf}).status_code == 302
    user = read(site, lambda: services.find_user(email))
    assert (user.name, user.roles, user.is_active) == ("Renamed", ["service"], False)
    me = read(site, lambda: services.find_user("admin@demo.example").id)
    assert client.post(f"/app/settings/users/{me}/active", data={
        "is_active": "0", "csrf_token": client.csrf}).status_code == 409
    answer = client.post(f"/app/settings/users/{me}", data={
        "name": "", "roles": ["sales"], "csrf_token": client.csrf})
    assert answer.status_code == 422 and 'id="roles-errors"' in answer.text


def test_settings_permissions(clientela_site):
    site = clientela_site
    manager = site.client("manager")  # users:read, not users:write
    assert manager.get("/app/settings/users").status_code == 200
    assert manager.get("/app/settings/roles").status_code == 200
    assert "Add a user" not in manager.get("/app/settings/users").text
    assert manager.post("/app/settings/users", data={
        "email": "m@demo.example", "roles": ["sales"], "csrf_token": manager.csrf}
    ).status_code == 403
    assert manager.get("/app/settings/roles/new").status_code == 403
    sales = site.client("sales")
    for url in ("/app/settings/users", "/app/settings/roles"):
        assert sales.get(url).status_code == 403
    assert "/app/settings/users" not in sales.get("/app/").text
    assert "/app/settings/users" in site.client("admin").get("/app/").text


def test_admin_defines_a_custom_role(clientela_site):
    site = clientela_site
    client = site.client("admin")
    page = client.get("/app/settings/roles")
    assert page.status_code == 200 and "customers:read" in page.text and "All records" in page.text
    name = unique("desk-")
    answer = client.post("/app/settings/roles/new", data={
        "name": name, "description": "Front desk", "perm:customers:read": "all",
        "perm:interactions:write": "own", "csrf_token": client.csrf})
    assert answer.status_code == 302
    role = read(site, lambda: db.session.execute(
        db.select(Role).where(Role.name == name)).scalar_one())
    assert role.permissions == {"customers:read": "all", "interactions:write": "own"}
    assert client.get(f"/app/settings/roles/{role.id}").status_code == 200
    assert client.post(f"/app/settings/roles/{role.id}", data={
        "description": "Desk", "perm:customers:read": "team", "csrf_token": client.csrf}
    ).status_code == 302
    assert read(site, lambda: db.session.get(Role, (site.tenant_id, role.id)).permissions
                ) == {"customers:read": "team"}
    answer = client.post("/app/settings/roles/new", data={
        "name": "Bad Name", "perm:customers:read": "everything", "csrf_token": client.csrf})
    assert answer.status_code == 422 and 'id="name-errors"' in answer.text
    assert client.post("/app/settings/roles/new", data={
        "name": "admin", "csrf_token": client.csrf}).status_code == 409
    assert client.post(f"/app/settings/roles/{role.id}/delete",
                       data={"csrf_token": client.csrf}).status_code == 302
    assert client.get(f"/app/settings/roles/{role.id}").status_code == 404


def test_pages_render_in_italian_and_spanish(clientela_site):
    site = clientela_site
    customer_id = make_customer(site, "admin@demo.example")
    email = f"{unique('lang')}@demo.example"
    site.add_user(email, ["admin"])
    client = site.client(email=email)
    for locale, word in (("it", "Nuovo cliente"), ("es", "Nuevo cliente")):
        assert client.post("/app/locale", data={"locale": locale, "next": "/app/",
                                                "csrf_token": client.csrf}).status_code == 302
        assert word in client.get("/app/customers").text
        for url in (f"/app/customers/{customer_id}", f"/app/customers/{customer_id}/edit",
                    "/app/customers/new", "/app/customers/import", "/app/settings/users",
                    "/app/settings/roles", "/app/settings/roles/new"):
            answer = client.get(url)
            assert answer.status_code == 200, (locale, url)
            assert f'lang="{locale}"' in answer.text
