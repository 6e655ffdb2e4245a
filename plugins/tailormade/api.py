"""``/api/v1/custom-fields`` and ``/api/v1/webhooks``."""

from __future__ import annotations

import uuid

from flask import jsonify
from flask.views import MethodView
from flask_smorest import Blueprint

from clientela.core.api import error_body
from clientela.core.api.auth import current_principal
from clientela.core.customers import paginated
from clientela.core.db import db
from clientela.plugins.tailormade import custom_fields, schemas, webhooks

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


BLUEPRINTS = [fields_blp, webhooks_blp]
