"""The interface of a deployment profile, and how the core finds one by name.

A profile sets the database, decides which tenant a request or a command acts as and
which plugins are enabled, and adds its own commands. Profiles are drivers in the
``clientela.profiles`` entry-point group, so the core never imports one by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stevedore import DriverManager
from stevedore.exception import NoMatches

from clientela.core.errors import ConfigurationError

if TYPE_CHECKING:
    from flask import Flask

    from clientela.core.models import Tenant

PROFILE_GROUP = "clientela.profiles"


class Profile:
    """Base class of deployment profiles."""

    name = "base"

    def configure(self, app: Flask) -> None:
        """Set configuration defaults and refuse what this profile cannot run on."""

    def init_app(self, app: Flask) -> None:
        """Install request handling (tenant resolution) once the app is built."""

    def cli_tenant(self, slug: str | None) -> Tenant:
        """The tenant a tenant-scoped command acts as (``clientela --tenant SLUG``)."""
        raise NotImplementedError

    def cli_commands(self) -> list:
        """click commands that only this profile has."""
        return []


def load_profile(name: str) -> Profile:
    try:
        manager = DriverManager(PROFILE_GROUP, name, invoke_on_load=True)
    except NoMatches:
        raise ConfigurationError(
            f"unknown profile '{name}' (CLIENTELA_PROFILE): use 'onprem' or 'hosted'"
        ) from None
    return manager.driver
