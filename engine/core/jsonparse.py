"""The one JSON parser for bodies from outside: strict RFC 8259 JSON, within limits.

Python's `json.loads` is lax where a server must not be: it takes `NaN`, `Infinity` and `-Infinity`
(not JSON; one of them in a stored alert broke every screen's socket), turns `1e400` into an infinite
float, recurses once per `[` (100,000 of them raised RecursionError, a 500), and leaves a 400-digit
integer to fail later in storage. `loads` refuses all of that with a `JSONBodyError` that says where:

- `NaN`, `Infinity`, `-Infinity`, and numbers too large for a finite float (`1e400`);
- integers of more than `MAX_INT_DIGITS` digits (far below Python's 4,300-digit conversion limit);
- nesting deeper than `MAX_DEPTH` arrays/objects, checked before parsing (so the parser never recurses far);
- bytes that are not UTF-8.

It is the ingest route's parser and the Flask app's JSON provider (`StrictJSONProvider`), so every
`request.get_json()` is strict too. Serializing is not done here.
"""
from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

from flask.json.provider import DefaultJSONProvider

MAX_DEPTH = 64  # arrays/objects inside each other; a batch and its event take 2, the payload has the rest
MAX_INT_DIGITS = 20  # every signed and unsigned 64-bit integer fits; validation then applies the 64-bit range

# A string literal (possessive, so an unterminated one cannot backtrack), and the brackets outside strings.
_STRING = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.S)
_BRACKET = re.compile(r"[\[\]{}]")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
# Outside strings, the only numbers that can be infinite or over MAX_INT_DIGITS: a run of more than
# MAX_INT_DIGITS digits (309 are needed to pass 1.8e308 without an exponent) or a 3-digit exponent.
# (Two searches: one with an alternation measured slower than both together.)
_LONG_DIGITS = re.compile(r"[0-9]{%d}" % (MAX_INT_DIGITS + 1))
_BIG_EXPONENT = re.compile(r"[eE][+-]?[0-9]{3}")


class JSONBodyError(ValueError):
    """A body that is not strict JSON or breaks a limit; `path` is where, e.g. ``(0, "payload", "temp_c")``."""

    def __init__(self, message: str, path: tuple[int | str, ...] = ()):
        self.message = message
        self.path = path
        super().__init__(f"{format_path(path)}: {message}" if path else message)


def format_path(path: tuple[int | str, ...]) -> str:
    """``(0, "payload", "temp_c")`` → ``[0].payload.temp_c``; ``("payload", "x")`` → ``payload.x``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Refused:
    """Stands in for a value the parser refuses, so that the walk afterwards can say where it was."""

    __slots__ = ("message",)

    def __init__(self, message: str):
        self.message = message


def _outside_strings(text: str) -> str:
    return _STRING.sub('""', text)


def nesting_depth(text: str) -> int:
    """How deep arrays and objects nest in `text` (exact for valid JSON; brackets in strings do not count)."""
    return _depth(_outside_strings(text))


def _depth(bare: str) -> int:
    steps = map(_STEP.__getitem__, _BRACKET.findall(bare))
    return max(accumulate(steps), default=0)


def loads(data: str | bytes | bytearray) -> Any:
    """Parse one JSON document strictly (see the module's doc), or raise `JSONBodyError`."""
    if isinstance(data, (bytes, bytearray)):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONBodyError(f"not UTF-8 text (byte {exc.start})") from None
    else:
        text = data
    bare = _outside_strings(text)
    depth = _depth(bare)
    if depth > MAX_DEPTH:
        raise JSONBodyError(f"arrays and objects nest {depth} deep; at most {MAX_DEPTH} allowed")
    refused: list[_Refused] = []

    def refuse(message: str) -> _Refused:
        mark = _Refused(message)
        refused.append(mark)
        return mark

    def constant(name: str) -> _Refused:
        return refuse(f"{name} is not a JSON number; send a finite number or null")

    def number(text: str) -> float | _Refused:
        value = float(text)
        return value if math.isfinite(value) else refuse(f"{text[:40]} is too large for a finite number")

    def integer(text: str) -> int | _Refused:
        digits = len(text) - text.startswith("-")
        if digits > MAX_INT_DIGITS:
            return refuse(f"an integer of {digits} digits; at most {MAX_INT_DIGITS} allowed")
        return int(text)

    # Number hooks cost a Python call per number: only when some number could break a limit.
    hooks = {"parse_float": number, "parse_int": integer} if _LONG_DIGITS.search(bare) or _BIG_EXPONENT.search(bare) else {}
    try:
        value = json.loads(text, parse_constant=constant, **hooks)
    except json.JSONDecodeError as exc:
        raise JSONBodyError(f"malformed JSON: {exc}") from None
    except RecursionError:  # not reached under MAX_DEPTH; kept so that no input can make a 500 here
        raise JSONBodyError(f"arrays and objects nest too deep; at most {MAX_DEPTH} allowed") from None
    if refused:
        path, mark = _first_refused(value, ())
        raise JSONBodyError(mark.message, path)
    return value


def _first_refused(value: Any, path: tuple[int | str, ...]) -> tuple[tuple[int | str, ...], _Refused] | None:
    """The path of the first refused value, in document order (nesting is bounded by MAX_DEPTH here)."""
    if isinstance(value, _Refused):
        return path, value
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        found = _first_refused(child, (*path, key))
        if found:
            return found
    return None


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider with `loads` = the strict parser above (so `request.get_json()` is strict).

    A failed parse raises `JSONBodyError`, a ValueError: Flask answers 400, or `get_json(silent=True)` gives None.
    """

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s)
