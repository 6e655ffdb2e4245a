"""Extract the UI's translatable strings and keep the ``.po`` catalogues complete.

    python -m clientela.core.web.messages update PACKAGE_DIR   # add new strings, drop gone ones
    python -m clientela.core.web.messages check PACKAGE_DIR    # list strings lacking a translation

``PACKAGE_DIR`` is the core's ``core/web`` or a plugin's package folder. Strings are found
with Babel's extractors in the package's templates (``_()``, ``ngettext()``,
``{% trans %}``) and Python modules (``_``, ``_l``, ``gettext``, ``lazy_gettext``,
``ngettext``); the catalogues are ``translations/<locale>.po`` beside them. A test runs
``check`` on the core and every plugin, so a string without an Italian or Spanish
translation fails the build.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from clientela.core.web.i18n import DEFAULT_LOCALE, LOCALES

KEYWORDS = {"_": None, "_l": None, "gettext": None, "lazy_gettext": None,
            "ngettext": (1, 2), "lazy_ngettext": (1, 2)}
METHODS = [("**/migrations/**", "ignore"), ("**/tests/**", "ignore"),
           ("**/templates/**.html", "jinja2"), ("**.py", "python")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true"}}


def extract(package_dir: str) -> Iterator[tuple[str | tuple[str, str], str]]:
    """``(msgid, location)`` for every translatable string of the package (messages.py and
    i18n.py excluded: they only name the functions)."""
    for filename, lineno, message, _comments, _context in extract_from_dir(
            package_dir, method_map=METHODS, options_map=OPTIONS, keywords=KEYWORDS):
        if os.path.basename(filename) in ("messages.py", "i18n.py") and filename.startswith("core"):
            continue
        if isinstance(message, (tuple, list)):
            message = tuple(m for m in message if m)
            if len(message) == 1:
                message = message[0]
        if message:
            yield message, f"{filename}:{lineno}"


def _catalog_path(package_dir: str, locale: str) -> str:
    return os.path.join(package_dir, "translations", f"{locale}.po")


def read_catalog(package_dir: str, locale: str) -> Catalog:
    path = _catalog_path(package_dir, locale)
    if not os.path.exists(path):
        return Catalog(locale=locale)
    with open(path, "rb") as fh:
        return read_po(fh, locale=locale)


def missing(package_dir: str) -> dict[str, list[str]]:
    """``{locale: ["msgid (file:line)", ...]}`` for strings with no translation."""
    found = dict(extract(package_dir))
    result: dict[str, list[str]] = {}
    for locale in LOCALES:
        if locale == DEFAULT_LOCALE:
            continue
        catalog = read_catalog(package_dir, locale)
        lacking = []
        for msgid, where in found.items():
            key = msgid[0] if isinstance(msgid, tuple) else msgid
            message = catalog.get(key)
            strings = (message.string if message else None) or ""
            if not (all(strings) if isinstance(strings, (tuple, list)) else strings):
                lacking.append(f"{msgid!r} ({where})")
        if lacking:
            result[locale] = sorted(lacking)
    return result


def update(package_dir: str) -> None:
    found = dict(extract(package_dir))
    for locale in LOCALES:
        if locale == DEFAULT_LOCALE:
            continue
        old = read_catalog(package_dir, locale)
        new = Catalog(locale=locale, project="Clientela", fuzzy=False)
        for msgid, where in sorted(found.items(), key=lambda item: str(item[0])):
            key = msgid[0] if isinstance(msgid, tuple) else msgid
            previous = old.get(key)
            string = previous.string if previous else ("", "") if isinstance(msgid, tuple) else ""
            filename, _, line = where.rpartition(":")
            new.add(msgid, string, locations=[(filename, int(line))])
        os.makedirs(os.path.dirname(_catalog_path(package_dir, locale)), exist_ok=True)
        with open(_catalog_path(package_dir, locale), "wb") as fh:
            write_po(fh, new, width=100, omit_header=True, sort_output=True, include_lineno=False)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("update", "check"):
        print(__doc__)
        return 2
    command, package_dir = argv
    if command == "update":
        update(package_dir)
    problems = missing(package_dir)
    for locale, lacking in problems.items():
        print(f"{locale}: {len(lacking)} string(s) without a translation")
        for line in lacking:
            print("   ", line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
