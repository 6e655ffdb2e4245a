"""``/api/v1/custom-fields`` and ``/api/v1/webhooks``."""

from __future__ import annotations

import uuid

from flask import jsonify
from flask.views import MethodView
from flask_smorest import Blueprint

from clientela.core.api import error_body
from clientela.core.api.auth import current_principal
from flask import request

from clientela.core.customers import attribute_filters, paginated
from clientela.core.db import db
from clientela.plugins.tailormade import (
    automations,
    custom_fields,
    custom_objects,
    import_mappings,
    schemas,
    webhooks,
)

fields_blp = Blueprint("custom-fields", __name__, url_prefix="/custom-fields",
                       description="Custom fields of customers, interactions and every "
                                   "plugin entity")
webhooks_blp = Blueprint("webhooks", __name__, url_prefix="/webhooks",
                         description="Webhooks: signed HTTP calls on entity events")


def _refused(exc: custom_fields.FieldChangeRefused):
    """409 with the report of the values that do not fit (nothing was written)."""
    db.session.rollback()
    response = jsonify(error_body(409, str(exc), errors={"report": exc.report}))
    response.status_code = 409
    return response


@fields_blp.route("")
class CustomFields(MethodView):
    @fields_blp.arguments(schemas.CustomFieldQuery, location="query")
    @fields_blp.response(200, schemas.CustomField(many=True))
    def get(self, args):
        """The tenant's custom fields, optionally of one entity type."""
        return custom_fields.list_fields(current_principal(), args.get("entity_type"))

    @fields_blp.arguments(schemas.CustomFieldInput)
    @fields_blp.response(201, schemas.CustomField)
    @fields_blp.alt_response(409, description="existing values under the key do not fit")
    def post(self, data):
        """Define a custom field (``customization:write``)."""
        try:
            field, _ = custom_fields.create_field(current_principal(), data)
        except custom_fields.FieldChangeRefused as exc:
            return _refused(exc)
        db.session.commit()
        return field


@fields_blp.route("/openapi.json")
class TenantOpenApi(MethodView):
    @fields_blp.response(200)
    def get(self):
        """The API's OpenAPI document with this tenant's custom fields and objects in it:
        ``attributes`` typed per entity type, ``/api/v1/custom/<key>`` per object."""
        from clientela.plugins.tailormade import openapi

        return jsonify(openapi.tenant_document(current_principal()))


@fields_blp.route("/<uuid:field_id>")
class CustomFieldById(MethodView):
    @fields_blp.response(200, schemas.CustomField)
    def get(self, field_id: uuid.UUID):
        """One custom field."""
        return custom_fields.get_field(current_principal(), field_id)

    @fields_blp.arguments(schemas.ChangeQuery, location="query")
    @fields_blp.arguments(schemas.CustomFieldUpdate)
    @fields_blp.response(200, schemas.CustomFieldChange)
    @fields_blp.alt_response(409, description="existing values would not fit: the report")
    def patch(self, query, data, field_id: uuid.UUID):
        """Change a field; existing values are converted, or the change is refused with a
        report of those that cannot be (``dry_run`` only reports)."""
        try:
            field, report = custom_fields.update_field(current_principal(), field_id, data,
                                                       dry_run=query["dry_run"])
        except custom_fields.FieldChangeRefused as exc:
            return _refused(exc)
        if query["dry_run"]:
            db.session.rollback()
            field = custom_fields.get_field(current_principal(), field_id)
        else:
            db.session.commit()
        return {"field": field, "report": report}

    @fields_blp.arguments(schemas.DeleteQuery, location="query")
    @fields_blp.response(204)
    def delete(self, query, field_id: uuid.UUID):
        """Remove a field; its values stay in ``attributes`` unless ``purge=true``."""
        custom_fields.delete_field(current_principal(), field_id, purge=query["purge"])
        db.session.commit()


@webhooks_blp.route("")
class Webhooks(MethodView):
    @webhooks_blp.response(200, schemas.Webhook(many=True))
    def get(self):
        """The tenant's webhooks (admins)."""
        return webhooks.list_webhooks(current_principal())

    @webhooks_blp.arguments(schemas.WebhookInput)
    @webhooks_blp.response(201, schemas.NewWebhook)
    def post(self, data):
        """Subscribe a URL to entity events; the response is the only one showing the secret."""
        webhook = webhooks.create_webhook(current_principal(), data)
        secret = webhook.secret
        db.session.commit()
        shown = {name: getattr(webhook, name) for name in schemas.Webhook().fields}
        return {**shown, "secret": secret}


@webhooks_blp.route("/<uuid:webhook_id>")
class WebhookById(MethodView):
    @webhooks_blp.response(200, schemas.Webhook)
    def get(self, webhook_id: uuid.UUID):
        """One webhook (never its secret)."""
        return webhooks.get_webhook(current_principal(), webhook_id)

    @webhooks_blp.arguments(schemas.WebhookUpdate)
    @webhooks_blp.response(200, schemas.Webhook)
    def patch(self, data, webhook_id: uuid.UUID):
        """Change the URL, the events, the secret, or switch it off and on."""
        webhook = webhooks.update_webhook(current_principal(), webhook_id, data)
        db.session.commit()
        return webhook

    @webhooks_blp.response(204)
    def delete(self, webhook_id: uuid.UUID):
        """Delete a webhook and its delivery log."""
        webhooks.delete_webhook(current_principal(), webhook_id)
        db.session.commit()


@webhooks_blp.route("/<uuid:webhook_id>/deliveries")
class WebhookDeliveries(MethodView):
    @webhooks_blp.arguments(schemas.DeliveryQuery, location="query")
    @webhooks_blp.response(200, schemas.Delivery(many=True))
    @webhooks_blp.paginate()
    def get(self, args, pagination_parameters, webhook_id: uuid.UUID):
        """The delivery log, newest first: status, attempts, last answer, payload."""
        stmt = webhooks.deliveries_query(current_principal(), webhook_id, args.get("status"))
        return paginated(stmt, pagination_parameters)



@webhooks_blp.route("/<uuid:webhook_id>/deliveries/<uuid:delivery_id>/redeliver")
class WebhookRedelivery(MethodView):
    @webhooks_blp.response(201, schemas.Delivery)
    def post(self, webhook_id: uuid.UUID, delivery_id: uuid.UUID):
        """Send a delivery's payload again, as a new delivery."""
        delivery = webhooks.redeliver(current_principal(), webhook_id, delivery_id)
        db.session.commit()
        return delivery


objects_blp = Blueprint("custom-objects", __name__, url_prefix="/custom-objects",
                        description="Custom objects: record types the tenant defines")
records_blp = Blueprint("custom-records", __name__, url_prefix="/custom",
                        description="The records of custom objects")


@objects_blp.route("")
class CustomObjects(MethodView):
    @objects_blp.response(200, schemas.CustomObject(many=True))
    def get(self):
        """The tenant's custom objects."""
        return custom_objects.list_objects(current_principal())

    @objects_blp.arguments(schemas.CustomObjectInput)
    @objects_blp.response(201, schemas.CustomObject)
    def post(self, data):
        """Define a custom object (``customization:write``); then give it custom fields with
        ``entity_type`` ``custom:<key>``."""
        obj = custom_objects.create_object(current_principal(), data)
        db.session.commit()
        return obj


@objects_blp.route("/<uuid:object_id>")
class CustomObjectById(MethodView):
    @objects_blp.response(200, schemas.CustomObject)
    def get(self, object_id: uuid.UUID):
        """One custom object."""
        return custom_objects.get_object(current_principal(), object_id)

    @objects_blp.arguments(schemas.CustomObjectUpdate)
    @objects_blp.response(200, schemas.CustomObject)
    def patch(self, data, object_id: uuid.UUID):
        """Change its labels or description (the key cannot change)."""
        obj = custom_objects.update_object(current_principal(), object_id, data)
        db.session.commit()
        return obj

    @objects_blp.arguments(schemas.DeleteQuery, location="query")
    @objects_blp.response(204)
    @objects_blp.alt_response(409, description="the object has records and purge is not set")
    def delete(self, query, object_id: uuid.UUID):
        """Remove an object and its fields; with records only when ``purge=true``."""
        custom_objects.delete_object(current_principal(), object_id, purge=query["purge"])
        db.session.commit()


@records_blp.route("/<object>")
class Records(MethodView):
    @records_blp.arguments(schemas.RecordQuery, location="query")
    @records_blp.response(200, schemas.Record(many=True))
    @records_blp.paginate()
    def get(self, args, pagination_parameters, object: str):
        """List the object's records, filtered, sorted and paginated.

        Custom fields filter as ``attr.<key>=value`` or ``attr.<key>.<op>=value``
        (``op``: ``eq``, ``gt``, ``gte``, ``lt``, ``lte``) and sort as ``sort=attr.<key>``.
        """
        principal = current_principal()
        obj = custom_objects.object_by_key(object)
        stmt = custom_objects.records_query(principal, obj,
                                            attributes=attribute_filters(request.args), **args)
        return paginated(stmt, pagination_parameters)

    @records_blp.arguments(schemas.RecordInput)
    @records_blp.response(201, schemas.Record)
    def post(self, data, object: str):
        """Create a record (you are its owner unless ``owner_id`` says otherwise)."""
        record = custom_objects.create_record(current_principal(), object, data)
        db.session.commit()
        return record


@records_blp.route("/<object>/<uuid:record_id>")
class RecordById(MethodView):
    @records_blp.response(200, schemas.Record)
    def get(self, object: str, record_id: uuid.UUID):
        """One record."""
        return custom_objects.get_record(current_principal(), object, record_id)

    @records_blp.arguments(schemas.RecordUpdate)
    @records_blp.response(200, schemas.Record)
    def patch(self, data, object: str, record_id: uuid.UUID):
        """Change a record; ``attributes`` are merged, a ``null`` value removes a key."""
        record = custom_objects.update_record(current_principal(), object, record_id, data)
        db.session.commit()
        return record

    @records_blp.response(204)
    def delete(self, object: str, record_id: uuid.UUID):
        """Delete a record."""
        custom_objects.delete_record(current_principal(), object, record_id)
        db.session.commit()


automations_blp = Blueprint("automations", __name__, url_prefix="/automations",
                            description="Automation rules: when, if, do; and their log")


@automations_blp.route("")
class Automations(MethodView):
    @automations_blp.response(200, schemas.Rule(many=True))
    def get(self):
        """The tenant's automation rules."""
        return automations.list_rules(current_principal())

    @automations_blp.arguments(schemas.RuleInput)
    @automations_blp.response(201, schemas.Rule)
    def post(self, data):
        """Create a rule (``automations:write``)."""
        rule = automations.create_rule(current_principal(), data)
        db.session.commit()
        return rule


@automations_blp.route("/actions")
class AutomationActions(MethodView):
    @automations_blp.response(200, schemas.ActionDescription(many=True))
    def get(self):
        """The actions rules may use: this plugin's and those other plugins register."""
        from clientela.core.access import require

        require(current_principal(), "automations:read")
        return [action.as_dict() for _, action in sorted(automations.actions().items())]


@automations_blp.route("/<uuid:rule_id>")
class AutomationById(MethodView):
    @automations_blp.response(200, schemas.Rule)
    def get(self, rule_id: uuid.UUID):
        """One rule."""
        return automations.get_rule(current_principal(), rule_id)

    @automations_blp.arguments(schemas.RuleUpdate)
    @automations_blp.response(200, schemas.Rule)
    def patch(self, data, rule_id: uuid.UUID):
        """Change a rule, or switch it off and on (``active``)."""
        rule = automations.update_rule(current_principal(), rule_id, data)
        db.session.commit()
        return rule

    @automations_blp.response(204)
    def delete(self, rule_id: uuid.UUID):
        """Delete a rule and its execution log."""
        automations.delete_rule(current_principal(), rule_id)
        db.session.commit()


@automations_blp.route("/<uuid:rule_id>/runs")
class AutomationRuns(MethodView):
    @automations_blp.arguments(schemas.RunQuery, location="query")
    @automations_blp.response(200, schemas.Run(many=True))
    @automations_blp.paginate()
    def get(self, args, pagination_parameters, rule_id: uuid.UUID):
        """The rule's execution log, newest first."""
        stmt = automations.runs_query(current_principal(), rule_id, args.get("status"))
        return paginated(stmt, pagination_parameters)


mappings_blp = Blueprint("import-mappings", __name__, url_prefix="/import-mappings",
                         description="Saved column mappings and value transformations of "
                                     "CSV imports")


@mappings_blp.route("")
class ImportMappings(MethodView):
    @mappings_blp.arguments(schemas.ImportMappingQuery, location="query")
    @mappings_blp.response(200, schemas.ImportMapping(many=True))
    def get(self, args):
        """The tenant's saved import mappings, optionally of one kind of import."""
        return import_mappings.list_mappings(current_principal(), args.get("kind"))

    @mappings_blp.arguments(schemas.ImportMappingInput)
    @mappings_blp.response(201, schemas.ImportMapping)
    def post(self, data):
        """Save a mapping; use it as ``?mapping=<name or id>`` on an import."""
        mapping = import_mappings.create_mapping(current_principal(), data)
        db.session.commit()
        return mapping


@mappings_blp.route("/<uuid:mapping_id>")
class ImportMappingById(MethodView):
    @mappings_blp.response(200, schemas.ImportMapping)
    def get(self, mapping_id: uuid.UUID):
        """One mapping."""
        return import_mappings.get_mapping(current_principal(), mapping_id)

    @mappings_blp.arguments(schemas.ImportMappingUpdate)
    @mappings_blp.response(200, schemas.ImportMapping)
    def patch(self, data, mapping_id: uuid.UUID):
        """Change a mapping."""
        mapping = import_mappings.update_mapping(current_principal(), mapping_id, data)
        db.session.commit()
        return mapping

    @mappings_blp.response(204)
    def delete(self, mapping_id: uuid.UUID):
        """Delete a mapping."""
        import_mappings.delete_mapping(current_principal(), mapping_id)
        db.session.commit()


BLUEPRINTS = [fields_blp, webhooks_blp, objects_blp, records_blp, automations_blp,
              mappings_blp]
