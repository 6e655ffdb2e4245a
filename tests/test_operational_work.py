"""The operational plugin's daily work through HTTP, on both backends: tasks and "my work",
the reminder job, routing rules, service cases under SLA policies with the breach job (run by
the real job runner), cases from inbound messages, the ``create_task`` automation action, the
CSV import of leads, and the customer hooks (profile, export, erase, merge)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from clientela.cli import cli
from clientela.core import jobs, services, tenancy
from clientela.core.app import create_app
from clientela.core.db import db, utcnow
from clientela.core.models import Interaction, Job, User
from clientela.plugins.operational import cases as cases_service
from clientela.plugins.operational.work_models import ServiceCase, Task

TASKS = "/api/v1/tasks"
CASES = "/api/v1/cases"
RULES = "/api/v1/routing-rules"
SLA = "/api/v1/sla-policies"
MY_WORK = "/api/v1/my-work"
LEADS = "/api/v1/leads"

UTC = dt.timezone.utc


def ok(response, status=200):
    assert response.status_code == status, (response.status_code, response.json)
    return response.json


def iso(moment: dt.datetime) -> str:
    return moment.isoformat()


def parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def task(api, role="admin", **data) -> dict:
    data.setdefault("title", "Call back")
    return ok(api.post(TASKS, json=data, role=role), 201)


def case(api, role="admin", **data) -> dict:
    data.setdefault("subject", "Broken widget")
    return ok(api.post(CASES, json=data, role=role), 201)


def user(api, email: str, roles=("sales",)) -> str:
    created = ok(api.post("/api/v1/users", json={"email": email, "roles": list(roles)}), 201)
    return created["id"]


def timeline(api, customer_id) -> list[dict]:
    return ok(api.get(f"/api/v1/customers/{customer_id}/interactions"))


def run_job(app, tenant_id, name, **kwargs) -> str | None:
    """Enqueue a job in the tenant and run it now, in this thread, as a consumer does."""
    db.session.rollback()
    with tenancy.tenant_context(tenant_id):
        job_id = jobs.enqueue(name, **kwargs)
        db.session.commit()
    status = jobs.queue_for(app).run(tenant_id, job_id)
    db.session.rollback()
    return status


def token_headers(api, user_id: str) -> dict[str, str]:
    """Headers with a new API token of the user ``user_id`` of ``api``'s tenant."""
    db.session.rollback()
    with tenancy.tenant_context(api.tenant.id):
        found = db.session.execute(sa.select(User).where(User.id == uuid.UUID(user_id))
                                   ).scalar_one()
        _, raw = services.create_token(found, name="test")
        db.session.commit()
    return {"Authorization": f"Bearer {raw}"}


def post_csv(api, path: str, body: str, role: str = "admin"):
    return api.client.post(path, data=body, headers={**api.headers(role),
                                                     "Content-Type": "text/csv"})


def notifications(api, role="admin") -> list[dict]:
    return ok(api.get(f"{MY_WORK}/notifications", role=role))


# --- tasks -------------------------------------------------------------------------------------


def test_task_crud_links_to_a_customer_lead_deal_or_case_of_the_tenant(api, other_api):
    customer = api.customer(first_name="Tina")
    created = task(api, kind="call", priority="high", due_at="2030-05-04T10:00:00+00:00",
                   related_type="customer", related_id=customer["id"], description="About X")
    assert created["status"] == "open" and created["owner_id"] == str(api.users["admin"].id)
    assert created["customer_id"] == customer["id"]
    assert created["due_at"].startswith("2030-05-04T10:00:00")
    path = f"{TASKS}/{created['id']}"
    assert ok(api.get(path)) == created
    changed = ok(api.patch(path, json={"status": "in_progress", "priority": "urgent"}))
    assert changed["status"] == "in_progress" and changed["priority"] == "urgent"

    lead = ok(api.post(LEADS, json={"first_name": "Leo"}), 201)
    deal = ok(api.post("/api/v1/deals", json={"title": "D", "customer_id": customer["id"]}), 201)
    service_case = case(api, customer_id=customer["id"])
    for related_type, record, customer_id in (("lead", lead, None),
                                              ("deal", deal, customer["id"]),
                                              ("case", service_case, customer["id"])):
        linked = task(api, related_type=related_type, related_id=record["id"])
        assert linked["customer_id"] == customer_id, related_type
    listed = ok(api.get(f"{TASKS}?related_type=deal&related_id={deal['id']}"))
    assert len(listed) == 1
    assert len(ok(api.get(f"{TASKS}?customer_id={customer['id']}"))) == 3

    # a record of another tenant, or none at all, is refused per field
    foreign = other_api.customer(first_name="Elsewhere")
    for body in ({"related_type": "customer", "related_id": foreign["id"]},
                 {"related_type": "case", "related_id": str(uuid.uuid4())},
                 {"related_type": "lead"}):
        response = api.post(TASKS, json={"title": "x", **body})
        assert response.status_code == 422 and "related_id" in response.json["errors"].get(
            "json", response.json["errors"]), body
    response = api.post(TASKS, json={"title": "", "kind": "party", "due_at": "tomorrow",
                                     "priority": "asap"})
    assert response.status_code == 422
    assert set(response.json["errors"]["json"]) == {"title", "kind", "due_at", "priority"}
    assert api.post(TASKS, json={"title": "x", "owner_id": str(uuid.uuid4())}
                    ).status_code == 422
    assert api.delete(path).status_code == 204
    assert api.get(path).status_code == 404
    assert other_api.get(f"{TASKS}/{service_case['id']}").status_code == 404
    # a deleted lead or case leaves its tasks, about nothing any more
    about_lead = ok(api.get(f"{TASKS}?related_type=lead"))[0]
    assert api.delete(f"{LEADS}/{lead['id']}").status_code == 204
    assert api.delete(f"{CASES}/{service_case['id']}").status_code == 204
    orphan = ok(api.get(f"{TASKS}/{about_lead['id']}"))
    assert orphan["related_type"] is None and orphan["related_id"] is None
    assert ok(api.get(f"{TASKS}?related_type=case")) == []
    assert len(ok(api.get(f"{TASKS}?customer_id={customer['id']}"))) == 2  # deal, case


def test_completing_a_task_about_a_customer_records_it_on_the_timeline(api):
    customer = api.customer(first_name="Carla")
    call = task(api, kind="call", title="Discuss renewal", related_type="customer",
                related_id=customer["id"])
    done = ok(api.post(f"{TASKS}/{call['id']}/complete", json={"outcome": "agreed"}))
    assert done["status"] == "done" and done["completed_at"] and done["outcome"] == "agreed"
    events = timeline(api, customer["id"])
    assert [(e["channel"], e["direction"], e["subject"], e["outcome"]) for e in events] == [
        ("phone", "outbound", "Discuss renewal", "agreed")]
    # completing again, or through PATCH, records it once
    ok(api.post(f"{TASKS}/{call['id']}/complete", json={}))
    meeting = task(api, kind="meeting", title="Visit", related_type="customer",
                   related_id=customer["id"])
    ok(api.patch(f"{TASKS}/{meeting['id']}", json={"status": "done"}))
    assert sorted(e["channel"] for e in timeline(api, customer["id"])) == ["in_person", "phone"]
    # a task about nobody leaves no trace on any timeline
    alone = task(api, title="Tidy the desk")
    assert ok(api.post(f"{TASKS}/{alone['id']}/complete", json={}))["status"] == "done"
    assert len(timeline(api, customer["id"])) == 2


def test_sales_sees_and_changes_only_their_own_tasks(api):
    mine = task(api, role="sales", title="Mine")
    assert mine["owner_id"] == str(api.users["sales"].id)
    theirs = task(api, title="Theirs")
    assert [t["id"] for t in ok(api.get(TASKS, role="sales"))] == [mine["id"]]
    assert api.get(f"{TASKS}/{theirs['id']}", role="sales").status_code == 404
    assert api.patch(f"{TASKS}/{theirs['id']}", json={"title": "x"},
                     role="sales").status_code == 404
    # own scope may not hand a task to somebody else
    response = api.post(TASKS, json={"title": "x", "owner_id": str(api.users["admin"].id)},
                        role="sales")
    assert response.status_code == 403
    assert {t["id"] for t in ok(api.get(TASKS))} == {mine["id"], theirs["id"]}


def test_my_work_lists_my_tasks_and_cases_overdue_first(api):
    now = utcnow()
    me = "service"
    later = task(api, role=me, title="Later", due_at=iso(now + dt.timedelta(days=2)))
    undated = task(api, role=me, title="Someday")
    long_overdue = task(api, role=me, title="Long overdue", due_at=iso(now - dt.timedelta(days=3)))
    overdue = task(api, role=me, title="Overdue", due_at=iso(now - dt.timedelta(hours=1)))
    done = task(api, role=me, title="Done", due_at=iso(now - dt.timedelta(days=9)))
    ok(api.post(f"{TASKS}/{done['id']}/complete", json={}, role=me))
    task(api, title="Somebody else's", due_at=iso(now - dt.timedelta(days=5)))
    ok(api.post(SLA, json={"name": "Std", "targets": {"normal": {"first_response_minutes": 60}},
                           "business_days": [1, 2, 3, 4, 5, 6, 7], "start_hour": 0,
                           "end_hour": 24}), 201)
    mine = case(api, role="service", subject="My case",
                owner_id=str(api.users["service"].id))

    work = ok(api.get(MY_WORK, role=me))
    assert [i["title"] for i in work["items"]] == [
        "Long overdue", "Overdue", "My case", "Later", "Someday"]
    assert work["overdue"] == 2
    assert [i["type"] for i in work["items"]] == ["task", "task", "case", "task", "task"]
    case_item = work["items"][2]
    assert case_item["id"] == mine["id"] and case_item["due_at"] == mine["first_response_due_at"]
    assert {later["id"], undated["id"], long_overdue["id"], overdue["id"]} <= {
        i["id"] for i in work["items"]}
    # a sales user has no cases: only tasks
    task(api, role="sales", title="Sales call")
    assert [i["type"] for i in ok(api.get(MY_WORK, role="sales"))["items"]] == ["task"]


def test_the_reminder_job_notifies_owners_of_due_tasks_once(app, api):
    definition = jobs.queue_for(app).definitions["operational.remind_due_tasks"]
    assert definition.schedule is not None
    now = utcnow()
    soon = task(api, role="sales", title="Soon", due_at=iso(now + dt.timedelta(minutes=30)))
    past = task(api, role="sales", title="Past", due_at=iso(now - dt.timedelta(days=1)))
    far = task(api, role="sales", title="Far", due_at=iso(now + dt.timedelta(days=3)))
    finished = task(api, role="sales", title="Finished", due_at=iso(now))
    ok(api.post(f"{TASKS}/{finished['id']}/complete", json={}, role="sales"))

    assert run_job(app, api.tenant.id, "operational.remind_due_tasks") == "succeeded"
    notes = notifications(api, "sales")
    assert sorted(n["related_id"] for n in notes) == sorted([soon["id"], past["id"]])
    assert all(n["kind"] == "task_due" for n in notes)
    assert ok(api.get(f"{TASKS}/{soon['id']}", role="sales"))["reminded_at"]
    assert ok(api.get(f"{TASKS}/{far['id']}", role="sales"))["reminded_at"] is None
    # idempotent: a second run (or a run after a crash) notifies nobody again
    assert run_job(app, api.tenant.id, "operational.remind_due_tasks") == "succeeded"
    assert len(notifications(api, "sales")) == 2
    # a new due time gets its own reminder; the far one falls due later
    ok(api.patch(f"{TASKS}/{soon['id']}", json={"due_at": iso(now + dt.timedelta(minutes=50))},
                 role="sales"))
    assert run_job(app, api.tenant.id, "operational.remind_due_tasks",
                   now=now + dt.timedelta(days=3)) == "succeeded"
    notes = notifications(api, "sales")
    assert Counter(n["related_id"] for n in notes) == {soon["id"]: 2, past["id"]: 1,
                                                       far["id"]: 1}
    unread = ok(api.get(MY_WORK, role="sales"))["notifications"]
    assert len(unread) == 4
    ok(api.post(f"{MY_WORK}/notifications/{unread[0]['id']}/read", role="sales"))
    assert len(ok(api.get(MY_WORK, role="sales"))["notifications"]) == 3
    # somebody else's notification is not found
    assert api.post(f"{MY_WORK}/notifications/{unread[1]['id']}/read").status_code == 404


# --- routing rules -------------------------------------------------------------------------------


def test_round_robin_is_fair_over_many_leads(api):
    reps = [user(api, f"rep{i}@{api.tenant.slug}.example") for i in range(3)]
    rule = ok(api.post(RULES, json={"name": "Everyone in turn", "entity_type": "lead",
                                    "strategy": "round_robin", "user_ids": reps}), 201)
    owners = [ok(api.post(LEADS, json={"first_name": f"L{i}"}), 201)["owner_id"]
              for i in range(9)]
    assert Counter(owners) == {rep: 3 for rep in reps}
    assert owners[:3] == reps and owners[3:6] == reps  # in turn, not just in total
    assert ok(api.get(f"{RULES}/{rule['id']}"))["cursor"] == 9
    # the turns are bookkeeping: the rule's trail holds its creation only
    trail = ok(api.get(f"/api/v1/audit?entity_id={rule['id']}"))
    assert [e["action"] for e in trail] == ["insert"]
    # an explicit owner is kept, and takes no turn
    explicit = ok(api.post(LEADS, json={"first_name": "X",
                                        "owner_id": str(api.users["admin"].id)}), 201)
    assert explicit["owner_id"] == str(api.users["admin"].id)
    assert ok(api.post(LEADS, json={"first_name": "Next"}), 201)["owner_id"] == reps[0]
    # a sales user (own scope) keeps what they capture
    assert ok(api.post(LEADS, json={"first_name": "Own"}, role="sales"),
              201)["owner_id"] == str(api.users["sales"].id)


def test_a_territory_rule_matches_before_the_catch_all(api):
    italy = user(api, f"it@{api.tenant.slug}.example")
    spain = user(api, f"es@{api.tenant.slug}.example")
    rest = user(api, f"rest@{api.tenant.slug}.example")
    ok(api.post(RULES, json={"name": "Catch-all", "entity_type": "lead", "position": 99,
                             "user_ids": [rest]}), 201)
    ok(api.post(RULES, json={"name": "Italy", "entity_type": "lead", "position": 1,
                             "conditions": [{"field": "country", "value": "it"}],
                             "user_ids": [italy]}), 201)
    ok(api.post(RULES, json={"name": "Iberia from fairs", "entity_type": "lead", "position": 2,
                             "conditions": [{"field": "country", "operator": "in",
                                             "value": ["ES", "PT"]},
                                            {"field": "source", "value": "trade_fair"}],
                             "user_ids": [spain]}), 201)
    owner = lambda **data: ok(api.post(LEADS, json={"first_name": "L", **data}),  # noqa: E731
                              201)["owner_id"]
    assert owner(country="IT") == italy
    assert owner(country="pt", source="trade_fair") == spain
    assert owner(country="ES", source="referral") == rest
    assert owner() == rest
    # web-form leads without an owner are routed too
    form = ok(api.post("/api/v1/web-forms", json={"name": "Contact",
                                                   "fields": ["first_name", "email", "country"]}),
              201)
    response = api.client.post(f"/forms/{form['key']}", json={
        "first_name": "Web", "email": "web@example.org", "country": "IT"},
        environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert response.status_code == 201
    web = ok(api.get(f"{LEADS}?q=web@example.org"))
    assert [x["owner_id"] for x in web] == [italy]


def test_least_loaded_picks_the_user_with_fewest_open_cases(api):
    busy = user(api, f"busy@{api.tenant.slug}.example", ["service"])
    light = user(api, f"light@{api.tenant.slug}.example", ["service"])
    idle = user(api, f"idle@{api.tenant.slug}.example", ["service"])
    for _ in range(3):
        case(api, owner_id=busy)
    for _ in range(2):
        case(api, owner_id=light)
    closed = case(api, owner_id=idle)
    ok(api.patch(f"{CASES}/{closed['id']}", json={"status": "closed"}))  # closed: not a load
    case(api, owner_id=idle)
    ok(api.post(RULES, json={"name": "Billing desk", "entity_type": "case",
                             "conditions": [{"field": "category", "value": "billing"}],
                             "strategy": "least_loaded", "user_ids": [busy, light, idle]}), 201)
    first = case(api, category="billing")
    assert first["owner_id"] == idle  # 1 open case against 2 and 3
    second = case(api, category="billing")
    assert second["owner_id"] in (light, idle)  # both hold 2 now: the first listed wins
    assert second["owner_id"] == light
    # no rule matches: the case waits unassigned in its queue
    assert case(api, category="other", queue="level-1")["owner_id"] is None


def test_task_routing_and_rule_validation(api):
    helper = user(api, f"helper@{api.tenant.slug}.example", ["service"])
    ok(api.post(RULES, json={"name": "Calls", "entity_type": "task",
                             "conditions": [{"field": "kind", "value": "call"}],
                             "user_ids": [helper]}), 201)
    assert task(api, kind="call")["owner_id"] == helper
    assert task(api, kind="todo")["owner_id"] == str(api.users["admin"].id)
    for body, field in (
        ({"name": "x", "entity_type": "deal", "user_ids": [helper]}, "entity_type"),
        ({"name": "x", "entity_type": "lead", "user_ids": []}, "user_ids"),
        ({"name": "x", "entity_type": "lead", "user_ids": [str(uuid.uuid4())]}, "user_ids"),
        ({"name": "x", "entity_type": "lead", "user_ids": [helper, helper],
          "strategy": "user"}, "user_ids"),
        ({"name": "x", "entity_type": "lead", "user_ids": [helper],
          "conditions": [{"field": "password", "value": "x"}]}, "conditions"),
        ({"name": "x", "entity_type": "lead", "user_ids": [helper],
          "conditions": [{"field": "score", "operator": "gte", "value": "lots"}]}, "conditions"),
    ):
        response = api.post(RULES, json=body)
        assert response.status_code == 422, body
        assert field in response.json["errors"].get("json", response.json["errors"]), body
    assert api.get(RULES, role="sales").status_code == 403
    assert api.post(RULES, json={"name": "x", "entity_type": "lead", "user_ids": [helper]},
                    role="service").status_code == 403
    assert len(ok(api.get(f"{RULES}?entity_type=task"))) == 1


# --- cases and SLA ------------------------------------------------------------------------------


def test_business_minutes_skip_nights_weekends_and_follow_the_time_zone():
    hours = {"business_days": [1, 2, 3, 4, 5], "start_hour": 9, "end_hour": 17,
             "timezone": "Europe/Rome"}
    add = cases_service.add_business_minutes
    # Friday 2030-03-01 16:00 Rome (15:00 UTC) + 2 h = Monday 10:00 Rome (09:00 UTC)
    friday = dt.datetime(2030, 3, 1, 15, 0, tzinfo=UTC)
    assert add(friday, 120, **hours) == dt.datetime(2030, 3, 4, 9, 0, tzinfo=UTC)
    # Saturday night counts from Monday's opening
    saturday = dt.datetime(2030, 3, 2, 22, 0, tzinfo=UTC)
    assert add(saturday, 30, **hours) == dt.datetime(2030, 3, 4, 8, 30, tzinfo=UTC)
    # three business days of eight hours
    assert add(friday, 3 * 8 * 60, **hours) == dt.datetime(2030, 3, 6, 15, 0, tzinfo=UTC)
    # summer time: 09:00 in Rome is 07:00 UTC
    assert add(dt.datetime(2030, 7, 1, 5, 0, tzinfo=UTC), 0, **hours) == \
        dt.datetime(2030, 7, 1, 7, 0, tzinfo=UTC)
    around_the_clock = {**hours, "business_days": [1, 2, 3, 4, 5, 6, 7], "start_hour": 0,
                        "end_hour": 24, "timezone": "UTC"}
    assert add(saturday, 90, **around_the_clock) == saturday + dt.timedelta(minutes=90)


def test_a_case_gets_due_times_from_its_sla_policy_in_business_hours(api):
    policy = ok(api.post(SLA, json={
        "name": "Standard", "timezone": "Europe/Rome", "start_hour": 8, "end_hour": 18,
        "targets": {"normal": {"first_response_minutes": 120, "resolution_minutes": 960},
                    "urgent": {"first_response_minutes": 15, "resolution_minutes": 240}}}), 201)
    assert policy["is_default"] is True and policy["business_days"] == [1, 2, 3, 4, 5]
    customer = api.customer(first_name="Sam")
    opened = case(api, customer_id=customer["id"], category="billing", channel="phone",
                  queue="level-1")
    hours = {"business_days": [1, 2, 3, 4, 5], "start_hour": 8, "end_hour": 18,
             "timezone": "Europe/Rome"}
    created = parse(opened["created_at"])
    assert opened["status"] == "new" and opened["sla_policy_id"] == policy["id"]
    assert parse(opened["first_response_due_at"]) == cases_service.add_business_minutes(
        created, 120, **hours)
    assert parse(opened["resolution_due_at"]) == cases_service.add_business_minutes(
        created, 960, **hours)
    # a new priority brings its own targets
    urgent = ok(api.patch(f"{CASES}/{opened['id']}", json={"priority": "urgent"}))
    assert parse(urgent["first_response_due_at"]) == cases_service.add_business_minutes(
        created, 15, **hours)
    # a priority without targets has no due times
    low = case(api, priority="low")
    assert low["first_response_due_at"] is None and low["resolution_due_at"] is None
    for body, field in (({"name": "x", "targets": {"asap": {}}}, "targets"),
                        ({"name": "x", "timezone": "Mars/Olympus"}, "timezone"),
                        ({"name": "x", "start_hour": 18, "end_hour": 9}, "end_hour"),
                        ({"name": "x", "business_days": [0, 8]}, "business_days")):
        response = api.post(SLA, json=body)
        assert response.status_code == 422, body
        assert field in response.json["errors"].get("json", response.json["errors"]), body
    assert api.post(SLA, json={"name": "x"}, role="service").status_code == 403
    assert len(ok(api.get(SLA, role="service"))) == 1


def test_case_lifecycle_interactions_first_response_and_satisfaction_on_close(api):
    customer = api.customer(first_name="Rita")
    opened = case(api, customer_id=customer["id"], channel="phone", role="service")
    path = f"{CASES}/{opened['id']}"
    call = ok(api.post(f"{path}/interactions", role="service", json={
        "subject": "Customer called", "body": "Widget broken", "duration_seconds": 240}), 201)
    assert call["channel"] == "phone" and call["direction"] == "inbound"
    assert call["attributes"] == {"duration_seconds": 240, "case_id": opened["id"]}
    after = ok(api.get(path))
    assert after["status"] == "open" and after["first_response_at"] is None
    answer = ok(api.post(f"{path}/interactions", role="service", json={
        "direction": "outbound", "subject": "Called back", "outcome": "replacement sent"}), 201)
    after = ok(api.get(path))
    assert after["first_response_at"] == answer["occurred_at"]
    attached = ok(api.get(f"{path}/interactions"))
    assert [i["id"] for i in attached] == [call["id"], answer["id"]]
    assert {e["id"] for e in timeline(api, customer["id"])} == {call["id"], answer["id"]}

    rated_early = api.patch(path, json={"status": "resolved", "satisfaction": 5})
    assert rated_early.status_code == 422 and "satisfaction" in rated_early.json["errors"]["json"]
    resolved = ok(api.patch(path, json={"status": "resolved"}, role="service"))
    assert resolved["resolved_at"] and resolved["closed_at"] is None
    closed = ok(api.patch(path, json={"status": "closed", "satisfaction": 4}, role="service"))
    assert closed["closed_at"] and closed["satisfaction"] == 4
    assert api.patch(path, json={"status": "closed", "satisfaction": 6}).status_code == 422
    reopened = ok(api.patch(path, json={"status": "open"}))
    assert reopened["resolved_at"] is None and reopened["satisfaction"] is None
    assert [c["id"] for c in ok(api.get(f"{CASES}?customer_id={customer['id']}&open=true"))] \
        == [opened["id"]]
    # a case without a customer has no timeline to log on
    lonely = case(api)
    response = api.post(f"{CASES}/{lonely['id']}/interactions", json={})
    assert response.status_code == 422
    invalid = api.post(CASES, json={"subject": "", "priority": "meh", "status": "closed"})
    assert invalid.status_code == 422
    assert set(invalid.json["errors"]["json"]) == {"subject", "priority"}
    assert api.post(CASES, json={"subject": "x", "status": "closed"}).status_code == 422
    assert api.post(CASES, json={"subject": "x", "customer_id": str(uuid.uuid4())}
                    ).status_code == 422


def test_service_sees_every_case_but_no_deals_and_sales_sees_no_cases(api):
    customer = api.customer(first_name="Desk")
    other = case(api, subject="Assigned to the admin", owner_id=str(api.users["admin"].id))
    queued = case(api, subject="In the queue", customer_id=customer["id"])
    ok(api.post("/api/v1/deals", json={"title": "Secret deal", "customer_id": customer["id"]}),
       201)
    assert {c["id"] for c in ok(api.get(CASES, role="service"))} == {other["id"], queued["id"]}
    taken = ok(api.patch(f"{CASES}/{queued['id']}", role="service",
                         json={"owner_id": str(api.users["service"].id)}))
    assert taken["owner_id"] == str(api.users["service"].id)
    assert api.get("/api/v1/deals", role="service").status_code == 403
    profile = ok(api.get(f"/api/v1/customers/{customer['id']}/profile", role="service"))
    assert {s["key"] for s in profile["sections"]} == {"cases"}
    assert api.get(CASES, role="sales").status_code == 403
    assert api.get(f"{CASES}/{queued['id']}", role="sales").status_code == 403
    assert api.post(CASES, json={"subject": "x"}, role="marketing").status_code == 403
    # a custom role may grant service the deals
    ok(api.post("/api/v1/roles", json={"name": "service-deals",
                                       "permissions": {"deals:read": "all"}}), 201)
    ok(api.patch(f"/api/v1/users/{api.users['service'].id}",
                 json={"roles": ["service", "service-deals"]}))
    assert [d["title"] for d in ok(api.get("/api/v1/deals", role="service"))] == ["Secret deal"]


def test_the_breach_job_flags_late_cases_and_escalates_by_the_real_job_runner(app, api):
    definition = jobs.queue_for(app).definitions["operational.check_sla_breaches"]
    assert definition.schedule is not None
    boss = user(api, f"boss@{api.tenant.slug}.example", ["service"])
    round_the_clock = {"business_days": [1, 2, 3, 4, 5, 6, 7], "start_hour": 0, "end_hour": 24,
                       "timezone": "UTC"}
    escalating = ok(api.post(SLA, json={
        "name": "Escalating", **round_the_clock, "escalation_user_id": boss,
        "targets": {"high": {"first_response_minutes": 30, "resolution_minutes": 240}}}), 201)
    quiet = ok(api.post(SLA, json={
        "name": "Notify only", **round_the_clock,
        "targets": {"high": {"first_response_minutes": 60, "resolution_minutes": 600}}}), 201)
    agent = str(api.users["service"].id)
    hot = case(api, subject="Hot", priority="high", owner_id=agent,
               sla_policy_id=escalating["id"])
    answered = case(api, subject="Answered", priority="high", owner_id=agent,
                    sla_policy_id=escalating["id"])
    ok(api.patch(f"{CASES}/{answered['id']}", json={"status": "pending"}))
    customer = api.customer(first_name="Quick")
    ok(api.patch(f"{CASES}/{answered['id']}", json={"customer_id": customer["id"]}))
    ok(api.post(f"{CASES}/{answered['id']}/interactions", json={"direction": "outbound"}), 201)
    calm = case(api, subject="Calm", priority="high", owner_id=agent, sla_policy_id=quiet["id"])
    done = case(api, subject="Done", priority="high", owner_id=agent,
                sla_policy_id=escalating["id"])
    ok(api.patch(f"{CASES}/{done['id']}", json={"status": "resolved"}))

    # nothing is late yet
    assert run_job(app, api.tenant.id, "operational.check_sla_breaches") == "succeeded"
    assert ok(api.get(f"{CASES}?breached=true")) == []

    # 45 minutes later: the first response of "Hot" is late; "Answered" was answered
    later = utcnow() + dt.timedelta(minutes=45)
    assert run_job(app, api.tenant.id, "operational.check_sla_breaches",
                   now=later) == "succeeded"
    flagged = ok(api.get(f"{CASES}?breached=true"))
    assert [c["subject"] for c in flagged] == ["Hot"]
    assert flagged[0]["first_response_breached_at"] and flagged[0]["escalated_at"]
    assert flagged[0]["resolution_breached_at"] is None
    assert flagged[0]["owner_id"] == boss  # reassigned to the escalation user
    # the agent was told of each assignment, and now of the breach
    assert Counter(n["kind"] for n in notifications(api, "service")) == {"assigned": 4,
                                                                         "sla_breach": 1}
    assert [n["related_id"] for n in notifications(api, "service")
            if n["kind"] == "sla_breach"] == [hot["id"]]

    # five hours later: resolutions are late too; "Calm" is only notified (no escalation user)
    much_later = utcnow() + dt.timedelta(hours=11)
    assert run_job(app, api.tenant.id, "operational.check_sla_breaches",
                   now=much_later) == "succeeded"
    by_subject = {c["subject"]: c for c in ok(api.get(f"{CASES}?breached=true"))}
    assert set(by_subject) == {"Hot", "Calm", "Answered"}
    assert by_subject["Calm"]["owner_id"] == agent
    assert by_subject["Answered"]["first_response_breached_at"] is None
    assert by_subject["Answered"]["resolution_breached_at"]
    assert by_subject["Answered"]["owner_id"] == boss
    boss_headers = token_headers(api, boss)
    boss_notes = ok(api.client.get(f"{MY_WORK}/notifications", headers=boss_headers))
    assert Counter(n["kind"] for n in boss_notes) == {"escalation": 2, "sla_breach": 1}
    # idempotent: running again flags and notifies nothing more
    before = len(notifications(api, "service")) + len(boss_notes)
    assert run_job(app, api.tenant.id, "operational.check_sla_breaches",
                   now=much_later + dt.timedelta(minutes=5)) == "succeeded"
    after = len(notifications(api, "service")) + len(ok(api.client.get(
        f"{MY_WORK}/notifications", headers=boss_headers)))
    assert after == before
    assert ok(api.get(f"{CASES}/{done['id']}"))["resolution_breached_at"] is None
    # the job is the tenant's, and ran in it
    with tenancy.tenant_context(api.tenant.id):
        names = db.session.execute(sa.select(Job.name, Job.status).where(
            Job.name == "operational.check_sla_breaches")).all()
    db.session.rollback()
    assert names and all(status == "succeeded" for _, status in names)


# --- inbound messages and the automation action -----------------------------------------------


def _inbound(api, customer_id, subject) -> str:
    return ok(api.post(f"/api/v1/customers/{customer_id}/interactions",
                       json={"channel": "email", "direction": "inbound", "subject": subject,
                             "body": "Hello"}), 201)["id"]


def _ask_inbound(app, tenant_id, interaction_id, thread_ids):
    hook = app.extensions["clientela"].plugins.hook
    db.session.rollback()
    with tenancy.tenant_context(tenant_id):
        load = lambda i: db.session.execute(sa.select(Interaction).where(  # noqa: E731
            Interaction.id == uuid.UUID(i))).scalar_one()
        answers = hook.clientela_inbound_message(interaction=load(interaction_id),
                                                 thread=[load(i) for i in thread_ids])
        db.session.commit()
    return [a for a in answers if a is not None]


def test_an_inbound_message_opens_a_case_and_a_reply_joins_it(app, api, monkeypatch):
    customer = api.customer(first_name="Ines", email="ines@example.org")
    first = _inbound(api, customer["id"], "My order is late")
    (answer,) = _ask_inbound(app, api.tenant.id, first, [])
    assert answer["type"] == "case" and answer["created"] is True
    opened = ok(api.get(f"{CASES}/{answer['id']}"))
    assert (opened["subject"], opened["channel"], opened["customer_id"]) == (
        "My order is late", "email", customer["id"])
    ok(api.patch(f"{CASES}/{opened['id']}", json={"status": "pending"}))
    reply = _inbound(api, customer["id"], "Re: My order is late")
    (again,) = _ask_inbound(app, api.tenant.id, reply, [first])
    assert again == {"type": "case", "id": answer["id"], "created": False}
    assert [i["id"] for i in ok(api.get(f"{CASES}/{opened['id']}/interactions"))] == [
        first, reply]
    assert ok(api.get(f"{CASES}/{opened['id']}"))["status"] == "open"  # the customer answered
    # once the case is closed, a new message opens a new case
    ok(api.patch(f"{CASES}/{opened['id']}", json={"status": "closed"}))
    late = _inbound(api, customer["id"], "Re: Re: My order is late")
    (fresh,) = _ask_inbound(app, api.tenant.id, late, [first, reply])
    assert fresh["created"] is True and fresh["id"] != answer["id"]
    monkeypatch.setitem(app.config, "OPERATIONAL_CASES_FROM_INBOUND", False)
    assert _ask_inbound(app, api.tenant.id, _inbound(api, customer["id"], "x"), []) == []


def test_the_create_task_automation_action(app, api):
    actions = {}
    hook = app.extensions["clientela"].plugins.hook

    def register(key, label, function, params=None):
        actions[key] = (label, function, params)

    hook.clientela_automation_actions(register=register)
    label, function, params = actions["create_task"]
    assert set(params) >= {"title", "due_in_days", "assignee_id"}
    customer = api.customer(first_name="Auto")
    db.session.rollback()
    with tenancy.tenant_context(api.tenant.id, origin="job"):
        from clientela.core.models import Customer

        entity = db.session.execute(sa.select(Customer).where(
            Customer.id == uuid.UUID(customer["id"]))).scalar_one()
        result = function(entity, {"title": "Welcome call", "due_in_days": 2,
                                   "assignee_id": str(api.users["sales"].id)})
        unassigned = function(None, {"title": "Review"})
        with pytest.raises(Exception, match="title"):
            function(entity, {"due_in_days": 1})
        db.session.commit()
    made = ok(api.get(f"{TASKS}/{result['task_id']}"))
    assert (made["title"], made["owner_id"], made["related_type"], made["customer_id"]) == (
        "Welcome call", str(api.users["sales"].id), "customer", customer["id"])
    due = parse(made["due_at"]) - utcnow()
    assert dt.timedelta(days=1, hours=23) < due <= dt.timedelta(days=2)
    assert ok(api.get(f"{TASKS}/{unassigned['task_id']}"))["owner_id"] is None


# --- lead import ---------------------------------------------------------------------------------

LEADS_CSV = """First name,Last name,Company,E-mail,Phone,Country,Lead source,Owner,attr.size,Fax
Ada,Lovelace,Engines Ltd,ada@example.org,+44 20 7946 0958,GB,trade_fair,,50,1
Bad,Mail,,not-an-email,,,,,,
Grace,Hopper,Navy,grace@example.org,,US,,{owner},,
,,,,,,referral,,,
Linus,T,,linus@example.org,,FI,,nobody@example.org,,
"""


def test_lead_import_keeps_good_rows_and_reports_bad_ones(api):
    body = LEADS_CSV.format(owner=f"sales@{api.tenant.slug}.example")
    dry = ok(post_csv(api, f"{LEADS}/import?dry_run=true&filename=fair.csv", body))
    assert (dry["rows"], dry["created"], dry["failed"], dry["committed"]) == (5, 2, 3, False)
    assert ok(api.get(LEADS)) == []

    strict = post_csv(api, f"{LEADS}/import?all_or_nothing=true", body)
    assert strict.status_code == 422 and "nothing was written" in strict.json["message"]
    assert ok(api.get(LEADS)) == []

    report = ok(post_csv(api, f"{LEADS}/import?source=fair-2030", body))
    assert (report["rows"], report["created"], report["failed"]) == (5, 2, 3)
    assert report["committed"] is True and report["ignored_columns"] == ["Fax"]
    assert report["mapping"]["Lead source"] == "source"
    assert [(e["row"], e["field"]) for e in report["errors"]] == [
        (3, "email"), (5, "email"), (6, "owner")]
    leads = {x["email"]: x for x in ok(api.get(LEADS))}
    assert set(leads) == {"ada@example.org", "grace@example.org"}
    ada, grace = leads["ada@example.org"], leads["grace@example.org"]
    assert ada["phone"] == "+442079460958" and ada["source"] == "trade_fair"
    assert ada["attributes"] == {"size": "50"} and ada["owner_id"] == str(api.users["admin"].id)
    assert grace["source"] == "fair-2030" and grace["owner_id"] == str(api.users["sales"].id)
    assert sorted(report["lead_ids"]) == sorted([ada["id"], grace["id"]])
    assert post_csv(api, f"{LEADS}/import", body, role="service").status_code == 403
    nothing = post_csv(api, f"{LEADS}/import", "Colour,Size\nred,L\n")
    assert nothing.status_code == 422 and "no column names a lead" in nothing.json["message"]


def test_the_import_leads_command(backend, fresh_database_url, tmp_path):
    env = {"CLIENTELA_HOME": str(tmp_path), "DATABASE_URL": fresh_database_url(backend),
           "CLIENTELA_PROFILE": "onprem"}
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, list(args), env=env, catch_exceptions=False)

    assert invoke("init", "--admin-email", "a@example.com").exit_code == 0
    source = tmp_path / "leads.csv"
    source.write_text(LEADS_CSV.format(owner="a@example.com"), encoding="utf-8")
    assert "leads" in invoke("import", "--help").output
    assert "customers" in invoke("import", "--help").output
    dry = invoke("import", "leads", str(source), "--dry-run")
    assert dry.exit_code == 1 and "would have 2 created, 3 failed of 5 rows" in dry.output
    report = tmp_path / "errors.csv"
    result = invoke("import", "leads", str(source), "--report", str(report))
    assert result.exit_code == 1 and "2 created, 3 failed of 5 rows" in result.output
    assert report.read_text().splitlines()[0] == "row,field,message"
    assert [line.split(",")[:2] for line in report.read_text().splitlines()[1:]] == [
        ["3", "email"], ["5", "email"], ["6", "owner"]]
    missing = invoke("import", "leads", str(source), "--as", "ghost@example.com")
    assert missing.exit_code == 1 and "no active user ghost@example.com" in missing.output
    app = create_app("onprem", HOME=env["CLIENTELA_HOME"], DATABASE_URL=env["DATABASE_URL"])
    with app.app_context():
        from clientela.plugins.operational.models import Lead

        tenant = app.extensions["clientela"].profile.tenant()
        with tenancy.tenant_context(tenant.id):
            emails = sorted(db.session.execute(sa.select(Lead.email)).scalars())
        assert emails == ["ada@example.org", "grace@example.org"]
        db.session.remove()
        db.engine.dispose()


# --- the customer's hooks ---------------------------------------------------------------------


def test_profile_export_erase_and_merge_cover_tasks_and_cases(api):
    customer = api.customer(first_name="Paola", email="paola@example.org")
    twin = api.customer(first_name="Paola", last_name="Twin")
    call = task(api, title="Call Paola about her hip", related_type="customer",
                related_id=customer["id"])
    complaint = case(api, subject="Paola's complaint", description="Personal story",
                     customer_id=customer["id"])
    ok(api.patch(f"{CASES}/{complaint['id']}", json={"status": "closed", "satisfaction": 2}))
    twin_case = case(api, subject="Twin's case", customer_id=twin["id"])
    twin_task = task(api, title="Twin task", related_type="customer", related_id=twin["id"])

    sections = {s["key"]: s for s in ok(api.get(
        f"/api/v1/customers/{customer['id']}/profile"))["sections"]}
    assert sections["tasks"]["data"]["open"] == 1
    assert sections["cases"]["data"]["resolved"] == 1
    assert sections["cases"]["data"]["satisfaction"] == 2
    sales_sections = {s["key"] for s in ok(api.get(
        f"/api/v1/customers/{customer['id']}/profile", role="sales"))["sections"]}
    assert "cases" not in sales_sections and "tasks" not in sales_sections  # not theirs

    ok(api.post(f"/api/v1/customers/{customer['id']}/merge", json={"other_id": twin["id"]}))
    assert ok(api.get(f"{CASES}/{twin_case['id']}"))["customer_id"] == customer["id"]
    moved = ok(api.get(f"{TASKS}/{twin_task['id']}"))
    assert moved["customer_id"] == customer["id"] and moved["related_id"] == customer["id"]

    exported = ok(api.get(f"/api/v1/customers/{customer['id']}/export"))["plugins"]
    assert {t["id"] for t in exported["operational"]["tasks"]} == {call["id"], twin_task["id"]}
    assert {c["id"] for c in exported["operational"]["cases"]} == {complaint["id"],
                                                                  twin_case["id"]}

    erased = ok(api.post(f"/api/v1/customers/{customer['id']}/erase"))
    text = json.dumps(erased)
    assert "tasks_anonymised" in text and "cases_anonymised" in text
    after = ok(api.get(f"{CASES}/{complaint['id']}"))
    assert "Paola" not in after["subject"] and after["description"] == ""
    assert after["satisfaction"] == 2 and after["status"] == "closed"
    assert "Paola" not in ok(api.get(f"{TASKS}/{call['id']}"))["title"]
    audit = json.dumps(ok(api.get("/api/v1/audit?page_size=100")))
    assert "Paola's complaint" not in audit and "Call Paola" not in audit


def test_the_migration_creates_the_work_tables(app):
    with app.app_context():
        names = set(sa.inspect(db.engine).get_table_names())
    assert {Task.__tablename__, ServiceCase.__tablename__, "operational_routing_rules",
            "operational_sla_policies", "operational_case_interactions",
            "operational_notifications"} <= names
