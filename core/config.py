"""Configuration: defaults < plugins' defaults < ``clientela.toml`` < environment < arguments.

Environment variables are ``CLIENTELA_<KEY>`` (``CLIENTELA_SECRET_KEY`` sets
``SECRET_KEY``), plus the plain ``DATABASE_URL`` and ``REDIS_URL``. The optional file
``$CLIENTELA_HOME/clientela.toml`` holds top-level keys and sections; a section's keys
are prefixed with its name (``[plugins] disabled = ["prm"]`` sets ``PLUGINS_DISABLED``).
"""

from __future__ import annotations

import os
import secrets
import tomllib
from typing import Any

from flask import Flask

from clientela.core.errors import ConfigurationError

CONFIG_FILE = "clientela.toml"

DEFAULTS: dict[str, Any] = {
    "PROFILE": "onprem",
    "PLUGINS_ENABLED": None,  # allow list; None = every installed plugin
    "PLUGINS_DISABLED": [],
    "PHONE_DEFAULT_REGION": None,
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    "JSON_SORT_KEYS": False,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "PERMANENT_SESSION_LIFETIME": 12 * 3600,
    "LOGIN_RATE_LIMIT": "5 per minute",
}


def default_home() -> str:
    return os.path.abspath(os.environ.get("CLIENTELA_HOME") or "instance")


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}".upper().replace("-", "_")
        if isinstance(value, dict) and key.upper() not in ("SQLALCHEMY_ENGINE_OPTIONS",):
            flat.update(_flatten(value, name + "_"))
        else:
            flat[name] = value
    return flat


def read_config_file(home: str) -> dict[str, Any]:
    path = os.path.join(home, CONFIG_FILE)
    if not os.path.exists(path):
        return {}
    try:
        with open(path, "rb") as fh:
            return _flatten(tomllib.load(fh))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path}: {exc}") from exc


def load(app: Flask, overrides: dict[str, Any]) -> None:
    """Fill ``app.config`` from every source, in order of precedence."""
    overrides = {k.upper(): v for k, v in overrides.items()}
    home = os.path.abspath(overrides.get("HOME") or default_home())
    app.config.from_mapping(DEFAULTS)
    app.config.update(read_config_file(home))
    app.config.from_prefixed_env("CLIENTELA")
    for env, key in (("DATABASE_URL", "SQLALCHEMY_DATABASE_URI"), ("REDIS_URL", "REDIS_URL")):
        if os.environ.get(env):
            app.config[key] = os.environ[env]
    if "DATABASE_URL" in overrides:
        overrides["SQLALCHEMY_DATABASE_URI"] = overrides.pop("DATABASE_URL")
    if "DATABASE_URL" in app.config:
        app.config.setdefault("SQLALCHEMY_DATABASE_URI", app.config.pop("DATABASE_URL"))
    app.config.update(overrides)
    app.config["HOME"] = home


def ensure_secret_key(app: Flask) -> None:
    """On a machine of its own, Clientela makes and keeps its secret key in the home folder."""
    if app.config.get("SECRET_KEY"):
        return
    path = os.path.join(app.config["HOME"], "secret_key")
    if not os.path.exists(path):
        os.makedirs(app.config["HOME"], exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    with open(path) as fh:
        app.config["SECRET_KEY"] = fh.read().strip()
