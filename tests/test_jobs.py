"""Background jobs with real consumers, on the SQLite queue and on Redis, over SQLite and PostgreSQL.

Consumers are Huey consumer threads in the test process, or a separate process
(``clientela worker``, or a consumer this module starts) where a test kills one.
Redis is found at ``CLIENTELA_TEST_REDIS`` (default the local server); when it is
unreachable the Redis half is skipped, except under ``CI=true``, where that fails.
Every test uses a queue name of its own, so parallel runs never share messages.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from clientela.core import jobs, migrations, services, tenancy
from clientela.core.app import create_app
from clientela.core.db import db
from clientela.core.errors import CrossTenantError, NoTenantError, PluginError
from clientela.core.models import Customer, Job

pytestmark = pytest.mark.timeout(90)

REDIS_URL = os.environ.get("CLIENTELA_TEST_REDIS", "redis://127.0.0.1:6379/0")
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
LEASE = 1.5  # seconds: short, so that recovery after a kill is quick
POLL = 0.2

#: what the test jobs saw, by the marker each test passes them
RUNS: dict[str, list] = collections.defaultdict(list)


def _redis_problem() -> str | None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means unreachable
        return f"{type(exc).__name__}: {exc}".splitlines()[0]


_REDIS_PROBLEM = _redis_problem()


def require_redis() -> None:
    if _REDIS_PROBLEM is None:
        return
    message = f"Redis unreachable at {REDIS_URL}: {_REDIS_PROBLEM}"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI requires it)", pytrace=False)
    pytest.skip(message)


# --- the jobs the tests run ----------------------------------------------------------


def record_context(marker, other_tenant_id, other_customer_id):
    """Writes down whose context it runs in, what it can see and what it may write."""
    from flask import has_app_context

    seen = {
        "app": has_app_context(),
        "tenant": tenancy.get_tenant_id(),
        "actor": tenancy.current_actor_id(),
        "origin": tenancy.current_origin(),
        "visible": sorted(db.session.execute(sa.select(Customer.display_name)).scalars()),
        "other_by_id": db.session.execute(
            sa.select(Customer).where(Customer.id == other_customer_id)
        ).scalar_one_or_none(),
        "job": jobs.current_job(),
    }
    try:
        db.session.add(Customer(tenant_id=other_tenant_id, display_name="smuggled"))
        db.session.flush()
        seen["cross_write"] = "allowed"
    except CrossTenantError:
        seen["cross_write"] = "refused"
    db.session.rollback()
    RUNS[marker].append(seen)


def count(marker):
    RUNS[marker].append(time.monotonic())


def write_customer(marker, name):
    services.create_customer({"first_name": name})
    RUNS[marker].append(name)


def always_fails(marker):
    RUNS[marker].append(time.monotonic())
    raise RuntimeError(f"failure {len(RUNS[marker])}")


def tick():
    RUNS[f"tick:{tenancy.current_tenant_id()}"].append(time.monotonic())


def slow_the_first_time(path):
    """Appends its attempt number to ``path``; the first attempt hangs (to be killed)."""
    attempt = jobs.current_job().attempt
    with open(path, "a") as fh:
        fh.write(f"{attempt}\n")
    if attempt == 1:
        time.sleep(60)


TEST_JOBS = [
    (record_context, {}),
    (count, {}),
    (write_customer, {}),
    (always_fails, {"retries": 2, "retry_delay": 0.2, "backoff": 2}),
    (slow_the_first_time, {}),
]


def build_queue(app, backend: str, name: str, schedule_ticks: float | None = None):
    queue = jobs.JobQueue(app, backend=backend, name=name, lease_seconds=LEASE)
    for function, options in TEST_JOBS:
        queue.register(function, name=f"test.{function.__name__}", plugin="tests", **options)
    if schedule_ticks:
        queue.register(tick, name="test.tick", plugin="tests", schedule=schedule_ticks)
    return queue


def run_worker_process() -> None:
    """Entry of the consumer subprocess (configured by TEST_JOBS_* variables)."""
    env = os.environ
    app = create_app("onprem", DATABASE_URL=env["TEST_JOBS_DATABASE_URL"],
                     HOME=env["TEST_JOBS_HOME"], SECRET_KEY="test-secret",
                     REDIS_URL=REDIS_URL, JOBS_POLL_SECONDS=POLL)
    queue = build_queue(app, env["TEST_JOBS_BACKEND"], env["TEST_JOBS_NAME"])
    print("consumer ready", flush=True)
    queue.consumer(workers=1).run()


# --- fixtures --------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "redis"])
def job_backend(request) -> str:
    if request.param == "redis":
        require_redis()
    return request.param


def _configure(app, monkeypatch):
    monkeypatch.setitem(app.config, "REDIS_URL", REDIS_URL)
    monkeypatch.setitem(app.config, "JOBS_POLL_SECONDS", POLL)


@pytest.fixture
def queue(app, app_ctx, job_backend, monkeypatch):
    """A queue of this test's own, installed as the app's queue, with the test jobs."""
    _configure(app, monkeypatch)
    q = build_queue(app, job_backend, f"test_{uuid.uuid4().hex[:12]}")
    monkeypatch.setitem(app.extensions, jobs.EXTENSION, q)
    yield q
    q.flush()


@pytest.fixture
def consumers():
    """Start consumers (threads in this process); all are stopped, their queues emptied."""
    started = []

    def start(q, **options):
        consumer = q.start(**options)
        started.append(consumer)
        return consumer

    yield start
    for consumer in started:
        consumer.stop(graceful=True)
    for consumer in started:
        consumer.queue.flush()


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def job_row(tenant_id, job_id) -> dict:
    """The job's row as it is now in the database (a fresh transaction each time)."""
    db.session.rollback()
    with tenancy.tenant_context(tenant_id):
        job = db.session.execute(sa.select(Job).where(Job.id == job_id)).scalar_one_or_none()
        row = None if job is None else {c.key: getattr(job, c.key) for c in
                                        sa.inspect(Job).column_attrs}
    db.session.rollback()
    return row


def wait_for_status(tenant_id, job_id, *statuses, timeout=10.0) -> dict:
    return wait_for(
        lambda: (row := job_row(tenant_id, job_id)) and row["status"] in statuses and row,
        timeout, f"job {job_id} to be {' or '.join(statuses)}",
    )


def enqueue_in(tenant, name, *args, actor=None, **kwargs):
    with tenancy.tenant_context(tenant.id, actor):
        db.session.execute(sa.select(1))  # a transaction in progress: sent on commit
        job_id = jobs.enqueue(name, *args, **kwargs)
        db.session.commit()
    return job_id


# --- a job runs in its tenant --------------------------------------------------------


def test_job_runs_in_the_tenant_it_was_enqueued_in_and_cannot_read_another(
        queue, consumers, make_tenant):
    a, b = make_tenant("a"), make_tenant("b")
    customers = {}
    for t, name in ((a, "Alice"), (b, "Bob")):
        with tenancy.tenant_context(t.id):
            customers[t.id] = services.create_customer({"first_name": name}).id
            db.session.commit()
    with tenancy.tenant_context(a.id):
        user = services.create_user(f"{uuid.uuid4().hex[:8]}@example.com", roles=["admin"],
                                    password="a long enough password")
        db.session.commit()
        user_id = user.id
    marker = uuid.uuid4().hex
    job_id = enqueue_in(a, "test.record_context", marker, b.id, customers[b.id], actor=user_id)
    consumers(queue)

    row = wait_for_status(a.id, job_id, "succeeded")
    (seen,) = RUNS[marker]
    assert seen["app"] is True
    assert seen["tenant"] == a.id
    assert seen["actor"] == user_id and row["created_by"] == user_id
    assert seen["origin"] == "job"
    assert seen["visible"] == ["Alice"]
    assert seen["other_by_id"] is None
    assert seen["cross_write"] == "refused"
    assert seen["job"].attempt == 1 and seen["job"].name == "test.record_context"
    assert row["attempts"] == 1 and row["finished_at"] is not None
    # the job is A's: tenant B does not see it
    assert job_row(b.id, job_id) is None
    with tenancy.tenant_context(b.id):
        assert all(j.id != job_id for j in jobs.list_jobs())


def test_a_jobs_writes_commit_with_its_success(queue, consumers, tenant):
    marker = uuid.uuid4().hex
    job_id = enqueue_in(tenant, "test.write_customer", marker, "Written by a job")
    consumers(queue)
    wait_for_status(tenant.id, job_id, "succeeded")
    db.session.rollback()
    with tenancy.tenant_context(tenant.id):
        customer = db.session.execute(sa.select(Customer)).scalar_one()
        assert customer.display_name == "Written by a job"
        from clientela.core.models import AuditEvent

        audit = db.session.execute(
            sa.select(AuditEvent).where(AuditEvent.entity_id == customer.id)
        ).scalar_one()
        assert audit.origin == "job"


# --- delivery on commit, delay, idempotency ----------------------------------------------


def test_a_job_is_sent_when_its_transaction_commits_and_not_before_its_delay(
        queue, consumers, tenant):
    consumers(queue)
    cancelled, delayed = uuid.uuid4().hex, uuid.uuid4().hex
    with tenancy.tenant_context(tenant.id):
        db.session.execute(sa.select(1))
        rolled_back = jobs.enqueue("test.count", cancelled)
        db.session.rollback()
        db.session.execute(sa.select(1))
        started = time.monotonic()
        job_id = jobs.enqueue("test.count", delayed, delay=1.0)
        db.session.commit()
    wait_for_status(tenant.id, job_id, "succeeded")
    assert RUNS[delayed][0] - started >= 1.0
    assert job_row(tenant.id, rolled_back) is None
    assert RUNS[cancelled] == []


def test_a_job_enqueued_twice_with_one_key_runs_once_per_tenant(
        queue, consumers, make_tenant):
    a, b = make_tenant("a"), make_tenant("b")
    marker = uuid.uuid4().hex
    first = enqueue_in(a, "test.count", marker, idempotency_key="welcome-mail")
    again = enqueue_in(a, "test.count", marker, idempotency_key="welcome-mail")
    other = enqueue_in(b, "test.count", marker, idempotency_key="welcome-mail")
    assert first == again and other != first
    consumers(queue)
    wait_for_status(a.id, first, "succeeded")
    wait_for_status(b.id, other, "succeeded")
    # even once it ran, the key still holds
    assert enqueue_in(a, "test.count", marker, idempotency_key="welcome-mail") == first
    time.sleep(0.5)
    assert len(RUNS[marker]) == 2
    with tenancy.tenant_context(a.id):
        assert [j.id for j in jobs.list_jobs(name="test.count")] == [first]


def test_a_postcommit_hook_can_enqueue_a_job(queue, consumers, tenant):
    from sqlalchemy import event

    marker = uuid.uuid4().hex
    sent = []
    session = db.session()

    def after_commit(s):  # where postcommit hooks run: the session can no longer write
        sent.append(jobs.enqueue("test.count", marker))

    with tenancy.tenant_context(tenant.id):
        event.listen(session, "after_commit", after_commit, once=True)
        services.create_customer({"first_name": "Hooked"})
        db.session.commit()
    consumers(queue)
    wait_for_status(tenant.id, sent[0], "succeeded")
    assert len(RUNS[marker]) == 1


# --- retries, dead letters ----------------------------------------------------------


def test_a_failing_job_retries_with_backoff_then_is_dead(queue, consumers, tenant):
    marker = uuid.uuid4().hex
    job_id = enqueue_in(tenant, "test.always_fails", marker)
    consumers(queue)
    row = wait_for_status(tenant.id, job_id, "dead", timeout=15)
    runs = RUNS[marker]
    assert len(runs) == 3 and row["attempts"] == 3 and row["max_attempts"] == 3
    # retry_delay 0.2s, backoff 2: at least 0.2s, then 0.4s between attempts
    assert runs[1] - runs[0] >= 0.2 and runs[2] - runs[1] >= 0.4
    assert "RuntimeError: failure 3" in row["last_error"]
    assert row["finished_at"] is not None and row["lease_owner"] is None
    with tenancy.tenant_context(tenant.id):
        assert [j.id for j in jobs.list_jobs(status="dead")] == [job_id]


# --- periodic jobs -------------------------------------------------------------------


@pytest.fixture
def fresh_app(backend, fresh_database_url, tmp_path, monkeypatch):
    """An app on an empty database: periodic jobs fan out to every tenant there is."""
    app = create_app("onprem", DATABASE_URL=fresh_database_url(backend), HOME=str(tmp_path),
                     SECRET_KEY="test-secret")
    _configure(app, monkeypatch)
    with app.app_context():
        migrations.upgrade(app)
        yield app
        db.session.remove()
        db.engine.dispose()


def test_a_periodic_job_fires_on_schedule_once_per_tenant_and_period(
        fresh_app, job_backend, consumers):
    name = f"test_{uuid.uuid4().hex[:12]}"
    # two consumers with their own memory of what they fired: only one gets each period
    first = build_queue(fresh_app, job_backend, name, schedule_ticks=1)
    second = build_queue(fresh_app, job_backend, name, schedule_ticks=1)
    a, b = services.create_tenant("a"), services.create_tenant("b")
    paused = services.create_tenant("paused")
    paused.status = "suspended"
    db.session.commit()
    consumers(first)
    consumers(second)
    for t in (a, b):
        wait_for(lambda t=t: len(RUNS[f"tick:{t.id}"]) >= 3, 10, f"3 ticks in {t.slug}")
    assert RUNS[f"tick:{paused.id}"] == []
    ticks = RUNS[f"tick:{a.id}"]
    # schedules are checked every second: a one-second period may fire late, never twice
    assert all(later - earlier < 2.6 for earlier, later in zip(ticks, ticks[1:]))
    with tenancy.tenant_context(a.id):
        db.session.rollback()
        keys = [j.idempotency_key for j in jobs.list_jobs(name="test.tick")]
    assert len(keys) == len(set(keys)) >= 3
    assert all(k.startswith("schedule:test.tick:") for k in keys)


# --- consumers that die ------------------------------------------------------------


@pytest.mark.slow
def test_a_job_whose_consumer_is_killed_runs_again_in_the_next_consumer(
        app, queue, consumers, tenant, job_backend, tmp_path):
    attempts_file = tmp_path / "attempts"
    job_id = enqueue_in(tenant, "test.slow_the_first_time", str(attempts_file))
    env = dict(os.environ, TEST_JOBS_DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
               TEST_JOBS_HOME=app.config["HOME"], TEST_JOBS_BACKEND=job_backend,
               TEST_JOBS_NAME=queue.name)
    code = f"import sys; sys.path.insert(0, {TESTS_DIR!r}); import test_jobs; " \
           "test_jobs.run_worker_process()"
    worker = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: attempts_file.exists() and attempts_file.read_text() == "1\n", 30,
                 "the first attempt to start in the subprocess")
        assert job_row(tenant.id, job_id)["status"] == "running"
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(10) == -signal.SIGKILL
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.wait()
    # another consumer finds the lease expired and runs the job again
    consumers(queue)
    row = wait_for_status(tenant.id, job_id, "succeeded", timeout=15)
    assert attempts_file.read_text() == "1\n2\n"
    assert row["attempts"] == 2


def test_a_message_the_queue_lost_is_sent_again(queue, consumers, tenant):
    queue.resend = 1.0
    marker = uuid.uuid4().hex
    job_id = enqueue_in(tenant, "test.count", marker)
    queue.flush()  # the message is gone (a Redis without persistence restarted, say)
    consumers(queue)
    wait_for_status(tenant.id, job_id, "succeeded", timeout=10)
    assert len(RUNS[marker]) == 1


# --- interface errors -----------------------------------------------------------------


def test_enqueue_refuses_unknown_jobs_unstorable_arguments_and_no_tenant(queue, tenant):
    with pytest.raises(jobs.UnknownJob, match="no job named 'test.nope'"):
        jobs.enqueue("test.nope")
    with pytest.raises(TypeError, match="cannot be stored"):
        jobs.enqueue("test.count", object())


def test_enqueue_needs_a_tenant(queue, app_ctx):
    with pytest.raises(NoTenantError):
        jobs.enqueue("test.count", "x")


def test_job_arguments_keep_their_types():
    args = [uuid.uuid4(), dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.timezone.utc),
            dt.date(2026, 1, 2), {"ids": [uuid.uuid4()], "n": 1.5}, None, "text"]
    assert jobs.decode_arguments(json.loads(json.dumps(jobs.encode_arguments(args)))) == args


def test_registration_errors_name_the_plugin(app):
    q = jobs.JobQueue(app, backend="sqlite", name="unused", collect=False)
    q.register(count, name="x.count", plugin="one")
    with pytest.raises(PluginError, match="plugin 'two': job 'x.count' is already registered"):
        q.register(count, name="x.count", plugin="two")
    with pytest.raises(PluginError, match="unknown cron field"):
        q.register(count, name="x.cron", plugin="two", schedule={"minutes": "5"})
    with pytest.raises(PluginError, match="retries"):
        q.register(count, name="x.retries", plugin="two", retries=-1)


def test_schedules_are_cron_like_in_utc_or_intervals():
    nightly = jobs.Schedule({"minute": "17", "hour": "3"})
    at = dt.datetime(2026, 11, 23, 3, 17, 42, tzinfo=dt.timezone.utc)
    assert nightly.slot(at) == "2026-11-23T03:17Z"
    assert nightly.slot(at.replace(minute=18)) is None
    every = jobs.Schedule(dt.timedelta(minutes=5))
    assert every.slot(at) == "2026-11-23T03:15:00Z"
    with pytest.raises(ValueError):
        jobs.Schedule(0.5)


def test_the_core_registers_its_housekeeping_job_and_backends_by_profile(app):
    q = jobs.queue_for(app)
    assert "core.purge_finished_jobs" in q.definitions
    assert q.definitions["core.purge_finished_jobs"].schedule is not None
    assert q.backend == "sqlite" and q.embedded
    assert jobs.backend_name(create_app("onprem", HOME=app.config["HOME"],
                                        DATABASE_URL="sqlite://",
                                        REDIS_URL=REDIS_URL)) == "redis"
    with pytest.raises(Exception, match="unknown job backend 'carrier-pigeon'"):
        jobs.JobQueue(app, backend="carrier-pigeon")


# --- the commands -------------------------------------------------------------------


@pytest.fixture
def instance(backend, fresh_database_url, tmp_path):
    """A fresh on-premise instance driven through ``clientela`` (as in test_cli)."""
    env = {"CLIENTELA_HOME": str(tmp_path), "DATABASE_URL": fresh_database_url(backend),
           "CLIENTELA_PROFILE": "onprem", "CLIENTELA_JOBS_POLL_SECONDS": str(POLL)}
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli_main(), list(args), env=env, catch_exceptions=False)

    assert invoke("init", "--admin-email", "a@example.com",
                  "--admin-password", "long-enough-pw").exit_code == 0
    app = create_app("onprem", HOME=env["CLIENTELA_HOME"], DATABASE_URL=env["DATABASE_URL"],
                     JOBS_POLL_SECONDS=POLL)
    with app.app_context():
        yield invoke, env, app
        db.session.remove()
        db.engine.dispose()


def cli_main():
    from clientela.cli import cli

    return cli


def test_jobs_commands_list_retry_and_purge_the_dead_letter_list(instance, consumers):
    invoke, env, app = instance
    queue = jobs.queue_for(app)  # the instance's own queue: SQLite file in its home
    queue.register(always_fails, name="test.dies", plugin="tests")
    tenant = app.extensions["clientela"].profile.tenant()
    marker = uuid.uuid4().hex
    job_id = enqueue_in(tenant, "test.dies", marker)
    # no periodic jobs: a plugin's schedule firing now would add rows to the lists below
    consumers(queue, periodic=False)
    wait_for_status(tenant.id, job_id, "dead")

    listed = invoke("jobs", "list", "--status", "dead")
    assert listed.exit_code == 0
    assert str(job_id) in listed.output and "RuntimeError: failure 1" in listed.output
    rows = json.loads(invoke("jobs", "list", "--json").output)
    assert [(r["id"], r["status"], r["attempts"]) for r in rows] == [(str(job_id), "dead", 1)]

    retried = invoke("jobs", "retry", str(job_id))
    assert retried.exit_code == 0 and f"queued {job_id}" in retried.output
    wait_for(lambda: len(RUNS[marker]) == 2, 10, "the retried job to run")
    wait_for_status(tenant.id, job_id, "dead")

    refused = invoke("jobs", "retry", str(uuid.uuid4()))
    assert refused.exit_code == 1 and refused.output.startswith("Error: no job ")
    assert len(refused.output.strip().splitlines()) == 1
    busy = invoke("jobs", "purge", "--status", "queued")
    assert busy.exit_code == 2 and "'queued' is not one of 'succeeded', 'dead'" in busy.output

    purged = invoke("jobs", "purge", "--status", "dead")
    assert purged.exit_code == 0 and "purged 1 dead job" in purged.output
    assert invoke("jobs", "list").output.strip() == "no jobs"


@pytest.mark.slow
def test_clientela_worker_runs_jobs_and_stops_on_sigterm(instance, job_backend):
    invoke, env, app = instance
    name = f"test_{uuid.uuid4().hex[:12]}"
    env = dict(os.environ, **env, CLIENTELA_JOBS_BACKEND=job_backend, CLIENTELA_JOBS_NAME=name,
               REDIS_URL=REDIS_URL)
    app.config.update(JOBS_BACKEND=job_backend, JOBS_NAME=name, REDIS_URL=REDIS_URL)
    app.extensions.pop(jobs.EXTENSION, None)
    tenant = app.extensions["clientela"].profile.tenant()
    # an old finished job for the core's housekeeping job to purge
    old = enqueue_in(tenant, "core.purge_finished_jobs")
    with tenancy.tenant_context(tenant.id):
        db.session.execute(sa.update(Job).where(Job.id == old).values(
            status="succeeded", finished_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=30)))
        db.session.commit()
    worker = subprocess.Popen(
        [sys.executable, "-m", "clientela.cli", "worker", "--workers", "1", "--no-periodic"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        job_id = enqueue_in(tenant, "core.purge_finished_jobs")
        wait_for_status(tenant.id, job_id, "succeeded", timeout=30)
        assert job_row(tenant.id, old) is None
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(15) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
    output = worker.stdout.read()
    assert f"on the {job_backend} queue '{name}'" in output
    jobs.queue_for(app).flush()


def test_worker_refuses_an_unreachable_redis(tmp_path):
    env = {"CLIENTELA_HOME": str(tmp_path), "CLIENTELA_JOBS_BACKEND": "redis",
           "REDIS_URL": "redis://127.0.0.1:1/0"}
    runner = CliRunner()
    assert runner.invoke(cli_main(), ["db", "upgrade"], env=env).exit_code == 0
    result = runner.invoke(cli_main(), ["worker"], env=env)
    assert result.exit_code == 1
    assert result.output.startswith("Error: job queue (redis) unreachable:")
    assert len(result.output.strip().splitlines()) == 1
