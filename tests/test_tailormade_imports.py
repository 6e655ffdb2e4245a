"""Saved import mappings (``/api/v1/import-mappings``) in every CSV import: the core's
customers, the operational plugin's leads and the analytical plugin's transactions and
customer attributes — through HTTP and the CLI, on both backends."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal

import sqlalchemy as sa
from click.testing import CliRunner

from clientela.core import tenancy
from clientela.core.db import db

MAPPINGS = "/api/v1/import-mappings"
LEADS = "/api/v1/leads"


def ok(response, status=200):
    assert response.status_code == status, (response.status_code, response.json)
    return response.json


def save(api, name, kind, columns, transforms=None) -> dict:
    return ok(api.post(MAPPINGS, json={"name": name, "kind": kind, "columns": columns,
                                       "transforms": transforms or {}}), 201)


def post_csv(api, path: str, body: str, role: str = "admin"):
    return api.client.post(path, data=body, headers={**api.headers(role),
                                                     "Content-Type": "text/csv"})


def upload(api, kind, content: bytes, filename, **form):
    data = {"kind": kind, "file": (io.BytesIO(content), filename), **form}
    return api.post("/api/v1/analytics/imports", data=data, content_type="multipart/form-data")


def csv_bytes(header, rows) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def mapping_errors(response) -> list[str]:
    assert response.status_code == 422, (response.status_code, response.json)
    return response.json["errors"]["json"]["mapping"]


# --- leads ------------------------------------------------------------------------------------

FAIR_COLUMNS = {"Nome": "first_name", "Cognome": "last_name", "Ditta": "company",
                "Posta": "email", "Nazione": "country", "Dipendenti": "attributes.size",
                "Canale": "source", "Note": None, "Contatto": "message"}
FAIR_TRANSFORMS = {
    "Posta": [{"op": "trim"}, {"op": "lower"}],
    "Nazione": [{"op": "map", "values": {"Italia": "IT", "Francia": "FR"}, "other": "error"}],
    "Canale": [{"op": "default", "value": "fiera-2030"}],
    "Contatto": [{"op": "join", "columns": ["Nome", "Note"], "separator": ": "}],
}
FAIR_FILE = (
    "Nome;Cognome;Ditta;Posta;Nazione;Dipendenti;Canale;Note\n"
    "Ada;Rossi;Acme Srl; ADA@Acme.IT ;Italia;50;;richiamare\n"
    "Jean;Dupont;Beta SA;jean@beta.fr;Francia;;web;\n"
    "Hans;Muster;Gamma AG;hans@gamma.de;Germania;10;;\n"
)


def test_a_saved_mapping_renames_and_transforms_the_columns_of_a_lead_import(api):
    mapping = save(api, "fiera", "leads", FAIR_COLUMNS, FAIR_TRANSFORMS)
    for ref in ("fiera", mapping["id"]):  # by name or by id, as the customer import
        dry = ok(post_csv(api, f"{LEADS}/import?mapping={ref}&dry_run=true", FAIR_FILE))
        assert (dry["created"], dry["failed"]) == (2, 1), dry
    report = ok(post_csv(api, f"{LEADS}/import?mapping=fiera", FAIR_FILE))
    assert (report["rows"], report["created"], report["failed"]) == (3, 2, 1), report
    assert report["mapping"]["Posta"] == "email" and report["mapping"]["Note"] is None
    # the value the transformation cannot map fails its row, naming the column
    assert [(e["row"], e["field"]) for e in report["errors"]] == [(4, "Nazione")]
    assert "Germania" in report["errors"][0]["message"]
    leads = {lead["last_name"]: lead for lead in ok(api.get(LEADS))}
    assert set(leads) == {"Rossi", "Dupont"}
    ada, jean = leads["Rossi"], leads["Dupont"]
    assert (ada["first_name"], ada["company"], ada["email"], ada["country"]) == (
        "Ada", "Acme Srl", "ada@acme.it", "IT")
    assert ada["attributes"] == {"size": "50"} and ada["source"] == "fiera-2030"
    assert ada["message"] == "Ada: richiamare"
    assert jean["source"] == "web" and jean["country"] == "FR" and jean["message"] == "Jean"


def test_a_lead_import_refuses_an_unknown_mapping_or_one_for_another_import(api, other_api):
    save(api, "erp", "customers", {"Mail": "email"})
    save(api, "wrong", "leads", {"Mail": "colour"})
    body = "First name,Email\nAda,ada@example.org\n"
    assert mapping_errors(post_csv(api, f"{LEADS}/import?mapping=nope", body)) == [
        "no saved import mapping 'nope'"]
    assert mapping_errors(post_csv(api, f"{LEADS}/import?mapping=erp", body)) == [
        "'erp' is a mapping for customers imports, not for leads"]
    wrong = post_csv(api, f"{LEADS}/import?mapping=wrong", body)
    assert wrong.status_code == 422 and "not a lead field" in wrong.json["message"]
    # another tenant's mapping does not exist for this one
    save(other_api, "theirs", "leads", {"Mail": "email"})
    assert mapping_errors(post_csv(api, f"{LEADS}/import?mapping=theirs", body)) == [
        "no saved import mapping 'theirs'"]
    # no permission to import: 403 before the mapping is looked at
    assert post_csv(api, f"{LEADS}/import?mapping=nope", body, role="service").status_code == 403
    assert ok(api.get(LEADS)) == []


def test_the_customer_import_answers_422_for_a_mapping_it_cannot_use(api):
    save(api, "fiera", "leads", {"Posta": "email"})
    body = "E-mail\nada@example.org\n"
    assert mapping_errors(post_csv(api, "/api/v1/customers/import?mapping=nope", body)) == [
        "no saved import mapping 'nope'"]
    assert mapping_errors(post_csv(api, "/api/v1/customers/import?mapping=fiera", body)) == [
        "'fiera' is a mapping for leads imports, not for customers"]


# --- the analytical imports ----------------------------------------------------------------

ERP_COLUMNS = {"Nr": "order_id", "Datum": "ordered_at", "Kunde": "customer_external_id",
               "Artikel": "product_id", "Betrag": "amount", "Bezeichnung": "product_name"}
ERP_TRANSFORMS = {
    "Kunde": [{"op": "trim"}, {"op": "upper"}],
    "Datum": [{"op": "date", "from": "%d.%m.%Y"}],
    "Betrag": [{"op": "replace", "old": ".", "new": ""}, {"op": "replace", "old": ",",
                                                           "new": "."}],
    "Bezeichnung": [{"op": "join", "columns": ["Artikel", "Farbe"], "separator": " "}],
}
ERP_HEADER = ["Nr", "Datum", "Kunde", "Artikel", "Farbe", "Betrag"]
ERP_ROWS = [
    ["1", "03.02.2026", " c-1 ", "Tasse", "rot", "1.012,50"],
    ["2", "31.02.2026", "C-1", "Tasse", "", "3,00"],  # no such day
    ["3", "04.02.2026", "c-2", "Kanne", "blau", "20"],
]


def _warehouse_rows(api, sql: str) -> list[tuple]:
    from clientela.plugins.analytical import warehouse

    with tenancy.tenant_context(api.tenant.id), warehouse.connect() as con:
        rows = con.execute(sql).fetchall()
    db.session.rollback()
    return rows


def test_a_saved_mapping_renames_and_transforms_the_columns_of_a_transaction_import(api):
    api.customer(external_id="C-1", first_name="Ann")
    api.customer(external_id="C-2", first_name="Bob")
    save(api, "erp-orders", "transactions", ERP_COLUMNS, ERP_TRANSFORMS)
    response = upload(api, "transactions", csv_bytes(ERP_HEADER, ERP_ROWS), "erp.csv",
                      mapping="erp-orders")
    report = ok(response, 201)
    assert (report["rows_read"], report["matched"], report["rejected"]) == (3, 2, 1), report
    assert report["rejections"] == [
        {"row": 2, "reason": "Datum: '31.02.2026' is not a date like %d.%m.%Y"}]
    rows = _warehouse_rows(api, "SELECT order_id, date_key, product_id, original_amount "
                                "FROM fact_transaction ORDER BY order_id")
    assert rows == [("1", dt.date(2026, 2, 3), "Tasse", Decimal("1012.50")),
                    ("3", dt.date(2026, 2, 4), "Kanne", Decimal("20.00"))]
    assert _warehouse_rows(api, "SELECT product_id, name FROM dim_product ORDER BY 1") == [
        ("Kanne", "Kanne blau"), ("Tasse", "Tasse rot")]

    # the same file as Parquet (typed columns are read as text first): the same lines
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.table({h: [r[i] for r in ERP_ROWS] for i, h in enumerate(ERP_HEADER)}),
                   sink)
    again = ok(upload(api, "transactions", sink.getvalue(), "erp.parquet",
                      mapping="erp-orders"), 201)
    assert (again["matched"], again["rejected"]) == (2, 1)
    assert _warehouse_rows(api, "SELECT count(*) FROM fact_transaction") == [(2,)]


def test_a_saved_mapping_transforms_a_customer_attribute_import(api):
    api.customer(external_id="C-1", first_name="Ann")
    api.customer(first_name="Bob", email="bob@example.com")
    save(api, "census", "attributes",
         {"Schluessel": "customer_external_id", "Mail": "customer_email",
          "Region": "attribute:region"},
         {"Mail": [{"op": "trim"}, {"op": "lower"}],
          "Region": [{"op": "map", "values": {"N": "North", "S": "South"}, "other": "error"}]})
    content = csv_bytes(["Schluessel", "Mail", "Region"],
                        [["C-1", "", "N"], ["", " BOB@Example.com", "S"], ["C-1", "", "W"]])
    report = ok(upload(api, "attributes", content, "census.csv", mapping="census"), 201)
    assert (report["rows_read"], report["matched"], report["rejected"]) == (3, 2, 1), report
    assert report["rejections"] == [{"row": 3, "reason": "Region: 'W' is not one of N, S"}]
    values = _warehouse_rows(api, "SELECT c.external_id, c.email, a.name, a.value FROM "
                                  "dim_customer_attribute a JOIN dim_customer c USING "
                                  "(customer_id) ORDER BY 1 NULLS LAST")
    assert values == [("C-1", None, "region", "North"), (None, "bob@example.com", "region",
                                                          "South")]


def test_an_analytical_import_refuses_an_unknown_mapping_or_one_for_another_import(api):
    save(api, "fiera", "leads", {"Posta": "email"})
    save(api, "bad-fields", "transactions", {"Nr": "order_number"})
    content = csv_bytes(ERP_HEADER, ERP_ROWS)
    assert mapping_errors(upload(api, "transactions", content, "x.csv", mapping="nope")) == [
        "no transactions mapping named 'nope'"]
    assert mapping_errors(upload(api, "attributes", content, "x.csv", mapping="fiera")) == [
        "'fiera' is a mapping for leads imports, not for attributes"]
    bad = upload(api, "transactions", content, "x.csv", mapping="bad-fields")
    assert bad.status_code == 422 and "order_number" in json.dumps(bad.json["errors"])
    # the plugin's own saved mapping of that name still wins
    own = api.client.put("/api/v1/analytics/imports/mappings", headers=api.headers(),
                         json={"name": "fiera", "kind": "transactions",
                               "columns": {"Nr": "order_id", "Datum": "ordered_at",
                                           "Kunde": "customer_external_id",
                                           "Artikel": "product_id", "Betrag": "amount"},
                               "options": {"date_format": "%d.%m.%Y",
                                           "decimal_separator": ","}})
    assert own.status_code == 200, own.json
    report = ok(upload(api, "transactions", content, "x.csv", mapping="fiera"), 201)
    assert report["rows_read"] == 3


# --- the commands ----------------------------------------------------------------------------


def test_the_import_commands_take_a_saved_mapping_by_name(backend, fresh_database_url,
                                                          tmp_path):
    from clientela.cli import cli
    from clientela.core.access import principal_for
    from clientela.core.app import create_app
    from clientela.core.models import User

    home = tmp_path / "home"
    env = {"CLIENTELA_HOME": str(home), "DATABASE_URL": fresh_database_url(backend),
           "CLIENTELA_PROFILE": "onprem"}
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, list(args), env=env, catch_exceptions=False)

    assert invoke("init", "--admin-email", "a@example.com").exit_code == 0
    app = create_app("onprem", HOME=str(home), DATABASE_URL=env["DATABASE_URL"])
    with app.app_context():
        from clientela.core import services
        from clientela.plugins.tailormade import import_mappings

        tenant_id = app.extensions["clientela"].profile.tenant().id
        with tenancy.tenant_context(tenant_id):
            admin = db.session.execute(sa.select(User)).scalars().first()
            principal = principal_for(admin, "cli")
            import_mappings.create_mapping(principal, {
                "name": "fiera", "kind": "leads", "columns": FAIR_COLUMNS,
                "transforms": FAIR_TRANSFORMS})
            import_mappings.create_mapping(principal, {
                "name": "erp-orders", "kind": "transactions", "columns": ERP_COLUMNS,
                "transforms": ERP_TRANSFORMS})
            services.create_customer({"external_id": "C-1", "first_name": "Ann"})
            db.session.commit()
        db.session.remove()
        db.engine.dispose()

    leads = tmp_path / "fiera.csv"
    leads.write_text(FAIR_FILE, encoding="utf-8")
    result = invoke("import", "leads", str(leads), "--mapping", "fiera")
    assert result.exit_code == 1 and "2 created, 1 failed of 3 rows" in result.output, \
        result.output
    assert "row 4" in result.output and "Nazione" in result.output
    unknown = invoke("import", "leads", str(leads), "--mapping", "nope")
    assert unknown.exit_code == 2 and "no saved import mapping 'nope'" in unknown.output
    other_kind = invoke("import", "customers", str(leads), "--mapping", "fiera")
    assert other_kind.exit_code == 2
    assert "'fiera' is a mapping for leads imports, not for customers" in other_kind.output

    orders = tmp_path / "erp.csv"
    orders.write_bytes(csv_bytes(ERP_HEADER, ERP_ROWS))
    imported = invoke("warehouse", "import-transactions", str(orders), "--mapping",
                      "erp-orders", "--json")
    assert imported.exit_code == 0, imported.output
    report = json.loads(imported.output)
    assert (report["matched"], report["rejected"]) == (1, 2)  # C-2 is no customer here
    missing = invoke("warehouse", "import-transactions", str(orders), "--mapping", "nope")
    assert missing.exit_code != 0 and "no transactions mapping named 'nope'" in missing.output
