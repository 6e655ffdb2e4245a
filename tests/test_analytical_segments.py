"""Materialised segment membership: stored per segment with its refresh time, refreshed by
the scheduled job (run by the real job queue), the API and the command; campaigns' hook and
the CSV export read it; each tenant's lists stay in its own warehouse — SQLite and
PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import random
import uuid

import duckdb
import pytest
from test_analytical import AS_OF, _admin_principal, customer, import_lines, load_rfm_data

from clientela.core import jobs, tenancy
from clientela.core.db import db
from clientela.core.errors import NotFound
from clientela.core.models import Job
from clientela.plugins.analytical import segments, warehouse

FREQUENT = [{"field": "orders", "op": "gte", "value": 5}]
JOB = "analytical.refresh_segments"
UTC = dt.timezone.utc


def run_job(app, tenant_id, *args):
    job_id = jobs.enqueue(JOB, *args)
    db.session.commit()
    assert jobs.queue_for(app).run(tenant_id, job_id) == "succeeded"


def stored(segment_id) -> list[tuple]:
    with warehouse.connect() as con:
        return con.execute("SELECT customer_id, refreshed_at, orders FROM segment_member "
                           "WHERE segment_id = ? ORDER BY customer_id",
                           [str(segment_id)]).fetchall()


def one_more_order(tmp_path, key, name="more.csv"):
    import_lines(tmp_path, [(f"{key}-new", AS_OF - dt.timedelta(days=1), key, f"P-{key}", 25)],
                 name=name)


def test_the_job_stores_membership_and_it_changes_only_when_refreshed(app, tenant, tmp_path):
    ids = load_rfm_data(tmp_path)
    frequent = segments.create_segment({"name": "Frequent", "rules": FREQUENT},
                                       _admin_principal())
    db.session.commit()
    hook = app.extensions["clientela"].hook
    definition = jobs.queue_for(app).definitions[JOB]
    assert definition.schedule is not None and definition.plugin == "analytical"

    run_job(app, tenant.id)
    rows = stored(frequent.id)
    # A has 8 orders (+1 after AS_OF, still in the past), G 7, B 6; D only 4
    assert [r[0] for r in rows] == sorted([ids["A"], ids["B"], ids["G"]])
    assert dict((r[0], r[2]) for r in rows)[ids["G"]] == 7
    first_time = rows[0][1]
    assert first_time is not None and {r[1] for r in rows} == {first_time}
    members = hook.clientela_segment_members(segment_id=f"analytical:{frequent.id}")
    assert members == [r[0] for r in rows]
    offered = [s for answer in hook.clientela_segments() if answer for s in answer
               if s["source"] == "analytical"]
    assert [(s["name"], s["size"]) for s in offered] == [("Frequent", 3)]

    # D reaches five orders: the stored list stays as it was until the next refresh
    one_more_order(tmp_path, "D")
    assert hook.clientela_segment_members(segment_id=f"analytical:{frequent.id}") == members
    run_job(app, tenant.id, str(frequent.id))
    rows = stored(frequent.id)
    assert [r[0] for r in rows] == sorted([ids["A"], ids["B"], ids["D"], ids["G"]])
    assert rows[0][1] > first_time
    assert hook.clientela_segment_members(
        segment_id=f"analytical:{frequent.id}") == [r[0] for r in rows]

    # a deleted segment's rows go with the next refresh of all segments
    segments.delete_segment(frequent.id, _admin_principal())
    db.session.commit()
    run_job(app, tenant.id)
    assert stored(frequent.id) == []
    with warehouse.connect() as con:
        assert con.execute("SELECT count(*) FROM segment_refresh").fetchall() == [(0,)]


def test_the_schedule_refreshes_each_tenant_in_its_own_warehouse(app, app_ctx, make_tenant,
                                                                 tmp_path):
    first, second = make_tenant("a"), make_tenant("b")
    made = {}
    with tenancy.tenant_context(first.id):
        ids = load_rfm_data(tmp_path)
        made[first.id] = segments.create_segment({"name": "Frequent", "rules": FREQUENT},
                                                 _admin_principal())
        db.session.commit()
    with tenancy.tenant_context(second.id):
        zed = customer(external_id="Z").id
        db.session.commit()
        import_lines(tmp_path, [(f"Z{n}", AS_OF - dt.timedelta(days=n), "Z", "P", 10)
                                for n in range(6)], name="z.csv")
        made[second.id] = segments.create_segment({"name": "Frequent", "rules": FREQUENT},
                                                  _admin_principal())
        db.session.commit()

    # the queue's own schedule: minute 17 of an hour nobody has fired yet in this session
    queue = jobs.queue_for(app)
    now = dt.datetime(2030 + random.randrange(50), 1, 1, random.randrange(24), 17, tzinfo=UTC)
    assert queue.fire_schedules(now) >= 1
    for t in (first, second):
        with tenancy.tenant_context(t.id):
            due = db.session.execute(db.select(Job.id).where(
                Job.name == JOB, Job.status == "queued")).scalars().all()
            db.session.commit()
            assert len(due) == 1
            assert queue.run(t.id, due[0]) == "succeeded"

    hook = app.extensions["clientela"].hook
    with tenancy.tenant_context(first.id):
        assert hook.clientela_segment_members(
            segment_id=f"analytical:{made[first.id].id}") == sorted(
            [ids["A"], ids["B"], ids["G"]])
    with tenancy.tenant_context(second.id):
        assert hook.clientela_segment_members(
            segment_id=f"analytical:{made[second.id].id}") == [zed]
        # the first tenant's segment is not reachable from the second
        with pytest.raises(NotFound):
            hook.clientela_segment_members(segment_id=f"analytical:{made[first.id].id}")
    # and its rows are in its own file only
    for t, other in ((first, second), (second, first)):
        con = duckdb.connect(warehouse.warehouse_path(t.id), read_only=True)
        held = {r[0] for r in con.execute(
            "SELECT DISTINCT segment_id FROM segment_member").fetchall()}
        con.close()
        assert held == {made[t.id].id}, (t.slug, held)
        assert made[other.id].id not in held


def test_refresh_through_the_api_and_the_csv_reads_the_stored_list(api, other_api, tmp_path):
    ids = load_rfm_data(tmp_path)
    created = api.post("/api/v1/segments", role="marketing",
                       json={"name": "Frequent", "rules": FREQUENT}).json
    path = f"/api/v1/segments/{created['id']}"

    # never refreshed: the first read materialises it
    first = api.get(f"{path}/members").json
    assert first["refreshed_at"] is not None
    assert set(first["customer_ids"]) == {str(ids[k]) for k in "ABG"}
    # a question as of a day evaluates the rules and says so
    as_of = api.get(f"{path}/members?as_of={AS_OF}").json
    assert as_of["refreshed_at"] is None and as_of["count"] == 3

    one_more_order(tmp_path, "D")

    def exported():
        response = api.get(f"{path}/members.csv", role="marketing")
        assert response.status_code == 200, response.data
        return {r["external_id"]: r["orders"]
                for r in csv.DictReader(io.StringIO(response.get_data(as_text=True)))}

    assert exported() == {"A": "9", "B": "6", "G": "7"}
    assert api.get(f"{path}/members").json == first

    refreshed = api.post(f"{path}/refresh", role="marketing")
    assert refreshed.status_code == 200, refreshed.json
    assert refreshed.json["count"] == 4 and refreshed.json["name"] == "Frequent"
    assert refreshed.json["refreshed_at"] > first["refreshed_at"]
    assert exported() == {"A": "9", "B": "6", "D": "5", "G": "7"}
    again = api.get(f"{path}/members").json
    assert again["refreshed_at"] == refreshed.json["refreshed_at"] and again["count"] == 4

    # who may refresh, and from which tenant
    assert api.post(f"{path}/refresh", role="sales").status_code == 403
    assert other_api.post(f"{path}/refresh").status_code == 404
    assert other_api.get(f"{path}/members").status_code == 404
    assert api.post(f"/api/v1/segments/{uuid.uuid4()}/refresh").status_code == 404

    # new rules: the stored list of the old ones is not served
    assert api.patch(path, json={"rules": [{"field": "orders", "op": "gte",
                                            "value": 8}]}).status_code == 200
    assert api.get(f"{path}/members").json["customer_ids"] == [str(ids["A"])]

    # an erased customer leaves every stored list at once
    assert api.post(f"/api/v1/customers/{ids['A']}/erase").status_code == 200
    assert api.get(f"{path}/members").json["customer_ids"] == []


def test_the_refresh_segments_command(backend, fresh_database_url, tmp_path):
    from click.testing import CliRunner

    from clientela.cli import cli
    from clientela.core.app import create_app

    home = tmp_path / "home"
    env = {"CLIENTELA_HOME": str(home), "DATABASE_URL": fresh_database_url(backend),
           "CLIENTELA_PROFILE": "onprem"}
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, list(args), env=env, catch_exceptions=False)

    assert invoke("init", "--admin-email", "a@example.com",
                  "--admin-password", "long-enough-pw").exit_code == 0
    app = create_app("onprem", HOME=str(home), DATABASE_URL=env["DATABASE_URL"])
    with app.app_context():
        tenant_id = app.extensions["clientela"].profile.tenant().id
        with tenancy.tenant_context(tenant_id):
            load_rfm_data(tmp_path)
            segment_id = segments.create_segment({"name": "Frequent", "rules": FREQUENT},
                                                 _admin_principal()).id
            db.session.commit()
        db.engine.dispose()

    result = invoke("warehouse", "refresh-segments")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Frequent: 3 members")
    one = invoke("warehouse", "refresh-segments", "--segment", str(segment_id), "--json")
    assert one.exit_code == 0, one.output
    assert [(r["segment_id"], r["count"]) for r in json.loads(one.output)] == [
        (str(segment_id), 3)]
    assert os.path.exists(home / "tenants" / str(tenant_id) / "warehouse.duckdb")
    missing = invoke("warehouse", "refresh-segments", "--segment", str(uuid.uuid4()))
    assert missing.exit_code != 0 and "segment not found" in missing.output


def test_a_segment_that_cannot_be_evaluated_does_not_stop_the_job(app, api):
    # no purchases at all: no BG/NBD model can be fitted, so a p_alive rule cannot be
    # evaluated; the other segment is still refreshed, and asking for the first says why
    people = [api.customer(first_name=f"P{i}")["id"] for i in range(3)]
    alive = api.post("/api/v1/segments", json={"name": "Alive", "rules": [
        {"field": "p_alive", "op": "gt", "value": 0.5}]}).json
    everyone = api.post("/api/v1/segments", json={"name": "Everyone", "rules": [
        {"field": "stage", "op": "present"}]}).json
    with tenancy.tenant_context(api.tenant.id):
        warehouse.refresh()
        run_job(app, api.tenant.id)
        assert sorted(str(r[0]) for r in stored(everyone["id"])) == sorted(people)
        with warehouse.connect() as con:
            assert con.execute("SELECT segment_id FROM segment_refresh").fetchall() == [
                (uuid.UUID(everyone["id"]),)]
    refused = api.post(f"/api/v1/segments/{alive['id']}/refresh")
    assert refused.status_code == 422, refused.json
