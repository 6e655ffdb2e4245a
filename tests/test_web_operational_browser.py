"""The operational pages in a real browser (Debian's Chromium driven by Playwright), on
SQLite and PostgreSQL: moving a deal on the kanban (drag and drop, and the form beside each
card) changes the forecast, a case is assigned and resolved, and a sales user sees only
their own deals."""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid

import pytest
from playwright.sync_api import expect

from clientela.testing import save_screenshot


def _principal(email: str):
    from clientela.core import access
    from clientela.core.db import db
    from clientela.core.models import User

    user = db.session.execute(db.select(User).where(User.email == email)).scalar_one()
    return access.principal_for(user, "session")


def _in_site(site, build):
    from clientela.core import tenancy
    from clientela.core.db import db

    with site.app.app_context(), tenancy.tenant_context(site.tenant_id):
        answer = build(db)
        db.session.commit()
        return answer


def _deal(site, owner_role: str, amount: str = "10000"):
    from clientela.plugins.operational import services as ops

    def build(db):
        admin = _principal(site.email("admin"))
        owner = _principal(site.email(owner_role))
        deal = ops.create_deal({"title": f"Looms {uuid.uuid4().hex[:6]}",
                                "amount": decimal.Decimal(amount), "owner_id": owner.user_id,
                                "expected_close_date": dt.date.today()}, admin)
        stages = {s.name: s.id for s in ops.stages_of(deal.pipeline_id)}
        return deal.id, deal.title, stages

    return _in_site(site, build)


def _quarter_target(site, role: str, amount: str) -> None:
    """A sales target for this quarter (once), so the forecast has something to reach."""
    from clientela.plugins.operational import services as ops

    def build(db):
        admin = _principal(site.email("admin"))
        owner = _principal(site.email(role)).user_id
        start = ops.period_start(dt.date.today(), "quarter")
        if not db.session.execute(ops.targets_query(admin, owner_id=owner, period="quarter")
                                  .where(ops.SalesTarget.period_start == start)).first():
            ops.create_target({"owner_id": owner, "period": "quarter", "period_start": start,
                               "amount": decimal.Decimal(amount)}, admin)

    _in_site(site, build)


def test_move_a_deal_on_the_kanban_and_see_the_forecast_change(clientela_page, clientela_site):
    page, site = clientela_page, clientela_site
    _quarter_target(site, "manager", "150000")
    deal_id, title, stages = _deal(site, "manager")
    site.login(page, "manager")
    page.get_by_role("link", name="Deals", exact=True).click()
    expect(page.get_by_role("heading", name="Deals", level=1)).to_be_visible()
    weighted = page.locator('#forecast [data-figure="weighted"]')
    before = weighted.inner_text()
    card = page.locator(f'article[data-deal-id="{deal_id}"]')
    proposal = page.locator(f'section[data-stage-id="{stages["Proposal"]}"]')
    expect(card).to_be_visible()
    # drag with the mouse: press on the card's title bar, move onto the column, release
    card.scroll_into_view_if_needed()
    box = card.locator("h3").bounding_box()
    page.mouse.move(box["x"] + box["width"] - 4, box["y"] + box["height"] / 2)
    page.mouse.down()
    # columns are as tall as the longest one: drop beside the card, in the Proposal column
    target = proposal.bounding_box()
    page.mouse.move(target["x"] + target["width"] / 2, box["y"] + box["height"] / 2, steps=12)
    page.mouse.up()
    # the board and the forecast beside it are swapped in from the server's answer
    expect(proposal.locator(f'article[data-deal-id="{deal_id}"]')).to_be_visible()
    expect(weighted).not_to_have_text(before)
    moved_once = weighted.inner_text()
    save_screenshot(page, "kanban", site)
    # the keyboard (and no-JavaScript) way: the stage select and Move button of the card
    page.get_by_label(f"Stage of {title}").select_option(label="Negotiation")
    page.locator(f'article[data-deal-id="{deal_id}"]').get_by_role("button", name="Move").click()
    expect(page.get_by_role("status")).to_contain_text("Deal moved.")
    negotiation = page.locator(f'section[data-stage-id="{stages["Negotiation"]}"]')
    expect(negotiation.locator(f'article[data-deal-id="{deal_id}"]')).to_be_visible()
    expect(page.locator('#forecast [data-figure="weighted"]')).not_to_have_text(moved_once)
    assert not page.clientela_console_errors


def test_assign_and_resolve_a_case(clientela_page, clientela_site):
    from clientela.plugins.operational import cases

    page, site = clientela_page, clientela_site
    subject = f"Printer jammed {uuid.uuid4().hex[:6]}"

    def build(db):
        admin = _principal(site.email("admin"))
        case = cases.create_case({"subject": subject, "priority": "high",
                                  "owner_id": admin.user_id}, admin)
        return case.id, _principal(site.email("service")).user_id

    case_id, service_id = _in_site(site, build)
    site.login(page, "service")
    page.get_by_role("link", name="Cases", exact=True).click()
    row = page.get_by_role("row").filter(has_text=subject)
    expect(row).to_contain_text(re.compile("On time|At risk|Breached"))
    save_screenshot(page, "cases", site)
    row.get_by_role("link", name=subject).click()
    expect(page.get_by_role("heading", name=subject, level=1)).to_be_visible()
    page.get_by_label("Assignee").select_option(str(service_id))
    page.get_by_role("button", name="Assign", exact=True).click()
    expect(page.locator("#case-assignee")).to_have_text(site.email("service"))
    page.get_by_role("button", name="Resolve", exact=True).click()
    expect(page.locator("#case-status")).to_have_text("Resolved")
    expect(page.locator("#sla")).to_contain_text(re.compile("Met|Breached"))
    save_screenshot(page, "case", site)
    assert not page.clientela_console_errors


def test_a_sales_user_does_not_see_another_users_deals(clientela_page, clientela_site):
    page, site = clientela_page, clientela_site
    mine, my_title, _ = _deal(site, "sales", "700")
    theirs, their_title, _ = _deal(site, "admin", "900")
    site.login(page, "sales")
    page.goto(site.url + "/app/deals")
    expect(page.locator(f'article[data-deal-id="{mine}"]')).to_contain_text(my_title)
    expect(page.get_by_text(their_title)).to_have_count(0)
    expect(page.locator(f'article[data-deal-id="{theirs}"]')).to_have_count(0)
    answer = page.goto(site.url + f"/app/deals/{theirs}")
    assert answer.status == 404
    expect(page.get_by_role("heading", level=1)).to_contain_text("does not exist")
    answer = page.goto(site.url + f"/app/deals/{mine}")
    assert answer.status == 200
    expect(page.get_by_role("heading", name=my_title, level=1)).to_be_visible()
    assert not page.clientela_console_errors


def test_my_work_campaigns_and_the_dashboard(clientela_page, clientela_site):
    from clientela.plugins.operational import campaigns, work

    page, site = clientela_page, clientela_site
    title = f"Call back the buyer {uuid.uuid4().hex[:6]}"

    def build(db):
        manager = _principal(site.email("manager"))
        work.create_task({"title": title, "kind": "call",
                          "due_at": dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=3)},
                         manager)
        campaigns.create_campaign({"name": f"Spring offer {uuid.uuid4().hex[:4]}",
                                   "subject": "Spring", "body": "Hello"}, manager)

    _in_site(site, build)
    site.login(page, "manager")
    page.get_by_role("link", name="My work").click()
    row = page.get_by_role("row").filter(has_text=title)
    expect(row).to_contain_text("overdue by")
    save_screenshot(page, "my-work", site)
    row.get_by_role("button", name=f"Complete {title}").click()
    expect(page.get_by_role("status")).to_contain_text(f"Task completed: {title}")
    expect(page.get_by_role("row").filter(has_text=title)).to_have_count(0)
    page.get_by_role("link", name="Campaigns").click()
    expect(page.get_by_role("columnheader", name="ROI")).to_be_visible()
    save_screenshot(page, "campaigns", site)
    page.get_by_role("link", name="Dashboard").click()
    for key in ("pipeline_by_stage", "forecast_vs_target", "cases_by_sla", "campaign_results"):
        expect(page.locator(f"#widget-{key}")).to_be_visible()
    save_screenshot(page, "dashboard-full", site)
    assert not page.clientela_console_errors
