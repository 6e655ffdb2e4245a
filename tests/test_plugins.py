"""Plugin discovery, ordering, fail-fast errors and a real third-party distribution."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from clientela.core import HOOK_API_VERSION

from clientela.core.errors import PluginError
from clientela.core.plugins import PluginRegistry

HERE = os.path.dirname(os.path.abspath(__file__))
BUILTINS = {"operational", "collaborative", "analytical", "prm", "tailormade"}
TEST_PLUGINS = ("greeter", "broken", "needy", "chicken", "egg", "oldtimer")


def load(**kwargs) -> PluginRegistry:
    from clientela.core import hookimpls

    registry = PluginRegistry(**kwargs)
    registry.load(hookimpls)
    return registry


def test_builtins_are_discovered_through_the_entry_point_group():
    registry = load()
    assert BUILTINS <= set(registry.plugins)
    for name in BUILTINS:
        info = registry.plugins[name]
        assert info.builtin and info.enabled and info.version == "0.1.0"
        assert info.distribution == "clientela"
    assert registry.plugins["prm"].requires == ("operational",)


def test_plugins_are_ordered_after_what_they_require():
    order = load().order
    assert order.index("operational") < order.index("prm")


def test_core_is_registered_first_and_called_first():
    registry = load()
    impls = registry.hook.clientela_models.get_hookimpls()
    assert impls[0].plugin_name == "core"


def test_configuration_can_disable_a_plugin():
    registry = load(disabled=["prm"])
    assert registry.plugins["prm"].enabled is False
    assert "prm" not in registry.order
    assert registry.pm.get_plugin("prm") is None


def test_allow_list_enables_only_the_named_plugins():
    registry = load(enabled="operational,prm")
    assert set(registry.order) == {"operational", "prm"}


def test_disabling_a_requirement_of_an_enabled_plugin_stops_start_up():
    with pytest.raises(PluginError) as err:
        load(disabled=["operational"])
    assert str(err.value) == "plugin 'prm': requires 'operational', which is disabled"


def test_disabling_both_is_fine():
    registry = load(disabled=["operational", "prm"])
    assert "prm" not in registry.order and "operational" not in registry.order


# --- a third-party distribution, built and pip-installed from a temporary folder ----


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory):
    """``tests/plugin_dist`` built and installed into its own folder (not our venv)."""
    src = tmp_path_factory.mktemp("dist-src")
    shutil.copytree(os.path.join(HERE, "plugin_dist"), src, dirs_exist_ok=True)
    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(src)],
        check=True, capture_output=True, text=True,
    )
    return site


def run_cli(site, home, database_url, *args, disabled=(), check=True):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIENTELA_")}
    env.update(
        PYTHONPATH=str(site),
        CLIENTELA_HOME=str(home),
        DATABASE_URL=database_url,
        CLIENTELA_PLUGINS_DISABLED=",".join(disabled),
    )
    result = subprocess.run([sys.executable, "-m", "clientela.cli", *args], env=env,
                            capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}: {result.stderr}")
    return result


ONLY_GREETER = tuple(p for p in TEST_PLUGINS if p != "greeter")


@pytest.mark.slow
def test_third_party_plugin_is_discovered_listed_migrated_and_called(
    plugin_site, tmp_path, backend, fresh_database_url
):
    url = fresh_database_url(backend)
    listing = json.loads(
        run_cli(plugin_site, tmp_path, url, "plugins", "--json", disabled=ONLY_GREETER).stdout
    )
    by_name = {p["name"]: p for p in listing}
    greeter = by_name["greeter"]
    assert greeter["enabled"] and greeter["version"] == "1.2.3"
    assert greeter["distribution"] == "clientela-testplugins"
    assert greeter["requires"] == ["operational"]
    assert greeter["hooks"] == [
        "clientela_cli_commands", "clientela_customer_created_precommit",
        "clientela_models", "clientela_permissions",
    ]
    assert by_name["broken"]["enabled"] is False  # installed, disabled by configuration
    assert BUILTINS <= set(by_name)

    run_cli(plugin_site, tmp_path, url, "init", "--admin-email", "a@example.com",
            "--admin-password", "a-long-password", disabled=ONLY_GREETER)
    # the plugin's command, through its precommit hook, writes to the plugin's own table
    out = run_cli(plugin_site, tmp_path, url, "greet", "Ada", disabled=ONLY_GREETER).stdout
    assert out.strip() == "Welcome, Ada!"
    # the schema built by core + plugin migrations equals the models
    check = (
        "from alembic.autogenerate import compare_metadata;"
        "from alembic.runtime.migration import MigrationContext;"
        "from clientela.core.app import create_app;from clientela.core.db import db;"
        "app=create_app();ctx=app.app_context();ctx.push();"
        "import greeter_plugin.models;"
        "from clientela.core.migrations import include_object;c=db.engine.connect();"
        "ctx=MigrationContext.configure(c,opts={'include_object':include_object});"
        "print(compare_metadata(ctx,db.metadata))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIENTELA_")}
    env.update(PYTHONPATH=str(plugin_site), CLIENTELA_HOME=str(tmp_path), DATABASE_URL=url,
               CLIENTELA_PLUGINS_DISABLED=",".join(ONLY_GREETER))
    diff = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True,
                          text=True, check=True)
    assert diff.stdout.strip() == "[]"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("enabled", "message"),
    [
        ("broken", "plugin 'broken': cannot be loaded: ModuleNotFoundError: "
                   "No module named 'clientela_no_such_dependency'"),
        ("needy", "plugin 'needy': requires 'nonexistent', which is not installed"),
        ("oldtimer", "plugin 'oldtimer': supports hook API >=0.1,<1, but this Clientela "
                     f"provides {HOOK_API_VERSION}: upgrade the plugin or Clientela"),
    ],
)
def test_a_broken_plugin_stops_start_up_with_one_line_naming_it(
    plugin_site, tmp_path, enabled, message
):
    disabled = [p for p in TEST_PLUGINS if p != enabled]
    url = f"sqlite:///{tmp_path / 'x.db'}"
    result = run_cli(plugin_site, tmp_path, url, "plugins", disabled=disabled, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"Error: {message}"]


@pytest.mark.slow
def test_a_requirement_cycle_stops_start_up(plugin_site, tmp_path):
    disabled = ["greeter", "broken", "needy", "oldtimer"]
    url = f"sqlite:///{tmp_path / 'x.db'}"
    result = run_cli(plugin_site, tmp_path, url, "plugins", disabled=disabled, check=False)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: plugin '") and "requires itself through" in line
    assert "chicken" in line and "egg" in line


def test_hook_api_range_is_checked():
    from clientela.core.plugins import check_hook_api

    check_hook_api("fine", ">=1.0,<2")
    with pytest.raises(PluginError, match="supports hook API >=2"):
        check_hook_api("future", ">=2")
    with pytest.raises(PluginError, match="invalid hook_api range"):
        check_hook_api("typo", "one point oh")


def test_a_renamed_hook_keeps_working_under_its_old_name_with_a_warning(monkeypatch):
    """The mechanism for renaming a hook: the old spec stays one minor version."""
    import types

    from clientela.core import hookimpl, hookimpls, hookspec, plugins

    class OldSpecs:
        @staticmethod
        @hookspec
        def clientela_old_permissions(register):
            """Deprecated alias of clientela_permissions."""

    @hookimpl
    def clientela_old_permissions(register):
        register("legacy:read", "from the old hook")

    legacy = types.ModuleType("legacy_plugin")
    legacy.clientela_old_permissions = clientela_old_permissions
    monkeypatch.setattr(plugins, "RENAMED_HOOKS", {"clientela_old_permissions":
                                                   "clientela_permissions"})
    registry = PluginRegistry(enabled=[])
    registry.pm.add_hookspecs(OldSpecs)
    registry.load(hookimpls)
    with pytest.warns(DeprecationWarning, match="renamed to 'clientela_permissions'"):
        shim = plugins._renamed_hooks_shim("legacy", legacy)
    registry.pm.register(legacy, name="legacy")
    registry.pm.register(shim, name="legacy:renamed-hooks")
    seen = {}
    registry.hook.clientela_permissions(register=lambda name, d="": seen.setdefault(name, d))
    assert seen["legacy:read"] == "from the old hook"
