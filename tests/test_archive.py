"""The portable archive: what it holds, that it round-trips every value, that loading is all or nothing."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
import zipfile

import pytest
import sqlalchemy as sa

from clientela.core import archive, migrations, services, tenancy
from clientela.core.app import create_app
from clientela.core.db import db
from clientela.core.models import Customer, Interaction


@pytest.fixture
def filled_tenant(make_tenant):
    """A tenant whose customers refer to each other against key order (child made first)."""
    t = make_tenant("arch")
    with tenancy.tenant_context(t.id):
        person = services.create_customer({"first_name": "Paola", "email": "p@example.com",
                                           "attributes": {"score": 1.5, "nested": {"b": 1}}})
        org = services.create_customer({"kind": "organisation", "organisation_name": "Org"})
        person.organisation_id = org.id  # the row sorting first refers to a later one
        services.record_interaction(person.id, "email", subject="hello ✉", body="x" * 2000)
        user = services.create_user("u@example.com", roles=["sales"])
        services.create_token(user)
        db.session.commit()
    return t


@pytest.fixture
def other_app(backend, fresh_database_url, tmp_path):
    """A second, empty instance on the same backend, migrated."""
    app = create_app("onprem", DATABASE_URL=fresh_database_url(backend),
                     HOME=str(tmp_path / "other"), SECRET_KEY="s")
    with app.app_context():
        migrations.upgrade(app)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _checksums(tenant_id):
    with db.engine.connect() as conn:
        return archive.table_checksums(conn, db.metadata, "tenant", tenant_id)


def test_tenant_archive_holds_every_tenant_table_and_only_that_tenant(app_ctx, filled_tenant,
                                                                     make_tenant, tmp_path):
    other = make_tenant("noise")
    with tenancy.tenant_context(other.id):
        services.create_customer({"first_name": "Not me"})
        db.session.commit()
    path = str(tmp_path / "t.zip")
    with db.engine.connect() as conn:
        manifest = archive.write(path, conn, db.metadata, scope="tenant",
                                 tenant={"id": filled_tenant.id, "slug": filled_tenant.slug})
    names = [t["name"] for t in manifest["tables"]]
    expected = [t.name for t in db.metadata.sorted_tables
                if t.name == "tenants" or "tenant_id" in t.c]
    assert names == expected  # from the metadata, parents first
    assert names[0] == "tenants" and names.index("customers") < names.index("interactions")
    assert manifest["schema_revisions"] == sorted(migrations.applied_heads(app_ctx))
    with zipfile.ZipFile(path) as zf:
        customers = [json.loads(line) for line in zf.read("tables/customers.jsonl").splitlines()]
        tenants = [json.loads(line) for line in zf.read("tables/tenants.jsonl").splitlines()]
    assert {c["tenant_id"] for c in customers} == {str(filled_tenant.id)}
    assert [t["slug"] for t in tenants] == [filled_tenant.slug]
    assert {t["name"]: {"rows": t["rows"], "sha256": t["sha256"]}
            for t in manifest["tables"]} == _checksums(filled_tenant.id)


def test_a_tenant_loads_into_another_instance_with_the_same_checksums(app_ctx, filled_tenant,
                                                                      other_app, tmp_path):
    before = _checksums(filled_tenant.id)
    path = str(tmp_path / "t.zip")
    with db.engine.connect() as conn:
        archive.write(path, conn, db.metadata, scope="tenant",
                      tenant={"id": filled_tenant.id, "slug": filled_tenant.slug})
    with other_app.app_context():
        manifest = archive.load_tenant(path)
        assert manifest["tenant"]["slug"] == filled_tenant.slug
        assert _checksums(filled_tenant.id) == before
        with tenancy.tenant_context(filled_tenant.id):
            person = db.session.execute(
                sa.select(Customer).where(Customer.email == "p@example.com")).scalar_one()
            assert person.organisation_id is not None
            assert person.attributes == {"score": 1.5, "nested": {"b": 1}}
            call = db.session.execute(sa.select(Interaction)).scalar_one()
            assert call.subject == "hello ✉" and call.created_at.tzinfo is not None


def test_loading_is_all_or_nothing(app_ctx, filled_tenant, other_app, tmp_path):
    path = str(tmp_path / "t.zip")
    with db.engine.connect() as conn:
        archive.write(path, conn, db.metadata, scope="tenant",
                      tenant={"id": filled_tenant.id, "slug": filled_tenant.slug})
    # an archive whose last table breaks a constraint: the tables before it must vanish too
    broken = str(tmp_path / "broken.zip")
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(broken, "w") as zout:
        manifest = json.loads(zin.read("manifest.json"))
        last = manifest["tables"][-1]["name"]
        for item in zin.infolist():
            if item.filename in ("manifest.json", f"tables/{last}.jsonl"):
                continue
            zout.writestr(item, zin.read(item.filename))
        bad_row = json.dumps({"tenant_id": str(filled_tenant.id)}).encode() + b"\n"
        zout.writestr(f"tables/{last}.jsonl", bad_row)
        import hashlib

        manifest["tables"][-1].update(rows=1, sha256=hashlib.sha256(bad_row).hexdigest())
        zout.writestr("manifest.json", json.dumps(manifest))
    with other_app.app_context():
        with pytest.raises(sa.exc.IntegrityError):
            archive.load_tenant(broken)
        with db.engine.connect() as conn:
            assert archive.is_empty(conn)
        archive.load_tenant(path)
        # loading the same tenant again conflicts, and again changes nothing
        before = _checksums(filled_tenant.id)
        with pytest.raises(sa.exc.IntegrityError):
            archive.load_tenant(path)
        assert _checksums(filled_tenant.id) == before


def test_every_kind_of_value_round_trips(backend, fresh_database_url, tmp_path):
    from clientela.core.db import JSONType, UTCDateTime

    md = sa.MetaData()
    table = sa.Table(
        "samples", md,
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("when", UTCDateTime()), sa.Column("day", sa.Date),
        sa.Column("at", sa.Time), sa.Column("amount", sa.Numeric(12, 2)),
        sa.Column("ratio", sa.Float), sa.Column("count", sa.BigInteger),
        sa.Column("flag", sa.Boolean), sa.Column("blob", sa.LargeBinary),
        sa.Column("doc", JSONType), sa.Column("text", sa.Text),
    )
    rows = [{
        "id": uuid.UUID(int=i + 1),
        "when": dt.datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=dt.timezone.utc),
        "day": dt.date(2026, 2, 28), "at": dt.time(23, 59, 1),
        "amount": decimal.Decimal("1234567890.25"), "ratio": 0.1 + 0.2,
        "count": 2**53 + 1, "flag": bool(i), "blob": bytes(range(256)),
        "doc": {"z": [1, "two", None, {"é": True}], "a": 1.5}, "text": "line\nnext \u2603",
    } for i in range(2)] + [{"id": uuid.UUID(int=99)}]  # and every column NULL
    source = sa.create_engine(fresh_database_url(backend))
    target = sa.create_engine(fresh_database_url(backend))
    try:
        for engine in (source, target):
            md.create_all(engine)
        with source.begin() as conn:
            conn.execute(table.insert(), rows_with_nulls(rows, table))
        path = str(tmp_path / "v.zip")
        with source.connect() as conn:
            archive.write(path, conn, md, scope="instance")
            expected = archive.table_checksums(conn, md)
        with target.begin() as conn:
            archive.load(path, conn, md)
        with target.connect() as conn:
            assert archive.table_checksums(conn, md) == expected
            loaded = [dict(r._mapping) for r in conn.execute(sa.select(table).order_by(table.c.id))]
        assert loaded == rows_with_nulls(rows, table)
    finally:
        source.dispose()
        target.dispose()


def rows_with_nulls(rows, table):
    return [{c.name: row.get(c.name) for c in table.columns} for row in rows]


def test_a_newer_archive_format_is_refused_with_advice(tmp_path):
    path = tmp_path / "future.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.json", json.dumps({"format": "clientela-archive",
                                                 "format_version": 99}))
    with pytest.raises(archive.ArchiveError, match="upgrade Clientela first"):
        archive.read_manifest(str(path))


def test_an_archive_of_an_unknown_schema_is_refused(app_ctx, filled_tenant, other_app, tmp_path):
    path = str(tmp_path / "t.zip")
    with db.engine.connect() as conn:
        archive.write(path, conn, db.metadata, scope="tenant",
                      tenant={"id": filled_tenant.id, "slug": filled_tenant.slug})
    future = str(tmp_path / "future.zip")
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(future, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "manifest.json":
                manifest = json.loads(data)
                manifest["schema_revisions"].append("9999_future")
                data = json.dumps(manifest)
            zout.writestr(item, data)
    with other_app.app_context():
        with pytest.raises(archive.ArchiveError, match="9999_future"):
            archive.load_tenant(future)
        with db.engine.connect() as conn:
            assert archive.is_empty(conn)
