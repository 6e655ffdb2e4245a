"""The operational plugin's staff pages through the Flask test client, on SQLite and
PostgreSQL: every page renders for a role that may see it and is refused to one that may
not (as in the API), records outside the user's scope or tenant answer 404, forms write
through the services, invalid input answers 422 with the form, and unsafe requests need the
CSRF token."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import pytest

def _unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def _principal(email: str):
    from clientela.core import access
    from clientela.core.db import db
    from clientela.core.models import User

    user = db.session.execute(db.select(User).where(User.email == email)).scalar_one()
    return access.principal_for(user, "session")


def _user_id(site, email: str):
    from clientela.core import tenancy

    with site.app.app_context(), tenancy.tenant_context(site.tenant_id):
        return _principal(email).user_id


def _make(site, tenant_id=None, owner_email=None):
    """A deal, a lead, a case, a task and a campaign in ``tenant_id`` (default: the site's),
    owned by ``owner_email`` (default: the admin); their ids."""
    from clientela.core import customers, tenancy
    from clientela.core.db import db
    from clientela.plugins.operational import campaigns, cases, work
    from clientela.plugins.operational import services as ops

    with site.app.app_context(), tenancy.tenant_context(tenant_id or site.tenant_id):
        if tenant_id is None:
            admin = _principal(site.email("admin"))
            owner = _principal(owner_email or site.email("admin"))
        else:
            from clientela.core.models import User

            user = db.session.execute(db.select(User)).scalars().first()
            admin = owner = _principal(user.email)
        customer = customers.create({"kind": "person", "first_name": "Ops",
                                     "last_name": _unique("Web")}, admin)
        deal = ops.create_deal({"title": _unique("Deal"), "amount": decimal.Decimal("1000"),
                                "owner_id": owner.user_id, "customer_id": customer.id,
                                "expected_close_date": dt.date.today()}, admin)
        lead = ops.create_lead({"first_name": "Lena", "last_name": _unique("Lead"),
                                "email": f"{uuid.uuid4().hex[:10]}@lead.example",
                                "owner_id": owner.user_id}, admin)
        case = cases.create_case({"subject": _unique("Case"), "priority": "high",
                                  "customer_id": customer.id, "owner_id": owner.user_id}, admin)
        task = work.create_task({"title": _unique("Task"), "owner_id": owner.user_id,
                                 "due_at": dt.datetime.now(dt.timezone.utc)
                                 - dt.timedelta(hours=2)}, admin)
        campaign = campaigns.create_campaign({"name": _unique("Campaign"), "subject": "Hi",
                                              "body": "Hello"}, admin)
        db.session.commit()
        return {"deal": deal.id, "lead": lead.id, "case": case.id, "task": task.id,
                "campaign": campaign.id, "customer": customer.id,
                "pipeline": deal.pipeline_id, "stage": deal.stage_id}


@pytest.fixture(scope="module")
def clients(clientela_site):
    """Logged-in test clients per role, made once per module."""
    made = {}

    def client(role):
        if role not in made:
            made[role] = clientela_site.client(role)
        return made[role]

    return client


@pytest.fixture(scope="module")
def records(clientela_site):
    """Records of the admin, of the sales user, and of another tenant."""
    from clientela.core import services, tenancy
    from clientela.core.db import db

    site = clientela_site
    mine = _make(site)
    sales = _make(site, owner_email=site.email("sales"))
    with site.app.app_context():
        slug = f"other-{uuid.uuid4().hex[:6]}"
        other = services.create_tenant(slug, name="Other company")
        with tenancy.tenant_context(other.id):
            services.create_user(f"boss@{slug}.example", roles=["admin"],
                                 password=site.password)
            db.session.commit()
        other_id = other.id
        db.session.remove()
    foreign = _make(site, tenant_id=other_id)
    return {"mine": mine, "sales": sales, "foreign": foreign}


PAGES = ["/app/leads", "/app/leads/new", "/app/deals", "/app/my-work", "/app/cases",
         "/app/campaigns", "/app/settings/pipelines"]


def test_every_page_renders_for_the_manager(clientela_site, clients, records):
    client = clients("manager")
    mine = records["mine"]
    pages = PAGES + [f"/app/leads/{mine['lead']}", f"/app/deals/{mine['deal']}",
                     f"/app/deals?pipeline={mine['pipeline']}", f"/app/cases/{mine['case']}",
                     f"/app/campaigns/{mine['campaign']}", f"/app/customers/{mine['customer']}",
                     "/app/"]
    for path in pages:
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert "Content-Security-Policy" in answer.headers


def test_navigation_offers_what_the_role_may_see(clientela_site, clients, records):
    manager = clients("manager").get("/app/").text
    for label in ("My work", "Leads", "Deals", "Cases", "Campaigns", "Pipelines"):
        assert f">{label}</a>" in manager
    service = clients("service").get("/app/").text
    assert ">Cases</a>" in service and ">My work</a>" in service
    assert ">Deals</a>" not in service and ">Leads</a>" not in service


@pytest.mark.parametrize("role,allowed,refused", [
    ("service", ["/app/cases", "/app/my-work"],
     ["/app/deals", "/app/leads", "/app/campaigns", "/app/leads/new"]),
    ("sales", ["/app/deals", "/app/leads", "/app/my-work", "/app/leads/new"],
     ["/app/cases", "/app/campaigns"]),
    ("marketing", ["/app/leads", "/app/campaigns", "/app/my-work"],
     ["/app/deals", "/app/cases"]),
    ("analyst", ["/app/deals", "/app/cases", "/app/campaigns", "/app/leads"],
     ["/app/leads/new"]),
])
def test_pages_follow_the_api_permissions(clientela_site, clients, records, role, allowed, refused):
    client = clients(role)
    for path in allowed:
        assert client.get(path).status_code == 200, (role, path)
    for path in refused:
        assert client.get(path).status_code == 403, (role, path)


def test_service_sees_a_case_but_not_a_deal(clientela_site, clients, records):
    client = clients("service")
    mine = records["mine"]
    assert client.get(f"/app/cases/{mine['case']}").status_code == 200
    assert client.get(f"/app/deals/{mine['deal']}").status_code == 403


def _id_routes(r):
    return [
        ("get", f"/app/leads/{r['lead']}", {}),
        ("post", f"/app/leads/{r['lead']}/status", {"status": "contacted"}),
        ("post", f"/app/leads/{r['lead']}/convert", {}),
        ("get", f"/app/deals/{r['deal']}", {}),
        ("post", f"/app/deals/{r['deal']}/move", {"stage_id": str(r["stage"])}),
        ("get", f"/app/deals?pipeline={r['pipeline']}", {}),
        ("get", f"/app/cases/{r['case']}", {}),
        ("post", f"/app/cases/{r['case']}/assign", {"owner_id": ""}),
        ("post", f"/app/cases/{r['case']}/status", {"status": "pending"}),
        ("post", f"/app/tasks/{r['task']}/complete", {}),
        ("get", f"/app/campaigns/{r['campaign']}", {}),
    ]


def test_another_tenants_records_answer_404(clientela_site, clients, records):
    client = clients("admin")
    for method, path, data in _id_routes(records["foreign"]):
        if method == "get":
            answer = client.get(path)
        else:
            answer = client.post(path, data={**data, "csrf_token": client.csrf})
        assert answer.status_code == 404, path


def test_a_sales_user_gets_404_for_another_users_records(clientela_site, clients, records):
    client = clients("sales")
    routes = [r for r in _id_routes(records["mine"])
              if any(p in r[1] for p in ("/leads/", "/app/deals/", "/tasks/"))]
    for method, path, data in routes:
        if method == "get":
            answer = client.get(path)
        else:
            answer = client.post(path, data={**data, "csrf_token": client.csrf})
        assert answer.status_code == 404, path
    # the board lists only the sales user's own deals
    board = client.get(f"/app/deals?pipeline={records['mine']['pipeline']}").text
    assert str(records["sales"]["deal"]) in board
    assert str(records["mine"]["deal"]) not in board


def test_ids_that_are_not_ids_answer_404(clientela_site, clients, records):
    client = clients("admin")
    for path in ("/app/leads/x", "/app/deals/nope", "/app/cases/1", "/app/campaigns/abc",
                 "/app/deals?pipeline=zzz"):
        assert client.get(path).status_code == 404, path


def test_unsafe_requests_need_the_csrf_token(clientela_site, clients, records):
    client = clients("admin")
    mine = records["mine"]
    for _method, path, data in _id_routes(mine):
        if _method == "post":
            assert client.post(path, data=data).status_code == 403, path
    assert client.post("/app/leads/new", data={"first_name": "X"}).status_code == 403
    assert client.post("/app/settings/pipelines", data={"name": "X"}).status_code == 403


def test_create_a_lead_qualify_and_convert_it(clientela_site, clients, records):
    from clientela.core import tenancy
    from clientela.core.db import db
    from clientela.plugins.operational.models import Deal, Lead

    client = clients("manager")
    name = _unique("Marta")
    answer = client.post("/app/leads/new", data={
        "first_name": "Marta", "last_name": name, "company": "Marta Srl",
        "email": f"{uuid.uuid4().hex[:8]}@marta.example", "csrf_token": client.csrf})
    assert answer.status_code == 303
    lead_url = answer.headers["Location"]
    link = f'href="{lead_url}"'
    assert name in client.get(lead_url).text
    assert link in client.get("/app/leads", query_string={"q": name}).text
    assert link not in client.get("/app/leads", query_string={"q": name,
                                                              "status": "qualified"}).text
    answer = client.post(lead_url + "/status", data={"status": "qualified",
                                                      "csrf_token": client.csrf})
    assert answer.status_code == 303
    assert link in client.get("/app/leads", query_string={"q": name,
                                                          "status": "qualified"}).text
    answer = client.post(lead_url + "/convert", data={
        "with_deal": "1", "amount": "2500", "expected_close_date": "2026-12-20",
        "csrf_token": client.csrf})
    assert answer.status_code == 303
    assert "/app/customers/" in answer.headers["Location"]
    lead_id = uuid.UUID(lead_url.rsplit("/", 1)[1])
    with clientela_site.app.app_context(), tenancy.tenant_context(clientela_site.tenant_id):
        lead = db.session.execute(db.select(Lead).where(Lead.id == lead_id)).scalar_one()
        assert lead.status == "converted" and lead.customer_id is not None
        deal = db.session.execute(db.select(Deal).where(Deal.id == lead.deal_id)).scalar_one()
        assert deal.amount == decimal.Decimal("2500.00")


def test_lead_form_errors_answer_422_with_the_form(clientela_site, clients, records):
    client = clients("manager")
    answer = client.post("/app/leads/new", data={"country": "ITA", "email": "",
                                                 "csrf_token": client.csrf})
    assert answer.status_code == 422
    assert 'id="country-errors"' in answer.text
    assert 'value="ITA"' in answer.text  # what was typed is kept
    answer = client.post("/app/leads/new", data={"company": "", "csrf_token": client.csrf})
    assert answer.status_code == 422
    assert "give a name, a company, an e-mail or a phone" in answer.text


def test_move_a_deal_with_the_form_changes_the_forecast(clientela_site, clients, records):
    from clientela.core import tenancy
    from clientela.core.db import db
    from clientela.plugins.operational import services as ops
    from clientela.plugins.operational.models import Deal, DealStageChange

    site = clientela_site
    client = clients("manager")
    deal_id = _make(site)["deal"]
    with site.app.app_context(), tenancy.tenant_context(site.tenant_id):
        deal = db.session.execute(db.select(Deal).where(Deal.id == deal_id)).scalar_one()
        stages = {s.name: s.id for s in ops.stages_of(deal.pipeline_id)}
    board = client.get("/app/deals").text
    before = _figure(board, "weighted")
    answer = client.post(f"/app/deals/{deal_id}/move", data={
        "stage_id": str(stages["Negotiation"]), "csrf_token": client.csrf})
    assert answer.status_code == 303
    after = _figure(client.get("/app/deals").text, "weighted")
    assert before != after
    # the same move as the API: a history row; a won stage closes the deal
    answer = client.post(f"/app/deals/{deal_id}/move", data={
        "stage_id": str(stages["Won"]), "csrf_token": client.csrf},
        headers={"HX-Request": "true"})
    assert answer.status_code == 200 and 'id="board-area"' in answer.text
    with site.app.app_context(), tenancy.tenant_context(site.tenant_id):
        deal = db.session.execute(db.select(Deal).where(Deal.id == deal_id)).scalar_one()
        assert deal.status == "won" and deal.closed_at is not None
        moves = db.session.execute(db.select(DealStageChange).where(
            DealStageChange.deal_id == deal_id)).scalars().all()
        assert len(moves) == 3


def test_moving_to_lost_needs_a_reason(clientela_site, clients, records):
    from clientela.core import tenancy
    from clientela.core.db import db
    from clientela.plugins.operational import services as ops
    from clientela.plugins.operational.models import Deal

    site = clientela_site
    client = clients("manager")
    deal_id = _make(site)["deal"]
    with site.app.app_context(), tenancy.tenant_context(site.tenant_id):
        deal = db.session.execute(db.select(Deal).where(Deal.id == deal_id)).scalar_one()
        lost = next(s.id for s in ops.stages_of(deal.pipeline_id) if s.kind == "lost")
    answer = client.post(f"/app/deals/{deal_id}/move", data={"stage_id": str(lost),
                                                             "csrf_token": client.csrf})
    assert answer.status_code == 422
    assert "say why the deal was lost" in answer.text
    answer = client.post(f"/app/deals/{deal_id}/move", data={"stage_id": "nope",
                                                             "csrf_token": client.csrf},
                         headers={"HX-Request": "true"})
    assert answer.status_code == 422 and "Choose a stage." in answer.text
    answer = client.post(f"/app/deals/{deal_id}/move", data={
        "stage_id": str(lost), "reason": "Too expensive", "csrf_token": client.csrf})
    assert answer.status_code == 303
    with site.app.app_context(), tenancy.tenant_context(site.tenant_id):
        deal = db.session.execute(db.select(Deal).where(Deal.id == deal_id)).scalar_one()
        assert deal.status == "lost" and deal.close_reason == "Too expensive"


def test_analyst_sees_the_board_without_move_forms(clientela_site, clients, records):
    client = clients("analyst")
    board = client.get("/app/deals").text
    assert 'class="move-form"' not in board
    assert client.post(f"/app/deals/{records['mine']['deal']}/move", data={
        "stage_id": str(records["mine"]["stage"]), "csrf_token": client.csrf}
    ).status_code == 403


def _figure(html: str, key: str) -> str:
    start = html.index(f'data-figure="{key}">') + len(f'data-figure="{key}">')
    return html[start:html.index("<", start)]


def test_my_work_lists_overdue_first_and_completes_a_task(clientela_site, clients, records):
    from clientela.core import tenancy
    from clientela.core.db import db
    from clientela.plugins.operational import work
    from clientela.plugins.operational.work_models import Task

    site = clientela_site
    email = f"worker-{uuid.uuid4().hex[:6]}@demo.example"
    site.add_user(email, ["sales"])
    with site.app.app_context(), tenancy.tenant_context(site.tenant_id):
        me = _principal(email)
        now = dt.datetime.now(dt.timezone.utc)
        later = work.create_task({"title": "Later task", "due_at": now + dt.timedelta(days=2)},
                                 me)
        late = work.create_task({"title": "Late task", "due_at": now - dt.timedelta(days=1)},
                                me)
        db.session.commit()
        later_id, late_id = later.id, late.id
    client = site.client(email=email)
    page = client.get("/app/my-work").text
    assert page.index("Late task") < page.index("Later task")
    assert "overdue by" in page
    answer = client.post(f"/app/tasks/{late_id}/complete", data={"csrf_token": client.csrf})
    assert answer.status_code == 303
    assert "Late task</td>" not in client.get("/app/my-work").text
    with site.app.app_context(), tenancy.tenant_context(site.tenant_id):
        task = db.session.execute(db.select(Task).where(Task.id == late_id)).scalar_one()
        assert task.status == "done"
    # another user's task is not reachable
    other = clients("sales")
    assert other.post(f"/app/tasks/{later_id}/complete",
                      data={"csrf_token": other.csrf}).status_code == 404


def test_cases_show_sla_status_and_can_be_assigned_and_resolved(clientela_site, clients, records):
    from clientela.core import tenancy
    from clientela.core.db import db
    from clientela.plugins.operational.work_models import ServiceCase

    site = clientela_site
    case_id = _make(site)["case"]
    client = clients("service")
    listing = client.get("/app/cases").text
    assert str(case_id) in listing
    assert any(s in listing for s in ("On time", "At risk", "Breached"))
    service_id = _user_id(site, site.email("service"))
    answer = client.post(f"/app/cases/{case_id}/assign", data={
        "owner_id": str(service_id), "csrf_token": client.csrf})
    assert answer.status_code == 303
    page = client.get(f"/app/cases/{case_id}").text
    assert site.email("service") in page
    assert client.post(f"/app/cases/{case_id}/assign", data={
        "owner_id": "not-an-id", "csrf_token": client.csrf}).status_code == 422
    assert client.post(f"/app/cases/{case_id}/status", data={
        "status": "nonsense", "csrf_token": client.csrf}).status_code == 422
    answer = client.post(f"/app/cases/{case_id}/status", data={
        "status": "resolved", "csrf_token": client.csrf})
    assert answer.status_code == 303
    with site.app.app_context(), tenancy.tenant_context(site.tenant_id):
        case = db.session.execute(db.select(ServiceCase).where(ServiceCase.id == case_id)
                                  ).scalar_one()
        assert case.status == "resolved" and case.owner_id == service_id
        assert case.resolved_at is not None
    answer = client.post(f"/app/cases/{case_id}/status", data={
        "status": "closed", "satisfaction": "5", "csrf_token": client.csrf})
    assert answer.status_code == 303
    assert "5/5" in client.get(f"/app/cases/{case_id}").text


def test_sla_state_on_time_at_risk_breached():
    from clientela.plugins.operational.web_work import sla_state
    from clientela.plugins.operational.work_models import ServiceCase

    now = dt.datetime(2026, 6, 1, 12, tzinfo=dt.timezone.utc)
    case = ServiceCase(subject="x", status="open", created_at=now - dt.timedelta(hours=10),
                       first_response_at=now - dt.timedelta(hours=9),
                       resolution_due_at=now + dt.timedelta(hours=10))
    assert sla_state(case, now)["key"] == "on_time"
    case.resolution_due_at = now + dt.timedelta(minutes=30)
    assert sla_state(case, now)["key"] == "at_risk"
    case.resolution_due_at = now - dt.timedelta(minutes=30)
    state = sla_state(case, now)
    assert state["key"] == "breached" and state["overdue"] == dt.timedelta(minutes=30)


def test_pipelines_settings_list_and_create(clientela_site, clients, records):
    client = clients("admin")
    page = client.get("/app/settings/pipelines").text
    assert "Negotiation" in page
    name = _unique("Renewals")
    answer = client.post("/app/settings/pipelines", data={
        "name": name, "stages": "Due | 60\nQuoted | 80\nRenewed | 100 | won\nChurned | 0 | lost",
        "csrf_token": client.csrf})
    assert answer.status_code == 303
    page = client.get("/app/settings/pipelines").text
    assert name in page and "Churned" in page
    answer = client.post("/app/settings/pipelines", data={
        "name": "", "stages": "Only | 200", "csrf_token": client.csrf})
    assert answer.status_code == 422
    assert 'id="name-errors"' in answer.text and 'id="stages-errors"' in answer.text
    # sales may read the pipelines but not create one
    sales = clients("sales")
    assert sales.get("/app/settings/pipelines").status_code == 200
    assert sales.post("/app/settings/pipelines", data={
        "name": "Nope", "csrf_token": sales.csrf}).status_code == 403


def test_campaigns_show_results(clientela_site, clients, records):
    client = clients("marketing")
    page = client.get("/app/campaigns").text
    assert str(records["mine"]["campaign"]) in page
    page = client.get(f"/app/campaigns/{records['mine']['campaign']}").text
    assert "Reach" in page and "ROI" in page


def test_dashboard_widgets_are_scoped_to_the_user(clientela_site, clients, records):
    manager = clients("manager").get("/app/").text
    for key in ("pipeline_by_stage", "forecast_vs_target", "cases_by_sla", "campaign_results"):
        assert f'id="widget-{key}"' in manager
    assert "&lt;" not in manager  # the widgets' HTML is not escaped
    service = clients("service").get("/app/").text
    assert 'id="widget-cases_by_sla"' in service
    assert 'id="widget-pipeline_by_stage"' not in service
    # a sales user's pipeline chart counts only their deals: the sales user owns one deal
    # of 1 000, the demo deals belong to the admin
    sales = clients("sales").get("/app/").text
    assert 'id="widget-pipeline_by_stage"' in sales
    widget = sales[sales.index('id="widget-pipeline_by_stage"'):]
    widget = widget[:widget.index("</section>")]
    assert "€1,000.00" in widget


def test_customer_page_has_deals_and_cases_panels(clientela_site, clients, records):
    mine = records["mine"]
    page = clients("manager").get(f"/app/customers/{mine['customer']}").text
    assert 'id="panel-deals"' in page and str(mine["deal"]) in page
    assert 'id="panel-cases"' in page and str(mine["case"]) in page
    assert "&lt;" not in page
    page = clients("service").get(f"/app/customers/{mine['customer']}").text
    assert 'id="panel-deals"' not in page and 'id="panel-cases"' in page


def test_pages_are_translated(clientela_site, clients, records):
    client = clients("manager")
    client.post("/app/locale", data={"locale": "it", "csrf_token": client.csrf})
    try:
        assert "Trattative" in client.get("/app/deals").text
        assert "Il mio lavoro" in client.get("/app/my-work").text
    finally:
        client.post("/app/locale", data={"locale": "en", "csrf_token": client.csrf})


def test_catalogues_are_complete():
    import os

    from clientela.core.web import messages
    from clientela.plugins import operational

    missing = messages.missing(os.path.dirname(operational.__file__))
    assert not any(missing.values()), missing
