"""The tailor-made plugin's tables: custom field definitions, webhook subscriptions, deliveries."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from clientela.core import encryption
from clientela.core.db import JSONType
from clientela.core.models import Entity, tenant_fk

FIELD_TYPES = ("text", "long_text", "integer", "decimal", "boolean", "date", "datetime",
               "single_choice", "multiple_choice", "email", "url", "phone", "reference")
DELIVERY_STATUSES = ("pending", "retrying", "succeeded", "failed")
SECRET = {"secret": True}  # never in the audit trail nor in event values
#: the ``purpose`` webhook secrets are encrypted for (``clientela.core.encryption``)
WEBHOOK_SECRETS = "webhook secrets"


class CustomField(Entity):
    """A tenant-defined field of an entity type; its values live in ``attributes[key]``."""

    __tablename__ = "tailormade_custom_fields"

    entity_type: Mapped[str] = mapped_column(sa.String(63))
    key: Mapped[str] = mapped_column(sa.String(63))
    label: Mapped[str] = mapped_column(sa.String(200), default="")
    description: Mapped[str] = mapped_column(sa.Text, default="")
    type: Mapped[str] = mapped_column(sa.String(20))
    required: Mapped[bool] = mapped_column(default=False)
    is_unique: Mapped[bool] = mapped_column(default=False)
    default_value: Mapped[Any | None] = mapped_column(JSONType)
    #: the allowed values of a single or multiple choice field
    choices: Mapped[list] = mapped_column(default=list)
    #: bounds: of the value (numbers, dates), its length (texts) or the number chosen
    min_value: Mapped[Any | None] = mapped_column(JSONType)
    max_value: Mapped[Any | None] = mapped_column(JSONType)
    pattern: Mapped[str | None] = mapped_column(sa.String(500))
    #: the entity type a reference field points to
    target: Mapped[str | None] = mapped_column(sa.String(63))
    position: Mapped[int] = mapped_column(default=0)

    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "entity_type", "key"),
        sa.CheckConstraint(f"type IN {FIELD_TYPES}", name="type"),
    )


class Webhook(Entity):
    """A subscription of a URL to entity events, signed with a shared secret."""

    __tablename__ = "tailormade_webhooks"

    url: Mapped[str] = mapped_column(sa.String(2000))
    #: patterns such as ``customers.insert``, ``customers.*``, ``*.delete``, ``*``
    events: Mapped[list] = mapped_column(default=list)
    #: the shared secret, encrypted at rest (Fernet, ``clientela.core.encryption``): read
    #: and set it as ``secret``
    secret_encrypted: Mapped[str] = mapped_column(sa.Text, info=SECRET)
    description: Mapped[str] = mapped_column(sa.String(300), default="")
    active: Mapped[bool] = mapped_column(default=True)
    #: deliveries in a row that failed for good; reset by a success or by re-enabling
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    #: why the plugin switched the webhook off, if it did
    disabled_reason: Mapped[str | None] = mapped_column(sa.String(300))

    @property
    def secret(self) -> str:
        """The secret signatures are made with (``CannotDecrypt`` if ``SECRET_KEY`` changed)."""
        return encryption.decrypt(self.secret_encrypted, WEBHOOK_SECRETS)

    @secret.setter
    def secret(self, value: str) -> None:
        self.secret_encrypted = encryption.encrypt(value, WEBHOOK_SECRETS)


class WebhookDelivery(Entity):
    """One event sent (or being sent) to one webhook: payload, attempts, last response.

    Written with statements, not the ORM, so that delivery bookkeeping does not fill the
    audit trail (as for jobs).
    """

    __tablename__ = "tailormade_webhook_deliveries"

    webhook_id: Mapped[uuid.UUID]
    event: Mapped[str] = mapped_column(sa.String(100))
    entity_type: Mapped[str] = mapped_column(sa.String(63))
    entity_id: Mapped[uuid.UUID | None]
    #: the customer the payload is about (the entity, or the customer it belongs to):
    #: what erasure redacts
    customer_id: Mapped[uuid.UUID | None]
    payload: Mapped[dict] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(sa.String(20), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    job_id: Mapped[uuid.UUID | None]
    response_status: Mapped[int | None]
    response_body: Mapped[str | None] = mapped_column(sa.Text)
    error: Mapped[str | None] = mapped_column(sa.Text)
    duration_ms: Mapped[int | None]
    last_attempt_at: Mapped[dt.datetime | None]
    delivered_at: Mapped[dt.datetime | None]

    __table_args__ = (
        tenant_fk("webhook_id", "tailormade_webhooks", ondelete="CASCADE"),
        sa.CheckConstraint(f"status IN {DELIVERY_STATUSES}", name="status"),
        sa.Index("ix_tailormade_webhook_deliveries_tenant_webhook", "tenant_id", "webhook_id",
                 "created_at"),
        sa.Index("ix_tailormade_webhook_deliveries_tenant_customer", "tenant_id",
                 "customer_id"),
    )


class CustomObject(Entity):
    """A tenant-defined record type (``vehicle``, ``contract``…); its fields are custom
    fields of entity type ``custom:<key>``, its records ``CustomRecord`` rows."""

    __tablename__ = "tailormade_custom_objects"

    key: Mapped[str] = mapped_column(sa.String(40))
    label: Mapped[str] = mapped_column(sa.String(200), default="")
    plural_label: Mapped[str] = mapped_column(sa.String(200), default="")
    description: Mapped[str] = mapped_column(sa.Text, default="")

    __table_args__ = (sa.UniqueConstraint("tenant_id", "key"),)


class CustomRecord(Entity):
    """One record of a custom object: a title, optional links to a customer and an owner,
    and the object's field values in ``attributes`` (no table per object: no DDL)."""

    __tablename__ = "tailormade_custom_records"

    object_id: Mapped[uuid.UUID]
    title: Mapped[str] = mapped_column(sa.String(300))
    customer_id: Mapped[uuid.UUID | None]
    owner_id: Mapped[uuid.UUID | None]

    __table_args__ = (
        tenant_fk("object_id", "tailormade_custom_objects", ondelete="CASCADE"),
        tenant_fk("customer_id", "customers", ondelete="CASCADE"),
        tenant_fk("owner_id", "users"),
        sa.Index("ix_tailormade_custom_records_tenant_object_title", "tenant_id", "object_id",
                 "title"),
        sa.Index("ix_tailormade_custom_records_tenant_customer", "tenant_id", "customer_id"),
        sa.Index("ix_tailormade_custom_records_tenant_owner", "tenant_id", "owner_id"),
    )


TRIGGERS = ("created", "updated", "stage_changed", "interaction_recorded", "date_reached")
RUN_STATUSES = ("succeeded", "failed", "not_matched", "skipped")


class AutomationRule(Entity):
    """When (trigger), if (conditions), do (actions): run as a job after the event commits."""

    __tablename__ = "tailormade_automation_rules"

    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    active: Mapped[bool] = mapped_column(default=True)
    trigger: Mapped[str] = mapped_column(sa.String(30))
    #: what the rule watches: ``customers``, ``operational_deals``, ``custom:vehicle``…
    entity_type: Mapped[str] = mapped_column(sa.String(63))
    #: ``updated``: the field whose change fires it (any change if empty);
    #: ``date_reached``: the date field; ``stage_changed``: the stage column (guessed)
    trigger_field: Mapped[str | None] = mapped_column(sa.String(100))
    #: ``date_reached``: days after (or, negative, before) the date
    offset_days: Mapped[int] = mapped_column(default=0)
    #: ``{"all": [...]}`` / ``{"any": [...]}`` of ``{"field", "op", "value"}``; ``{}`` is true
    conditions: Mapped[dict] = mapped_column(default=dict)
    #: ``[{"type": "set_field", "params": {...}}, ...]``, run in order
    actions: Mapped[list] = mapped_column(default=list)

    __table_args__ = (
        sa.CheckConstraint(f"trigger IN {TRIGGERS}", name="trigger"),
    )


class AutomationRun(Entity):
    """One execution of a rule (its log); written with statements, like deliveries."""

    __tablename__ = "tailormade_automation_runs"

    rule_id: Mapped[uuid.UUID]
    status: Mapped[str] = mapped_column(sa.String(20))
    event: Mapped[str] = mapped_column(sa.String(100))
    entity_type: Mapped[str | None] = mapped_column(sa.String(63))
    entity_id: Mapped[uuid.UUID | None]
    #: how many rules led here (1: fired by a user's or an import's write)
    depth: Mapped[int] = mapped_column(default=1)
    #: what fired it, unique per rule for date triggers (one run per record and date)
    trigger_key: Mapped[str | None] = mapped_column(sa.String(200))
    results: Mapped[list] = mapped_column(default=list)
    error: Mapped[str | None] = mapped_column(sa.Text)
    job_id: Mapped[uuid.UUID | None]

    __table_args__ = (
        tenant_fk("rule_id", "tailormade_automation_rules", ondelete="CASCADE"),
        sa.CheckConstraint(f"status IN {RUN_STATUSES}", name="status"),
        sa.Index("ix_tailormade_automation_runs_tenant_rule", "tenant_id", "rule_id",
                 "created_at"),
        sa.Index("ix_tailormade_automation_runs_tenant_trigger_key", "tenant_id",
                 "trigger_key"),
    )


MODELS = (CustomField, Webhook, WebhookDelivery, CustomObject, CustomRecord, AutomationRule,
          AutomationRun)
