"""``/api/v1/tasks``, ``/api/v1/routing-rules``, ``/api/v1/my-work`` and
``POST /api/v1/leads/import``."""

from __future__ import annotations

import uuid

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from clientela.core import access, customers, transfer
from clientela.core.api.auth import current_principal
from clientela.core.db import db
from clientela.core.errors import ValidationError
from clientela.plugins.operational import lead_import, work
from clientela.plugins.operational import work_schemas as schemas
from clientela.plugins.operational.work_models import RoutingRule, Task

tasks_blp = Blueprint("tasks", __name__, url_prefix="/tasks",
                      description="Tasks and activities: calls, meetings, e-mails, to-dos")
routing_blp = Blueprint("routing_rules", __name__, url_prefix="/routing-rules",
                        description="Who gets new leads, cases and tasks nobody was assigned to")
my_work_blp = Blueprint("my_work", __name__, url_prefix="/my-work",
                        description="What is assigned to me, overdue first, and my notifications")
lead_import_blp = Blueprint("lead_import", __name__, url_prefix="/leads",
                            description="Import leads from CSV")


# --- tasks ----------------------------------------------------------------------------------


@tasks_blp.route("")
class Tasks(MethodView):
    @tasks_blp.arguments(schemas.TaskQuery, location="query")
    @tasks_blp.response(200, schemas.Task(many=True))
    @tasks_blp.paginate()
    def get(self, args, pagination_parameters):
        """List the tasks you may see, filtered and sorted (default: due first)."""
        sort = args.pop("sort", None)
        stmt = work.tasks_query(current_principal(), **args)
        stmt = customers.order_by(stmt, Task, sort, work.TASK_SORT, "due_at")
        return customers.paginated(stmt, pagination_parameters)

    @tasks_blp.arguments(schemas.TaskCreate)
    @tasks_blp.response(201, schemas.Task)
    def post(self, data):
        """Create a task; without ``owner_id`` the routing rules pick the assignee (else you)."""
        task = work.create_task(data, current_principal())
        db.session.commit()
        return task


@tasks_blp.route("/<uuid:task_id>")
class TaskById(MethodView):
    @tasks_blp.response(200, schemas.Task)
    def get(self, task_id: uuid.UUID):
        """One task."""
        return work.get_task(task_id, current_principal())

    @tasks_blp.arguments(schemas.TaskInput)
    @tasks_blp.response(200, schemas.Task)
    def patch(self, data, task_id: uuid.UUID):
        """Change a task; ``status: done`` completes it (see ``/complete``)."""
        task = work.update_task(task_id, data, current_principal())
        db.session.commit()
        return task

    @tasks_blp.response(204)
    def delete(self, task_id: uuid.UUID):
        """Delete a task."""
        work.delete_task(task_id, current_principal())
        db.session.commit()


@tasks_blp.route("/<uuid:task_id>/complete")
class TaskComplete(MethodView):
    @tasks_blp.arguments(schemas.CompleteInput)
    @tasks_blp.response(200, schemas.Task)
    def post(self, data, task_id: uuid.UUID):
        """Mark a task done; a task about a customer is recorded on the customer's timeline."""
        task = work.complete_task(task_id, data.get("outcome"), current_principal())
        db.session.commit()
        return task


# --- routing rules --------------------------------------------------------------------------


@routing_blp.route("")
class RoutingRules(MethodView):
    @routing_blp.arguments(schemas.RoutingRuleQuery, location="query")
    @routing_blp.response(200, schemas.RoutingRule(many=True))
    @routing_blp.paginate()
    def get(self, args, pagination_parameters):
        """The routing rules, by entity type and position (the order they are tried in)."""
        return customers.paginated(work.rules_query(current_principal(), **args),
                                   pagination_parameters)

    @routing_blp.arguments(schemas.RoutingRuleInput)
    @routing_blp.response(201, schemas.RoutingRule)
    def post(self, data):
        """Add a rule."""
        rule = work.create_rule(data, current_principal())
        db.session.commit()
        return rule


@routing_blp.route("/<uuid:routing_rule_id>")
class RoutingRuleById(MethodView):
    @routing_blp.response(200, schemas.RoutingRule)
    def get(self, routing_rule_id: uuid.UUID):
        """One rule."""
        return work.get_rule(routing_rule_id, current_principal())

    @routing_blp.arguments(schemas.RoutingRuleUpdate(partial=True))
    @routing_blp.response(200, schemas.RoutingRule)
    def patch(self, data, routing_rule_id: uuid.UUID):
        """Change a rule (a new ``user_ids`` list starts its round robin again)."""
        rule: RoutingRule = work.update_rule(routing_rule_id, data, current_principal())
        db.session.commit()
        return rule

    @routing_blp.response(204)
    def delete(self, routing_rule_id: uuid.UUID):
        """Delete a rule."""
        work.delete_rule(routing_rule_id, current_principal())
        db.session.commit()


# --- my work --------------------------------------------------------------------------------


@my_work_blp.route("")
class MyWork(MethodView):
    @my_work_blp.response(200, schemas.MyWork)
    def get(self):
        """My open tasks and cases, overdue first, then by due time; my unread notifications."""
        return work.my_work(current_principal())


@my_work_blp.route("/notifications")
class Notifications(MethodView):
    @my_work_blp.arguments(schemas.NotificationQuery, location="query")
    @my_work_blp.response(200, schemas.Notification(many=True))
    @my_work_blp.paginate()
    def get(self, args, pagination_parameters):
        """My notifications, newest first."""
        return customers.paginated(work.notifications_query(current_principal(), **args),
                                   pagination_parameters)


@my_work_blp.route("/notifications/<uuid:notification_id>/read")
class NotificationRead(MethodView):
    @my_work_blp.response(200, schemas.Notification)
    def post(self, notification_id: uuid.UUID):
        """Mark one of my notifications read."""
        note = work.mark_read(notification_id, current_principal())
        db.session.commit()
        return note


# --- lead import ----------------------------------------------------------------------------


@lead_import_blp.route("/import")
class LeadImport(MethodView):
    @lead_import_blp.arguments(schemas.LeadImportQuery, location="query")
    @lead_import_blp.doc(requestBody={
        "required": True,
        "description": "A CSV file with a header row (first name, last name, company, "
                       "e-mail, phone, country, source, ...), streamed.",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    })
    @lead_import_blp.response(200, schemas.LeadImportResult)
    def post(self, args):
        """Import leads from the request body; answers with the per-row report.

        Good rows are kept and bad ones reported; with ``all_or_nothing`` one bad row
        refuses the file (422, nothing written). ``dry_run`` writes nothing.
        """
        access.require(current_principal(), "leads:write")  # before naming mappings
        mapping = transforms = None
        if args.get("mapping"):
            mapping, transforms = transfer.saved_mapping(args["mapping"], "leads")
        report = lead_import.import_leads(
            request.stream, current_principal(), filename=args.get("filename"),
            all_or_nothing=args["all_or_nothing"], dry_run=args["dry_run"],
            source_name=args.get("source"), mapping=mapping, transforms=transforms)
        if report.refused:
            raise ValidationError({"rows": [str(e) for e in report.errors]},
                                  message=f"{report.failed} bad row(s): the file was refused "
                                          "and nothing was written")
        return {**report.as_dict(), "lead_ids": report.lead_ids}


BLUEPRINTS = [tasks_blp, routing_blp, my_work_blp, lead_import_blp]
