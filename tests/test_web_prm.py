"""PRM pages (staff under /app/partners, partner portal under /partner/) through the Flask
test client, on SQLite and PostgreSQL: pages, permissions, record scopes, partner P vs
partner Q, another tenant, CSRF."""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid

import pytest

from clientela.core import services, tenancy
from clientela.core.db import db, utcnow
from clientela.plugins.operational.models import Deal, Lead
from clientela.plugins.prm import services as prm
from clientela.plugins.prm.models import (Commission, DealRegistration, LeadOffer, Partner,
                                          PartnerUser)


def _uid() -> str:
    return uuid.uuid4().hex[:8]


def make_partner(site, name: str, owner_email: str | None = None, users: int = 1,
                 tenant_id=None) -> dict:
    """An active partner with a portal user, an offered lead, an accepted lead, a pending
    registration and a pending commission (ids returned)."""
    tenant_id = tenant_id or site.tenant_id
    with site.app.app_context(), tenancy.tenant_context(tenant_id):
        owner = services.find_user(owner_email) if owner_email else None
        tier = prm.ensure_default_tiers()[0]
        partner = Partner(name=name, type="reseller", tier_id=tier.id, territories=["IT"],
                          specialisations=[], status="active", status_changed_at=utcnow(),
                          owner_id=owner.id if owner else None)
        db.session.add(partner)
        db.session.flush()
        email = f"p-{_uid()}@partner.example"
        user = services.create_user(email, roles=["partner"], password=site.password)
        db.session.add(PartnerUser(partner_id=partner.id, user_id=user.id))
        now = utcnow()
        leads = {}
        for state in ("offered", "accepted"):
            lead = Lead(first_name="Lia", last_name=f"{state}-{_uid()}", company=f"{name} lead co",
                        email=f"lead-{_uid()}@lead.example", country="IT")
            db.session.add(lead)
            db.session.flush()
            db.session.add(LeadOffer(lead_id=lead.id, partner_id=partner.id, status=state,
                                     offered_at=now, deadline=now + dt.timedelta(hours=48)))
            leads[state] = lead.id
        registration = DealRegistration(partner_id=partner.id, title=f"Reg {name}",
                                        company_name=f"Buyer {_uid()}", amount=1000,
                                        currency="EUR")
        db.session.add(registration)
        # a commission needs a deal of its own (one commission per deal)
        from clientela.plugins.operational import services as ops
        from clientela.plugins.operational.models import Pipeline, Stage
        pipeline = ops.default_pipeline() or db.session.execute(
            db.select(Pipeline).limit(1)).scalar()
        stage = db.session.execute(db.select(Stage).where(
            Stage.pipeline_id == pipeline.id).limit(1)).scalar()
        deal = Deal(title=f"Deal {name}", pipeline_id=pipeline.id, stage_id=stage.id,
                    amount=decimal.Decimal("1000"), currency="EUR")
        db.session.add(deal)
        db.session.flush()
        commission = None
        if deal is not None:
            commission = Commission(partner_id=partner.id, deal_id=deal.id,
                                    period_start=dt.date.today().replace(day=1),
                                    base_amount=decimal.Decimal("1000"),
                                    amount=decimal.Decimal("80"), currency="EUR",
                                    status="pending")
            db.session.add(commission)
        db.session.flush()
        ids = {"partner": partner.id, "email": email, "offered": leads["offered"],
               "accepted": leads["accepted"], "registration": registration.id,
               "commission": commission.id if commission else None}
        db.session.commit()
        return ids


def partner_client(site, email):
    client = site.app.test_client()
    page = client.get("/app/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    answer = client.post("/app/login", data={"email": email, "password": site.password,
                                              "csrf_token": token})
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith("/partner/")  # partner users land on the portal
    page = client.get("/partner/leads").text
    client.csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    return client


@pytest.fixture
def two_partners(clientela_site):
    return (make_partner(clientela_site, f"P {_uid()}"),
            make_partner(clientela_site, f"Q {_uid()}"))


# --- staff --------------------------------------------------------------------------


def test_staff_pages_render_for_admin(clientela_site, two_partners):
    p, _q = two_partners
    client = clientela_site.client("admin")
    page = client.get("/app/partners/")
    assert page.status_code == 200 and "Meccanica Rossi" in page.text
    page = client.get(f"/app/partners/{p['partner']}")
    assert page.status_code == 200
    assert "Scorecard" in page.text and "<svg" in page.text and "Leads received" in page.text
    assert client.get("/app/partners/registrations").status_code == 200
    assert client.get("/app/partners/commissions").status_code == 200
    assert client.get(f"/app/partners/commissions/statement?partner_id={p['partner']}"
                      ).status_code == 200
    assert client.get("/app/partners/?status=active&q=rossi").status_code == 200
    # navigation offers the pages
    assert 'href="/app/partners/"' in client.get("/app/").text


def test_roles_without_prm_permissions_get_403(clientela_site, two_partners):
    p, _q = two_partners
    client = clientela_site.client("marketing")
    assert client.get("/app/partners/").status_code == 403
    assert client.get(f"/app/partners/{p['partner']}").status_code == 403
    sales = clientela_site.client("sales")
    assert sales.get("/app/partners/").status_code == 200
    assert sales.get("/app/partners/commissions").status_code == 403
    # sales may read registrations but not decide them
    answer = sales.post(f"/app/partners/registrations/{p['registration']}/approve",
                        data={"csrf_token": sales.csrf})
    assert answer.status_code == 403
    # a partner user reaches no staff page
    partner = partner_client(clientela_site, p["email"])
    assert partner.get("/app/partners/").status_code == 403


def test_channel_manager_sees_only_its_partners(clientela_site):
    email = f"cm-{_uid()}@demo.example"
    clientela_site.add_user(email, ["channel_manager"])
    mine = make_partner(clientela_site, f"Mine {_uid()}", owner_email=email)
    other = make_partner(clientela_site, f"Other {_uid()}", owner_email="admin@demo.example")
    client = clientela_site.client(email=email)
    listing = client.get("/app/partners/").text
    assert "Mine " in listing and "Other " not in listing and "Meccanica Rossi" not in listing
    assert client.get(f"/app/partners/{mine['partner']}").status_code == 200
    assert client.get(f"/app/partners/{other['partner']}").status_code == 404
    assert client.get(f"/app/partners/commissions/statement?partner_id={other['partner']}"
                      ).status_code == 404
    for url in (f"/app/partners/registrations/{other['registration']}/approve",
                f"/app/partners/registrations/{other['registration']}/reject",
                f"/app/partners/commissions/{other['commission']}/approve",
                f"/app/partners/commissions/{other['commission']}/pay"):
        assert client.post(url, data={"csrf_token": client.csrf, "reason": "x"}
                           ).status_code == 404, url


def test_registrations_approve_and_reject(clientela_site, two_partners):
    p, q = two_partners
    client = clientela_site.client("manager")
    # a reason is required to reject: 422 with the message by the field
    answer = client.post(f"/app/partners/registrations/{p['registration']}/reject",
                         data={"csrf_token": client.csrf, "reason": ""})
    assert answer.status_code == 422 and "reason-errors" in answer.text
    answer = client.post(f"/app/partners/registrations/{p['registration']}/reject",
                         data={"csrf_token": client.csrf, "reason": "Duplicate"})
    assert answer.status_code == 302
    answer = client.post(f"/app/partners/registrations/{q['registration']}/approve",
                         data={"csrf_token": client.csrf, "override": "1"})
    assert answer.status_code == 302
    with clientela_site.app.app_context(), tenancy.tenant_context(clientela_site.tenant_id):
        rejected = db.session.get(DealRegistration, (clientela_site.tenant_id, p["registration"]))
        approved = db.session.get(DealRegistration, (clientela_site.tenant_id, q["registration"]))
        assert (rejected.status, rejected.decision_reason) == ("rejected", "Duplicate")
        assert approved.status == "approved" and approved.deal_id is not None


def test_commissions_approve_then_pay(clientela_site, two_partners):
    p, _q = two_partners
    client = clientela_site.client("admin")
    base = f"/app/partners/commissions/{p['commission']}"
    # paying a pending commission is refused (409 shown as a message), then approve, pay
    assert client.post(base + "/pay", data={"csrf_token": client.csrf}).status_code == 302
    assert client.post(base + "/approve", data={"csrf_token": client.csrf}).status_code == 302
    assert client.post(base + "/pay", data={"csrf_token": client.csrf,
                                            "reference": "SEPA-1"}).status_code == 302
    with clientela_site.app.app_context(), tenancy.tenant_context(clientela_site.tenant_id):
        row = db.session.get(Commission, (clientela_site.tenant_id, p["commission"]))
        assert (row.status, row.payment_reference) == ("paid", "SEPA-1")


def test_staff_writes_need_the_csrf_token(clientela_site, two_partners):
    p, _q = two_partners
    client = clientela_site.client("admin")
    assert client.post(f"/app/partners/commissions/{p['commission']}/approve"
                       ).status_code == 403
    assert client.post(f"/app/partners/registrations/{p['registration']}/reject",
                       data={"reason": "no token"}).status_code == 403


def test_bad_ids_are_404(clientela_site):
    client = clientela_site.client("admin")
    assert client.get("/app/partners/not-a-uuid").status_code == 404
    assert client.get(f"/app/partners/{uuid.uuid4()}").status_code == 404


# --- the partner portal ---------------------------------------------------------------


def test_partner_portal_pages_and_actions(clientela_site, two_partners):
    p, q = two_partners
    client = partner_client(clientela_site, p["email"])
    leads = client.get("/partner/leads").text
    assert str(p["offered"]) in leads and str(q["offered"]) not in leads
    assert "Shown once accepted" in leads
    assert client.get("/partner/registrations").status_code == 200
    assert client.get(f"/partner/registrations/{p['registration']}").status_code == 200
    assert client.get("/partner/commissions").status_code == 200
    assert client.get(f"/partner/commissions/{p['commission']}").status_code == 200
    # accept the offered lead: its e-mail is then shown
    answer = client.post(f"/partner/leads/{p['offered']}/accept",
                         data={"csrf_token": client.csrf})
    assert answer.status_code == 302
    with clientela_site.app.app_context(), tenancy.tenant_context(clientela_site.tenant_id):
        email = db.session.get(Lead, (clientela_site.tenant_id, p["offered"])).email
    assert email in client.get("/partner/leads").text
    # register a deal: errors per field, then created
    answer = client.post("/partner/registrations", data={"csrf_token": client.csrf,
                                                         "title": "", "amount": "abc"})
    assert answer.status_code == 422
    assert "title-errors" in answer.text and "amount-errors" in answer.text
    answer = client.post("/partner/registrations", data={
        "csrf_token": client.csrf, "title": "New press line", "company_name": "Acme Srl",
        "amount": "25000", "currency": "EUR"})
    assert answer.status_code == 302
    assert "New press line" in client.get(answer.headers["Location"]).text


def test_partner_never_reaches_another_partners_records(clientela_site, two_partners):
    p, q = two_partners
    client = partner_client(clientela_site, p["email"])
    for url in (f"/partner/registrations/{q['registration']}",
                f"/partner/commissions/{q['commission']}",
                "/partner/registrations/not-a-uuid"):
        assert client.get(url).status_code == 404, url
    for url in (f"/partner/leads/{q['offered']}/accept", f"/partner/leads/{q['offered']}/decline",
                f"/partner/leads/{q['accepted']}/decline"):
        assert client.post(url, data={"csrf_token": client.csrf}).status_code == 404, url


def test_partner_portal_other_tenant_is_404(clientela_site, two_partners):
    p, _q = two_partners
    with clientela_site.app.app_context():
        other = services.create_tenant(f"other-{_uid()}", name="Other")
        db.session.commit()
        other_id = other.id
    with clientela_site.app.app_context(), tenancy.tenant_context(other_id):
        from clientela.plugins.operational.models import Deal  # noqa: F401
        db.session.commit()
    foreign = make_partner(clientela_site, f"Foreign {_uid()}", tenant_id=other_id)
    client = partner_client(clientela_site, p["email"])
    for url in (f"/partner/registrations/{foreign['registration']}",
                f"/partner/commissions/{foreign['commission']}" if foreign["commission"]
                else f"/partner/commissions/{uuid.uuid4()}"):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/partner/leads/{foreign['offered']}/accept",
                       data={"csrf_token": client.csrf}).status_code == 404
    staff = clientela_site.client("admin")
    assert staff.get(f"/app/partners/{foreign['partner']}").status_code == 404
    assert staff.post(f"/app/partners/registrations/{foreign['registration']}/approve",
                      data={"csrf_token": staff.csrf}).status_code == 404


def test_partner_portal_needs_login_partner_role_and_csrf(clientela_site, two_partners):
    p, _q = two_partners
    anonymous = clientela_site.app.test_client()
    answer = anonymous.get("/partner/leads")
    assert answer.status_code == 302 and "/partner/login" in answer.headers["Location"]
    assert anonymous.get("/partner/login").status_code == 200
    staff = clientela_site.client("admin")
    assert staff.get("/partner/leads").status_code == 403
    client = partner_client(clientela_site, p["email"])
    assert client.post(f"/partner/leads/{p['offered']}/decline").status_code == 403
    # the portal's own login form
    fresh = clientela_site.app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"',
                      fresh.get("/partner/login").text).group(1)
    answer = fresh.post("/partner/login", data={"email": p["email"], "password": "wrong",
                                                "csrf_token": token})
    assert answer.status_code == 401
    answer = fresh.post("/partner/login", data={"email": p["email"],
                                                "password": clientela_site.password,
                                                "csrf_token": token})
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/partner/")
