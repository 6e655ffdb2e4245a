"""The hook reference is generated from the hookspecs and must not go stale."""

from __future__ import annotations

import os

from clientela.core.hookdocs import hook_names, render

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")


def test_hook_reference_is_current():
    with open(os.path.join(DOCS, "hooks.md"), encoding="utf-8") as fh:
        assert fh.read() == render(), "docs/hooks.md is stale: run 'make docs'"


def test_every_hook_is_documented_with_a_docstring():
    text = render()
    for name in hook_names():
        assert f"### `{name}(" in text
        from clientela.core import hookspecs

        doc = getattr(hookspecs, name).__doc__
        assert doc and "Since hook API" in doc, name


def test_readme_starts_with_the_two_commands():
    with open(os.path.join(os.path.dirname(DOCS), "README.md"), encoding="utf-8") as fh:
        readme = fh.read()
    quickstart = readme.index("make run")
    assert quickstart < readme.index("make test") < readme.index("##", quickstart)
