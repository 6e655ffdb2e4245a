"""The plugin developer kit: scaffold, the clientela.testing fixtures, enable/disable, tracing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from clientela.cli import cli
from clientela.core.errors import PluginError


def clean_env(**extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CLIENTELA_", "PYTEST_")) and k != "DATABASE_URL"}
    env.update(extra)
    return env


@pytest.mark.slow
def test_generated_plugin_installs_and_passes_its_own_tests(tmp_path):
    result = CliRunner().invoke(cli, ["plugin", "new", "demo", "--dir", str(tmp_path)],
                                env={"CLIENTELA_HOME": str(tmp_path / "home")})
    assert result.exit_code == 0, result.output
    dist = tmp_path / "clientela-demo"
    for path in ("setup.cfg", "README.md", "clientela_demo/__init__.py", "clientela_demo/models.py",
                 "clientela_demo/schemas.py", "clientela_demo/api.py", "clientela_demo/cli.py",
                 "clientela_demo/services.py",
                 "clientela_demo/migrations/versions/0001_demo.py", "tests/test_demo.py"):
        assert (dist / path).is_file(), path
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--target", str(site), str(dist)],
                   check=True, capture_output=True, text=True)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(dist / "tests")],
        env=clean_env(PYTHONPATH=str(site)), capture_output=True, text=True, timeout=300,
        cwd=str(dist),
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    summary = run.stdout.strip().splitlines()[-1]
    assert "passed" in summary and "failed" not in summary and "error" not in summary
    # both backends ran (PostgreSQL is reachable wherever the suite itself runs on it)
    assert summary.startswith("12 passed"), summary


def test_plugin_new_refuses_bad_names_and_existing_folders(tmp_path):
    runner = CliRunner()
    env = {"CLIENTELA_HOME": str(tmp_path / "home")}
    bad = runner.invoke(cli, ["plugin", "new", "Bad-Name", "--dir", str(tmp_path)], env=env)
    assert bad.exit_code == 1 and "lower-case letters" in bad.output
    assert runner.invoke(cli, ["plugin", "new", "twice", "--dir", str(tmp_path)],
                         env=env).exit_code == 0
    again = runner.invoke(cli, ["plugin", "new", "twice", "--dir", str(tmp_path)], env=env)
    assert again.exit_code == 1 and "already exists" in again.output


def test_disable_and_enable_respect_requires(tmp_path):
    runner = CliRunner()
    env = {"CLIENTELA_HOME": str(tmp_path)}
    refused = runner.invoke(cli, ["plugins", "disable", "operational"], env=env)
    assert refused.exit_code == 1, refused.output
    assert "is required by 'prm': disable 'prm' first" in refused.output
    assert runner.invoke(cli, ["plugins", "disable", "prm"], env=env).exit_code == 0
    done = runner.invoke(cli, ["plugins", "disable", "operational"], env=env)
    assert done.exit_code == 0, done.output
    listing = json.loads(runner.invoke(cli, ["plugins", "--json"], env=env).output)
    state = {p["name"]: p["enabled"] for p in listing}
    assert state["prm"] is False and state["operational"] is False and state["analytical"]
    refused = runner.invoke(cli, ["plugins", "enable", "prm"], env=env)
    assert refused.exit_code == 1 and "requires operational: enable it first" in refused.output
    assert runner.invoke(cli, ["plugins", "enable", "operational"], env=env).exit_code == 0
    assert runner.invoke(cli, ["plugins", "enable", "prm"], env=env).exit_code == 0
    listing = json.loads(runner.invoke(cli, ["plugins", "--json"], env=env).output)
    assert all(p["enabled"] for p in listing)


def test_enabling_an_unknown_plugin_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(cli, ["plugins", "enable", "nope"],
                                env={"CLIENTELA_HOME": str(tmp_path)})
    assert result.exit_code == 1 and "no plugin 'nope' is installed" in result.output


def test_trace_lists_hook_calls_with_plugin_and_time(tmp_path):
    result = CliRunner().invoke(cli, ["plugins", "--trace", "--json"],
                                env={"CLIENTELA_HOME": str(tmp_path)})
    assert result.exit_code == 0, result.output
    calls = json.loads(result.output)
    assert {"hook": "clientela_models", "plugin": "core"} in [
        {"hook": c["hook"], "plugin": c["plugin"]} for c in calls]
    assert all(c["ms"] >= 0 for c in calls)


def test_registry_check_change():
    from clientela.core import hookimpls
    from clientela.core.plugins import PluginRegistry

    registry = PluginRegistry()
    registry.load(hookimpls)
    enabled = set(registry.order)
    with pytest.raises(PluginError, match="required by 'prm'"):
        registry.check_change("operational", False, enabled)
    assert "prm" not in registry.check_change("prm", False, enabled)


@pytest.mark.slow
def test_example_loyalty_plugin_installs_from_its_folder_and_is_listed(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--target", str(site),
                    os.path.join(root, "examples", "clientela-loyalty")],
                   check=True, capture_output=True, text=True)
    result = subprocess.run([sys.executable, "-m", "clientela.cli", "plugins", "--json"],
                            env=clean_env(PYTHONPATH=str(site), CLIENTELA_HOME=str(tmp_path)),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    loyalty = next(p for p in json.loads(result.stdout) if p["name"] == "loyalty")
    assert loyalty["enabled"] and loyalty["distribution"] == "clientela-loyalty"
    assert loyalty["builtin"] is False
    assert {"clientela_models", "clientela_jobs", "clientela_customer_profile",
            "clientela_customer_export", "clientela_customer_erase",
            "clientela_interaction_recorded_precommit"} <= set(loyalty["hooks"])


def test_plugins_install_reports_a_pip_failure_in_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["plugins", "install", str(tmp_path / "no-such-plugin")],
                                env={"CLIENTELA_HOME": str(tmp_path)})
    assert result.exit_code == 1
    (line,) = [line for line in result.output.splitlines() if line.strip()]
    assert line.startswith("Error: pip could not install ")
