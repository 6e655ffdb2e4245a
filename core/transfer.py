"""Customer import (CSV, vCard 3/4) and export (CSV), written in batches that skip the ORM.

Rows are read from a file-like object or any iterable of lines (so a streamed HTTP body
works as well as a file), validated and normalised in Python with the same rules as
``services.create_customer`` (``services.clean_customer_data``), matched against
existing customers one ``IN`` query per batch, and written with one ``INSERT``
executemany (SQLite) or ``COPY`` (PostgreSQL) per batch and one ``UPDATE`` executemany
per batch. An import is one transaction: it commits whole, or writes nothing.

Since the batches skip the ORM flush, an import writes one summary ``AuditEvent``
(action ``import``) and fires ``clientela_customers_imported_precommit`` /
``_postcommit`` once, instead of the per-customer audit rows and hooks.
"""

from __future__ import annotations

import codecs
import concurrent.futures
import csv
import dataclasses
import io
import itertools
import json
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import sqlalchemy as sa
import sqlalchemy.exc

from clientela.core import services, tenancy
from clientela.core import transforms as value_transforms
from clientela.core.db import db, new_id, utcnow
from clientela.core.errors import ClientelaError, NotFound, ValidationError
from clientela.core.events import EntityChange, call_each, json_safe, plugin_hooks
from clientela.core.models import AuditEvent, Customer, ImportMapping, User

BATCH_SIZE = 5000
MATCH_KEYS = ("email", "external_id", "id", "none")
MAX_KEPT_ERRORS = 100_000

#: the columns an export writes, in order; an import reads the same names
EXPORT_COLUMNS = (
    "id", "kind", "display_name", "first_name", "last_name", "organisation_name", "email",
    "phone", "website", "stage", "tags", "external_id", "owner_id", "organisation_id",
    "emails", "phones", "addresses", "attributes", "created_at", "updated_at",
)
#: what a column can be mapped to, besides ``attributes.<key>``, ``phones.<label>``,
#: ``emails.<label>`` and ``address.<part>``
TARGETS = (
    "id", "kind", "display_name", "first_name", "last_name", "organisation_name", "email",
    "phone", "website", "stage", "tags", "external_id", "owner_id", "organisation_id",
    "emails", "phones", "addresses", "attributes",
)
ADDRESS_PARTS = ("street", "city", "region", "postal_code", "country")
#: columns that an export writes but an import never sets (the database does)
READ_ONLY = ("created_at", "updated_at")

_STRING_FIELDS = ("display_name", "first_name", "last_name", "organisation_name", "website",
                  "external_id")
_ID_FIELDS = ("id", "owner_id", "organisation_id")
_JSON_LISTS = ("emails", "phones", "addresses")
#: the columns an update may change (everything but keys and timestamps)
_MUTABLE = ("kind", "display_name", "first_name", "last_name", "organisation_name", "email",
            "phone", "emails", "phones", "addresses", "website", "owner_id", "organisation_id",
            "stage", "tags", "external_id", "attributes")
_COLUMNS = ("tenant_id", "id") + _MUTABLE + ("created_at", "updated_at", "created_by")
_NEW_ROW = dict.fromkeys(_COLUMNS[1:])
#: PostgreSQL types of ``_COLUMNS`` for COPY (JSON goes as text: already serialised)
_COPY_TYPES = ["uuid", "uuid", "text", "text", "text", "text", "text", "text", "text", "text",
               "text", "text", "text", "uuid", "uuid", "text", "text", "text", "text",
               "timestamptz", "timestamptz", "uuid"]

_KIND_WORDS = {"person": "person", "individual": "person", "contact": "person",
               "organisation": "organisation", "organization": "organisation",
               "company": "organisation", "org": "organisation", "business": "organisation"}

# Header aliases, keyed by the header lower-cased with everything but letters and digits
# removed ("E-mail" and "e_mail" are both "email").
_ALIASES = {
    "id": "id", "customerid": "id", "kind": "kind", "type": "kind",
    "displayname": "display_name", "name": "display_name", "fullname": "display_name",
    "contactname": "display_name", "contact": "display_name",
    "firstname": "first_name", "givenname": "first_name", "forename": "first_name",
    "first": "first_name",
    "lastname": "last_name", "surname": "last_name", "familyname": "last_name",
    "last": "last_name",
    "organisationname": "organisation_name", "organizationname": "organisation_name",
    "organisation": "organisation_name", "organization": "organisation_name",
    "company": "organisation_name", "companyname": "organisation_name",
    "account": "organisation_name", "accountname": "organisation_name",
    "business": "organisation_name", "employer": "organisation_name",
    "email": "email", "emailaddress": "email", "mail": "email", "primaryemail": "email",
    "email1": "email", "email1value": "email",
    "phone": "phone", "phonenumber": "phone", "telephone": "phone", "tel": "phone",
    "primaryphone": "phone", "phone1": "phone", "phone1value": "phone",
    "mobile": "phones.mobile", "mobilephone": "phones.mobile", "cell": "phones.mobile",
    "cellphone": "phones.mobile", "mobilenumber": "phones.mobile",
    "workphone": "phones.work", "businessphone": "phones.work", "officephone": "phones.work",
    "homephone": "phones.home", "fax": "phones.fax",
    "workemail": "emails.work", "homeemail": "emails.home", "otheremail": "emails.other",
    "website": "website", "web": "website", "url": "website", "homepage": "website",
    "webpage": "website", "www": "website",
    "stage": "stage", "lifecyclestage": "stage", "status": "stage",
    "tags": "tags", "tag": "tags", "labels": "tags", "categories": "tags", "groups": "tags",
    "externalid": "external_id", "externalref": "external_id", "reference": "external_id",
    "ref": "external_id", "sourceid": "external_id", "uid": "external_id",
    "ownerid": "owner_id", "organisationid": "organisation_id",
    "organizationid": "organisation_id",
    "emails": "emails", "phones": "phones", "addresses": "addresses",
    "attributes": "attributes", "customfields": "attributes",
    "street": "address.street", "streetaddress": "address.street", "address": "address.street",
    "addressline1": "address.street", "city": "address.city", "town": "address.city",
    "region": "address.region", "state": "address.region", "province": "address.region",
    "county": "address.region", "postalcode": "address.postal_code",
    "postcode": "address.postal_code", "zip": "address.postal_code",
    "zipcode": "address.postal_code", "country": "address.country",
    "createdat": None, "updatedat": None,
}
_PREFIXES = {"attributes.": "attributes.", "attribute.": "attributes.", "attr.": "attributes.",
             "attr:": "attributes.", "phones.": "phones.", "emails.": "emails.",
             "address.": "address."}
_NON_ALNUM = re.compile(r"[^0-9a-z]+")


class ImportFileError(ClientelaError):
    """The file cannot be imported at all: unreadable, no header, a bad mapping."""


class ImportFailed(ClientelaError):
    """The import stopped part-way (a database error, a broken stream); nothing was written."""


@dataclasses.dataclass
class RowError:
    """One problem with one row: its number (the header is row 1), the field, the message."""

    row: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}, {self.field}: {self.message}"


@dataclasses.dataclass
class ImportReport:
    """What an import did (or, for a dry run or a refused file, would have done)."""

    file: str | None
    format: str
    match: str
    mode: str  # "default" | "all-or-nothing"
    dry_run: bool
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    #: the first ``MAX_KEPT_ERRORS`` problems (``failed`` counts every failed row)
    errors: list[RowError] = dataclasses.field(default_factory=list)
    #: ``{header: field or None}`` as applied (CSV only)
    mapping: dict[str, str | None] = dataclasses.field(default_factory=dict)
    ignored_columns: list[str] = dataclasses.field(default_factory=list)
    #: True when the rows counted as created/updated are in the database
    committed: bool = False

    @property
    def refused(self) -> bool:
        """All-or-nothing mode met a bad row, so nothing was written."""
        return self.mode == "all-or-nothing" and self.failed > 0

    def summary(self) -> dict[str, Any]:
        return {"file": self.file, "format": self.format, "rows": self.rows,
                "created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "failed": self.failed, "match": self.match, "mode": self.mode}

    def as_dict(self) -> dict[str, Any]:
        return {**self.summary(), "dry_run": self.dry_run, "committed": self.committed,
                "ignored_columns": self.ignored_columns, "mapping": self.mapping,
                "errors": [dataclasses.asdict(e) for e in self.errors]}


# --- reading the input -------------------------------------------------------


class _CountingReader(io.RawIOBase):
    """A binary stream that counts the bytes read through it (for progress)."""

    def __init__(self, raw) -> None:
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        if not data:
            return 0
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n


class _Lines:
    """Text lines from a binary or text file-like object, an iterable of lines, or a string."""

    def __init__(self, source, encoding: str) -> None:
        self.counter: _CountingReader | None = None
        if isinstance(source, bytes):
            source = io.BytesIO(source)
        elif isinstance(source, str):
            source = io.StringIO(source)
        if hasattr(source, "read"):
            if isinstance(source, io.TextIOBase):
                self._iter = iter(source)
            else:
                # a binary stream (werkzeug's request.stream is one) must not be probed: a
                # read(0) on it counts as a client that disconnected
                binary = isinstance(source, (io.RawIOBase, io.BufferedIOBase))
                probe = b"" if binary else source.read(0)
                if isinstance(probe, str):
                    self._iter = iter(source)
                else:
                    self.counter = _CountingReader(source)
                    text = io.TextIOWrapper(io.BufferedReader(self.counter, 1 << 16),
                                            encoding=encoding, newline="")
                    self._iter = iter(text)
        else:
            self._iter = self._decode(iter(source), encoding)
        self._first = True

    @staticmethod
    def _decode(items: Iterator, encoding: str) -> Iterator[str]:
        """``str`` items are lines; ``bytes`` items may be any chunks (an HTTP body's)."""
        decoder = codecs.getincrementaldecoder(encoding)()
        rest = ""
        for item in items:
            if not isinstance(item, (bytes, bytearray)):
                if rest:
                    yield rest
                    rest = ""
                yield item
                continue
            parts = (rest + decoder.decode(item)).split("\n")
            rest = parts.pop()
            for part in parts:
                yield part + "\n"
        rest += decoder.decode(b"", final=True)
        if rest:
            yield rest

    @property
    def bytes_read(self) -> int:
        return self.counter.count if self.counter is not None else 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = next(self._iter)
        if self._first:
            self._first = False
            if line.startswith("\ufeff"):
                line = line[1:]
        return line


def _peek(lines: _Lines, limit: int = 1 << 16) -> list[str]:
    head: list[str] = []
    size = 0
    for line in lines:
        head.append(line)
        size += len(line)
        if size >= limit or len(head) >= 200:
            break
    return head


def detect_format(filename: str | None, head: list[str]) -> str:
    """``vcard`` for a ``.vcf``/``.vcard`` name or a ``BEGIN:VCARD`` start, else ``csv``."""
    ext = os.path.splitext(filename or "")[1].lower()
    if ext in (".vcf", ".vcard"):
        return "vcard"
    if ext in (".csv", ".tsv", ".txt"):
        return "csv"
    first = next((line.strip() for line in head if line.strip()), "")
    return "vcard" if first.upper().startswith("BEGIN:VCARD") else "csv"


def _delimiter(value: str) -> str:
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
    value = named.get(value.lower(), value)
    if len(value) != 1:
        raise ImportFileError(f"the delimiter must be one character, not {value!r}")
    return value


def _dialect(head: list[str], delimiter: str | None) -> type[csv.Dialect] | csv.Dialect:
    if delimiter:
        class Given(csv.excel):
            pass

        Given.delimiter = _delimiter(delimiter)
        return Given
    sample = "".join(head)
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        first = head[0] if head else ""
        best = max(",;\t|", key=first.count)

        class Counted(csv.excel):
            pass

        Counted.delimiter = best if first.count(best) else ","
        return Counted


# --- column mapping ----------------------------------------------------------


def _check_target(target: str | None, column: str) -> str | None:
    if target is None or target == "":
        return None
    if target in TARGETS:
        return target
    for prefix in ("attributes.", "phones.", "emails."):
        if target.startswith(prefix) and len(target) > len(prefix):
            return target
    if target.startswith("address.") and target[len("address."):] in ADDRESS_PARTS:
        return target
    if target in READ_ONLY:
        return None
    raise ImportFileError(
        f"column {column!r} is mapped to {target!r}, which is not a customer field "
        f"(use one of {', '.join(TARGETS)}, attributes.KEY, phones.LABEL, emails.LABEL, "
        f"address.{'|'.join(ADDRESS_PARTS)}, or null to ignore it)"
    )


def guess_target(header: str) -> str | None:
    """The customer field a column header names (``"E-mail"`` → ``email``), or ``None``."""
    text = header.strip().lstrip("\ufeff")
    lower = text.lower()
    for prefix, target in _PREFIXES.items():
        if lower.startswith(prefix) and len(text) > len(prefix):
            rest = text[len(prefix):].strip()
            if target == "address.":
                part = _NON_ALNUM.sub("_", rest.lower()).strip("_")
                return f"address.{part}" if part in ADDRESS_PARTS else None
            return target + (rest if target == "attributes." else rest.lower())
    return _ALIASES.get(_NON_ALNUM.sub("", lower))


def resolve_mapping(header: list[str], mapping: dict[str, str | None] | None = None
                    ) -> tuple[dict[str, str | None], list[str]]:
    """``({header: field or None}, ignored headers)`` for a file's header row.

    Entries of ``mapping`` win (a value of ``None`` ignores the column); other headers
    are recognised by name. Two columns for one single-valued field is an error.
    """
    mapping = dict(mapping or {})
    for column, target in mapping.items():
        _check_target(target, column)
    resolved: dict[str, str | None] = {}
    ignored: list[str] = []
    used: dict[str, str] = {}
    for column in header:
        target = mapping[column] if column in mapping else guess_target(column)
        target = _check_target(target, column) if target else None
        if target is None:
            if column.strip() and column.strip().lower() not in READ_ONLY:
                ignored.append(column)
            resolved[column] = None
            continue
        single = not (target.startswith(("attributes.", "phones.", "emails.")) and
                      target not in ("phones", "emails"))
        if single and target in used:
            raise ImportFileError(
                f"columns {used[target]!r} and {column!r} both map to {target}: "
                "give a mapping that ignores one of them (--mapping)"
            )
        used[target] = column
        resolved[column] = target
    if not any(resolved.values()):
        raise ImportFileError(
            "no column of the header names a customer field "
            f"(header: {', '.join(repr(h) for h in header[:8])}); give a mapping (--mapping)"
        )
    return resolved, ignored


def load_mapping(value: dict | str, customer_fields: bool = True) -> dict[str, str | None]:
    """A mapping from a dict or JSON text: ``{"Header": "field"}`` or ``{"columns": {...}}``.

    With ``customer_fields`` (the default) every field must be one the customer import
    knows; a plugin's import passes ``False`` and checks its own fields.
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ImportFileError(f"the mapping is not valid JSON: {exc}") from None
    if isinstance(value, dict) and isinstance(value.get("columns"), dict):
        value = value["columns"]
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in value.items()
    ):
        raise ImportFileError('a mapping is a JSON object {"Header in the file": "field"}')
    if customer_fields:
        for column, target in value.items():
            _check_target(target, column)
    return value


def save_mapping(name: str, columns: dict[str, str | None]) -> ImportMapping:
    """Save (or replace) the current tenant's mapping ``name``. Flushes."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationError({"name": ["give a name of 1-100 characters"]})
    columns = load_mapping(columns)
    row = db.session.execute(
        sa.select(ImportMapping).where(ImportMapping.name == name)
    ).scalar_one_or_none()
    if row is None:
        row = ImportMapping(name=name, columns=columns)
        db.session.add(row)
    else:
        row.columns = columns
    db.session.flush()
    return row


def get_mapping(name: str) -> dict[str, str | None]:
    """The current tenant's saved mapping ``name``; ``NotFound`` if there is none."""
    row = db.session.execute(
        sa.select(ImportMapping).where(ImportMapping.name == name)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no saved import mapping '{name}'")
    return dict(row.columns)


def get_saved_mapping(ref: str) -> ImportMapping:
    """The current tenant's saved mapping by id or name; ``NotFound`` if there is none.

    Its ``columns`` go to ``import_customers(mapping=...)`` and its
    ``attributes["transforms"]`` (value transformations, kept there so that mappings
    need no schema change) to ``transforms=``.
    """
    condition = ImportMapping.name == ref
    try:
        condition = sa.or_(condition, ImportMapping.id == uuid.UUID(ref))
    except ValueError:
        pass
    row = db.session.execute(sa.select(ImportMapping).where(condition)
                             .order_by(ImportMapping.name)).scalars().first()
    if row is None:
        raise NotFound(f"no saved import mapping '{ref}'")
    return row


def saved_transforms(row: ImportMapping) -> dict[str, list]:
    return dict((row.attributes or {}).get("transforms") or {})


def mapping_kind(row: ImportMapping) -> str:
    """The import a saved mapping is for: ``customers`` (the default) or a plugin's import
    (``leads``, ``transactions``, ...), kept in the row's ``attributes["kind"]``."""
    return str((row.attributes or {}).get("kind") or "customers")


def saved_mapping(ref: str, kind: str = "customers"
                  ) -> tuple[dict[str, str | None], dict[str, list]]:
    """``(columns, transforms)`` of the current tenant's saved mapping ``ref`` (name or id)
    for an import of ``kind``: how every CSV import, the core's and the plugins', reads the
    mapping its caller names (``?mapping=NAME``, ``--mapping NAME``).

    ``columns`` is ``{"Header in the file": field or None}`` in the import's own field
    names; ``transforms`` go to :func:`clientela.core.transforms.apply`. A mapping that
    does not exist, or that is for another kind of import, is a ``ValidationError`` on the
    field ``mapping`` (422).
    """
    try:
        row = get_saved_mapping(ref)
    except NotFound as exc:
        raise ValidationError({"mapping": [str(exc)]}) from None
    own = mapping_kind(row)
    if own != kind:
        raise ValidationError({"mapping": [
            f"'{row.name}' is a mapping for {own} imports, not for {kind}"]})
    return dict(row.columns), saved_transforms(row)


def list_mappings() -> list[ImportMapping]:
    return list(db.session.execute(
        sa.select(ImportMapping).order_by(ImportMapping.name)).scalars())


# --- turning cells into customer fields --------------------------------------


def _split_list(text: str) -> list[str]:
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError:
            raise ValueError("is not a JSON list") from None
        if not isinstance(value, list):
            raise ValueError("is not a JSON list")
        return [str(v).strip() for v in value if str(v).strip()]
    sep = ";" if ";" in text else ","
    return [part.strip() for part in text.split(sep) if part.strip()]


def _labelled(text: str, normalise: Callable[[str], str | None], field: str) -> list[dict]:
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError:
            raise ValueError("is not a JSON list") from None
        if not isinstance(value, list):
            raise ValueError("is not a JSON list")
        items = []
        for item in value:
            if isinstance(item, dict) and item.get("value"):
                items.append({"label": str(item.get("label") or "other"),
                              "value": normalise(str(item["value"]))})
            elif isinstance(item, str) and item.strip():
                items.append({"label": "other", "value": normalise(item)})
        return items
    return [{"label": "other", "value": normalise(v)} for v in _split_list(text)]


def _parse_cells(cells: dict[str, str], phone_region: str | None
                 ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Turn one row's mapped cells (``{field: text}``, empty cells left out) into fields.

    Returns ``(fields, [(field, message), ...])``; ``fields`` holds only what the row
    gives, so an update leaves the rest of the customer as it is.
    """
    fields: dict[str, Any] = {}
    errors: list[tuple[str, str]] = []
    extra_phones: list[dict] = []
    extra_emails: list[dict] = []
    address: dict[str, str] = {}
    attributes: dict[str, Any] | None = None

    def phone(v: str) -> str | None:
        return services.normalise_phone(v, phone_region)

    for target, text in cells.items():
        try:
            if target == "email":
                fields["email"] = text  # normalised by clean_customer_data, once
            elif target in ("phone", "website") or target in _STRING_FIELDS:
                fields[target] = text
            elif target in ("kind", "stage"):
                word = text.lower()
                fields[target] = _KIND_WORDS.get(word, word) if target == "kind" else word
            elif target in _ID_FIELDS:
                try:
                    fields[target] = uuid.UUID(text)
                except ValueError:
                    errors.append((target, f"'{text}' is not an id"))
            elif target == "tags":
                fields["tags"] = _split_list(text)
            elif target == "emails":
                extra_emails.extend(_labelled(text, services.normalise_email, target))
            elif target == "phones":
                extra_phones.extend(_labelled(text, phone, target))
            elif target == "addresses":
                value = json.loads(text)
                if not isinstance(value, list) or not all(isinstance(a, dict) for a in value):
                    raise ValueError("is not a JSON list of addresses")
                fields["addresses"] = value
            elif target == "attributes":
                value = json.loads(text)
                if not isinstance(value, dict):
                    raise ValueError("is not a JSON object")
                attributes = {**(attributes or {}), **value}
            elif target.startswith("attributes."):
                attributes = {**(attributes or {}), target[len("attributes."):]: text}
            elif target.startswith("phones."):
                extra_phones.append({"label": target[len("phones."):], "value": phone(text)})
            elif target.startswith("emails."):
                extra_emails.append({"label": target[len("emails."):],
                                     "value": services.normalise_email(text)})
            elif target.startswith("address."):
                address[target[len("address."):]] = text
        except ValidationError as exc:
            errors.extend((target, m) for msgs in exc.errors.values() for m in msgs)
        except ValueError as exc:
            message = str(exc) if str(exc).startswith("is not") else "is not valid JSON"
            errors.append((target, f"'{text[:60]}' {message}"))
    if extra_emails:
        if not fields.get("email"):
            fields["email"] = extra_emails.pop(0)["value"]
        if extra_emails:
            fields["emails"] = extra_emails
    if extra_phones:
        if not fields.get("phone"):
            fields["phone"] = extra_phones.pop(0)["value"]
        if extra_phones:
            fields["phones"] = extra_phones
    if address:
        fields["addresses"] = [{"label": "main", **address}] + fields.get("addresses", [])
    if attributes is not None:
        fields["attributes"] = attributes
    return fields, errors


def _csv_records(lines: Iterable[str], head: list[str], delimiter: str | None,
                 mapping: dict | None, report: ImportReport,
                 transforms: dict | None = None) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.reader(itertools.chain(head, lines), _dialect(head, delimiter))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError("the file is empty: a CSV file starts with a header row") from None
    width = len(header)
    if transforms:  # columns that transforms make (join) follow the file's own
        header = header + value_transforms.new_columns(header, transforms)
    resolved, ignored = resolve_mapping(header, mapping)
    report.mapping = resolved
    report.ignored_columns = ignored
    plan = [(i, t) for i, t in enumerate(resolved[h] for h in header) if t]
    for number, row in enumerate(reader, start=2):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        problems: list[tuple[str, str]] = []
        if transforms:
            named, problems = value_transforms.apply(dict(zip(header, row)), transforms)
            row = [named.get(h, "") for h in header] + row[width:]
        cells = {}
        for index, target in plan:
            if index < len(row):
                text = row[index].strip()
                if text:
                    if target in cells:  # several columns feed one list field
                        text = f"{cells[target]};{text}"
                    cells[target] = text
        if len(row) > len(header) and any(c.strip() for c in row[len(header):]):
            cells["\0extra"] = f"{len(row)} cells in a row of a {width}-column file"
        if problems:
            cells["\0transform"] = problems  # type: ignore[assignment]
        yield number, cells


def csv_rows(source: Any, *, delimiter: str | None = None, encoding: str = "utf-8-sig"
             ) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """Read any CSV as the customer import does (any source ``import_customers`` takes, a
    byte-order mark, a sniffed delimiter): returns the header and an iterator of
    ``(row number, {header: stripped cell})`` without blank rows, the header being row 1.

    For plugins that import records of their own (the operational plugin's leads) with the
    same reading rules and the same ``ImportReport``/``RowError`` per-row report.
    """
    lines = _Lines(source, encoding)
    head = _peek(lines)
    reader = csv.reader(itertools.chain(head, lines), _dialect(head, delimiter))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ImportFileError("the file is empty: a CSV file starts with a header row") from None

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        for number, row in enumerate(reader, start=2):
            if not row or not any(cell.strip() for cell in row):
                continue
            cells = {name: row[i].strip() for i, name in enumerate(header)
                     if i < len(row) and name}
            if len(row) > len(header) and any(c.strip() for c in row[len(header):]):
                cells["\0extra"] = f"{len(row)} cells in a row of a {len(header)}-column file"
            yield number, cells

    return header, rows()


# --- vCard -------------------------------------------------------------------


def _vcard_types(line) -> list[str]:
    types = []
    for value in line.params.get("TYPE", []):
        types.extend(t.strip().lower() for t in value.split(","))
    return [t for t in types if t]


def _vcard_preferred(lines: list) -> list:
    def rank(line):
        pref = line.params.get("PREF", [None])[0]
        if pref is not None:
            try:
                return int(pref)
            except ValueError:
                return 1
        return 1 if "pref" in _vcard_types(line) else 101

    return sorted(lines, key=rank)


def _vcard_label(line, skip: tuple[str, ...]) -> str:
    return next((t for t in _vcard_types(line) if t not in skip), "other")


def _vcard_cells(card) -> dict[str, str]:
    """A card as the cells a CSV row would have (so both share one validation path)."""
    c = card.contents
    cells: dict[str, str] = {}

    def value(name):
        lines = c.get(name)
        return lines[0].value if lines else None

    name = value("n")
    if name is not None:
        given = " ".join(filter(None, [name.given, name.additional])).strip()
        if given:
            cells["first_name"] = given if isinstance(given, str) else " ".join(given)
        if name.family:
            family = name.family
            cells["last_name"] = family if isinstance(family, str) else " ".join(family)
    if value("fn"):
        cells["display_name"] = value("fn").strip()
    org = value("org")
    if org:
        cells["organisation_name"] = (org[0] if isinstance(org, list) else str(org)).strip()
    kind = (value("kind") or value("x-addressbookserver-kind") or "").strip().lower()
    if kind in ("org", "organization", "group") or (
        org and "first_name" not in cells and "last_name" not in cells
        and cells.get("display_name", "") in ("", cells.get("organisation_name"))
    ):
        cells["kind"] = "organisation"
    emails = [e for e in _vcard_preferred(c.get("email", [])) if str(e.value).strip()]
    if emails:
        cells["email"] = str(emails[0].value).strip()
        if emails[1:]:
            cells["emails"] = json.dumps([
                {"label": _vcard_label(e, ("internet", "pref", "x400")), "value": e.value.strip()}
                for e in emails[1:]])
    tels = [t for t in _vcard_preferred(c.get("tel", [])) if str(t.value).strip()]

    def number(line) -> str:
        text = str(line.value).strip()
        return text[4:] if text.lower().startswith("tel:") else text

    if tels:
        cells["phone"] = number(tels[0])
        if tels[1:]:
            cells["phones"] = json.dumps([
                {"label": _vcard_label(t, ("voice", "pref")), "value": number(t)}
                for t in tels[1:]])
    addresses = []
    for adr in c.get("adr", []):
        a = adr.value
        parts = {"street": a.street, "city": a.city, "region": a.region,
                 "postal_code": a.code, "country": a.country}
        parts = {k: (" ".join(v) if isinstance(v, list) else v).strip()
                 for k, v in parts.items() if v}
        if parts:
            addresses.append({"label": _vcard_label(adr, ("pref",)), **parts})
    if addresses:
        cells["addresses"] = json.dumps(addresses)
    if value("url"):
        cells["website"] = value("url").strip()
    categories = [t for line in c.get("categories", []) for t in (
        line.value if isinstance(line.value, list) else [line.value])]
    if categories:
        cells["tags"] = json.dumps([t.strip() for t in categories if t.strip()])
    if value("uid"):
        cells["external_id"] = value("uid").strip()
    return cells


def _vcard_records(lines: Iterable[str], head: list[str]
                   ) -> Iterator[tuple[int, dict[str, str]]]:
    import vobject

    class Stream(io.TextIOBase):
        def __init__(self):
            self._lines = itertools.chain(head, lines)

        def readline(self, size=-1):
            return next(self._lines, "")

        def read(self, size=-1):
            if size is None or size < 0:
                return "".join(self._lines)
            return self.readline()

        def __iter__(self):
            return self._lines

    # allowQP reads line by line (and decodes vCard 2.1 quoted-printable): it streams
    cards = vobject.readComponents(Stream(), ignoreUnreadable=True, allowQP=True)
    number = 0
    while True:
        try:
            card = next(cards)
        except StopIteration:
            return
        except Exception as exc:  # vobject raises its own ParseError and others
            raise ImportFileError(f"card {number + 1} cannot be read: {exc}") from None
        if card.name.upper() != "VCARD":
            continue
        number += 1
        yield number, _vcard_cells(card)


# --- the import --------------------------------------------------------------


class _Importer:
    def __init__(self, report: ImportReport, phone_region: str | None, hooks) -> None:
        self.report = report
        self.phone_region = phone_region
        self.match = report.match
        self.tenant_id = tenancy.current_tenant_id()
        self.actor_id = tenancy.current_actor_id()
        self.dialect = db.session.get_bind().dialect.name
        self.validators = hooks.clientela_validate if hooks is not None and \
            hooks.clientela_validate.get_hookimpls() else None
        self.collect_ids = hooks is not None and bool(
            hooks.clientela_customers_imported_precommit.get_hookimpls()
            or hooks.clientela_customers_imported_postcommit.get_hookimpls())
        self.created_ids: list[uuid.UUID] = []
        self.updated_ids: dict[uuid.UUID, None] = {}
        table = Customer.__table__
        self.table = table
        self._new_customer = sa.orm.attributes.manager_of_class(Customer).new_instance
        self.update_stmt = (
            sa.update(table)
            .where(table.c.tenant_id == sa.bindparam("k_tenant_id"),
                   table.c.id == sa.bindparam("k_id"))
            .values({name: sa.bindparam(f"v_{name}") for name in _MUTABLE + ("updated_at",)})
        )

    # errors ------------------------------------------------------------------

    def fail(self, row: int, problems: list[tuple[str, str]]) -> None:
        self.report.failed += 1
        for field, message in problems:
            if len(self.report.errors) < MAX_KEPT_ERRORS:
                self.report.errors.append(RowError(row, field, message))

    # one batch ---------------------------------------------------------------

    def apply(self, batch: _Prepared) -> None:
        """Match a prepared batch against the database, then write it (main thread)."""
        report = self.report
        report.rows += batch.rows
        kept = len(report.errors)
        for number, problems in batch.failed:
            self.fail(number, problems)
        parsed = batch.parsed
        if parsed:
            self._apply(parsed)
        if len(report.errors) > kept:  # parse and match problems, in row order
            report.errors[kept:] = sorted(report.errors[kept:], key=lambda e: e.row)

    def _apply(self, parsed: list[tuple[int, dict, dict | None, list]]) -> None:
        report = self.report
        existing = self._existing(parsed)
        external_owners = self._external_owners(parsed)
        references = self._references(parsed)
        now = utcnow()
        inserts: dict[Any, dict[str, Any]] = {}  # id -> values, in file order
        updates: dict[Any, dict[str, Any]] = {}
        before: dict[Any, dict[str, Any]] = {}
        by_key: dict[Any, Any] = {}  # match key -> id, for rows later in this batch
        by_external: dict[str, Any] = external_owners
        match = None if self.match == "none" else self.match
        for number, fields, created, create_problems in parsed:
            key = fields.get(match) if match else None
            target_id = by_key.get(key) if key is not None else None
            if target_id is None and key is not None and key in existing:
                target_id = existing[key]["id"]
                before.setdefault(target_id, existing[key])
            if match == "id" and target_id is None and key is not None:
                self.fail(number, [("id", "no customer with this id")])
                continue
            problems = self._check_references(fields, references) if references else []
            if target_id is None:
                # a new customer: checked and normalised while the last batch was written
                problems.extend(create_problems)
                values = created
                base = None
            else:
                base = inserts.get(target_id) or updates.get(target_id) or before[target_id]
                values = self._merged(base, fields, problems)
            ext = values.get("external_id") if not problems else None
            if ext is not None:
                owner = by_external.get(ext)
                if owner is not None and owner != target_id:
                    problems.append(("external_id",
                                     f"'{ext}' already belongs to another customer"))
            if problems:
                self.fail(number, problems)
                continue
            if target_id is None:
                new = {**values, "created_at": now, "updated_at": now,
                       "created_by": self.actor_id}
                if self.validators is not None and not self._plugin_valid(number, new, None):
                    continue
                inserts[new["id"]] = new
                if key is not None:
                    by_key[key] = new["id"]
                if ext is not None:
                    by_external[ext] = new["id"]
                report.created += 1
                if self.collect_ids:
                    self.created_ids.append(new["id"])
                continue
            old = base
            merged = {**old, **values, "id": target_id}
            if all(merged[k] == old[k] for k in _MUTABLE):
                report.unchanged += 1
                if key is not None:
                    by_key[key] = target_id
                continue
            if self.validators is not None and not self._plugin_valid(number, merged, old):
                continue
            if key is not None:
                by_key[key] = target_id
            if ext is not None:
                by_external[ext] = target_id
            if target_id in inserts:
                inserts[target_id] = merged
            else:
                merged["updated_at"] = now
                updates[target_id] = merged
                if self.collect_ids:
                    self.updated_ids[target_id] = None
            report.updated += 1
        self._write(list(inserts.values()), list(updates.values()))

    def _merged(self, base: dict, fields: dict, problems: list) -> dict[str, Any]:
        """An existing customer's values with the cells the row fills, checked again."""
        values = {k: base[k] for k in _MUTABLE}
        for k, v in fields.items():
            if k == "attributes":
                values[k] = {**(base.get("attributes") or {}), **v}
            elif k != "id":
                values[k] = v
        if "first_name" in fields or "last_name" in fields or "organisation_name" in fields:
            # derive the name again from the new parts
            values["display_name"] = fields.get("display_name")
        try:
            values = services.clean_customer_data(
                {k: v for k, v in values.items() if v is not None or k in fields},
                self.phone_region)
        except ValidationError as exc:
            problems.extend((f, m) for f, msgs in exc.errors.items() for m in msgs)
            return values
        problems.extend(_length_problems(values))
        for k in ("emails", "phones", "addresses", "tags"):
            values.setdefault(k, [])
        values.setdefault("attributes", {})
        return values

    # lookups (one query each per batch) --------------------------------------

    def _select(self, where, params: dict) -> list[dict[str, Any]]:
        columns = [getattr(Customer, name) for name in ("id",) + _MUTABLE]
        result = db.session.execute(sa.select(*columns).where(where).order_by(Customer.id),
                                    params)
        return [row._asdict() for row in result]

    def _existing(self, parsed) -> dict[Any, dict[str, Any]]:
        if self.match == "none":
            return {}
        keys = {p[1][self.match] for p in parsed if p[1].get(self.match) is not None}
        if not keys:
            return {}
        column = getattr(Customer, self.match)
        found: dict[Any, dict[str, Any]] = {}
        for row in self._select(*self._in(column, keys)):
            # several customers can share an e-mail: update the oldest
            found.setdefault(row[self.match], row)
        return found

    def _external_owners(self, parsed) -> dict[str, Any]:
        if self.match == "external_id":
            return {}
        keys = {p[1]["external_id"] for p in parsed if p[1].get("external_id")}
        if not keys:
            return {}
        where, params = self._in(Customer.external_id, keys)
        rows = db.session.execute(sa.select(Customer.external_id, Customer.id).where(where),
                                  params)
        return {ext: cid for ext, cid in rows}

    def _references(self, parsed) -> dict[str, set]:
        found: dict[str, set] = {}
        for field, model in (("owner_id", User), ("organisation_id", Customer)):
            ids = {p[1][field] for p in parsed if p[1].get(field) is not None}
            if ids:
                found[field] = set(db.session.execute(
                    sa.select(model.id).where(model.id.in_(ids))).scalars())
        return found

    def _in(self, column, keys: set) -> tuple[Any, dict]:
        """``(column IN keys, {})``; on PostgreSQL ``= ANY(array)``: one parameter, not
        thousands; elsewhere an expanding parameter, so the statement is built once."""
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import ARRAY

            return column == sa.any_(sa.bindparam(None, list(keys),
                                                  type_=ARRAY(column.type))), {}
        return column.in_(sa.bindparam("keys", expanding=True)), {"keys": list(keys)}

    @staticmethod
    def _check_references(fields, references) -> list[tuple[str, str]]:
        problems = []
        for field, what in (("owner_id", "user"), ("organisation_id", "customer")):
            value = fields.get(field)
            if value is not None and value not in references.get(field, ()):
                problems.append((field, f"no {what} with id {value}"))
        return problems

    def _plugin_valid(self, number: int, values: dict[str, Any], old: dict | None) -> bool:
        # a transient Customer for the validators' ``isinstance`` and attribute reads, its
        # values set without the attribute events of ``Customer(**values)`` (4x the time of
        # the rest for a million rows; nothing here is flushed, so no history is needed)
        entity = self._new_customer()
        entity.__dict__.update({k: values[k] for k in _COLUMNS if k in values},
                               tenant_id=self.tenant_id)
        safe = json_safe(values)
        if old is None:
            changes = {k: [None, safe[k]] for k in _MUTABLE
                       if values.get(k) not in (None, [], {})}
        else:
            changes = {k: [json_safe(old[k]), safe[k]] for k in _MUTABLE
                       if old[k] != values[k]}
        change = EntityChange(entity=entity, entity_type=Customer.__tablename__,
                              entity_id=values["id"], tenant_id=self.tenant_id,
                              operation="insert" if old is None else "update",
                              changes=changes, values=safe)
        problems = []
        for answer in self.validators(entity=entity, change=change):
            for field, messages in (answer or {}).items():
                problems.extend((field, m) for m in messages)
        if problems:
            self.fail(number, problems)
            return False
        return True

    # writing -----------------------------------------------------------------

    def _write(self, inserts: list[dict], updates: list[dict]) -> None:
        if inserts:
            if self.dialect == "postgresql":
                self._copy(inserts)
            else:
                self._insert(inserts)
        if updates:
            params = [{"k_tenant_id": self.tenant_id, "k_id": u["id"],
                       **{f"v_{k}": u[k] for k in _MUTABLE + ("updated_at",)}}
                      for u in updates]
            db.session.connection().execute(self.update_stmt, params)

    def _insert(self, rows: list[dict]) -> None:
        """One ``INSERT`` executemany of the new rows, stamped with the tenant explicitly.

        The values are converted here as the column types would convert them (the
        types' own bind processors; empty JSON lists as a constant), so the driver's
        executemany gets plain tuples: SQLAlchemy's per-row parameter processing
        would cost as much as the database's insert itself.
        """
        conn = db.session.connection()
        convert = self._converters(conn.dialect)
        uuid_hex, to_json, stamp = convert["id"], convert["tags"], convert["created_at"]
        tenant, actor = uuid_hex(self.tenant_id), uuid_hex(self.actor_id)

        def js(value, empty_list="[]", empty_dict="{}"):
            if value == []:
                return empty_list
            if value == {}:
                return empty_dict
            return to_json(value)

        params = []
        stamps: dict[int, Any] = {}  # a batch shares one timestamp: convert it once
        for r in rows:
            created = stamps.get(id(r["created_at"]))
            if created is None:
                created = stamps[id(r["created_at"])] = stamp(r["created_at"])
            params.append((
                tenant, uuid_hex(r["id"]), r["kind"], r["display_name"], r["first_name"],
                r["last_name"], r["organisation_name"], r["email"], r["phone"], js(r["emails"]),
                js(r["phones"]), js(r["addresses"]), r["website"], uuid_hex(r["owner_id"]),
                uuid_hex(r["organisation_id"]), r["stage"], js(r["tags"]), r["external_id"],
                js(r["attributes"]), created, created if r["updated_at"] is r["created_at"]
                else stamp(r["updated_at"]), actor))
        conn.exec_driver_sql(self._insert_sql(conn.dialect), params)

    def _converters(self, dialect) -> dict[str, Callable]:
        converters = {}
        for name in ("id", "tags", "created_at"):
            process = self.table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            process = process or (lambda v: v)
            converters[name] = (lambda p: lambda v: None if v is None else p(v))(process)
        return converters

    @staticmethod
    def _insert_sql(dialect) -> str:
        if dialect.paramstyle != "qmark":
            raise RuntimeError(f"bulk insert written for SQLite, not {dialect.name}")
        return (f"INSERT INTO {Customer.__tablename__} ({', '.join(_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(_COLUMNS))})")

    def _copy(self, rows: list[dict]) -> None:
        """``COPY`` the new rows (PostgreSQL), stamped with the tenant explicitly."""
        raw = db.session.connection().connection.driver_connection
        tenant_id = self.tenant_id

        def dumps(value, _dumps=json.dumps):
            if value == []:
                return "[]"
            if value == {}:
                return "{}"
            return _dumps(value)

        sql = f"COPY customers ({', '.join(_COLUMNS)}) FROM STDIN"
        with raw.cursor() as cursor, cursor.copy(sql) as copy:
            # one dumper per column, chosen once, instead of a lookup per value
            copy.set_types(_COPY_TYPES)
            write = copy.write_row
            for r in rows:
                write((tenant_id, r["id"], r["kind"], r["display_name"], r["first_name"],
                       r["last_name"], r["organisation_name"], r["email"], r["phone"],
                       dumps(r["emails"]), dumps(r["phones"]), dumps(r["addresses"]),
                       r["website"], r["owner_id"], r["organisation_id"], r["stage"],
                       dumps(r["tags"]), r["external_id"], dumps(r["attributes"]),
                       r["created_at"], r["updated_at"], r["created_by"]))


_LENGTHS = {c.name: c.type.length for c in Customer.__table__.columns
            if isinstance(c.type, sa.String) and c.type.length}


_LENGTH_ITEMS = tuple(_LENGTHS.items())


def _length_problems(values: dict[str, Any]) -> list[tuple[str, str]]:
    get = values.get
    return [(name, f"use at most {limit} characters") for name, limit in _LENGTH_ITEMS
            if (value := get(name)) is not None and len(value) > limit]


@dataclasses.dataclass
class _Prepared:
    """A batch after the work that needs no database: parsed, and checked as new rows."""

    first: int
    rows: int
    failed: list[tuple[int, list[tuple[str, str]]]]
    #: ``(row, fields given, values for a new customer or None, problems as a new one)``
    parsed: list[tuple[int, dict, dict | None, list]]


def _prepare(records: list[tuple[int, dict[str, str]]], phone_region: str | None
             ) -> _Prepared:
    """Parse and check a batch as if every row were a new customer (no database needed).

    Runs in a worker thread while the previous batch is written: the database works
    with the GIL released (SQLite's step, PostgreSQL's COPY), so this overlaps with it.
    A row that turns out to match an existing customer is merged and checked again.
    """
    failed, parsed = [], []
    clean = services.clean_customer_data
    for number, cells in records:
        extra = cells.pop("\0extra", None)
        transform_problems = cells.pop("\0transform", None) or []
        fields, problems = _parse_cells(cells, phone_region)
        if extra:
            problems.append(("_row", extra))
        problems.extend(transform_problems)
        if problems:
            failed.append((number, problems))
            continue
        values = {k: v for k, v in fields.items() if k != "id"}
        if "kind" not in values and values.get("organisation_name") and not (
                values.get("first_name") or values.get("last_name")):
            values["kind"] = "organisation"
        created = None
        try:
            values = clean(values, phone_region)
        except ValidationError as exc:
            problems = [(f, m) for f, msgs in exc.errors.items() for m in msgs]
        else:
            problems = _length_problems(values)
            if fields.get("email"):
                fields["email"] = values["email"]  # the key to match on, normalised
            if not problems:
                created = {**_NEW_ROW, "emails": [], "phones": [], "addresses": [], "tags": [],
                           "attributes": {}, **values, "id": new_id()}
        parsed.append((number, fields, created, problems))
    return _Prepared(records[0][0] if records else 0, len(records), failed, parsed)


def _batches(records: Iterator, size: int) -> Iterator[list]:
    while True:
        batch = list(itertools.islice(records, size))
        if not batch:
            return
        yield batch


def import_customers(
    source: Any,
    *,
    filename: str | None = None,
    format: str | None = None,
    mapping: dict[str, str | None] | None = None,
    transforms: dict[str, list] | None = None,
    match: str = "email",
    all_or_nothing: bool = False,
    dry_run: bool = False,
    delimiter: str | None = None,
    encoding: str = "utf-8-sig",
    phone_region: str | None = None,
    save_mapping_as: str | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import customers into the current tenant from CSV or vCard; returns the report.

    :param source: a binary or text file-like object (a file, ``request.stream``), an
        iterable of ``str`` lines or of ``bytes`` chunks (split anywhere, as an HTTP body
        arrives), or the whole content as ``str``/``bytes``.
    :param filename: only to detect the format (``.vcf``) and to name the file in the
        report and the audit event.
    :param format: ``csv`` or ``vcard``; detected from the name or the content if omitted.
    :param mapping: ``{header: field or None}``; other headers are recognised by name.
    :param transforms: ``{header: [step, ...]}`` applied to each CSV row's cells first
        (see :mod:`clientela.core.transforms`); a saved mapping's ``transforms``.
    :param match: ``email``, ``external_id`` or ``id``: a row whose key matches an
        existing customer updates it (only the cells the row fills); ``none`` always creates.
    :param all_or_nothing: any bad row refuses the whole file (nothing is written).
    :param dry_run: validate and report, write nothing.
    :param progress: called after each batch with ``(rows read, bytes read)``.

    The import is one transaction, which this function commits (or rolls back for a
    dry run, a refused file or an error): call it with no other pending work in the
    session. A database error or a broken stream part-way raises ``ImportFailed`` and
    writes nothing.
    """
    if match not in MATCH_KEYS:
        raise ValidationError({"match": [f"must be one of {', '.join(MATCH_KEYS)}"]})
    if format not in (None, "csv", "vcard"):
        raise ValidationError({"format": ["must be csv or vcard"]})
    hooks = plugin_hooks()
    lines = _Lines(source, encoding)
    report = ImportReport(file=os.path.basename(filename) if filename else None,
                          format=format or "csv", match=match,
                          mode="all-or-nothing" if all_or_nothing else "default",
                          dry_run=dry_run)
    first = 0
    try:
        head = _peek(lines)
        report.format = format or detect_format(filename, head)
        if report.format == "vcard":
            records = _vcard_records(lines, head)
        else:
            records = _csv_records(lines, head, delimiter, mapping, report, transforms)
        importer = _Importer(report, phone_region, hooks)
        batches = _batches(records, batch_size)

        def prepare_next() -> _Prepared | None:
            batch = next(batches, None)
            return None if batch is None else _prepare(batch, phone_region)

        # a pipeline of two: the worker reads and checks batch n+1 while this thread
        # matches and writes batch n
        with concurrent.futures.ThreadPoolExecutor(1, "clientela-import") as worker:
            pending = worker.submit(prepare_next)
            while (prepared := pending.result()) is not None:
                pending = worker.submit(prepare_next)
                first = prepared.first
                importer.apply(prepared)
                if progress is not None:
                    progress(report.rows, lines.bytes_read)
        if dry_run or report.refused:
            db.session.rollback()
            return report
        if save_mapping_as and report.format == "csv":
            save_mapping(save_mapping_as, report.mapping)
        summary = report.summary()
        db.session.add(AuditEvent(actor_id=importer.actor_id, action="import",
                                  entity_type=Customer.__tablename__, changes=summary,
                                  origin=tenancy.current_origin()))
        created, updated = importer.created_ids, list(importer.updated_ids)
        if hooks is not None:
            hooks.clientela_customers_imported_precommit(
                created_ids=created, updated_ids=updated, summary=summary)
        db.session.commit()
        report.committed = True
    except UnicodeDecodeError as exc:
        db.session.rollback()
        raise ImportFailed(
            f"the file is not {encoding} text ({exc.reason} at byte {exc.start} of a block); "
            "give its encoding (--encoding latin-1, cp1252, ...); nothing was written"
        ) from None
    except csv.Error as exc:
        db.session.rollback()
        raise ImportFailed(f"the CSV cannot be read near row {first}: {exc}; "
                           "nothing was written") from None
    except OSError as exc:
        db.session.rollback()
        raise ImportFailed(f"reading the file failed near row {first}: {exc}; "
                           "nothing was written") from exc
    except BaseException as exc:
        db.session.rollback()
        if isinstance(exc, sqlalchemy.exc.DBAPIError):
            exc = exc.orig or exc
        elif not isinstance(exc, db.session.get_bind().dialect.loaded_dbapi.Error):
            raise  # COPY raises the driver's own errors
        reason = str(exc).strip().splitlines()[0]
        raise ImportFailed(f"the database refused the batch starting at row {first}: "
                           f"{reason}; nothing was written") from exc
    if hooks is not None:
        call_each(hooks.clientela_customers_imported_postcommit,
                  created_ids=created, updated_ids=updated, summary=summary)
    return report


def write_error_report(report: ImportReport, out) -> None:
    """Write the report's per-row errors as CSV (``row,field,message``) to a text file."""
    writer = csv.writer(out)
    writer.writerow(["row", "field", "message"])
    for error in report.errors:
        writer.writerow([error.row, error.field, error.message])


# --- the export --------------------------------------------------------------


def _tags_cell(tags: list) -> str:
    if not tags:
        return ""
    if any(";" in t or "," in t or t.startswith("[") for t in tags):
        return json.dumps(tags, ensure_ascii=False)
    return "; ".join(tags)


def _json_cell(value) -> str:
    if not value:
        return ""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _export_cell(name: str, value) -> Any:
    if value is None:
        return ""
    if name == "tags":
        return _tags_cell(value)
    if name in ("emails", "phones", "addresses", "attributes"):
        return _json_cell(value)
    if name in ("created_at", "updated_at"):
        return value.isoformat()
    return str(value)


def _export_chunks(chunk_rows: int) -> Iterator[tuple[str, int]]:
    tenancy.current_tenant_id()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    columns = [getattr(Customer, name) for name in EXPORT_COLUMNS]
    result = db.session.execute(
        sa.select(*columns).order_by(Customer.id).execution_options(yield_per=chunk_rows))
    for partition in result.partitions():
        for row in partition:
            writer.writerow([_export_cell(n, v) for n, v in zip(EXPORT_COLUMNS, row)])
        yield buffer.getvalue(), len(partition)
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():  # no customers: the header alone
        yield buffer.getvalue(), 0


def iter_customers_csv(chunk_rows: int = 1000) -> Iterator[str]:
    """The current tenant's customers as CSV text, in chunks (header first).

    Streams: rows are fetched ``chunk_rows`` at a time (a server-side cursor on
    PostgreSQL), never the whole table. The columns are ``EXPORT_COLUMNS``, which an
    import reads back. Keep the app and tenant context open while consuming it
    (``flask.stream_with_context``).
    """
    for text, _ in _export_chunks(chunk_rows):
        yield text


def export_customers(out, chunk_rows: int = 1000) -> int:
    """Write the current tenant's customers as CSV to the text file ``out``; returns the count."""
    count = 0
    for text, rows in _export_chunks(chunk_rows):
        out.write(text)
        count += rows
    return count
