"""Passwords (argon2id), API tokens (random, stored as SHA-256) and the core's permissions."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# argon2-cffi's defaults are argon2id with RFC 9106's low-memory profile.
_hasher = PasswordHasher()

TOKEN_PREFIX = "cla_"
#: operator tokens (hosted operator API) are another kind, never accepted as API tokens
OPERATOR_TOKEN_PREFIX = "clo_"
MIN_PASSWORD_LENGTH = 10


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    return secrets.token_urlsafe(15)


def generate_token(prefix: str = TOKEN_PREFIX) -> str:
    """A new API (or, with ``OPERATOR_TOKEN_PREFIX``, operator) token: 256 random bits,
    with a recognisable prefix."""
    return prefix + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_display_prefix(token: str) -> str:
    """What lists show of a token, enough to tell tokens apart and nothing to use."""
    return token[: len(TOKEN_PREFIX) + 6]


def is_expired(expires_at: dt.datetime | None, now: dt.datetime) -> bool:
    return expires_at is not None and expires_at <= now
