"""Run the benchmark scenarios, print one table, and write the results to bench/results/.

    python -m bench.run                         # every scenario at its default size
    python -m bench.run --scenario search --size 100000
    python -m bench.run --list

A scenario that fails is reported as a row with ``met`` unknown and its error, and the
others still run; the exit status is 1 when a scenario failed, 0 otherwise (a target not
met is a finding, shown as NOT MET, not a failure of the run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import pkgutil
import platform
import sys
import time
import traceback

if __package__ in (None, ""):  # run as ``python bench/run.py``
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import scenarios  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
COLUMNS = ("scenario", "metric", "ours", "baseline", "ratio", "target", "met")
REQUIRED = ("NAME", "DESCRIPTION", "DEFAULT_SIZE", "run")


def discover() -> dict[str, object]:
    """The scenario modules of ``bench/scenarios``, by name; a broken one maps to its error."""
    found: dict[str, object] = {}
    for info in sorted(pkgutil.iter_modules(scenarios.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"bench.scenarios.{info.name}")
        except Exception as exc:  # noqa: BLE001 - reported as that scenario's failure
            found[info.name] = exc
            continue
        missing = [attr for attr in REQUIRED if not hasattr(module, attr)]
        if missing:
            found[info.name] = TypeError(f"scenario module lacks {', '.join(missing)}")
            continue
        found[module.NAME] = module
    return found


def error_row(name: str, message: str) -> dict:
    return {"scenario": name, "metric": "error", "unit": "", "ours": None, "baseline": None,
            "baseline_name": "", "ratio": None, "target": "runs", "met": None,
            "note": message}


def run_scenario(name: str, module, size: int | None, repeats: int | None,
                 profile: bool = False) -> list[dict]:
    if isinstance(module, Exception):
        return [error_row(name, f"cannot be loaded: {type(module).__name__}: {module}")]
    size = size or module.DEFAULT_SIZE
    repeats = repeats or getattr(module, "DEFAULT_REPEATS", 5)
    print(f"--- {name} (size {size}, repeats {repeats}): {module.DESCRIPTION}", flush=True)
    profiler = None
    if profile:  # what this process spends its time on (servers run in processes of their own)
        from pyinstrument import Profiler

        profiler = Profiler()
        profiler.start()
    start = time.perf_counter()
    try:
        rows = list(module.run(size, repeats))
    except Exception as exc:  # noqa: BLE001 - one scenario's failure does not stop the run
        traceback.print_exc()
        rows = [error_row(name, f"{type(exc).__name__}: {exc}".splitlines()[0])]
    took = time.perf_counter() - start
    if profiler is not None:
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False), flush=True)
    for row in rows:
        row.setdefault("size", size)
        row.setdefault("repeats", repeats)
    print(f"    {name} took {took:.0f} s", flush=True)
    return rows


def fmt_value(value, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}" if abs(value) < 10 \
            else f"{value:.1f}"
    else:
        text = f"{value:,}" if isinstance(value, int) else str(value)
    return f"{text} {unit}".strip()


def fmt_met(met) -> str:
    return {True: "met", False: "NOT MET", None: "n/a"}[met]


def table(rows: list[dict]) -> str:
    """The results as a Markdown table (readable in a terminal and pasteable in docs)."""
    lines = [[
        row["scenario"], row["metric"], fmt_value(row["ours"], row.get("unit", "")),
        fmt_value(row["baseline"], row.get("unit", "")) + (
            f" ({row['baseline_name']})" if row.get("baseline_name") else ""),
        "-" if row.get("ratio") is None else f"{row['ratio']:.2f}x",
        row.get("target", ""), fmt_met(row.get("met")),
    ] for row in rows]
    widths = [max(len(h), *(len(str(line[i])) for line in lines)) if lines else len(h)
              for i, h in enumerate(COLUMNS)]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(COLUMNS, widths)) + " |",
           "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += ["| " + " | ".join(str(c).ljust(w) for c, w in zip(line, widths)) + " |"
            for line in lines]
    notes = [f"- {row['scenario']} / {row['metric']}: {row['note']}"
             for row in rows if row.get("note")]
    if notes:
        out += ["", "Notes:", *notes]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", "-s", action="append", default=[],
                        help="Run only this scenario (repeatable, or comma-separated).")
    parser.add_argument("--size", type=int, default=None,
                        help="Data size for the scenario(s) (default: each one's own).")
    parser.add_argument("--repeats", type=int, default=None,
                        help="Alternating runs of ours and the baseline (default: each one's own).")
    parser.add_argument("--list", action="store_true", help="List the scenarios and exit.")
    parser.add_argument("--profile", action="store_true",
                        default=bool(os.environ.get("BENCH_PROFILE")),
                        help="Profile each scenario with pyinstrument (also BENCH_PROFILE=1).")
    parser.add_argument("--output", default=RESULTS, help="Folder for the JSON results.")
    args = parser.parse_args(argv)

    found = discover()
    if args.list:
        for name, module in found.items():
            if isinstance(module, Exception):
                print(f"{name}: cannot be loaded: {module}")
            else:
                print(f"{name} (default size {module.DEFAULT_SIZE}): {module.DESCRIPTION}")
        return 0
    wanted = [n.strip() for arg in args.scenario for n in arg.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in found]
    if unknown:
        print(f"unknown scenario {', '.join(unknown)}; scenarios: {', '.join(found)}",
              file=sys.stderr)
        return 2
    started = dt.datetime.now(dt.timezone.utc)
    rows: list[dict] = []
    for name in wanted or list(found):
        rows.extend(run_scenario(name, found[name], args.size, args.repeats, args.profile))
    finished = dt.datetime.now(dt.timezone.utc)

    print()
    print(table(rows))
    os.makedirs(args.output, exist_ok=True)
    path = os.path.join(args.output, started.strftime("%Y%m%dT%H%M%SZ") + ".json")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({
            "started": started.isoformat(), "finished": finished.isoformat(),
            "machine": {"python": platform.python_version(), "platform": platform.platform(),
                        "cpus": os.cpu_count()},
            "arguments": {"scenarios": wanted or list(found), "size": args.size,
                          "repeats": args.repeats},
            "results": rows,
        }, fh, indent=2, default=str)
    print(f"\nresults written to {os.path.relpath(path)}")
    return 1 if any(row["metric"] == "error" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
