"""Plugin discovery (stevedore), ordering by ``requires``, and registration with pluggy.

A plugin is a module (usually a package) named by an entry point in the
``clientela.plugins`` group. It carries ``name``, ``version`` and ``requires``
attributes and its hook implementations. Loading fails fast: a plugin that does not
import, whose requirement is missing or disabled, or that forms a cycle stops start-up
with its name and the cause, unless configuration disables it.
"""

from __future__ import annotations

import dataclasses
import functools
import graphlib
import importlib
import importlib.metadata
import importlib.util
import logging
import os
import time
import types
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import pluggy
from stevedore import NamedExtensionManager

from clientela.core import PROJECT_NAME, hookspecs
from clientela.core.errors import PluginError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "clientela.plugins"
CORE = "core"


@dataclasses.dataclass
class PluginInfo:
    """What ``clientela plugins`` shows about one plugin."""

    name: str
    module_name: str
    distribution: str | None
    version: str | None = None
    requires: tuple[str, ...] = ()
    enabled: bool = False
    module: types.ModuleType | None = None
    builtin: bool = False
    #: the range of hook API versions the plugin supports (``hook_api`` attribute)
    hook_api: str | None = None

    @property
    def migrations_path(self) -> str | None:
        """The plugin's Alembic version folder (``<package>/migrations/versions``), if any."""
        spec = importlib.util.find_spec(self.module_name)
        for location in (spec.submodule_search_locations or []) if spec else []:
            path = os.path.join(location, "migrations", "versions")
            if os.path.isdir(path):
                return path
        return None


def _distributions() -> dict[tuple[str, str], str]:
    """``(entry point name, value) -> distribution name`` (stevedore's cache drops it)."""
    found = {}
    for dist in importlib.metadata.distributions():
        for ep in dist.entry_points:
            if ep.group == ENTRY_POINT_GROUP:
                found[(ep.name, ep.value)] = dist.metadata["Name"]
    return found


def _entry_points() -> dict[str, PluginInfo]:
    manager = NamedExtensionManager(ENTRY_POINT_GROUP, names=[])
    dists = _distributions()
    found: dict[str, PluginInfo] = {}
    for ep in manager.list_entry_points():
        dist = dists.get((ep.name, ep.value))
        if ep.name in found:
            other = found[ep.name].distribution
            raise PluginError(ep.name, f"is installed twice (by {other} and by {dist})")
        if ep.name == CORE:
            raise PluginError(ep.name, "is a reserved name")
        found[ep.name] = PluginInfo(
            name=ep.name,
            module_name=ep.module,
            distribution=dist,
            builtin=ep.module.startswith("clientela.plugins."),
        )
    return found


def _raise_load_failure(manager, entrypoint, exception) -> None:
    raise PluginError(
        entrypoint.name, f"cannot be loaded: {type(exception).__name__}: {exception}"
    ) from exception


def _as_set(value) -> set[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [v for v in value.replace(",", " ").split() if v]
    return {str(v) for v in value}


#: hooks renamed in this minor version: old name -> new name. An implementation of the
#: old name keeps working, with a DeprecationWarning, until the next minor version.
RENAMED_HOOKS: dict[str, str] = {}


def check_hook_api(plugin: str, supported: str) -> None:
    """Refuse a plugin whose declared hook API range excludes the core's version."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import Version

    from clientela.core import HOOK_API_VERSION

    try:
        spec = SpecifierSet(supported)
    except InvalidSpecifier:
        raise PluginError(plugin, f"declares an invalid hook_api range {supported!r}") from None
    if Version(HOOK_API_VERSION) not in spec:
        raise PluginError(
            plugin, f"supports hook API {supported}, but this Clientela provides "
                    f"{HOOK_API_VERSION}: upgrade the plugin or Clientela"
        )


def _renamed_hooks_shim(plugin: str, module):
    """Re-register implementations of renamed hooks under their new name, with a warning."""
    found = {}
    for old, new in RENAMED_HOOKS.items():
        function = getattr(module, old, None)
        if function is None or not hasattr(function, f"{PROJECT_NAME}_impl"):
            continue
        warnings.warn(
            f"plugin '{plugin}' implements '{old}', renamed to '{new}'; the old name stops "
            "working in the next minor version of the hook API",
            DeprecationWarning, stacklevel=2,
        )
        found[new] = function
    if not found:
        return None
    shim = types.SimpleNamespace()
    for new, function in found.items():
        setattr(shim, new, function)
    return shim


class PluginRegistry:
    """The installed plugins, the enabled ones in order, and the pluggy manager.

    :param enabled: allow list (``None``: every installed plugin).
    :param disabled: deny list, applied after the allow list.
    """

    def __init__(self, enabled: Iterable[str] | str | None = None,
                 disabled: Iterable[str] | str | None = ()):
        self.allow = _as_set(enabled)
        self.deny = _as_set(disabled) or set()
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.order: list[str] = []
        #: with tracing on: (hook, plugin, milliseconds) of every hook call, in order
        self.trace: list[tuple[str, str, float]] | None = None
        #: set by the app when the profile narrows plugins per tenant (hosted plans): the
        #: names of the plugins hidden from the current tenant, or an empty set
        self.hidden_from_current_tenant: Callable[[], frozenset[str]] | None = None
        self._subsets: dict[tuple[str, frozenset[str]], Any] = {}

    @property
    def hook(self):
        """The hook relay. Where plugins are enabled per tenant, it is narrowed to the plugins
        the current tenant may use: the others' implementations are not called for it."""
        if self.hidden_from_current_tenant is None:
            return self.pm.hook
        return _TenantHooks(self)

    def hook_for(self, name: str, hidden: frozenset[str]):
        """The caller of hook ``name`` without the implementations of ``hidden`` plugins."""
        if not hidden:
            return getattr(self.pm.hook, name)
        key = (name, hidden)
        caller = self._subsets.get(key)
        if caller is None:
            remove = [plugin for plugin_name, plugin in self.pm.list_name_plugin()
                      if plugin_name.split(":")[0] in hidden]
            caller = self._subsets[key] = self.pm.subset_hook_caller(name, remove)
        return caller

    def load(self, core_module: types.ModuleType) -> None:
        self.plugins = _entry_points()
        unknown = ((self.allow or set()) | self.deny) - set(self.plugins)
        for name in sorted(unknown):
            log.warning("configuration names plugin %r, which is not installed", name)
        for info in self.plugins.values():
            info.enabled = (self.allow is None or info.name in self.allow) and (
                info.name not in self.deny
            )
        wanted = sorted(n for n, i in self.plugins.items() if i.enabled)
        if wanted:
            manager = NamedExtensionManager(
                ENTRY_POINT_GROUP,
                names=wanted,
                on_load_failure_callback=_raise_load_failure,
                on_missing_entrypoints_callback=None,
            )
            for ext in manager:
                self._describe(self.plugins[ext.name], ext.plugin)
        self.order = self._ordered(wanted)
        self.pm.register(core_module, name=CORE)
        for name in self.order:
            info = self.plugins[name]
            try:
                self.pm.register(info.module, name=name)
                shim = _renamed_hooks_shim(name, info.module)
                if shim is not None:
                    self.pm.register(shim, name=f"{name}:renamed-hooks")
            except pluggy.PluginValidationError as exc:
                raise PluginError(name, f"has an invalid hook implementation: {exc}") from exc
        if self.trace is not None:
            self._instrument()
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            plugin = getattr(exc, "plugin", None)
            name = self.pm.get_name(plugin) if plugin is not None else "?"
            raise PluginError(name or "?", f"implements an unknown hook: {exc}") from exc

    def enable_tracing(self) -> None:
        """Log every hook call with its plugin and time (``PLUGINS_TRACE``); call before load."""
        self.trace = []

    def _instrument(self) -> None:
        for caller in self.pm.hook.__dict__.values():
            if not isinstance(caller, pluggy.HookCaller):
                continue
            for impl in caller.get_hookimpls():
                impl.function = self._timed(caller.name, impl.plugin_name, impl.function)

    def _timed(self, hook_name: str, plugin: str, function):
        trace = self.trace

        @functools.wraps(function)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = (time.perf_counter() - start) * 1000
                trace.append((hook_name, plugin, elapsed))
                log.info("hook %s: plugin %s took %.2f ms", hook_name, plugin, elapsed)

        return timed

    def _describe(self, info: PluginInfo, module) -> None:
        if not isinstance(module, types.ModuleType):
            raise PluginError(info.name, "the entry point must name a module, not an object")
        declared = getattr(module, "name", info.name)
        if declared != info.name:
            raise PluginError(
                info.name, f"declares name {declared!r} but its entry point is {info.name!r}"
            )
        requires = getattr(module, "requires", ())
        if isinstance(requires, str) or not all(isinstance(r, str) for r in requires):
            raise PluginError(info.name, "'requires' must be a sequence of plugin names")
        info.module = module
        info.version = str(getattr(module, "version", None) or "unknown")
        info.requires = tuple(requires)
        info.hook_api = getattr(module, "hook_api", None)
        if info.hook_api is not None:
            check_hook_api(info.name, str(info.hook_api))

    def _ordered(self, wanted: list[str]) -> list[str]:
        graph: dict[str, set[str]] = {}
        for name in wanted:
            info = self.plugins[name]
            for required in info.requires:
                if required not in self.plugins:
                    raise PluginError(name, f"requires '{required}', which is not installed")
                if not self.plugins[required].enabled:
                    raise PluginError(name, f"requires '{required}', which is disabled")
            graph[name] = set(info.requires)
        sorter = graphlib.TopologicalSorter(graph)
        try:
            sorter.prepare()
        except graphlib.CycleError as exc:
            cycle = exc.args[1]
            raise PluginError(cycle[0], "requires itself through " + " -> ".join(cycle)) from exc
        order: list[str] = []
        while sorter.is_active():
            ready = sorted(sorter.get_ready())  # sorted only to make the order repeatable
            order.extend(ready)
            sorter.done(*ready)
        return order

    def check_change(self, name: str, enable: bool, enabled: set[str]) -> set[str]:
        """The enabled set after enabling/disabling ``name``; refuses to break a ``requires``."""
        after = (set(enabled) | {name}) if enable else (set(enabled) - {name})
        for plugin in sorted(after):
            missing = [r for r in self.requires_of(plugin) if r not in after]
            if missing and plugin == name:
                raise PluginError(name, f"requires {', '.join(missing)}: enable "
                                        f"{'it' if len(missing) == 1 else 'them'} first")
            if missing:
                raise PluginError(name, f"is required by '{plugin}': disable '{plugin}' first")
        return after

    def requires_of(self, name: str) -> tuple[str, ...]:
        """A plugin's ``requires``, importing it if it is disabled (and so not loaded yet)."""
        info = self.plugins[name]
        if info.module is None:
            try:
                module = importlib.import_module(info.module_name)
            except Exception as exc:
                raise PluginError(name, f"cannot be loaded: {type(exc).__name__}: {exc}") from exc
            return tuple(getattr(module, "requires", ()))
        return info.requires

    def enabled(self) -> list[PluginInfo]:
        return [self.plugins[name] for name in self.order]

    def hooks_of(self, name: str) -> list[str]:
        """The hooks a registered plugin implements."""
        plugin = self.pm.get_plugin(name)
        if plugin is None:
            return []
        return sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or [])

    def call_in_order(self, hook_name: str, **kwargs) -> list:
        """Call a hook in plugin order (core first, then each plugin after its requirements).

        pluggy's own order is the reverse (last registered first); contribution and
        demo-data hooks want dependencies first.
        """
        caller = getattr(self.hook, hook_name)
        # by the plugin order, not pluggy's registration order (which a plugin
        # unregistered and registered again, as tests do, would change)
        rank = {CORE: -1, **{info.name: i for i, info in enumerate(self.enabled())}}
        impls = sorted(caller.get_hookimpls(),
                       key=lambda impl: rank.get(impl.plugin_name.split(":")[0], len(rank)))
        results = []
        for impl in impls:
            args = {k: kwargs[k] for k in impl.argnames if k in kwargs}
            try:
                results.append((impl.plugin_name, impl.function(**args)))
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(impl.plugin_name, f"failed in {hook_name}: {exc}") from exc
        return results


class _TenantHooks:
    """pluggy's hook relay narrowed to the plugins the current tenant may use."""

    __slots__ = ("_registry",)

    def __init__(self, registry: PluginRegistry):
        self._registry = registry

    def __getattr__(self, name: str):
        registry = self._registry
        return registry.hook_for(name, registry.hidden_from_current_tenant())
