"""Value transformations of import files: what a saved import mapping does to each cell.

A mapping's ``transforms`` is ``{"Header": [step, ...]}``; each step is one of

* ``{"op": "trim"}``, ``{"op": "lower"}``, ``{"op": "upper"}``;
* ``{"op": "replace", "old": "-", "new": ""}``;
* ``{"op": "date", "from": "%d/%m/%Y", "to": "%Y-%m-%d"}`` (``to`` defaults to ISO);
* ``{"op": "map", "values": {"Y": "true", "N": "false"}, "other": "keep"|"empty"|"error"}``;
* ``{"op": "default", "value": "n/a"}`` (when the cell is empty);
* ``{"op": "split", "separator": "|", "index": 0}``: one part, or (without ``index``) every
  part, joined with ``;`` (how list fields such as tags are read);
* ``{"op": "join", "columns": ["Street", "Number"], "separator": " "}``: the non-empty
  cells of other columns; a header that is not in the file is a new column this makes.

Steps run in order on the text of the cell; a step that cannot transform a value
(a date that does not parse, a value ``map`` does not know with ``other: error``) makes
the row fail with a message naming the column. Every CSV import can use them: the core's
customer import applies the transforms of the saved mapping it is given.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

OPS = ("trim", "lower", "upper", "replace", "date", "map", "default", "split", "join")
MAX_STEPS = 20


class TransformError(ValueError):
    """A cell cannot be transformed; the message says why."""


def check_transforms(transforms: Any) -> dict[str, list[dict[str, Any]]]:
    """The transforms, checked; ``ValueError`` with every problem otherwise."""
    if transforms is None:
        return {}
    if not isinstance(transforms, dict):
        raise ValueError('transforms are an object {"Header": [{"op": ...}, ...]}')
    problems = []
    for header, steps in transforms.items():
        if not isinstance(header, str) or not header:
            problems.append("a header is a non-empty string")
            continue
        if not isinstance(steps, list) or not 0 < len(steps) <= MAX_STEPS:
            problems.append(f"{header!r}: a list of 1 to {MAX_STEPS} steps")
            continue
        for i, step in enumerate(steps):
            where = f"{header!r}[{i}]"
            op = step.get("op") if isinstance(step, dict) else None
            if op not in OPS:
                problems.append(f"{where}: op must be one of {', '.join(OPS)}")
                continue
            if op == "date":
                for key in ("from", "to"):
                    if key in step and (not isinstance(step[key], str) or "%" not in step[key]):
                        problems.append(f"{where}: {key} is a strftime format like %d/%m/%Y")
                if "from" not in step:
                    problems.append(f"{where}: give the format of the file's dates (from)")
            elif op == "map":
                values = step.get("values")
                if not isinstance(values, dict) or not all(
                        isinstance(v, str) for v in values.values()):
                    problems.append(f"{where}: values is an object of texts")
                if step.get("other", "keep") not in ("keep", "empty", "error"):
                    problems.append(f"{where}: other is keep, empty or error")
            elif op == "default":
                if not isinstance(step.get("value"), str):
                    problems.append(f"{where}: value is a text")
            elif op == "replace":
                if not isinstance(step.get("old"), str) or not step.get("old") or \
                        not isinstance(step.get("new", ""), str):
                    problems.append(f"{where}: old (not empty) and new are texts")
            elif op == "split":
                if not isinstance(step.get("separator"), str) or not step.get("separator"):
                    problems.append(f"{where}: give the separator")
                if "index" in step and (isinstance(step["index"], bool)
                                        or not isinstance(step["index"], int)):
                    problems.append(f"{where}: index is a whole number")
            elif op == "join":
                columns = step.get("columns")
                if not isinstance(columns, list) or not columns or not all(
                        isinstance(c, str) for c in columns):
                    problems.append(f"{where}: columns is a list of headers")
                if not isinstance(step.get("separator", " "), str):
                    problems.append(f"{where}: separator is a text")
    if problems:
        raise ValueError("; ".join(problems))
    return transforms


def _step(step: dict[str, Any], value: str, row: dict[str, str]) -> str:
    op = step["op"]
    if op == "trim":
        return value.strip()
    if op == "lower":
        return value.lower()
    if op == "upper":
        return value.upper()
    if op == "replace":
        return value.replace(step["old"], step.get("new", ""))
    if op == "default":
        return value if value.strip() else step["value"]
    if op == "join":
        parts = [row.get(column, "").strip() for column in step["columns"]]
        return step.get("separator", " ").join(part for part in parts if part)
    if not value.strip():
        return value  # date, map and split leave an empty cell empty
    if op == "date":
        try:
            moment = dt.datetime.strptime(value.strip(), step["from"])
        except ValueError:
            raise TransformError(f"'{value}' is not a date like {step['from']}") from None
        return moment.strftime(step["to"]) if step.get("to") else moment.date().isoformat()
    if op == "map":
        values = step["values"]
        if value in values:
            return values[value]
        other = step.get("other", "keep")
        if other == "error":
            raise TransformError(f"'{value}' is not one of {', '.join(values)}")
        return "" if other == "empty" else value
    if op == "split":
        parts = [part.strip() for part in value.split(step["separator"])]
        if "index" in step:
            index = step["index"]
            return parts[index] if -len(parts) <= index < len(parts) else ""
        return ";".join(part for part in parts if part)
    raise TransformError(f"unknown op {op!r}")  # pragma: no cover - checked before


def new_columns(header: list[str], transforms: dict[str, list]) -> list[str]:
    """The headers transforms add to a file's header (those made by ``join``)."""
    return [name for name in transforms if name not in header]


def apply(row: dict[str, str], transforms: dict[str, list]) -> tuple[dict[str, str],
                                                                        list[tuple[str, str]]]:
    """``row`` (``{header: text}``) transformed, and the ``(header, message)`` problems."""
    if not transforms:
        return row, []
    original = dict(row)
    result = dict(row)
    problems = []
    for header, steps in transforms.items():
        value = original.get(header, "")
        try:
            for step in steps:
                value = _step(step, value, original)
        except TransformError as exc:
            problems.append((header, str(exc)))
            continue
        result[header] = value
    return result, problems


__all__ = ["OPS", "TransformError", "apply", "check_transforms", "new_columns"]
