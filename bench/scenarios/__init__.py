"""One module per benchmark scenario; ``bench/run.py`` finds them here.

A scenario module has ``NAME``, ``DESCRIPTION``, ``DEFAULT_SIZE`` (int) and
``run(size: int, repeats: int) -> list[dict]``, each dict with the keys ``scenario,
metric, unit, ours, baseline, baseline_name, ratio, target, met`` (and optionally
``note``); ``bench.harness.result`` makes one.
"""
