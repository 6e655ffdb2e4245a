"""The on-premise profile: backup while running, restore into an empty instance, upgrades."""

from __future__ import annotations

import datetime as dt
import os
import uuid
import zipfile

import pytest
import sqlalchemy as sa
from alembic import command

from clientela.core import archive, migrations, services, tenancy
from clientela.core.app import create_app
from clientela.core.db import db
from clientela.core.models import Customer, Interaction
from clientela.testing import invoke_cli


class Instance:
    """One on-premise instance (home folder + database) driven through ``clientela``."""

    def __init__(self, home: str, url: str):
        self.env = {"CLIENTELA_HOME": home, "DATABASE_URL": url, "CLIENTELA_PROFILE": "onprem"}
        self.home = home
        self.url = url
        self._app = None

    def __call__(self, *args):
        return invoke_cli(args, self.env)

    @property
    def app(self):
        if self._app is None:
            self._app = create_app("onprem", HOME=self.home, DATABASE_URL=self.url)
        return self._app

    def checksums(self) -> dict:
        with self.app.app_context(), db.engine.connect() as conn:
            return archive.table_checksums(conn, db.metadata)

    def dispose(self):
        if self._app is not None:
            with self._app.app_context():
                db.engine.dispose()


@pytest.fixture
def make_instance(fresh_database_url, tmp_path):
    made = []

    def make(backend: str) -> Instance:
        home = tmp_path / f"home-{len(made)}"
        home.mkdir()
        instance = Instance(str(home), fresh_database_url(backend))
        made.append(instance)
        return instance

    yield make
    for instance in made:
        instance.dispose()


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """One filled SQLite instance and its backup, for the tests that only read them."""
    home = tmp_path_factory.mktemp("filled")
    instance = Instance(str(home / "home"), f"sqlite:///{home / 'home' / 'clientela.db'}")
    os.makedirs(instance.home)
    _fill(instance)
    backup = str(home / "backup.zip")
    assert instance("backup", backup).exit_code == 0
    yield instance, backup
    instance.dispose()


def _fill(instance: Instance) -> None:
    """Data in every core table, with references inside a table (person -> organisation)."""
    assert instance("init", "--admin-email", "boss@example.com",
                    "--admin-password", "long-enough-pw").exit_code == 0
    assert instance("demo").exit_code == 0
    assert instance("tokens", "create", "--email", "boss@example.com").exit_code == 0
    with instance.app.app_context():
        tenant = instance.app.extensions["clientela"].profile.tenant()
        with tenancy.tenant_context(tenant.id):
            org = services.create_customer({"kind": "organisation",
                                            "organisation_name": "Zeta Srl",
                                            "attributes": {"vat": "IT123", "n": [1, 2.5]}})
            services.create_customer({"first_name": "Ünïcode", "last_name": "Ñame",
                                      "organisation_id": org.id, "tags": ["vip"]})
            db.session.commit()
    uploads = os.path.join(instance.home, "uploads", "2026")
    os.makedirs(uploads)
    with open(os.path.join(uploads, "contract.pdf"), "wb") as fh:
        fh.write(os.urandom(4096))


@pytest.mark.parametrize("target", ["same", "other"])
def test_backup_and_restore_lose_nothing(backend, make_instance, tmp_path, target):
    source = make_instance(backend)
    _fill(source)
    before = source.checksums()
    # every table of the database is covered, and the data is really there
    with source.app.app_context(), db.engine.connect() as conn:
        assert archive.unknown_tables(conn, db.metadata) == []
        in_database = set(sa.inspect(conn).get_table_names())
    assert set(before) == set(db.metadata.tables) & in_database
    assert {"tenants", "users", "customers", "plans", "tenant_usage"} <= set(before)
    assert before["customers"]["rows"] > 30 and before["audit_events"]["rows"] > 30
    backup = str(tmp_path / "backup.zip")
    result = source("backup", backup)
    assert result.exit_code == 0, result.output
    assert oct(os.stat(backup).st_mode & 0o777) == "0o600"

    other = {"sqlite": "postgresql", "postgresql": "sqlite"}[backend]
    restored = make_instance(backend if target == "same" else other)
    result = restored("restore", backup)
    assert result.exit_code == 0, result.output
    assert "restored instance" in result.output
    assert restored.checksums() == before
    # the files of the home came back, the live database file was not among them
    with open(os.path.join(source.home, "uploads", "2026", "contract.pdf"), "rb") as fh:
        original = fh.read()
    with open(os.path.join(restored.home, "uploads", "2026", "contract.pdf"), "rb") as fh:
        assert fh.read() == original
    with zipfile.ZipFile(backup) as zf:
        assert not [n for n in zf.namelist() if n.startswith("files/clientela.db")]
    # the restored instance works: same secret key, the admin logs in, commands run
    with open(os.path.join(restored.home, "secret_key")) as a, \
            open(os.path.join(source.home, "secret_key")) as b:
        assert a.read() == b.read()
    assert restored("users", "create", "--email", "new@example.com", "--role", "sales"
                    ).exit_code == 0
    with restored.app.app_context():
        assert migrations.pending_heads(restored.app) == []


def test_manifest_records_schema_tables_counts_and_checksums(filled):
    source, backup = filled
    manifest = archive.read_manifest(backup)
    assert manifest["format"] == "clientela-archive" and manifest["format_version"] == 1
    assert manifest["scope"] == "instance"
    with source.app.app_context():
        assert manifest["schema_revisions"] == sorted(migrations.applied_heads(source.app))
    names = [t["name"] for t in manifest["tables"]]
    assert names.index("tenants") < names.index("users") < names.index("customers")
    assert {t["name"]: {"rows": t["rows"], "sha256": t["sha256"]}
            for t in manifest["tables"]} == source.checksums()
    # the job queue's file is kept too when the demo data left jobs in it
    queue = {"jobs.db"} if os.path.exists(os.path.join(source.home, "jobs.db")) else set()
    assert {f["path"] for f in manifest["files"]} == {"secret_key", *queue,
                                                      os.path.join("uploads", "2026",
                                                                   "contract.pdf")}


def test_backup_while_writers_hold_transactions_is_consistent(make_instance, tmp_path):
    """Neither the database nor another SQLite file of the home (a job queue) is copied
    half-written while a writer holds a transaction open."""
    import sqlite3

    source = make_instance("sqlite")
    _fill(source)
    before = source.checksums()
    queue = os.path.join(source.home, "queue.sqlite")
    queue_writer = sqlite3.connect(queue, isolation_level=None)
    queue_writer.execute("PRAGMA journal_mode = WAL")
    queue_writer.execute("CREATE TABLE task (name TEXT)")
    queue_writer.execute("INSERT INTO task VALUES ('committed')")
    queue_writer.execute("BEGIN IMMEDIATE")
    queue_writer.execute("INSERT INTO task VALUES ('in flight')")
    writer = sa.create_engine(source.url)
    try:
        with writer.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            conn.exec_driver_sql("UPDATE customers SET display_name = 'half-written'")
            result = source("backup", str(tmp_path / "b.zip"))
            assert result.exit_code == 0, result.output
            conn.rollback()
    finally:
        writer.dispose()
        queue_writer.execute("ROLLBACK")
        queue_writer.close()
    restored = make_instance("sqlite")
    assert restored("restore", str(tmp_path / "b.zip")).exit_code == 0
    assert restored.checksums() == before
    copy = sqlite3.connect(os.path.join(restored.home, "queue.sqlite"))
    assert copy.execute("SELECT name FROM task").fetchall() == [("committed",)]
    copy.close()


def test_restore_refuses_an_instance_that_holds_data(backend, make_instance, tmp_path):
    source = make_instance(backend)
    _fill(source)
    source("backup", str(tmp_path / "b.zip"))
    result = source("restore", str(tmp_path / "b.zip"))
    assert result.exit_code == 1
    assert "restore needs an empty instance" in result.output
    assert "Traceback" not in result.output
    assert source.checksums()["customers"]["rows"] > 30


def test_restore_refuses_a_home_with_files_of_its_own(filled, make_instance):
    _, backup = filled
    target = make_instance("sqlite")
    with open(os.path.join(target.home, "notes.txt"), "w") as fh:
        fh.write("mine")
    result = target("restore", backup)
    assert result.exit_code == 1 and "already holds notes.txt" in result.output


def test_restore_of_a_corrupt_archive_leaves_the_database_empty(filled, make_instance, tmp_path):
    _, good = filled
    bad = str(tmp_path / "bad.zip")
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "tables/interactions.jsonl":
                data = data.replace(b"call", b"CALL", 1)
            zout.writestr(item, data)
    target = make_instance("sqlite")
    result = target("restore", bad)
    assert result.exit_code == 1
    assert "table 'interactions' is corrupt in the archive" in result.output
    with target.app.app_context(), db.engine.connect() as conn:
        assert archive.is_empty(conn)  # customers and users were loaded, then rolled back
    assert target("restore", good).exit_code == 0


def test_restore_says_so_for_a_file_that_is_not_an_archive(make_instance, tmp_path):
    target = make_instance("sqlite")
    junk = tmp_path / "junk.zip"
    junk.write_text("not a zip")
    result = target("restore", str(junk))
    assert result.exit_code == 1 and "is not a Clientela archive" in result.output


# --- upgrades ---------------------------------------------------------------


def test_db_upgrade_migrates_a_database_made_by_the_first_version(backend, make_instance):
    """A database at ``0001_core`` with data in it is upgraded in place, the data intact."""
    instance = make_instance(backend)
    app = instance.app
    tenant_id, user_id, org_id, person_id, call_id = (uuid.uuid4() for _ in range(5))
    now = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    with app.app_context():
        command.upgrade(migrations.alembic_config(app), "0001_core")
        assert migrations.applied_heads(app) == {"0001_core"}
        # tables as revision 0001 made them, not as today's models describe them
        def common():
            return [sa.column("created_at", sa.DateTime(timezone=True)),
                    sa.column("updated_at", sa.DateTime(timezone=True)),
                    sa.column("attributes", sa.JSON)]

        tenants = sa.table("tenants", sa.column("id", sa.Uuid), sa.column("slug"),
                           sa.column("name"), sa.column("status"),
                           sa.column("settings", sa.JSON),
                           sa.column("created_at", sa.DateTime(timezone=True)))
        users = sa.table("users", sa.column("tenant_id", sa.Uuid), sa.column("id", sa.Uuid),
                         sa.column("email"), sa.column("name"), sa.column("is_active"),
                         sa.column("roles", sa.JSON), *common())
        customers = sa.table(
            "customers", sa.column("tenant_id", sa.Uuid), sa.column("id", sa.Uuid),
            sa.column("kind"), sa.column("display_name"), sa.column("organisation_name"),
            sa.column("first_name"), sa.column("email"), sa.column("emails", sa.JSON),
            sa.column("phones", sa.JSON), sa.column("addresses", sa.JSON),
            sa.column("stage"), sa.column("tags", sa.JSON), sa.column("owner_id", sa.Uuid),
            sa.column("organisation_id", sa.Uuid), *common())
        interactions = sa.table(
            "interactions", sa.column("tenant_id", sa.Uuid), sa.column("id", sa.Uuid),
            sa.column("customer_id", sa.Uuid), sa.column("channel"), sa.column("direction"),
            sa.column("occurred_at", sa.DateTime(timezone=True)), sa.column("subject"),
            sa.column("body"), *common())
        stamp = {"created_at": now, "updated_at": now, "attributes": {}}
        person = {"tenant_id": tenant_id, "kind": "person", "emails": [], "phones": [],
                  "addresses": [], "stage": "customer", "tags": ["old"], "owner_id": user_id,
                  "organisation_name": None, **stamp}
        with db.engine.begin() as conn:
            conn.execute(tenants.insert(), {"id": tenant_id, "slug": "default",
                                            "name": "Old Co", "status": "active",
                                            "settings": {}, "created_at": now})
            conn.execute(users.insert(), {"tenant_id": tenant_id, "id": user_id,
                                          "email": "old@example.com", "name": "Old",
                                          "is_active": True, "roles": ["admin"], **stamp})
            conn.execute(customers.insert(), [
                {**person, "id": org_id, "kind": "organisation", "display_name": "Old Org",
                 "organisation_name": "Old Org", "first_name": None, "email": None,
                 "organisation_id": None},
                {**person, "id": person_id, "display_name": "Ada Old", "first_name": "Ada",
                 "email": "ada@example.com", "organisation_id": org_id},
            ])
            conn.execute(interactions.insert(), {
                "tenant_id": tenant_id, "id": call_id, "customer_id": person_id,
                "channel": "phone", "direction": "inbound", "occurred_at": now,
                "subject": "first call", "body": "hello", **stamp})
        db.engine.dispose()

    result = instance("db", "upgrade")
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert migrations.pending_heads(app) == []
        with tenancy.tenant_context(tenant_id):
            ada = services.get_customer(person_id)
            assert (ada.display_name, ada.email, ada.organisation_id, ada.owner_id, ada.tags,
                    ada.created_at) == ("Ada Old", "ada@example.com", org_id, user_id,
                                        ["old"], now)
            call = db.session.execute(sa.select(Interaction)).scalar_one()
            assert (call.subject, call.customer_id, call.occurred_at) == ("first call",
                                                                         person_id, now)
            assert services.find_user("old@example.com").roles == ["admin"]
            # and the upgraded database takes new writes
            services.create_customer({"first_name": "New"})
            db.session.commit()
            assert db.session.execute(
                sa.select(sa.func.count()).select_from(Customer)).scalar() == 3
    # the instance keeps working through the CLI
    assert instance("users", "create", "--email", "n@example.com", "--role", "sales"
                    ).exit_code == 0


def test_an_old_backup_restores_into_this_version_and_is_upgraded(make_instance, tmp_path):
    """A backup made at ``0001_core`` restores: loaded at its schema, then migrated."""
    old = make_instance("sqlite")
    app = old.app
    tenant_id = uuid.uuid4()
    now = dt.datetime(2025, 1, 2, tzinfo=dt.timezone.utc)
    with app.app_context():
        command.upgrade(migrations.alembic_config(app), "0001_core")
        tenants = sa.table("tenants", sa.column("id", sa.Uuid), sa.column("slug"),
                           sa.column("name"), sa.column("status"),
                           sa.column("settings", sa.JSON),
                           sa.column("created_at", sa.DateTime(timezone=True)))
        with db.engine.begin() as conn:
            conn.execute(tenants.insert(), {"id": tenant_id, "slug": "default", "name": "Old",
                                            "status": "active", "settings": {},
                                            "created_at": now})
        # what an old version wrote: the tables that existed then
        md = sa.MetaData()
        for name in ("tenants", "users", "api_tokens", "customers", "interactions",
                     "audit_events"):
            db.metadata.tables[name].to_metadata(md)
        with db.engine.connect() as conn:
            archive.write(str(tmp_path / "old.zip"), conn, md, scope="instance")
        db.engine.dispose()
    manifest = archive.read_manifest(str(tmp_path / "old.zip"))
    assert manifest["schema_revisions"] == ["0001_core"]
    target = make_instance("sqlite")
    result = target("restore", str(tmp_path / "old.zip"))
    assert result.exit_code == 0, result.output
    with target.app.app_context():
        assert migrations.pending_heads(target.app) == []
        tenant = target.app.extensions["clientela"].profile.tenant()
        assert (tenant.id, tenant.name) == (tenant_id, "Old")


def test_backup_and_restore_have_help(make_instance):
    instance = make_instance("sqlite")
    for name in ("backup", "restore"):
        result = instance(name, "--help")
        assert result.exit_code == 0 and "FILE" in result.output



def test_plugins_for_the_one_tenant_are_every_enabled_plugin(make_instance):
    import json

    instance = make_instance("sqlite")
    assert instance("init", "--admin-email", "a@example.com").exit_code == 0
    everything = json.loads(instance("plugins", "--json").output)
    for_tenant = json.loads(instance("--tenant", "default", "plugins", "--json").output)
    assert [(r["name"], r["enabled"]) for r in for_tenant] == [
        (r["name"], r["enabled"]) for r in everything]
    result = instance("--tenant", "other", "plugins", "--json")
    assert result.exit_code == 1 and "has one tenant ('default'), not 'other'" in result.output



def test_there_is_no_operator_api_on_premise(app, client):
    for path in ("/operator/api/v1/tenants", "/operator/api/v1/openapi.json"):
        response = client.get(path, headers={"Authorization": "Bearer clo_x"})
        assert response.status_code == 404 and response.json["status"] == 404
    if app.config["PROFILE"] == "onprem":
        assert "operator" not in app.extensions["clientela"].commands
