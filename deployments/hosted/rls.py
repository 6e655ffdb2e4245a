"""PostgreSQL Row-Level Security for the hosted profile: policies, roles and the per-transaction tenant.

Every table with a ``tenant_id`` column has RLS enabled *and forced* (so even the
table owner is subject to it, unless it has ``BYPASSRLS``) and one policy,
``tenant_isolation``, whose ``USING`` and ``WITH CHECK`` compare ``tenant_id`` with the
transaction's ``app.tenant_id`` setting. An unset or empty setting matches no row.

The application sets ``app.tenant_id`` with ``set_config(..., true)`` (local to the
transaction, so it is safe behind pgbouncer in transaction mode) when a transaction
begins, and again before any statement if the tenant context changed inside the
transaction; the setting always follows ``clientela.core.tenancy``.
"""

from __future__ import annotations

import re
import weakref

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from clientela.core import tenancy
from clientela.core.errors import ConfigurationError

POLICY = "tenant_isolation"
SETTING = "app.tenant_id"
TENANT_EXPR = f"(SELECT NULLIF(current_setting('{SETTING}', true), ''))::uuid"
TOKEN_LOOKUP_FUNCTION = "clientela_token_tenant"
_ROLE_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_KEY = "clientela.rls_tenant"


# --- the catalogue -----------------------------------------------------------


def tenant_tables(conn: sa.Connection) -> list[str]:
    """Every table of the current schema with a ``tenant_id`` column (plugins' included,
    enabled or not: the catalogue, not the loaded models, decides)."""
    rows = conn.execute(sa.text(
        "SELECT c.relname FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE a.attname = 'tenant_id' AND NOT a.attisdropped "
        "AND c.relkind IN ('r', 'p') AND n.nspname = current_schema() ORDER BY c.relname"
    ))
    return [r[0] for r in rows]


def _quote(conn: sa.Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def apply_policies(conn: sa.Connection) -> list[str]:
    """Enable and force RLS with the tenant policy on every tenant table (idempotent).

    Also (re)creates ``clientela_token_tenant(hash)``, the one door through which a
    request may learn a token's tenant before any tenant is set, and keeps the
    migration bookkeeping out of the application's reach. Returns the tables.
    """
    tables = tenant_tables(conn)
    for name in tables:
        table = _quote(conn, name)
        conn.exec_driver_sql(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        conn.exec_driver_sql(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        # dropped and made again in the same transaction: the definition stays current
        conn.exec_driver_sql(f"DROP POLICY IF EXISTS {POLICY} ON {table}")
        conn.exec_driver_sql(
            f"CREATE POLICY {POLICY} ON {table} "
            f"USING (tenant_id = {TENANT_EXPR}) WITH CHECK (tenant_id = {TENANT_EXPR})"
        )
    if "api_tokens" in tables:
        # SECURITY DEFINER runs as the migration role (which has BYPASSRLS); it returns
        # only the tenant of one exact token hash, never a row
        conn.exec_driver_sql(
            f"CREATE OR REPLACE FUNCTION {TOKEN_LOOKUP_FUNCTION}(token_hash text) "
            "RETURNS uuid LANGUAGE sql STABLE SECURITY DEFINER "
            "SET search_path = pg_catalog, pg_temp AS $$ "
            f"SELECT t.tenant_id FROM {_schema(conn)}.api_tokens t "
            "WHERE t.token_hash = $1 $$"
        )
    # the application reads which revisions are applied, but never writes them
    grantees = conn.execute(sa.text(
        "SELECT DISTINCT grantee FROM information_schema.role_table_grants "
        "WHERE table_schema = current_schema() AND table_name = 'alembic_version' "
        "AND privilege_type IN ('INSERT', 'UPDATE', 'DELETE') AND grantee <> current_user "
        "AND grantee <> 'PUBLIC'"
    )).scalars().all()
    for grantee in grantees:
        conn.exec_driver_sql(
            f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM {_quote(conn, grantee)}"
        )
    return tables


def _schema(conn: sa.Connection) -> str:
    return _quote(conn, conn.exec_driver_sql("SELECT current_schema()").scalar())


def token_tenant(conn: sa.Connection, token_hash: str):
    """The tenant id of the token with ``token_hash`` (or ``None``), whatever tenant is set."""
    return conn.execute(
        sa.text(f"SELECT {TOKEN_LOOKUP_FUNCTION}(:h)"), {"h": token_hash}
    ).scalar()


# --- roles ---------------------------------------------------------------------


def _role(name: str) -> str:
    if not _ROLE_RE.match(name or ""):
        raise ConfigurationError(
            f"role name {name!r}: use lower-case letters, digits and '_' (at most 63)"
        )
    return name


def setup_roles(conn: sa.Connection, owner: str, app_role: str,
                owner_password: str | None = None, app_password: str | None = None) -> None:
    """Create (or correct) the two database roles and their grants; run as a superuser.

    * ``owner`` owns the schema's tables: migrations run as it. It has ``BYPASSRLS``
      so that the token lookup function it owns can see every token hash, and so that
      an operator can take a whole-database ``pg_dump`` with it.
    * ``app_role`` is what web workers and job workers connect as: it owns nothing,
      has ``NOBYPASSRLS``, and may only read and write rows (RLS decides which).
    """
    import psycopg.sql

    owner, app_role = _role(owner), _role(app_role)
    if owner == app_role:
        raise ConfigurationError("the owner and the application must be different roles")
    raw = conn.connection.dbapi_connection

    def literal(value: str) -> str:
        return psycopg.sql.Literal(value).as_string(raw)

    existing = set(conn.execute(
        sa.text("SELECT rolname FROM pg_roles WHERE rolname IN (:a, :b)"),
        {"a": owner, "b": app_role},
    ).scalars())
    for name, attributes, password in (
        (owner, "LOGIN BYPASSRLS NOSUPERUSER NOCREATEDB NOCREATEROLE", owner_password),
        (app_role, "LOGIN NOBYPASSRLS NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT",
         app_password),
    ):
        verb = "ALTER" if name in existing else "CREATE"
        secret = f" PASSWORD {literal(password)}" if password else ""
        conn.exec_driver_sql(f'{verb} ROLE "{name}" WITH {attributes}{secret}')
    database = _quote(conn, conn.exec_driver_sql("SELECT current_database()").scalar())
    schema = _schema(conn)
    for sql in (
        f'GRANT CONNECT, TEMPORARY ON DATABASE {database} TO "{owner}", "{app_role}"',
        f'GRANT USAGE, CREATE ON SCHEMA {schema} TO "{owner}"',
        f'GRANT USAGE ON SCHEMA {schema} TO "{app_role}"',
        f'REVOKE CREATE ON SCHEMA {schema} FROM "{app_role}"',
        f'ALTER DEFAULT PRIVILEGES FOR ROLE "{owner}" IN SCHEMA {schema} '
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "{app_role}"',
        f'ALTER DEFAULT PRIVILEGES FOR ROLE "{owner}" IN SCHEMA {schema} '
        f'GRANT USAGE, SELECT ON SEQUENCES TO "{app_role}"',
    ):
        conn.exec_driver_sql(sql)
    # tables made before the roles existed: give them to the owner, the rows to the app
    tables = conn.execute(sa.text(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    )).scalars().all()
    for name in tables:
        table = _quote(conn, name)
        conn.exec_driver_sql(f'ALTER TABLE {schema}.{table} OWNER TO "{owner}"')
        privileges = "SELECT" if name == "alembic_version" else "SELECT, INSERT, UPDATE, DELETE"
        conn.exec_driver_sql(f'GRANT {privileges} ON {schema}.{table} TO "{app_role}"')


# --- the tenant of each transaction -----------------------------------------------

_engines: weakref.WeakSet = weakref.WeakSet()


def _wanted() -> str:
    tenant_id = tenancy.get_tenant_id()
    return str(tenant_id) if tenant_id is not None else ""


def _ensure_setting(conn: sa.Connection, dbapi_connection) -> None:
    """Set ``app.tenant_id`` for the current transaction unless it is already right."""
    want = _wanted()
    if conn.info.get(_KEY) == want:
        return
    conn.info[_KEY] = want
    # the DBAPI connection's own execute: no SQLAlchemy events, no recursion
    dbapi_connection.execute("SELECT set_config(%s, %s, true)", (SETTING, want))


_SAVEPOINT_STATEMENTS = ("SAVEPOINT", "ROLLBACK TO SAVEPOINT", "RELEASE SAVEPOINT")


def _before_cursor_execute(conn, cursor, statement, parameters, context, executemany):
    # a setting made just before ROLLBACK TO SAVEPOINT would be undone by it: the
    # statement after it sets the tenant again (rollback_savepoint forgot it)
    if statement.startswith(_SAVEPOINT_STATEMENTS):
        return
    _ensure_setting(conn, cursor.connection)


def _after_begin(session: Session, transaction, connection: sa.Connection) -> None:
    if connection.engine in _engines:
        _ensure_setting(connection, connection.connection.dbapi_connection)


def _forget(conn, *args) -> None:
    conn.info.pop(_KEY, None)


def install(engine: sa.Engine) -> None:
    """Make every transaction on ``engine`` carry the current tenant in ``app.tenant_id``.

    The session's ``after_begin`` sets it when a transaction starts; a check before each
    statement sets it again when the tenant context changed inside the transaction (a
    command that looks a tenant up, then acts as it), so the setting can never lag
    behind ``tenancy``. A rolled-back savepoint forgets what it set.
    """
    if engine in _engines:
        return
    _engines.add(engine)
    event.listen(engine, "before_cursor_execute", _before_cursor_execute)
    # what was set dies with the transaction: forget it at every boundary
    for name in ("begin", "commit", "rollback", "rollback_savepoint"):
        event.listen(engine, name, _forget)
    if not event.contains(Session, "after_begin", _after_begin):
        event.listen(Session, "after_begin", _after_begin)
