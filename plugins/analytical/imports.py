"""External sources: order lines from ERP or shop exports, and customer attribute files.

Files are read by DuckDB's own CSV and Parquet readers, mapped to our fields by a column
mapping (saved per tenant, ``AnalyticalImportMapping``), checked and matched to customers
in SQL — all columnar — and loaded into the warehouse. Every import reports rows read,
matched and rejected, with the reason for each rejected row (its 1-based data row
number: the header is not counted).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from clientela.core import transfer
from clientela.core import transforms as value_transforms
from clientela.core.db import db, new_id, utcnow
from clientela.core.errors import NotFound, ValidationError
from clientela.plugins.analytical import metrics, warehouse
from clientela.plugins.analytical.models import AnalyticalImportMapping

TRANSACTION_FIELDS = {
    "order_id": "the order (or invoice) number: lines of one order form one basket",
    "line_id": "the line's number within the order (default: its position in the file)",
    "ordered_at": "when the order was placed (ISO date or date-time, or options.date_format)",
    "customer_external_id": "the customer's external id (Customer.external_id)",
    "customer_email": "the customer's primary e-mail",
    "product_id": "the product's code (SKU)",
    "product_name": "the product's name",
    "category": "the product's category",
    "quantity": "units bought (default 1)",
    "amount": "the line's total amount",
    "unit_price": "price per unit: amount = unit_price x quantity when amount is not mapped",
    "currency": "ISO 4217 code (default: options.currency, else ANALYTICAL_CURRENCY)",
}
ATTRIBUTE_KEYS = ("customer_external_id", "customer_email")
OPTIONS = ("date_format", "decimal_separator", "currency", "source", "delimiter")


@dataclasses.dataclass
class ImportReport:
    """What an import did: rows read, matched (loaded) and rejected, with a reason per row."""

    import_id: str
    kind: str
    filename: str
    rows_read: int = 0
    matched: int = 0
    rejected: int = 0
    rejections: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --- mappings ------------------------------------------------------------------------------


def _check_mapping(kind: str, columns: dict[str, str | None], options: dict[str, Any]) -> None:
    errors: dict[str, list[str]] = {}
    if kind not in ("transactions", "attributes"):
        errors["kind"] = ["use 'transactions' or 'attributes'"]
    elif kind == "transactions":
        fields = [f for f in columns.values() if f]
        unknown = sorted({f for f in fields if f not in TRANSACTION_FIELDS})
        if unknown:
            errors["columns"] = [f"unknown field {f!r}; use {', '.join(TRANSACTION_FIELDS)}"
                                 for f in unknown]
        dupes = sorted({f for f in fields if fields.count(f) > 1})
        if dupes:
            errors.setdefault("columns", []).extend(f"{f!r} is mapped twice" for f in dupes)
    else:
        fields = [f for f in columns.values() if f]
        bad = [f for f in fields if f not in ATTRIBUTE_KEYS and not f.startswith("attribute:")]
        if bad:
            errors["columns"] = [f"{f!r}: use customer_external_id, customer_email or "
                                 "attribute:<name>" for f in bad]
    checks = {
        "currency": (lambda v: isinstance(v, str) and len(v) == 3 and v.isalpha(),
                     "a three-letter currency code"),
        "decimal_separator": (lambda v: v in (".", ","), "'.' or ','"),
        "delimiter": (lambda v: isinstance(v, str) and len(v) == 1, "one character"),
        "date_format": (lambda v: isinstance(v, str) and "'" not in v and "%" in v,
                        "a strptime format such as %d.%m.%Y"),
        "source": (lambda v: isinstance(v, str) and 0 < len(v) <= 50 and ":" not in v,
                   "a name of at most 50 characters, without ':'"),
    }
    for key, (valid, expected) in checks.items():
        if key in options and not valid(options[key]):
            errors.setdefault("options", []).append(f"{key}: use {expected}")
    unknown_options = sorted(set(options) - set(OPTIONS))
    if unknown_options:
        errors.setdefault("options", []).extend(
            f"unknown option {o!r}; use {', '.join(OPTIONS)}" for o in unknown_options)
    if errors:
        raise ValidationError(errors)


def save_mapping(name: str, kind: str, columns: dict[str, str | None],
                 options: dict[str, Any] | None = None) -> AnalyticalImportMapping:
    """Create or replace the tenant's mapping ``name`` for ``kind`` files (the caller commits)."""
    options = options or {}
    _check_mapping(kind, columns, options)
    mapping = db.session.execute(db.select(AnalyticalImportMapping).where(
        AnalyticalImportMapping.kind == kind, AnalyticalImportMapping.name == name)
    ).scalar_one_or_none()
    if mapping is None:
        mapping = AnalyticalImportMapping(name=name, kind=kind)
        db.session.add(mapping)
    mapping.columns, mapping.options = dict(columns), dict(options)
    db.session.flush()
    return mapping


def get_mapping(name: str, kind: str) -> AnalyticalImportMapping:
    mapping = db.session.execute(db.select(AnalyticalImportMapping).where(
        AnalyticalImportMapping.kind == kind, AnalyticalImportMapping.name == name)
    ).scalar_one_or_none()
    if mapping is None:
        raise NotFound(f"no {kind} mapping named {name!r}")
    return mapping


def list_mappings() -> list[AnalyticalImportMapping]:
    return list(db.session.execute(db.select(AnalyticalImportMapping).order_by(
        AnalyticalImportMapping.kind, AnalyticalImportMapping.name)).scalars())


# --- reading a file ----------------------------------------------------------------------


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _read_raw(con, path: str, options: dict[str, Any]) -> list[str]:
    """Load the file into the temporary table ``raw`` (all text), in file order; its headers."""
    if not os.path.isfile(path):
        raise ValidationError({"file": [f"no such file: {path}"]})
    lower = path.lower()
    if lower.endswith((".parquet", ".pq")):
        reader = "read_parquet(?)"
        args: list[Any] = [path]
    elif lower.endswith((".csv", ".txt", ".tsv")):
        delimiter = options.get("delimiter") or ("\t" if lower.endswith(".tsv") else None)
        extra = ", delim = ?" if delimiter else ""
        reader = f"read_csv(?, header = true, all_varchar = true{extra})"
        args = [path, delimiter] if delimiter else [path]
    else:
        raise ValidationError({"file": ["use a .csv or .parquet file"]})
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE raw AS SELECT * FROM {reader}", args)
    except Exception as exc:  # duckdb raises several kinds for a file it cannot parse
        raise ValidationError({"file": [f"cannot read the file: {str(exc).splitlines()[0]}"]})
    # a temporary table keeps the reader's order: its rowid is the data row's position
    return [r[0] for r in con.execute("DESCRIBE raw").fetchall()]


def _columns_for(headers: list[str], columns: dict[str, str | None]) -> dict[str, str]:
    """field -> header; headers match case-insensitively and ignoring surrounding spaces."""
    by_key = {h.strip().lower(): h for h in headers}
    found = {}
    missing = []
    for header, field in columns.items():
        if not field:
            continue
        actual = by_key.get(header.strip().lower())
        if actual is None:
            missing.append(header)
        else:
            found[field] = actual
    if missing:
        raise ValidationError({"columns": [f"the file has no column {h!r}" for h in missing]})
    return found


def _text(found: dict[str, str], field: str) -> str:
    if field not in found:
        return "NULL"
    return f"nullif(trim(CAST({_quote(found[field])} AS VARCHAR)), '')"


def _number(found: dict[str, str], field: str, decimal_separator: str) -> str:
    text = _text(found, field)
    if decimal_separator == ",":
        text = f"replace(replace({text}, '.', ''), ',', '.')"
    return f"TRY_CAST({text} AS DOUBLE)"


def _timestamp(found: dict[str, str], field: str, date_format: str | None) -> str:
    text = _text(found, field)
    if date_format:
        return f"try_strptime({text}, '{date_format}')"  # checked: holds no quote
    return f"TRY_CAST({text} AS TIMESTAMP)"


def _start(con, kind: str, path: str, mapping_name: str | None, report: ImportReport) -> None:
    con.execute("INSERT INTO import_runs VALUES (?, ?, ?, ?, ?, 0, 0, 0)",
                [report.import_id, kind, os.path.basename(path), mapping_name,
                 utcnow().replace(tzinfo=None)])


def _finish(con, report: ImportReport) -> None:
    counts = con.execute("SELECT count(*), count(*) FILTER (reason IS NULL) FROM checked"
                         ).fetchall()[0]
    report.rows_read, report.matched = counts
    report.rejected = report.rows_read - report.matched
    con.execute("INSERT INTO import_rejections SELECT ?, row_number, reason FROM checked "
                "WHERE reason IS NOT NULL", [report.import_id])
    report.rejections = [{"row": r, "reason": reason} for r, reason in con.execute(
        "SELECT row_number, reason FROM checked WHERE reason IS NOT NULL ORDER BY row_number"
    ).fetchall()]
    con.execute("UPDATE import_runs SET rows_read = ?, matched = ?, rejected = ? "
                "WHERE import_id = ?", [report.rows_read, report.matched, report.rejected,
                                         report.import_id])


def _saved(kind: str, name: str) -> tuple[dict, dict, dict]:
    """``(columns, options, transforms)`` of the saved mapping ``name``: this plugin's own
    mapping of ``kind`` if there is one, else the tenant's import mapping (the core's
    ``ImportMapping``, kept by the tailor-made plugin's ``/import-mappings``) of kind
    ``kind``, with its value transformations. 422 on ``mapping`` if there is neither."""
    own = db.session.execute(db.select(AnalyticalImportMapping).where(
        AnalyticalImportMapping.kind == kind, AnalyticalImportMapping.name == name)
    ).scalar_one_or_none()
    if own is not None:
        return dict(own.columns), dict(own.options), {}
    try:
        transfer.get_saved_mapping(name)
    except NotFound:
        raise ValidationError({"mapping": [f"no {kind} mapping named {name!r}"]}) from None
    columns, transforms = transfer.saved_mapping(name, kind)  # 422 if for another import
    return columns, {}, transforms


def _resolve(kind: str, mapping: str | None, columns: dict[str, str | None] | None,
             options: dict[str, Any] | None) -> tuple[dict, dict, dict]:
    transforms: dict[str, list] = {}
    if mapping:
        saved_columns, saved_options, transforms = _saved(kind, mapping)
        columns = {**saved_columns, **(columns or {})}
        options = {**saved_options, **(options or {})}
    if not columns:
        raise ValidationError({"columns": ["give a column mapping or the name of a saved one"]})
    options = options or {}
    _check_mapping(kind, columns, options)
    return columns, options, transforms


def _transform_raw(con, headers: list[str], transforms: dict[str, list]) -> list[str]:
    """Apply a saved mapping's value transformations to ``raw``, in Python, row by row
    (the columnar path stays for imports without them); the temporary table
    ``transform_problems`` gets the rows a transformation failed, with the reason.
    Returns the headers, with the columns transforms make (``join``) added."""
    con.execute("CREATE OR REPLACE TEMP TABLE transform_problems "
                "(row_number BIGINT, problem VARCHAR)")
    if not transforms:
        return headers
    import pyarrow as pa

    by_key = {h.strip().lower(): h for h in headers}
    # headers match as the column mapping's do: case-insensitively, spaces around ignored
    steps = {by_key.get(h.strip().lower(), h): [
        {**step, "columns": [by_key.get(c.strip().lower(), c) for c in step["columns"]]}
        if step.get("op") == "join" else step for step in step_list]
        for h, step_list in transforms.items()}
    names = headers + value_transforms.new_columns(headers, steps)
    rows = con.execute("SELECT " + ", ".join(
        f"CAST({_quote(h)} AS VARCHAR)" for h in headers) + " FROM raw ORDER BY rowid"
    ).fetchall()
    out: dict[str, list] = {h: [] for h in names}
    problems: list[tuple[int, str]] = []
    for index, values in enumerate(rows):
        row = {h: value or "" for h, value in zip(headers, values)}
        changed, failed = value_transforms.apply(row, steps)
        for h in names:
            value = changed.get(h, "")
            out[h].append(value if value != "" else None)
        if failed:
            problems.append((index + 1, "; ".join(f"{h}: {m}" for h, m in failed)))
    con.register("transformed_given", pa.table({h: pa.array(out[h], pa.string())
                                                 for h in names}))
    con.execute("CREATE OR REPLACE TEMP TABLE raw AS SELECT * FROM transformed_given")
    con.unregister("transformed_given")
    if problems:
        con.executemany("INSERT INTO transform_problems VALUES (?, ?)", problems)
    return names


# --- transactions --------------------------------------------------------------------------


def import_transactions(path: str, *, mapping: str | None = None,
                        columns: dict[str, str | None] | None = None,
                        options: dict[str, Any] | None = None) -> ImportReport:
    """Load order lines from a CSV or Parquet export into ``fact_transaction``.

    The customer is matched by external id, else by primary e-mail (case-insensitive),
    against the warehouse's customer dimension, which is refreshed first. Amounts are
    converted to ``ANALYTICAL_CURRENCY`` with ``ANALYTICAL_EXCHANGE_RATES``; a row in a
    currency without a rate is rejected. Lines already imported (same source, order and
    line) are replaced, so importing a file again changes nothing.
    """
    columns, options, transforms = _resolve("transactions", mapping, columns, options)
    fields = set(v for v in columns.values() if v)
    missing = [f for f in ("order_id", "ordered_at", "product_id") if f not in fields]
    if "amount" not in fields and "unit_price" not in fields:
        missing.append("amount (or unit_price)")
    if not fields & set(ATTRIBUTE_KEYS):
        missing.append("customer_external_id or customer_email")
    if missing:
        raise ValidationError({"columns": [f"map a column to {f}" for f in missing]})
    warehouse.refresh()
    report = ImportReport(import_id=str(new_id()), kind="transactions",
                          filename=os.path.basename(path))
    base_currency = str(metrics.setting("ANALYTICAL_CURRENCY")).upper()
    rates = {str(k).upper(): float(v)
             for k, v in (metrics.setting("ANALYTICAL_EXCHANGE_RATES") or {}).items()}
    rates[base_currency] = 1.0
    source = str(options.get("source") or "import")
    decimal_separator = options.get("decimal_separator") or "."
    default_currency = str(options.get("currency") or base_currency).upper()
    with warehouse.connect(write=True) as con:
        headers = _transform_raw(con, _read_raw(con, path, options), transforms)
        found = _columns_for(headers, columns)
        import pyarrow as pa

        con.register("rates_given", pa.table({"currency": list(rates),
                                               "rate": list(rates.values())}))
        con.execute("CREATE OR REPLACE TEMP TABLE rates AS SELECT * FROM rates_given")
        con.unregister("rates_given")
        quantity = _number(found, "quantity", decimal_separator) if "quantity" in found \
            else "1.0"
        amount = _number(found, "amount", decimal_separator) if "amount" in found else \
            f"{_number(found, 'unit_price', decimal_separator)} * {quantity}"
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE parsed AS
            SELECT rowid + 1 AS row_number,
                   {_text(found, 'order_id')} AS order_id,
                   {_text(found, 'line_id')} AS line_no,
                   {_text(found, 'ordered_at')} AS ordered_at_text,
                   {_timestamp(found, 'ordered_at', options.get('date_format'))} AS ordered_at,
                   {_text(found, 'customer_external_id')} AS external_id,
                   lower({_text(found, 'customer_email')}) AS email,
                   {_text(found, 'product_id')} AS product_id,
                   {_text(found, 'product_name')} AS product_name,
                   {_text(found, 'category')} AS category,
                   {_text(found, 'quantity')} AS quantity_text,
                   {quantity} AS quantity,
                   {amount} AS amount,
                   upper(coalesce({_text(found, 'currency')}, '{default_currency}')) AS currency
            FROM raw""")
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE checked AS
            WITH by_external AS (
                SELECT external_id, min(customer_id) AS customer_id FROM dim_customer
                WHERE external_id IS NOT NULL GROUP BY external_id),
            by_email AS (
                SELECT email, min(customer_id) AS customer_id, count(*) AS customers
                FROM dim_customer WHERE email IS NOT NULL GROUP BY email),
            matched AS (
                -- the customer by external id, else by e-mail: joins with the customers
                -- grouped by key (one hash join each; correlated subqueries took longer)
                SELECT v.*, r.rate, t.problem AS transform_problem,
                       coalesce(x.customer_id, e.customer_id) AS customer_id,
                       CASE WHEN v.external_id IS NULL THEN coalesce(e.customers, 0)
                            ELSE 0 END AS email_matches,
                       row_number() OVER (PARTITION BY v.order_id ORDER BY v.row_number)
                           AS position
                FROM parsed v LEFT JOIN rates r USING (currency)
                     LEFT JOIN transform_problems t USING (row_number)
                     LEFT JOIN by_external x ON x.external_id = v.external_id
                     LEFT JOIN by_email e ON e.email = v.email)
            SELECT *, CASE
                WHEN transform_problem IS NOT NULL THEN transform_problem
                WHEN order_id IS NULL THEN 'no order id'
                WHEN ordered_at_text IS NULL THEN 'no order date'
                WHEN ordered_at IS NULL THEN 'order date is not a date: ' || ordered_at_text
                WHEN product_id IS NULL THEN 'no product'
                WHEN quantity IS NULL THEN 'quantity is not a number: ' || quantity_text
                WHEN quantity <= 0 THEN 'quantity must be positive'
                WHEN amount IS NULL THEN 'amount is missing or not a number'
                WHEN rate IS NULL THEN 'no exchange rate for currency ' || currency
                WHEN external_id IS NULL AND email IS NULL THEN 'no customer external id or e-mail'
                WHEN email_matches > 1 THEN 'several customers have this e-mail'
                WHEN customer_id IS NULL THEN 'no customer with this external id or e-mail'
                END AS reason
            FROM matched""")
        con.execute("BEGIN TRANSACTION")
        try:
            _start(con, "transactions", path, mapping, report)
            con.execute("""
                CREATE OR REPLACE TEMP TABLE good AS
                SELECT ? || ':' || order_id || ':' || coalesce(line_no, CAST(position AS VARCHAR))
                           AS line_id, * FROM checked WHERE reason IS NULL""", [source])
            # lines imported before (same source, order, line) are replaced; a source
            # never imported before has none to look for
            if con.execute("SELECT 1 FROM fact_transaction WHERE source = ? LIMIT 1",
                           [source]).fetchall():
                con.execute("DELETE FROM fact_transaction "
                            "WHERE line_id IN (SELECT line_id FROM good)")
            con.execute("""
                INSERT INTO fact_transaction
                SELECT line_id, order_id, customer_id, CAST(ordered_at AS DATE), ordered_at,
                       product_id, quantity, CAST(round(amount * rate, 2) AS DECIMAL(18, 2)),
                       CAST(round(amount, 2) AS DECIMAL(18, 2)), currency, ?, ?
                FROM good""", [source, report.import_id])
            con.execute("""
                CREATE OR REPLACE TEMP TABLE products AS
                SELECT product_id, arg_max(product_name, row_number) FILTER
                           (product_name IS NOT NULL) AS name,
                       arg_max(category, row_number) FILTER (category IS NOT NULL) AS category
                FROM good GROUP BY product_id""")
            con.execute("""
                CREATE OR REPLACE TEMP TABLE merged_products AS
                SELECT p.product_id, coalesce(p.name, d.name) AS name,
                       coalesce(p.category, d.category) AS category
                FROM products p LEFT JOIN dim_product d USING (product_id)""")
            con.execute("DELETE FROM dim_product WHERE product_id IN "
                        "(SELECT product_id FROM merged_products)")
            con.execute("INSERT INTO dim_product SELECT * FROM merged_products")
            _finish(con, report)
            warehouse.rebuild_derived_dimensions(con)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return report


# --- customer attributes -------------------------------------------------------------------


def import_attributes(path: str, *, mapping: str | None = None,
                      columns: dict[str, str | None] | None = None,
                      options: dict[str, Any] | None = None) -> ImportReport:
    """Load customer attributes (demographics) into ``dim_customer_attribute``.

    The mapping names the key column (``customer_external_id`` or ``customer_email``) and
    the attribute columns (``attribute:<name>``); with only a key mapped, every other
    column is an attribute named by its header. An attribute loaded again replaces the
    customer's previous value; an empty cell leaves it as it was.
    """
    columns, options, transforms = _resolve("attributes", mapping, columns, options)
    keys = [f for f in columns.values() if f in ATTRIBUTE_KEYS]
    if not keys:
        raise ValidationError({"columns": ["map a column to customer_external_id or "
                                           "customer_email"]})
    warehouse.refresh()
    report = ImportReport(import_id=str(new_id()), kind="attributes",
                          filename=os.path.basename(path))
    with warehouse.connect(write=True) as con:
        headers = _transform_raw(con, _read_raw(con, path, options), transforms)
        found = _columns_for(headers, columns)
        attributes = {f.split(":", 1)[1]: h for f, h in found.items()
                      if f.startswith("attribute:")}
        if not attributes:
            keyed = set(found.values())
            attributes = {h.strip(): h for h in headers if h not in keyed}
        if not attributes:
            raise ValidationError({"columns": ["the file has no attribute column"]})
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE checked AS
            WITH parsed AS (
                SELECT rowid + 1 AS row_number,
                       {_text(found, 'customer_external_id')} AS external_id,
                       lower({_text(found, 'customer_email')}) AS email, *
                FROM raw),
            matched AS (
                SELECT p.*, t.problem AS transform_problem,
                       coalesce(
                           (SELECT min(c.customer_id) FROM dim_customer c
                            WHERE p.external_id IS NOT NULL AND c.external_id = p.external_id),
                           (SELECT min(c.customer_id) FROM dim_customer c
                            WHERE p.email IS NOT NULL AND c.email = p.email)) AS customer_id,
                       (SELECT count(*) FROM dim_customer c WHERE p.external_id IS NULL
                        AND p.email IS NOT NULL AND c.email = p.email) AS email_matches
                FROM parsed p LEFT JOIN transform_problems t USING (row_number))
            SELECT *, CASE
                WHEN transform_problem IS NOT NULL THEN transform_problem
                WHEN external_id IS NULL AND email IS NULL THEN 'no customer external id or e-mail'
                WHEN email_matches > 1 THEN 'several customers have this e-mail'
                WHEN customer_id IS NULL THEN 'no customer with this external id or e-mail'
                END AS reason
            FROM matched""")
        unpivot = " UNION ALL ".join(
            f"SELECT customer_id, ? AS name, nullif(trim(CAST({_quote(h)} AS VARCHAR)), '') "
            f"AS value, row_number FROM checked WHERE reason IS NULL"
            for h in attributes.values())
        con.execute("BEGIN TRANSACTION")
        try:
            _start(con, "attributes", path, mapping, report)
            con.execute(f"""
                CREATE OR REPLACE TEMP TABLE new_values AS
                SELECT customer_id, name, arg_max(value, row_number) AS value
                FROM ({unpivot}) WHERE value IS NOT NULL GROUP BY customer_id, name""",
                        list(attributes))
            con.execute("DELETE FROM dim_customer_attribute a USING new_values n "
                        "WHERE a.customer_id = n.customer_id AND a.name = n.name")
            con.execute("INSERT INTO dim_customer_attribute SELECT customer_id, name, value, ?, ? "
                        "FROM new_values", [report.import_id, utcnow().replace(tzinfo=None)])
            _finish(con, report)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return report


def import_runs(limit: int = 50) -> list[dict[str, Any]]:
    with warehouse.connect() as con:
        cursor = con.execute("SELECT * FROM import_runs ORDER BY started_at DESC LIMIT ?",
                             [limit])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]




#: rejections listed in an API answer (all are kept in ``import_rejections``)
REJECTIONS_SHOWN = 1000
UPLOAD_SUFFIXES = (".csv", ".txt", ".tsv", ".parquet", ".pq")


def import_file(kind: str, path: str, **kwargs: Any) -> ImportReport:
    """``import_transactions`` or ``import_attributes``, by ``kind``."""
    if kind == "transactions":
        return import_transactions(path, **kwargs)
    if kind == "attributes":
        return import_attributes(path, **kwargs)
    raise ValidationError({"kind": ["use 'transactions' or 'attributes'"]})


def import_upload(kind: str, stream, filename: str, **kwargs: Any) -> ImportReport:
    """Import an uploaded file: written to the tenant's folder first (DuckDB reads files),
    then removed. ``filename`` only tells CSV from Parquet and names the run."""
    import shutil
    import tempfile

    from clientela.core import tenancy

    name = os.path.basename(filename or "")
    suffix = os.path.splitext(name)[1].lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise ValidationError({"file": [f"use a file named *.csv or *.parquet, not {name!r}"]})
    folder = os.path.join(warehouse.warehouse_dir(tenancy.current_tenant_id()), "uploads")
    os.makedirs(folder, exist_ok=True)
    handle, path = tempfile.mkstemp(suffix=suffix, dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            shutil.copyfileobj(stream, out, 1 << 20)
        try:
            report = import_file(kind, path, **kwargs)
        except ValidationError as exc:  # name the upload, never the server's path
            exc.errors = {k: [m.replace(path, name) if isinstance(m, str) else m for m in v]
                          if isinstance(v, list) else v for k, v in exc.errors.items()}
            raise
    finally:
        os.unlink(path)
    report.filename = name
    with warehouse.connect(write=True) as con:
        con.execute("UPDATE import_runs SET filename = ? WHERE import_id = ?",
                    [name, report.import_id])
    return report


def get_run(import_id: str) -> dict[str, Any]:
    """One import of the current tenant, with its first rejections."""
    with warehouse.connect() as con:
        cursor = con.execute("SELECT * FROM import_runs WHERE import_id = ?", [str(import_id)])
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
        if not rows:
            raise NotFound("import not found")
        run = dict(zip(names, rows[0]))
        run["rejections"] = [{"row": r, "reason": reason} for r, reason in con.execute(
            "SELECT row_number, reason FROM import_rejections WHERE import_id = ? "
            "ORDER BY row_number LIMIT ?", [str(import_id), REJECTIONS_SHOWN]).fetchall()]
    return run
