"""Errors a user or a plugin can cause, each with a message fit to show as it is."""


class ClientelaError(Exception):
    """Base of every error the product reports to a person instead of a traceback."""


class ConfigurationError(ClientelaError):
    """The configuration or the environment cannot work (bad URL, wrong profile, ...)."""


class PluginError(ClientelaError):
    """A plugin cannot be loaded: it does not import, a requirement is missing, a cycle."""

    def __init__(self, plugin: str, cause: str):
        self.plugin = plugin
        self.cause = cause
        super().__init__(f"plugin '{plugin}': {cause}")


class NoTenantError(ClientelaError):
    """Tenant-owned data was touched while no tenant was set."""


class CrossTenantError(ClientelaError):
    """A write tried to touch a row of another tenant than the current one."""


class NotFound(ClientelaError):
    """The record does not exist, or the caller may not see it (same answer for both)."""


class Conflict(ClientelaError):
    """The write conflicts with existing data (a duplicate e-mail, slug, ...)."""


class ValidationError(ClientelaError):
    """Input is invalid; ``errors`` maps each field to its messages.

    Raised by services and by ``*_precommit`` hooks to veto a write.
    """

    def __init__(self, errors: dict[str, list[str]] | str, message: str = "Invalid input."):
        if isinstance(errors, str):
            errors = {"_schema": [errors]}
        self.errors = errors
        self.message = message
        super().__init__(f"{message} {errors}")


class Unauthorized(ClientelaError):
    """No valid credentials (API: 401)."""


class Forbidden(ClientelaError):
    """Authenticated, but not allowed to do this to something the caller may see (API: 403).

    Also used for a suspended tenant and an exceeded record quota, with a message that
    says which.
    """


class RateLimited(ClientelaError):
    """Too many requests (API: 429 with ``Retry-After``)."""

    def __init__(self, message: str = "Too many requests.", retry_after: int = 60):
        self.retry_after = retry_after
        super().__init__(message)
