"""The customer CSV import page: upload with a progress bar, then the per-row report.

The page runs the same service as ``POST /api/v1/customers/import``
(``transfer.import_customers``) with the same permission (``customers:write`` on all
records). With script, ``imports.js`` sends the file as the raw request body (the API's
way) and the server imports it *while* it arrives, so the upload progress shown is also
the import's reading progress; without script the form is an ordinary multipart upload.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from flask import current_app, render_template, request

from clientela.core import transfer
from clientela.core.errors import Forbidden
from clientela.core.web import bp, i18n, principal, requires
from clientela.core.web.i18n import _, _l

MATCH_LABELS = {"email": _l("E-mail address"), "external_id": _l("External id"),
                "id": _l("Clientela id"), "none": _l("Nothing: always create")}
#: rows with problems listed on the page (the counts cover every row)
SHOWN_ROWS = 500
TRUE = {"1", "true", "on", "yes"}


def _require_import() -> None:
    if principal().scope("customers:write") != "all":
        raise Forbidden("importing needs 'customers:write' on all records")


def _options(values) -> dict[str, Any]:
    match = values.get("match") or "email"
    return {"match": match, "dry_run": (values.get("dry_run") or "").lower() in TRUE,
            "all_or_nothing": (values.get("all_or_nothing") or "").lower() in TRUE}


def rejected_rows(report: transfer.ImportReport) -> list[dict[str, Any]]:
    """The report's problems grouped by row: ``[{"row": 3, "problems": [(field, msg)]}]``."""
    rows: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for error in report.errors:
        rows[error.row].append((error.field, i18n.gettext(error.message)))
    return [{"row": row, "problems": problems} for row, problems in sorted(rows.items())]


def _page(status: int = 200, **context):
    fragment = request.headers.get("X-Clientela-Fragment") == "report"
    context.setdefault("options", {"match": "email", "dry_run": False,
                                   "all_or_nothing": False})
    template = ("web/customer_import_report.html" if fragment
                else "web/customer_import.html")
    return render_template(template, matches=[(k, str(v)) for k, v in MATCH_LABELS.items()],
                           shown_rows=SHOWN_ROWS, **context), status


@bp.route("/customers/import", methods=["GET", "POST"])
@requires("customers:write")
def import_customers():
    _require_import()
    if request.method == "GET":
        return _page()
    if request.mimetype == "multipart/form-data":
        options = _options(request.form)
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            return _page(422, options=options, file_error=_("Choose a CSV file."))
        source, filename = upload.stream, upload.filename
    else:  # the raw body, sent by imports.js
        options = _options(request.args)
        source, filename = request.stream, request.args.get("filename") or None
    if options["match"] not in transfer.MATCH_KEYS:
        return _page(422, options=options, file_error=_("Choose what identifies a customer."))
    try:
        report = transfer.import_customers(
            source, filename=filename, format="csv", match=options["match"],
            all_or_nothing=options["all_or_nothing"], dry_run=options["dry_run"],
            phone_region=current_app.config.get("PHONE_DEFAULT_REGION"))
    except (transfer.ImportFileError, transfer.ImportFailed) as exc:
        return _page(422, options=options, file_error=i18n.gettext(str(exc)))
    status = 422 if report.refused else 200
    return _page(status, options=options, report=report, rejected=rejected_rows(report))
