"""The REST API base: flask-smorest (marshmallow schemas, OpenAPI), errors, authentication."""

from __future__ import annotations

import logging
import os
import re

from flask import Flask, current_app, jsonify, render_template_string, request, send_from_directory
from flask_smorest import Api
from sqlalchemy.exc import DataError, IntegrityError
from swagger_ui_bundle import swagger_ui_path
from werkzeug.exceptions import HTTPException

from clientela.core import __version__
from clientela.core.db import db
from clientela.core.errors import (
    ClientelaError,
    Conflict,
    CrossTenantError,
    Forbidden,
    NoTenantError,
    NotFound,
    RateLimited,
    Unauthorized,
    ValidationError,
)

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"

_STATUS = {
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    ValidationError: 422,
    RateLimited: 429,
}


def _status_of(exc: ClientelaError) -> int:
    from clientela.core.transfer import ImportFileError

    if isinstance(exc, ImportFileError):
        return 422
    return next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), 400)

DOCS_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Clientela API</title>
<link rel="stylesheet" href="{{ base }}/docs/static/swagger-ui.css"></head>
<body><div id="swagger-ui" data-spec-url="{{ base }}/openapi.json"></div>
<script src="{{ base }}/docs/static/swagger-ui-bundle.js"></script>
<script src="{{ base }}/docs/init.js"></script></body></html>
"""

DOCS_INIT = """window.onload = function () {
  var node = document.getElementById('swagger-ui');
  window.ui = SwaggerUIBundle({url: node.dataset.specUrl, dom_id: '#swagger-ui'});
};
"""


def error_body(status: int, message: str, errors=None, code: str | None = None):
    from http import HTTPStatus

    body = {"code": code or HTTPStatus(status).phrase.lower().replace(" ", "_"),
            "status": status, "message": message}
    if errors is not None:
        body["errors"] = errors
    return body


#: the JSON APIs a plugin adds beside ``/api/v1`` (``/portal/api/v1``, ``/partner/api/v1``)
_PLUGIN_API = re.compile(r"^/[\w-]+/api/v\d+/")


def _is_api() -> bool:
    path = request.path
    return (path.startswith(API_PREFIX + "/") or path.startswith("/operator/")
            or _PLUGIN_API.match(path) is not None)


def init_app(app: Flask) -> Api:
    app.config.setdefault("API_TITLE", "Clientela")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.1.0")
    app.config.setdefault("OPENAPI_URL_PREFIX", API_PREFIX)
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault("API_SPEC_OPTIONS", {
        "info": {"description": "The Clientela REST API. Authenticate with "
                                "`Authorization: Bearer <token>` (`clientela tokens create`).",
                 "x-clientela-version": __version__},
        "components": {"securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            # webhooks marked ``auth.public`` that check a tenant-owned key themselves
            "webhookKey": {"type": "apiKey", "in": "header", "name": "X-Clientela-Key"},
        }},
        "security": [{"bearer": []}],
    })
    api = Api(app)
    app.before_request(_refuse_nul_characters)
    _register_docs(app)
    _register_errors(app)
    return api


def scope_openapi(app: Flask) -> None:
    """Serve each tenant the OpenAPI document of what it may use.

    ``GET /api/v1/openapi.json`` stays public. Where plugins are enabled per tenant
    (hosted plans), a request that carries a credential gets the document without the
    paths and tags of the plugins hidden from its tenant.
    """
    endpoint = "api-docs.openapi_json"
    view = app.view_functions.get(endpoint)
    ext = app.extensions["clientela"]
    if view is None or not ext.profile.plugins_per_tenant:
        return

    def openapi_json():
        from flask import g

        from clientela.core.api.auth import authenticate_credentials

        if not authenticate_credentials():
            return view()
        hidden = ext.hidden_plugins(g.tenant)
        if not hidden:
            return view()
        tags = {name for name, owner in ext.route_owners.items() if owner in hidden}
        return jsonify(without_tags(ext.api.spec.to_dict(), tags))

    app.view_functions[endpoint] = openapi_json


def without_tags(spec: dict, tags: set[str]) -> dict:
    """``spec`` without the operations tagged with any of ``tags`` (flask-smorest tags each
    operation with its blueprint's name), without paths left empty, and without the tags."""
    paths = {}
    for path, item in spec.get("paths", {}).items():
        kept = {key: op for key, op in item.items()
                if not (isinstance(op, dict) and set(op.get("tags", ())) & tags)}
        if any(isinstance(op, dict) and "responses" in op for op in kept.values()):
            paths[path] = kept
    result = {**spec, "paths": paths}
    if "tags" in spec:
        result["tags"] = [t for t in spec["tags"] if t.get("name") not in tags]
    return result


def _refuse_nul_characters() -> None:
    """PostgreSQL cannot store NUL in text; refuse it up front with a clear 422."""
    if not _is_api():
        return
    where = None
    if any("\x00" in v for values in request.args.listvalues() for v in values):
        where = "query"
    elif request.is_json and request.content_length and request.content_length < 50_000_000:
        # only JSON bodies: file uploads are streamed and must not be read here
        data = request.get_data(cache=True)
        if b"\x00" in data or b"\\u0000" in data:
            where = "json"
    if where:
        raise ValidationError({where: {"_schema": ["NUL characters are not allowed"]}})


def _register_docs(app: Flask) -> None:
    @app.get(f"{API_PREFIX}/docs")
    def api_docs():
        return render_template_string(DOCS_PAGE, base=API_PREFIX)

    @app.get(f"{API_PREFIX}/docs/init.js")
    def api_docs_init():
        return app.response_class(DOCS_INIT, mimetype="text/javascript")

    @app.get(f"{API_PREFIX}/docs/static/<path:filename>")
    def api_docs_static(filename):
        return send_from_directory(os.path.abspath(swagger_ui_path), filename)


#: where people browse: errors there are pages; other public endpoints (a web form's
#: ``/forms/<key>``, tracking links) answer JSON unless the client asks for HTML
_PAGES = ("/app", "/portal/", "/partner/", "/console/")


def _web_page(status: int, exc: Exception | None = None):
    """The web UI's HTML error page for a request outside the APIs, if the UI is installed."""
    if _is_api():
        return None
    if not request.path.startswith(_PAGES) and request.accept_mimetypes.best_match(
            ["application/json", "text/html"]) != "text/html":
        return None
    render = current_app.extensions.get("clientela_web_errors")
    return render(status, exc) if render is not None else None


def _register_errors(app: Flask) -> None:
    @app.errorhandler(ClientelaError)
    def clientela_error(exc: ClientelaError):
        db.session.rollback()
        if isinstance(exc, (NoTenantError, CrossTenantError)):
            log.error("tenancy violation in %s %s: %s", request.method, request.path, exc)
            page = _web_page(500)
            if page is not None:
                return page
            return jsonify(error_body(500, "An unexpected error occurred; it has been logged.")), 500
        status = _status_of(exc)
        if isinstance(exc, Forbidden):
            from clientela.core.api.auth import audit_denial

            audit_denial(str(exc))
        page = _web_page(status, exc)
        if page is not None:
            return page
        if isinstance(exc, ValidationError):
            errors = exc.errors
            body = error_body(422, exc.message, errors={"json": errors}
                              if "json" not in errors and "query" not in errors else errors)
        else:
            body = error_body(status, str(exc))
        response = jsonify(body)
        response.status_code = status
        if isinstance(exc, Unauthorized):
            response.headers["WWW-Authenticate"] = 'Bearer realm="clientela"'
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.errorhandler(DataError)
    def data_error(exc: DataError):
        db.session.rollback()
        log.info("data error on %s %s: %s", request.method, request.path, exc.orig)
        page = _web_page(422)
        if page is not None:
            return page
        return jsonify(error_body(422, "A value was not accepted by the database.",
                                  errors={"json": {"_schema": [str(exc.orig).splitlines()[0]]}})), 422

    @app.errorhandler(IntegrityError)
    def integrity_error(exc: IntegrityError):
        db.session.rollback()
        log.info("integrity error on %s %s: %s", request.method, request.path, exc.orig)
        page = _web_page(409)
        if page is not None:
            return page
        return jsonify(error_body(409, "This conflicts with existing data "
                                       "(a duplicate or a reference that does not exist).")), 409

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if not _is_api():
            page = _web_page(exc.code or 500, exc)
            return page if page is not None else exc
        data = getattr(exc, "data", None) or {}
        messages = data.get("messages")
        status = exc.code or 500
        if status == 422 and messages is not None:
            body = error_body(422, "Invalid input.", errors=messages)
        else:
            body = error_body(status, exc.description or "")
        response = jsonify(body)
        response.status_code = status
        for key, value in (exc.get_headers() or []):
            if key.lower() not in ("content-type", "content-length"):
                response.headers[key] = value
        if status == 429 and "Retry-After" not in response.headers:
            response.headers["Retry-After"] = "60"
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        if isinstance(exc, HTTPException):
            return http_error(exc)
        db.session.rollback()
        log.exception("unexpected error on %s %s", request.method, request.path)
        page = _web_page(500)
        if page is not None:
            return page
        return jsonify(error_body(500, "An unexpected error occurred; it has been logged.")), 500
