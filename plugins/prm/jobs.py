"""The PRM plugin's background jobs: lead offers past their deadline, contract renewal and
expiry alerts, and the repair of commissions."""

from __future__ import annotations

from clientela.plugins.prm import services


def expire_lead_offers() -> dict[str, int]:
    """Every 15 minutes: offers nobody answered in time expire; their leads move on."""
    return services.expire_offers()


def distribute_lead(lead_id) -> str | None:
    """A new lead: offer it to a partner (nothing when it is already with one, closed, or
    no partner fits). Returns the partner's id."""
    offer = services.distribute_new_lead(lead_id)
    return str(offer.partner_id) if offer is not None else None


def contract_alerts() -> dict[str, int]:
    """Daily: renew or expire ended contracts; warn channel managers of coming ends."""
    return services.contract_alerts()


def sync_commissions() -> int:
    """Nightly: every attributed deal's commission agrees with the deal (idempotent)."""
    return services.sync_all_commissions()
