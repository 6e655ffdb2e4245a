"""Tenancy in the hosted profile: Row-Level Security on vs off, and 10,000 tenants vs 10."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import secrets
import subprocess
import sys
import tempfile
import time
import uuid

from bench import harness

NAME = "tenancy"
DESCRIPTION = (
    "Hosted profile on PostgreSQL, under gunicorn (2 sync workers), PER_TENANT customers per "
    "tenant. (1) the same API GETs (one customer, a list page) on a database of SIZE "
    "tenants served through the application role (Row-Level Security on) vs through the "
    "owner role, which has BYPASSRLS (RLS off), same data, same code: requests/s. (2) p95 "
    "of GET one customer with SIZE tenants vs 10 tenants, same rows per tenant"
)
DEFAULT_SIZE = 10_000
DEFAULT_REPEATS = 3
PER_TENANT = 20
FEW_TENANTS = 10
SAMPLED_TENANTS = 10  # tenants whose tokens the load uses, spread over the database
CONNECTIONS = 16
LATENCY_CONNECTIONS = 4  # a latency comparison, below saturation
DURATION = 5.0
WARMUP = 1.0
TARGET_RLS = 0.87
TARGET_P95 = 1.2
PASSWORD = "bench-pw"


def _clientela(args: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", "from clientela.cli import main; main()", *args],
        capture_output=True, text=True, env=env, cwd=harness.REPO, timeout=600,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"clientela {' '.join(args[:2])}: {proc.stderr.strip()[-500:]}")
    return proc.stdout


@contextlib.contextmanager
def hosted_database(label: str, home: str):
    """A migrated hosted database with its owner and application roles (RLS in place).

    Yields ``(owner_url, app_url, env)``; drops the database and the roles at the end.
    """
    import sqlalchemy as sa

    suffix = uuid.uuid4().hex[:8]
    owner, app_role = f"bench_own_{suffix}", f"bench_app_{suffix}"
    try:
        with harness.postgres_database(label) as admin_url:
            base = sa.engine.make_url(admin_url)
            owner_url = base.set(username=owner, password=PASSWORD).render_as_string(False)
            app_url = base.set(username=app_role, password=PASSWORD).render_as_string(False)
            env = {**harness.python_env(), "CLIENTELA_PROFILE": "hosted", "CLIENTELA_HOME": home,
                   "CLIENTELA_SECRET_KEY": "bench-secret", "DATABASE_URL": admin_url}
            _clientela(["hosted", "setup-roles", "--owner", owner, "--app", app_role,
                        "--owner-password", PASSWORD, "--app-password", PASSWORD], env)
            _clientela(["db", "upgrade"], {**env, "DATABASE_URL": owner_url})
            yield owner_url, app_url, env
    finally:
        engine = sa.create_engine(harness.PG_SERVER, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            for role in (owner, app_role):
                conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')
        engine.dispose()


def seed(owner_url: str, tenants: int, per_tenant: int, sampled: int
         ) -> list[tuple[str, list[str]]]:
    """``tenants`` tenants, each with an admin, an API token and ``per_tenant`` customers,
    written in bulk as the owner. Returns ``(token, customer ids)`` of ``sampled`` tenants
    spread evenly over them."""
    import sqlalchemy as sa

    from clientela.core.db import new_id
    from clientela.core.models import ApiToken, Customer, Tenant, User

    now = dt.datetime.now(dt.timezone.utc)
    every = max(1, tenants // sampled)
    picked: list[tuple[str, list[str]]] = []
    template = harness.customer_rows(per_tenant)
    engine = sa.create_engine(owner_url)
    batch = max(1, 5_000 // (per_tenant + 2))
    with engine.begin() as conn:
        for start in range(0, tenants, batch):
            t_rows, u_rows, k_rows, c_rows = [], [], [], []
            for n in range(start, min(tenants, start + batch)):
                tenant_id, user_id = new_id(), new_id()
                raw = "cla_" + secrets.token_urlsafe(32)
                t_rows.append({"id": tenant_id, "slug": f"t{n:06d}", "name": f"Tenant {n}",
                               "status": "active", "plan": None, "settings": {},
                               "created_at": now})
                common = {"tenant_id": tenant_id, "created_at": now, "updated_at": now,
                          "attributes": {}}
                u_rows.append({**common, "id": user_id, "email": f"admin@t{n}.example",
                               "name": "Admin", "is_active": True, "roles": ["admin"]})
                k_rows.append({**common, "id": new_id(), "user_id": user_id, "name": "bench",
                               "prefix": raw[:10],
                               "token_hash": hashlib.sha256(raw.encode()).hexdigest()})
                ids = []
                for row in template:
                    cid = new_id()
                    ids.append(str(cid))
                    c_rows.append({**row, **common, "id": cid,
                                   "email": f"{n}.{row['email']}"})
                if n % every == 0 and len(picked) < sampled:
                    picked.append((raw, ids))
            conn.execute(sa.insert(Tenant.__table__), t_rows)
            conn.execute(sa.insert(User.__table__), u_rows)
            conn.execute(sa.insert(ApiToken.__table__), k_rows)
            conn.execute(sa.insert(Customer.__table__), c_rows)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return picked


def _requests(kind: str, picked: list[tuple[str, list[str]]]) -> list[dict]:
    out = []
    r = harness.rng(11)
    for token, ids in picked:
        auth = {"Authorization": f"Bearer {token}"}
        if kind == "get":
            out += [{"path": f"/api/v1/customers/{i}", "headers": auth}
                    for i in r.sample(ids, min(5, len(ids)))]
        else:
            out.append({"path": "/api/v1/customers?stage=customer&page=1&page_size=25",
                        "headers": auth})
    r.shuffle(out)
    return out


def _serve(env: dict[str, str], url: str):
    return harness.gunicorn("clientela.core.app:create_app()", {**env, "DATABASE_URL": url},
                            ready_path="/healthz")


def run(size: int, repeats: int) -> list[dict]:
    problem = harness.postgres_problem()
    if problem:
        return [harness.result(NAME, "all", "", None, None, "", f">= {TARGET_RLS:g}x", None,
                               note=problem)]
    rows: list[dict] = []
    errors = {"ours": 0, "baseline": 0}

    def load(port: int, requests: list[dict], connections: int, who: str):
        def go():
            report = harness.load(port, requests, connections, DURATION, WARMUP)
            errors[who] += report["errors"]
            return report
        return go

    with contextlib.ExitStack() as stack:
        home = stack.enter_context(tempfile.TemporaryDirectory())
        t0 = time.perf_counter()
        many_owner, many_app, env = stack.enter_context(hosted_database("tenancy_many", home))
        many = seed(many_owner, size, PER_TENANT, SAMPLED_TENANTS)
        few_owner, few_app, _ = stack.enter_context(hosted_database("tenancy_few", home))
        few = seed(few_owner, FEW_TENANTS, PER_TENANT, SAMPLED_TENANTS)
        seeded = time.perf_counter() - t0
        rls_on = stack.enter_context(_serve(env, many_app))
        rls_off = stack.enter_context(_serve(env, many_owner))

        # (1) Row-Level Security on (application role) vs off (owner, BYPASSRLS)
        for kind, label in (("get", "GET one customer"), ("list", "list page")):
            requests = _requests(kind, many)
            ours, base = harness.alternate(load(rls_on, requests, CONNECTIONS, "ours"),
                                           load(rls_off, requests, CONNECTIONS, "baseline"),
                                           repeats)
            o_rps = harness.median(r["rps"] for r in ours)
            b_rps = harness.median(r["rps"] for r in base)
            rows.append(harness.result(
                NAME, f"{label} @{CONNECTIONS}, {size:,} tenants: rps, RLS on vs off", "req/s",
                o_rps, b_rps, "RLS off (BYPASSRLS role)", f">= {TARGET_RLS:g}x",
                (o_rps / b_rps >= TARGET_RLS) if b_rps else None,
                note=f"p95 {harness.median(r['p95_ms'] for r in ours):.1f} ms "
                     f"(off {harness.median(r['p95_ms'] for r in base):.1f} ms)"))

        # (2) p95 with SIZE tenants vs 10, same rows per tenant, RLS on for both
        few_port = stack.enter_context(_serve(env, few_app))
        many_requests, few_requests = _requests("get", many), _requests("get", few)
        ours, base = harness.alternate(
            load(rls_on, many_requests, LATENCY_CONNECTIONS, "ours"),
            load(few_port, few_requests, LATENCY_CONNECTIONS, "baseline"), repeats)
        o_p95 = harness.median(r["p95_ms"] for r in ours)
        b_p95 = harness.median(r["p95_ms"] for r in base)
        rows.append(harness.result(
            NAME, f"GET one customer @{LATENCY_CONNECTIONS}: p95, {size:,} tenants vs "
                  f"{FEW_TENANTS}", "ms", o_p95, b_p95, f"{FEW_TENANTS} tenants",
            f"<= {TARGET_P95:g}x", (o_p95 / b_p95 <= TARGET_P95) if b_p95 else None,
            note=f"rps {harness.median(r['rps'] for r in ours):.0f} "
                 f"({FEW_TENANTS} tenants: {harness.median(r['rps'] for r in base):.0f})"))
        rows.append(harness.result(NAME, "errors", "", errors["ours"], errors["baseline"],
                                   "baseline runs", "0 errors", errors["ours"] == 0))
    rows[0]["note"] = (rows[0].get("note", "") + f"; {size:,} + {FEW_TENANTS} tenants of "
                       f"{PER_TENANT} customers seeded in {seeded:.0f} s").lstrip("; ")
    return rows

