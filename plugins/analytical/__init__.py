"""Analytical CRM: the customer data warehouse, profiling, RFM, lifetime value, churn, cross/up-sell, cohorts, segments."""

from clientela.core import hookimpl
from clientela.plugins.analytical.web_hooks import *  # noqa: F401,F403  (web UI pages)

name = "analytical"
version = "0.1.0"
requires: tuple[str, ...] = ()

PERMISSIONS = {
    "analytics:read": "see customer analytics (profiles, RFM, CLV, churn, cohorts, "
                      "associations) and segments",
    "analytics:refresh": "refresh the tenant's data warehouse",
    "analytics:import": "import transactions and customer attributes into the warehouse, "
                        "save import mappings",
    "segments:write": "create, change and delete saved segments",
}

#: key -> (default, description)
DEFAULTS = {
    "ANALYTICAL_CURRENCY": ("EUR", "reporting currency of the warehouse's amounts"),
    "ANALYTICAL_EXCHANGE_RATES": ({}, "currency -> units of ANALYTICAL_CURRENCY per unit, for "
                                      "imported transactions in other currencies"),
    "ANALYTICAL_CLV_LIFESPAN_YEARS": (3.0, "expected customer lifespan in the CLV model"),
    "ANALYTICAL_CLV_MARGIN": (1.0, "gross margin applied to revenue in the CLV model "
                                   "(1 = revenue)"),
    "ANALYTICAL_CLV_MIN_YEARS": (1.0, "shortest observation period (years) used to annualise "
                                      "a customer's purchases"),
    "ANALYTICAL_CLV_DISCOUNT_RATE": (0.10, "annual discount rate of the probabilistic "
                                           "(BG/NBD + Gamma-Gamma) lifetime value"),
    "ANALYTICAL_CHURN_HORIZON_WEEKS": (26, "BG/NBD churn: the probability of no purchase "
                                           "in this many weeks"),
    "ANALYTICAL_CHURN_PROBABILITY_LEVELS": ([0.5, 0.8], "BG/NBD churn risk: low below the "
                                                        "first, high from the second"),
    "ANALYTICAL_CHURN_FACTOR": (2.0, "a customer is churned after this many usual "
                                     "inter-purchase intervals without a purchase"),
    "ANALYTICAL_CHURN_DEFAULT_INTERVAL_DAYS": (90.0, "the usual interval assumed for a "
                                                     "customer with a single purchase"),
    "ANALYTICAL_LOCK_TIMEOUT": (30, "seconds to wait for a warehouse file another process holds"),
}


def refresh_warehouse():
    """The scheduled refresh: load what changed since the last one (runs in each tenant)."""
    from clientela.plugins.analytical import warehouse

    warehouse.refresh()


def refresh_segments(segment_id=None):
    """The scheduled segment refresh: materialise every saved segment's members (or one)."""
    from clientela.plugins.analytical import membership

    membership.refresh_segments(segment_id)


@hookimpl
def clientela_models(register):
    from clientela.plugins.analytical.models import MODELS

    for model in MODELS:
        register(model)


@hookimpl
def clientela_config_defaults(register):
    for key, (default, description) in DEFAULTS.items():
        register(key, default, description)


@hookimpl
def clientela_permissions(register):
    for permission, description in PERMISSIONS.items():
        register(permission, description)


@hookimpl
def clientela_roles(register):
    register("admin", list(PERMISSIONS))
    register("manager", list(PERMISSIONS))
    register("analyst", list(PERMISSIONS))
    register("marketing", ["analytics:read", "segments:write"])
    # analyst, manager and admin get analytics:import with the rest (list(PERMISSIONS))


@hookimpl
def clientela_api_blueprints(register):
    from clientela.plugins.analytical import api

    for blueprint in api.BLUEPRINTS:
        register(blueprint)


@hookimpl
def clientela_cli_commands(register):
    from clientela.plugins.analytical.cli import warehouse_group

    register(warehouse_group)


@hookimpl
def clientela_jobs(register):
    # hourly, at a minute of its own; the refresh is incremental, so it is cheap when idle
    register(refresh_warehouse, name="analytical.refresh_warehouse", retries=2,
             retry_delay=60, schedule={"minute": "7"})
    # ten minutes after the warehouse refresh, so the lists see the data it loaded
    register(refresh_segments, name="analytical.refresh_segments", retries=2,
             retry_delay=60, schedule={"minute": "17"})


@hookimpl
def clientela_warehouse_facts(register):
    from clientela.core.models import Interaction

    register("interaction", Interaction, ["channel", "direction", "outcome", "user_id"],
             time_column="occurred_at")


def _may_read_analytics() -> bool:
    from flask import g, has_request_context

    if not has_request_context():
        return True
    principal = g.get("principal")
    return principal is None or principal.can("analytics:read")


@hookimpl
def clientela_customer_profile(customer):
    from clientela.plugins.analytical import services, warehouse

    if not _may_read_analytics() or not warehouse.exists():
        return None
    try:
        # the 360-degree view must not hang on a refresh running in another process
        data = services.summary(customer.id, with_offers=False, wait=2)
    except warehouse.WarehouseBusy:
        return {"key": "analytics", "title": "Analytics",
                "data": {"unavailable": "the warehouse is being refreshed; try again shortly"}}
    keys = ("in_warehouse", "as_of", "rfm_segment", "rfm_score", "clv", "churn_risk",
            "orders", "revenue", "first_purchase", "last_purchase", "channels", "bgnbd")
    return {"key": "analytics", "title": "Analytics",
            "data": {k: data.get(k) for k in keys}}


@hookimpl
def clientela_customer_export(customer):
    from clientela.plugins.analytical import warehouse

    held = warehouse.customer_data(customer.id)
    return {"analytical_warehouse": held} if held is not None else None


@hookimpl
def clientela_customer_erase(customer):
    from clientela.plugins.analytical import warehouse

    return warehouse.erase_customer(customer.id)


SEGMENT_PREFIX = "analytical:"


@hookimpl
def clientela_segments():
    """The tenant's saved segments, for campaigns (ids ``analytical:<uuid>``); ``size`` is
    the count of the materialised membership, ``None`` until the segment's current rules
    have been materialised (or while the warehouse is busy)."""
    from clientela.core.db import db
    from clientela.plugins.analytical import membership
    from clientela.plugins.analytical.models import AnalyticalSegment

    saved = db.session.execute(db.select(AnalyticalSegment).order_by(AnalyticalSegment.name))
    sizes = membership.sizes()
    return [{"id": f"{SEGMENT_PREFIX}{segment.id}", "name": segment.name,
             "size": sizes.get(segment.id), "source": name}
            for segment in saved.scalars()]


@hookimpl
def clientela_segment_members(segment_id):
    """The customer ids of one of our segments as last materialised (materialised first when
    its rules never were); ``None`` for another plugin's id.

    An ``analytical:`` id that is not a segment of the current tenant raises ``NotFound``.
    """
    import uuid

    from clientela.core.errors import NotFound
    from clientela.plugins.analytical import segments

    if not isinstance(segment_id, str) or not segment_id.startswith(SEGMENT_PREFIX):
        return None
    try:
        key = uuid.UUID(segment_id[len(SEGMENT_PREFIX):])
    except ValueError:
        raise NotFound("segment not found") from None
    return segments.member_ids(key)
