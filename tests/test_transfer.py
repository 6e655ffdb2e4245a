"""Customer import (CSV, vCard) and export (CSV), on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import uuid

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from clientela.cli import cli
from clientela.core import hookimpl, services, tenancy, transfer
from clientela.core.app import create_app
from clientela.core.db import db
from clientela.core.errors import ValidationError
from clientela.core.models import AuditEvent, Customer, ImportMapping


@contextlib.contextmanager
def plugged(app, obj, name):
    pm = app.extensions["clientela"].plugins.pm
    pm.register(obj, name=name)
    try:
        yield obj
    finally:
        pm.unregister(name=name)


def customers() -> list[Customer]:
    return list(db.session.execute(sa.select(Customer).order_by(Customer.id)).scalars())


def count() -> int:
    return db.session.execute(sa.select(sa.func.count()).select_from(Customer)).scalar()


def by_email(email: str) -> Customer:
    return db.session.execute(sa.select(Customer).where(Customer.email == email)).scalar_one()


def csv_text(*rows, delimiter=",") -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    for row in rows:
        writer.writerow(row)
    return out.getvalue()


PEOPLE = csv_text(
    ["E-mail", "First name", "Last name", "Company", "Phone", "Mobile", "Tags", "Stage",
     "attributes.vat", "Notes"],
    ["Ada@Example.COM", "Ada", "Lovelace", "Analytical Engines", "+44 20 7946 0958",
     "+44 7700 900123", "vip; math", "Customer", "GB123", "ignored"],
    ["grace@navy.example", "Grace", "Hopper", "", "+1 202 555 0143", "", "", "", "", ""],
    ["", "", "", "Acme S.p.A.", "", "", "supplier", "prospect", "", ""],
)


# --- mapping -----------------------------------------------------------------


def test_columns_are_mapped_from_their_header_names(tenant):
    report = transfer.import_customers(PEOPLE, filename="people.csv")
    assert (report.created, report.failed, report.committed) == (3, 0, True)
    assert report.ignored_columns == ["Notes"]
    assert report.mapping["E-mail"] == "email" and report.mapping["Mobile"] == "phones.mobile"
    ada = by_email("ada@example.com")
    assert (ada.first_name, ada.last_name, ada.display_name) == ("Ada", "Lovelace",
                                                                 "Ada Lovelace")
    assert ada.organisation_name == "Analytical Engines" and ada.kind == "person"
    assert ada.phone == "+442079460958"
    assert ada.phones == [{"label": "mobile", "value": "+447700900123"}]
    assert ada.tags == ["vip", "math"] and ada.stage == "customer"
    assert ada.attributes == {"vat": "GB123"}
    acme = db.session.execute(
        sa.select(Customer).where(Customer.display_name == "Acme S.p.A.")).scalar_one()
    assert acme.kind == "organisation" and acme.stage == "prospect" and acme.email is None


def test_delimiter_is_sniffed_and_a_byte_order_mark_is_skipped(tenant):
    data = "\ufeff" + csv_text(["Email", "Name", "Phone"],
                               ["a@example.com", "Anna Bianchi", "+39 06 1234 5678"],
                               delimiter=";")
    report = transfer.import_customers(data.encode("utf-8"), filename="semi.csv")
    assert (report.created, report.failed) == (1, 0)
    anna = by_email("a@example.com")
    assert anna.display_name == "Anna Bianchi" and anna.phone == "+390612345678"


def test_a_body_arriving_in_arbitrary_byte_chunks_is_read_whole(tenant):
    data = ("\ufeff" + csv_text(["Email", "Name"], ["a@example.com", "Zoë Ünal"],
                                ["b@example.com", "B"])).encode("utf-8")
    chunks = (data[i:i + 7] for i in range(0, len(data), 7))  # splits lines and characters
    report = transfer.import_customers(chunks)
    assert (report.created, report.failed) == (2, 0)
    assert by_email("a@example.com").display_name == "Zoë Ünal"


def test_a_file_that_is_not_utf8_says_to_give_its_encoding(tenant):
    data = csv_text(["Email", "Name"], ["a@example.com", "Zoë"]).encode("latin-1")
    with pytest.raises(transfer.ImportFailed, match="--encoding"):
        transfer.import_customers(data)
    report = transfer.import_customers(data, encoding="latin-1")
    assert by_email("a@example.com").display_name == "Zoë" and report.created == 1


def test_explicit_mapping_wins_and_can_ignore_columns(tenant):
    data = csv_text(["Mail", "Who", "Code"], ["x@example.com", "Xavier", "C-1"])
    report = transfer.import_customers(
        data, mapping={"Who": "first_name", "Code": "external_id", "Mail": None})
    assert report.created == 1
    (xavier,) = customers()
    assert (xavier.first_name, xavier.external_id, xavier.email) == ("Xavier", "C-1", None)


def test_a_mapping_to_an_unknown_field_refuses_the_file(tenant):
    with pytest.raises(transfer.ImportFileError, match="'colour', which is not a customer"):
        transfer.import_customers(csv_text(["A"], ["b"]), mapping={"A": "colour"})
    with pytest.raises(transfer.ImportFileError, match="no column of the header"):
        transfer.import_customers(csv_text(["Foo", "Bar"], ["1", "2"]))


def test_saved_mapping_is_applied_by_name_and_kept_per_tenant(app, make_tenant):
    first, second = make_tenant("m1"), make_tenant("m2")
    data = csv_text(["Courriel", "Prénom", "Société"],
                    ["jean@example.fr", "Jean", "Fromagerie Dupont"])
    with tenancy.tenant_context(first.id):
        transfer.save_mapping("from-legacy", {"Courriel": "email", "Prénom": "first_name",
                                              "Société": "organisation_name"})
        db.session.commit()
        report = transfer.import_customers(data, mapping=transfer.get_mapping("from-legacy"))
        assert report.created == 1 and report.failed == 0
        jean = by_email("jean@example.fr")
        assert (jean.first_name, jean.organisation_name) == ("Jean", "Fromagerie Dupont")
    with tenancy.tenant_context(second.id):
        assert transfer.list_mappings() == []
        with pytest.raises(services.NotFound):
            transfer.get_mapping("from-legacy")


def test_the_mapping_applied_can_be_saved_with_the_import(tenant):
    data = csv_text(["Mail", "Who"], ["y@example.com", "Yvonne"])
    transfer.import_customers(data, mapping={"Mail": "email", "Who": "first_name"},
                              save_mapping_as="monthly")
    assert transfer.get_mapping("monthly") == {"Mail": "email", "Who": "first_name"}


# --- matching ----------------------------------------------------------------


def test_matching_on_email_updates_instead_of_duplicating(tenant):
    services.create_customer({"first_name": "Ada", "email": "ada@example.com",
                              "tags": ["old"], "phone": "+44 20 7946 0000"})
    db.session.commit()
    data = csv_text(["Email", "Last name", "Tags"], ["ADA@example.com", "Lovelace", "vip"],
                    ["new@example.com", "Newman", ""])
    report = transfer.import_customers(data)
    assert (report.created, report.updated, report.failed) == (1, 1, 0)
    assert count() == 2
    ada = by_email("ada@example.com")
    # the cells the row fills change; the others stay as they were
    assert (ada.first_name, ada.last_name, ada.display_name) == ("Ada", "Lovelace",
                                                                 "Ada Lovelace")
    assert ada.tags == ["vip"] and ada.phone == "+442079460000"
    again = transfer.import_customers(data)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)


def test_matching_on_external_id_updates(tenant):
    transfer.import_customers(csv_text(["External ID", "Name", "Email"],
                                       ["C-1", "Old Name", "one@example.com"]))
    report = transfer.import_customers(
        csv_text(["External ID", "Name", "Email"], ["C-1", "New Name", "two@example.com"]),
        match="external_id")
    assert (report.created, report.updated) == (0, 1)
    (customer,) = customers()
    assert (customer.display_name, customer.email) == ("New Name", "two@example.com")


def test_a_later_row_with_the_same_key_updates_the_earlier_one(tenant):
    data = csv_text(["Email", "First name", "Phone"], ["dup@example.com", "Dora", ""],
                    ["dup@example.com", "", "+39 06 1234 5678"])
    report = transfer.import_customers(data)
    assert (report.created, report.updated) == (1, 1)
    (dora,) = customers()
    assert (dora.first_name, dora.phone) == ("Dora", "+390612345678")


def test_rows_in_later_batches_match_rows_written_by_earlier_batches(tenant):
    rows = [["Email", "First name"]] + [[f"p{i}@example.com", f"P{i}"] for i in range(7)]
    rows.append(["p1@example.com", "Changed"])
    report = transfer.import_customers(csv_text(*rows), batch_size=3)
    assert (report.created, report.updated) == (7, 1)
    assert by_email("p1@example.com").first_name == "Changed" and count() == 7


def test_an_external_id_of_another_customer_is_refused(tenant):
    transfer.import_customers(csv_text(["Email", "External ID"], ["a@example.com", "X-1"]))
    report = transfer.import_customers(
        csv_text(["Email", "External ID"], ["b@example.com", "X-1"], ["c@example.com", "X-2"],
                 ["d@example.com", "X-2"]))
    assert report.created == 1
    assert [(e.row, e.field) for e in report.errors] == [(2, "external_id"), (4, "external_id")]


# --- the report and the modes ------------------------------------------------

BAD = csv_text(
    ["Email", "First name", "Phone", "Stage"],
    ["ok1@example.com", "One", "+39 06 1234 5678", "lead"],
    ["not-an-email", "Two", "", ""],
    ["ok3@example.com", "Three", "12", "vip"],
    ["ok4@example.com", "Four", "", ""],
)


def test_the_report_names_row_field_and_message_of_each_problem(tenant):
    report = transfer.import_customers(BAD)
    assert (report.rows, report.created, report.failed) == (4, 2, 2)
    problems = {(e.row, e.field) for e in report.errors}
    assert problems == {(3, "email"), (4, "phone"), (4, "stage")}
    assert any("not-an-email" in e.message for e in report.errors if e.row == 3)
    out = io.StringIO()
    transfer.write_error_report(report, out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "row,field,message" and len(lines) == 4


def test_default_mode_keeps_the_good_rows(tenant):
    report = transfer.import_customers(BAD)
    assert report.committed and not report.refused
    assert sorted(c.email for c in customers()) == ["ok1@example.com", "ok4@example.com"]


def test_dry_run_validates_and_writes_nothing(tenant):
    report = transfer.import_customers(BAD, dry_run=True)
    assert (report.created, report.failed, report.committed) == (2, 2, False)
    assert count() == 0
    assert db.session.execute(sa.select(AuditEvent).where(
        AuditEvent.action == "import")).first() is None


def test_all_or_nothing_writes_nothing_when_one_row_is_bad(tenant):
    report = transfer.import_customers(BAD, all_or_nothing=True)
    assert report.refused and not report.committed and report.failed == 2
    assert count() == 0
    good = transfer.import_customers(csv_text(["Email"], ["fine@example.com"]),
                                     all_or_nothing=True)
    assert good.committed and count() == 1


@pytest.fixture
def refusing_trigger(app, backend):
    """A database trigger refusing one e-mail, to fail a row inside the database itself."""
    email = f"boom-{uuid.uuid4().hex[:8]}@example.com"
    name = f"refuse_{uuid.uuid4().hex[:8]}"
    with db.engine.begin() as conn:
        if backend == "sqlite":
            conn.exec_driver_sql(
                f"CREATE TRIGGER {name} BEFORE INSERT ON customers WHEN NEW.email = '{email}' "
                "BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END")
        else:
            conn.exec_driver_sql(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF NEW.email = '{email}' THEN RAISE EXCEPTION 'refused by a trigger'; "
                "END IF; RETURN NEW; END $$")
            conn.exec_driver_sql(f"CREATE TRIGGER {name} BEFORE INSERT ON customers "
                                 f"FOR EACH ROW EXECUTE FUNCTION {name}()")
    yield email
    db.session.rollback()
    with db.engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TRIGGER {name}" + ("" if backend == "sqlite"
                                                       else " ON customers"))
        if backend != "sqlite":
            conn.exec_driver_sql(f"DROP FUNCTION {name}()")


def test_a_database_failure_mid_file_leaves_nothing_written(tenant, refusing_trigger):
    rows = [["Email", "First name"]] + [[f"r{i}@example.com", f"R{i}"] for i in range(25)]
    rows[18] = [refusing_trigger, "Boom"]  # row 19, in the fourth batch of five
    with pytest.raises(transfer.ImportFailed) as failure:
        transfer.import_customers(csv_text(*rows), batch_size=5)
    assert "starting at row 17" in str(failure.value)
    assert "nothing was written" in str(failure.value)
    assert count() == 0  # the three batches before it were rolled back too
    assert db.session.execute(sa.select(AuditEvent).where(
        AuditEvent.action == "import")).first() is None


def test_a_stream_that_breaks_mid_file_leaves_nothing_written(tenant):
    def upload():
        yield b"Email,First name\r\n"
        for i in range(30):
            yield f"s{i}@example.com,S{i}\r\n".encode()
        raise ConnectionResetError("client went away")

    with pytest.raises(transfer.ImportFailed, match="client went away"):
        transfer.import_customers(upload(), batch_size=10)
    assert count() == 0


def test_imported_rows_belong_to_the_current_tenant_only(app, make_tenant):
    mine, other = make_tenant("mine"), make_tenant("other")
    with tenancy.tenant_context(other.id):
        services.create_customer({"first_name": "Theirs", "email": "ada@example.com"})
        db.session.commit()
    with tenancy.tenant_context(mine.id):
        report = transfer.import_customers(PEOPLE)
        # the other tenant's customer with the same e-mail is neither matched nor changed
        assert (report.created, report.updated) == (3, 0)
        assert {c.tenant_id for c in customers()} == {mine.id}
    with tenancy.tenant_context(other.id):
        (theirs,) = customers()
        assert theirs.first_name == "Theirs"
    with tenancy.unscoped(), tenancy.tenant_context(mine.id):
        rows = db.session.execute(
            sa.select(Customer.tenant_id, sa.func.count())
            .where(Customer.tenant_id.in_([mine.id, other.id])).group_by(Customer.tenant_id)
        ).all()
        assert dict(rows) == {mine.id: 3, other.id: 1}


def test_an_import_writes_one_summary_audit_event(tenant):
    before = db.session.execute(sa.select(sa.func.count()).select_from(AuditEvent)).scalar()
    transfer.import_customers(BAD, filename="/tmp/uploads/leads.csv")
    events = db.session.execute(sa.select(AuditEvent).where(
        AuditEvent.created_at.is_not(None)).order_by(AuditEvent.id)).scalars().all()
    assert len(events) == before + 1
    event = events[-1]
    assert (event.action, event.entity_type, event.entity_id) == ("import", "customers", None)
    assert event.changes == {"file": "leads.csv", "format": "csv", "rows": 4, "created": 2,
                             "updated": 0, "unchanged": 0, "failed": 2, "match": "email",
                             "mode": "default"}


# --- plugins -----------------------------------------------------------------


class ImportWatcher:
    def __init__(self, veto=False):
        self.pre, self.post, self.veto = [], [], veto

    @hookimpl
    def clientela_customers_imported_precommit(self, created_ids, updated_ids, summary):
        self.pre.append((list(created_ids), list(updated_ids), summary["created"]))
        if self.veto:
            raise ValidationError({"_schema": ["imports are closed today"]})

    @hookimpl
    def clientela_customers_imported_postcommit(self, created_ids, updated_ids, summary):
        self.post.append((list(created_ids), list(updated_ids), summary["file"]))


def test_import_hooks_fire_once_per_import_with_the_ids(app, tenant):
    existing = services.create_customer({"first_name": "Ada", "email": "ada@example.com"})
    db.session.commit()
    watcher = ImportWatcher()
    with plugged(app, watcher, "watcher"):
        transfer.import_customers(PEOPLE, filename="people.csv", batch_size=2)
    assert len(watcher.pre) == len(watcher.post) == 1
    created, updated, file = watcher.post[0]
    assert updated == [existing.id] and len(created) == 2 and file == "people.csv"
    assert set(created) | set(updated) == {c.id for c in customers()}


def test_a_precommit_veto_refuses_the_whole_import(app, tenant):
    with plugged(app, ImportWatcher(veto=True), "vetoer"):
        with pytest.raises(ValidationError, match="imports are closed"):
            transfer.import_customers(PEOPLE)
    assert count() == 0


class VipNeedsEmail:
    @hookimpl
    def clientela_validate(self, entity, change):
        if isinstance(entity, Customer) and "vip" in entity.tags and not entity.email:
            return {"email": ["a VIP needs an e-mail address"]}
        return None


def test_plugin_validation_applies_to_each_imported_row(app, tenant):
    data = csv_text(["Email", "Name", "Tags"], ["v@example.com", "Vera", "vip"],
                    ["", "Vic", "vip"], ["", "Val", ""])
    with plugged(app, VipNeedsEmail(), "vip-rule"):
        report = transfer.import_customers(data)
    assert (report.created, report.failed) == (2, 1)
    assert [(e.row, e.field, e.message) for e in report.errors] == [
        (3, "email", "a VIP needs an e-mail address")]


# --- vCard -------------------------------------------------------------------

VCARD3 = """BEGIN:VCARD\r
VERSION:3.0\r
N:Hopper;Grace;Brewster;;\r
FN:Grace Hopper\r
ORG:US Navy\r
EMAIL;TYPE=INTERNET,WORK:grace.work@navy.example\r
EMAIL;TYPE=INTERNET,PREF:Grace@Navy.example\r
TEL;TYPE=CELL:+1 202 555 0143\r
TEL;TYPE=WORK:+1 202 555 0100\r
ADR;TYPE=WORK:;;1 Navy Way;Arlington;VA;22202;USA\r
CATEGORIES:pioneer,navy\r
UID:grace-1906\r
END:VCARD\r
BEGIN:VCARD\r
VERSION:3.0\r
FN:Broken\r
EMAIL:not-an-address\r
END:VCARD\r
"""

VCARD4 = """BEGIN:VCARD
VERSION:4.0
KIND:org
FN:Analytical Engines Ltd
ORG:Analytical Engines Ltd
EMAIL;TYPE=work;PREF=1:info@engines.example
TEL;VALUE=uri;TYPE="voice,work":tel:+44-20-7946-0958
URL:https://engines.example
END:VCARD
BEGIN:VCARD
VERSION:4.0
FN:Ada Lovelace
N:Lovelace;Ada;;;
EMAIL;TYPE=home:ada@home.example
EMAIL;PREF=1:ada@engines.example
END:VCARD
"""


def test_vcard_3_is_imported_with_card_numbers_in_the_report(tenant):
    report = transfer.import_customers(VCARD3.encode(), filename="contacts.vcf")
    assert report.format == "vcard" and (report.created, report.failed) == (1, 1)
    assert [(e.row, e.field) for e in report.errors] == [(2, "email")]
    grace = by_email("grace@navy.example")
    assert (grace.first_name, grace.last_name) == ("Grace Brewster", "Hopper")
    assert grace.organisation_name == "US Navy" and grace.kind == "person"
    assert grace.emails == [{"label": "work", "value": "grace.work@navy.example"}]
    assert grace.phone == "+12025550143"
    assert grace.phones == [{"label": "work", "value": "+12025550100"}]
    assert grace.addresses == [{"label": "work", "street": "1 Navy Way", "city": "Arlington",
                                "region": "VA", "postal_code": "22202", "country": "USA"}]
    assert grace.tags == ["pioneer", "navy"] and grace.external_id == "grace-1906"


def test_vcard_4_is_detected_by_content_and_imported(tenant):
    report = transfer.import_customers(io.BytesIO(VCARD4.encode()), filename="upload")
    assert report.format == "vcard" and (report.created, report.failed) == (2, 0)
    engines = by_email("info@engines.example")
    assert engines.kind == "organisation" and engines.display_name == "Analytical Engines Ltd"
    assert engines.phone == "+442079460958" and engines.website == "https://engines.example"
    ada = by_email("ada@engines.example")
    assert ada.display_name == "Ada Lovelace"
    assert ada.emails == [{"label": "home", "value": "ada@home.example"}]
    again = transfer.import_customers(VCARD4, filename="contacts.vcf")
    assert (again.created, again.unchanged) == (0, 2)


# --- export ------------------------------------------------------------------


def _rich_customers():
    transfer.import_customers(PEOPLE)
    services.create_customer({
        "first_name": "Zoë", "last_name": "O'Brien, Jr.", "email": "zoe@example.com",
        "tags": ["a;b", "c"], "attributes": {"vat": "IE1", "score": 7, "note": "line1\nline2"},
        "addresses": [{"label": "home", "street": "1 \"Quoted\" St", "city": "Cork"}],
        "emails": [{"label": "work", "value": "z@work.example"}], "external_id": "Z-9",
        "website": "https://zoe.example", "stage": "former"})
    db.session.commit()


def _export(chunk_rows=1000) -> str:
    return "".join(transfer.iter_customers_csv(chunk_rows=chunk_rows))


def _comparable(text: str) -> list[dict]:
    rows = list(csv.DictReader(io.StringIO(text)))
    for row in rows:
        for column in ("id", "created_at", "updated_at"):
            row.pop(column)
    return sorted(rows, key=lambda r: r["display_name"])


def test_export_streams_every_core_column_in_chunks(tenant):
    _rich_customers()
    chunks = list(transfer.iter_customers_csv(chunk_rows=2))
    assert len(chunks) >= 2
    rows = list(csv.DictReader(io.StringIO("".join(chunks))))
    assert list(rows[0]) == list(transfer.EXPORT_COLUMNS) and len(rows) == 4
    zoe = next(r for r in rows if r["email"] == "zoe@example.com")
    assert json.loads(zoe["tags"]) == ["a;b", "c"]
    assert json.loads(zoe["attributes"]) == {"vat": "IE1", "score": 7, "note": "line1\nline2"}
    ada = next(r for r in rows if r["email"] == "ada@example.com")
    assert ada["tags"] == "vip; math" and ada["stage"] == "customer"


def test_an_export_imports_back_into_another_tenant_unchanged(app, make_tenant):
    source, target = make_tenant("src"), make_tenant("dst")
    with tenancy.tenant_context(source.id):
        _rich_customers()
        exported = _export()
        # the same tenant: matched by id, nothing to change
        again = transfer.import_customers(exported, match="id")
        assert (again.unchanged, again.failed) == (4, 0)
    with tenancy.tenant_context(target.id):
        report = transfer.import_customers(exported, filename="export.csv")
        assert (report.created, report.failed, report.ignored_columns) == (4, 0, [])
        assert _comparable(_export()) == _comparable(exported)


def test_cli_imports_with_a_report_file_and_exports(backend, fresh_database_url, tmp_path):
    env = {"CLIENTELA_HOME": str(tmp_path), "DATABASE_URL": fresh_database_url(backend),
           "CLIENTELA_PROFILE": "onprem"}
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, list(args), env=env, catch_exceptions=False)

    assert invoke("init", "--admin-email", "a@example.com").exit_code == 0
    source = tmp_path / "in.csv"
    source.write_text(BAD, encoding="utf-8")
    mapping = tmp_path / "m.json"
    mapping.write_text(json.dumps({"Stage": None, "Phone": None}), encoding="utf-8")

    dry = invoke("import", "customers", str(source), "--dry-run")
    assert dry.exit_code == 1 and "dry run, nothing was written" in dry.output
    assert "row 3, email: 'not-an-email' is not a valid e-mail address" in dry.output

    strict = invoke("import", "customers", str(source), "--all-or-nothing")
    assert strict.exit_code == 1 and "nothing was written" in strict.output

    report = tmp_path / "errors.csv"
    result = invoke("import", "customers", str(source), "--mapping", str(mapping),
                    "--save-mapping", "no-stage", "--report", str(report))
    assert result.exit_code == 1
    assert "3 created, 0 updated, 0 unchanged, 1 failed of 4 rows" in result.output
    assert result.output.strip().splitlines()[-1] == \
        f"Error: 1 rows were not imported (errors: {report})"
    assert report.read_text().splitlines() == [
        "row,field,message", "3,email,'not-an-email' is not a valid e-mail address"]

    again = invoke("import", "customers", str(source), "--mapping", "no-stage",
                   "--match", "email")
    assert "0 created, 0 updated, 3 unchanged" in again.output
    assert "no-stage: " in invoke("import", "mappings").output

    out = tmp_path / "out.csv"
    result = invoke("export", "customers", str(out))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert sorted(r["email"] for r in rows) == ["ok1@example.com", "ok3@example.com",
                                               "ok4@example.com"]
    vcf = tmp_path / "contacts.vcf"
    vcf.write_text(VCARD4, encoding="utf-8")
    result = invoke("import", "customers", str(vcf))
    assert result.exit_code == 0 and "2 created" in result.output

    app = create_app("onprem", HOME=env["CLIENTELA_HOME"], DATABASE_URL=env["DATABASE_URL"])
    with app.app_context():
        tenant = app.extensions["clientela"].profile.tenant()
        with tenancy.tenant_context(tenant.id):
            assert db.session.execute(sa.select(ImportMapping.name)).scalars().all() == [
                "no-stage"]
            events = db.session.execute(sa.select(AuditEvent.origin, AuditEvent.changes).where(
                AuditEvent.action == "import")).all()
            assert [e.origin for e in events] == ["cli"] * 3
        db.engine.dispose()


def test_import_help_lists_the_options(backend, fresh_database_url, tmp_path):
    env = {"CLIENTELA_HOME": str(tmp_path), "DATABASE_URL": fresh_database_url(backend)}
    result = CliRunner().invoke(cli, ["import", "customers", "--help"], env=env)
    assert result.exit_code == 0
    for option in ("--mapping", "--match", "--dry-run", "--all-or-nothing", "--report",
                   "--delimiter", "--save-mapping"):
        assert option in result.output


# --- phone numbers (core/phones.py: fast path and cache) ---------------------


def test_phones_in_every_form_are_stored_in_e164_and_bad_ones_reported(tenant):
    from clientela.core import phones

    phones.to_e164.cache_clear()
    rows = [["E-mail", "First name", "Phone"],
            ["a@example.com", "A", "+39 06 1234 5678"],      # fast path
            ["b@example.com", "B", "+39 06 1234 5678"],      # the same text: the cache
            ["c@example.com", "C", "+1 (415) 555-0100"],     # fast path, punctuation
            ["d@example.com", "D", "+44 (0)20 7946 0958"],   # fast path, national prefix
            ["e@example.com", "E", "06 1234 5679"],          # national: phonenumbers, region
            ["f@example.com", "F", "+1 415 555 0101 ext 9"],  # extension: phonenumbers
            ["g@example.com", "G", "+39 12"],                # too short: refused
            ["h@example.com", "H", "+999 1234 5678"]]        # no such calling code: refused
    report = transfer.import_customers(csv_text(*rows), phone_region="IT")
    assert (report.created, report.failed) == (6, 2)
    assert {(e.row, e.field) for e in report.errors} == {(8, "phone"), (9, "phone")}
    stored = {c.email: c.phone for c in customers()}
    assert stored == {"a@example.com": "+390612345678", "b@example.com": "+390612345678",
                      "c@example.com": "+14155550100", "d@example.com": "+442079460958",
                      "e@example.com": "+390612345679", "f@example.com": "+14155550101"}
    assert phones.to_e164.cache_info().hits >= 1
    # the same national number without a region is refused, not answered from the cache
    report = transfer.import_customers(csv_text(rows[0], ["x@example.com", "X", "06 1234 5679"]))
    assert (report.created, report.failed) == (0, 1)
    assert "+country code" in report.errors[0].message
