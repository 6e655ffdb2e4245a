"""``create_app(profile, **config)``: the Flask application factory."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import click
import sqlalchemy as sa
from flask import Blueprint, Flask, current_app, g, has_app_context
from sqlalchemy import event

from flask_smorest import Blueprint as SmorestBlueprint

from clientela.core import api, config, health, hookimpls, web
from clientela.core.api import auth
from clientela.core import events  # noqa: F401  (installs the audit and hook listeners)
from clientela.core import tenancy  # noqa: F401  (installs the tenancy listeners)
from clientela.core.db import Base, db
from clientela.core.errors import PluginError
from clientela.core.models import Entity
from clientela.core.plugins import CORE, PluginRegistry
from clientela.core.profile import Profile, load_profile

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


@dataclasses.dataclass
class Clientela:
    """What the core keeps on ``app.extensions["clientela"]``."""

    profile: Profile
    plugins: PluginRegistry
    api: Any = None
    models: dict[str, type] = dataclasses.field(default_factory=dict)
    commands: dict[str, click.Command] = dataclasses.field(default_factory=dict)
    permissions: dict[str, str] = dataclasses.field(default_factory=dict)
    roles: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    config_keys: dict[str, str] = dataclasses.field(default_factory=dict)
    channels: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: blueprint name -> the plugin that registered it (``core`` for the core's own)
    route_owners: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def hook(self):
        return self.plugins.hook

    def hidden_plugins(self, tenant) -> frozenset[str]:
        """The enabled plugins that ``tenant`` may not use (the profile decides): their
        routes answer 404, their hooks are not called for it, their paths are left out of
        its OpenAPI document. Asked once per tenant per application context (a request,
        a job, a command)."""
        if not self.profile.plugins_per_tenant:
            return frozenset()
        cache = g.get(_HIDDEN)
        if cache is None:
            cache = g._clientela_hidden_plugins = {}
        hidden = cache.get(tenant.id)
        if hidden is None:
            everything = frozenset(info.name for info in self.plugins.enabled())
            hidden = cache[tenant.id] = everything - frozenset(
                self.profile.enabled_plugins(tenant))
        return hidden


_HIDDEN = "_clientela_hidden_plugins"


def current_clientela() -> Clientela:
    return current_app.extensions["clientela"]


def create_app(profile: str | Profile | None = None, **overrides: Any) -> Flask:
    """Build the application: configuration, profile, database, plugins, routes.

    :param profile: ``"onprem"``, ``"hosted"``, a ``Profile`` instance, or ``None`` for
        ``CLIENTELA_PROFILE`` (default ``onprem``).
    :param overrides: configuration keys that win over every other source, e.g.
        ``DATABASE_URL="sqlite:///..."`` or ``HOME="/srv/clientela"``.
    """
    app = Flask("clientela.core")
    config.load(app, overrides)
    if not isinstance(profile, Profile):
        profile = load_profile(profile or app.config["PROFILE"])
    app.config["PROFILE"] = profile.name
    profile.configure(app)
    app.instance_path = app.config["HOME"]

    init_database(app)
    registry = PluginRegistry(app.config["PLUGINS_ENABLED"], app.config["PLUGINS_DISABLED"])
    if app.config.get("PLUGINS_TRACE"):
        registry.enable_tracing()
    registry.load(hookimpls)
    ext = Clientela(profile=profile, plugins=registry)
    app.extensions["clientela"] = ext
    ext.api = api.init_app(app)
    auth.init_app(app)
    collect_contributions(app, ext)
    if profile.plugins_per_tenant:
        registry.hidden_from_current_tenant = _hidden_plugins_function(ext)
    api.scope_openapi(app)
    health.init_app(app)
    web.init_app(app)
    profile.init_app(app)
    # Configure every mapper now, in the thread that builds the app. Left to the first
    # query, configuration takes SQLAlchemy's process-wide mutex; if a job thread of the
    # serving process holds it when gunicorn forks a worker, the worker inherits the mutex
    # locked by a thread that does not exist there, and its first query waits forever.
    sa.orm.configure_mappers()
    return app


def _hidden_plugins_function(ext: Clientela):
    """What the plugin registry asks on each hook call: the plugins hidden from the current
    tenant (none without a tenant: start-up, operator commands)."""
    from clientela.core.models import Tenant

    def hidden_plugins() -> frozenset[str]:
        tenant_id = tenancy.get_tenant_id()
        if tenant_id is None or not has_app_context():
            return frozenset()
        hidden = (g.get(_HIDDEN) or {}).get(tenant_id)
        if hidden is not None:
            return hidden
        try:
            tenant = db.session.get(Tenant, tenant_id)
        except sa.exc.InvalidRequestError:
            # after a commit the session cannot read; the commit's precommit hooks asked
            # first, so this happens only for a hook called there for the first time.
            # Fail closed: none of the plugins, rather than one the tenant may not have.
            log.error("plugins of tenant %s unknown after commit: calling none", tenant_id)
            return frozenset(info.name for info in ext.plugins.enabled())
        return ext.hidden_plugins(tenant) if tenant is not None else frozenset()

    return hidden_plugins


def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA busy_timeout = 10000")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def init_database(app: Flask) -> None:
    db.init_app(app)
    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "sqlite" and not event.contains(
            engine, "connect", _sqlite_pragmas
        ):
            event.listen(engine, "connect", _sqlite_pragmas)


def collect_contributions(app: Flask, ext: Clientela) -> None:
    """Ask every plugin (core first) for its models, settings, permissions, routes, commands."""
    registry = ext.plugins

    def register_model(plugin: str):
        def register(model: type) -> None:
            if not (isinstance(model, type) and issubclass(model, Base)):
                raise PluginError(plugin, f"registered {model!r}, which is not a model class")
            if issubclass(model, Entity):
                problems = tenant_key_problems(model.__table__)
                if problems:
                    raise PluginError(plugin, f"model {model.__name__}: " + "; ".join(problems))
            ext.models[model.__tablename__] = model
        return register

    def register_config(plugin: str):
        def register(key: str, default: Any, description: str = "") -> None:
            if key != key.upper():
                raise PluginError(plugin, f"configuration key {key!r} must be upper case")
            app.config.setdefault(key, default)
            ext.config_keys[key] = description
        return register

    def register_permission(plugin: str):
        def register(name: str, description: str = "") -> None:
            if ":" not in name:
                raise PluginError(plugin, f"permission {name!r} must look like 'resource:action'")
            ext.permissions[name] = description
        return register

    def register_role(plugin: str):
        def register(role: str, permissions) -> None:
            granted = ext.roles.setdefault(role, {})
            for perm in permissions:
                perm, scope = (perm, "all") if isinstance(perm, str) else perm
                if perm not in ext.permissions:
                    raise PluginError(plugin, f"role {role!r} grants unknown permission {perm!r}")
                if scope not in ("own", "team", "all"):
                    raise PluginError(plugin, f"scope of {perm!r} must be own, team or all")
                granted[perm] = scope
        return register

    def register_command(plugin: str):
        def register(command: click.Command) -> None:
            owner = getattr(command, "_clientela_plugin", None)
            existing = ext.commands.get(command.name)
            if isinstance(existing, click.Group) and isinstance(command, click.Group) and (
                    getattr(existing, "_clientela_plugin", None) != plugin):
                # a plugin extends a group (``clientela import leads``): the subcommands join
                # a copy of it, so neither the module-level group nor another app changes
                merged = click.Group(existing.name, commands=dict(existing.commands),
                                     help=existing.help, short_help=existing.short_help)
                for name, sub in command.commands.items():
                    if name in merged.commands:
                        raise PluginError(plugin, f"command '{command.name} {name}' is "
                                                  "already registered")
                    merged.add_command(sub, name)
                merged._clientela_plugin = existing._clientela_plugin
                ext.commands[command.name] = merged
                return
            if command.name in ext.commands and owner != plugin:
                other = getattr(ext.commands[command.name], "_clientela_plugin", "?")
                raise PluginError(
                    plugin, f"command {command.name!r} is already registered by '{other}'"
                )
            command._clientela_plugin = plugin
            ext.commands[command.name] = command
        return register

    def register_blueprint(plugin: str):
        def register(blueprint: Blueprint, url_prefix: str | None = None) -> None:
            prefix = API_PREFIX + (url_prefix or blueprint.url_prefix or "")
            ext.route_owners[blueprint.name] = plugin
            if isinstance(blueprint, SmorestBlueprint):
                ext.api.register_blueprint(blueprint, url_prefix=prefix)
            else:
                app.register_blueprint(blueprint, url_prefix=prefix)
        return register

    def register_web_blueprint(plugin: str):
        def register(blueprint: Blueprint, url_prefix: str | None = None) -> None:
            if url_prefix is not None and url_prefix.startswith(API_PREFIX):
                raise PluginError(plugin, f"web blueprint {blueprint.name!r} may not live "
                                          f"under {API_PREFIX}: use clientela_api_blueprints")
            ext.route_owners[blueprint.name] = plugin
            app.register_blueprint(blueprint, url_prefix=url_prefix)
        return register

    def register_channel(plugin: str):
        def register(key: str, label: str, fields: dict | None = None,
                     outbound: bool = False) -> None:
            from clientela.core.channels import Channel

            if key in ext.channels:
                raise PluginError(plugin, f"channel {key!r} is already registered by "
                                          f"'{ext.channels[key].plugin}'")
            ext.channels[key] = Channel(key, label, dict(fields or {}), outbound, plugin)
        return register

    for hook_name, factory in (
        ("clientela_models", register_model),
        ("clientela_channels", register_channel),
        ("clientela_config_defaults", register_config),
        ("clientela_permissions", register_permission),
        ("clientela_roles", register_role),
        ("clientela_api_blueprints", register_blueprint),
        ("clientela_web_blueprints", register_web_blueprint),
        ("clientela_cli_commands", register_command),
    ):
        caller = getattr(registry.hook, hook_name)
        for impl in caller.get_hookimpls():
            try:
                impl.function(register=factory(impl.plugin_name))
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(impl.plugin_name, f"failed in {hook_name}: {exc}") from exc
    for command in ext.profile.cli_commands():
        register_command(f"profile {ext.profile.name}")(command)


def tenant_key_problems(table: sa.Table) -> list[str]:
    """Why a tenant table is not Citus-ready: its keys must lead with ``tenant_id``."""
    problems = []
    if "tenant_id" not in table.c:
        return ["has no tenant_id column"]
    pk = [c.name for c in table.primary_key.columns]
    if not pk or pk[0] != "tenant_id":
        problems.append(f"primary key {pk} does not lead with tenant_id")
    for fk in table.foreign_key_constraints:
        cols = [c.name for c in fk.columns]
        shared = "tenant_id" not in fk.referred_table.c  # a reference table (tenants, plans)
        if cols[0] != "tenant_id" and not shared:
            problems.append(f"foreign key {cols} does not lead with tenant_id")
    return problems


__all__ = ["API_PREFIX", "CORE", "Clientela", "create_app", "current_clientela"]
