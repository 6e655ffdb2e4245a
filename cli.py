"""The ``clientela`` command: builds the app through a profile and dispatches to the
commands that the core, the profile and the plugins contribute."""

from __future__ import annotations

import logging
import sys

import click
import sqlalchemy.exc

from clientela.core import __version__
from clientela.core.errors import ClientelaError


class ClientelaGroup(click.Group):
    """A click group whose commands come from the app (core, profile, plugins)."""

    def _app(self, ctx: click.Context):
        root = ctx.find_root()
        root.meta.setdefault("clientela.app", None)
        if root.meta["clientela.app"] is None:
            from clientela.core.app import create_app

            root.meta["clientela.app"] = create_app(root.params.get("profile"))
        return root.meta["clientela.app"]

    def list_commands(self, ctx):
        try:
            app = self._app(ctx)
        except ClientelaError as exc:
            click.echo(f"error: {exc}", err=True)
            return []
        return sorted(app.extensions["clientela"].commands)

    def get_command(self, ctx, name):
        try:
            app = self._app(ctx)
        except ClientelaError as exc:
            raise click.ClickException(str(exc)) from None
        return app.extensions["clientela"].commands.get(name)

    def invoke(self, ctx):
        try:
            app = self._app(ctx)
            with app.app_context():
                return super().invoke(ctx)
        except ClientelaError as exc:
            raise click.ClickException(str(exc)) from None
        except sqlalchemy.exc.OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise click.ClickException(f"database error: {reason}") from None


@click.group(cls=ClientelaGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--tenant", metavar="SLUG", help="Act inside this tenant (hosted profile).")
@click.option("--profile", type=click.Choice(["onprem", "hosted"]), default=None,
              help="Deployment profile (default: $CLIENTELA_PROFILE or onprem).")
@click.version_option(__version__, prog_name="clientela")
def cli(tenant, profile):
    """Clientela: a pluggable CRM. Run 'clientela COMMAND --help' for each command."""


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        cli.main(args=argv, prog_name="clientela")
    except ClientelaError as exc:  # raised while building the app, before any command
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
