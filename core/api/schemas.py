"""marshmallow schemas of the core's API resources."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from clientela.core.models import CUSTOMER_KINDS, DIRECTIONS, LIFECYCLE_STAGES


class LabelledValue(Schema):
    label = fields.String(load_default="other", validate=validate.Length(max=40))
    value = fields.String(required=True, validate=validate.Length(min=1, max=320))


class Address(Schema):
    label = fields.String(load_default="main", validate=validate.Length(max=40))
    street = fields.String(validate=validate.Length(max=300))
    city = fields.String(validate=validate.Length(max=100))
    postal_code = fields.String(validate=validate.Length(max=20))
    region = fields.String(validate=validate.Length(max=100))
    country = fields.String(validate=validate.Length(equal=2), metadata={
        "description": "ISO 3166-1 alpha-2 code"})


class CustomerInput(Schema):
    kind = fields.String(validate=validate.OneOf(CUSTOMER_KINDS))
    first_name = fields.String(allow_none=True, validate=validate.Length(max=100))
    last_name = fields.String(allow_none=True, validate=validate.Length(max=100))
    organisation_name = fields.String(allow_none=True, validate=validate.Length(max=200))
    display_name = fields.String(validate=validate.Length(max=300))
    email = fields.String(allow_none=True, validate=validate.Length(max=320))
    phone = fields.String(allow_none=True, validate=validate.Length(max=40),
                          metadata={"description": "stored in E.164"})
    emails = fields.List(fields.Nested(LabelledValue))
    phones = fields.List(fields.Nested(LabelledValue))
    addresses = fields.List(fields.Nested(Address))
    website = fields.Url(allow_none=True, validate=validate.Length(max=500))
    owner_id = fields.UUID(allow_none=True)
    organisation_id = fields.UUID(allow_none=True)
    stage = fields.String(validate=validate.OneOf(LIFECYCLE_STAGES))
    tags = fields.List(fields.String(validate=validate.Length(min=1, max=50)))
    external_id = fields.String(allow_none=True, validate=validate.Length(max=100))
    attributes = fields.Dict(keys=fields.String())


class CustomerUpdate(CustomerInput):
    """Every field optional: only the fields sent are changed."""


class Customer(CustomerInput):
    id = fields.UUID(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)
    created_by = fields.UUID(dump_only=True, allow_none=True)


class CustomerQuery(Schema):
    q = fields.String(metadata={"description": "search names, e-mails and phone numbers"})
    stage = fields.String(validate=validate.OneOf(LIFECYCLE_STAGES))
    kind = fields.String(validate=validate.OneOf(CUSTOMER_KINDS))
    owner_id = fields.UUID()
    organisation_id = fields.UUID()
    tag = fields.String()
    updated_since = fields.AwareDateTime(default_timezone=None)
    sort = fields.String(metadata={"description": "e.g. `display_name,-updated_at`; "
                                                  "`attr.<key>` sorts by a custom attribute"})


class InteractionInput(Schema):
    channel = fields.String(required=True, validate=validate.Length(min=1, max=40))
    direction = fields.String(load_default="inbound", validate=validate.OneOf(DIRECTIONS))
    occurred_at = fields.AwareDateTime()
    subject = fields.String(load_default="", validate=validate.Length(max=500))
    body = fields.String(load_default="")
    outcome = fields.String(allow_none=True, validate=validate.Length(max=100))
    source = fields.String(allow_none=True, validate=validate.Length(max=100))
    external_id = fields.String(allow_none=True, validate=validate.Length(max=200))


class InteractionCreate(InteractionInput):
    customer_id = fields.UUID(required=True)


class Interaction(InteractionCreate):
    id = fields.UUID(dump_only=True)
    user_id = fields.UUID(dump_only=True, allow_none=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class InteractionQuery(Schema):
    customer_id = fields.UUID()
    channel = fields.String()
    since = fields.AwareDateTime()
    sort = fields.String(metadata={"description": "e.g. `-occurred_at`"})


class Profile(Schema):
    customer = fields.Nested(Customer)
    organisation = fields.Dict(allow_none=True)
    contacts = fields.List(fields.Dict())
    interactions = fields.Dict()
    sections = fields.List(fields.Dict())


class DuplicateGroup(Schema):
    reason = fields.String(metadata={"description": "email, phone or name"})
    value = fields.String()
    customer_ids = fields.List(fields.UUID())


class MergeInput(Schema):
    other_id = fields.UUID(required=True, metadata={"description": "the customer merged away"})
    dry_run = fields.Boolean(load_default=False)
    prefer = fields.Dict(keys=fields.String(), values=fields.String(
        validate=validate.OneOf(["survivor", "other"])), load_default=dict)


class MergeResult(Schema):
    survivor_id = fields.UUID()
    merged_id = fields.UUID()
    dry_run = fields.Boolean()
    interactions_moved = fields.Integer()
    result = fields.Dict()


class ExportDocument(Schema):
    customer = fields.Dict()
    interactions = fields.List(fields.Dict())
    plugins = fields.Dict()


class EraseResult(Schema):
    customer = fields.String()
    interactions_anonymised = fields.Integer()
    plugins = fields.Dict()


class UserInput(Schema):
    email = fields.Email(required=True)
    name = fields.String(load_default="", validate=validate.Length(max=200))
    roles = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    password = fields.String(load_only=True, validate=validate.Length(min=10, max=200))


class UserUpdate(Schema):
    name = fields.String(validate=validate.Length(max=200))
    roles = fields.List(fields.String(), validate=validate.Length(min=1))
    is_active = fields.Boolean()
    password = fields.String(load_only=True, validate=validate.Length(min=10, max=200))


class User(Schema):
    id = fields.UUID()
    email = fields.String()
    name = fields.String()
    roles = fields.List(fields.String())
    is_active = fields.Boolean()
    last_login_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


class Me(User):
    permissions = fields.Dict(keys=fields.String(), values=fields.String(),
                              metadata={"description": "permission -> scope"})
    tenant = fields.Dict()


class RoleInput(Schema):
    name = fields.String(required=True, validate=validate.Regexp(
        r"^[a-z][a-z0-9_-]{0,62}$", error="use lower-case letters, digits, - and _"))
    description = fields.String(load_default="", validate=validate.Length(max=300))
    permissions = fields.Dict(keys=fields.String(), values=fields.String(), required=True)


class RoleUpdate(Schema):
    description = fields.String(validate=validate.Length(max=300))
    permissions = fields.Dict(keys=fields.String(), values=fields.String())


class Role(Schema):
    id = fields.UUID(allow_none=True)
    name = fields.String()
    description = fields.String()
    builtin = fields.Boolean()
    permissions = fields.Dict(keys=fields.String(), values=fields.String())


class TokenInput(Schema):
    name = fields.String(load_default="", validate=validate.Length(max=100))
    expires_at = fields.AwareDateTime(allow_none=True)


class Token(Schema):
    id = fields.UUID()
    name = fields.String()
    prefix = fields.String()
    user_id = fields.UUID()
    expires_at = fields.DateTime(allow_none=True)
    revoked_at = fields.DateTime(allow_none=True)
    last_used_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


class NewToken(Token):
    token = fields.String(metadata={"description": "shown once; store it now"})


class AuditQuery(Schema):
    entity_type = fields.String()
    entity_id = fields.UUID()
    actor_id = fields.UUID()
    action = fields.String()
    since = fields.AwareDateTime()
    until = fields.AwareDateTime()


class AuditEvent(Schema):
    id = fields.UUID()
    created_at = fields.DateTime()
    actor_id = fields.UUID(allow_none=True)
    action = fields.String()
    entity_type = fields.String(allow_none=True)
    entity_id = fields.UUID(allow_none=True)
    changes = fields.Dict()
    origin = fields.String(allow_none=True)


class Login(Schema):
    email = fields.String(required=True, validate=validate.Length(max=320))
    password = fields.String(required=True, load_only=True, validate=validate.Length(max=200))


class Session(Schema):
    user = fields.Nested(User)
    csrf_token = fields.String(metadata={"description": "send as X-CSRF-Token on writes"})


class ImportQuery(Schema):
    match = fields.String(load_default="email", validate=validate.OneOf(
        ["email", "external_id", "id", "none"]), metadata={
        "description": "update the customer whose key matches instead of creating one"})
    dry_run = fields.Boolean(load_default=False)
    all_or_nothing = fields.Boolean(load_default=False)
    mapping = fields.String(metadata={"description": "a saved column mapping's name or id "
                                                     "(its value transformations apply too)"})
    format = fields.String(validate=validate.OneOf(["csv", "vcard"]))
    filename = fields.String(validate=validate.Length(max=255))


class RowProblem(Schema):
    row = fields.Integer()
    field = fields.String()
    message = fields.String()


class ImportResult(Schema):
    file = fields.String(allow_none=True)
    format = fields.String()
    rows = fields.Integer()
    created = fields.Integer()
    updated = fields.Integer()
    unchanged = fields.Integer()
    failed = fields.Integer()
    match = fields.String()
    mode = fields.String()
    dry_run = fields.Boolean()
    committed = fields.Boolean()
    ignored_columns = fields.List(fields.String())
    mapping = fields.Dict(keys=fields.String(), values=fields.String(allow_none=True))
    errors = fields.List(fields.Nested(RowProblem))


class SearchQuery(Schema):
    q = fields.String(required=True, validate=validate.Length(min=2, max=200),
                      metadata={"description": "at least two characters"})
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=50),
                           metadata={"description": "the most results per kind of record"})


class SearchResult(Schema):
    type = fields.String(metadata={"description": "customer, lead, deal, case, ..."})
    id = fields.String()
    title = fields.String()
    subtitle = fields.String(allow_none=True)
    score = fields.Float()
