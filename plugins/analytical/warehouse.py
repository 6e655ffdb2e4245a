"""The customer data warehouse: one DuckDB file per tenant, its star schema, and its refresh.

The file is ``$CLIENTELA_HOME/tenants/<tenant id>/warehouse.duckdb``. Dimensions: ``dim_customer``
(with ``dim_customer_attribute`` for imported demographics), ``dim_date``, ``dim_channel``,
``dim_product``; facts: ``fact_interaction``, ``fact_transaction`` (order lines, imported
from ERP/shop files) and one ``fact_<name>`` per model other plugins offer through
``clientela_warehouse_facts`` (deals, cases).

``refresh()`` loads incrementally from the operational database: rows whose ``updated_at``
is past the watermark kept in ``warehouse_meta``, read with SQLAlchemy in the tenant's
context and handed to DuckDB as Arrow tables (columnar; never row by row). Deletions and
merges are taken from the audit trail: a deleted customer leaves the dimension with its
facts, a merged-away customer leaves it and its facts move to the survivor, as the
operational merge moves its records.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import current_app

from clientela.core import tenancy
from clientela.core.db import db, utcnow
from clientela.core.errors import ClientelaError, Conflict
from clientela.core.models import AuditEvent, Customer

if TYPE_CHECKING:  # duckdb and pyarrow load when a warehouse is first used, not with the app
    import duckdb
    import pyarrow as pa

#: rows read from the operational database per Arrow batch
BATCH_ROWS = 50_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS warehouse_meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS dim_customer (
    customer_id UUID, kind VARCHAR, display_name VARCHAR, email VARCHAR, external_id VARCHAR,
    stage VARCHAR, organisation_id UUID, owner_id UUID, created_at TIMESTAMP,
    updated_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS dim_customer_attribute (
    customer_id UUID, name VARCHAR, value VARCHAR, import_id VARCHAR, loaded_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS dim_date (
    date_key DATE, year INTEGER, quarter INTEGER, month INTEGER, day INTEGER,
    day_of_week INTEGER, iso_week INTEGER, month_start DATE);
CREATE TABLE IF NOT EXISTS dim_channel (channel VARCHAR);
CREATE TABLE IF NOT EXISTS dim_product (product_id VARCHAR, name VARCHAR, category VARCHAR);
CREATE TABLE IF NOT EXISTS fact_transaction (
    line_id VARCHAR, order_id VARCHAR, customer_id UUID, date_key DATE, ordered_at TIMESTAMP,
    product_id VARCHAR, quantity DOUBLE, amount DECIMAL(18, 2), original_amount DECIMAL(18, 2),
    currency VARCHAR, source VARCHAR, import_id VARCHAR);
CREATE TABLE IF NOT EXISTS segment_member (
    segment_id UUID, customer_id UUID, refreshed_at TIMESTAMP, stage VARCHAR, orders BIGINT,
    revenue DOUBLE, rfm_segment VARCHAR, clv DOUBLE, churn_risk VARCHAR);
CREATE TABLE IF NOT EXISTS segment_refresh (
    segment_id UUID, refreshed_at TIMESTAMP, as_of DATE, members BIGINT, rules VARCHAR);
CREATE TABLE IF NOT EXISTS import_runs (
    import_id VARCHAR, kind VARCHAR, filename VARCHAR, mapping VARCHAR, started_at TIMESTAMP,
    rows_read BIGINT, matched BIGINT, rejected BIGINT);
CREATE TABLE IF NOT EXISTS import_rejections (import_id VARCHAR, row_number BIGINT,
                                              reason VARCHAR);
"""

CUSTOMER_COLUMNS = ("id", "kind", "display_name", "email", "external_id", "stage",
                    "organisation_id", "owner_id", "created_at", "updated_at")


class WarehouseBusy(Conflict):
    """Another process holds the tenant's warehouse file; try again shortly (API: 409)."""


# --- the file and connections ---------------------------------------------------------


def warehouse_dir(tenant_id: uuid.UUID) -> str:
    # every file of a tenant lives under tenants/<id>/, so that backups, tenant exports,
    # tenant deletion and storage metering cover the warehouse without knowing about it
    return os.path.join(current_app.config["HOME"], "tenants", str(tenant_id))


def warehouse_path(tenant_id: uuid.UUID | None = None) -> str:
    """The DuckDB file of ``tenant_id`` (default: the current tenant)."""
    tenant_id = tenant_id or tenancy.current_tenant_id()
    if not isinstance(tenant_id, uuid.UUID):
        raise TypeError("tenant_id must be a UUID")
    return os.path.join(warehouse_dir(tenant_id), "warehouse.duckdb")


_locks: dict[str, threading.Lock] = {}
#: files whose schema this process has made, with the fact sources it covered
_ensured: dict[str, tuple[str, ...]] = {}
_locks_guard = threading.Lock()


def _lock_for(path: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(path, threading.Lock())


def _open(path: str, wait: float | None = None) -> duckdb.DuckDBPyConnection:
    # one process may open the file read-write at a time (DuckDB's file lock); a refresh
    # in a worker process holds it for seconds, so wait rather than fail at once
    import duckdb

    if wait is None:
        wait = float(current_app.config.get("ANALYTICAL_LOCK_TIMEOUT", 30))
    deadline = time.monotonic() + wait
    while True:
        try:
            # no extension may be fetched at run time: the machine may have no internet
            return duckdb.connect(path, config={"autoinstall_known_extensions": False,
                                                "autoload_known_extensions": False})
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise WarehouseBusy(f"the warehouse is busy: {exc}") from exc
            time.sleep(0.2)


@contextlib.contextmanager
def connect(write: bool = False, tenant_id: uuid.UUID | None = None,
            wait: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the tenant's warehouse, its schema in place; closed after the block.

    ``write=True`` also serialises writers of this process (DuckDB would otherwise answer
    a concurrent change of the same rows with a transaction conflict). ``wait``: seconds to
    wait for a file another process holds (default ``ANALYTICAL_LOCK_TIMEOUT``), then
    ``WarehouseBusy``.
    """
    path = warehouse_path(tenant_id)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not os.path.exists(path):
        _ensured.pop(path, None)
    lock = _lock_for(path) if write else contextlib.nullcontext()
    with lock:
        con = _open(path, wait)
        try:
            sources = tuple(fact_sources())
            if _ensured.get(path) != sources:
                con.execute(SCHEMA)
                for source in fact_sources().values():
                    _ensure_fact_table(con, source)
                _ensured[path] = sources
            yield con
        finally:
            con.close()


def exists(tenant_id: uuid.UUID | None = None) -> bool:
    return os.path.exists(warehouse_path(tenant_id))


def get_meta(con, key: str) -> str | None:
    rows = con.execute("SELECT value FROM warehouse_meta WHERE key = ?", [key]).fetchall()
    return rows[0][0] if rows else None


def set_meta(con, key: str, value: str) -> None:
    con.execute("DELETE FROM warehouse_meta WHERE key = ?", [key])
    con.execute("INSERT INTO warehouse_meta VALUES (?, ?)", [key, value])


# --- fact sources: interactions, and what other plugins offer -------------------------


@dataclasses.dataclass(frozen=True)
class FactSource:
    """A model loaded into ``fact_<name>``, incrementally by its ``updated_at``."""

    name: str
    model: type
    columns: tuple[str, ...]
    time_column: str
    customer_column: str = "customer_id"
    plugin: str = ""

    @property
    def table(self) -> str:
        return f"fact_{self.name}"


def _duck_type(column: sa.Column) -> str:
    kind = column.type
    if isinstance(kind, sa.types.TypeDecorator):
        kind = kind.impl_instance
    if isinstance(kind, sa.Uuid):
        return "UUID"
    if isinstance(kind, sa.DateTime):
        return "TIMESTAMP"
    if isinstance(kind, sa.Date):
        return "DATE"
    if isinstance(kind, sa.Boolean):
        return "BOOLEAN"
    if isinstance(kind, sa.Integer):
        return "BIGINT"
    if isinstance(kind, sa.Numeric):
        return "DOUBLE" if isinstance(kind, sa.Float) else "DECIMAL(18, 2)"
    return "VARCHAR"  # strings, text, JSON (as its text)


def _source_columns(source: FactSource) -> list[sa.Column]:
    table = source.model.__table__
    names = ["id", source.customer_column, source.time_column,
             *[c for c in source.columns if c not in ("id", source.customer_column,
                                                      source.time_column, "updated_at")],
             "updated_at"]
    return [table.c[name] for name in names]


def fact_sources() -> dict[str, FactSource]:
    """Every fact source of the enabled plugins (``clientela_warehouse_facts``), by name."""
    cached = current_app.extensions.get("clientela.analytical.facts")
    if cached is not None:
        return cached
    ext = current_app.extensions["clientela"]
    sources: dict[str, FactSource] = {}
    for impl in reversed(ext.hook.clientela_warehouse_facts.get_hookimpls()):
        def register(name, model, columns, time_column, customer_column="customer_id",
                     _plugin=impl.plugin_name):
            if not name.isidentifier() or name in sources or name == "transaction":
                raise ClientelaError(f"plugin {_plugin!r}: warehouse fact {name!r} is "
                                     "not a free identifier")
            table = model.__table__
            for column in (*columns, time_column, customer_column, "id", "updated_at"):
                if column not in table.c:
                    raise ClientelaError(f"plugin {_plugin!r}: {table.name} has no column "
                                         f"{column!r} for warehouse fact {name!r}")
            sources[name] = FactSource(name, model, tuple(columns), time_column,
                                       customer_column, _plugin)

        impl.function(register=register)
    current_app.extensions["clientela.analytical.facts"] = sources
    return sources


def _ensure_fact_table(con, source: FactSource) -> None:
    columns = _source_columns(source)
    defs = [f"{source.name}_id UUID", "customer_id UUID", "date_key DATE"]
    defs += [f'"{c.name}" {_duck_type(c)}' for c in columns[2:]]
    con.execute(f"CREATE TABLE IF NOT EXISTS {source.table} ({', '.join(defs)})")


# --- columnar transfer ------------------------------------------------------------------


def _wire(column: sa.Column, dialect: str):
    """What to select for ``column`` so that rows arrive as the driver gives them.

    SQLAlchemy's per-value result processing (UUID objects, aware datetimes, Decimals)
    costs more than the rest of the load; DuckDB parses the raw forms column-wise
    instead. Returns the select expression and the Arrow type of its values.
    """
    import pyarrow as pa

    duck = _duck_type(column)
    attribute = column  # a table column of an ORM entity: the statement stays ORM-scoped
    if duck in ("UUID", "VARCHAR") and not isinstance(column.type, sa.String):
        return sa.cast(attribute, sa.String), pa.string()
    if duck == "TIMESTAMP":
        if dialect == "postgresql":
            return sa.type_coerce(sa.func.timezone("UTC", attribute), sa.DateTime()), \
                pa.timestamp("us")
        return sa.type_coerce(attribute, sa.String), pa.string()  # SQLite stores UTC text
    if duck == "DATE":
        return sa.cast(attribute, sa.String), pa.string()
    if duck in ("DECIMAL(18, 2)", "DOUBLE"):
        return sa.cast(attribute, sa.Float), pa.float64()
    if duck == "BIGINT":
        return attribute, pa.int64()
    if duck == "BOOLEAN":
        return attribute, pa.bool_()
    return attribute, pa.string()


def _arrow_batch(types: list[pa.DataType], rows: list[tuple], names: list[str]) -> pa.Table:
    """Rows of a result as an Arrow table: transposed once, one array per column."""
    import pyarrow as pa

    columns = list(zip(*rows)) if rows else [() for _ in names]
    return pa.Table.from_arrays([pa.array(values, type=kind)
                                 for values, kind in zip(columns, types)], names=names)


def _batches(model, columns: list[sa.Column], names: list[str], since: dt.datetime | None
             ) -> Iterator[pa.Table]:
    """The model's rows changed after ``since``, as Arrow tables of ``BATCH_ROWS`` rows."""
    dialect = db.engine.dialect.name
    wired = [_wire(c, dialect) for c in columns]
    stmt = sa.select(*[w[0] for w in wired]).select_from(model)
    if since is not None:
        stmt = stmt.where(model.updated_at > since)
    types = [w[1] for w in wired]
    result = db.session.execute(stmt.execution_options(yield_per=BATCH_ROWS))
    for rows in result.partitions(BATCH_ROWS):
        yield _arrow_batch(types, rows, names)


def _select_list(columns: list[sa.Column], names: list[str]) -> str:
    """Cast the staged (raw) columns to the warehouse's types, in DuckDB."""
    return ", ".join(f'CAST("{name}" AS {_duck_type(column)}) AS "{name}"'
                     for column, name in zip(columns, names))


def _stage(con, batch: pa.Table, columns: list[sa.Column], names: list[str]) -> dt.datetime:
    """Register ``batch`` as the typed view ``staged``; returns its highest ``updated_at``."""
    con.register("staged_raw", batch)
    con.execute("CREATE OR REPLACE TEMP TABLE staged AS SELECT "
                f"{_select_list(columns, names)} FROM staged_raw")
    con.unregister("staged_raw")
    high = con.execute("SELECT max(updated_at) FROM staged").fetchall()[0][0]
    return high.replace(tzinfo=dt.timezone.utc) if high is not None else None


# --- refresh ------------------------------------------------------------------------------


@dataclasses.dataclass
class RefreshReport:
    """What one refresh loaded: rows upserted per table, customers removed and merged."""

    full: bool = False
    loaded: dict[str, int] = dataclasses.field(default_factory=dict)
    deleted_customers: int = 0
    merged_customers: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _watermark(con, key: str) -> dt.datetime | None:
    value = get_meta(con, f"watermark:{key}")
    return dt.datetime.fromisoformat(value) if value else None


def _load_customers(con, report: RefreshReport) -> None:
    table = Customer.__table__
    columns = [table.c[name] for name in CUSTOMER_COLUMNS]
    since = _watermark(con, "customers")
    names = ["customer_id", *CUSTOMER_COLUMNS[1:]]
    count, high = 0, since
    for batch in _batches(Customer, columns, names, since):
        batch_high = _stage(con, batch, columns, names)
        con.execute("DELETE FROM dim_customer WHERE customer_id IN "
                    "(SELECT customer_id FROM staged)")
        con.execute("INSERT INTO dim_customer SELECT * FROM staged")
        count += batch.num_rows
        if batch_high is not None and (high is None or batch_high > high):
            high = batch_high
    if high is not None:
        set_meta(con, "watermark:customers", high.isoformat())
    report.loaded["dim_customer"] = count


def _load_fact(con, source: FactSource, report: RefreshReport) -> None:
    columns = _source_columns(source)
    names = [f"{source.name}_id", "customer_id", *[c.name for c in columns[2:]]]
    since = _watermark(con, source.table)
    count, high = 0, since
    time_name = columns[2].name
    # date_key follows customer_id in the table: insert by name, not position
    target = ", ".join(f'"{n}"' for n in names)
    for batch in _batches(source.model, columns, names, since):
        batch_high = _stage(con, batch, columns, names)
        con.execute(f"DELETE FROM {source.table} WHERE {source.name}_id IN "
                    f"(SELECT {source.name}_id FROM staged)")
        con.execute(f"INSERT INTO {source.table} ({target}, date_key) "
                    f'SELECT {target}, CAST("{time_name}" AS DATE) FROM staged')
        count += batch.num_rows
        if batch_high is not None and (high is None or batch_high > high):
            high = batch_high
    if high is not None:
        set_meta(con, f"watermark:{source.table}", high.isoformat())
    report.loaded[source.table] = count


def _fact_tables(con) -> list[str]:
    return ["fact_transaction", *[s.table for s in fact_sources().values()]]


def _apply_removals(con, report: RefreshReport) -> None:
    """Merges and deletions recorded in the audit trail since the last refresh."""
    since = _watermark(con, "audit")
    tables = {Customer.__tablename__: None, **{s.model.__tablename__: s
                                               for s in fact_sources().values()}}
    stmt = sa.select(AuditEvent.action, AuditEvent.entity_type, AuditEvent.entity_id,
                     AuditEvent.changes, AuditEvent.created_at).where(
        AuditEvent.action.in_(("delete", "merge")), AuditEvent.entity_type.in_(list(tables)))
    if since is not None:
        stmt = stmt.where(AuditEvent.created_at > since)
    events = db.session.execute(stmt.order_by(AuditEvent.created_at)).all()
    high = since
    merges, deleted_customers, deleted_facts = [], set(), {}
    for action, entity_type, entity_id, changes, created_at in events:
        if created_at.tzinfo is None:
            created_at = created_at.replace(tzinfo=dt.timezone.utc)
        high = created_at if high is None or created_at > high else high
        if action == "merge" and isinstance(changes, dict) and changes.get("merged_id"):
            merges.append((str(changes["merged_id"]), str(entity_id)))
        elif action == "delete" and entity_type == Customer.__tablename__:
            deleted_customers.add(str(entity_id))
        elif action == "delete":
            deleted_facts.setdefault(tables[entity_type], set()).add(str(entity_id))
    for merged_id, survivor_id in merges:
        for table in _fact_tables(con):
            con.execute(f"UPDATE {table} SET customer_id = ? WHERE customer_id = ?",
                        [survivor_id, merged_id])
        con.execute("DELETE FROM dim_customer_attribute WHERE customer_id = ? AND name IN "
                    "(SELECT name FROM dim_customer_attribute WHERE customer_id = ?)",
                    [merged_id, survivor_id])
        con.execute("UPDATE dim_customer_attribute SET customer_id = ? WHERE customer_id = ?",
                    [survivor_id, merged_id])
        # the survivor's own memberships are recomputed by the next segment refresh
        con.execute("DELETE FROM segment_member WHERE customer_id = ?", [merged_id])
    if deleted_customers:
        import pyarrow as pa

        ids = pa.table({"id": pa.array(sorted(deleted_customers), pa.string())})
        con.register("gone", ids)
        try:
            for table in ("dim_customer", "dim_customer_attribute", "segment_member",
                          *_fact_tables(con)):
                con.execute(f"DELETE FROM {table} WHERE customer_id IN "
                            "(SELECT CAST(id AS UUID) FROM gone)")
        finally:
            con.unregister("gone")
    for source, ids in deleted_facts.items():
        con.execute(f"DELETE FROM {source.table} WHERE {source.name}_id IN "
                    f"(SELECT CAST(unnest(?) AS UUID))", [sorted(ids)])  # noqa: S608
    if high is not None:
        set_meta(con, "watermark:audit", high.isoformat())
    report.deleted_customers = len(deleted_customers - {m for m, _ in merges})
    report.merged_customers = len(merges)


def rebuild_derived_dimensions(con) -> None:
    """``dim_date`` over the span of every fact, ``dim_channel`` from the interactions."""
    spans = " UNION ALL ".join(f"SELECT min(date_key) AS lo, max(date_key) AS hi FROM {t}"
                               for t in _fact_tables(con))
    con.execute(f"""
        CREATE OR REPLACE TABLE dim_date AS
        WITH span AS (SELECT min(lo) AS lo, max(hi) AS hi FROM ({spans}))
        SELECT CAST(d AS DATE) AS date_key, year(d) AS year, quarter(d) AS quarter,
               month(d) AS month, day(d) AS day, isodow(d) AS day_of_week,
               weekofyear(d) AS iso_week, CAST(date_trunc('month', d) AS DATE) AS month_start
        FROM span, range(span.lo, span.hi + INTERVAL 1 DAY, INTERVAL 1 DAY) AS r(d)
        WHERE span.lo IS NOT NULL""")
    if "interaction" in fact_sources():
        con.execute("CREATE OR REPLACE TABLE dim_channel AS SELECT DISTINCT channel "
                    "FROM fact_interaction WHERE channel IS NOT NULL ORDER BY channel")


def refresh(full: bool = False) -> RefreshReport:
    """Bring the current tenant's warehouse up to date with the operational database.

    Incremental unless ``full``: only rows changed since the last refresh are read.
    ``full`` rebuilds the customer dimension and the operational facts from scratch
    (imported transactions and attributes are kept: the operational database does not
    hold them).
    """
    started = time.perf_counter()
    report = RefreshReport(full=full)
    with connect(write=True) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            if full:
                con.execute("DELETE FROM warehouse_meta WHERE key LIKE 'watermark:%'")
                con.execute("DELETE FROM dim_customer")
                for source in fact_sources().values():
                    con.execute(f"DELETE FROM {source.table}")
            _apply_removals(con, report)
            _load_customers(con, report)
            for source in fact_sources().values():
                _load_fact(con, source, report)
            if full:
                for table in ("dim_customer_attribute", "fact_transaction"):
                    con.execute(f"DELETE FROM {table} WHERE customer_id NOT IN "
                                "(SELECT customer_id FROM dim_customer)")
            rebuild_derived_dimensions(con)
            set_meta(con, "refreshed_at", utcnow().isoformat())
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def status() -> dict[str, Any]:
    """Watermarks, the last refresh and the row count of every table."""
    with connect() as con:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "ORDER BY table_name").fetchall()]
        counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in tables
                  if t != "warehouse_meta"}
        meta = dict(con.execute("SELECT key, value FROM warehouse_meta ORDER BY key").fetchall())
    return {"path": warehouse_path(), "refreshed_at": meta.get("refreshed_at"),
            "watermarks": {k.split(":", 1)[1]: v for k, v in meta.items()
                           if k.startswith("watermark:")},
            "tables": counts}


# --- export for larger engines ------------------------------------------------------------


def star_tables(con) -> list[str]:
    """The dimensions and facts of the star schema, in a stable order."""
    return ["dim_customer", "dim_customer_attribute", "dim_date", "dim_channel", "dim_product",
            *_fact_tables(con)]


def export_parquet(directory: str) -> dict[str, Any]:
    """Write the current tenant's star schema as Parquet, partitioned by tenant.

    Each table goes to ``<directory>/<table>/tenant_id=<tenant id>/data_0.parquet`` (Hive
    partitioning, with a ``tenant_id`` column in the data as well), so exports of every
    tenant into one directory form one data set per table that DuckDB, Spark, Trino or
    pyarrow read with the tenant as a partition key. Exporting a tenant again replaces its
    partition and leaves the other tenants' alone. An empty table writes no file.
    """
    import shutil

    tenant_id = tenancy.current_tenant_id()
    if not isinstance(tenant_id, uuid.UUID):
        raise TypeError("export_parquet runs inside a tenant")
    root = os.path.abspath(directory)
    report: dict[str, Any] = {"directory": root, "tenant_id": str(tenant_id), "tables": {}}
    with connect() as con:
        for table in star_tables(con):
            target = os.path.join(root, table)
            partition = os.path.join(target, f"tenant_id={tenant_id}")
            if os.path.isdir(partition):
                shutil.rmtree(partition)
            os.makedirs(target, exist_ok=True)
            rows = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
            if rows:
                quoted = target.replace("'", "''")
                con.execute(
                    f"COPY (SELECT CAST('{tenant_id}' AS VARCHAR) AS tenant_id, * FROM {table}) "
                    f"TO '{quoted}' (FORMAT PARQUET, PARTITION_BY (tenant_id), "
                    "OVERWRITE_OR_IGNORE, FILENAME_PATTERN 'data_{i}')")
            report["tables"][table] = rows
    return report


# --- data-subject rights ------------------------------------------------------------------


def customer_data(customer_id: uuid.UUID) -> dict[str, Any] | None:
    """Everything the warehouse holds about one customer (data-subject access)."""
    if not exists():
        return None
    cid = str(customer_id)
    out: dict[str, Any] = {}
    with connect() as con:
        for table in ("dim_customer", "dim_customer_attribute", "segment_member",
                      *_fact_tables(con)):
            cursor = con.execute(f"SELECT * FROM {table} WHERE customer_id = ?", [cid])
            names = [d[0] for d in cursor.description]
            out[table] = [dict(zip(names, row)) for row in cursor.fetchall()]
    return out


def erase_customer(customer_id: uuid.UUID) -> dict[str, int] | None:
    """Remove personal data of one customer: names and addresses go, amounts and dates stay."""
    if not exists():
        return None
    cid = str(customer_id)
    with connect(write=True) as con:
        anonymised = con.execute(
            "UPDATE dim_customer SET display_name = 'Erased customer', email = NULL, "
            "external_id = NULL WHERE customer_id = ?", [cid]).fetchall()[0][0]
        attributes = con.execute("DELETE FROM dim_customer_attribute WHERE customer_id = ?",
                                 [cid]).fetchall()[0][0]
        # an erased customer is on no list a campaign will send to
        memberships = con.execute("DELETE FROM segment_member WHERE customer_id = ?",
                                  [cid]).fetchall()[0][0]
    return {"customers_anonymised": anonymised, "attributes_deleted": attributes,
            "segment_memberships_deleted": memberships}
