"""PRM and tailor-made pages in a real browser (Debian's Chromium driven by Playwright):
a partner logs in and sees only its own leads; staff open a partner's scorecard and the
settings pages. Screenshots: partners, partner-scorecard, partner-portal, custom-fields,
automations, webhooks (console-tenants: see test_console_screenshot)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from clientela.testing import save_screenshot
from test_hosted import hosted, operator_token, slug  # noqa: F401 (fixture)
from test_web_prm import make_partner


def test_partner_sees_only_its_leads_and_accepts_one(clientela_page, clientela_site):
    page, site = clientela_page, clientela_site
    mine = make_partner(site, "Officina Verdi")
    other = make_partner(site, "Fonderia Neri")
    site.login(page, email=mine["email"])  # the staff login form sends partners to /partner/
    expect(page).to_have_url(re.compile(r"/partner/leads$"))
    expect(page.get_by_role("heading", name="Leads of Officina Verdi")).to_be_visible()
    expect(page.locator(f"#lead-{mine['offered']}")).to_be_visible()
    expect(page.locator(f"#lead-{mine['accepted']}")).to_be_visible()
    expect(page.locator(f"#lead-{other['offered']}")).to_have_count(0)
    expect(page.get_by_text("Fonderia Neri")).to_have_count(0)
    save_screenshot(page, "partner-portal", site)
    page.locator(f"#lead-{mine['offered']}").get_by_role("button", name="Accept").click()
    expect(page.get_by_role("status")).to_contain_text("Lead accepted")
    # another partner's record is a 404 page
    answer = page.goto(site.url + f"/partner/registrations/{other['registration']}")
    assert answer.status == 404
    assert not page.clientela_console_errors


def test_staff_open_a_partner_scorecard(clientela_page, clientela_site):
    page, site = clientela_page, clientela_site
    site.login(page, "manager")
    page.get_by_role("link", name="Partners", exact=True).click()
    expect(page.get_by_role("heading", name="Partners", level=1)).to_be_visible()
    save_screenshot(page, "partners", site)
    page.get_by_role("link", name="Meccanica Rossi").click()
    expect(page.get_by_role("heading", name="Scorecard")).to_be_visible()
    expect(page.locator("#scorecard-chart svg")).to_be_visible()
    save_screenshot(page, "partner-scorecard", site)
    assert not page.clientela_console_errors


def test_settings_pages(clientela_page, clientela_site):
    page, site = clientela_page, clientela_site
    site.login(page, "admin")
    page.goto(site.url + "/app/settings/custom-fields/new")
    page.get_by_label("Key").fill("Bad Key")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#key-errors")).to_be_visible()
    page.get_by_label("Key").fill("vat_number")
    page.get_by_label("Label").fill("VAT number")
    page.get_by_label("Pattern (regular expression)").fill("[A-Z]{2}[0-9]{11}")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("link", name="vat_number")).to_be_visible()
    save_screenshot(page, "custom-fields", site)
    page.goto(site.url + "/app/settings/automations")
    page.get_by_role("textbox", name="Name", exact=True).fill("Welcome tag")
    page.get_by_label("Action", exact=True).select_option("add_tag")
    page.get_by_label("Action parameters (one name = value per line)").fill("tag = welcome")
    page.get_by_role("button", name="Create rule").click()
    expect(page.get_by_role("heading", name="Run log")).to_be_visible()
    page.goto(site.url + "/app/settings/automations")
    save_screenshot(page, "automations", site)
    page.goto(site.url + "/app/settings/webhooks")
    page.get_by_label("URL").fill("https://hooks.example.com/crm")
    page.get_by_label("Events (one per line, e.g. customers.insert, operational_deals.*)"
                      ).fill("customers.insert")
    page.get_by_role("button", name="Create webhook").click()
    expect(page.locator("#webhook-secret")).to_be_visible()
    save_screenshot(page, "webhooks", site)
    assert not page.clientela_console_errors


def test_console_screenshot(clientela_browser, hosted):  # noqa: F811 (fixture)
    """The operator console of a hosted instance, logged in with a pasted operator token."""
    from clientela.testing import start_live_server

    hosted.tenant(slug("acme"))
    hosted.tenant(slug("bottega"))
    token = operator_token(hosted)
    server, url = start_live_server(hosted.app)
    context = clientela_browser.new_context(locale="en-GB",
                                            viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page = context.new_page()
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error"
            and not msg.text.startswith("Failed to load resource") else None)
    try:
        page.goto(url + "/console/")
        expect(page).to_have_url(re.compile(r"/console/login"))
        page.get_by_label("Operator token").fill(token)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Tenants", level=1)).to_be_visible()
        save_screenshot(page, "console-tenants")
        assert not errors
    finally:
        context.close()
        server.shutdown()
