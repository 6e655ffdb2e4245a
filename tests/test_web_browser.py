"""The staff UI in a real browser (Debian's Chromium driven by Playwright), on SQLite and
PostgreSQL: the product served over HTTP with demo data (``clientela_site``)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from clientela.testing import save_screenshot


def test_log_in_and_out(clientela_page, clientela_site):
    page, site = clientela_page, clientela_site
    page.goto(site.url + "/app/customers")
    expect(page).to_have_url(re.compile(r"/app/login\?next="))
    page.get_by_label("E-mail").fill(site.email("admin"))
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong e-mail or password")
    save_screenshot(page, "login", site)
    page.get_by_label("Password").fill(site.password)
    page.get_by_role("button", name="Log in").click()
    # back where the user was going
    expect(page).to_have_url(re.compile(r"/app/customers$"))
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/app/login"))
    page.goto(site.url + "/app/")
    expect(page).to_have_url(re.compile(r"/app/login"))
    assert not page.clientela_console_errors  # no CSP violation, no script error


def test_dashboard_switches_to_italian(clientela_page, clientela_site):
    page, site = clientela_page, clientela_site
    site.login(page, "manager")
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    expect(page.locator("#widget-customers_by_stage svg")).to_be_visible()
    save_screenshot(page, "dashboard", site)
    page.get_by_label("Language").select_option("it")
    expect(page.get_by_role("heading", name="Clienti per fase")).to_be_visible()
    expect(page.get_by_role("link", name="Clienti", exact=True)).to_be_visible()
    assert page.locator("html").get_attribute("lang") == "it"
    save_screenshot(page, "dashboard-it", site)
    # the choice is the user's: a new session of the same user is still in Italian
    page.context.clear_cookies()
    site.login(page, "manager")
    expect(page.get_by_role("heading", name="Clienti per fase")).to_be_visible()
    page.get_by_label("Lingua").select_option("en")
    expect(page.get_by_role("heading", name="Customers by stage")).to_be_visible()
    assert not page.clientela_console_errors


def test_keyboard_only_login_and_tablet_layout(clientela_browser, clientela_site):
    """The login form is usable with the keyboard alone, and the main pages fit a tablet
    (768 px wide, portrait) without sideways scrolling."""
    site = clientela_site
    context = clientela_browser.new_context(locale="en-GB", viewport={"width": 768, "height": 1024},
                                            has_touch=True)
    page = context.new_page()
    try:
        page.goto(site.url + "/app/login")
        # the e-mail field has focus on arrival (autofocus: waited for, typing before it
        # lands loses keys); Tab moves to the password, Enter submits
        expect(page.get_by_label("E-mail")).to_be_focused()
        page.keyboard.type(site.email("analyst"))
        page.keyboard.press("Tab")
        page.keyboard.type(site.password)
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"/app/$"))
        for path in ("/app/", "/app/customers"):
            page.goto(site.url + path)
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"{path} scrolls sideways by {overflow}px on a tablet"
        save_screenshot(page, "tablet-customers", site)
    finally:
        context.close()
