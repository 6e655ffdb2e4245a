"""Per-tenant request rate limits and API-call counting, in Redis so they hold across workers.

A fixed one-minute window per tenant: ``INCR`` of ``clientela:rate:<tenant>:<minute>``
with an expiry, in one round trip. The same pipeline counts the call in the tenant's
daily usage counter (``clientela:usage:<tenant>:<YYYY-MM-DD>``), which
``services.collect_usage`` copies into ``tenant_usage``. The API calls ``check_request``
once per request with the tenant's plan limit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
import uuid

from flask import current_app, has_app_context

from clientela.core.errors import ConfigurationError, RateLimited

log = logging.getLogger(__name__)

PREFIX = "clientela"
USAGE_TTL = 40 * 24 * 3600  # long enough for a monthly invoice run to read the days


@dataclasses.dataclass(frozen=True)
class Decision:
    """What the limiter decided for one request."""

    allowed: bool
    limit: int | None
    remaining: int | None
    #: seconds until the window resets (the ``Retry-After`` of a 429)
    retry_after: int


def redis_client(url: str | None = None, optional: bool = False):
    """A Redis client for ``REDIS_URL``; ``None`` when ``optional`` and none is configured."""
    import redis

    if url is None and has_app_context():
        url = current_app.config.get("REDIS_URL")
    if not url:
        if optional:
            return None
        raise ConfigurationError("the hosted profile needs REDIS_URL for rate limits and metering")
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def _usage_key(tenant_id: uuid.UUID, day: dt.date) -> str:
    return f"{PREFIX}:usage:{tenant_id}:{day.isoformat()}"


def hit(client, tenant_id: uuid.UUID, limit: int | None, window: int = 60,
        now: float | None = None) -> Decision:
    """Count one request of the tenant and decide whether it may proceed.

    ``limit=None`` counts (for metering) without limiting. Requests refused still
    count in the window, so a client that ignores ``Retry-After`` stays refused.
    """
    now = time.time() if now is None else now
    window_start = int(now // window) * window
    rate_key = f"{PREFIX}:rate:{tenant_id}:{window_start}"
    day = dt.datetime.fromtimestamp(now, dt.timezone.utc).date()
    pipe = client.pipeline(transaction=True)
    pipe.incr(rate_key)
    pipe.expire(rate_key, window + 5)
    pipe.incr(_usage_key(tenant_id, day))
    pipe.expire(_usage_key(tenant_id, day), USAGE_TTL)
    count = pipe.execute()[0]
    retry_after = max(1, int(window_start + window - now + 0.999))
    if limit is None:
        return Decision(True, None, None, retry_after)
    return Decision(count <= limit, limit, max(0, limit - count), retry_after)


def check_request(tenant_id: uuid.UUID, limit: int | None, client=None) -> Decision:
    """``hit`` for the current app's Redis, raising ``RateLimited`` (429) when refused."""
    client = client or redis_client()
    decision = hit(client, tenant_id, limit)
    if not decision.allowed:
        raise RateLimited(
            f"rate limit of {limit} requests per minute reached; retry in "
            f"{decision.retry_after} s", retry_after=decision.retry_after,
        )
    return decision


def api_calls(client, tenant_id: uuid.UUID, day: dt.date) -> int:
    """The API calls of the tenant counted on ``day`` (UTC) by every worker."""
    value = client.get(_usage_key(tenant_id, day))
    return int(value or 0)


def check_request_if_configured(tenant_id: uuid.UUID, limit: int | None) -> Decision | None:
    """``check_request`` when ``REDIS_URL`` is set; without Redis nothing is limited or counted.

    A Redis outage lets requests through (logged): the limiter protects the service, it
    must not take it down.
    """
    import redis

    client = redis_client(optional=True)
    if client is None:
        return None
    try:
        return check_request(tenant_id, limit, client=client)
    except redis.RedisError as exc:
        log.warning("rate limiter unavailable, request let through: %s", exc)
        return None
