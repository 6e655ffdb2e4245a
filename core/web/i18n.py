"""Translations and locale formatting for the web UI (English, Italian, Spanish).

Catalogues are gettext ``.po`` files read with Babel when the application starts: the
core's in ``core/web/translations/<locale>.po`` and each enabled plugin's in
``<plugin package>/translations/<locale>.po`` (a third-party plugin ships its own the same
way). They are merged into one catalogue per locale, kept in memory; nothing is compiled
at install time, so ``make run`` needs no build step. English is the source language.

The locale is chosen per user (``users.attributes["locale"]``, set on the settings menu),
else from the browser's ``Accept-Language``, else English. Dates, numbers and currencies
are formatted with Babel for that locale.
"""

from __future__ import annotations

import datetime as dt
import decimal
import importlib
import os
from typing import Iterable

from babel import dates, numbers
from babel.messages.pofile import read_po
from babel.support import LazyProxy
from flask import Flask, current_app, g, has_request_context, request
from markupsafe import Markup

LOCALES = ("en", "it", "es")
DEFAULT_LOCALE = "en"
LANGUAGE_NAMES = {"en": "English", "it": "Italiano", "es": "Español"}


def translation_dirs(app: Flask) -> list[str]:
    """The folders holding ``<locale>.po`` files: the core's, the deployment profile's
    (e.g. the hosted operator console's) and each enabled plugin's."""
    dirs = [os.path.join(os.path.dirname(__file__), "translations")]
    ext = app.extensions["clientela"]
    profile_module = importlib.import_module(type(ext.profile).__module__)
    folder = os.path.join(os.path.dirname(profile_module.__file__), "translations")
    if os.path.isdir(folder):
        dirs.append(folder)
    for info in ext.plugins.enabled():
        module = info.module or importlib.import_module(info.module_name)
        folder = os.path.join(os.path.dirname(module.__file__), "translations")
        if os.path.isdir(folder):
            dirs.append(folder)
    return dirs


def load_catalogs(dirs: Iterable[str]) -> dict[str, dict]:
    """``{locale: {msgid: msgstr}}``; plural entries are keyed by the ``(singular, plural)``
    pair and hold a tuple of forms. Untranslated (empty) entries are left out."""
    catalogs: dict[str, dict] = {locale: {} for locale in LOCALES if locale != DEFAULT_LOCALE}
    for folder in dirs:
        for locale, messages in catalogs.items():
            path = os.path.join(folder, f"{locale}.po")
            if not os.path.exists(path):
                continue
            with open(path, "rb") as fh:
                catalog = read_po(fh, locale=locale)
            for message in catalog:
                if not message.id or not message.string:
                    continue
                # the first catalogue wins (the core's, then plugins in order); a test keeps
                # one translation per string across packages
                if isinstance(message.id, (tuple, list)):
                    if all(message.string):
                        messages.setdefault(tuple(message.id), tuple(message.string))
                else:
                    messages.setdefault(message.id, message.string)
    return catalogs


def current_locale() -> str:
    if not has_request_context():
        return DEFAULT_LOCALE
    locale = g.get("clientela_locale")
    if locale is None:
        locale = g.clientela_locale = _choose_locale()
    return locale


def _choose_locale() -> str:
    user = g.get("web_user")
    chosen = (user.attributes or {}).get("locale") if user is not None else None
    if chosen in LOCALES:
        return chosen
    return request.accept_languages.best_match(LOCALES) or DEFAULT_LOCALE


def _catalog() -> dict:
    locale = current_locale()
    if locale == DEFAULT_LOCALE:
        return {}
    return current_app.extensions["clientela_web_i18n"].get(locale, {})


def gettext(message: str, **variables) -> str:
    text = _translate(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, num: int, **variables) -> str:
    # English, Italian and Spanish have two forms: one, and everything else
    variables.setdefault("num", num)
    return _translate_plural(singular, plural, num) % variables


def _translate(message: str) -> str:
    return _catalog().get(message, message) if has_request_context() else message


def _translate_plural(singular: str, plural: str, num: int) -> str:
    forms = _catalog().get((singular, plural)) if has_request_context() else None
    if forms:
        return forms[0] if num == 1 else forms[1]
    return singular if num == 1 else plural


def lazy_gettext(message: str, **variables) -> LazyProxy:
    """A string translated when it is shown (for labels declared at import time)."""
    return LazyProxy(gettext, message, enable_cache=False, **variables)


_ = gettext
_l = lazy_gettext


# --- formatting ----------------------------------------------------------------


def format_number(value, digits: int | None = None) -> str:
    if value is None or value == "":
        return ""
    if digits is not None:
        fmt = "#,##0" + ("." + "0" * digits if digits else "")
        return numbers.format_decimal(value, format=fmt, locale=current_locale())
    return numbers.format_decimal(value, locale=current_locale())


def format_percent(value) -> str:
    if value is None:
        return ""
    return numbers.format_percent(value, format="#,##0.0%", locale=current_locale())


def format_money(value, currency: str | None = None) -> str:
    if value is None or value == "":
        return ""
    currency = currency or current_app.config.get("DEFAULT_CURRENCY", "EUR")
    return numbers.format_currency(decimal.Decimal(str(value)), currency, locale=current_locale())


def _as_datetime(value):
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def format_datetime(value, format: str = "medium") -> str:
    value = _as_datetime(value)
    if value is None or isinstance(value, str):
        return value or ""
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    if not isinstance(value, dt.datetime):
        return dates.format_date(value, format=format, locale=current_locale())
    return dates.format_datetime(value, format=format, locale=current_locale())


def format_date(value, format: str = "medium") -> str:
    value = _as_datetime(value)
    if value is None or isinstance(value, str):
        return value or ""
    if isinstance(value, dt.datetime):
        value = value.date()
    return dates.format_date(value, format=format, locale=current_locale())


def format_timedelta(value, add_direction: bool = False) -> str:
    if value is None:
        return ""
    if not isinstance(value, dt.timedelta):
        value = dt.timedelta(seconds=float(value))
    return dates.format_timedelta(value, add_direction=add_direction, locale=current_locale(),
                                  threshold=1.5)


def init_app(app: Flask) -> None:
    app.extensions["clientela_web_i18n"] = load_catalogs(translation_dirs(app))
    env = app.jinja_env
    env.add_extension("jinja2.ext.i18n")
    # newstyle: Jinja itself fills in ``%(name)s`` from the call's keyword arguments (all
    # of them, for plurals too), so it gets functions that only translate
    env.install_gettext_callables(_translate, _translate_plural,  # type: ignore[attr-defined]
                                  newstyle=True)
    env.filters.update(
        number=format_number, percent=format_percent, money=format_money,
        datetime=format_datetime, date=format_date, timedelta=format_timedelta,
    )
    env.globals.update(current_locale=current_locale, LANGUAGE_NAMES=LANGUAGE_NAMES,
                       LOCALES=LOCALES)


__all__ = ["_", "_l", "gettext", "ngettext", "lazy_gettext", "Markup", "LOCALES"]
