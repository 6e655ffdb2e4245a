"""Customer search (``q=``): names, e-mails and phones, case-insensitive, within one tenant."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from clientela.core import search, services, tenancy
from clientela.core.db import db
from clientela.core.models import Customer


def found(q: str) -> set[str]:
    stmt = search.filter_customers(db.select(Customer.display_name), q)
    return set(db.session.execute(stmt).scalars())


@pytest.fixture
def people(tenant):
    """Three customers of the current tenant."""
    for data in (
        {"first_name": "Mario", "last_name": "Rossi", "email": "mario.rossi@example.com",
         "phone": "+39 06 1234 5678"},
        {"first_name": "Élise", "last_name": "Dupont", "organisation_name": "Acme",
         "email": "e.dupont@acme.fr", "phone": "+33 6 98 76 54 32"},
        {"kind": "organisation", "organisation_name": "Rossini & Figli",
         "email": "info@rossini.it", "phone": "+1 212 555 0100"},
    ):
        services.create_customer(data)
    db.session.commit()


def test_names_match_by_prefix_of_any_name(people):
    assert found("mario") == {"Mario Rossi"}
    assert found("Mario R") == {"Mario Rossi"}
    assert found("ross") == {"Mario Rossi", "Rossini & Figli"}
    assert found("dup") == {"Élise Dupont"}
    assert found("acme") == {"Élise Dupont"}  # her organisation


def test_names_match_only_from_the_start(people):
    assert found("ario") == set()
    assert found("ossi") == set()


def test_search_is_case_insensitive(people):
    assert found("MARIO") == {"Mario Rossi"}
    assert found("rOsSiNi") == {"Rossini & Figli"}
    assert found("ÉLISE") == {"Élise Dupont"}
    assert found("Mario.Rossi@EXAMPLE") == {"Mario Rossi"}


def test_email_matches_by_prefix(people):
    assert found("mario.rossi@") == {"Mario Rossi"}
    assert found("e.dupont@acme.fr") == {"Élise Dupont"}
    assert found("info@") == {"Rossini & Figli"}
    assert found("example.com") == set()


def test_phone_matches_international_and_national_numbers(people):
    assert found("+39 06 1234") == {"Mario Rossi"}
    assert found("0039 06 1234") == {"Mario Rossi"}
    # a national number: Italy keeps the 0 of 06 in E.164, France drops it
    assert found("06 1234") == {"Mario Rossi"}
    assert found("06 98 76 54") == {"Élise Dupont"}
    assert found("06") == set()  # too short to be a phone number
    assert found("+33 6 98") == {"Élise Dupont"}
    assert found("(212) 555-01") == {"Rossini & Figli"}
    assert found("+1 212 555 0100") == {"Rossini & Figli"}
    assert found("555 0100") == set()  # not a prefix of the national number


def test_no_match_and_nothing_searchable(people):
    assert found("zzz") == set()
    assert found("%") == set()
    assert found("_ario") == set()  # LIKE wildcards are taken literally
    assert found('"') == set()
    assert found("*") == set()
    assert found("12") == set()  # too short to be a phone number
    assert found("mario\x00") == {"Mario Rossi"}  # no database error for odd input
    assert found("ü" * 300) == set()


def test_empty_q_filters_nothing(people):
    assert len(found("   ")) == 3


def test_a_customer_of_another_tenant_with_the_same_name_is_never_returned(make_tenant):
    a, b = make_tenant("a"), make_tenant("b")
    for t in (a, b):
        with tenancy.tenant_context(t.id):
            services.create_customer({"first_name": "Giulia", "last_name": f"Verdi {t.slug}",
                                      "email": "giulia@verdi.it", "phone": "+39 02 555 1234"})
            db.session.commit()
    for t in (a, b):
        with tenancy.tenant_context(t.id):
            for q in ("giulia", "verdi", "giulia@", "02 555", "+39 02"):
                assert found(q) == {f"Giulia Verdi {t.slug}"}, q


def test_updates_and_deletes_keep_the_index_in_sync(tenant):
    customer = services.create_customer({"first_name": "Paolo", "last_name": "Bianchi",
                                         "email": "paolo@bianchi.it", "phone": "+39 011 555 12"})
    db.session.commit()
    assert found("paolo") == {"Paolo Bianchi"}
    customer.first_name, customer.display_name = "Pietro", "Pietro Bianchi"
    customer.email, customer.phone = "pietro@bianchi.it", "+390115559999"
    db.session.commit()
    assert found("paolo") == set()
    assert found("pietro") == {"Pietro Bianchi"}
    assert found("pietro@") == {"Pietro Bianchi"}
    assert found("011 555 99") == {"Pietro Bianchi"}
    assert found("011 555 12") == set()
    db.session.execute(sa.update(Customer).values(last_name="Neri", display_name="Pietro Neri"))
    db.session.commit()
    assert found("neri") == {"Pietro Neri"}
    assert found("bianchi") == set()
    db.session.delete(customer)
    db.session.commit()
    assert found("pietro") == set()
    assert found("011") == set()


def test_sqlite_index_can_be_rebuilt(app, tenant):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("the FTS5 table is SQLite's")
    services.create_customer({"first_name": "Carla", "email": "carla@example.com"})
    db.session.commit()
    search.rebuild_sqlite_index(db.session.connection())
    db.session.commit()
    assert found("carla") == {"Carla"}
    assert found("carla@") == {"Carla"}


def executed_sql(stmt) -> tuple[str, object]:
    """The SQL and parameters the session really sends for ``stmt`` (tenant scoping included)."""
    seen = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    sa.event.listen(db.engine, "before_cursor_execute", capture)
    try:
        db.session.execute(stmt).all()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", capture)
    return seen[-1]


def test_search_uses_the_indexes(app, tenant):
    db.session.execute(sa.insert(Customer), [
        {"display_name": f"Name{i} Surname{i}", "first_name": f"Name{i}",
         "last_name": f"Surname{i}", "email": f"n{i}@example.com", "phone": f"+3906{i:07d}"}
        for i in range(3000)
    ])
    db.session.commit()
    conn = db.session.connection()
    if db.engine.dialect.name == "postgresql":
        conn.exec_driver_sql("ANALYZE customers")
    sql, params = executed_sql(search.filter_customers(db.select(Customer.id), "name12"))
    if db.engine.dialect.name == "sqlite":
        plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params).all()
        assert any("VIRTUAL TABLE INDEX" in row[-1] for row in plan), plan
    else:
        plan = "\n".join(conn.exec_driver_sql(f"EXPLAIN {sql}", params).scalars())
        assert "Seq Scan" not in plan, plan
        for name in ("display_name", "first_name", "last_name", "organisation_name", "email"):
            assert f"ix_customers_search_{name}" in plan, plan


# --- the global search: customers and every plugin's records, in the caller's scope ----


def test_global_search_finds_every_kind_within_the_callers_scope(api, other_api):
    customer = api.customer(first_name="Zephyr", last_name="Quill", email="zq@example.com")
    mine = api.post("/api/v1/leads", role="sales",
                    json={"first_name": "Zephyr", "company": "Zephyr Lead Srl"}).json
    others = api.post("/api/v1/leads", json={"first_name": "Zephyr", "last_name": "Other",
                                             "owner_id": str(api.users["manager"].id)}).json
    deal = api.post("/api/v1/deals", json={"title": "Zephyr expansion", "amount": "100",
                                           "customer_id": customer["id"],
                                           "owner_id": str(api.users["manager"].id)}).json
    case = api.post("/api/v1/cases", json={"subject": "Zephyr cannot log in",
                                           "customer_id": customer["id"]}).json
    other_api.customer(first_name="Zephyr", last_name="Foreign")

    def found(role):
        response = api.get("/api/v1/search?q=zeph", role=role)
        assert response.status_code == 200, response.json
        return {(r["type"], r["id"]) for r in response.json}

    everything = found("admin")
    assert {("customer", customer["id"]), ("lead", mine["id"]), ("lead", others["id"]),
            ("deal", deal["id"]), ("case", case["id"])} <= everything
    assert all(kind != "customer" or rid == customer["id"] for kind, rid in everything)
    # sales, own scope: their own lead only, no deal of someone else, no cases
    sales = found("sales")
    assert ("lead", mine["id"]) in sales and ("lead", others["id"]) not in sales
    assert ("deal", deal["id"]) not in sales and ("case", case["id"]) not in sales
    # service: cases, but no deals or leads
    service = found("service")
    assert ("case", case["id"]) in service
    assert not {k for k, _ in service} & {"deal", "lead"}
    # another tenant finds none of it
    theirs = other_api.get("/api/v1/search?q=zeph").json
    assert [r["title"] for r in theirs] == ["Zephyr Foreign"]


def test_global_search_needs_two_characters(api):
    response = api.get("/api/v1/search?q=z")
    assert response.status_code == 422 and "q" in response.json["errors"]["query"]
