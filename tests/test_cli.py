"""The ``clientela`` command, on both backends, as scripts drive it."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from clientela.cli import cli
from clientela.core import services, tenancy
from clientela.core.app import create_app
from clientela.core.db import db
from clientela.core.models import Customer, Interaction


@pytest.fixture
def instance(backend, fresh_database_url, tmp_path):
    """Run ``clientela`` against a fresh instance; returns (invoke, app for checks)."""
    env = {"CLIENTELA_HOME": str(tmp_path), "DATABASE_URL": fresh_database_url(backend),
           "CLIENTELA_PROFILE": "onprem"}
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, list(args), env=env, catch_exceptions=False)

    yield invoke, env
    app = create_app("onprem", HOME=env["CLIENTELA_HOME"], DATABASE_URL=env["DATABASE_URL"])
    with app.app_context():
        db.engine.dispose()


def inspect_app(env):
    return create_app("onprem", HOME=env["CLIENTELA_HOME"], DATABASE_URL=env["DATABASE_URL"])


def test_init_is_idempotent_and_prints_a_generated_password_once(instance):
    invoke, env = instance
    first = invoke("init", "--admin-email", "Boss@Example.com")
    assert first.exit_code == 0, first.output
    match = re.search(r"admin password \(shown once\): (\S+)", first.output)
    assert match
    second = invoke("init", "--admin-email", "boss@example.com")
    assert second.exit_code == 0
    assert "already exists" in second.output and "password" not in second.output.split(";")[0]
    app = inspect_app(env)
    with app.app_context():
        tenant = app.extensions["clientela"].profile.tenant()
        with tenancy.tenant_context(tenant.id):
            admin = services.find_user("boss@example.com")
            assert admin.roles == ["admin"]
            assert services.security.verify_password(admin.password_hash, match.group(1))
            assert admin.password_hash.startswith("$argon2id$")


def test_tokens_create_prints_only_a_working_token(instance):
    invoke, env = instance
    invoke("init", "--admin-email", "a@example.com", "--admin-password", "long-enough-pw")
    result = invoke("users", "create", "--email", "s@example.com", "--role", "sales",
                    "--password", "another-long-pw")
    assert result.exit_code == 0, result.output
    result = invoke("tokens", "create", "--email", "s@example.com")
    assert result.exit_code == 0
    token = result.output.strip()
    assert "\n" not in token and token.startswith("cla_") and len(token) >= 40
    app = inspect_app(env)
    with app.app_context():
        found = services.authenticate_token(token)
        assert found is not None
        api_token, user = found
        assert user.email == "s@example.com"
        assert api_token.token_hash == services.security.hash_token(token) != token
        assert services.authenticate_token(token[:-1] + "x") is None


def test_demo_loads_once(instance):
    invoke, env = instance
    invoke("init", "--admin-email", "a@example.com")
    assert invoke("demo").output.strip() == "demo data loaded"
    assert invoke("demo").output.strip() == "demo data is already loaded"
    app = inspect_app(env)
    with app.app_context():
        tenant = app.extensions["clientela"].profile.tenant()
        with tenancy.tenant_context(tenant.id):
            count = db.session.execute(sa.select(sa.func.count()).select_from(Customer)).scalar()
            assert count == 36
            assert db.session.execute(
                sa.select(sa.func.count()).select_from(Interaction)
            ).scalar() > 36


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("tokens", "create", "--email", "ghost@example.com"), "no user with e-mail ghost@example.com"),
        (("users", "create", "--email", "x@example.com", "--role", "wizard"), "unknown role wizard"),
        (("users", "create", "--email", "not-an-email", "--role", "sales"), "is not a valid e-mail"),
        (("users", "create", "--email", "a@example.com", "--role", "sales"), "already exists"),
        (("--tenant", "elsewhere", "demo"), "has one tenant ('default'), not 'elsewhere'"),
    ],
)
def test_user_errors_exit_non_zero_with_one_clear_line(instance, args, message):
    invoke, _ = instance
    invoke("init", "--admin-email", "a@example.com")
    result = invoke(*args)
    assert result.exit_code != 0
    lines = [line for line in result.output.strip().splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and message in lines[0], result.output
    assert "Traceback" not in result.output


def test_commands_before_init_say_what_to_do(instance):
    invoke, _ = instance
    result = invoke("demo")
    assert result.exit_code == 1
    assert "run 'clientela init' first" in result.output


def test_every_command_has_help(instance):
    invoke, _ = instance
    top = invoke("--help")
    assert top.exit_code == 0
    for name in ("init", "db", "serve", "plugins", "users", "tokens", "demo"):
        assert name in top.output
        assert invoke(name, "--help").exit_code == 0
    for sub in (("db", "upgrade"), ("users", "create"), ("tokens", "create")):
        assert invoke(*sub, "--help").exit_code == 0


def test_hosted_profile_with_sqlite_fails_with_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["plugins"], env={
        "CLIENTELA_PROFILE": "hosted", "DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
        "CLIENTELA_SECRET_KEY": "s", "CLIENTELA_HOME": str(tmp_path)})
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: the hosted profile runs on PostgreSQL only; DATABASE_URL is a sqlite URL"
    )


def test_hosted_tenant_commands_need_a_tenant(pg_databases, tmp_path):
    env = {"CLIENTELA_PROFILE": "hosted", "DATABASE_URL": pg_databases.create("hosted"),
           "CLIENTELA_SECRET_KEY": "s", "CLIENTELA_HOME": str(tmp_path)}
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade"], env=env).exit_code == 0
    assert runner.invoke(cli, ["tenants", "create", "acme"], env=env).exit_code == 0
    result = runner.invoke(cli, ["users", "create", "--email", "a@acme.example", "--role",
                                 "admin"], env=env)
    assert result.exit_code == 1 and "add --tenant SLUG" in result.output
    result = runner.invoke(cli, ["--tenant", "acme", "users", "create", "--email",
                                 "a@acme.example", "--role", "admin"], env=env)
    assert result.exit_code == 0, result.output
    assert "acme" in runner.invoke(cli, ["tenants", "list"], env=env).output
    create_app("hosted", DATABASE_URL=env["DATABASE_URL"], SECRET_KEY="s")
