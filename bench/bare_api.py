"""The API benchmark's baseline: a bare Flask + psycopg app answering the same three routes
with the same SQL as Clientela (token lookup, tenant-scoped select, count + page, insert
with its audit row), and none of the framework: no ORM, no plugins, no schemas.

Served by gunicorn as ``bench.bare_api:create_app()`` with ``BENCH_DSN`` set.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import uuid

import psycopg
from flask import Flask, g, jsonify, request
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from uuid6 import uuid7

COLUMNS = ("tenant_id, id, kind, display_name, first_name, last_name, organisation_name, email, "
           "phone, emails, phones, addresses, website, owner_id, organisation_id, stage, tags, "
           "external_id, created_at, updated_at, created_by, attributes")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_conn: psycopg.Connection | None = None


def connection() -> psycopg.Connection:
    """One connection per worker process, kept open (as an ORM's pool would)."""
    global _conn
    if _conn is None or _conn.closed:
        _conn = psycopg.connect(os.environ["BENCH_DSN"], row_factory=dict_row)
    return _conn


def error(status: int, message: str):
    response = jsonify({"code": status, "status": "error", "message": message, "errors": {}})
    response.status_code = status
    return response


def public(row: dict) -> dict:
    out = {k: v for k, v in row.items() if k != "tenant_id"}
    for key, value in out.items():
        if isinstance(value, uuid.UUID):
            out[key] = str(value)
        elif isinstance(value, dt.datetime):
            out[key] = value.isoformat()
    return out


def create_app() -> Flask:
    app = Flask("bare")

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.before_request
    def authenticate():
        if request.path == "/healthz":
            return None
        header = request.headers.get("Authorization", "")
        raw = header.removeprefix("Bearer ").strip()
        conn = connection()
        row = conn.execute(
            "SELECT api_tokens.*, users.*, api_tokens.tenant_id AS tenant_id FROM api_tokens "
            "JOIN users ON users.tenant_id = api_tokens.tenant_id AND users.id = api_tokens.user_id "
            "WHERE api_tokens.token_hash = %s",
            (hashlib.sha256(raw.encode()).hexdigest(),),
        ).fetchone()
        now = dt.datetime.now(dt.timezone.utc)
        if row is None or row["revoked_at"] is not None or not row["is_active"] or (
                row["expires_at"] is not None and row["expires_at"] <= now):
            conn.rollback()
            return error(401, "authentication required")
        tenant = conn.execute("SELECT id, slug, status, plan, settings FROM tenants WHERE id = %s",
                              (row["tenant_id"],)).fetchone()
        if tenant is None or tenant["status"] not in (None, "active"):
            conn.rollback()
            return error(401, "authentication required")
        g.tenant_id, g.user_id = row["tenant_id"], row["user_id"]
        return None

    @app.teardown_request
    def end_transaction(exc):
        if _conn is not None and not _conn.closed:
            _conn.rollback()

    @app.get("/api/v1/customers/<uuid:customer_id>")
    def get_customer(customer_id):
        row = connection().execute(
            f"SELECT {COLUMNS} FROM customers WHERE tenant_id = %s AND id = %s",
            (g.tenant_id, customer_id),
        ).fetchone()
        if row is None:
            return error(404, "customer not found")
        return jsonify(public(row))

    @app.get("/api/v1/customers")
    def list_customers():
        stage = request.args.get("stage")
        page = int(request.args.get("page", 1))
        size = int(request.args.get("page_size", 10))
        conn = connection()
        where, params = "tenant_id = %s", [g.tenant_id]
        if stage:
            where += " AND stage = %s"
            params.append(stage)
        total = conn.execute(f"SELECT count(*) AS n FROM customers WHERE {where}",
                             params).fetchone()["n"]
        rows = conn.execute(
            f"SELECT {COLUMNS} FROM customers WHERE {where} ORDER BY display_name, id "
            "LIMIT %s OFFSET %s", [*params, size, (page - 1) * size],
        ).fetchall()
        response = jsonify([public(r) for r in rows])
        pages = max(1, -(-total // size))
        response.headers["X-Pagination"] = json.dumps({
            "total": total, "total_pages": pages, "first_page": 1, "last_page": pages,
            "page": page})
        return response

    @app.post("/api/v1/customers")
    def create_customer():
        data = request.get_json(silent=True) or {}
        email = (data.get("email") or "").strip().lower() or None
        if email is not None and not EMAIL_RE.match(email):
            return error(422, "invalid e-mail")
        first, last = data.get("first_name"), data.get("last_name")
        display = " ".join(p for p in (first, last) if p) or email or ""
        if not display:
            return error(422, "a name or an e-mail is required")
        now = dt.datetime.now(dt.timezone.utc)
        conn = connection()
        owner = conn.execute(
            "SELECT id FROM users WHERE id = %s AND is_active IS true AND tenant_id = %s",
            (g.user_id, g.tenant_id)).fetchone()
        if owner is None:
            return error(422, "no active user with this id")
        customer_id = uuid7()
        conn.execute(
            "INSERT INTO audit_events (tenant_id, id, actor_id, action, entity_type, entity_id, "
            "changes, origin, created_at, updated_at, created_by, attributes) "
            "VALUES (%s, %s, %s, 'insert', 'customers', %s, %s, 'api', %s, %s, %s, %s)",
            (g.tenant_id, uuid7(), g.user_id, customer_id,
             Jsonb({"display_name": [None, display], "email": [None, email],
                    "first_name": [None, first], "last_name": [None, last]}), now, now,
             g.user_id, Jsonb({})),
        )
        conn.execute(
            f"INSERT INTO customers ({COLUMNS}) VALUES (%s, %s, 'person', %s, %s, %s, NULL, %s, "
            "NULL, %s, %s, %s, NULL, %s, NULL, 'lead', %s, NULL, %s, %s, %s, %s)",
            (g.tenant_id, customer_id, display, first, last, email, Jsonb([]), Jsonb([]),
             Jsonb([]), g.user_id, Jsonb([]), now, now, g.user_id, Jsonb({})),
        )
        row = conn.execute(f"SELECT {COLUMNS} FROM customers WHERE tenant_id = %s AND id = %s",
                           (g.tenant_id, customer_id)).fetchone()
        conn.commit()
        return jsonify(public(row)), 201

    return app
