"""``/healthz`` (the process answers) and ``/readyz`` (database reachable, migrations current)."""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, current_app, jsonify

from clientela.core import migrations
from clientela.core.db import db

log = logging.getLogger(__name__)

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz():
    return jsonify(status="ok")


@blueprint.get("/readyz")
def readyz():
    checks: dict[str, str] = {}
    try:
        with db.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means "not ready"
        log.warning("readiness: database unreachable: %s", exc)
        checks["database"] = "unreachable"
    if checks["database"] == "ok":
        missing = migrations.pending_heads(current_app)
        checks["migrations"] = "ok" if not missing else "pending: " + ", ".join(missing)
    ready = all(v == "ok" for v in checks.values())
    return jsonify(status="ok" if ready else "unavailable", checks=checks), 200 if ready else 503


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint)
