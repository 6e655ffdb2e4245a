"""The communication centre, the customer portal and the analytics pages in a real browser
(Debian's Chromium driven by Playwright), on SQLite and PostgreSQL."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from clientela.testing import save_screenshot

# the data the test-client tests use: portal customers A and B, purchases and a segment
from test_web_collab import analytics_world, inbound_item, portal_world  # noqa: F401


def test_a_customer_in_the_portal_sees_only_their_own_data(clientela_page, clientela_site,
                                                            portal_world):  # noqa: F811
    page, site = clientela_page, clientela_site
    a, b = portal_world["A"], portal_world["B"]
    page.goto(site.url + "/portal/cases")
    expect(page).to_have_url(re.compile(r"/portal/login\?next="))
    page.get_by_label("E-mail", exact=True).fill(a["email"])
    page.get_by_label("Password", exact=True).fill("portal-pass-123")
    page.get_by_role("button", name="Log in", exact=True).click()
    # back where the customer was going: their cases, and only theirs
    expect(page).to_have_url(re.compile(r"/portal/cases$"))
    expect(page.locator("#portal-cases")).to_contain_text(f"Case of {a['marker']}")
    save_screenshot(page, "portal-cases", site)
    cookie = {c["name"]: c for c in page.context.cookies()}["clientela_portal"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/portal"
    page.get_by_role("link", name="Home", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(a["name"])
    save_screenshot(page, "portal-home", site)
    page.get_by_role("link", name="My data", exact=True).click()
    expect(page.locator("#my-data")).to_contain_text(a["email"])
    page.get_by_role("link", name="My cases", exact=True).click()
    page.get_by_role("link", name=f"Case of {a['marker']}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Case of {a['marker']}")
    for path in (f"/portal/cases/{b['case_id']}", f"/portal/messages/{b['interaction_id']}"):
        answer = page.goto(site.url + path)
        assert answer.status == 404, path
        expect(page.get_by_role("heading", level=1)).to_have_text(
            "This page does not exist, or you cannot see it.")
        assert b["marker"] not in page.content()
    for path in ("/portal/", "/portal/me", "/portal/cases", "/portal/messages",
                 "/portal/consent"):
        page.goto(site.url + path)
        assert b["marker"] not in page.content() and b["email"] not in page.content(), path
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/portal/login"))
    assert not page.clientela_console_errors  # no CSP violation, no script error


def test_reply_from_the_inbox_appears_in_the_conversation(clientela_page, clientela_site):
    page, site = clientela_page, clientela_site
    marker = f"Browser{__import__('uuid').uuid4().hex[:6]}"
    inbound_item(site, marker)
    site.login(page, "service")
    page.get_by_role("link", name="Inbox").click()
    expect(page.get_by_role("heading", name="Inbox", level=1)).to_be_visible()
    save_screenshot(page, "inbox", site)
    page.get_by_role("link", name=f"Question {marker}").click()
    expect(page.locator("#thread")).to_contain_text(f"Body of {marker}")
    page.get_by_label("Your reply").fill("Thank you, we are looking into it.")
    page.get_by_role("button", name="Send reply").click()
    expect(page.get_by_role("status")).to_contain_text("Reply sent.")
    expect(page.locator("#thread")).to_contain_text("Thank you, we are looking into it.")
    expect(page.locator("#thread li")).to_have_count(2)
    save_screenshot(page, "conversation", site)
    assert not page.clientela_console_errors


def test_segments_and_rfm_pages(clientela_page, clientela_site, analytics_world):  # noqa: F811
    page, site = clientela_page, clientela_site
    site.login(page, "analyst")
    page.get_by_role("link", name="Segments").click()
    expect(page.locator("#segments")).to_contain_text("Repeat buyers")
    save_screenshot(page, "segments", site)
    page.get_by_role("link", name="RFM").click()
    expect(page.get_by_role("heading", name="RFM segments", level=1)).to_be_visible()
    expect(page.locator("#rfm-summary")).to_contain_text("Champions")
    save_screenshot(page, "rfm", site)
    page.get_by_role("link", name="Dashboard").click()
    expect(page.locator("#widget-rfm_segment_sizes svg")).to_be_visible()
    assert not page.clientela_console_errors
