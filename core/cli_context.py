"""``tenant_command``: run a click command inside the tenant the profile chooses.

A module of its own, importing no command list, so that every module defining commands
(the core's, jobs, imports, plugins) can import it directly.
"""

from __future__ import annotations

import functools

import click
from flask import current_app

from clientela.core import migrations, tenancy
from clientela.core.errors import ConfigurationError


def tenant_command(fn):
    """Run a command inside the tenant chosen by the profile (``--tenant SLUG`` if hosted).

    The command runs with an app context, the tenant's context and origin ``cli``, and
    receives the ``Tenant`` as its first argument.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        ctx = click.get_current_context()
        pending = migrations.pending_heads(current_app)
        if pending:
            raise ConfigurationError(
                f"the database is not current ({', '.join(pending)} pending): "
                "run 'clientela init' first (or 'clientela db upgrade')"
            )
        slug = ctx.find_root().params.get("tenant")
        ext = current_app.extensions["clientela"]
        tenant = ext.profile.cli_tenant(slug)
        top = ctx
        while top.parent is not None and top.parent.parent is not None:
            top = top.parent
        owner = getattr(top.command, "_clientela_plugin", None)
        if owner is not None and owner in ext.hidden_plugins(tenant):
            raise ConfigurationError(
                f"plugin '{owner}' is not enabled for tenant '{tenant.slug}' "
                f"(plan {tenant.plan or 'none'})")
        with tenancy.tenant_context(tenant.id, origin="cli"):
            return fn(tenant, *args, **kwargs)

    return wrapper
