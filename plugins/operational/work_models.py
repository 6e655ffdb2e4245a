"""The operational plugin's tables for the daily work: tasks, routing rules, service cases,
SLA policies and the notifications the reminder and breach jobs leave for users."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from clientela.core.models import Entity, tenant_fk
from clientela.core.models.user import BOOKKEEPING

TASK_KINDS = ("call", "meeting", "todo", "email")
TASK_STATUSES = ("open", "in_progress", "done", "cancelled")
PRIORITIES = ("low", "normal", "high", "urgent")
#: what a task can be about (``related_type``)
RELATED_TYPES = ("customer", "lead", "deal", "case")
CASE_STATUSES = ("new", "open", "pending", "resolved", "closed")
ROUTED_TYPES = ("lead", "case", "task")
ROUTING_STRATEGIES = ("user", "round_robin", "least_loaded")
ROUTING_OPERATORS = ("equals", "not_equals", "in", "contains", "starts_with", "present",
                     "absent", "gte", "lte")
NOTIFICATION_KINDS = ("task_due", "sla_breach", "escalation", "assigned")


class Task(Entity):
    """A call, meeting, e-mail or to-do with a due time, assigned to a user (its owner), and
    optionally about a customer, a lead, a deal or a case."""

    __tablename__ = "operational_tasks"

    title: Mapped[str] = mapped_column(sa.String(300))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    kind: Mapped[str] = mapped_column(sa.String(20), default="todo")
    status: Mapped[str] = mapped_column(sa.String(20), default="open")
    priority: Mapped[str] = mapped_column(sa.String(10), default="normal")
    due_at: Mapped[dt.datetime | None]
    owner_id: Mapped[uuid.UUID | None]
    related_type: Mapped[str | None] = mapped_column(sa.String(20))
    related_id: Mapped[uuid.UUID | None]
    #: the customer the task concerns (directly, or through its lead, deal or case)
    customer_id: Mapped[uuid.UUID | None]
    completed_at: Mapped[dt.datetime | None]
    outcome: Mapped[str | None] = mapped_column(sa.String(500))
    #: when the reminder job notified the owner of the current ``due_at``
    reminded_at: Mapped[dt.datetime | None] = mapped_column(info=BOOKKEEPING)

    __table_args__ = (
        tenant_fk("owner_id", "users"),
        tenant_fk("customer_id", "customers", ondelete="CASCADE"),
        sa.CheckConstraint(f"kind IN {TASK_KINDS}", name="kind"),
        sa.CheckConstraint(f"status IN {TASK_STATUSES}", name="status"),
        sa.CheckConstraint(f"priority IN {PRIORITIES}", name="priority"),
        sa.CheckConstraint(f"related_type IN {RELATED_TYPES}", name="related_type"),
        sa.Index("ix_operational_tasks_tenant_owner_status", "tenant_id", "owner_id", "status"),
        sa.Index("ix_operational_tasks_tenant_due", "tenant_id", "status", "due_at"),
        sa.Index("ix_operational_tasks_tenant_related", "tenant_id", "related_type", "related_id"),
        sa.Index("ix_operational_tasks_tenant_customer", "tenant_id", "customer_id"),
    )


class RoutingRule(Entity):
    """Who gets a new lead, case or task that nobody was assigned to: the first active rule
    (by ``position``) whose conditions all hold picks the owner by its strategy."""

    __tablename__ = "operational_routing_rules"

    name: Mapped[str] = mapped_column(sa.String(200))
    entity_type: Mapped[str] = mapped_column(sa.String(10))
    position: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    #: ``[{"field", "operator", "value"}]``, all of which must hold
    conditions: Mapped[list] = mapped_column(default=list)
    strategy: Mapped[str] = mapped_column(sa.String(20), default="user")
    #: the users the strategy chooses from (one for ``user``)
    user_ids: Mapped[list] = mapped_column(default=list)
    #: round robin: how many records the rule has assigned (the next user is cursor % len)
    cursor: Mapped[int] = mapped_column(default=0, info=BOOKKEEPING)

    __table_args__ = (
        sa.CheckConstraint(f"entity_type IN {ROUTED_TYPES}", name="entity_type"),
        sa.CheckConstraint(f"strategy IN {ROUTING_STRATEGIES}", name="strategy"),
        sa.Index("ix_operational_routing_rules_tenant_type", "tenant_id", "entity_type",
                 "position"),
    )


class SlaPolicy(Entity):
    """Service-level targets by priority, counted in business hours."""

    __tablename__ = "operational_sla_policies"

    name: Mapped[str] = mapped_column(sa.String(200))
    is_default: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    #: ``{priority: {"first_response_minutes": int, "resolution_minutes": int}}``
    targets: Mapped[dict] = mapped_column(default=dict)
    #: ISO weekdays (1 = Monday) that are business days
    business_days: Mapped[list] = mapped_column(default=lambda: [1, 2, 3, 4, 5])
    start_hour: Mapped[int] = mapped_column(default=9)
    end_hour: Mapped[int] = mapped_column(default=17)
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    #: a breached case is reassigned to this user (else its owner is notified)
    escalation_user_id: Mapped[uuid.UUID | None]

    __table_args__ = (
        tenant_fk("escalation_user_id", "users"),
        sa.CheckConstraint("start_hour >= 0 AND end_hour <= 24 AND start_hour < end_hour",
                           name="hours"),
    )


class ServiceCase(Entity):
    """A customer's request or problem, worked on until resolved, under an SLA."""

    __tablename__ = "operational_cases"

    subject: Mapped[str] = mapped_column(sa.String(500))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    customer_id: Mapped[uuid.UUID | None]
    priority: Mapped[str] = mapped_column(sa.String(10), default="normal")
    status: Mapped[str] = mapped_column(sa.String(10), default="new")
    category: Mapped[str | None] = mapped_column(sa.String(100))
    channel: Mapped[str | None] = mapped_column(sa.String(40))
    queue: Mapped[str | None] = mapped_column(sa.String(100))
    owner_id: Mapped[uuid.UUID | None]
    sla_policy_id: Mapped[uuid.UUID | None]
    first_response_due_at: Mapped[dt.datetime | None]
    resolution_due_at: Mapped[dt.datetime | None]
    first_response_at: Mapped[dt.datetime | None]
    resolved_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None]
    first_response_breached_at: Mapped[dt.datetime | None]
    resolution_breached_at: Mapped[dt.datetime | None]
    escalated_at: Mapped[dt.datetime | None]
    satisfaction: Mapped[int | None]

    __table_args__ = (
        tenant_fk("customer_id", "customers", ondelete="CASCADE"),
        tenant_fk("owner_id", "users"),
        tenant_fk("sla_policy_id", "operational_sla_policies"),
        sa.CheckConstraint(f"status IN {CASE_STATUSES}", name="status"),
        sa.CheckConstraint(f"priority IN {PRIORITIES}", name="priority"),
        sa.CheckConstraint("satisfaction IS NULL OR (satisfaction >= 1 AND satisfaction <= 5)",
                           name="satisfaction"),
        sa.Index("ix_operational_cases_tenant_owner_status", "tenant_id", "owner_id", "status"),
        sa.Index("ix_operational_cases_tenant_status", "tenant_id", "status"),
        sa.Index("ix_operational_cases_tenant_customer", "tenant_id", "customer_id"),
    )


class CaseInteraction(Entity):
    """An interaction (a call, an e-mail, an inbound message) attached to a case."""

    __tablename__ = "operational_case_interactions"

    case_id: Mapped[uuid.UUID]
    interaction_id: Mapped[uuid.UUID]

    __table_args__ = (
        tenant_fk("case_id", "operational_cases", ondelete="CASCADE"),
        tenant_fk("interaction_id", "interactions", ondelete="CASCADE"),
        sa.UniqueConstraint("tenant_id", "case_id", "interaction_id"),
        sa.Index("ix_operational_case_interactions_tenant_interaction", "tenant_id",
                 "interaction_id"),
    )


class WorkNotification(Entity):
    """What a job told a user: a task falls due, a case breached its SLA or was escalated.

    ``key`` makes a notification unique per tenant, so a job that runs twice notifies once.
    """

    __tablename__ = "operational_notifications"

    user_id: Mapped[uuid.UUID | None]
    kind: Mapped[str] = mapped_column(sa.String(20))
    key: Mapped[str] = mapped_column(sa.String(200))
    subject: Mapped[str] = mapped_column(sa.String(500))
    related_type: Mapped[str] = mapped_column(sa.String(20))
    related_id: Mapped[uuid.UUID]
    read_at: Mapped[dt.datetime | None] = mapped_column(info=BOOKKEEPING)

    __table_args__ = (
        tenant_fk("user_id", "users", ondelete="CASCADE"),
        sa.CheckConstraint(f"kind IN {NOTIFICATION_KINDS}", name="kind"),
        sa.UniqueConstraint("tenant_id", "key"),
        sa.Index("ix_operational_notifications_tenant_user", "tenant_id", "user_id", "read_at"),
    )


WORK_MODELS = (Task, RoutingRule, SlaPolicy, ServiceCase, CaseInteraction, WorkNotification)
