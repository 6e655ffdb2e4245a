"""The core's customer pages in a real browser (Debian's Chromium driven by Playwright), on
SQLite and PostgreSQL: create and find a customer, log a phone call, import a CSV."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from clientela.testing import save_screenshot


def test_create_a_customer_and_find_it_by_search(clientela_page, clientela_site):
    page, site = clientela_page, clientela_site
    last = "Brambilla" + uuid.uuid4().hex[:6]
    site.login(page, "sales")
    page.goto(site.url + "/app/customers")
    save_screenshot(page, "customers", site)
    page.get_by_role("link", name="New customer").click()
    page.get_by_label("First name").fill("Ottavia")
    page.get_by_label("Last name").fill(last)
    page.get_by_label("E-mail").fill("not-an-address")
    page.get_by_role("button", name="Save").click()
    # the service's message, next to its field
    expect(page.locator("#email-errors")).to_be_visible()
    page.get_by_label("E-mail").fill(f"{last.lower()}@example.com")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name=f"Ottavia {last}", level=1)).to_be_visible()
    page.get_by_role("link", name="Customers", exact=True).click()
    page.get_by_label("Search").fill(last[:12])  # search as you type: no button pressed
    rows = page.locator("#customer-rows")
    expect(rows.get_by_role("link", name=f"Ottavia {last}")).to_be_visible()
    expect(rows).to_contain_text("1 customer")
    expect(page).to_have_url(re.compile(r"q=" + last[:12]))
    assert not page.clientela_console_errors


def test_log_a_phone_call_and_see_it_on_the_timeline(clientela_page, clientela_site):
    page, site = clientela_page, clientela_site
    site.login(page, "sales")
    last = "Colombo" + uuid.uuid4().hex[:6]
    page.goto(site.url + "/app/customers/new")
    page.get_by_label("First name").fill("Pietro")
    page.get_by_label("Last name").fill(last)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name=f"Pietro {last}", level=1)).to_be_visible()
    form = page.locator("form.log-form")
    form.get_by_label("Channel").select_option("phone")
    form.get_by_label("Direction").select_option("outbound")
    duration = form.get_by_label("Call duration (minutes or mm:ss)")
    expect(duration).to_be_visible()
    form.get_by_label("Channel").select_option("email")
    expect(duration).to_be_hidden()  # only calls have a duration
    form.get_by_label("Channel").select_option("phone")
    duration.fill("7:05")
    form.get_by_label("Subject").fill("Follow-up on the quote")
    form.get_by_label("Notes").fill("Will sign next week.")
    form.get_by_role("button", name="Log interaction").click()
    timeline = page.locator("#timeline")
    first = timeline.locator("li").first
    expect(first).to_contain_text("Phone call")
    expect(first).to_contain_text("Follow-up on the quote")
    expect(first).to_contain_text("7 min 5 s")
    expect(page.get_by_role("status")).to_contain_text("Interaction logged")
    save_screenshot(page, "customer-360", site)
    assert not page.clientela_console_errors


def test_import_a_csv_with_one_bad_row_and_see_the_report(clientela_page, clientela_site,
                                                         tmp_path):
    page, site = clientela_page, clientela_site
    tag = "imp" + uuid.uuid4().hex[:6]
    path = tmp_path / "contacts.csv"
    path.write_text("first_name,last_name,email,phone\n"
                    f"Anna,{tag},anna.{tag}@example.com,+39 02 1234 5678\n"
                    f"Bruno,{tag},bruno.at.example.com,\n"
                    f"Carla,{tag},carla.{tag}@example.com,\n", encoding="utf-8")
    site.login(page, "admin")
    page.goto(site.url + "/app/customers")
    page.get_by_role("link", name="Import CSV").click()
    expect(page.get_by_role("heading", name="Import customers")).to_be_visible()
    page.get_by_label("CSV file").set_input_files(str(path))
    page.get_by_role("button", name="Import").click()
    report = page.locator("#import-report")
    expect(report.get_by_role("heading", name="Import report: contacts.csv")).to_be_visible()
    expect(report.locator(".report-summary")).to_contain_text("2 imported (new)")
    expect(report.locator(".report-summary")).to_contain_text("1 rejected")
    bad = report.locator("#rejected-rows tbody tr")
    expect(bad).to_have_count(1)
    expect(bad.first.get_by_role("rowheader")).to_have_text("3")
    expect(bad.first).to_contain_text("email")
    # the page itself did not reload: the report came back to the XHR upload
    expect(page).to_have_url(re.compile(r"/app/customers/import$"))
    save_screenshot(page, "customer-import-report", site)
    page.goto(site.url + f"/app/customers?q={tag}")
    expect(page.locator("#customer-rows")).to_contain_text("2 customers")
    assert not page.clientela_console_errors


def test_admin_sees_the_users_settings(clientela_page, clientela_site):
    page, site = clientela_page, clientela_site
    site.login(page, "admin")
    page.get_by_text("Settings").click()
    page.get_by_role("link", name="Users").click()
    expect(page.get_by_role("heading", name="Users", level=1)).to_be_visible()
    expect(page.locator("#users")).to_contain_text("sales@demo.example")
    save_screenshot(page, "settings-users", site)
    assert not page.clientela_console_errors
