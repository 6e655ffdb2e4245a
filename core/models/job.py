"""``Job``: the record of one background job of a tenant (what ran, how often, how it ended)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from clientela.core.models.entity import Entity

#: ``queued`` waits for a consumer; ``running`` is held by one (under a lease);
#: ``failed`` failed and waits for its next retry; ``succeeded`` and ``dead`` (out of
#: retries: the dead-letter list) are final.
JOB_STATUSES = ("queued", "running", "succeeded", "failed", "dead")
FINISHED_STATUSES = ("succeeded", "dead")


class Job(Entity):
    """One background job, tracked in its tenant.

    Huey carries only ``(tenant_id, id)``; everything else lives here, so the queue
    (SQLite file or Redis) can be lost without losing work, and a job is seen the
    same way whichever backend runs it.
    """

    __tablename__ = "jobs"

    name: Mapped[str] = mapped_column(sa.String(200))
    #: the Huey queue it was sent to; a consumer only recovers its own queue's jobs
    queue: Mapped[str] = mapped_column(sa.String(100))
    status: Mapped[str] = mapped_column(sa.String(20), default="queued")
    #: ``{"args": [...], "kwargs": {...}}`` as JSON (UUIDs and datetimes tagged)
    payload: Mapped[dict] = mapped_column(default=dict)
    #: a job enqueued again with the same key (in the same tenant) is not run again
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(200))
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=1)
    #: when it is due: the first run, or the next retry
    run_at: Mapped[dt.datetime]
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    #: while running: the consumer holds the job until then and keeps extending it;
    #: while waiting: when the message is sent again in case the queue lost it
    lease_until: Mapped[dt.datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(sa.String(120))
    last_error: Mapped[str | None] = mapped_column(sa.Text)

    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "idempotency_key"),
        sa.CheckConstraint(f"status IN {JOB_STATUSES}", name="status"),
        sa.Index("ix_jobs_tenant_status_lease", "tenant_id", "status", "lease_until"),
        sa.Index("ix_jobs_tenant_created", "tenant_id", "created_at"),
    )


__all__ = ["FINISHED_STATUSES", "JOB_STATUSES", "Job"]
