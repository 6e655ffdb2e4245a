"""``clientela.core.phones``: the fast path for international numbers gives exactly what
``phonenumbers.parse`` gives, and the cache answers as the first call did."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from clientela.core import phones, services
from clientela.core.errors import ValidationError

SEPARATORS = ["", "", "", " ", " ", "-", ".", " (", ") ", "  ", " - ", "(", ")"]


def _library(text: str, region: str | None = None) -> str | None:
    """What the import did before the fast path: phonenumbers alone."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _numbers(rng: random.Random, count: int):
    """International numbers of every calling code, of every length, with national
    prefixes and leading zeros, written with the punctuation people use."""
    codes = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
    for i in range(count):
        code = str(codes[i % len(codes)]) if rng.random() < 0.97 else str(rng.randint(0, 999))
        head = rng.choice(["", "0", "00", "1", "01", "06", "8", "80", "9", "7", "3"])
        body = head + "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 16)))
        text = "+" + code
        pos = 0
        while pos < len(body):
            step = rng.randint(1, 4)
            text += rng.choice(SEPARATORS) + body[pos:pos + step]
            pos += step
        yield text


def test_fast_path_is_on():
    assert phones.FAST_PATH
    assert phones._fast("+39 06 1234 5678") == "+390612345678"


def test_fast_path_matches_phonenumbers_for_every_calling_code():
    rng = random.Random(20261203)
    accepted = 0
    for text in _numbers(rng, 30_000):
        fast = phones._fast(text)
        if fast is not None:  # the fast path may decline; when it answers, it agrees
            accepted += 1
            assert fast == _library(text), text
        assert phones._slow(text, None) == _library(text), text
    assert accepted > 5_000  # it did take most well-formed numbers


@pytest.mark.parametrize("text", [
    "+39 06 1234 5678", "+390612345678", "+1 (415) 555-0100", "+44 (0)20 7946 0000",
    "+44 020 7946 0000", "+49 030 123456", "+7 8 495 123-45-67", "+39 333 123 4567",
    "+225 07 12 34 56 78", "+61 (02) 9876 5432", "+1.415.555.0100", "+52 55 1234 5678",
])
def test_fast_path_known_formats(text):
    assert phones._fast(text) == _library(text) is not None


@pytest.mark.parametrize("text", [
    "+1 415 555 0100 ext 12", "+1 415 555 0100 x12", "+44 20 7946 0000#", "+39 06/1234",
    "+999 123 456", "+0039 06 1234 5678", "+12", "+1 2", "+", "+ ()",
    "+39 06 1234 5678 9012 3456 7890", "+\uff13\uff19 06 1234 5678", "+39 O6 1234 5678",
])
def test_other_text_goes_to_phonenumbers(text):
    assert phones._fast(text) is None
    assert phones.to_e164(text) == _library(text)


@pytest.mark.parametrize("region", [None, "IT", "US", "GB", "it"])
def test_region_and_cache(region):
    phones.to_e164.cache_clear()
    for text in ("06 1234 5678", "+39 06 1234 5678", "(415) 555-0100", "020 7946 0000",
                 "not a number", "+1 415 555 0100 ext. 7"):
        first = phones.to_e164(text, region)
        assert first == _library(text, region)
        assert phones.to_e164(text, region) == first  # answered by the cache
    info = phones.to_e164.cache_info()
    assert info.hits >= 6
    # an answer for one region is not given for another
    assert phones.to_e164("06 1234 5678", "IT") == "+390612345678"
    assert phones.to_e164("06 1234 5678", None) is None


def test_cache_is_bounded():
    assert phones.to_e164.cache_info().maxsize == phones.CACHE_SIZE


def test_normalise_phone_keeps_its_answers_and_messages():
    assert services.normalise_phone("+39 06 1234 5678") == "+390612345678"
    assert services.normalise_phone("06 1234 5678", "IT") == "+390612345678"
    assert services.normalise_phone("  ") is None
    with pytest.raises(ValidationError) as exc:
        services.normalise_phone("12")
    assert exc.value.errors == {
        "phone": ["'12' is not a valid phone number (write it with its +country code)"]}
    with pytest.raises(ValidationError) as exc:
        services.normalise_phone("+1 555", "US", field="mobile")
    assert exc.value.errors == {"mobile": ["'+1 555' is not a valid phone number"]}
