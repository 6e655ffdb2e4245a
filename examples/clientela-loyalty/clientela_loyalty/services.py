"""Loyalty business logic: earning, redeeming, tiers and expiry. No request needed."""

import datetime as dt
import decimal
import uuid

import sqlalchemy as sa
from flask import current_app

from clientela.core import access, customers
from clientela.core.db import db, utcnow
from clientela.core.errors import Conflict, ValidationError
from clientela_loyalty.models import LoyaltyEntry


def _config(key):
    return current_app.config[key]


def _expiry(now: dt.datetime) -> dt.datetime:
    return now + dt.timedelta(days=int(_config("LOYALTY_EXPIRY_DAYS")))


def entries(customer_id: uuid.UUID) -> list[LoyaltyEntry]:
    return db.session.execute(
        db.select(LoyaltyEntry).where(LoyaltyEntry.customer_id == customer_id)
        .order_by(LoyaltyEntry.occurred_at, LoyaltyEntry.id)
    ).scalars().all()


def balance(customer_id: uuid.UUID) -> int:
    return db.session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(LoyaltyEntry.points), 0))
        .where(LoyaltyEntry.customer_id == customer_id)
    ).scalar_one()


def tier_for(lifetime_points: int) -> str:
    tiers = sorted(_config("LOYALTY_TIERS").items(), key=lambda item: item[1])
    reached = [name for name, threshold in tiers if lifetime_points >= threshold]
    return reached[-1] if reached else tiers[0][0]


def summary(customer_id: uuid.UUID, with_entries: bool = False) -> dict:
    rows = entries(customer_id)
    lifetime = sum(e.points for e in rows if e.kind in ("purchase", "interaction"))
    result = {"balance": sum(e.points for e in rows), "lifetime_points": lifetime,
              "tier": tier_for(lifetime)}
    if with_entries:
        result["entries"] = [
            {"id": str(e.id), "kind": e.kind, "points": e.points,
             "amount": str(e.amount) if e.amount is not None else None,
             "currency": e.currency, "description": e.description,
             "occurred_at": e.occurred_at.isoformat(),
             "expires_at": e.expires_at.isoformat() if e.expires_at else None}
            for e in rows
        ]
    return result


def record_purchase(principal, customer_id: uuid.UUID, amount: decimal.Decimal,
                    currency: str, description: str = "",
                    occurred_at: dt.datetime | None = None) -> LoyaltyEntry:
    access.require(principal, "loyalty:write")
    customers.get_customer(customer_id, principal)
    if amount <= 0:
        raise ValidationError({"amount": ["must be positive"]})
    now = occurred_at or utcnow()
    points = int(amount * decimal.Decimal(str(_config("LOYALTY_POINTS_PER_UNIT"))))
    entry = LoyaltyEntry(customer_id=customer_id, kind="purchase", points=points, amount=amount,
                         currency=currency.upper(), description=description, occurred_at=now,
                         expires_at=_expiry(now))
    db.session.add(entry)
    db.session.flush()
    return entry


def redeem(principal, customer_id: uuid.UUID, points: int, description: str = "") -> LoyaltyEntry:
    access.require(principal, "loyalty:write")
    customers.get_customer(customer_id, principal)
    if points <= 0:
        raise ValidationError({"points": ["must be positive"]})
    available = balance(customer_id)
    if points > available:
        raise Conflict(f"the balance is {available} points; cannot redeem {points}")
    entry = LoyaltyEntry(customer_id=customer_id, kind="redemption", points=-points,
                         description=description, occurred_at=utcnow())
    db.session.add(entry)
    db.session.flush()
    return entry


def earn_for_interaction(interaction) -> None:
    points = int(_config("LOYALTY_POINTS_PER_INTERACTION"))
    if points <= 0:
        return
    db.session.add(LoyaltyEntry(
        customer_id=interaction.customer_id, kind="interaction", points=points,
        description=f"{interaction.channel} interaction", occurred_at=interaction.occurred_at,
        expires_at=_expiry(interaction.occurred_at)))


def expire_points(now: dt.datetime | None = None) -> int:
    """Expire what is left of earned points past their date, oldest first (FIFO).

    Spent points (redemptions, earlier expiries) are taken from the oldest earnings first;
    whatever an overdue earning still holds becomes an ``expiry`` entry. Runs nightly in
    every tenant (scheduled job); returns the points expired.
    """
    now = now or utcnow()
    customer_ids = db.session.execute(
        sa.select(LoyaltyEntry.customer_id).where(
            LoyaltyEntry.expires_at <= now, LoyaltyEntry.settled.is_(False)).distinct()
    ).scalars().all()
    expired_total = 0
    for customer_id in customer_ids:
        rows = entries(customer_id)
        spent = -sum(e.points for e in rows if e.points < 0)
        for entry in (e for e in rows if e.points > 0):
            used = min(spent, entry.points)
            spent -= used
            left = entry.points - used
            if entry.settled or entry.expires_at is None or entry.expires_at > now:
                continue
            entry.settled = True
            if left > 0:
                db.session.add(LoyaltyEntry(
                    customer_id=customer_id, kind="expiry", points=-left, occurred_at=now,
                    description=f"expiry of points earned {entry.occurred_at.date()}"))
                expired_total += left
    db.session.flush()
    return expired_total


def erase(customer_id: uuid.UUID) -> int:
    rows = entries(customer_id)
    for entry in rows:
        entry.description = ""
    return len(rows)


def move(from_customer: uuid.UUID, to_customer: uuid.UUID) -> None:
    db.session.execute(
        sa.update(LoyaltyEntry).where(LoyaltyEntry.customer_id == from_customer)
        .values(customer_id=to_customer).execution_options(synchronize_session="fetch"))
