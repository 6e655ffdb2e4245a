"""The core's models: tenants, users and tokens, customers, interactions, audit."""

from clientela.core.models.audit import AuditEvent
from clientela.core.models.customer import (
    CUSTOMER_KINDS,
    DIRECTIONS,
    LIFECYCLE_STAGES,
    Customer,
    Interaction,
)
from clientela.core.models.entity import Entity, tenant_fk
from clientela.core.models.tenant import Tenant
from clientela.core.models.user import ApiToken, Role, User

__all__ = [
    "ApiToken",
    "AuditEvent",
    "CUSTOMER_KINDS",
    "Customer",
    "DIRECTIONS",
    "Entity",
    "Interaction",
    "LIFECYCLE_STAGES",
    "Role",
    "Tenant",
    "User",
    "tenant_fk",
]
