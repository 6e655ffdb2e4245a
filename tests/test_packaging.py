"""The distribution: every package listed, the import name mapped, a wheel that holds them."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP_DIRS = {".venv", ".git", "build", "dist", "tests", "examples", "bench", "docs", "instance"}


def listed_packages() -> set[str]:
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    return {p.strip() for p in cfg["options"]["packages"].split("\n") if p.strip()}


def package_folders() -> set[str]:
    found = {"clientela"}
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [
            d for d in dirnames
            if d not in SKIP_DIRS and not d.startswith(".") and not d.endswith(".egg-info")
            and d != "__pycache__"
        ]
        if "__init__.py" in filenames and dirpath != ROOT:
            rel = os.path.relpath(dirpath, ROOT).replace(os.sep, ".")
            found.add(f"clientela.{rel}")
    return found


def test_every_folder_with_an_init_is_a_listed_package():
    assert package_folders() == listed_packages()


def test_repository_root_is_not_a_package():
    assert not os.path.exists(os.path.join(ROOT, "__init__.py"))


def test_import_name_is_clientela():
    import clientela.cli
    import clientela.core

    assert os.path.dirname(clientela.core.__file__) == os.path.join(ROOT, "core")
    assert callable(clientela.cli.main)


@pytest.mark.slow
def test_wheel_contains_every_package_and_the_migrations(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), ROOT],
        check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob("clientela-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in listed_packages():
        path = package.replace(".", "/")
        if package == "clientela":
            assert "clientela/cli.py" in names
        else:
            assert f"{path}/__init__.py" in names, package
    assert "clientela/core/migrations/versions/0001_core_schema.py" in names
    assert "clientela/core/migrations/script.py.mako" in names
    assert not any(n.startswith(("core/", "plugins/", "tests/")) for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "clientela = clientela.cli:main" in text
    assert "prm = clientela.plugins.prm" in text
