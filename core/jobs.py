"""Background jobs and schedules: a small, tenant-aware interface over Huey, tracked per tenant.

Plugins (and the core) declare jobs through the ``clientela_jobs(register)`` hook;
service code sends one with ``jobs.enqueue("name", *args)``. Every job is a ``Job`` row
of the tenant it was enqueued in, and runs in a consumer inside ``app.app_context()``
and that tenant's context (origin ``job``, the enqueuing user as actor).

Huey moves only ``(tenant_id, job_id)``; the row is the truth. That is what gives:

* **delivery on commit**: the row is written in the caller's transaction and the
  message is sent after it commits (outside a transaction, at once);
* **at most one run at a time**: a consumer claims the row with a conditional UPDATE,
  so a duplicate message is dropped;
* **retries** with exponential backoff for jobs that declare them, then ``dead`` (the
  dead-letter list), kept until purged;
* **idempotency keys**, unique per tenant: a job enqueued twice with one key runs once;
* **lease recovery**: a running job is held under a lease the consumer keeps
  extending; when a consumer dies (even SIGKILL), another one finds the expired lease
  and runs the job again. Messages the queue lost are sent again the same way.

The queue itself is a driver (entry-point group ``clientela.drivers.jobs``): ``sqlite``
(Huey's SQLite storage in ``CLIENTELA_HOME``, the on-premise default, consumed by a
thread of ``clientela serve``) and ``redis`` (``REDIS_URL``, hosted; run
``clientela worker`` on as many machines as needed).
"""

from __future__ import annotations

import contextvars
import dataclasses
import datetime as dt
import functools
import logging
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import click
import huey
import huey.consumer
import huey.storage
import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from stevedore import DriverManager
from stevedore.exception import NoMatches

from clientela.core import tenancy
from clientela.core.cli_context import tenant_command
from clientela.core.db import db, new_id, utcnow
from clientela.core.errors import (
    ClientelaError,
    ConfigurationError,
    Conflict,
    NotFound,
    PluginError,
    ValidationError,
)
from clientela.core.models import Job, Tenant
from clientela.core.models.job import FINISHED_STATUSES, JOB_STATUSES

log = logging.getLogger(__name__)

DRIVER_GROUP = "clientela.drivers.jobs"
EXTENSION = "clientela.jobs"  # app.extensions key of the app's JobQueue
RUN_TASK = "clientela_run_job"  # the one Huey task: run the Job row named by its message

#: configuration keys (``CLIENTELA_JOBS_…`` in the environment) and their defaults
DEFAULTS: dict[str, Any] = {
    "JOBS_BACKEND": None,  # sqlite | redis | another driver; None: redis if REDIS_URL or hosted
    "JOBS_NAME": "clientela",  # Huey queue name: Redis key prefix, row tag in the SQLite file
    "JOBS_SQLITE_FILE": "jobs.db",  # relative to CLIENTELA_HOME
    "JOBS_WORKERS": 2,  # threads per consumer
    "JOBS_LEASE_SECONDS": 60,  # a running job whose consumer is silent this long runs again
    "JOBS_RESEND_SECONDS": 300,  # a waiting job not started this long after it is due is re-sent
    "JOBS_MAX_RETRY_DELAY": 3600,  # cap of the exponential backoff, seconds
    "JOBS_KEEP_DAYS": 14,  # core.purge_finished_jobs deletes succeeded jobs older than this
    "JOBS_POLL_SECONDS": 1.0,  # longest wait between polls of the queue
}

#: a job whose consumer died this many times more than its attempts allow is dead:
#: a job that kills its process (memory, segfault) must not loop forever
LOST_RUNS_ALLOWED = 2
_HOST = socket.gethostname()[:60]
_OUTBOX = "clientela.jobs.outbox"
_COMMITTING = "clientela.jobs.committing"
_CRON_FIELDS = ("minute", "hour", "day", "month", "day_of_week")


class UnknownJob(ClientelaError):
    """No job of that name is registered (its plugin may be disabled)."""


def setting(app: Flask, key: str) -> Any:
    value = app.config.get(key)
    return DEFAULTS[key] if value is None else value


# --- declaring jobs ----------------------------------------------------------------


class Schedule:
    """When a periodic job is due: a cron-like mapping (UTC) or an interval.

    :param spec: ``{"minute": "*/5", "hour": "8-18", "day_of_week": "1-5"}`` (fields
        ``minute``, ``hour``, ``day``, ``month``, ``day_of_week``; missing ones are
        ``*``), a number of seconds or a ``timedelta`` (``every``), or a function
        ``datetime -> bool`` such as ``huey.crontab(...)``.
    """

    def __init__(self, spec: Any):
        self.every: float | None = None
        self.cron: Callable[[dt.datetime], bool] | None = None
        if isinstance(spec, bool):
            raise ValueError("schedule must be a cron mapping, seconds or a timedelta")
        if isinstance(spec, (int, float, dt.timedelta)):
            seconds = spec.total_seconds() if isinstance(spec, dt.timedelta) else float(spec)
            if seconds < 1:
                raise ValueError("an interval schedule needs at least one second")
            self.every = seconds
        elif isinstance(spec, Mapping):
            unknown = set(spec) - set(_CRON_FIELDS)
            if unknown:
                raise ValueError(f"unknown cron field(s) {', '.join(sorted(unknown))}; "
                                 f"use {', '.join(_CRON_FIELDS)}")
            self.cron = huey.crontab(**{k: str(v) for k, v in spec.items()}, strict=True)
        elif callable(spec):
            self.cron = spec
        else:
            raise ValueError("schedule must be a cron mapping, seconds or a timedelta")
        self.spec = spec

    def slot(self, now: dt.datetime) -> str | None:
        """The period ``now`` falls in, named by its start, if the job is due in it."""
        if self.every is not None:
            start = int(now.timestamp() // self.every * self.every)
            return dt.datetime.fromtimestamp(start, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        minute = now.astimezone(dt.timezone.utc).replace(second=0, microsecond=0, tzinfo=None)
        return minute.strftime("%Y-%m-%dT%H:%MZ") if self.cron(minute) else None

    def __repr__(self) -> str:
        return f"Schedule({self.spec!r})"


@dataclasses.dataclass(frozen=True)
class JobDefinition:
    """A registered job: its function and how it retries and recurs."""

    name: str
    function: Callable[..., Any]
    retries: int = 0
    retry_delay: float = 10.0
    backoff: float = 2.0
    schedule: Schedule | None = None
    plugin: str = "core"

    def delay_before_retry(self, failed_attempt: int, cap: float) -> float:
        """Exponential backoff: ``retry_delay * backoff ** (failed_attempt - 1)``, capped."""
        return min(self.retry_delay * self.backoff ** max(failed_attempt - 1, 0), cap)


@dataclasses.dataclass(frozen=True)
class RunningJob:
    """What a job function may learn about itself: ``jobs.current_job()``."""

    id: uuid.UUID
    name: str
    tenant_id: uuid.UUID
    attempt: int
    max_attempts: int


_current_job: contextvars.ContextVar[RunningJob | None] = contextvars.ContextVar(
    "clientela_job", default=None
)


def current_job() -> RunningJob | None:
    """The job being run by this thread, or ``None`` outside a job."""
    return _current_job.get()


# --- arguments ---------------------------------------------------------------------


def encode_arguments(value: Any) -> Any:
    """JSON for the ``payload`` column; UUIDs, datetimes and dates survive the trip."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, (list, tuple)):
        return [encode_arguments(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: encode_arguments(v) for k, v in value.items()}
    raise TypeError(
        f"a job argument of type {type(value).__name__} cannot be stored: pass ids, "
        "strings, numbers, dates, or lists and dicts of them"
    )


_DECODERS = {"$uuid": uuid.UUID, "$datetime": dt.datetime.fromisoformat,
             "$date": dt.date.fromisoformat}


def decode_arguments(value: Any) -> Any:
    if isinstance(value, list):
        return [decode_arguments(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1:
            (key, inner), = value.items()
            if key in _DECODERS:
                return _DECODERS[key](inner)
        return {k: decode_arguments(v) for k, v in value.items()}
    return value


# --- backends (drivers) -----------------------------------------------------------


class SqliteBackend:
    """Huey's SQLite storage in a file of ``CLIENTELA_HOME``: nothing else to run."""

    #: ``clientela serve`` consumes an embedded queue in a thread of its own process
    embedded = True

    def create_huey(self, name: str, config: Mapping[str, Any]) -> huey.Huey:
        filename = config.get("JOBS_SQLITE_FILE") or DEFAULTS["JOBS_SQLITE_FILE"]
        path = os.path.join(config["HOME"], filename)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        return huey.SqliteHuey(name, filename=path, results=False, utc=True, timeout=10,
                               storage_class=_SqliteQueueStorage)


class _SqliteQueueStorage(huey.storage.SqliteStorage):
    """Huey's SQLite storage with ``synchronous=NORMAL`` instead of an fsync per message.

    Safe here: the ``jobs`` rows are the truth, and a message lost to a power cut is
    sent again by the recovery sweep. (The app's own database runs the same way.)
    """

    def _create_connection(self):
        conn = super()._create_connection()
        conn.execute("pragma synchronous=NORMAL")
        return conn


class RedisBackend:
    """Huey on Redis (``REDIS_URL``): many consumers on many machines."""

    embedded = False

    def create_huey(self, name: str, config: Mapping[str, Any]) -> huey.Huey:
        url = config.get("REDIS_URL")
        if not url:
            raise ConfigurationError("the redis job backend needs REDIS_URL")
        # a blocking pop wakes up at once for a new job; the timeout only bounds how
        # long a stopping consumer waits
        poll = float(config.get("JOBS_POLL_SECONDS") or DEFAULTS["JOBS_POLL_SECONDS"])
        return huey.RedisHuey(name, url=url, results=False, utc=True, blocking=True,
                              read_timeout=poll)


def backend_name(app: Flask) -> str:
    """``JOBS_BACKEND``, else ``redis`` when ``REDIS_URL`` is set or the profile is hosted."""
    configured = app.config.get("JOBS_BACKEND")
    if configured:
        return str(configured)
    if app.config.get("REDIS_URL") or app.config.get("PROFILE") == "hosted":
        return "redis"
    return "sqlite"


def load_backend(name: str):
    try:
        return DriverManager(DRIVER_GROUP, name, invoke_on_load=True).driver
    except NoMatches:
        raise ConfigurationError(
            f"unknown job backend '{name}' (JOBS_BACKEND): use 'sqlite' or 'redis'"
        ) from None


# --- the queue ---------------------------------------------------------------------


class JobQueue:
    """The jobs an app knows, the Huey queue they travel on, and the consumer's work.

    One per app (``queue_for(app)``); tests and benchmarks may build their own with a
    different ``backend`` or ``name``.
    """

    def __init__(self, app: Flask, backend: str | None = None, name: str | None = None, *,
                 lease_seconds: float | None = None, collect: bool = True):
        self.app = app
        self.backend = backend or backend_name(app)
        self.name = name or str(setting(app, "JOBS_NAME"))
        self.lease = float(lease_seconds or setting(app, "JOBS_LEASE_SECONDS"))
        self.resend = float(setting(app, "JOBS_RESEND_SECONDS"))
        self.max_retry_delay = float(setting(app, "JOBS_MAX_RETRY_DELAY"))
        self.driver = load_backend(self.backend)
        self.definitions: dict[str, JobDefinition] = {}
        self._huey: huey.Huey | None = None
        self._task = None
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._running: dict[str, tuple[uuid.UUID, uuid.UUID]] = {}  # lease owner -> row
        self._fired: dict[str, str] = {}  # schedule name -> last slot fired here
        if collect:
            self._collect()

    def __repr__(self) -> str:
        return f"<JobQueue {self.backend}:{self.name}>"

    @property
    def embedded(self) -> bool:
        return bool(getattr(self.driver, "embedded", False))

    # declaring

    def _collect(self) -> None:
        caller = self.app.extensions["clientela"].plugins.hook.clientela_jobs
        for impl in reversed(caller.get_hookimpls()):  # core first
            try:
                impl.function(register=functools.partial(self.register, plugin=impl.plugin_name))
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(impl.plugin_name, f"failed in clientela_jobs: {exc}") from exc

    def register(self, function: Callable[..., Any], name: str | None = None, *,
                 retries: int = 0, retry_delay: float = 10.0, backoff: float = 2.0,
                 schedule: Any = None, plugin: str = "core") -> JobDefinition:
        """Declare a job; what the ``clientela_jobs`` hook's ``register`` does."""
        if not callable(function):
            raise PluginError(plugin, f"registered {function!r} as a job, which is not callable")
        name = name or f"{plugin}.{function.__name__}"
        if len(name) > 200:
            raise PluginError(plugin, f"job name {name!r} is longer than 200 characters")
        if name in self.definitions:
            other = self.definitions[name].plugin
            raise PluginError(plugin, f"job {name!r} is already registered by '{other}'")
        if not isinstance(retries, int) or retries < 0:
            raise PluginError(plugin, f"job {name!r}: retries must be a whole number >= 0")
        if retry_delay < 0 or backoff < 1:
            raise PluginError(plugin, f"job {name!r}: retry_delay must be >= 0 and backoff >= 1")
        try:
            when = Schedule(schedule) if schedule is not None else None
        except ValueError as exc:
            raise PluginError(plugin, f"job {name!r}: {exc}") from exc
        definition = JobDefinition(name, function, retries, float(retry_delay), float(backoff),
                                   when, plugin)
        self.definitions[name] = definition
        return definition

    # the Huey side

    @property
    def huey(self) -> huey.Huey:
        # a forked child (a gunicorn worker) must not share its parent's connection
        with self._lock:
            if self._huey is None or self._pid != os.getpid():
                instance = self.driver.create_huey(self.name, self.app.config)
                self._task = instance.task(name=RUN_TASK)(self._run_message)
                self._huey, self._pid = instance, os.getpid()
            return self._huey

    def check(self) -> None:
        """Raise ``ConfigurationError`` when the queue cannot be reached."""
        try:
            self.huey.pending_count()
        except ClientelaError:
            raise
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigurationError(f"job queue ({self.backend}) unreachable: {reason}") from exc

    def send(self, tenant_id: uuid.UUID, job_id: uuid.UUID, run_at: dt.datetime | None) -> None:
        """Put the message for a committed row on the queue (failures are only logged:
        the row stays waiting and the recovery sweep sends it again)."""
        try:
            self.huey  # noqa: B018 - creates the task wrapper in this process
            delay = (run_at - utcnow()).total_seconds() if run_at is not None else 0
            args = (str(tenant_id), str(job_id))
            if delay > 0:
                self._task.schedule(args=args, delay=delay)
            else:
                self._task(*args)
        except Exception:
            log.exception("could not send job %s to the %s queue '%s'; it will be sent again",
                          job_id, self.backend, self.name)

    def flush(self) -> None:
        """Drop every message of this queue (the rows stay): for tests and benchmarks."""
        self.huey.flush()

    # enqueueing

    def enqueue(self, name: str, *args: Any, idempotency_key: str | None = None,
                delay: float | dt.timedelta | None = None, **kwargs: Any) -> uuid.UUID:
        """See the module-level ``enqueue``."""
        definition = self.definitions.get(name)
        if definition is None:
            raise UnknownJob(f"no job named '{name}' is registered (is its plugin enabled?)")
        tenant_id = tenancy.current_tenant_id()
        if isinstance(delay, dt.timedelta):
            delay = delay.total_seconds()
        if idempotency_key is not None and not (0 < len(idempotency_key) <= 200):
            raise ValidationError({"idempotency_key": ["use 1 to 200 characters"]})
        row = self._new_row(name, tenant_id, list(args), kwargs, idempotency_key, delay or 0,
                            tenancy.current_actor_id())
        session = db.session()
        if session.in_transaction() and not session.info.get(_COMMITTING):
            return self._insert(session, row)
        # nothing to wait for (or a postcommit hook, where the session cannot write):
        # the job gets a transaction of its own and is sent at once
        with Session(db.engine) as own:
            job_id = self._insert(own, row)
            own.commit()
        return job_id

    def _insert(self, session: Session, row: dict[str, Any]) -> uuid.UUID:
        # a plain INSERT statement, not session.add(): job bookkeeping is not written
        # to the audit trail row by row (it would double the writes of every job)
        key = row["idempotency_key"]
        dialect = session.get_bind().dialect.name
        if key is None:
            session.execute(sa.insert(Job), [row])
        elif dialect in ("postgresql", "sqlite"):
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            stmt = insert(Job).on_conflict_do_nothing(
                index_elements=["tenant_id", "idempotency_key"]
            ).returning(Job.id)
            if session.execute(stmt, [row]).scalar() is None:
                return self._existing(session, key)
        else:
            if self._existing(session, key, missing_ok=True) is not None:
                return self._existing(session, key)
            session.execute(sa.insert(Job), [row])
        _outbox(session).append((self, row["tenant_id"], row["id"], row["run_at"]))
        return row["id"]

    @staticmethod
    def _existing(session: Session, key: str, missing_ok: bool = False) -> uuid.UUID | None:
        found = session.execute(
            sa.select(Job.id).where(Job.idempotency_key == key)
        ).scalar_one_or_none()
        if found is None and not missing_ok:
            raise Conflict(f"job with idempotency key {key!r} vanished while enqueueing")
        return found

    # running (in a consumer's worker thread)

    def _run_message(self, tenant_id: str, job_id: str) -> None:
        self.run(uuid.UUID(tenant_id), uuid.UUID(job_id))

    def run(self, tenant_id: uuid.UUID, job_id: uuid.UUID) -> str | None:
        """Claim the job and run it; returns its new status, or ``None`` when another
        consumer has it (or it is finished, or gone)."""
        owner = f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        with self.app.app_context(), tenancy.tenant_context(tenant_id, origin="job"):
            now = utcnow()
            job = self._claim(job_id, owner, now)
            db.session.commit()
            if job is None:
                return None
            info = RunningJob(job_id, job.name, tenant_id, job.attempts, job.max_attempts)
            actor, payload = job.created_by, job.payload
            definition = self.definitions.get(job.name)
            if definition is None:
                return self._failed(info, owner, None,
                                    f"UnknownJob: no job named '{info.name}' is registered here")
            self._running[owner] = (tenant_id, job_id)
            token = _current_job.set(info)
            try:
                with tenancy.tenant_context(tenant_id, actor, origin="job"):
                    definition.function(*decode_arguments(payload.get("args", [])),
                                        **decode_arguments(payload.get("kwargs", {})))
                    # success is written in the job's own transaction: its writes and
                    # "succeeded" commit together, or neither does
                    done = _update(Job.lease_owner == owner, job_id, status="succeeded",
                                   finished_at=utcnow(), lease_until=None, lease_owner=None)
                    if not done:
                        db.session.rollback()
                        log.warning("job %s lost its lease while running; its work was "
                                    "rolled back and another consumer runs it", job_id)
                        return None
                    db.session.commit()
                    return "succeeded"
            except Exception as exc:
                db.session.rollback()
                text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                return self._failed(info, owner, definition, text)
            finally:
                _current_job.reset(token)
                self._running.pop(owner, None)

    def _claim(self, job_id: uuid.UUID, owner: str, now: dt.datetime):
        """Take the job (waiting, or running under an expired lease); its row, or None."""
        claim = (
            sa.update(Job)
            .where(Job.id == job_id,
                   sa.or_(Job.status.in_(("queued", "failed")),
                          sa.and_(Job.status == "running", Job.lease_until < now)))
            .values(status="running", attempts=Job.attempts + 1, started_at=now,
                    finished_at=None, lease_owner=owner, updated_at=now,
                    lease_until=now + dt.timedelta(seconds=self.lease))
            .execution_options(synchronize_session=False)
        )
        wanted = (Job.name, Job.attempts, Job.max_attempts, Job.created_by, Job.payload)
        if db.session().get_bind().dialect.update_returning:
            # one round trip per claim: this is on every job's path
            return db.session.execute(claim.returning(*wanted)).one_or_none()
        if db.session.execute(claim).rowcount != 1:
            return None
        return db.session.execute(sa.select(*wanted).where(Job.id == job_id)).one()

    def _failed(self, info: RunningJob, owner: str, definition: JobDefinition | None,
                error: str) -> str | None:
        now = utcnow()
        error = error.strip()[-8000:]
        if definition is not None and info.attempt < info.max_attempts:
            run_at = now + dt.timedelta(
                seconds=definition.delay_before_retry(info.attempt, self.max_retry_delay))
            changed = _update(Job.lease_owner == owner, info.id, status="failed",
                              run_at=run_at, last_error=error, lease_owner=None,
                              lease_until=run_at + dt.timedelta(seconds=self.resend))
            if changed:
                _outbox(db.session()).append((self, info.tenant_id, info.id, run_at))
            status = "failed"
        else:
            changed = _update(Job.lease_owner == owner, info.id, status="dead", finished_at=now,
                              last_error=error, lease_owner=None, lease_until=None)
            status = "dead"
            if changed:
                log.warning("job %s (%s) is dead after %d attempt(s): %s", info.id, info.name,
                            info.attempt, error.splitlines()[-1] if error else "")
        db.session.commit()
        return status if changed else None

    # the consumer's housekeeping: heartbeat, recovery, schedules

    def heartbeat(self) -> None:
        """Extend the lease of the jobs this process is running."""
        running = dict(self._running)
        if not running:
            return
        with self.app.app_context():
            until = utcnow() + dt.timedelta(seconds=self.lease)
            for owner, (tenant_id, job_id) in running.items():
                with tenancy.tenant_context(tenant_id, origin="job"):
                    _update(sa.and_(Job.lease_owner == owner, Job.status == "running"), job_id,
                            lease_until=until)
                    db.session.commit()

    def _tenant_ids(self) -> list[uuid.UUID]:
        ids = db.session.execute(
            sa.select(Tenant.id).where(Tenant.status == "active").order_by(Tenant.id)
        ).scalars().all()
        db.session.rollback()  # end the read before writing (SQLite)
        return list(ids)

    def recover(self) -> int:
        """Run again the jobs whose consumer died, send again the messages the queue lost.

        Goes tenant by tenant, inside each tenant's context, so that it works the same
        under Row-Level Security. Returns how many jobs it sent.
        """
        sent = 0
        with self.app.app_context():
            for tenant_id in self._tenant_ids():
                with tenancy.tenant_context(tenant_id, origin="job"):
                    sent += self._recover_tenant()
        return sent

    def _recover_tenant(self) -> int:
        now = utcnow()
        rows = db.session.execute(
            sa.select(Job.id, Job.status, Job.attempts, Job.max_attempts, Job.run_at).where(
                Job.queue == self.name,
                Job.status.in_(("queued", "failed", "running")),
                Job.lease_until < now,
            )
        ).all()
        sent = 0
        resend_at = now + dt.timedelta(seconds=self.resend)
        expired = sa.and_(Job.status == "running", Job.lease_until < now)
        for row in rows:
            if row.status == "running" and row.attempts >= row.max_attempts + LOST_RUNS_ALLOWED:
                if _update(expired, row.id, status="dead", finished_at=now, lease_owner=None,
                           lease_until=None, last_error=f"the consumer running it stopped "
                           f"{row.attempts} times (lease expired); not run again"):
                    log.warning("job %s is dead: its consumer died %d times", row.id,
                                row.attempts)
                continue
            if row.status == "running":
                log.warning("job %s: its consumer stopped (lease expired); running it again",
                            row.id)
                changed = _update(expired, row.id, status="queued", run_at=now,
                                  lease_owner=None, lease_until=resend_at)
                run_at = now
            else:
                changed = _update(sa.and_(Job.status == row.status, Job.lease_until < now),
                                  row.id, lease_until=resend_at)
                run_at = row.run_at
            if changed:
                _outbox(db.session()).append((self, tenancy.current_tenant_id(), row.id, run_at))
                sent += 1
        db.session.commit()
        return sent

    def fire_schedules(self, now: dt.datetime | None = None) -> int:
        """Enqueue, in every active tenant, each periodic job due now (of the plugins the
        tenant may use); returns how many.

        Every consumer may call this: the idempotency key ``schedule:<name>:<slot>``
        lets one run per tenant and period through.
        """
        now = now or utcnow()
        due = []
        for definition in self.definitions.values():
            if definition.schedule is None:
                continue
            slot = definition.schedule.slot(now)
            if slot is None or self._fired.get(definition.name) == slot:
                continue
            self._fired[definition.name] = slot
            due.append((definition.name, f"schedule:{definition.name}:{slot}"))
        if not due:
            return 0
        registry = self.app.extensions["clientela"].plugins
        with self.app.app_context():
            for tenant_id in self._tenant_ids():
                with tenancy.tenant_context(tenant_id, origin="job"):
                    # a plugin hidden from the tenant (hosted plans) runs nothing for it
                    hidden = (registry.hidden_from_current_tenant()
                              if registry.hidden_from_current_tenant else ())
                    for name, key in due:
                        if self.definitions[name].plugin in hidden:
                            continue
                        row = self._new_row(name, tenant_id, [], {}, key, 0, None)
                        self._insert(db.session(), row)
                    db.session.commit()
        return len(due)

    def _new_row(self, name: str, tenant_id: uuid.UUID, args: list, kwargs: dict,
                 key: str | None, delay: float, actor: uuid.UUID | None) -> dict[str, Any]:
        """The values of a new job (for an INSERT statement: no defaults apply there)."""
        now = utcnow()
        run_at = now + dt.timedelta(seconds=delay)
        return {
            "id": new_id(), "tenant_id": tenant_id, "name": name, "queue": self.name,
            "status": "queued",
            "payload": {"args": encode_arguments(args), "kwargs": encode_arguments(kwargs)},
            "idempotency_key": key, "attempts": 0,
            "max_attempts": self.definitions[name].retries + 1, "run_at": run_at,
            "lease_until": run_at + dt.timedelta(seconds=self.resend), "created_by": actor,
            "created_at": now, "updated_at": now, "attributes": {},
        }

    # consumers

    def consumer(self, workers: int | None = None, periodic: bool = True,
                 shutdown_timeout: float | None = 25.0) -> JobConsumer:
        """A Huey consumer of this queue (threads), with heartbeat, recovery and schedules."""
        return JobConsumer(self, workers=int(workers or setting(self.app, "JOBS_WORKERS")),
                           periodic=periodic, shutdown_timeout=shutdown_timeout)

    def start(self, workers: int | None = None, periodic: bool = True) -> JobConsumer:
        """Start a consumer in background threads of this process; ``.stop()`` it."""
        consumer = self.consumer(workers, periodic)
        consumer.start_threads()
        return consumer


def _update(condition, job_id: uuid.UUID, **values: Any) -> bool:
    """Change one job of the current tenant if ``condition`` holds; True when it did.

    An UPDATE statement rather than attribute changes: the condition makes each state
    change atomic between consumers (a claim cannot be won twice).
    """
    values.setdefault("updated_at", utcnow())
    result = db.session.execute(
        sa.update(Job).where(Job.id == job_id, condition).values(**values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def _outbox(session: Session) -> list:
    return session.info.setdefault(_OUTBOX, [])


class _Every(threading.Thread):
    """Call ``work`` every ``seconds`` until the consumer stops (a thread of its own, so a
    slow sweep over many tenants never holds up Huey's scheduler or the heartbeat)."""

    def __init__(self, name: str, seconds: float, work: Callable[[], Any],
                 stop_flag: threading.Event, first_after: float = 0.0):
        super().__init__(name=name, daemon=True)
        self.seconds, self.work, self.stop_flag = seconds, work, stop_flag
        self.first_after = first_after

    def run(self) -> None:
        due = time.monotonic() + self.first_after
        while not self.stop_flag.is_set():
            wait = due - time.monotonic()
            if wait > 0 and self.stop_flag.wait(wait):
                return
            due = time.monotonic() + self.seconds
            try:
                self.work()
            except Exception:
                log.exception("job housekeeping (%s) failed", self.name)


class JobConsumer(huey.consumer.Consumer):
    """A Huey consumer (worker threads) of a ``JobQueue``, with our housekeeping threads:
    the heartbeat of running jobs, lease recovery, and periodic schedules."""

    def __init__(self, queue: JobQueue, workers: int, periodic: bool,
                 shutdown_timeout: float | None):
        self.queue = queue
        self.fire_schedules = periodic
        poll = float(setting(queue.app, "JOBS_POLL_SECONDS"))
        super().__init__(queue.huey, workers=workers, periodic=False, worker_type="thread",
                         initial_delay=min(0.05, poll), backoff=1.5, max_delay=poll,
                         scheduler_interval=1, shutdown_timeout=shutdown_timeout,
                         graceful_signal="TERM")
        lease = queue.lease
        self.housekeeping = [
            _Every("jobs-heartbeat", lease / 3, queue.heartbeat, self.stop_flag, lease / 3),
            # at start: find what a dead consumer left behind
            _Every("jobs-recovery", max(1.0, min(lease, queue.resend) / 2), queue.recover,
                   self.stop_flag),
        ]
        if periodic:
            self.housekeeping.append(
                _Every("jobs-schedules", 1.0, queue.fire_schedules, self.stop_flag))

    def start(self) -> None:  # what run() calls: Huey's threads and signal handlers
        super().start()
        for thread in self.housekeeping:
            thread.start()

    def start_threads(self) -> None:
        """Start the threads without taking over signals: for ``serve`` and tests."""
        self.scheduler.start()
        for _, worker in self.worker_threads:
            worker.start()
        for thread in self.housekeeping:
            thread.start()

    def stop(self, graceful: bool = True) -> None:
        """Stop; ``graceful`` (the default here) lets running jobs finish first."""
        super().stop(graceful=graceful)
        for thread in self.housekeeping:
            if thread.is_alive():
                thread.join(5)


# --- session events: send on commit -----------------------------------------------


@event.listens_for(Session, "after_commit", insert=True)
def _send_committed(session: Session) -> None:
    # runs before the postcommit hooks; mark the session so that a hook enqueueing a
    # job gets a transaction of its own (this one can no longer write)
    session.info[_COMMITTING] = True
    for queue, tenant_id, job_id, run_at in session.info.pop(_OUTBOX, []):
        queue.send(tenant_id, job_id, run_at)


@event.listens_for(Session, "after_transaction_end")
def _forget_unsent(session: Session, transaction) -> None:
    if transaction.parent is None:
        # whatever is left was enqueued in a transaction that did not commit
        session.info.pop(_OUTBOX, None)
        session.info.pop(_COMMITTING, None)


# --- the app's queue and the module-level interface --------------------------------

_queues_lock = threading.Lock()


def queue_for(app: Flask) -> JobQueue:
    """The app's ``JobQueue``, built on first use."""
    queue = app.extensions.get(EXTENSION)
    if queue is None:
        with _queues_lock:
            queue = app.extensions.get(EXTENSION)
            if queue is None:
                queue = app.extensions[EXTENSION] = JobQueue(app)
    return queue


def current_queue() -> JobQueue:
    return queue_for(current_app._get_current_object())


def enqueue(name: str, *args: Any, idempotency_key: str | None = None,
            delay: float | dt.timedelta | None = None, **kwargs: Any) -> uuid.UUID:
    """Run job ``name`` in the background, in the current tenant; returns the job's id.

    :param args, kwargs: the job function's arguments: ids, strings, numbers, dates,
        and lists or dicts of them (stored as JSON; UUIDs and datetimes come back as
        such).
    :param idempotency_key: if a job with this key exists in the tenant, nothing is
        enqueued and its id is returned: a job enqueued twice runs once.
    :param delay: seconds (or a ``timedelta``) before it is due.

    The job joins the transaction in progress and is sent when it commits (a rollback
    cancels it). Outside a transaction, or from a postcommit hook, it is committed and
    sent at once. The job runs as the current tenant and user, with origin ``job``.
    """
    return current_queue().enqueue(name, *args, idempotency_key=idempotency_key, delay=delay,
                                   **kwargs)


def start_embedded_consumer(app: Flask, workers: int | None = None) -> JobConsumer | None:
    """Start consumer threads in this process if the job queue is embedded (SQLite)."""
    queue = queue_for(app)
    if not queue.embedded:
        return None
    return queue.start(workers)


def forget_inherited_connections(app: Flask) -> None:
    """In a forked child: drop the parent's pooled connections (the parent's job thread
    keeps using them) without closing them."""
    with app.app_context():
        db.engine.dispose(close=False)


# --- services: what the CLI and the API call ---------------------------------------


def list_jobs(status: str | None = None, name: str | None = None,
              limit: int | None = 100) -> list[Job]:
    """The current tenant's jobs, newest first, optionally of one status or name."""
    if status is not None and status not in JOB_STATUSES:
        raise ValidationError({"status": [f"must be one of {', '.join(JOB_STATUSES)}"]})
    stmt = sa.select(Job).order_by(Job.created_at.desc(), Job.id.desc())
    if status is not None:
        stmt = stmt.where(Job.status == status)
    if name is not None:
        stmt = stmt.where(Job.name == name)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(db.session.execute(stmt).scalars())


def get_job(job_id: uuid.UUID | str) -> Job:
    job_id = _as_uuid(job_id)
    job = db.session.execute(sa.select(Job).where(Job.id == job_id)).scalar_one_or_none()
    if job is None:
        raise NotFound(f"no job {job_id}")
    return job


def retry_job(job_id: uuid.UUID | str) -> Job:
    """Queue a dead (or failed, waiting) job again, with a fresh set of attempts.

    Flushes; the job is sent when the caller commits. Audited like any change.
    """
    job = get_job(job_id)
    if job.status not in ("dead", "failed"):
        raise Conflict(f"job {job.id} is {job.status}: only dead or failed jobs can be retried")
    queue = current_queue()
    now = utcnow()
    job.status, job.attempts, job.run_at, job.finished_at = "queued", 0, now, None
    job.lease_owner, job.lease_until = None, now + dt.timedelta(seconds=queue.resend)
    job.queue = queue.name
    db.session.flush()
    _outbox(db.session()).append((queue, job.tenant_id, job.id, now))
    return job


def purge_jobs(status: str, older_than: dt.timedelta | None = None) -> int:
    """Delete the current tenant's finished jobs of ``status``; returns how many.

    Only ``succeeded`` and ``dead`` jobs can be purged; a job that may still run
    cannot. Flushes; the caller commits.
    """
    if status not in FINISHED_STATUSES:
        raise ValidationError(
            {"status": [f"only finished jobs can be purged: {' or '.join(FINISHED_STATUSES)}"]})
    stmt = sa.delete(Job).where(Job.status == status)
    if older_than is not None:
        stmt = stmt.where(Job.finished_at < utcnow() - older_than)
    result = db.session.execute(stmt.execution_options(synchronize_session=False))
    return result.rowcount


def _as_uuid(value: uuid.UUID | str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound(f"no job {value}") from None


# --- the core's own jobs ----------------------------------------------------------


def purge_finished_jobs() -> None:
    """Delete the tenant's succeeded jobs older than ``JOBS_KEEP_DAYS`` (daily)."""
    days = float(setting(current_app, "JOBS_KEEP_DAYS"))
    purge_jobs("succeeded", older_than=dt.timedelta(days=days))


def register_core_jobs(register: Callable[..., Any]) -> None:
    register(purge_finished_jobs, name="core.purge_finished_jobs",
             schedule={"minute": "17", "hour": "3"})


# --- commands ----------------------------------------------------------------------


def _first_line(text: str | None) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def _as_row(job: Job) -> dict[str, Any]:
    def when(value):
        return value.isoformat() if value else None

    return {
        "id": str(job.id), "name": job.name, "status": job.status,
        "attempts": job.attempts, "max_attempts": job.max_attempts,
        "idempotency_key": job.idempotency_key, "created_at": when(job.created_at),
        "run_at": when(job.run_at), "started_at": when(job.started_at),
        "finished_at": when(job.finished_at), "last_error": _first_line(job.last_error) or None,
    }


@click.group("jobs")
def jobs_group():
    """Background jobs of the tenant: list them, retry dead ones, purge finished ones."""


@jobs_group.command("list")
@click.option("--status", type=click.Choice(JOB_STATUSES), help="Only jobs in this state.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@tenant_command
def jobs_list(tenant, status, limit, as_json):
    """List jobs, newest first: state, attempts, last error."""
    import json

    rows = [_as_row(job) for job in list_jobs(status, limit=limit)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no jobs" + (f" {status}" if status else ""))
        return
    for row in rows:
        error = f"  {row['last_error']}" if row["last_error"] else ""
        click.echo(f"{row['id']}  {row['status']:<9} {row['attempts']}/{row['max_attempts']}  "
                   f"{row['created_at'][:19]}  {row['name']}{error}")


@jobs_group.command("retry")
@click.argument("job_id")
@tenant_command
def jobs_retry(tenant, job_id):
    """Queue a dead or failed job again (with a fresh set of attempts)."""
    job = retry_job(job_id)
    db.session.commit()
    click.echo(f"queued {job.id} ({job.name}) again")


@jobs_group.command("purge")
@click.option("--status", required=True, type=click.Choice(FINISHED_STATUSES),
              help="Which finished jobs to delete.")
@click.option("--older-than", "days", type=click.FloatRange(min=0), metavar="DAYS",
              help="Only jobs finished more than DAYS days ago.")
@tenant_command
def jobs_purge(tenant, status, days):
    """Delete finished jobs (succeeded, or dead: the dead-letter list)."""
    count = purge_jobs(status, dt.timedelta(days=days) if days is not None else None)
    db.session.commit()
    click.echo(f"purged {count} {status} job{'s' if count != 1 else ''}")


@click.command("worker")
@click.option("--workers", type=click.IntRange(1, 256),
              help="Threads running jobs (default: JOBS_WORKERS, 2).")
@click.option("--periodic/--no-periodic", default=True, show_default=True,
              help="Also enqueue periodic jobs when they are due.")
def worker_command(workers, periodic):
    """Run a job consumer until stopped (SIGTERM lets running jobs finish first)."""
    from clientela.core import migrations

    app = current_app._get_current_object()
    if migrations.pending_heads(app):
        raise click.ClickException(
            "the database is not current: run 'clientela db upgrade' (or 'clientela init')"
        )
    queue = queue_for(app)
    queue.check()
    consumer = queue.consumer(workers, periodic)
    click.echo(f"worker: {consumer.workers} thread(s) on the {queue.backend} queue "
               f"'{queue.name}', {len(queue.definitions)} job(s) known")
    consumer.run()


COMMANDS = [jobs_group, worker_command]

__all__ = [
    "COMMANDS", "DEFAULTS", "JobConsumer", "JobDefinition", "JobQueue", "RunningJob",
    "Schedule", "UnknownJob", "current_job", "current_queue", "enqueue", "get_job",
    "list_jobs", "purge_jobs", "queue_for", "retry_job", "start_embedded_consumer",
]
