"""The core's CLI commands (``tenant_command`` lives in ``cli_context``; re-exported here)."""

from __future__ import annotations

import json
import sys

import click
from flask import current_app

from clientela.core import __version__, jobs, migrations, services
from clientela.core.db import db
from clientela.core.cli_context import tenant_command
from clientela.core.errors import ClientelaError


def clientela_ext():
    return current_app.extensions["clientela"]


@click.group("db")
def db_group():
    """Database schema: apply migrations, show the revisions applied."""


@db_group.command("upgrade")
def db_upgrade():
    """Create the database or bring it to the schema of this version (idempotent)."""
    branches = migrations.upgrade(current_app)
    click.echo(f"database is current ({', '.join(branches)})")


@db_group.command("current")
def db_current():
    """Show the applied revisions and the branches still pending."""
    for rev in sorted(migrations.applied_heads(current_app)):
        click.echo(rev)
    pending = migrations.pending_heads(current_app)
    if pending:
        click.echo("pending: " + ", ".join(pending))


def prepare_worker(app) -> None:
    """In a freshly forked web worker: drop what it inherited from the serving command.

    The command runs inside an application context; a worker that kept it would serve
    every request in that one context (one ``g``, one database session for all requests:
    a principal, a language or a plan left over from an earlier request), since Flask only
    pushes a context of its own when none is active. And a web worker must not reuse the
    pooled connections the job threads use.
    """
    from flask.globals import _cv_app

    jobs.forget_inherited_connections(app)
    while (ctx := _cv_app.get(None)) is not None:
        ctx.pop()
        _popped_contexts.append(ctx)


#: the application contexts ``prepare_worker`` took off, innermost first
_popped_contexts: list = []


def restore_worker_contexts() -> None:
    """gunicorn's ``worker_exit``: put back the contexts ``prepare_worker`` took off.

    A worker leaves by ``sys.exit`` through the frames it inherited from the command,
    whose ``with app.app_context()`` pops its context on the way out: without it there,
    every worker ended with a ``LookupError`` traceback and exit code 1.
    """
    while _popped_contexts:
        _popped_contexts.pop().push()


#: this worker process's share of the embedded job queue: its consumer and the lock it holds
_worker_jobs: dict = {}


def start_jobs_in_worker(app) -> "jobs.JobConsumer | None":
    """gunicorn's ``post_worker_init``: the first web worker to take the lock file runs the
    embedded queue's consumer threads; the others serve requests only.

    Job threads must not run in the gunicorn master: a worker forked while one of them
    held a lock (SQLAlchemy's, the pool's, a cache's) inherits that lock held, by a thread
    it does not have, and hangs on its first request. A worker never forks. When the
    worker holding the lock dies the lock is freed, and its replacement takes it.
    """
    import fcntl
    import os

    lock = open(os.path.join(app.config["HOME"], "jobs-consumer.lock"), "a")  # noqa: SIM115
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        return None
    with app.app_context():
        consumer = jobs.start_embedded_consumer(app)
    _worker_jobs.update(lock=lock, consumer=consumer)
    return consumer


def stop_jobs_in_worker() -> None:
    """gunicorn's ``worker_exit``: let running jobs finish, then free the lock."""
    consumer = _worker_jobs.pop("consumer", None)
    if consumer is not None:
        consumer.stop(graceful=True)
    lock = _worker_jobs.pop("lock", None)
    if lock is not None:
        lock.close()


def worker_exit() -> None:
    stop_jobs_in_worker()
    restore_worker_contexts()


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn workers")
@click.option("--dev", is_flag=True, help="Flask's development server with reloading.")
@click.option("--jobs/--no-jobs", "run_jobs", default=True, show_default=True,
              help="Run background jobs in this process (embedded SQLite queue only).")
def serve(host: str, port: int, workers: int, dev: bool, run_jobs: bool):
    """Serve the web UI and the API (gunicorn; --dev for the development server)."""
    app = current_app._get_current_object()
    if migrations.pending_heads(app):
        raise click.ClickException(
            "the database is not current: run 'clientela db upgrade' (or 'clientela init')"
        )
    click.echo(f"Clientela on http://{host}:{port}/ (profile {app.config['PROFILE']})")
    # one command does everything on-premise: the embedded job queue is consumed by
    # threads of one web worker (of this process with --dev); a Redis queue by
    # 'clientela worker'
    embedded = run_jobs and jobs.queue_for(app).embedded
    if embedded:
        click.echo("background jobs: consumed by one web worker on the embedded queue")
    if dev:
        consumer = jobs.start_embedded_consumer(app) if embedded else None
        try:
            app.run(host=host, port=port, debug=True, use_reloader=False)
        finally:
            if consumer is not None:
                consumer.stop(graceful=True)
        return
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("accesslog", "-")
            self.cfg.set("post_fork", lambda server, worker: prepare_worker(app))
            self.cfg.set("worker_exit", lambda server, worker: worker_exit())
            if embedded:
                self.cfg.set("post_worker_init", lambda worker: start_jobs_in_worker(app))

        def load(self):
            return app

    Server().run()


@click.group("plugins", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--trace", is_flag=True,
              help="Show every hook call of start-up with its plugin and time.")
@click.pass_context
def plugins_command(ctx, as_json: bool, trace: bool):
    """List installed plugins: version, requires, enabled, hooks implemented."""
    if ctx.invoked_subcommand:
        return
    if trace:
        from clientela.core.plugin_commands import show_trace

        show_trace(as_json)
        return
    registry = clientela_ext().plugins
    core_hooks = registry.hooks_of("core")
    # with --tenant: enabled for that tenant (the hosted profile narrows it to the plan)
    slug = click.get_current_context().find_root().params.get("tenant")
    for_tenant = None
    if slug:
        profile = clientela_ext().profile
        for_tenant = profile.enabled_plugins(profile.cli_tenant(slug))
    rows = [{"name": "core", "version": __version__, "distribution": "clientela",
             "builtin": True, "requires": [], "enabled": True, "hooks": core_hooks}]
    for info in sorted(registry.plugins.values(), key=lambda i: i.name):
        enabled = info.enabled and (for_tenant is None or info.name in for_tenant)
        rows.append({
            "name": info.name,
            "version": info.version,
            "distribution": info.distribution,
            "builtin": info.builtin,
            "requires": list(info.requires),
            "enabled": enabled,
            "hooks": registry.hooks_of(info.name) if enabled else [],
        })
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        state = "enabled" if row["enabled"] else "disabled"
        requires = f" requires {', '.join(row['requires'])}" if row["requires"] else ""
        click.echo(f"{row['name']} {row['version'] or ''} [{state}]{requires}")
        for hook in row["hooks"]:
            click.echo(f"    {hook}")


@click.group("users")
def users_group():
    """Staff users of the tenant."""


@users_group.command("create")
@click.option("--email", required=True)
@click.option("--role", "roles", multiple=True, required=True, help="Repeat for several roles.")
@click.option("--password", help="Omit to generate one (printed once).")
@click.option("--name", default="")
@tenant_command
def users_create(tenant, email, roles, password, name):
    """Create a user with one or more roles."""
    known = clientela_ext().roles
    unknown = [r for r in roles if r not in known]
    if unknown:
        raise click.BadParameter(
            f"unknown role {', '.join(unknown)}; roles: {', '.join(sorted(known))}",
            param_hint="--role",
        )
    generated = password is None
    if generated:
        password = services.security.generate_password()
    user = services.create_user(email, roles=list(roles), password=password, name=name)
    db.session.commit()
    click.echo(f"created user {user.email} ({', '.join(roles)})")
    if generated:
        click.echo(f"password: {password}")


@click.group("tokens")
def tokens_group():
    """API tokens."""


@tokens_group.command("create")
@click.option("--email", required=True, help="The user the token acts as.")
@click.option("--name", default="cli", show_default=True)
@tenant_command
def tokens_create(tenant, email, name):
    """Create an API token for a user and print only the token (it is shown once)."""
    user = services.find_user(email)
    if user is None:
        raise click.ClickException(f"no user with e-mail {email}")
    _, raw = services.create_token(user, name=name)
    db.session.commit()
    click.echo(raw)


@click.command("demo")
@tenant_command
def demo(tenant):
    """Load demo customers and interactions (and every plugin's demo data) once."""
    if tenant.settings.get("demo_loaded"):
        click.echo("demo data is already loaded")
        return
    registry = clientela_ext().plugins
    registry.call_in_order("clientela_demo_data", tenant=tenant)
    tenant.settings = {**tenant.settings, "demo_loaded": True}
    db.session.commit()
    click.echo("demo data loaded")


@click.group("docs")
def docs_group():
    """Generate reference documentation."""


@docs_group.command("hooks")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Default: stdout.")
def docs_hooks(output):
    """Write the hook reference (docs/hooks.md) from the hookspec docstrings."""
    from clientela.core.hookdocs import render

    text = render()
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)


from clientela.core.plugin_commands import plugin_group, plugins_subcommands  # noqa: E402
from clientela.core.transfer_commands import COMMANDS as TRANSFER_COMMANDS  # noqa: E402

for _sub in plugins_subcommands:
    plugins_command.add_command(_sub)

CORE_COMMANDS = [db_group, serve, plugins_command, users_group, tokens_group, demo, docs_group,
                 plugin_group, *jobs.COMMANDS, *TRANSFER_COMMANDS]

__all__ = ["CORE_COMMANDS", "ClientelaError", "tenant_command"]
