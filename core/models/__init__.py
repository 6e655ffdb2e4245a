"""The core's models: tenants, users and tokens, customers, interactions, audit, jobs."""

from clientela.core.models.audit import AuditEvent
from clientela.core.models.customer import (
    CUSTOMER_KINDS,
    DIRECTIONS,
    LIFECYCLE_STAGES,
    Customer,
    Interaction,
)
from clientela.core.models.entity import Entity, tenant_fk
from clientela.core.models.import_mapping import ImportMapping
from clientela.core.models.job import JOB_STATUSES, Job
from clientela.core.models.plan import OperatorToken, Plan, TenantUsage
from clientela.core.models.tenant import Tenant
from clientela.core.models.user import ApiToken, Role, User

__all__ = [
    "ApiToken",
    "AuditEvent",
    "CUSTOMER_KINDS",
    "Customer",
    "DIRECTIONS",
    "Entity",
    "ImportMapping",
    "Interaction",
    "JOB_STATUSES",
    "Job",
    "LIFECYCLE_STAGES",
    "OperatorToken",
    "Plan",
    "Role",
    "Tenant",
    "TenantUsage",
    "User",
    "tenant_fk",
]
