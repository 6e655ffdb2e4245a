"""marshmallow schemas of the tailor-made plugin's API."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from clientela.plugins.tailormade.models import DELIVERY_STATUSES, FIELD_TYPES, RUN_STATUSES, TRIGGERS


class CustomFieldUpdate(Schema):
    """What can change in a field (its entity type and key cannot)."""

    label = fields.String(validate=validate.Length(max=200))
    description = fields.String(validate=validate.Length(max=5000))
    type = fields.String(validate=validate.OneOf(FIELD_TYPES))
    required = fields.Boolean()
    is_unique = fields.Boolean(data_key="unique",
                               metadata={"description": "no two records share a value"})
    default_value = fields.Raw(data_key="default", allow_none=True,
                               metadata={"description": "written on insert when empty"})
    choices = fields.List(fields.String(), metadata={
        "description": "the allowed values of single_choice and multiple_choice"})
    min_value = fields.Raw(data_key="min", allow_none=True, metadata={
        "description": "lowest value (integer, decimal, date, datetime), shortest length "
                       "(texts) or fewest choices (multiple_choice)"})
    max_value = fields.Raw(data_key="max", allow_none=True, metadata={
        "description": "as min, the other end"})
    pattern = fields.String(allow_none=True, validate=validate.Length(max=500), metadata={
        "description": "a regular expression the whole text must match"})
    target = fields.String(allow_none=True, validate=validate.Length(max=63), metadata={
        "description": "for reference fields: the entity type referenced, e.g. customers"})
    position = fields.Integer(validate=validate.Range(min=0, max=100000))


class CustomFieldInput(CustomFieldUpdate):
    entity_type = fields.String(required=True, validate=validate.Length(min=1, max=63),
                                metadata={"description": "table name: customers, "
                                                         "interactions, operational_deals…"})
    key = fields.String(required=True, validate=validate.Length(min=1, max=63), metadata={
        "description": "the key in attributes, e.g. vat_number"})
    type = fields.String(required=True, validate=validate.OneOf(FIELD_TYPES))


class CustomField(CustomFieldInput):
    id = fields.UUID(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class CustomFieldQuery(Schema):
    entity_type = fields.String()


class ChangeQuery(Schema):
    dry_run = fields.Boolean(load_default=False, metadata={
        "description": "only report what the change would do to existing values"})


class DeleteQuery(Schema):
    purge = fields.Boolean(load_default=False, metadata={
        "description": "also remove the field's values from every record (else they stay "
                       "in attributes, unchecked)"})


class Problem(Schema):
    id = fields.String()
    value = fields.Raw()
    error = fields.String()


class Report(Schema):
    entity_type = fields.String()
    key = fields.String()
    records = fields.Integer(metadata={"description": "records holding a value"})
    converted = fields.Integer(metadata={"description": "values rewritten in the new form"})
    refused = fields.Integer(metadata={"description": "values that do not fit"})
    problems = fields.List(fields.Nested(Problem), metadata={
        "description": "the first 100 values that do not fit"})


class CustomFieldChange(Schema):
    field = fields.Nested(CustomField)
    report = fields.Nested(Report)


class WebhookUpdate(Schema):
    url = fields.String(validate=validate.Length(min=1, max=2000))
    events = fields.List(fields.String(validate=validate.Length(max=100)),
                         validate=validate.Length(min=1, max=50), metadata={
                             "description": "e.g. customers.insert, deals.*, *.delete, *"})
    secret = fields.String(load_only=True, validate=validate.Length(min=16, max=200))
    description = fields.String(validate=validate.Length(max=300))
    active = fields.Boolean()


class WebhookInput(WebhookUpdate):
    url = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    events = fields.List(fields.String(validate=validate.Length(max=100)), required=True,
                         validate=validate.Length(min=1, max=50))
    secret = fields.String(load_only=True, validate=validate.Length(min=16, max=200), metadata={
        "description": "the HMAC key; generated when not given"})


class Webhook(Schema):
    id = fields.UUID()
    url = fields.String()
    events = fields.List(fields.String())
    description = fields.String()
    active = fields.Boolean()
    consecutive_failures = fields.Integer(metadata={
        "description": "deliveries in a row that failed for good"})
    disabled_reason = fields.String(allow_none=True, metadata={
        "description": "why it was switched off automatically"})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class NewWebhook(Webhook):
    secret = fields.String(metadata={"description": "shown once: store it to check signatures"})


class DeliveryQuery(Schema):
    status = fields.String(validate=validate.OneOf(DELIVERY_STATUSES))


class Delivery(Schema):
    id = fields.UUID()
    webhook_id = fields.UUID()
    event = fields.String()
    entity_type = fields.String()
    entity_id = fields.UUID(allow_none=True)
    status = fields.String()
    attempts = fields.Integer()
    response_status = fields.Integer(allow_none=True)
    response_body = fields.String(allow_none=True)
    error = fields.String(allow_none=True)
    duration_ms = fields.Integer(allow_none=True)
    payload = fields.Dict()
    created_at = fields.DateTime()
    last_attempt_at = fields.DateTime(allow_none=True)
    delivered_at = fields.DateTime(allow_none=True)


class CustomObjectUpdate(Schema):
    label = fields.String(validate=validate.Length(max=200))
    plural_label = fields.String(validate=validate.Length(max=200))
    description = fields.String(validate=validate.Length(max=5000))


class CustomObjectInput(CustomObjectUpdate):
    key = fields.String(required=True, validate=validate.Length(min=1, max=40), metadata={
        "description": "the object's name in URLs (/api/v1/custom/<key>) and in the entity "
                       "type of its fields (custom:<key>); cannot change"})


class CustomObject(CustomObjectInput):
    id = fields.UUID(dump_only=True)
    entity_type = fields.Function(lambda obj: f"custom:{obj.key}", dump_only=True, metadata={
        "description": "the entity_type of its custom fields"})
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class RecordUpdate(Schema):
    title = fields.String(validate=validate.Length(min=1, max=300))
    customer_id = fields.UUID(allow_none=True, metadata={
        "description": "the customer the record belongs to (its 360° view, export, erasure)"})
    owner_id = fields.UUID(allow_none=True)
    attributes = fields.Dict(keys=fields.String(), metadata={
        "description": "the values of the object's custom fields; on update merged, a null "
                       "removes a key"})


class RecordInput(RecordUpdate):
    title = fields.String(required=True, validate=validate.Length(min=1, max=300))


class Record(RecordInput):
    id = fields.UUID(dump_only=True)
    object_id = fields.UUID(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)
    created_by = fields.UUID(dump_only=True, allow_none=True)


class RecordQuery(Schema):
    q = fields.String(metadata={"description": "a text the title contains"})
    customer_id = fields.UUID()
    owner_id = fields.UUID()
    sort = fields.String(metadata={"description": "e.g. `title`, `-updated_at`, `attr.<key>`"})


class RuleUpdate(Schema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    description = fields.String(validate=validate.Length(max=5000))
    active = fields.Boolean()
    trigger = fields.String(validate=validate.OneOf(TRIGGERS), metadata={
        "description": "created, updated, stage_changed, interaction_recorded, date_reached"})
    entity_type = fields.String(validate=validate.Length(min=1, max=63), metadata={
        "description": "customers, interactions, operational_deals, custom:<key>…"})
    trigger_field = fields.String(allow_none=True, validate=validate.Length(max=100), metadata={
        "description": "updated: only when this field changes; date_reached: the date field; "
                       "stage_changed: the stage column if not stage/stage_id"})
    offset_days = fields.Integer(validate=validate.Range(min=-3650, max=3650), metadata={
        "description": "date_reached: fire this many days after the date (negative: before)"})
    conditions = fields.Dict(metadata={
        "description": '{"all"|"any": [{"field": "attributes.tier", "op": "eq", '
                       '"value": "gold"}, ...]}; ops: eq, ne, gt, gte, lt, lte, contains, in, '
                       "empty, not_empty, changed"})
    actions = fields.List(fields.Dict(), validate=validate.Length(min=1, max=20), metadata={
        "description": '[{"type": "set_field", "params": {"field": "stage", "value": '
                       '"customer"}}, ...]; GET /automations/actions lists the types'})


class RuleInput(RuleUpdate):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    trigger = fields.String(required=True, validate=validate.OneOf(TRIGGERS))
    entity_type = fields.String(load_default="customers",
                                validate=validate.Length(min=1, max=63))
    actions = fields.List(fields.Dict(), required=True, validate=validate.Length(min=1, max=20))


class Rule(RuleInput):
    id = fields.UUID(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class ActionDescription(Schema):
    key = fields.String()
    label = fields.String()
    params = fields.Dict(keys=fields.String(), values=fields.String())
    plugin = fields.String()


class RunQuery(Schema):
    status = fields.String(validate=validate.OneOf(RUN_STATUSES))


class Run(Schema):
    id = fields.UUID()
    rule_id = fields.UUID()
    status = fields.String()
    event = fields.String()
    entity_type = fields.String(allow_none=True)
    entity_id = fields.UUID(allow_none=True)
    depth = fields.Integer(metadata={"description": "rules in the chain that led here"})
    trigger_key = fields.String(allow_none=True)
    results = fields.List(fields.Dict(), metadata={"description": "each action's result"})
    error = fields.String(allow_none=True)
    job_id = fields.UUID(allow_none=True)
    created_at = fields.DateTime()


class ImportMappingUpdate(Schema):
    name = fields.String(validate=validate.Length(min=1, max=100))
    kind = fields.String(validate=validate.Length(min=1, max=63), metadata={
        "description": "the import it is for: customers (default) or a plugin's"})
    description = fields.String(validate=validate.Length(max=2000))
    columns = fields.Dict(keys=fields.String(), values=fields.String(allow_none=True),
                          metadata={"description": '{"Header in the file": "field" or null}'})
    transforms = fields.Dict(keys=fields.String(), values=fields.List(fields.Dict()), metadata={
        "description": '{"Header": [{"op": "trim"}, {"op": "date", "from": "%d/%m/%Y"}, ...]}; '
                       "ops: trim, lower, upper, replace, date, map, default, split, join"})


class ImportMappingInput(ImportMappingUpdate):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))


class ImportMapping(ImportMappingInput):
    id = fields.UUID(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class ImportMappingQuery(Schema):
    kind = fields.String()
