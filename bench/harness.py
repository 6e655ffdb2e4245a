"""What every benchmark scenario shares: medians, alternating runs, result rows, a loopback
HTTP load generator in its own process, gunicorn, and throw-away PostgreSQL databases.

Run as ``python -m bench.harness loadgen`` it is the load generator itself (a JSON
configuration on stdin, a JSON report on stdout); scenarios call ``load()`` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PG_SERVER = os.environ.get(
    "CLIENTELA_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SEED = 20261123
LOOPBACK = "127.0.0.1"


# --- figures ---------------------------------------------------------------------


def median(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def percentile(values, pct: float) -> float | None:
    """The ``pct`` percentile (nearest rank) of ``values``."""
    values = sorted(values)
    if not values:
        return None
    rank = max(1, min(len(values), int(round(pct / 100 * len(values) + 0.5))))
    return values[rank - 1]


def alternate(ours: Callable[[], Any], baseline: Callable[[], Any], repeats: int
              ) -> tuple[list, list]:
    """Run ``ours`` and ``baseline`` alternately ``repeats`` times each; returns both lists.

    The order flips every round (ours, baseline, baseline, ours, ...) so that a machine
    that warms up or gets busier during the run favours neither.
    """
    ours_results, baseline_results = [], []
    for i in range(max(1, repeats)):
        if i % 2 == 0:
            ours_results.append(ours())
            baseline_results.append(baseline())
        else:
            baseline_results.append(baseline())
            ours_results.append(ours())
    return ours_results, baseline_results


def timed(fn: Callable[[], Any]) -> float:
    """Seconds ``fn()`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def result(scenario: str, metric: str, unit: str, ours: float | None, baseline: float | None,
           baseline_name: str, target: str, met: bool | None, note: str = "") -> dict:
    """One row of the results table; ``ratio`` is ours / baseline."""
    ratio = None
    if ours is not None and baseline:
        ratio = ours / baseline
    row = {
        "scenario": scenario, "metric": metric, "unit": unit,
        "ours": _round(ours), "baseline": _round(baseline), "baseline_name": baseline_name,
        "ratio": _round(ratio, 3), "target": target, "met": met,
    }
    if note:
        row["note"] = note
    return row


def _round(value, digits: int = 2):
    if value is None:
        return None
    return round(value, digits) if abs(value) >= 1 else round(value, max(digits, 4))


def rng(extra: int = 0) -> random.Random:
    """A random generator with the benchmarks' fixed seed, so data is the same every run."""
    return random.Random(SEED + extra)


# --- customer data -------------------------------------------------------------------

FIRST_NAMES = (
    "Mario Giulia Luca Anna Marco Sara Paolo Elena Andrea Chiara Jean Marie Pierre Sophie "
    "Louis Camille Hans Anna Lukas Lea John Mary James Emma Oliver Ava William Mia Noah "
    "Olivia Liam Isabella Ethan Sofia Lucas Charlotte Mateo Amelia Leo Harper Hugo Alice "
    "Ines Carlos Lucia Diego Paula Javier Carmen Ahmed Fatima Yuki Hiro Wei Mei Raj Priya "
    "Olga Ivan Nina Piotr Zofia Jan Eva Lars Ingrid Sven Astrid Aoife Sean Niamh Cian"
).split()
LAST_NAMES = (
    "Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco Bruno Gallo "
    "Conti DeLuca Mancini Costa Giordano Rizzo Lombardi Moretti Martin Bernard Dubois "
    "Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent Lefebvre Michel Muller "
    "Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Smith Johnson "
    "Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez "
    "Wilson Anderson Taylor Moore Jackson Lee Perez Thompson White Harris Sanchez Clark "
    "Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores "
    "Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Kowalski Nowak "
    "Novak Horvat Jensen Nielsen Hansen Andersen Larsen Berg Lindqvist Virtanen Murphy"
).split()
ORG_WORDS = "Acme Globex Initech Umbrella Stark Wayne Wonka Tyrell Cyberdyne Soylent".split()
ORG_SUFFIXES = ["S.p.A.", "GmbH", "Ltd", "SARL", "Inc", "& Figli", "BV", "AB"]
COUNTRY_CODES = ["39", "33", "49", "44", "1", "34", "31", "46", "353", "358"]
STAGES = ["lead", "prospect", "customer", "former"]


def customer_rows(count: int, seed_offset: int = 0) -> list[dict]:
    """``count`` plausible customers (persons, one in ten an organisation), deterministic.

    E-mails are unique (phones nearly so); rows carry every non-null column but the keys,
    so they can go straight into ``insert(Customer)`` inside a tenant context.
    """
    r = rng(seed_offset)
    rows = []
    for i in range(count):
        cc = r.choice(COUNTRY_CODES)
        phone = "+" + cc + str(r.randrange(2, 10)) + f"{r.randrange(10**8):08d}"
        if i % 10 == 9:
            org = f"{r.choice(ORG_WORDS)} {r.choice(LAST_NAMES)} {r.choice(ORG_SUFFIXES)}"
            row = {"kind": "organisation", "display_name": org, "first_name": None,
                   "last_name": None, "organisation_name": org,
                   "email": f"info.{i}@{org.split()[0].lower()}{i % 997}.example"}
        else:
            first, last = r.choice(FIRST_NAMES), r.choice(LAST_NAMES)
            row = {"kind": "person", "display_name": f"{first} {last}", "first_name": first,
                   "last_name": last, "organisation_name": None,
                   "email": f"{first.lower()}.{last.lower()}.{i}@example.com"}
        row.update(phone=phone, stage=STAGES[i % 4], emails=[], phones=[], addresses=[],
                   tags=[], attributes={})
        rows.append(row)
    return rows


# --- processes -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def wait_for_http(port: int, path: str = "/", timeout: float = 60.0,
                  proc: subprocess.Popen | None = None) -> None:
    """Wait until something answers HTTP on ``127.0.0.1:port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode} before answering")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=1) as s:
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: {LOOPBACK}\r\n"
                          "Connection: close\r\n\r\n".encode())
                if s.recv(12).startswith(b"HTTP/"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"nothing answered on port {port} within {timeout:.0f} s")


@contextlib.contextmanager
def gunicorn(app_spec: str, env: dict[str, str] | None = None, workers: int = 2,
             ready_path: str = "/", extra_args: list[str] | None = None) -> Iterator[int]:
    """Serve ``app_spec`` (``module:app`` or ``module:factory()``) with gunicorn on loopback.

    Yields the port; the server (sync workers, no access log) is stopped afterwards.
    """
    port = free_port()
    log = tempfile.TemporaryFile()
    cmd = [sys.executable, "-m", "gunicorn", "--workers", str(workers),
           "--bind", f"{LOOPBACK}:{port}", "--backlog", "2048", "--log-level", "warning",
           *(extra_args or []), app_spec]
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **(env or {})},
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        try:
            wait_for_http(port, ready_path, proc=proc)
        except RuntimeError as exc:
            log.seek(0)
            tail = log.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"gunicorn {app_spec}: {exc}\n{tail}") from None
        yield port
    finally:
        stop_process(proc)
        log.close()


def stop_process(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """Stop ``proc`` (and its children, e.g. gunicorn's workers): TERM, then KILL."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def python_env() -> dict[str, str]:
    """The environment for a child Python: the repository importable, no user config."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CLIENTELA_") and k not in ("DATABASE_URL", "REDIS_URL")}
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    return env


# --- PostgreSQL --------------------------------------------------------------------


def postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used (``None`` when it can)."""
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(PG_SERVER, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means unusable
        return f"PostgreSQL unreachable at {PG_SERVER}: {str(exc).splitlines()[0]}"


@contextlib.contextmanager
def postgres_database(label: str = "bench") -> Iterator[str]:
    """A new, empty PostgreSQL database (unique name); dropped at the end. Yields its URL."""
    import sqlalchemy as sa

    name = f"clientela_bench_{label}_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.engine.make_url(PG_SERVER).set(database=name).render_as_string(
            hide_password=False
        )
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        engine.dispose()


def psycopg_dsn(url: str) -> str:
    """A SQLAlchemy ``postgresql+psycopg://`` URL as a libpq connection string."""
    import sqlalchemy as sa

    u = sa.engine.make_url(url)
    parts = [f"dbname={u.database}", f"host={u.host or LOOPBACK}", f"port={u.port or 5432}",
             f"user={u.username}"]
    if u.password:
        parts.append(f"password={u.password}")
    return " ".join(parts)


# --- the load generator --------------------------------------------------------------


def load(port: int, requests: list[dict], connections: int, duration: float,
         warmup: float = 1.0, max_requests: int = 200_000) -> dict:
    """Drive ``127.0.0.1:port`` from a separate process; returns rps, latencies, errors.

    ``requests`` are ``{"method", "path", "headers", "body", "expect"}`` dicts taken in
    turn (each connection starts at another place); ``{n}`` in a path or body becomes a
    number unique within the run. The first ``warmup`` seconds are not counted. The run
    stops after ``duration`` seconds or ``max_requests`` requests, whichever comes first.
    """
    config = {"port": port, "requests": requests, "connections": connections,
              "duration": duration, "warmup": warmup, "max_requests": max_requests}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.harness", "loadgen"], input=json.dumps(config),
        capture_output=True, text=True, cwd=REPO, env=python_env(),
        timeout=duration + warmup + 120,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout)


async def _one_request(port: int, raw: bytes, timeout: float) -> tuple[int, bytes]:
    """Send one request on a new connection (gunicorn's sync workers close each one)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(LOOPBACK, port), timeout)
    try:
        writer.write(raw)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        status = int(head.split(b" ", 2)[1])
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        if length is not None:
            body = await asyncio.wait_for(reader.readexactly(length), timeout)
        else:
            body = await asyncio.wait_for(reader.read(), timeout)
        return status, body
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def _render(template: dict, n: int, port: int) -> bytes:
    body = template.get("body")
    if body is not None:
        body = body.replace("{n}", str(n)).encode()
    path = template["path"].replace("{n}", str(n))
    lines = [f"{template.get('method', 'GET')} {path} HTTP/1.1", f"Host: {LOOPBACK}:{port}",
             "Connection: close"]
    for name, value in (template.get("headers") or {}).items():
        lines.append(f"{name}: {value}")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


async def _drive(config: dict) -> dict:
    port, templates = config["port"], config["requests"]
    connections, duration, warmup = config["connections"], config["duration"], config["warmup"]
    max_requests = config["max_requests"]
    counter = iter(range(10**12))
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + duration
    latencies: list[float] = []
    errors: dict[str, int] = {}
    sent = 0

    async def worker(index: int) -> None:
        nonlocal sent
        i = index
        while True:
            now = time.perf_counter()
            if now >= stop_at or sent >= max_requests:
                return
            template = templates[i % len(templates)]
            i += connections
            raw = _render(template, next(counter), port)
            sent += 1
            t0 = time.perf_counter()
            try:
                status, _ = await _one_request(port, raw, timeout=30)
                problem = None if status == template.get("expect", 200) else f"HTTP {status}"
            except Exception as exc:  # noqa: BLE001 - every failure is counted
                problem = type(exc).__name__
            t1 = time.perf_counter()
            if t0 >= measure_from:
                latencies.append(t1 - t0)
                if problem:
                    errors[problem] = errors.get(problem, 0) + 1

    await asyncio.gather(*(worker(k) for k in range(connections)))
    # requests started in the window are counted to their end, the slow ones too
    elapsed = time.perf_counter() - measure_from
    ok = len(latencies) - sum(errors.values())
    ms = [x * 1000 for x in latencies]
    return {
        "requests": len(latencies), "errors": sum(errors.values()), "error_kinds": errors,
        "seconds": elapsed, "rps": ok / elapsed if elapsed > 0 else 0.0,
        "p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95),
        "p99_ms": percentile(ms, 99), "connections": connections,
    }


def _loadgen_main() -> None:
    config = json.loads(sys.stdin.read())
    report = asyncio.run(_drive(config))
    sys.stdout.write(json.dumps(report))


if __name__ == "__main__":
    if sys.argv[1:] == ["loadgen"]:
        _loadgen_main()
    else:
        sys.exit("usage: python -m bench.harness loadgen < config.json")
