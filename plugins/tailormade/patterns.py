"""Guards for the regular expressions of custom fields (``pattern``) against catastrophic
backtracking, the patterns being written by tenants and run on every write.

Python's ``re`` backtracks and cannot be interrupted, so a pattern such as ``(a+)+$``
checked against ``"aaaa…!"`` runs for minutes. At definition time :func:`problem` refuses
the shapes that make matching exponential — a repeated group that contains a variable
repetition (``(a+)+``, ``(\\w+\\s?)*``), whose width varies (``(aa|a)*``), or whose
alternatives can start with the same character (``(a|.)+``), three variable repetitions
in a row over the same characters (``\\d*\\d*\\d*x``: cubic), and backreferences — and
:data:`MAX_CHECKED_LENGTH` bounds the values a pattern is run on, which bounds what remains
(two such repetitions in a row are quadratic: about 20 ms on 1,000 characters).

The checks are conservative: some patterns that would be safe are refused as well (a
repeated group with a repetition inside, such as ``([a-z]+\\.)+``); the message says what
to change.
"""

from __future__ import annotations

import re
import re._constants as sre  # the parser's own names; stable since Python 3.11
import re._parser as sre_parse

#: the longest value a field with a pattern accepts (longer ones are refused unchecked)
MAX_CHECKED_LENGTH = 1000
_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", None))
_ANY = object()  # a first character that may be anything


def _first(items) -> set | object | None:
    """The characters a sequence can start with: a set, ``_ANY`` when unknown, or
    ``None`` for an empty sequence."""
    for op, av in items:
        if op == sre.LITERAL:
            return {av}
        if op == sre.IN:
            chars: set[int] = set()
            for kind, value in av:
                if kind == sre.LITERAL:
                    chars.add(value)
                elif kind == sre.RANGE and value[1] - value[0] < 256:
                    chars.update(range(value[0], value[1] + 1))
                else:
                    return _ANY
            return chars
        if op == sre.SUBPATTERN:
            return _first(av[-1])
        if op == sre.AT:
            continue  # ^, $, \b take no character
        return _ANY
    return None


def _overlapping(branches) -> bool:
    seen: set[int] = set()
    empty = False
    for branch in branches:
        first = _first(branch)
        if first is _ANY:
            return len(branches) > 1
        if first is None:
            if empty:
                return True
            empty = True
            continue
        if seen & first:
            return True
        seen |= first
    return False


_CATEGORY = {sre.CATEGORY_DIGIT: r"\d", sre.CATEGORY_WORD: r"\w", sre.CATEGORY_SPACE: r"\s"}
_CATEGORY_CHARS: dict = {}
_SCANNED = 0x3000  # code points compared; classes are assumed to overlap beyond


def _chars(op, av) -> frozenset | object:
    """The characters one item matches: a set of code points, or ``_ANY``."""
    if op == sre.LITERAL:
        return frozenset([av])
    if op != sre.IN:
        return _ANY
    chars: set[int] = set()
    for kind, value in av:
        if kind == sre.LITERAL:
            chars.add(value)
        elif kind == sre.RANGE and value[1] < _SCANNED:
            chars.update(range(value[0], value[1] + 1))
        elif kind == sre.CATEGORY and value in _CATEGORY:
            if value not in _CATEGORY_CHARS:
                test = re.compile(_CATEGORY[value])
                _CATEGORY_CHARS[value] = frozenset(
                    c for c in range(_SCANNED) if test.fullmatch(chr(c)))
            chars |= _CATEGORY_CHARS[value]
        else:
            return _ANY
    return frozenset(chars)


def _overlap(a, b) -> bool:
    return a is _ANY or b is _ANY or bool(a & b)


def _runs(items) -> str | None:
    r"""Three variable repetitions in a row that can match the same characters
    (``\d*\d*\d*x``) take cubic time or worse on a value they do not match."""
    previous, chain = None, 0
    for op, av in items:
        if op in _REPEATS and op is not None and av[0] != av[1]:
            body = list(av[2])
            chars = _chars(*body[0]) if len(body) == 1 else _ANY
            if previous is not None and _overlap(previous, chars):
                chain += 1
                if chain >= 2:
                    return "three repetitions in a row can match the same characters: it " \
                           "can take a very long time on a value that does not match"
            else:
                chain = 0
            previous = chars
        elif op == sre.AT:
            continue
        else:
            previous, chain = None, 0
    return None


def _walk(items, repeated: bool) -> str | None:
    found = _runs(items)
    if found:
        return found
    for op, av in items:
        if op == sre.GROUPREF or op == sre.GROUPREF_EXISTS:
            return "backreferences are not allowed"
        if op in _REPEATS and op is not None:
            low, high, body = av
            if repeated and low != high:
                return "a repetition inside a repeated group (such as (a+)+) can take " \
                       "exponential time: repeat the group or its content, not both"
            found = _walk(body, repeated or high > 1)
            if found:
                return found
            if high > 1 and len(set(body.getwidth())) > 1:
                return "a repeated group must match a fixed number of characters " \
                       "(such as (aa|a)* does not): it can take exponential time"
        elif op == sre.BRANCH:
            if repeated and _overlapping(av[1]):
                return "the alternatives of a repeated group must start with different " \
                       "characters: it can take exponential time otherwise"
            for branch in av[1]:
                found = _walk(branch, repeated)
                if found:
                    return found
        elif op == sre.SUBPATTERN:
            found = _walk(av[-1], repeated)
            if found:
                return found
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            found = _walk(av[1], repeated)
            if found:
                return found
        elif op == getattr(sre, "ATOMIC_GROUP", None):
            found = _walk(av, repeated)
            if found:
                return found
    return None


def problem(pattern: str) -> str | None:
    """Why ``pattern`` is refused (not a regular expression, or one that can backtrack
    catastrophically), or ``None`` if it is accepted."""
    try:
        re.compile(pattern)
        parsed = sre_parse.parse(pattern)
    except (re.error, OverflowError, RecursionError) as exc:
        return f"not a regular expression: {exc}"
    return _walk(parsed, False)


def matches(pattern: str, value: str) -> bool:
    """Whether the whole of ``value`` matches; values are bounded (see the module)."""
    return re.fullmatch(pattern, value) is not None
