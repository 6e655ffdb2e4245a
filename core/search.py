"""Customer search: the ``q=`` of the customer list, matched by names, e-mails and phones.

``filter_customers(stmt, q)`` adds to a ``select`` of ``Customer`` the condition that
``q`` matches, and every branch of that condition is served by an index made in
migration ``0006_search``:

- **names**: ``q`` is a case-insensitive prefix of the display name, first name, last
  name or organisation name;
- **e-mail**: ``q`` is a prefix of the primary e-mail (stored lower-case);
- **phone**: when ``q`` looks like a phone number (digits, spaces, ``+ - . ( ) /``, at
  least three digits), its digits are matched against the E.164 ``phone``:
  ``+39 06 1234`` (or ``0039 06 1234``) is a prefix of the international number, and
  ``06 1234`` a prefix of the national number, with or without its trunk ``0``, whatever
  the length (1-3 digits) of the country code.

PostgreSQL uses btree expression indexes (``lower(display_name) text_pattern_ops`` and
the like, each led by ``tenant_id``) combined by a bitmap OR. SQLite uses the FTS5 table
``customers_fts`` (contentless, kept in sync by triggers; keyed by the ``customers``
rowid); the query joins back to ``customers`` through that rowid, so the tenant filter the
ORM adds to every ``Customer`` query still applies and no other tenant's row can come
back. On SQLite, names also match without diacritics (``elise`` finds ``Élise``).
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlalchemy.sql import Select

from clientela.core.db import db
from clientela.core.models import Customer

#: characters a phone number may be written with
_PHONE_RE = re.compile(r"^[\d\s()+.\-/]+$")
_MIN_PHONE_DIGITS = 3

#: how the FTS row of a customer is made from its columns (``{row}`` is new or old);
#: the phone column holds the international digits (``p``-prefixed) and the number
#: without a 1-, 2- or 3-digit country code, so that a national number is a prefix too
SQLITE_FTS_COLUMNS = (
    "display_name", "first_name", "last_name", "organisation_name", "email", "phone",
)
SQLITE_FTS_VALUES = (
    "{row}.display_name, {row}.first_name, {row}.last_name, {row}.organisation_name, "
    "{row}.email, "
    "'p' || substr({row}.phone, 2) || ' ' || substr({row}.phone, 3) || ' ' "
    "|| substr({row}.phone, 4) || ' ' || substr({row}.phone, 5)"
)


def filter_customers(stmt: Select, q: str, dialect: str | None = None) -> Select:
    """``stmt`` (a select of ``Customer``) restricted to the customers ``q`` matches.

    An empty ``q`` leaves ``stmt`` as it is; a ``q`` with nothing searchable in it
    matches no customer. ``dialect`` defaults to the session's database.
    """
    q = (q or "").replace("\x00", "").strip()  # PostgreSQL text cannot hold NUL
    if not q:
        return stmt
    if dialect is None:
        dialect = db.session.get_bind(mapper=sa.inspect(Customer)).dialect.name
    if dialect == "sqlite":
        return _sqlite_filter(stmt, q)
    return stmt.where(_postgresql_condition(q))


def phone_prefixes(q: str) -> tuple[str | None, list[str]]:
    """The E.164 prefix and the national prefixes ``q`` stands for, if it is a phone.

    ``"+39 06 1234"`` → ``("+39061234", [])``; ``"06 1234"`` →
    ``("+061234", ["061234", "61234"])`` (typed without ``+``, or a national number with
    or without its trunk 0); ``"mario"`` → ``(None, [])``.
    """
    if not _PHONE_RE.match(q):
        return None, []
    digits = re.sub(r"\D", "", q)
    if len(digits) < _MIN_PHONE_DIGITS:
        return None, []
    if q.startswith("+"):
        return "+" + digits, []
    national = [digits]
    if digits.startswith("00") and len(digits) > _MIN_PHONE_DIGITS + 1:
        return "+" + digits[2:], national
    if digits.startswith("0") and len(digits) > _MIN_PHONE_DIGITS:
        national.append(digits[1:])
    return "+" + digits, national


#: above every character: ``prefix + _TOP`` bounds the strings that start with ``prefix``
_TOP = "\U0010ffff"


def _prefix_of(expression, prefix: str):
    """``expression`` starts with ``prefix``, as a range on a ``text_pattern_ops`` index.

    The bounds are written into the SQL (``literal_execute``), not sent as parameters:
    once psycopg prepares a statement it has run five times, PostgreSQL may switch to a
    generic plan, which cannot know how selective the prefix is and, with the list's
    ``ORDER BY display_name LIMIT n``, walks the whole tenant in name order. With the
    values in the text every search is planned for its own prefix. A range (``~>=~``,
    ``~<~``: byte order, what the index sorts by) needs no escaping of ``%`` and ``_``.
    """
    def bound(value: str):
        return sa.bindparam(None, value, type_=sa.String(), unique=True, literal_execute=True)

    return sa.and_(expression.op("~>=~", is_comparison=True)(bound(prefix)),
                   expression.op("~<~", is_comparison=True)(bound(prefix + _TOP)))


def _postgresql_condition(q: str):
    """PostgreSQL: prefixes on the indexed expressions of 0006_search, ORed.

    The matching ids are collected first (``id = ANY(ARRAY(SELECT ...))``, a bitmap OR
    of the indexes) and only then sorted and paged. Written as a plain ``WHERE ... OR``
    the planner may answer ``ORDER BY display_name LIMIT 25`` by walking the tenant's
    name index and filtering, expecting matches to be spread evenly; for ``q="Acme"``
    they all sit under "A", and it reads most of the tenant (100 ms at 100,000 rows).
    The inner select is of ``Customer`` too, so the ORM scopes it to the tenant as well.
    """
    inner = aliased(Customer)
    term = q.lower()
    conditions = [
        _prefix_of(sa.func.lower(column), term)
        for column in (inner.display_name, inner.first_name, inner.last_name,
                       inner.organisation_name)
    ]
    conditions.append(_prefix_of(inner.email, term))
    international, national = phone_prefixes(q)
    if international:
        conditions.append(_prefix_of(inner.phone, international))
    for prefix in national:
        # the number after a country code of 1, 2 or 3 digits (substr counts the "+")
        for start in (3, 4, 5):
            conditions.append(_prefix_of(sa.func.substr(inner.phone, start), prefix))
    matching = sa.select(inner.id).where(sa.or_(*conditions)).scalar_subquery()
    return Customer.id == sa.any_(sa.func.array(matching))


def _fts_string(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def fts_query(q: str) -> str | None:
    """The FTS5 query for ``q`` on ``customers_fts``, or ``None`` when nothing is searchable."""
    parts = []
    if re.search(r"\w", q):
        term = _fts_string(q.lower())
        parts.append(f"{{display_name first_name last_name organisation_name}} : ^{term}*")
        parts.append(f"email : ^{term}*")
    international, national = phone_prefixes(q)
    phones = []
    if international:
        phones.append(_fts_string("p" + international[1:]) + "*")
    phones.extend(_fts_string(prefix) + "*" for prefix in national)
    if phones:
        parts.append("phone : (" + " OR ".join(phones) + ")")
    if not parts:
        return None
    return " OR ".join(f"({part})" for part in parts)


_FTS = sa.table("customers_fts", sa.column("rowid"))


def _sqlite_filter(stmt: Select, q: str) -> Select:
    """SQLite: join the customers whose FTS row matches, through the ``customers`` rowid.

    A join rather than ``rowid IN (SELECT ...)``: without ``ANALYZE`` statistics SQLite
    believes ``tenant_id = ?`` picks a handful of rows, and for ``ORDER BY display_name``
    it would walk the tenant's name index testing each row against the IN list (50 ms at
    100,000 customers). Joined, the FTS match drives and each hit is one rowid lookup.
    The ORM's tenant filter on ``customers`` still applies to every row.
    """
    match = fts_query(q)
    if match is None:
        return stmt.where(sa.false())
    return stmt.join(_FTS, _FTS.c.rowid == sa.literal_column(
        f"{Customer.__tablename__}.rowid")).where(
        sa.literal_column("customers_fts").op("MATCH")(sa.bindparam("fts_q", match, unique=True))
    )


def rebuild_sqlite_index(connection: sa.Connection) -> None:
    """Refill ``customers_fts`` from ``customers`` (SQLite).

    The FTS rows are keyed by the ``customers`` rowid, which SQLite may renumber when a
    table without an integer primary key is rebuilt (``VACUUM``, a batch migration that
    copies the table): run this after such an operation.
    """
    columns = ", ".join(SQLITE_FTS_COLUMNS)
    connection.exec_driver_sql("INSERT INTO customers_fts(customers_fts) VALUES ('delete-all')")
    connection.exec_driver_sql(
        f"INSERT INTO customers_fts(rowid, {columns}) "
        f"SELECT rowid, {SQLITE_FTS_VALUES.format(row='customers')} FROM customers"
    )


__all__ = ["filter_customers", "fts_query", "phone_prefixes", "rebuild_sqlite_index"]


def search_everything(query: str, principal, limit: int = 10) -> list[dict]:
    """The global search: customers the principal may read, then every plugin's answers.

    Each source gives at most ``limit`` results; within the whole, better scores first
    (stable, so customers lead among equals).
    """
    from clientela.core import customers
    from clientela.core.events import plugin_hooks

    query = (query or "").strip()
    results: list[dict] = []
    if principal.can("customers:read"):
        stmt = customers.customers_query(principal, q=query).order_by(
            Customer.display_name, Customer.id).limit(limit)
        lowered = query.lower()
        for customer in db.session.execute(stmt).scalars():
            exact = lowered in {(customer.display_name or "").lower(),
                                (customer.email or "").lower()}
            results.append({"type": "customer", "id": customer.id,
                            "title": customer.display_name,
                            "subtitle": customer.email or customer.phone,
                            "score": 1.0 if exact else 0.5})
    hook = plugin_hooks()
    if hook is not None:
        for answer in hook.clientela_search(query=query, limit=limit, principal=principal):
            results.extend((answer or [])[:limit])
    return sorted(results, key=lambda r: -float(r.get("score") or 0))
