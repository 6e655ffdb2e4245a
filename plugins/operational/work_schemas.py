"""marshmallow schemas of tasks, routing rules, my work, cases, SLA policies and lead import."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from clientela.core.api import schemas as core_schemas
from clientela.core.models.customer import DIRECTIONS
from clientela.plugins.operational.schemas import Stamped
from clientela.plugins.operational.work_models import (
    CASE_STATUSES,
    PRIORITIES,
    RELATED_TYPES,
    ROUTED_TYPES,
    ROUTING_OPERATORS,
    ROUTING_STRATEGIES,
    TASK_KINDS,
    TASK_STATUSES,
)

# --- tasks -----------------------------------------------------------------------------------


class TaskInput(Schema):
    title = fields.String(validate=validate.Length(min=1, max=300))
    description = fields.String(validate=validate.Length(max=10000))
    kind = fields.String(validate=validate.OneOf(TASK_KINDS))
    status = fields.String(validate=validate.OneOf(TASK_STATUSES))
    priority = fields.String(validate=validate.OneOf(PRIORITIES))
    due_at = fields.AwareDateTime(allow_none=True, default_timezone=None)
    owner_id = fields.UUID(allow_none=True, metadata={
        "description": "the assignee; default: the routing rules, else you"})
    related_type = fields.String(allow_none=True, validate=validate.OneOf(RELATED_TYPES))
    related_id = fields.UUID(allow_none=True, metadata={
        "description": "a customer, lead, deal or case of the tenant"})
    outcome = fields.String(allow_none=True, validate=validate.Length(max=500))
    attributes = fields.Dict(keys=fields.String())


class TaskCreate(TaskInput):
    title = fields.String(required=True, validate=validate.Length(min=1, max=300))


class Task(TaskInput, Stamped):
    customer_id = fields.UUID(dump_only=True, allow_none=True)
    completed_at = fields.DateTime(dump_only=True, allow_none=True)
    reminded_at = fields.DateTime(dump_only=True, allow_none=True)
    created_by = fields.UUID(dump_only=True, allow_none=True)


class TaskQuery(Schema):
    status = fields.String(validate=validate.OneOf(TASK_STATUSES))
    kind = fields.String(validate=validate.OneOf(TASK_KINDS))
    priority = fields.String(validate=validate.OneOf(PRIORITIES))
    owner_id = fields.UUID()
    related_type = fields.String(validate=validate.OneOf(RELATED_TYPES))
    related_id = fields.UUID()
    customer_id = fields.UUID()
    due_before = fields.AwareDateTime()
    open = fields.Boolean(metadata={"description": "open or in progress (true), or not"})
    overdue = fields.Boolean(metadata={"description": "open and past its due time"})
    sort = fields.String(metadata={"description": "e.g. `due_at,-priority` (default due_at)"})


class CompleteInput(Schema):
    outcome = fields.String(allow_none=True, validate=validate.Length(max=500))


# --- routing rules --------------------------------------------------------------------------


class Condition(Schema):
    field = fields.String(required=True, validate=validate.Length(min=1, max=60))
    operator = fields.String(load_default="equals", validate=validate.OneOf(ROUTING_OPERATORS))
    value = fields.Raw(allow_none=True, metadata={
        "description": "a string, a number, or a list for `in`"})


class RoutingRuleInput(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    entity_type = fields.String(required=True, validate=validate.OneOf(ROUTED_TYPES))
    position = fields.Integer(load_default=0, validate=validate.Range(min=0, max=100000))
    active = fields.Boolean(load_default=True)
    conditions = fields.List(fields.Nested(Condition), load_default=list,
                             validate=validate.Length(max=20))
    strategy = fields.String(load_default="user", validate=validate.OneOf(ROUTING_STRATEGIES))
    user_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(min=1, max=200))


class RoutingRuleUpdate(RoutingRuleInput):
    """Every field optional (used with ``partial=True``)."""


class RoutingRule(RoutingRuleInput, Stamped):
    cursor = fields.Integer(dump_only=True, metadata={
        "description": "round robin: records assigned so far"})


class RoutingRuleQuery(Schema):
    entity_type = fields.String(validate=validate.OneOf(ROUTED_TYPES))


# --- notifications and my work ---------------------------------------------------------------


class Notification(Schema):
    id = fields.UUID()
    kind = fields.String()
    subject = fields.String()
    related_type = fields.String()
    related_id = fields.UUID()
    created_at = fields.DateTime()
    read_at = fields.DateTime(allow_none=True)


class NotificationQuery(Schema):
    unread = fields.Boolean()


class WorkItem(Schema):
    type = fields.String(metadata={"description": "task or case"})
    id = fields.UUID()
    title = fields.String()
    status = fields.String()
    priority = fields.String()
    kind = fields.String(allow_none=True, metadata={
        "description": "a task's kind, a case's category"})
    due_at = fields.DateTime(allow_none=True, metadata={
        "description": "a task's due time; a case's next SLA deadline"})
    overdue = fields.Boolean()
    related_type = fields.String(allow_none=True)
    related_id = fields.UUID(allow_none=True)
    customer_id = fields.UUID(allow_none=True)


class MyWork(Schema):
    items = fields.List(fields.Nested(WorkItem))
    overdue = fields.Integer()
    notifications = fields.List(fields.Nested(Notification))


# --- SLA policies ---------------------------------------------------------------------------


class SlaTarget(Schema):
    first_response_minutes = fields.Integer(allow_none=True,
                                            validate=validate.Range(min=0, max=525600))
    resolution_minutes = fields.Integer(allow_none=True, validate=validate.Range(min=0, max=525600))


class SlaPolicyInput(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    is_default = fields.Boolean()
    active = fields.Boolean(load_default=True)
    targets = fields.Dict(keys=fields.String(), values=fields.Nested(SlaTarget), load_default=dict,
                          metadata={"description": "{priority: {first_response_minutes, "
                                                   "resolution_minutes}} in business minutes"})
    business_days = fields.List(fields.Integer(validate=validate.Range(min=1, max=7)),
                                load_default=lambda: [1, 2, 3, 4, 5],
                                metadata={"description": "ISO weekdays, 1 = Monday"})
    start_hour = fields.Integer(load_default=9, validate=validate.Range(min=0, max=23))
    end_hour = fields.Integer(load_default=17, validate=validate.Range(min=1, max=24))
    timezone = fields.String(load_default="UTC", validate=validate.Length(min=1, max=64))
    escalation_user_id = fields.UUID(allow_none=True, metadata={
        "description": "a breached case is reassigned to this user"})


class SlaPolicyUpdate(SlaPolicyInput):
    """Every field optional (used with ``partial=True``)."""


class SlaPolicy(SlaPolicyInput, Stamped):
    pass


# --- cases ----------------------------------------------------------------------------------


class CaseInput(Schema):
    subject = fields.String(validate=validate.Length(min=1, max=500))
    description = fields.String(validate=validate.Length(max=20000))
    customer_id = fields.UUID(allow_none=True)
    priority = fields.String(validate=validate.OneOf(PRIORITIES))
    status = fields.String(validate=validate.OneOf(CASE_STATUSES))
    category = fields.String(allow_none=True, validate=validate.Length(max=100))
    channel = fields.String(allow_none=True, validate=validate.Length(max=40),
                            metadata={"description": "where it came from: phone, email, ..."})
    queue = fields.String(allow_none=True, validate=validate.Length(max=100))
    owner_id = fields.UUID(allow_none=True, metadata={"description": "the assignee"})
    sla_policy_id = fields.UUID(allow_none=True, metadata={
        "description": "default: the default SLA policy"})
    satisfaction = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=5),
                                  metadata={"description": "1-5, given when closing"})
    attributes = fields.Dict(keys=fields.String())


class CaseCreate(CaseInput):
    subject = fields.String(required=True, validate=validate.Length(min=1, max=500))


class Case(CaseInput, Stamped):
    first_response_due_at = fields.DateTime(dump_only=True, allow_none=True)
    resolution_due_at = fields.DateTime(dump_only=True, allow_none=True)
    first_response_at = fields.DateTime(dump_only=True, allow_none=True)
    resolved_at = fields.DateTime(dump_only=True, allow_none=True)
    closed_at = fields.DateTime(dump_only=True, allow_none=True)
    first_response_breached_at = fields.DateTime(dump_only=True, allow_none=True)
    resolution_breached_at = fields.DateTime(dump_only=True, allow_none=True)
    escalated_at = fields.DateTime(dump_only=True, allow_none=True)
    created_by = fields.UUID(dump_only=True, allow_none=True)


class CaseQuery(Schema):
    q = fields.String(metadata={"description": "search subjects"})
    status = fields.String(validate=validate.OneOf(CASE_STATUSES))
    priority = fields.String(validate=validate.OneOf(PRIORITIES))
    category = fields.String()
    queue = fields.String()
    channel = fields.String()
    owner_id = fields.UUID()
    customer_id = fields.UUID()
    open = fields.Boolean(metadata={"description": "new, open or pending (true), or not"})
    breached = fields.Boolean(metadata={"description": "missed an SLA target"})
    sort = fields.String(metadata={"description": "e.g. `resolution_due_at,-priority`"})


class CaseInteractionInput(Schema):
    channel = fields.String(load_default="phone", validate=validate.Length(min=1, max=40))
    direction = fields.String(load_default="inbound", validate=validate.OneOf(DIRECTIONS))
    occurred_at = fields.AwareDateTime()
    subject = fields.String(validate=validate.Length(max=500))
    body = fields.String(validate=validate.Length(max=20000))
    outcome = fields.String(allow_none=True, validate=validate.Length(max=100))
    duration_seconds = fields.Integer(allow_none=True, validate=validate.Range(min=0))
    attributes = fields.Dict(keys=fields.String())


class CaseInteraction(core_schemas.Interaction):
    attributes = fields.Dict(dump_only=True, metadata={
        "description": "the channel's extra fields (duration_seconds) and case_id"})


# --- lead import ------------------------------------------------------------------------------


class LeadImportQuery(Schema):
    dry_run = fields.Boolean(load_default=False)
    all_or_nothing = fields.Boolean(load_default=False)
    filename = fields.String(validate=validate.Length(max=255))
    source = fields.String(validate=validate.Length(min=1, max=50), metadata={
        "description": "the source of rows that name none (default `import`)"})
    mapping = fields.String(validate=validate.Length(min=1, max=100), metadata={
        "description": "a saved import mapping's name or id, of kind `leads` (its value "
                       "transformations apply too)"})


class LeadImportResult(Schema):
    file = fields.String(allow_none=True)
    rows = fields.Integer()
    created = fields.Integer()
    failed = fields.Integer()
    mode = fields.String()
    dry_run = fields.Boolean()
    committed = fields.Boolean()
    mapping = fields.Dict(keys=fields.String(), values=fields.String(allow_none=True))
    ignored_columns = fields.List(fields.String())
    errors = fields.List(fields.Dict())
    lead_ids = fields.List(fields.UUID())
