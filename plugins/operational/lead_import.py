"""Import leads from CSV with a per-row report, on the core's import machinery
(``clientela.core.transfer``: reading, ``ImportReport`` and ``RowError``).

Leads come in the hundreds or thousands, not millions: each row goes through
``services.create_lead`` (normalisation, score, routing, audit), so an imported lead is the
same as one captured through the API. The import is one transaction.
"""

from __future__ import annotations

import os
import re
import uuid
from typing import Any

import marshmallow

from clientela.core import access, transfer
from clientela.core import transforms as value_transforms
from clientela.core.access import Principal
from clientela.core.db import db
from clientela.core.errors import ClientelaError, ValidationError
from clientela.core.models import User
from clientela.plugins.operational import schemas

_NON_ALNUM = re.compile(r"[^0-9a-z]+")

#: header (lower-cased, letters and digits only) -> lead field
ALIASES = {
    "firstname": "first_name", "givenname": "first_name", "forename": "first_name",
    "first": "first_name",
    "lastname": "last_name", "surname": "last_name", "familyname": "last_name",
    "last": "last_name",
    "company": "company", "companyname": "company", "organisation": "company",
    "organization": "company", "account": "company", "business": "company",
    "title": "title", "jobtitle": "title", "position": "title", "role": "title",
    "email": "email", "emailaddress": "email", "mail": "email",
    "phone": "phone", "phonenumber": "phone", "telephone": "phone", "tel": "phone",
    "mobile": "phone",
    "country": "country", "countrycode": "country", "territory": "country",
    "message": "message", "notes": "message", "note": "message", "comment": "message",
    "comments": "message", "description": "message",
    "source": "source", "leadsource": "source",
    "status": "status", "leadstatus": "status",
    "owner": "owner", "owneremail": "owner", "ownerid": "owner", "assignee": "owner",
}


def target_of(header: str) -> str | None:
    """The lead field a column feeds: by alias, or ``attributes.<key>``; ``None`` ignores it."""
    lowered = header.strip().lower()
    for prefix in ("attributes.", "attribute.", "attr."):
        if lowered.startswith(prefix) and len(lowered) > len(prefix):
            return "attributes." + header.strip()[len(prefix):]
    return ALIASES.get(_NON_ALNUM.sub("", lowered))


#: the fields a column may be mapped to (besides ``attributes.<key>``)
FIELDS = tuple(dict.fromkeys(ALIASES.values()))


def check_columns(columns: dict[str, str | None]) -> dict[str, str | None]:
    """A column mapping ``{header: lead field or None}``; ``ImportFileError`` names the
    first column mapped to something that is not a lead field."""
    for header, target in columns.items():
        if target is None or target == "" or target in FIELDS:
            continue
        if target.startswith("attributes.") and len(target) > len("attributes."):
            continue
        raise transfer.ImportFileError(
            f"column {header!r} is mapped to {target!r}, which is not a lead field (use one "
            f"of {', '.join(FIELDS)}, attributes.KEY, or null to ignore it)")
    return {header: target or None for header, target in columns.items()}


def _owner(value: str, users: dict[str, uuid.UUID]) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return users.get(value.lower())


def import_leads(source: Any, principal: Principal, *, filename: str | None = None,
                 all_or_nothing: bool = False, dry_run: bool = False,
                 source_name: str | None = None, delimiter: str | None = None,
                 encoding: str = "utf-8-sig", mapping: dict[str, str | None] | None = None,
                 transforms: dict[str, list] | None = None) -> transfer.ImportReport:
    """Import leads into the current tenant from CSV; returns the per-row report.

    Good rows are kept and bad rows reported (row number, field, message); with
    ``all_or_nothing`` any bad row refuses the whole file; ``dry_run`` writes nothing. A
    row without an owner column is routed (or owned by the importer). Commits (or rolls
    back): call it with no other pending work in the session.

    ``mapping`` (``{header: lead field or None}``) wins over the recognised headers;
    ``transforms`` change the cells first (:mod:`clientela.core.transforms`): both are
    what ``transfer.saved_mapping(name, "leads")`` gives for a saved import mapping.
    """
    from clientela.plugins.operational import services as ops

    access.require(principal, "leads:write")
    source_name = source_name or "import"
    report = transfer.ImportReport(
        file=os.path.basename(filename) if filename else None, format="csv", match="none",
        mode="all-or-nothing" if all_or_nothing else "default", dry_run=dry_run)
    report.lead_ids = []  # type: ignore[attr-defined]
    try:
        columns = check_columns(dict(mapping or {}))
        header, rows = transfer.csv_rows(source, delimiter=delimiter, encoding=encoding)
        if transforms:  # columns that transforms make (join) follow the file's own
            header = header + value_transforms.new_columns(header, transforms)
            rows = _transformed(rows, transforms)
        report.mapping = {h: columns[h] if h in columns else target_of(h) for h in header}
        report.ignored_columns = [h for h, t in report.mapping.items() if t is None]
        if not any(t in ("first_name", "last_name", "company", "email", "phone")
                   for t in report.mapping.values()):
            raise transfer.ImportFileError(
                "no column names a lead: give a header such as First name, Last name, "
                "Company, Email or Phone")
        users = {email.lower(): uid for uid, email in
                 db.session.execute(db.select(User.id, User.email)).all()}
        loader = schemas.LeadInput()
        for number, cells in rows:
            report.rows += 1
            problems = _import_row(number, cells, report, loader, users, principal,
                                   source_name, ops)
            if problems:
                report.failed += 1
                report.errors.extend(transfer.RowError(number, f, m) for f, m in problems)
        if dry_run or report.refused:
            db.session.rollback()
            report.lead_ids = []  # type: ignore[attr-defined]
            return report
        db.session.commit()
        report.committed = True
    except UnicodeDecodeError as exc:
        db.session.rollback()
        raise transfer.ImportFailed(f"the file is not {encoding} text ({exc.reason}); "
                                    "nothing was written") from None
    except BaseException:
        db.session.rollback()
        raise
    return report


def _transformed(rows, transforms: dict[str, list]):
    for number, cells in rows:
        cells, problems = value_transforms.apply(cells, transforms)
        if problems:
            cells["\0transform"] = problems
        yield number, cells


def _import_row(number: int, cells: dict[str, str], report: transfer.ImportReport,
                loader: marshmallow.Schema, users: dict[str, uuid.UUID],
                principal: Principal, source_name: str, ops) -> list[tuple[str, str]]:
    extra = cells.pop("\0extra", None)
    if extra:
        return [("row", extra)]
    problems = cells.pop("\0transform", None)
    if problems:
        return list(problems)
    values: dict[str, Any] = {}
    attributes: dict[str, str] = {}
    owner_cell = None
    for header, text in cells.items():
        target = report.mapping.get(header)
        if not target or not text:
            continue
        if target.startswith("attributes."):
            attributes[target.split(".", 1)[1]] = text
        elif target == "owner":
            owner_cell = text
        else:
            values[target] = text
    if attributes:
        values["attributes"] = attributes
    values.setdefault("source", source_name)
    try:
        data = loader.load(values)
    except marshmallow.ValidationError as exc:
        return [(field, "; ".join(map(str, messages)) if isinstance(messages, list)
                 else str(messages)) for field, messages in exc.messages.items()]
    if owner_cell is not None:
        owner = _owner(owner_cell, users)
        if owner is None:
            return [("owner", f"no user {owner_cell!r}")]
        data["owner_id"] = owner
    try:
        lead = ops.create_lead(data, principal)
    except ValidationError as exc:
        return [(field, "; ".join(map(str, messages))) for field, messages in exc.errors.items()]
    except ClientelaError as exc:
        return [("row", str(exc))]
    report.created += 1
    report.lead_ids.append(lead.id)  # type: ignore[attr-defined]
    return []
