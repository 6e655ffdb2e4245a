"""API throughput: the product under gunicorn vs a bare Flask + psycopg app, same SQL."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time

from bench import harness

NAME = "api"
DESCRIPTION = ("REST API under gunicorn (2 sync workers) on PostgreSQL holding SIZE customers: "
               "GET one customer, list with a filter, create one, at 32 and 64 connections, "
               "vs a bare Flask + psycopg app running the same SQL under the same gunicorn")
DEFAULT_SIZE = 50_000
DEFAULT_REPEATS = 3
CONNECTIONS = (32, 64)
DURATION = 5.0  # seconds of measured load per run
WARMUP = 1.0
TARGET_RATIO = 0.6
TARGET_P99_MS = 50.0
ADMIN_EMAIL = "bench@example.com"
ADMIN_PASSWORD = "bench-password-1234"


def _clientela(args: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", "from clientela.cli import main; main()", *args],
        capture_output=True, text=True, env=env, cwd=harness.REPO, timeout=300,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"clientela {' '.join(args[:2])}: {proc.stderr.strip()[-500:]}")
    return proc.stdout


def _seed(url: str, home: str, size: int, sample: int = 500) -> tuple[list[str], str]:
    """``size`` customers in the on-premise tenant; returns some of their ids and the tenant id."""
    import sqlalchemy as sa

    from clientela.core import services, tenancy
    from clientela.core.app import create_app
    from clientela.core.db import db
    from clientela.core.models import Customer

    app = create_app("onprem", DATABASE_URL=url, HOME=home)
    with app.app_context():
        tenant = services.get_tenant("default")
        with tenancy.tenant_context(tenant.id):
            rows = harness.customer_rows(size)
            for start in range(0, size, 10_000):
                db.session.execute(sa.insert(Customer), rows[start:start + 10_000])
            db.session.commit()
            ids = db.session.execute(
                sa.select(Customer.id).order_by(Customer.email).limit(sample)
            ).scalars().all()
        db.session.execute(sa.text("ANALYZE"))
        db.session.commit()
        tenant_id = str(tenant.id)
        db.session.remove()
        db.engine.dispose()
    r = harness.rng(3)
    ids = [str(i) for i in ids]
    r.shuffle(ids)
    return ids, tenant_id


def _requests(kind: str, token: str, ids: list[str]) -> list[dict]:
    auth = {"Authorization": f"Bearer {token}"}
    if kind == "get":
        return [{"path": f"/api/v1/customers/{i}", "headers": auth} for i in ids]
    if kind == "list":
        return [{"path": "/api/v1/customers?stage=customer&page=1&page_size=25",
                 "headers": auth}]
    body = json.dumps({"first_name": "Bench", "last_name": "Load {n}",
                       "email": "bench.{n}@example.com"})
    return [{"method": "POST", "path": "/api/v1/customers", "body": body, "expect": 201,
             "headers": {**auth, "Content-Type": "application/json"}}]


def _probe(port: int, requests: list[dict]) -> str | None:
    """Why the route cannot be measured (``None`` when one request gets what it should).

    The API is young: a route that is missing (404) or failing is reported in the table
    as not measured, with the status, instead of stopping the run.
    """
    report = harness.load(port, requests[:1], connections=1, duration=0.5, warmup=0,
                          max_requests=1)
    if report["errors"]:
        return f"one request failed: {report['error_kinds']}"
    return None


ENDPOINTS = {
    "get": "GET one customer",
    "list": "list ?stage=customer page 1",
    "create": "POST a customer",
}


def _measure(ours_port: int, bare_port: int, token: str, ids: list[str], repeats: int
             ) -> list[dict]:
    rows = []
    for kind, label in ENDPOINTS.items():
        requests = _requests(kind, token, ids)
        problem = _probe(ours_port, requests)
        if problem is None and _probe(bare_port, requests) is not None:
            problem = f"the baseline: {_probe(bare_port, requests)}"
        if problem:
            rows.append(harness.result(
                NAME, f"{label}: rps", "req/s", None, None, "bare Flask+psycopg",
                f">= {TARGET_RATIO:g}x", None, note=f"not measured: {problem}"))
            continue
        errors = {"ours": 0, "bare": 0}
        for conns in CONNECTIONS:
            def run_on(port, who):
                def go():
                    report = harness.load(port, requests, conns, DURATION, WARMUP)
                    errors[who] += report["errors"]
                    return report
                return go

            ours, bare = harness.alternate(run_on(ours_port, "ours"), run_on(bare_port, "bare"),
                                           repeats)
            o_rps = harness.median(r["rps"] for r in ours)
            b_rps = harness.median(r["rps"] for r in bare)
            o_p99 = harness.median(r["p99_ms"] for r in ours)
            b_p99 = harness.median(r["p99_ms"] for r in bare)
            o_p50 = harness.median(r["p50_ms"] for r in ours)
            b_p50 = harness.median(r["p50_ms"] for r in bare)
            ratio_met = (o_rps / b_rps >= TARGET_RATIO) if b_rps else None
            rows.append(harness.result(
                NAME, f"{label} @{conns}: rps", "req/s", o_rps, b_rps, "bare Flask+psycopg",
                f">= {TARGET_RATIO:g}x", ratio_met))
            at_target = conns == CONNECTIONS[0]
            rows.append(harness.result(
                NAME, f"{label} @{conns}: p99", "ms", o_p99, b_p99, "bare Flask+psycopg",
                f"p99 <= {TARGET_P99_MS:g} ms" if at_target else "(reported)",
                (o_p99 <= TARGET_P99_MS) if at_target else None,
                note=f"p50 {o_p50:.1f} ms (bare {b_p50:.1f} ms)"))
        rows.append(harness.result(
            NAME, f"{label}: errors", "", errors["ours"], errors["bare"], "bare Flask+psycopg",
            "0 errors", errors["ours"] == 0))
    return rows


def run(size: int, repeats: int) -> list[dict]:
    problem = harness.postgres_problem()
    if problem:
        return [harness.result(NAME, "all", "", None, None, "bare Flask+psycopg",
                               f">= {TARGET_RATIO:g}x", None, note=problem)]
    with tempfile.TemporaryDirectory() as home, harness.postgres_database("api") as url:
        env = {**harness.python_env(), "CLIENTELA_PROFILE": "onprem", "CLIENTELA_HOME": home,
               "DATABASE_URL": url}
        t0 = time.perf_counter()
        _clientela(["init", "--admin-email", ADMIN_EMAIL, "--admin-password", ADMIN_PASSWORD],
                   env)
        token = _clientela(["tokens", "create", "--email", ADMIN_EMAIL], env).strip()
        ids, tenant_id = _seed(url, home, size)
        seeded = time.perf_counter() - t0
        bare_env = {**harness.python_env(), "BENCH_DSN": harness.psycopg_dsn(url)}
        with harness.gunicorn("clientela.core.app:create_app()", env, ready_path="/healthz"
                              ) as ours_port, \
                harness.gunicorn("bench.bare_api:create_app()", bare_env,
                                 ready_path="/healthz") as bare_port:
            rows = _measure(ours_port, bare_port, token, ids, repeats)
    for row in rows[:1]:
        row["note"] = (row.get("note", "") + f"; {size:,} customers seeded in {seeded:.0f} s, "
                       f"{DURATION:g} s of load per run after {WARMUP:g} s warm-up").lstrip("; ")
    return rows
