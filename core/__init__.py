"""The Clientela core: models, tenancy, hooks, security and the application factory."""

import pluggy

__version__ = "0.1.0"

#: Version of the hook API that plugins are written against (semantic versioning:
#: a new hook bumps the minor, a changed or removed hook bumps the major).
HOOK_API_VERSION = "1.2"

PROJECT_NAME = "clientela"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = ["__version__", "HOOK_API_VERSION", "hookimpl", "hookspec"]
