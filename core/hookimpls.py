"""The core's own hook implementations: it is registered first, as the plugin ``core``.

Like pytest's essential plugins, it cannot be disabled.
"""

from __future__ import annotations

import datetime as dt
import random

from clientela.core import hookimpl, services
from clientela.core.db import db
from clientela.core.models import (
    ApiToken,
    AuditEvent,
    Customer,
    ImportMapping,
    Interaction,
    Job,
    Plan,
    Role,
    Tenant,
    TenantUsage,
    User,
)

name = "core"

PERMISSIONS = {
    "customers:read": "see customers and their profile",
    "customers:write": "create and change customers",
    "customers:delete": "delete customers",
    "customers:merge": "merge duplicate customers",
    "customers:export": "export a customer's data (data-subject access)",
    "customers:erase": "erase a customer's personal data",
    "interactions:read": "see interactions",
    "interactions:write": "record and change interactions",
    "users:read": "see the tenant's users",
    "users:write": "create and change users and roles",
    "tokens:write": "create and revoke one's own API tokens",
    "audit:read": "read the audit trail",
    "jobs:read": "see background jobs",
    "jobs:write": "retry and purge background jobs",
}


@hookimpl
def clientela_models(register):
    for model in (Tenant, User, ApiToken, Role, Customer, Interaction, AuditEvent, Plan,
                  TenantUsage, ImportMapping, Job):
        register(model)


@hookimpl
def clientela_jobs(register):
    from clientela.core import jobs

    jobs.register_core_jobs(register)


@hookimpl
def clientela_permissions(register):
    for perm, description in PERMISSIONS.items():
        register(perm, description)


@hookimpl
def clientela_roles(register):
    register("admin", list(PERMISSIONS))
    everyone = ["customers:read", "interactions:read", "tokens:write"]
    register("manager", everyone + ["customers:write", "customers:merge",
                                    "interactions:write", "users:read", "audit:read"])
    for role in ("sales", "marketing", "service"):
        register(role, everyone + [("customers:write", "own"), "interactions:write"])
    register("analyst", everyone)


@hookimpl
def clientela_api_blueprints(register):
    from clientela.core.api import admin, customers
    from clientela.core.api import jobs as jobs_api

    for blueprint in (customers.blp, customers.interactions_blp, customers.search_blp,
                      *admin.BLUEPRINTS, jobs_api.blp):
        register(blueprint)


@hookimpl
def clientela_cli_commands(register):
    from clientela.core import commands

    for command in commands.CORE_COMMANDS:
        register(command)


_FIRST = ["Giulia", "Marco", "Sofia", "Luca", "Chiara", "Matteo", "Elena", "Paolo", "Anna",
          "Davide", "Laura", "Stefano", "Marta", "Andrea", "Sara", "Carlos", "Lucía", "Jane"]
_LAST = ["Rossi", "Bianchi", "Ferrari", "Esposito", "Romano", "Colombo", "Ricci", "Marino",
         "Greco", "Bruno", "Gallo", "Conti", "García", "Smith"]
_ORGS = ["Tessitura Lariana", "Meccanica Bresciana", "Ceramiche Sassuolo", "Calzaturificio Brenta",
         "Mobilificio Brianza", "Oleificio Sabino"]
_CHANNELS = ["phone", "email", "in_person", "letter", "web_form", "portal"]


@hookimpl
def clientela_demo_data(tenant):
    rng = random.Random(42)  # the same demo every time
    orgs = []
    for i, org in enumerate(_ORGS):
        orgs.append(services.create_customer({
            "kind": "organisation", "organisation_name": org, "stage": "customer",
            "email": f"info@{org.split()[0].lower()}{i}.example", "website":
            f"https://{org.split()[0].lower()}{i}.example", "tags": ["district"],
        }))
    now = dt.datetime.now(dt.timezone.utc)
    for i in range(30):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        customer = services.create_customer({
            "first_name": first, "last_name": last,
            "email": f"{first}.{last}{i}@example.com".lower(),
            "phone": f"+39 06 {rng.randint(1000000, 9999999)}",
            "stage": rng.choice(["lead", "prospect", "customer", "customer", "former"]),
            "organisation_id": rng.choice(orgs).id,
            "tags": rng.sample(["vip", "newsletter", "trade-fair", "export"], rng.randint(0, 2)),
        })
        for _ in range(rng.randint(1, 5)):
            services.record_interaction(
                customer.id, rng.choice(_CHANNELS),
                direction=rng.choice(["inbound", "outbound"]),
                occurred_at=now - dt.timedelta(days=rng.randint(0, 365), hours=rng.randint(0, 23)),
                subject=rng.choice(["Price list request", "Follow-up call", "Order question",
                                    "Complaint about delivery", "Meeting at the fair"]),
            )
    db.session.flush()
