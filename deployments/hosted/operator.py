"""The operator API of the hosted profile (``/operator/api/v1``): tenant lifecycle, plans, usage.

It calls the same service functions as ``clientela tenants ...`` and authenticates with
operator tokens (``clientela operator tokens create NAME``), a kind of token that belongs
to no tenant. A tenant's API token is refused here, and an operator token is refused
under ``/api/v1``. The on-premise profile does not have this API at all (404).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile

from flask import Flask, g, request, send_file
from flask.views import MethodView
from flask_smorest import Api, Blueprint
from marshmallow import Schema, fields, validate

from clientela.core.db import db, utcnow
from clientela.core.errors import NotFound, Unauthorized, ValidationError
from clientela.deployments.hosted import services as hosted

log = logging.getLogger(__name__)

OPERATOR_PREFIX = "/operator/api/v1"
TOUCH_INTERVAL = dt.timedelta(minutes=5)


class OperatorApi(Api):
    """A second flask-smorest API with its own OpenAPI document (``OPERATOR_`` settings)."""

    def _register_error_handlers(self):
        # the core's handlers already answer JSON errors for /operator/ paths; flask-smorest's
        # would replace them app-wide
        pass


# --- schemas -----------------------------------------------------------------------


class TenantSchema(Schema):
    id = fields.UUID(dump_only=True)
    slug = fields.String(dump_only=True)
    name = fields.String(dump_only=True)
    status = fields.String(dump_only=True, metadata={"description": "active or suspended"})
    plan = fields.String(dump_only=True, allow_none=True)
    plugins = fields.List(fields.String(), dump_only=True,
                          metadata={"description": "the plugins the tenant gets (its plan's)"})
    created_at = fields.DateTime(dump_only=True)
    last_export = fields.Dict(dump_only=True, allow_none=True)


class TenantCreateSchema(Schema):
    slug = fields.String(required=True, validate=validate.Length(min=1, max=63))
    name = fields.String(validate=validate.Length(max=200))
    plan = fields.String(allow_none=True)
    admin_email = fields.Email(allow_none=True, metadata={
        "description": "create the tenant's first admin; the answer holds its password and "
                       "an API token, shown once"})


class ProvisionedSchema(Schema):
    tenant = fields.Nested(TenantSchema)
    admin = fields.String(allow_none=True)
    password = fields.String(allow_none=True)
    token = fields.String(allow_none=True)


class PlanChangeSchema(Schema):
    plan = fields.String(required=True, allow_none=True,
                         metadata={"description": "a plan's name; null: no plan"})


class DeleteQuerySchema(Schema):
    force = fields.Boolean(load_default=False, metadata={
        "description": "delete even though the tenant was never exported"})


class DeletedSchema(Schema):
    tenant = fields.String()
    rows = fields.Integer()
    tables = fields.Dict(keys=fields.String(), values=fields.Integer())


class UsageQuerySchema(Schema):
    days = fields.Integer(load_default=1, validate=validate.Range(min=1, max=3660))


class UsageSchema(Schema):
    tenant = fields.String()
    day = fields.String()
    api_calls = fields.Integer()
    records = fields.Integer()
    storage_bytes = fields.Integer()


class PlanSchema(Schema):
    name = fields.String()
    title = fields.String()
    plugins = fields.List(fields.String(), allow_none=True)
    max_records = fields.Integer(allow_none=True)
    api_requests_per_minute = fields.Integer(allow_none=True)
    max_storage_bytes = fields.Integer(allow_none=True)


# --- authentication ------------------------------------------------------------------


def _operator_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def authenticate_operator() -> None:
    """``before_request`` of every operator blueprint: an operator token, nothing else."""
    token = hosted.authenticate_operator_token(_operator_token())
    if token is None:
        raise Unauthorized("an operator token is required: 'Authorization: Bearer clo_...' "
                           "(clientela operator tokens create NAME)")
    g.operator = token.name
    if token.last_used_at is None or utcnow() - token.last_used_at > TOUCH_INTERVAL:
        token.last_used_at = utcnow()
        db.session.commit()
    if request.method != "GET":
        log.info("operator %s: %s %s", token.name, request.method, request.path)


def _known_plan(name: str | None) -> None:
    """An unknown plan in a request body is invalid input (422), not a missing resource."""
    try:
        hosted.get_plan(name)
    except NotFound:
        raise ValidationError({"plan": [f"no plan '{name}'"]}) from None


def _described(tenant) -> dict:
    return {"id": tenant.id, "slug": tenant.slug, "name": tenant.name, "status": tenant.status,
            "plan": tenant.plan, "created_at": tenant.created_at,
            "plugins": sorted(hosted.enabled_plugins(tenant)),
            "last_export": (tenant.settings or {}).get("last_export")}


# --- tenants -------------------------------------------------------------------------

tenants_blp = Blueprint("operator_tenants", __name__, url_prefix="/tenants",
                        description="Tenant lifecycle: provision, suspend, resume, change "
                                    "plan, export, delete, usage")
tenants_blp.before_request(authenticate_operator)


@tenants_blp.route("")
class Tenants(MethodView):
    @tenants_blp.response(200, TenantSchema(many=True))
    def get(self):
        """Every tenant with its status, plan and plugins."""
        return [_described(t) for t in hosted.list_tenants()]

    @tenants_blp.arguments(TenantCreateSchema)
    @tenants_blp.response(201, ProvisionedSchema)
    def post(self, data):
        """Provision a tenant (and with ``admin_email`` its first admin and an API token)."""
        _known_plan(data.get("plan"))
        result = hosted.provision_tenant(data["slug"], name=data.get("name"),
                                         plan=data.get("plan"),
                                         admin_email=data.get("admin_email"))
        return {**result, "tenant": _described(hosted.services.get_tenant(data["slug"]))}


@tenants_blp.route("/<slug>")
class TenantItem(MethodView):
    @tenants_blp.response(200, TenantSchema)
    def get(self, slug):
        """One tenant."""
        return _described(hosted.services.get_tenant(slug))

    @tenants_blp.arguments(DeleteQuerySchema, location="query")
    @tenants_blp.response(200, DeletedSchema)
    def delete(self, args, slug):
        """Remove every row of the tenant (409 unless it was exported, or ``force=true``)."""
        deleted = hosted.delete_tenant(slug, force=args["force"])
        return {"tenant": slug, "rows": sum(deleted.values()), "tables": deleted}


@tenants_blp.route("/<slug>/suspend")
class TenantSuspend(MethodView):
    @tenants_blp.response(200, TenantSchema)
    def post(self, slug):
        """Every request of the tenant answers 403 from now on; its data stays."""
        return _described(hosted.suspend_tenant(slug))


@tenants_blp.route("/<slug>/resume")
class TenantResume(MethodView):
    @tenants_blp.response(200, TenantSchema)
    def post(self, slug):
        """Let a suspended tenant work again."""
        return _described(hosted.resume_tenant(slug))


@tenants_blp.route("/<slug>/plan")
class TenantPlan(MethodView):
    @tenants_blp.arguments(PlanChangeSchema)
    @tenants_blp.response(200, TenantSchema)
    def put(self, data, slug):
        """Move the tenant to another plan (its plugins and quotas apply at once)."""
        _known_plan(data["plan"])
        return _described(hosted.change_plan(slug, data["plan"]))


@tenants_blp.route("/<slug>/export")
class TenantExport(MethodView):
    @tenants_blp.response(200, content_type="application/zip", description=(
        "The tenant's archive: every row of every plugin's tables and its files, "
        "restorable with the on-premise 'clientela restore'"))
    def post(self, slug):
        """Export the whole tenant; the answer is the archive (a zip file)."""
        folder = tempfile.mkdtemp(prefix="clientela-export-")
        path = os.path.join(folder, f"{slug}.zip")
        hosted.export_tenant(slug, path)
        handle = open(path, "rb")  # noqa: SIM115 (closed by the response)
        os.unlink(path)  # the open handle keeps the data; nothing stays on the server
        os.rmdir(folder)
        return send_file(handle, mimetype="application/zip", as_attachment=True,
                         download_name=f"{slug}-{utcnow():%Y%m%dT%H%M%SZ}.zip")


@tenants_blp.route("/<slug>/usage")
class TenantUsageView(MethodView):
    @tenants_blp.arguments(UsageQuerySchema, location="query")
    @tenants_blp.response(200, UsageSchema(many=True))
    def get(self, args, slug):
        """The tenant's counters per UTC day (API calls, records, storage): what you bill on."""
        return hosted.usage_report(slug, days=args["days"])


# --- plans ---------------------------------------------------------------------------

plans_blp = Blueprint("operator_plans", __name__, url_prefix="/plans",
                      description="Plans: the plugins a tenant gets and its quotas")
plans_blp.before_request(authenticate_operator)


@plans_blp.route("")
class Plans(MethodView):
    @plans_blp.response(200, PlanSchema(many=True))
    def get(self):
        """Every plan."""
        return hosted.list_plans()


def init_app(app: Flask) -> OperatorApi:
    """Mount the operator API and its OpenAPI document under ``/operator/api/v1``."""
    for key, value in (("API_TITLE", "Clientela operator API"), ("API_VERSION", "v1"),
                       ("OPENAPI_VERSION", "3.1.0"), ("OPENAPI_URL_PREFIX", OPERATOR_PREFIX),
                       ("OPENAPI_JSON_PATH", "openapi.json")):
        app.config.setdefault(f"OPERATOR_{key}", value)
    api = OperatorApi(config_prefix="OPERATOR", spec_kwargs={
        "components": {"securitySchemes": {"operator": {"type": "http", "scheme": "bearer"}}},
        "security": [{"operator": []}],
    })
    api.init_app(app)
    api.register_blueprint(tenants_blp, url_prefix=OPERATOR_PREFIX + "/tenants")
    api.register_blueprint(plans_blp, url_prefix=OPERATOR_PREFIX + "/plans")
    return api
