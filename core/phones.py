"""Phone numbers to E.164, with a fast path for numbers already written internationally.

``phonenumbers.parse`` is lenient: it looks for a number inside any text, strips
extensions, maps every Unicode digit and letter, tries international dialling prefixes.
For text that is only ``+``, ASCII digits and spacing punctuation (``+39 06 1234 5678``,
``+1 (415) 555-0100``, ``+390612345678``) all of that ends in the same place: the digits
after the ``+``, split into a country calling code and a national number. ``to_e164``
goes there directly, then runs the same steps ``parse`` runs on those digits (national
prefix stripping, the length checks, Italian leading zeros), using the library's own
metadata and functions, and the same ``is_possible_number`` / ``format_number`` as the
slow path. Anything else, and any number the fast path does not accept, goes through
``phonenumbers.parse``: the fast path never refuses a number, it only declines it.

The results (an E.164 string, or ``None`` for a number that is not possible) are cached
per input text, so a number repeated across rows or imports is parsed once.

The test ``tests/test_phones.py`` compares the fast path with ``phonenumbers.parse`` on
numbers of every country calling code; if a future ``phonenumbers`` lacks the functions
used here, the fast path switches itself off (``FAST_PATH`` is ``False``).
"""

from __future__ import annotations

import functools
import re

import phonenumbers

try:  # the steps of phonenumbers.parse after the country calling code (not public API)
    from phonenumbers.phonenumberutil import (
        _MAX_LENGTH_COUNTRY_CODE,
        _MAX_LENGTH_FOR_NSN,
        _MIN_LENGTH_FOR_NSN,
        COUNTRY_CODE_TO_REGION_CODE,
        PhoneMetadata,
        ValidationResult,
        _maybe_strip_national_prefix_carrier_code,
        _set_italian_leading_zeros_for_phone_number,
        _test_number_length,
    )
except ImportError:  # pragma: no cover - depends on the installed phonenumbers
    FAST_PATH = False
else:
    FAST_PATH = True
    _KEEP_UNSTRIPPED = (ValidationResult.TOO_SHORT, ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
                        ValidationResult.INVALID_LENGTH)

#: ``+`` then only ASCII digits, spaces, hyphens, dots and parentheses: text in which
#: ``phonenumbers.parse`` finds no extension, no letters, no second number (one character
#: class, so that matching is linear whatever the text)
_INTERNATIONAL = re.compile(r"\+[0-9 \-.()]+")
_PUNCTUATION = str.maketrans("", "", " -.()")
_E164 = phonenumbers.PhoneNumberFormat.E164
CACHE_SIZE = 65_536

# phonenumbers compiles the metadata's patterns through re.compile, whose cache holds 512:
# numbers from many countries push them out and every parse compiles again (most of the
# time a parse took). Keep them (phonenumbers' own switch; the metadata bounds their count).
if hasattr(phonenumbers, "enable_pattern_cache"):
    phonenumbers.enable_pattern_cache()


#: country calling codes as text (``"39"``), to split them off without ``int()``
_COUNTRY_CODES = {str(code): code for code in COUNTRY_CODE_TO_REGION_CODE} if FAST_PATH else {}
_POSSIBLE = (ValidationResult.IS_POSSIBLE, ValidationResult.IS_POSSIBLE_LOCAL_ONLY) \
    if FAST_PATH else ()


@functools.lru_cache(maxsize=None)
def _metadata(country_code: int):
    region = phonenumbers.region_code_for_country_code(country_code)
    return PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)


def _fast(text: str) -> str | None:
    """``text`` (``+`` and digits, spaced) in E.164 if it is a possible number; ``None``
    when the slow path must decide (an unknown country code, an impossible number).

    The steps are those of ``phonenumbers.parse`` once its ``+`` is found, then of
    ``is_possible_number`` and ``format_number(..., E164)``, in that order.
    """
    if not _INTERNATIONAL.fullmatch(text):
        return None
    digits = text[1:].translate(_PUNCTUATION)
    if len(digits) <= _MIN_LENGTH_FOR_NSN or digits[0] == "0":
        return None
    for size in range(1, _MAX_LENGTH_COUNTRY_CODE + 1):  # as _extract_country_code does
        country_code = _COUNTRY_CODES.get(digits[:size])
        if country_code is not None:
            break
    else:
        return None
    national = digits[size:]
    if len(national) < _MIN_LENGTH_FOR_NSN:
        return None
    metadata = _metadata(country_code)
    if metadata is None:
        return None
    _, stripped, _ = _maybe_strip_national_prefix_carrier_code(national, metadata)
    if _test_number_length(stripped, metadata) not in _KEEP_UNSTRIPPED:
        national = stripped
    if not _MIN_LENGTH_FOR_NSN <= len(national) <= _MAX_LENGTH_FOR_NSN:
        return None
    number = phonenumbers.PhoneNumber(country_code=country_code,
                                      national_number=int(national))
    _set_italian_leading_zeros_for_phone_number(national, number)
    significant = phonenumbers.national_significant_number(number)
    # is_possible_number: the same length test, with the same metadata
    if _test_number_length(significant, metadata) not in _POSSIBLE:
        return None
    return f"+{country_code}{significant}"  # format_number(number, E164)


def _slow(text: str, region: str | None) -> str | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, _E164)


@functools.lru_cache(maxsize=CACHE_SIZE)
def to_e164(text: str, region: str | None = None) -> str | None:
    """``text`` as an E.164 number (``+390612345678``), or ``None`` if it is not a
    possible phone number; ``region`` (``"IT"``) reads numbers written nationally.

    The same answer as ``phonenumbers.parse`` + ``is_possible_number`` +
    ``format_number(E164)``, faster for text that starts with ``+``; cached.
    """
    if FAST_PATH and text[:1] == "+":
        found = _fast(text)
        if found is not None:
            return found
    return _slow(text, region)
