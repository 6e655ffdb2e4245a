"""Patterns of custom fields cannot make a write backtrack for minutes: the shapes that
backtrack catastrophically are refused when the field is defined, and the values a pattern
runs on are bounded — on both backends (and the guard alone, without a database)."""

from __future__ import annotations

import re
import time

import pytest

from clientela.plugins.tailormade import patterns

FIELDS = "/api/v1/custom-fields"

REFUSED = [
    r"(a+)+$",  # the textbook case: 2^n ways to split a run of a's
    r"^(\w+\s?)*$",
    r"(x+x+)+y",
    r"(aa|a)*b",
    r"(a|.)+!",
    r"(a)\1",
    r"\d*\d*\d*x",
    r"(",
]
ACCEPTED = [
    r"[A-Z]{2}[0-9]{3}[A-Z]{2}",
    r"[A-Z]{2}[0-9]{5,11}",
    r"^[a-z]+@[a-z]+\.[a-z]+$",
    r"(foo|bar)+",
    r"(\d{3}-)+\d{4}",
    r"\+?[0-9 ]{6,20}",
    r"^\w+\s*\w+$",
    r"(.*?)x",
]


@pytest.mark.parametrize("pattern", REFUSED)
def test_a_pattern_that_can_backtrack_catastrophically_is_refused(pattern):
    assert patterns.problem(pattern)


@pytest.mark.parametrize("pattern", ACCEPTED)
def test_ordinary_patterns_are_accepted(pattern):
    assert patterns.problem(pattern) is None


@pytest.mark.parametrize("pattern", ACCEPTED)
def test_accepted_patterns_answer_quickly_on_the_longest_hostile_values(pattern):
    longest = patterns.MAX_CHECKED_LENGTH
    for value in ("a" * longest, "1" * (longest - 1) + "!", "ab " * (longest // 3),
                  "foo" * (longest // 3 - 1) + "fo"):
        started = time.perf_counter()
        patterns.matches(pattern, value)
        assert time.perf_counter() - started < 0.5, (pattern, value[:20])


def test_the_refused_textbook_pattern_would_indeed_take_long():
    """What the guard prevents: 24 characters already cost about a second or more."""
    started = time.perf_counter()
    re.fullmatch(r"(a+)+$", "a" * 22 + "!")
    assert time.perf_counter() - started > 0.05


def test_the_api_refuses_such_patterns_and_bounds_checked_values(api):
    for pattern in (r"(a+)+$", r"^(\w+\s?)*$", r"(a)\1"):
        response = api.post(FIELDS, json={"entity_type": "customers", "key": "code",
                                          "type": "text", "pattern": pattern})
        assert response.status_code == 422, response.json
        assert list(response.json["errors"]["json"]) == ["pattern"]
    response = api.post(FIELDS, json={"entity_type": "customers", "key": "notes",
                                      "type": "long_text", "pattern": r"[a-z ]+"})
    assert response.status_code == 201, response.json
    ok = api.post("/api/v1/customers", json={"first_name": "P", "attributes": {
        "notes": "a" * patterns.MAX_CHECKED_LENGTH}})
    assert ok.status_code == 201, ok.json
    long = api.post("/api/v1/customers", json={"first_name": "P", "attributes": {
        "notes": "a" * (patterns.MAX_CHECKED_LENGTH + 1)}})
    assert long.status_code == 422
    assert long.json["errors"]["json"]["attributes.notes"] == [
        f"is too long to check against the pattern (at most "
        f"{patterns.MAX_CHECKED_LENGTH} characters)"]
    # a pattern can be changed to a refused one neither
    field = next(f for f in api.get(FIELDS).json if f["key"] == "notes")
    changed = api.patch(f"{FIELDS}/{field['id']}", json={"pattern": r"([a-z]+ ?)*"})
    assert changed.status_code == 422 and "pattern" in changed.json["errors"]["json"]
