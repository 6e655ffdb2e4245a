"""Start-up: ``create_app()`` with every built-in plugin vs a bare Flask app, fresh processes."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile

from bench import harness

NAME = "startup"
DESCRIPTION = ("create_app() with all built-in plugins (imports included) vs a bare Flask app "
               "with the same extensions, each in a fresh Python process")
DEFAULT_SIZE = 1  # nothing to size: one app per process
DEFAULT_REPEATS = 7
TARGET_SECONDS = 1.0

# Both programs time from their first import to a ready app, in a process of their own.
OURS = """
import time
t0, c0 = time.perf_counter(), time.process_time()
from clientela.core.app import create_app
app = create_app("onprem", DATABASE_URL="sqlite:///{home}/clientela.db", HOME="{home}",
                 SECRET_KEY="bench")
t1, c1 = time.perf_counter(), time.process_time()
import json
print(json.dumps({{"seconds": t1 - t0, "cpu": c1 - c0, "plugins": [
    i.name for i in app.extensions["clientela"].plugins.enabled()]}}))
"""

# The same extensions the product initialises (Flask-SQLAlchemy with the same declarative
# base settings, flask-smorest's Api with its OpenAPI settings, marshmallow, pluggy,
# Alembic importable), a model, a blueprint and a route: what a hand-built app would have.
BARE = """
import time
t0, c0 = time.perf_counter(), time.process_time()
import alembic.config, marshmallow, pluggy, sqlalchemy as sa
from flask import Blueprint, Flask, jsonify
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

class Base(DeclarativeBase):
    pass

db = SQLAlchemy(model_class=Base)

class Customer(db.Model):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    display_name: Mapped[str] = mapped_column(sa.String(300))

app = Flask("bare")
app.config.update(SQLALCHEMY_DATABASE_URI="sqlite:///{home}/bare.db", SECRET_KEY="bench",
                  API_TITLE="bare", API_VERSION="v1", OPENAPI_VERSION="3.1.0")
db.init_app(app)
api = Api(app)
bp = Blueprint("customers", __name__)

@bp.get("/customers")
def customers():
    return jsonify([])

app.register_blueprint(bp, url_prefix="/api/v1")
with app.app_context():
    db.engine
t1, c1 = time.perf_counter(), time.process_time()
import json
print(json.dumps({{"seconds": t1 - t0, "cpu": c1 - c0}}))
"""


def _measure(program: str) -> dict:
    with tempfile.TemporaryDirectory() as home:
        proc = subprocess.run([sys.executable, "-c", program.format(home=home)],
                              capture_output=True, text=True, cwd=harness.REPO,
                              env=harness.python_env(), timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(size: int, repeats: int) -> list[dict]:
    ours, bare = harness.alternate(lambda: _measure(OURS), lambda: _measure(BARE), repeats)
    ours_s = harness.median(r["seconds"] for r in ours)
    bare_s = harness.median(r["seconds"] for r in bare)
    plugins = ", ".join(ours[0]["plugins"])
    ours_cpu = harness.median(r["cpu"] for r in ours)
    bare_cpu = harness.median(r["cpu"] for r in bare)
    return [harness.result(
        NAME, "create_app() incl. imports", "s", ours_s, bare_s, "bare Flask",
        f"ours <= {TARGET_SECONDS:g} s", ours_s <= TARGET_SECONDS,
        note=(f"wall time; CPU time {ours_cpu:.2f} s vs {bare_cpu:.2f} s (less sensitive to a "
              f"busy machine); plugins enabled: {plugins}; median of {len(ours)} fresh "
              "processes each"),
    )]
