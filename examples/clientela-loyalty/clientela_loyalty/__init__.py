"""A loyalty programme for Clientela: points, tiers, redemptions and expiry."""

from clientela.core import hookimpl

name = "loyalty"
version = "0.1.0"
requires: tuple[str, ...] = ()
hook_api = ">=1.0,<2"


@hookimpl
def clientela_models(register):
    from clientela_loyalty.models import LoyaltyEntry

    register(LoyaltyEntry)


@hookimpl
def clientela_config_defaults(register):
    register("LOYALTY_POINTS_PER_UNIT", 1, "points per whole unit of a purchase's amount")
    register("LOYALTY_POINTS_PER_INTERACTION", 1, "points for every interaction recorded")
    register("LOYALTY_EXPIRY_DAYS", 365, "days after which unspent points expire")
    register("LOYALTY_TIERS", {"bronze": 0, "silver": 500, "gold": 2000},
             "tier -> lifetime points needed")


@hookimpl
def clientela_permissions(register):
    register("loyalty:read", "see loyalty balances and ledgers")
    register("loyalty:write", "record purchases and redemptions")


@hookimpl
def clientela_roles(register):
    for role in ("admin", "manager", "sales", "service"):
        register(role, ["loyalty:read", "loyalty:write"])
    for role in ("marketing", "analyst"):
        register(role, ["loyalty:read"])


@hookimpl
def clientela_api_blueprints(register):
    from clientela_loyalty.api import blp

    register(blp)


@hookimpl
def clientela_jobs(register):
    from clientela_loyalty import services

    register(services.expire_points, name="loyalty.expire_points",
             schedule={"minute": "15", "hour": "2"})


@hookimpl
def clientela_interaction_recorded_precommit(entity):
    from clientela_loyalty import services

    services.earn_for_interaction(entity)


@hookimpl
def clientela_customer_profile(customer):
    from clientela_loyalty import services

    summary = services.summary(customer.id)
    return {"key": "loyalty", "title": "Loyalty",
            "data": {"balance": summary["balance"], "tier": summary["tier"],
                     "lifetime_points": summary["lifetime_points"]}}


@hookimpl
def clientela_customer_export(customer):
    from clientela_loyalty import services

    return {"loyalty": services.summary(customer.id, with_entries=True)}


@hookimpl
def clientela_customer_erase(customer):
    from clientela_loyalty import services

    return {"entries_anonymised": services.erase(customer.id)}


@hookimpl
def clientela_customer_merged_precommit(survivor, merged_id):
    from clientela_loyalty import services

    services.move(merged_id, survivor.id)
