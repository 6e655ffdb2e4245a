"""customer search indexes

PostgreSQL: btree expression indexes, each led by ``tenant_id``, for prefix search on
the names (``lower(...) text_pattern_ops``), the e-mail and the phone (the E.164 number
and the number after a 1-, 2- or 3-digit country code). SQLite: the contentless FTS5
table ``customers_fts``, keyed by the ``customers`` rowid and kept in sync by triggers.
These objects exist only here, not in the models: ``clientela.core.migrations.
include_object`` keeps them out of the autogenerate comparison.

Revision ID: 0006_search
Revises: 0005_hosted
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0006_search'
down_revision = '0005_hosted'
branch_labels = None
depends_on = None

PG_INDEXES = {
    "ix_customers_search_display_name": "lower(display_name) text_pattern_ops",
    "ix_customers_search_first_name": "lower(first_name) text_pattern_ops",
    "ix_customers_search_last_name": "lower(last_name) text_pattern_ops",
    "ix_customers_search_organisation_name": "lower(organisation_name) text_pattern_ops",
    "ix_customers_search_email": "email text_pattern_ops",
    "ix_customers_search_phone": "phone text_pattern_ops",
    "ix_customers_search_phone_cc1": "substr(phone, 3) text_pattern_ops",
    "ix_customers_search_phone_cc2": "substr(phone, 4) text_pattern_ops",
    "ix_customers_search_phone_cc3": "substr(phone, 5) text_pattern_ops",
}

FTS_COLUMNS = "display_name, first_name, last_name, organisation_name, email, phone"
# kept identical to clientela.core.search.SQLITE_FTS_VALUES: a contentless FTS5 table
# forgets a row only when given exactly the values it was indexed with
FTS_VALUES = (
    "{row}.display_name, {row}.first_name, {row}.last_name, {row}.organisation_name, "
    "{row}.email, "
    "'p' || substr({row}.phone, 2) || ' ' || substr({row}.phone, 3) || ' ' "
    "|| substr({row}.phone, 4) || ' ' || substr({row}.phone, 5)"
)
FTS_DELETE = (
    "INSERT INTO customers_fts(customers_fts, rowid, " + FTS_COLUMNS + ") "
    "VALUES ('delete', old.rowid, " + FTS_VALUES.format(row="old") + ");"
)
FTS_INSERT = (
    "INSERT INTO customers_fts(rowid, " + FTS_COLUMNS + ") "
    "VALUES (new.rowid, " + FTS_VALUES.format(row="new") + ");"
)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE customers_fts USING fts5("
            + FTS_COLUMNS
            + ", content='', prefix='2 3', "
            "tokenize=\"unicode61 remove_diacritics 2 tokenchars '.@-_+'\")"
        )
        op.execute(
            "INSERT INTO customers_fts(rowid, " + FTS_COLUMNS + ") "
            "SELECT rowid, " + FTS_VALUES.format(row="customers") + " FROM customers"
        )
        op.execute(
            "CREATE TRIGGER customers_fts_insert AFTER INSERT ON customers BEGIN "
            + FTS_INSERT + " END"
        )
        op.execute(
            "CREATE TRIGGER customers_fts_delete AFTER DELETE ON customers BEGIN "
            + FTS_DELETE + " END"
        )
        op.execute(
            "CREATE TRIGGER customers_fts_update AFTER UPDATE OF " + FTS_COLUMNS
            + " ON customers BEGIN " + FTS_DELETE + " " + FTS_INSERT + " END"
        )
    else:
        for name, expression in PG_INDEXES.items():
            op.execute(f"CREATE INDEX {name} ON customers (tenant_id, {expression})")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in ("customers_fts_update", "customers_fts_delete", "customers_fts_insert"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS customers_fts")
    else:
        for name in PG_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
