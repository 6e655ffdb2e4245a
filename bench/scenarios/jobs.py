"""Background jobs: throughput of tracked jobs on the embedded SQLite queue and on Redis."""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator

from bench import harness

NAME = "jobs"
DESCRIPTION = (
    "SIZE no-op jobs enqueued (commits of 100) and run by a consumer of 4 threads, end to "
    "end, jobs/s. Rows: the embedded set-up (SQLite queue, SQLite database) and the hosted "
    "one (Redis queue, PostgreSQL database; SQLite if no server) each vs raw Huey on the "
    "same queue without our tracking layer (no Job rows, no tenant context); and Redis vs "
    "the SQLite queue, both over a SQLite database (ours = Redis, baseline = SQLite queue); "
    "and the API's p95 (GET one customer, gunicorn, PostgreSQL) while a consumer runs a "
    "steady stream of jobs that read customers, vs with no jobs running"
)
DEFAULT_SIZE = 2_000
DEFAULT_REPEATS = 3
WORKERS = 4
BATCH = 100
REDIS_URL = os.environ.get("CLIENTELA_BENCH_REDIS", "redis://127.0.0.1:6379/0")


class _Counter:
    """Counts finished jobs and wakes the waiter at the goal (same for ours and raw Huey)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.count = 0
        self.goal = 0

    def reset(self, goal: int) -> None:
        with self.lock:
            self.count, self.goal = 0, goal
            self.done.clear()

    def hit(self) -> None:
        with self.lock:
            self.count += 1
            if self.count >= self.goal:
                self.done.set()

    def wait(self, timeout: float) -> None:
        if not self.done.wait(timeout):
            raise RuntimeError(f"only {self.count} of {self.goal} jobs ran in {timeout:.0f}s")


COUNTER = _Counter()


def no_op(n: int) -> None:
    COUNTER.hit()


def redis_problem() -> str | None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means unreachable
        return f"{type(exc).__name__}: {exc}".splitlines()[0]


@contextlib.contextmanager
def instance(database: str, workdir: str) -> Iterator[tuple[object, object]]:
    """A migrated database with one tenant; yields (app, tenant id)."""
    from clientela.core import migrations, services
    from clientela.core.app import create_app
    from clientela.core.db import db

    with contextlib.ExitStack() as stack:
        if database == "sqlite":
            url = f"sqlite:///{os.path.join(workdir, uuid.uuid4().hex[:8] + '.db')}"
        else:
            url = stack.enter_context(harness.postgres_database("jobs"))
        app = create_app("onprem", DATABASE_URL=url, HOME=workdir, SECRET_KEY="bench",
                         REDIS_URL=REDIS_URL, JOBS_POLL_SECONDS=0.2)
        with app.app_context():
            migrations.upgrade(app)
            tenant_id = services.create_tenant("bench").id
            try:
                yield app, tenant_id
            finally:
                db.session.remove()
                db.engine.dispose()


def tracked_run(app, tenant_id, backend: str, size: int) -> float:
    """jobs/s through ``jobs.enqueue`` and a ``JobQueue`` consumer (rows, tenant context)."""
    from clientela.core import jobs, tenancy
    from clientela.core.db import db

    queue = jobs.JobQueue(app, backend=backend, name=f"bench_{uuid.uuid4().hex[:10]}",
                          collect=False)
    queue.register(no_op, name="bench.no_op")
    app.extensions[jobs.EXTENSION] = queue
    consumer = queue.start(workers=WORKERS, periodic=False)
    try:
        COUNTER.reset(size)
        start = time.perf_counter()
        with tenancy.tenant_context(tenant_id):
            for n in range(size):
                if n % BATCH == 0:
                    db.session.execute(db.select(1))  # a transaction: sent on its commit
                jobs.enqueue("bench.no_op", n)
                if n % BATCH == BATCH - 1 or n == size - 1:
                    db.session.commit()
        COUNTER.wait(timeout=120 + size / 20)
        seconds = time.perf_counter() - start
    finally:
        consumer.stop(graceful=True)
        queue.flush()
        app.extensions.pop(jobs.EXTENSION, None)
    return size / seconds


def raw_run(app, backend: str, size: int) -> float:
    """jobs/s of plain Huey on the same storage, same consumer size: no tracking at all."""
    from huey.consumer import Consumer

    from clientela.core import jobs

    driver = jobs.load_backend(backend)
    huey = driver.create_huey(f"raw_{uuid.uuid4().hex[:10]}", app.config)
    task = huey.task(name="raw_no_op")(no_op)
    consumer = Consumer(huey, workers=WORKERS, worker_type="thread", periodic=False,
                        initial_delay=0.05, backoff=1.5, max_delay=0.2)
    consumer.scheduler.start()
    for _, worker in consumer.worker_threads:
        worker.start()
    try:
        COUNTER.reset(size)
        start = time.perf_counter()
        for n in range(size):
            task(n)
        COUNTER.wait(timeout=120 + size / 20)
        seconds = time.perf_counter() - start
    finally:
        consumer.stop(graceful=True)
        huey.flush()
    return size / seconds


def run(size: int, repeats: int) -> list[dict]:
    import logging

    logging.getLogger("huey").setLevel(logging.WARNING)
    rows = []
    redis_missing = redis_problem()
    pg_missing = harness.postgres_problem()
    with tempfile.TemporaryDirectory() as workdir:
        with instance("sqlite", workdir) as (app, tenant_id):
            with app.app_context():
                ours, raw = harness.alternate(lambda: tracked_run(app, tenant_id, "sqlite", size),
                                              lambda: raw_run(app, "sqlite", size), repeats)
            embedded = harness.median(ours)
            rows.append(harness.result(
                NAME, "jobs/s, embedded (SQLite queue + SQLite db)", "jobs/s", embedded,
                harness.median(raw), "raw SqliteHuey, no tracking", "report only", None))
            if redis_missing is None:
                with app.app_context():
                    on_redis, on_sqlite = harness.alternate(
                        lambda: tracked_run(app, tenant_id, "redis", size),
                        lambda: tracked_run(app, tenant_id, "sqlite", size), repeats)
                rows.append(harness.result(
                    NAME, "jobs/s, Redis vs SQLite queue (SQLite db)", "jobs/s",
                    harness.median(on_redis), harness.median(on_sqlite),
                    "SQLite queue, same tracking", "report only", None))
        if redis_missing is None:
            database = "postgresql" if pg_missing is None else "sqlite"
            with instance(database, workdir) as (app, tenant_id):
                with app.app_context():
                    ours, raw = harness.alternate(
                        lambda: tracked_run(app, tenant_id, "redis", size),
                        lambda: raw_run(app, "redis", size), repeats)
                rows.append(harness.result(
                    NAME, f"jobs/s, hosted (Redis queue + {database} db)", "jobs/s",
                    harness.median(ours), harness.median(raw), "raw RedisHuey, no tracking",
                    "report only", None,
                    note="" if pg_missing is None else f"PostgreSQL unreachable: {pg_missing}"))
        else:
            rows.append(harness.result(NAME, "jobs/s, Redis", "jobs/s", None, None, "", "runs",
                                       None, note=f"Redis unreachable: {redis_missing}"))
    if pg_missing is None:
        rows.extend(api_under_job_load(size, repeats))
    else:
        rows.append(harness.result(NAME, "API p95 with vs without a job load", "ms", None,
                                   None, "", "report only", None,
                                   note=f"PostgreSQL unreachable: {pg_missing}"))
    return rows


# --- API latency while jobs run ----------------------------------------------------------

API_CONNECTIONS = 8
API_DURATION = 5.0
API_WARMUP = 1.0
API_CUSTOMERS = 10_000
BACKLOG = 200  # jobs kept waiting while the API is measured


def read_customers(n: int) -> None:
    """A job that does what most jobs do: read the tenant's rows (RLS/ORM scoping apply)."""
    from clientela.core.db import db
    from clientela.core.models import Customer

    db.session.execute(db.select(Customer).order_by(Customer.updated_at.desc()).limit(25)
                       ).scalars().all()
    COUNTER.hit()


class _Feeder(threading.Thread):
    """Keeps about ``BACKLOG`` jobs waiting, through ``jobs.enqueue`` in the tenant's context."""

    def __init__(self, app, tenant_id) -> None:
        super().__init__(daemon=True)
        self.app, self.tenant_id = app, tenant_id
        self.stopping = threading.Event()
        self.sent = 0
        self.error: Exception | None = None

    def run(self) -> None:
        from clientela.core import jobs, tenancy
        from clientela.core.db import db

        try:
            with self.app.app_context(), tenancy.tenant_context(self.tenant_id):
                while not self.stopping.is_set():
                    if self.sent - COUNTER.count < BACKLOG:
                        db.session.execute(db.select(1))
                        for _ in range(50):
                            jobs.enqueue("bench.read_customers", self.sent)
                            self.sent += 1
                        db.session.commit()
                    else:
                        time.sleep(0.02)
                db.session.remove()
        except Exception as exc:  # noqa: BLE001 - reported by the scenario
            self.error = exc


def api_under_job_load(size: int, repeats: int) -> list[dict]:
    """p95 of ``GET /api/v1/customers/<id>`` (gunicorn, 2 workers, PostgreSQL) while a
    consumer of WORKERS threads runs a steady stream of jobs, vs the same with no jobs."""
    from bench.scenarios import api

    from clientela.core import jobs
    from clientela.core.app import create_app
    from clientela.core.db import db

    backend = "redis" if redis_problem() is None else "sqlite"
    with tempfile.TemporaryDirectory() as home, harness.postgres_database("jobs_api") as url:
        env = {**harness.python_env(), "CLIENTELA_PROFILE": "onprem", "CLIENTELA_HOME": home,
               "DATABASE_URL": url}
        api._clientela(["init", "--admin-email", api.ADMIN_EMAIL, "--admin-password",
                        api.ADMIN_PASSWORD], env)
        token = api._clientela(["tokens", "create", "--email", api.ADMIN_EMAIL], env).strip()
        ids, tenant_id = api._seed(url, home, API_CUSTOMERS)
        requests = api._requests("get", token, ids)
        app = create_app("onprem", DATABASE_URL=url, HOME=home, SECRET_KEY="bench",
                         REDIS_URL=REDIS_URL, JOBS_POLL_SECONDS=0.2)
        done: list[int] = []
        feeder_errors: list[str] = []
        with harness.gunicorn("clientela.core.app:create_app()", env, ready_path="/healthz"
                              ) as port, app.app_context():
            def with_jobs():
                queue = jobs.JobQueue(app, backend=backend,
                                      name=f"bench_{uuid.uuid4().hex[:10]}", collect=False)
                queue.register(read_customers, name="bench.read_customers")
                app.extensions[jobs.EXTENSION] = queue
                consumer = queue.start(workers=WORKERS, periodic=False)
                COUNTER.reset(10**12)
                feeder = _Feeder(app, uuid.UUID(tenant_id))
                feeder.start()
                try:
                    report = harness.load(port, requests, API_CONNECTIONS, API_DURATION,
                                          API_WARMUP)
                finally:
                    feeder.stopping.set()
                    feeder.join(30)
                    consumer.stop(graceful=True)
                    queue.flush()
                    app.extensions.pop(jobs.EXTENSION, None)
                    done.append(COUNTER.count)
                if feeder.error is not None:
                    feeder_errors.append(f"{type(feeder.error).__name__}: {feeder.error}")
                return report

            def without_jobs():
                return harness.load(port, requests, API_CONNECTIONS, API_DURATION, API_WARMUP)

            loaded, idle = harness.alternate(with_jobs, without_jobs, repeats)
            db.session.remove()
            db.engine.dispose()
    o_p95 = harness.median(r["p95_ms"] for r in loaded)
    b_p95 = harness.median(r["p95_ms"] for r in idle)
    seconds = API_WARMUP + API_DURATION
    errors = sum(r["errors"] for r in loaded) + sum(r["errors"] for r in idle)
    note = (f"{harness.median(done) / seconds:.0f} jobs/s ran meanwhile ({backend} queue, "
            f"{WORKERS} threads, each job reads 25 customers); rps "
            f"{harness.median(r['rps'] for r in loaded):.0f} vs "
            f"{harness.median(r['rps'] for r in idle):.0f}; {errors} HTTP errors")
    if feeder_errors:
        note += f"; enqueueing failed: {feeder_errors[0]}"
    return [harness.result(
        NAME, f"API p95, GET one customer @{API_CONNECTIONS}, with vs without a job load",
        "ms", o_p95, b_p95, "no jobs running", "report only", None, note=note)]
