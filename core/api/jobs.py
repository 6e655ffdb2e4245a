"""``/api/v1/jobs``: the tenant's background jobs, their failures and the dead-letter list."""

from __future__ import annotations

import datetime as dt
import uuid

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from clientela.core import access, jobs
from clientela.core.api.auth import current_principal
from clientela.core.db import db
from clientela.core.models.job import FINISHED_STATUSES, JOB_STATUSES

blp = Blueprint("jobs", __name__, url_prefix="/jobs",
                description="Background jobs: queued, running, failed and dead (admins)")


class JobQuery(Schema):
    status = fields.String(validate=validate.OneOf(JOB_STATUSES))
    name = fields.String()
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class Job(Schema):
    """A job's state. Its arguments are not shown: they may hold personal data."""

    id = fields.UUID()
    name = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    max_attempts = fields.Integer()
    idempotency_key = fields.String(allow_none=True)
    run_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    last_error = fields.String(allow_none=True)
    created_at = fields.DateTime()


class PurgeInput(Schema):
    status = fields.String(required=True, validate=validate.OneOf(FINISHED_STATUSES))
    older_than_days = fields.Integer(validate=validate.Range(min=0))


class PurgeResult(Schema):
    purged = fields.Integer()


@blp.route("")
class Jobs(MethodView):
    @blp.arguments(JobQuery, location="query")
    @blp.response(200, Job(many=True))
    def get(self, args):
        """The tenant's jobs, newest first; filter by status (``dead``: the dead letters)."""
        access.require(current_principal(), "jobs:read")
        return jobs.list_jobs(status=args.get("status"), name=args.get("name"),
                              limit=args["limit"])


@blp.route("/purge")
class JobsPurge(MethodView):
    @blp.arguments(PurgeInput)
    @blp.response(200, PurgeResult)
    def post(self, data):
        """Delete finished jobs (succeeded or dead), optionally only older ones."""
        access.require(current_principal(), "jobs:write")
        older = data.get("older_than_days")
        count = jobs.purge_jobs(data["status"],
                                dt.timedelta(days=older) if older is not None else None)
        db.session.commit()
        return {"purged": count}


@blp.route("/<uuid:job_id>")
class JobById(MethodView):
    @blp.response(200, Job)
    def get(self, job_id: uuid.UUID):
        """One job."""
        access.require(current_principal(), "jobs:read")
        return jobs.get_job(job_id)


@blp.route("/<uuid:job_id>/retry")
class JobRetry(MethodView):
    @blp.response(200, Job)
    def post(self, job_id: uuid.UUID):
        """Queue a dead or failed job again, with a fresh set of attempts."""
        access.require(current_principal(), "jobs:write")
        job = jobs.retry_job(job_id)
        db.session.commit()
        return job
