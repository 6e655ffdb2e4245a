"""Automation rules through HTTP and the real job runner, on both backends: triggers,
conditions, actions (the plugin's and other plugins'), the run log, loop protection."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
import sqlalchemy as sa
from test_tailormade import Receiver, verify  # the real HTTP receiver of the webhook tests

from clientela.core import hookimpl, jobs, tenancy
from clientela.core.db import db, utcnow
from clientela.core.models import Job
from clientela.plugins.tailormade import automations

RULES = "/api/v1/automations"


def rule(api, expect=201, **body) -> dict:
    body.setdefault("name", "rule")
    response = api.post(RULES, json=body)
    assert response.status_code == expect, response.json
    return response.json


def queued(tenant_id, name=automations.RUN_JOB) -> list:
    db.session.rollback()
    with tenancy.tenant_context(tenant_id):
        ids = db.session.execute(sa.select(Job.id).where(
            Job.name == name, Job.status == "queued").order_by(Job.created_at, Job.id)
        ).scalars().all()
    db.session.rollback()
    return ids


def run_jobs(app, tenant_id, name=automations.RUN_JOB, rounds=20) -> list[str]:
    """Run the tenant's queued jobs of ``name`` as a consumer would, until none is left
    (the jobs a run enqueues included); their final statuses."""
    statuses = []
    for _ in range(rounds):
        ids = queued(tenant_id, name)
        if not ids:
            return statuses
        for job_id in ids:
            statuses.append(jobs.queue_for(app).run(tenant_id, job_id))
    raise AssertionError("jobs keep enqueueing jobs")


def runs(api, rule_id) -> list[dict]:
    response = api.get(f"{RULES}/{rule_id}/runs")
    assert response.status_code == 200, response.json
    return response.json


def test_a_rule_fires_from_a_real_event_runs_as_a_job_and_logs_the_run(app, api):
    gold = rule(api, name="gold customers", trigger="created", entity_type="customers",
                conditions={"all": [{"field": "attributes.tier", "op": "eq", "value": "gold"},
                                    {"field": "attributes.revenue", "op": "gte",
                                     "value": 1000}]},
                actions=[{"type": "add_tag", "params": {"tag": "vip"}},
                         {"type": "set_field", "params": {"field": "stage",
                                                          "value": "customer"}},
                         {"type": "assign_owner",
                          "params": {"owner_id": str(api.users["sales"].id)}}])
    vip = api.customer(first_name="Ada", attributes={"tier": "gold", "revenue": "2500"})
    plain = api.customer(first_name="Bob", attributes={"tier": "gold", "revenue": 10})
    # nothing happens in the request: the rule runs as a job after the commit
    assert api.get(f"/api/v1/customers/{vip['id']}").json["tags"] == []
    assert run_jobs(app, api.tenant.id) == ["succeeded", "succeeded"]
    after = api.get(f"/api/v1/customers/{vip['id']}").json
    assert after["tags"] == ["vip"] and after["stage"] == "customer"
    assert after["owner_id"] == str(api.users["sales"].id)
    assert api.get(f"/api/v1/customers/{plain['id']}").json["tags"] == []
    log = {r["entity_id"]: r for r in runs(api, gold["id"])}
    assert log[vip["id"]]["status"] == "succeeded"
    assert [r["type"] for r in log[vip["id"]]["results"]] == ["add_tag", "set_field",
                                                              "assign_owner"]
    assert log[plain["id"]]["status"] == "not_matched"
    # the rule's writes are audited like any other
    audit = api.get(f"/api/v1/audit?entity_id={vip['id']}").json
    assert any("tags" in (e["changes"] or {}) and e["origin"] == "job" for e in audit), audit


def test_updated_with_a_field_change_any_conditions_and_stage_changes(app, api):
    watched = rule(api, trigger="updated", entity_type="customers",
                   trigger_field="attributes.score",
                   conditions={"any": [{"field": "attributes.score", "op": "gt", "value": 50},
                                       {"field": "tags", "op": "contains", "value": "hot"}]},
                   actions=[{"type": "add_tag", "params": {"tag": "watched"}}])
    staged = rule(api, name="won", trigger="stage_changed", entity_type="customers",
                  conditions={"field": "stage", "op": "eq", "value": "customer"},
                  actions=[{"type": "set_field", "params": {"field": "attributes.won_at",
                                                             "value": "2026-11-23"}}])
    customer = api.customer(first_name="Eve", attributes={"score": 10})
    path = f"/api/v1/customers/{customer['id']}"
    api.patch(path, json={"first_name": "Eva"})  # not the watched field: nothing
    api.patch(path, json={"attributes": {"score": 20}})  # changed, but no condition holds
    run_jobs(app, api.tenant.id)
    assert [r["status"] for r in runs(api, watched["id"])] == ["not_matched"]
    api.patch(path, json={"attributes": {"score": 80}})
    api.patch(path, json={"stage": "customer"})
    run_jobs(app, api.tenant.id)
    after = api.get(path).json
    assert "watched" in after["tags"] and after["attributes"]["won_at"] == "2026-11-23"
    assert [r["status"] for r in runs(api, staged["id"])] == ["succeeded"]


def test_an_interaction_recorded_acts_on_its_customer(app, api):
    complaints = rule(api, trigger="interaction_recorded",
                      conditions={"field": "interaction.outcome", "op": "eq",
                                  "value": "complaint"},
                      actions=[{"type": "add_tag", "params": {"tag": "unhappy"}}])
    customer = api.customer(first_name="Carl")
    for outcome in ("thanks", "complaint"):
        response = api.post("/api/v1/interactions", json={
            "customer_id": customer["id"], "channel": "phone", "outcome": outcome})
        assert response.status_code == 201, response.json
    run_jobs(app, api.tenant.id)
    assert api.get(f"/api/v1/customers/{customer['id']}").json["tags"] == ["unhappy"]
    assert sorted(r["status"] for r in runs(api, complaints["id"])) == ["not_matched",
                                                                       "succeeded"]
    assert {r["entity_id"] for r in runs(api, complaints["id"])} == {customer["id"]}


def test_a_self_triggering_rule_is_stopped_by_loop_protection(app, api):
    counter = rule(api, name="count updates", trigger="updated", entity_type="customers",
                   actions=[{"type": "set_field", "params": {"field": "attributes.updates",
                                                              "increment": 1}}])
    customer = api.customer(first_name="Loop")
    api.patch(f"/api/v1/customers/{customer['id']}", json={"first_name": "Looped"})
    # without protection this would never end (run_jobs gives up after 20 rounds)
    assert run_jobs(app, api.tenant.id) == ["succeeded"]
    assert api.get(f"/api/v1/customers/{customer['id']}").json["attributes"] == {"updates": 1}
    log = runs(api, counter["id"])
    assert [r["status"] for r in log] == ["skipped", "succeeded"]
    assert "loop protection" in log[0]["error"] and log[0]["depth"] == 2
    # a second write by a user starts a new chain: the rule runs again, once
    api.patch(f"/api/v1/customers/{customer['id']}", json={"first_name": "Again"})
    run_jobs(app, api.tenant.id)
    assert api.get(f"/api/v1/customers/{customer['id']}").json["attributes"] == {"updates": 2}


def test_two_rules_triggering_each_other_stop(app, api):
    ping = rule(api, name="ping", trigger="updated", entity_type="customers",
                trigger_field="attributes.ping",
                actions=[{"type": "set_field", "params": {"field": "attributes.pong",
                                                           "increment": 1}}])
    pong = rule(api, name="pong", trigger="updated", entity_type="customers",
                trigger_field="attributes.pong",
                actions=[{"type": "set_field", "params": {"field": "attributes.ping",
                                                           "increment": 1}}])
    customer = api.customer(first_name="Ping")
    api.patch(f"/api/v1/customers/{customer['id']}", json={"attributes": {"ping": 1}})
    assert run_jobs(app, api.tenant.id) == ["succeeded", "succeeded"]
    assert api.get(f"/api/v1/customers/{customer['id']}").json["attributes"] == {
        "ping": 2, "pong": 1}
    assert [r["status"] for r in runs(api, ping["id"])] == ["skipped", "succeeded"]
    assert [r["status"] for r in runs(api, pong["id"])] == ["succeeded"]


def test_chains_stop_at_the_depth_limit(app, api):
    app.config["TAILORMADE_AUTOMATION_MAX_DEPTH"] = 2
    try:
        steps = [rule(api, name=f"step {i}", trigger="updated", entity_type="customers",
                      trigger_field=f"attributes.s{i}",
                      actions=[{"type": "set_field", "params": {"field": f"attributes.s{i + 1}",
                                                                 "value": True}}])
                 for i in range(4)]
        customer = api.customer(first_name="Chain")
        api.patch(f"/api/v1/customers/{customer['id']}", json={"attributes": {"s0": True}})
        run_jobs(app, api.tenant.id)
    finally:
        app.config["TAILORMADE_AUTOMATION_MAX_DEPTH"] = 5
    assert api.get(f"/api/v1/customers/{customer['id']}").json["attributes"] == {
        "s0": True, "s1": True, "s2": True}
    assert runs(api, steps[2]["id"])[0]["status"] == "skipped"
    assert "more than 2 rules" in runs(api, steps[2]["id"])[0]["error"]
    assert runs(api, steps[3]["id"]) == []


def test_a_date_reached_fires_once_per_record_from_the_periodic_job(app, api):
    api.post("/api/v1/custom-fields", json={"entity_type": "customers", "key": "renewal",
                                            "type": "date"})
    today = utcnow().date()
    reminder = rule(api, trigger="date_reached", entity_type="customers",
                    trigger_field="attributes.renewal", offset_days=-3,
                    actions=[{"type": "add_tag", "params": {"tag": "renewal soon"}}])
    due = api.customer(first_name="Due", attributes={
        "renewal": (today + dt.timedelta(days=3)).isoformat()})
    later = api.customer(first_name="Later", attributes={
        "renewal": (today + dt.timedelta(days=30)).isoformat()})
    with tenancy.tenant_context(api.tenant.id, origin="job"):
        jobs.enqueue(automations.DATES_JOB)
        db.session.commit()
    assert run_jobs(app, api.tenant.id, automations.DATES_JOB) == ["succeeded"]
    assert run_jobs(app, api.tenant.id) == ["succeeded"]
    assert api.get(f"/api/v1/customers/{due['id']}").json["tags"] == ["renewal soon"]
    assert api.get(f"/api/v1/customers/{later['id']}").json["tags"] == []
    # the next hour's scan finds the date again but the run is already done
    with tenancy.tenant_context(api.tenant.id, origin="job"):
        jobs.enqueue(automations.DATES_JOB)
        db.session.commit()
    run_jobs(app, api.tenant.id, automations.DATES_JOB)
    assert queued(api.tenant.id) == []
    log = runs(api, reminder["id"])
    assert len(log) == 1 and log[0]["trigger_key"].endswith(
        (today + dt.timedelta(days=3)).isoformat())


def test_a_failing_action_rolls_back_the_run_and_is_logged(app, api):
    api.post("/api/v1/custom-fields", json={"entity_type": "customers", "key": "score",
                                            "type": "integer", "max": 100})
    bad = rule(api, trigger="created", entity_type="customers",
               actions=[{"type": "add_tag", "params": {"tag": "seen"}},
                        {"type": "set_field", "params": {"field": "attributes.score",
                                                         "value": 1000}}])
    customer = api.customer(first_name="Over")
    assert run_jobs(app, api.tenant.id) == ["dead"]
    after = api.get(f"/api/v1/customers/{customer['id']}").json
    assert after["tags"] == [] and "score" not in after["attributes"]
    log = runs(api, bad["id"])
    assert log[0]["status"] == "failed"
    assert "attributes.score" in log[0]["error"] and "at most 100" in log[0]["error"]


def test_send_webhook_and_send_email_actions(app, api, clientela_smtp):
    clientela_smtp.configure(app)
    receiver = Receiver()
    try:
        hook = api.post("/api/v1/webhooks", json={"url": receiver.url,
                                                  "events": ["customers.delete"]}).json
        rule(api, trigger="created", entity_type="customers",
             actions=[{"type": "send_webhook", "params": {"webhook_id": hook["id"],
                                                          "message": "new customer"}},
                      {"type": "send_email", "params": {"subject": "Welcome",
                                                        "body": "Glad to have you"}}])
        customer = api.customer(first_name="Mail", email="mail@example.com")
        assert run_jobs(app, api.tenant.id) == ["succeeded"]
        assert run_jobs(app, api.tenant.id, "tailormade.deliver_webhook") == ["succeeded"]
        payload = verify(receiver.requests[0], hook["secret"])
        assert payload["event"] == "automation.run" and payload["message"] == "new customer"
        assert payload["entity_id"] == customer["id"] and payload["rule"]["name"] == "rule"
        assert [m["To"] for m in clientela_smtp.messages] == ["mail@example.com"]
        assert clientela_smtp.messages[0]["Subject"] == "Welcome"
        # the e-mail is an interaction of the customer, like any sent through the channel
        interactions = api.get(f"/api/v1/interactions?customer_id={customer['id']}").json
        assert [i["subject"] for i in interactions] == ["Welcome"]
    finally:
        receiver.close()


class TaskPlugin:
    """Another plugin offering an action (the operational plugin offers create_task)."""

    def __init__(self):
        self.calls = []

    @hookimpl
    def clientela_automation_actions(self, register):
        def create_task(entity, params):
            self.calls.append((entity.id, params))
            return {"task": params["title"]}

        register("log_call", "Log a call", create_task, {"title": "string"})


@contextlib.contextmanager
def plugin_registered(app, plugin):
    pm = app.extensions["clientela"].plugins.pm
    pm.register(plugin)
    app.extensions.pop("tailormade.automation_actions", None)
    try:
        yield plugin
    finally:
        pm.unregister(plugin)
        app.extensions.pop("tailormade.automation_actions", None)


def test_actions_other_plugins_register_are_listed_and_run(app, api):
    with plugin_registered(app, TaskPlugin()) as plugin:
        listed = {a["key"]: a for a in api.get(f"{RULES}/actions").json}
        assert {"set_field", "add_tag", "assign_owner", "send_webhook", "send_email",
                "create_task", "log_call"} <= set(listed)
        assert listed["log_call"]["params"] == {"title": "string"}
        bad = api.post(RULES, json={"name": "x", "trigger": "created", "actions": [
            {"type": "log_call", "params": {"title": "Call", "colour": "red"}}]})
        assert bad.status_code == 422 and "colour" in bad.json["errors"]["json"]["actions"][0]
        rule(api, trigger="created", actions=[{"type": "log_call",
                                               "params": {"title": "Call them"}}])
        customer = api.customer(first_name="Task")
        assert run_jobs(app, api.tenant.id) == ["succeeded"]
        assert [str(c[0]) for c in plugin.calls] == [customer["id"]]


def test_rules_are_checked(api):
    bad = [
        ({"trigger": "sometimes", "actions": [{"type": "add_tag", "params": {"tag": "x"}}]},
         "trigger"),
        ({"trigger": "created", "entity_type": "nothing",
          "actions": [{"type": "add_tag", "params": {"tag": "x"}}]}, "entity_type"),
        ({"trigger": "created", "actions": [{"type": "teleport"}]}, "actions"),
        ({"trigger": "created", "actions": [{"type": "set_field", "params": {
            "field": "id", "value": "x"}}]}, "actions"),
        ({"trigger": "created", "actions": [{"type": "assign_owner", "params": {
            "owner_id": "00000000-0000-0000-0000-000000000000"}}]}, "actions"),
        ({"trigger": "created", "conditions": {"all": [{"field": "nope", "op": "eq",
                                                        "value": 1}]},
          "actions": [{"type": "add_tag", "params": {"tag": "x"}}]}, "conditions"),
        ({"trigger": "created", "conditions": {"field": "stage", "op": "like", "value": 1},
          "actions": [{"type": "add_tag", "params": {"tag": "x"}}]}, "conditions"),
        ({"trigger": "date_reached", "actions": [{"type": "add_tag", "params": {"tag": "x"}}]},
         "trigger_field"),
        ({"trigger": "created", "entity_type": "interactions",
          "actions": [{"type": "add_tag", "params": {"tag": "x"}}]}, "actions"),
    ]
    for body, field in bad:
        response = api.post(RULES, json={"name": "bad", **body})
        assert response.status_code == 422, body
        assert field in response.json["errors"]["json"], (body, response.json)
    created = rule(api, trigger="created", actions=[{"type": "add_tag",
                                                     "params": {"tag": "x"}}])
    off = api.patch(f"{RULES}/{created['id']}", json={"active": False})
    assert off.status_code == 200 and off.json["active"] is False
    assert api.patch(f"{RULES}/{created['id']}", json={"trigger": "never"}).status_code == 422


def test_only_admins_write_rules_and_managers_read_them(api):
    created = rule(api, trigger="created", actions=[{"type": "add_tag",
                                                     "params": {"tag": "x"}}])
    assert api.get(RULES, role="manager").status_code == 200
    assert api.get(f"{RULES}/{created['id']}/runs", role="manager").status_code == 200
    assert api.patch(f"{RULES}/{created['id']}", json={"active": False},
                     role="manager").status_code == 403
    assert api.get(RULES, role="sales").status_code == 403
    assert api.post(RULES, role="sales", json={"name": "x", "trigger": "created", "actions": [
        {"type": "add_tag", "params": {"tag": "x"}}]}).status_code == 403


def test_rules_of_one_tenant_never_run_on_another(app, api, other_api):
    created = rule(api, trigger="created", actions=[{"type": "add_tag",
                                                     "params": {"tag": "theirs"}}])
    stranger = other_api.customer(first_name="Stranger")
    assert run_jobs(app, other_api.tenant.id) == []
    assert other_api.get(f"/api/v1/customers/{stranger['id']}").json["tags"] == []
    assert other_api.get(RULES).json == []
    assert other_api.get(f"{RULES}/{created['id']}/runs").status_code == 404


def test_rules_on_custom_objects(app, api):
    api.post("/api/v1/custom-objects", json={"key": "ticket"})
    api.post("/api/v1/custom-fields", json={"entity_type": "custom:ticket", "key": "priority",
                                            "type": "single_choice",
                                            "choices": ["low", "high"]})
    urgent = rule(api, trigger="created", entity_type="custom:ticket",
                  conditions={"field": "attributes.priority", "op": "eq", "value": "high"},
                  actions=[{"type": "assign_owner",
                            "params": {"owner_id": str(api.users["service"].id)}}])
    ticket = api.post("/api/v1/custom/ticket", json={"title": "Down",
                                                     "attributes": {"priority": "high"}}).json
    assert run_jobs(app, api.tenant.id) == ["succeeded"]
    assert api.get(f"/api/v1/custom/ticket/{ticket['id']}").json["owner_id"] == str(
        api.users["service"].id)
    assert runs(api, urgent["id"])[0]["entity_type"] == "custom:ticket"


@pytest.fixture(autouse=True)
def _no_leftover_jobs(app):
    yield
    jobs.queue_for(app).flush()
