"""Secrets stored encrypted at rest (webhook secrets, mail passwords): Fernet, keyed by
the instance's ``SECRET_KEY``.

Each use derives its own key with HKDF (``purpose`` and ``salt`` name the use), so a value
encrypted for one purpose does not decrypt for another. Changing ``SECRET_KEY`` makes the
stored values unreadable (:class:`CannotDecrypt`): they must be set again.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

from clientela.core.errors import ConfigurationError


class CannotDecrypt(ConfigurationError):
    """A stored value does not decrypt with this instance's ``SECRET_KEY``."""


def fernet(purpose: str, salt: str = "clientela", secret_key: str | None = None) -> Fernet:
    """The Fernet of ``purpose``, its key derived from ``secret_key`` (default: the current
    app's ``SECRET_KEY``)."""
    secret = secret_key if secret_key is not None else current_app.config.get("SECRET_KEY")
    if not secret:
        raise ConfigurationError(f"SECRET_KEY (CLIENTELA_SECRET_KEY) is needed to store "
                                 f"{purpose} encrypted")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt.encode(),
               info=purpose.encode()).derive(str(secret).encode())
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(value: str | None, purpose: str, salt: str = "clientela") -> str | None:
    """``value`` encrypted (a URL-safe text token), ``None`` for ``None``."""
    return None if value is None else fernet(purpose, salt).encrypt(value.encode()).decode()


def decrypt(value: str | None, purpose: str, salt: str = "clientela") -> str | None:
    """The text ``encrypt`` was given; :class:`CannotDecrypt` if the key does not fit."""
    if value is None:
        return None
    try:
        return fernet(purpose, salt).decrypt(value.encode()).decode()
    except InvalidToken:
        raise CannotDecrypt(f"stored {purpose} cannot be decrypted: was the SECRET_KEY "
                            "changed? Set them again") from None


__all__ = ["CannotDecrypt", "decrypt", "encrypt", "fernet"]
