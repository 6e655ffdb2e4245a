"""A well-behaved third-party plugin: a model with its migration, a command and hooks."""

import click

from clientela.core import hookimpl

name = "greeter"
version = "1.2.3"
requires = ("operational",)
hook_api = ">=1.0,<2"


@hookimpl
def clientela_models(register):
    from greeter_plugin.models import Greeting

    register(Greeting)


@hookimpl
def clientela_permissions(register):
    register("greetings:read", "see greetings")


@hookimpl
def clientela_customer_created_precommit(entity):
    from clientela.core.db import db
    from greeter_plugin.models import Greeting

    db.session.add(Greeting(customer_id=entity.id, message=f"Welcome, {entity.display_name}!"))


@hookimpl
def clientela_cli_commands(register):
    from clientela.core.commands import tenant_command

    @click.command("greet")
    @click.argument("first_name")
    @tenant_command
    def greet(tenant, first_name):
        """Create a customer; the plugin's hook greets them."""
        from clientela.core import services
        from clientela.core.db import db
        from greeter_plugin.models import Greeting

        services.create_customer({"first_name": first_name})
        db.session.commit()
        for greeting in db.session.execute(db.select(Greeting)).scalars():
            click.echo(greeting.message)

    register(greet)
