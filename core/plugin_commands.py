"""Commands that manage plugins: ``plugin new``, ``plugins install|enable|disable``, tracing."""

from __future__ import annotations

import json
import subprocess
import sys

import click
from flask import current_app

from clientela.core import scaffold


@click.group("plugin")
def plugin_group():
    """Write plugins: generate a new plugin distribution."""


@plugin_group.command("new")
@click.argument("name")
@click.option("--dir", "directory", default=".", show_default=True,
              type=click.Path(file_okay=False), help="Where to create clientela-NAME/.")
def plugin_new(name: str, directory: str):
    """Generate a plugin distribution (model, migration, schema, API, command, tests)."""
    target = scaffold.generate(name, directory)
    click.echo(f"created {target}")
    click.echo(f"next: pip install -e {target} && clientela db upgrade && pytest {target}")


@click.command("install")
@click.argument("requirement")
@click.option("--upgrade", is_flag=True)
def plugins_install(requirement: str, upgrade: bool):
    """pip-install a plugin distribution into the environment Clientela runs in."""
    command = [sys.executable, "-m", "pip", "install", requirement]
    if upgrade:
        command.append("--upgrade")
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        raise click.ClickException(f"pip could not install {requirement}: "
                                   f"{lines[-1] if lines else 'see pip output'}")
    click.echo(f"installed {requirement}; run 'clientela db upgrade' to apply its migrations")


def _set(name: str, enabled: bool) -> None:
    ext = current_app.extensions["clientela"]
    registry = ext.plugins
    if name not in registry.plugins:
        raise click.ClickException(f"no plugin '{name}' is installed")
    slug = click.get_current_context().find_root().params.get("tenant")
    message = ext.profile.set_plugin_enabled(current_app, registry, name, enabled, slug)
    click.echo(message)


@click.command("enable")
@click.argument("name")
def plugins_enable(name: str):
    """Enable an installed plugin (instance-wide on-premise, per tenant when hosted)."""
    _set(name, True)


@click.command("disable")
@click.argument("name")
def plugins_disable(name: str):
    """Disable a plugin (instance-wide on-premise, per tenant when hosted)."""
    _set(name, False)


def show_trace(as_json: bool) -> None:
    """Build the app again with tracing on and print every hook call of start-up."""
    from clientela.core.app import create_app

    app = create_app(current_app.extensions["clientela"].profile, HOME=current_app.config["HOME"],
                     PLUGINS_TRACE=True,
                     DATABASE_URL=current_app.config["SQLALCHEMY_DATABASE_URI"])
    trace = app.extensions["clientela"].plugins.trace
    if as_json:
        click.echo(json.dumps([{"hook": h, "plugin": p, "ms": round(ms, 3)} for h, p, ms in trace],
                              indent=2))
        return
    for hook, plugin, ms in trace:
        click.echo(f"{ms:8.2f} ms  {plugin:<16} {hook}")
    click.echo(f"{len(trace)} hook calls; set CLIENTELA_PLUGINS_TRACE=1 to log them in any command "
               "or server")


plugins_subcommands = [plugins_install, plugins_enable, plugins_disable]
