"""Why an event breaks the contract, in driftline's own words.

msgspec decodes valid events fast (:class:`schemas.decoder.EventDecoder`). When it refuses one,
:class:`EventValidator` reads the message again, checks it against the contract in plain Python
and names the first fault it finds: a ``reason`` (one of ``schemas.REASONS``), a JSON ``path``
and a ``detail`` in words that do not change when the parser's do. The parser's own message
travels separately, as the error's ``cause``.

The validator runs on the error path only, so its cost never touches valid events. It must
agree with the fast path on what is accepted: a property test holds the two together
(``tests/unit/test_fuzz_decoder.py``). The rules, by concern:

* the JSON text: UTF-8 (only where the contract reads the text), complete, no NaN or Infinity,
  no unpaired UTF-16 surrogate escapes, nothing after the value, nesting within ``max_depth``;
* the event object: required fields, JSON types, unknown fields ignored, a repeated key judged
  on its last value;
* values: string lengths, counts, finite numbers, 64-bit integer classes, timestamps (epoch
  milliseconds, or RFC 3339 with an offset) within range, probabilities in [0, 1], latency >= 0,
  the id charset, names non-empty and free of control characters.

Examples
--------
>>> validator = EventValidator()
>>> label = b'"prediction_id": "p", "timestamp": 1795255200000, "label": 1'
>>> validator.problem("label", b'{"model_id": 7, ' + label + b"}")
Problem(reason='wrong_type', path='$.model_id', detail='expected a string, got an integer (7)')
>>> print(validator.problem("label", b'{"model_id": "m", ' + label[:-12]).detail)
truncated: the JSON text ends before it is complete
>>> print(validator.problem("label", b'{"model_id": "m", "score": 1.5, ' + label + b"}"))
None
>>> validator.problem("prediction", b'{"score": 1.5}').detail  # the first fault found
'must be between 0 and 1, got 1.5'
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import math
import re
import sys
from collections.abc import Callable
from typing import Any, Final, NamedTuple

from schemas.events import EventKind, event_types, ms_to_rfc3339, rfc3339_to_ms
from schemas.limits import ID_PATTERN, Limits

__all__ = [
    "EventValidator",
    "Problem",
    "child_path",
    "id_problem",
    "name_problem",
    "rfc3339_ms",
    "too_deep",
]


class Problem(NamedTuple):
    """One fault: ``reason`` (one of ``schemas.REASONS``), JSON ``path``, ``detail`` in words."""

    reason: str
    path: str
    detail: str


_ID = re.compile(ID_PATTERN)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WHITESPACE: Final = " \t\n\r"  # JSON's four
_MAX_FLOAT: Final = sys.float_info.max
_INT64: Final = (-(2**63), 2**63 - 1)
# A JSON string token; valid JSON has no quote or backslash outside them.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|.)", re.DOTALL)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_NON_FINITE = re.compile(r"-?(?:NaN|Infinity)")
_STRING_OR_NON_FINITE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|(-?(?:NaN|Infinity))', re.DOTALL)
# Bytes that are not UTF-8 are read as lone surrogates U+DC80..U+DCFF ("surrogateescape"): the
# contract refuses them only where it reads the text, as the parser does.
_RAW_BYTE = re.compile("[\udc80-\udcff]")
# What a JSON text can end with when it was cut off inside a literal or a number.
_CUT_LITERAL = re.compile(r"t(?:r(?:u)?)?|f(?:a(?:l(?:s)?)?)?|n(?:u(?:l)?)?|-")
_CUT_NUMBER = re.compile(r"\.|[eE][-+]?")
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?(.*)",
    re.DOTALL,
)
_OFFSET = re.compile(r"([+-])([0-9]{2}):?([0-9]{2})")
_EXAMPLE_TIME: Final = "2026-11-21T10:00:00Z"
_FLOAT_RANGE: Final = "beyond the float range (±1.8e308)"
_NON_FINITE_HINT: Final = "NaN and Infinity are not JSON; send finite numbers only"


def id_problem(value: str, path: str) -> Problem | None:
    """The fault of a ``model_id`` / ``model_version`` outside the id charset, if any.

    >>> id_problem("m 1", "$.model_id").detail[:30]
    '"m 1" is not a valid id: lette'
    """
    if _ID.fullmatch(value):
        return None
    return Problem(
        "invalid_value",
        path,
        f"{_show(value)} is not a valid id: letters, digits and . _ : @ + - only, "
        f"starting with a letter or digit ({ID_PATTERN})",
    )


def name_problem(name: str, parent: str) -> Problem | None:
    """The fault of a feature or class name holding control characters, if any."""
    if not _CONTROL.search(name):
        return None
    return Problem(
        "invalid_value", child_path(parent, name), f"name {_show(name)} contains control characters"
    )


def too_deep(limits: Limits) -> Problem:
    """The fault of a message nesting deeper than ``max_depth``."""
    return Problem(
        "too_deep", "$", f"JSON nests more than {limits.max_depth} levels deep (max_depth)"
    )


def child_path(parent: str, key: str) -> str:
    """JSON path of ``key`` in the object at ``parent``: ``$.a.b``, or ``$.a["b c"]``.

    >>> child_path("$.features", "age"), child_path("$.features", "a\\u0007")
    ('$.features.age', '$.features["a\\\\u0007"]')
    """
    if _IDENTIFIER.fullmatch(key):
        return f"{parent}.{key}"
    return f"{parent}[{json.dumps(key)}]"


class _NotJSON(Exception):
    """A NaN or Infinity literal: Python's parser reads them, JSON does not have them."""


def _refuse_constant(name: str) -> Any:
    raise _NotJSON(name)


class _HugeInt(int):
    """An integer literal too long for Python to convert: kept as its sign, beyond any range."""

    digits: int


def _read_int(text: str) -> int:
    if len(text) < 4000:  # Python converts at most 4300 digits
        return int(text)
    huge = _HugeInt(-(2**64) if text.startswith("-") else 2**64)
    huge.digits = len(text.lstrip("-"))
    return huge


# The standard library's parser: it keeps integers exact and reads 1e999 as inf, so an offending
# value can be shown; ``strict`` refuses raw control characters in strings, as JSON does.
_JSON = json.JSONDecoder(parse_int=_read_int, parse_constant=_refuse_constant, strict=True)


class _Wrong:
    """A value of the wrong JSON type (the rule's caller says what was expected)."""


_WRONG: Final = _Wrong()
_Check = Callable[[Any, str], "Problem | _Wrong | None"]


class _Rule(NamedTuple):
    check: _Check
    expected: str  # the JSON types the field takes, in words
    nullable: bool


class EventValidator:
    """Check input events against the contract and say what is wrong, in driftline's words.

    Parameters
    ----------
    limits
        The bounds to check against (the decoder's).

    Notes
    -----
    The size of a message (``max_message_bytes``) is the decoder's to check, before anything
    reads the message. Everything else the decoder enforces is checked here as well.
    """

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        rules = self._field_rules()
        self._rules: dict[str, dict[str, _Rule]] = {}
        self._required: dict[str, tuple[str, ...]] = {}
        for kind, struct in event_types(self.limits).items():
            names = struct.__struct_fields__
            optional = names[len(names) - len(struct.__struct_defaults__) :]
            self._rules[kind] = {
                name: _Rule(*rules[name], nullable=name in optional) for name in names
            }
            self._required[kind] = tuple(n for n in names if n not in optional)

    # -- the public checks ----------------------------------------------------------------

    def problem(self, kind: EventKind, payload: bytes, depth_used: int = 0) -> Problem | None:
        """The first fault of a message holding one event, or None if it meets the contract.

        ``depth_used`` is the nesting already spent around it (1 for an element of an array).
        """
        document, fault, text = self._read(payload)
        if fault is not None:
            return fault
        allowed = self.limits.max_depth - depth_used
        if _depth(document, allowed) > allowed:
            return too_deep(self.limits)
        return self.document_problem(kind, document, text)

    def json_problem(self, payload: bytes) -> Problem | None:
        """The first fault of a message as JSON text, or None if it is JSON."""
        return self._read(payload)[1]

    def document_problem(
        self, kind: EventKind, document: Any, text: str | None = None
    ) -> Problem | None:
        """The first fault of an event already read from JSON (``text``: the JSON it was read
        from, to say at which byte a string is not UTF-8)."""
        if not isinstance(document, dict):
            return Problem(
                "not_an_object", "$", f"expected an event object, got {_describe(document)}"
            )
        rules = self._rules[kind]
        broken = _undecodable_text(document, rules)
        if broken is not None:
            return _not_utf8(text, *broken)
        for name, value in document.items():
            rule = rules.get(name)
            if rule is None or (value is None and rule.nullable):
                continue  # unknown fields are ignored
            path = "$." + name
            fault = rule.check(value, path)
            if fault is _WRONG:
                expected = rule.expected + (" or null" if rule.nullable else "")
                return Problem("wrong_type", path, f"expected {expected}, got {_describe(value)}")
            if fault is not None:
                return fault  # type: ignore[return-value]
        for name in self._required[kind]:
            if name not in document:
                return Problem("missing_field", "$." + name, f"required field {name!r} is missing")
        return None

    # -- the JSON text ----------------------------------------------------------------------

    def _read(self, payload: bytes) -> tuple[Any, Problem | None, str]:
        text = payload.decode("utf-8", "surrogateescape")
        start = len(text) - len(text.lstrip(_WHITESPACE))
        if start == len(text):
            return None, Problem("invalid_json", "$", "the message is empty: no JSON in it"), text
        try:
            document, end = _JSON.raw_decode(text, start)
        except _NotJSON:
            return None, _non_finite(text), text
        except json.JSONDecodeError as error:
            return None, _syntax_problem(text, error.pos), text
        except RecursionError:
            return None, too_deep(self.limits), text
        after = len(text) - len(text[end:].lstrip(_WHITESPACE))
        if after < len(text):
            return None, _syntax_problem(text, after, after_value=True), text
        at = _unpaired_surrogate(text) if _SURROGATE_ESCAPE.search(text) else None
        if at is not None:
            return None, _surrogate_problem(text, at), text
        return document, None, text

    # -- the fields -------------------------------------------------------------------------

    def _field_rules(self) -> dict[str, tuple[_Check, str]]:
        """Each field's check and the JSON types it takes, in words (a field means the same in
        every event that has it)."""
        ids = (self._id, "a string")
        opaque_ids = (self._opaque_id, "a string")
        outcome = (self._outcome, "a boolean, a number or a string")
        return {
            "model_id": ids,
            "model_version": ids,
            "prediction_id": opaque_ids,
            "event_id": opaque_ids,
            "timestamp": (
                self._timestamp,
                "epoch milliseconds (an integer) or an RFC 3339 string",
            ),
            "prediction": outcome,
            "label": outcome,
            "features": (self._features, "an object (feature name -> value)"),
            "score": (
                self._score,
                "a probability (a number from 0 to 1) or an object (class -> probability)",
            ),
            "latency_ms": (self._latency, "a number"),
            "tags": (self._tags, "an object (tag name -> string)"),
        }

    def _string(
        self, value: Any, path: str, limit: int, setting: str, non_empty: bool
    ) -> Problem | _Wrong | None:
        if type(value) is not str:
            return _WRONG
        if non_empty and not value:
            return Problem("invalid_value", path, "must not be empty")
        if len(value) > limit:
            return Problem(
                "too_long", path, f"string of {len(value)} characters; at most {limit} ({setting})"
            )
        return None

    def _id(self, value: Any, path: str) -> Problem | _Wrong | None:
        fault = self._string(value, path, self.limits.max_id_length, "max_id_length", True)
        return fault if fault is not None else id_problem(value, path)

    def _opaque_id(self, value: Any, path: str) -> Problem | _Wrong | None:
        limit = self.limits.max_opaque_id_length
        return self._string(value, path, limit, "max_opaque_id_length", True)

    def _text(self, value: Any, path: str) -> Problem | _Wrong | None:
        limit = self.limits.max_string_length
        return self._string(value, path, limit, "max_string_length", False)

    def _name(self, name: str, parent: str) -> Problem | None:
        path = child_path(parent, name)
        fault = self._string(name, path, self.limits.max_name_length, "max_name_length", True)
        return fault if fault is not None else name_problem(name, parent)  # type: ignore[return-value]

    def _timestamp(self, value: Any, path: str) -> Problem | _Wrong | None:
        limits = self.limits
        window = (
            f"{ms_to_rfc3339(limits.min_timestamp_ms)} .. {ms_to_rfc3339(limits.max_timestamp_ms)}"
        )
        if type(value) is str:
            ms = rfc3339_ms(value)
            if isinstance(ms, str):
                return Problem("invalid_value", path, f"{_show(value)} {ms}")
            if not limits.min_timestamp_ms <= ms <= limits.max_timestamp_ms:
                return Problem(
                    "invalid_value", path, f"{_show(value)} is outside the accepted range {window}"
                )
            return None
        if not _is_int(value):
            return _WRONG
        if limits.min_timestamp_ms <= value <= limits.max_timestamp_ms:
            return None
        hint = " (this looks like epoch seconds)" if 0 < value < 10**11 else ""
        return Problem(
            "invalid_value",
            path,
            f"{_show_int(value)} is outside the accepted range {window}: "
            f"epoch milliseconds expected{hint}",
        )

    def _outcome(self, value: Any, path: str) -> Problem | _Wrong | None:
        if type(value) is bool:
            return None
        if _is_int(value):
            low, high = _INT64
            if low <= value <= high:
                return None
            return Problem(
                "invalid_value",
                path,
                f"{_show_int(value)} is outside the 64-bit integer range {low} .. {high}",
            )
        if type(value) is float:
            return _finite(value, path)
        return self._text(value, path)

    def _number(self, value: Any, path: str) -> Problem | _Wrong | float:
        """A JSON number as the float the event will hold, or what is wrong with it."""
        if type(value) is float:
            return _finite(value, path) or value
        if not _is_int(value):
            return _WRONG
        if isinstance(value, _HugeInt) or abs(value) > _MAX_FLOAT:
            return Problem(
                "invalid_value", path, f"must be a finite number, got a number {_FLOAT_RANGE}"
            )
        return float(value)

    def _features(self, value: Any, path: str) -> Problem | _Wrong | None:
        if type(value) is not dict:
            return _WRONG
        limit = self.limits.max_features
        if len(value) > limit:
            return Problem(
                "too_many", path, f"{len(value)} features; at most {limit} accepted (max_features)"
            )
        for name, feature in value.items():
            fault = self._name(name, path)
            if fault is not None:
                return fault
            if feature is None or type(feature) is bool:
                continue
            where = child_path(path, name)
            if type(feature) is str:
                fault = self._text(feature, where)  # type: ignore[assignment]
            else:
                checked = self._number(feature, where)
                if checked is _WRONG:
                    return Problem(
                        "wrong_type",
                        where,
                        f"expected null, a boolean, a number or a string, got {_describe(feature)}",
                    )
                fault = checked if isinstance(checked, Problem) else None
            if fault is not None:
                return fault
        return None

    def _probability(self, value: Any, path: str) -> Problem | _Wrong | None:
        checked = self._number(value, path)
        if isinstance(checked, float):
            if 0.0 <= checked <= 1.0:
                return None
            return Problem("invalid_value", path, f"must be between 0 and 1, got {_show(value)}")
        if _is_int(value):  # an integer beyond the float range
            return Problem(
                "invalid_value", path, f"must be between 0 and 1, got {_show_int(value)}"
            )
        return checked

    def _score(self, value: Any, path: str) -> Problem | _Wrong | None:
        if type(value) is not dict:
            return self._probability(value, path)
        limit = self.limits.max_classes
        if len(value) > limit:
            return Problem(
                "too_many", path, f"{len(value)} classes; at most {limit} accepted (max_classes)"
            )
        for name, probability in value.items():
            fault = self._name(name, path)
            if fault is not None:
                return fault
            where = child_path(path, name)
            checked = self._probability(probability, where)
            if checked is _WRONG:
                return Problem(
                    "wrong_type",
                    where,
                    f"expected a probability (a number from 0 to 1), got {_describe(probability)}",
                )
            if checked is not None:
                return checked
        return None

    def _tags(self, value: Any, path: str) -> Problem | _Wrong | None:
        if type(value) is not dict:
            return _WRONG
        limit = self.limits.max_tags
        if len(value) > limit:
            return Problem(
                "too_many", path, f"{len(value)} tags; at most {limit} accepted (max_tags)"
            )
        for name, tag in value.items():
            fault = self._name(name, path)
            if fault is not None:
                return fault
            where = child_path(path, name)
            checked = self._text(tag, where)
            if checked is _WRONG:
                return Problem("wrong_type", where, f"expected a string, got {_describe(tag)}")
            if checked is not None:
                return checked
        return None

    def _latency(self, value: Any, path: str) -> Problem | _Wrong | None:
        checked = self._number(value, path)
        if not isinstance(checked, float):
            return checked
        if checked >= 0.0:
            return None
        return Problem("invalid_value", path, f"must be 0 or more, got {_show(value)}")


# -- helpers --------------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and type(value) is not bool


def _finite(value: float, path: str) -> Problem | None:
    if math.isfinite(value):
        return None
    return Problem("invalid_value", path, f"must be a finite number, got a number {_FLOAT_RANGE}")


def rfc3339_ms(text: str) -> int | str:
    """Epoch milliseconds of an RFC 3339 timestamp, read by msgspec's rules, or what is wrong.

    Date and time as ``YYYY-MM-DD``, ``T``, ``t`` or a space, ``hh:mm:ss``; any number of
    fraction digits, rounded half up to microseconds; ``Z``, ``z`` or ``±hh:mm`` (``±hhmm``).
    """
    match = _RFC3339.fullmatch(text)
    if match is None:
        return (
            f"is not an RFC 3339 timestamp with an offset (e.g. {_EXAMPLE_TIME}) "
            "nor epoch milliseconds"
        )
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction, zone = match.group(7) or "", match.group(8)
    offset = 0
    if zone and zone not in ("Z", "z"):
        parts = _OFFSET.fullmatch(zone)
        if parts is None or int(parts.group(2)) > 23 or int(parts.group(3)) > 59:
            return "has an offset that is not ±hh:mm (hours up to 23, minutes up to 59)"
        offset = int(parts.group(2)) * 60 + int(parts.group(3))
        offset = -offset if parts.group(1) == "-" else offset
    if not (
        year != 0
        and 1 <= month <= 12
        and 1 <= day <= calendar.monthrange(year, month)[1]
        and hour <= 23
        and minute <= 59
        and second <= 59
    ):
        return "is not a valid date and time of day"
    if not zone:
        return f"has no offset: add Z for UTC or ±hh:mm (e.g. {_EXAMPLE_TIME})"
    zone_info = dt.timezone(dt.timedelta(minutes=offset))
    micros = int(fraction[:6].ljust(6, "0"))
    value = dt.datetime(year, month, day, hour, minute, second, micros, tzinfo=zone_info)
    if len(fraction) > 6 and fraction[6] >= "5":
        try:
            value += dt.timedelta(microseconds=1)
        except OverflowError:
            return "is not a valid date and time of day"
    return rfc3339_to_ms(value)


def _depth(document: Any, limit: int) -> int:
    """Nesting depth of a document (a scalar is 0), counting no further than ``limit + 1``."""
    depth = 0
    level = [document]
    while depth <= limit:
        inner: list[Any] = []
        nested = False
        for node in level:
            if type(node) is dict:
                nested = True
                inner.extend(node.values())
            elif type(node) is list:
                nested = True
                inner.extend(node)
        if not nested:
            break
        depth += 1
        level = inner
    return depth


def _undecodable_text(document: dict[str, Any], rules: dict[str, _Rule]) -> tuple[str, str] | None:
    """The first string the contract reads that holds bytes that are not UTF-8: (path, text).

    Strings of unknown fields are not read (so not refused), as the parser skips them.
    """
    for name, value in document.items():
        if name not in rules:
            continue
        path = "$." + name
        if type(value) is str and _RAW_BYTE.search(value):
            return path, value
        if type(value) is dict:
            for key, inner in value.items():
                if _RAW_BYTE.search(key):
                    return child_path(path, key), key
                if type(inner) is str and _RAW_BYTE.search(inner):
                    return child_path(path, key), inner
    return None


def _not_utf8(text: str | None, path: str, value: str) -> Problem:
    raw = _RAW_BYTE.search(value)
    byte = ord(raw.group()) - 0xDC00 if raw else 0
    where = ""
    if text is not None:
        where = f" at byte {_offset(text, _raw_byte_position(text, value))}"
    return Problem("invalid_json", "$", f"not valid UTF-8{where} (0x{byte:02x}), in {path}")


def _raw_byte_position(text: str, value: str) -> int:
    """Where in ``text`` the first byte that is not UTF-8 of the string ``value`` sits."""
    for token in _STRING.finditer(text):
        raw = token.group()
        hit = _RAW_BYTE.search(raw)
        if hit is not None and json.loads(raw) == value:
            return token.start() + hit.start()
    first = _RAW_BYTE.search(text)
    return first.start() if first else 0


def _offset(text: str, position: int) -> int:
    """Byte offset in the message of the character at ``position`` of its text."""
    return len(text[:position].encode("utf-8", "surrogateescape"))


def _non_finite(text: str) -> Problem:
    for match in _STRING_OR_NON_FINITE.finditer(text):
        if match.group(1):
            literal = match.group(1)
            return Problem(
                "invalid_json",
                "$",
                f"{literal} at byte {_offset(text, match.start())}: {_NON_FINITE_HINT}",
            )
    return Problem("invalid_json", "$", _NON_FINITE_HINT)


def _syntax_problem(text: str, position: int, after_value: bool = False) -> Problem:
    """Name what is wrong where the JSON text stops being JSON."""
    at = _offset(text, position)
    rest = text[position:].rstrip(_WHITESPACE)
    char = rest[:1]
    if char and _RAW_BYTE.match(char):
        byte = ord(char) - 0xDC00
        return Problem("invalid_json", "$", f"not valid UTF-8 at byte {at} (0x{byte:02x})")
    if position == 0 and char == "\ufeff":
        return Problem(
            "invalid_json", "$", "starts with a byte order mark (U+FEFF): send JSON without one"
        )
    literal = _NON_FINITE.match(rest)
    if literal is not None:
        return Problem("invalid_json", "$", f"{literal.group()} at byte {at}: {_NON_FINITE_HINT}")
    if after_value:
        return Problem(
            "invalid_json", "$", f"unexpected {_char(char)} after the JSON value at byte {at}"
        )
    if _cut_short(text, position, rest):
        return Problem("invalid_json", "$", "truncated: the JSON text ends before it is complete")
    return Problem("invalid_json", "$", f"not valid JSON at byte {at}: unexpected {_char(char)}")


def _cut_short(text: str, position: int, rest: str) -> bool:
    """Whether the text ends inside the value being read at ``position`` (it was truncated)."""
    if not rest:
        return True
    if rest[0] == '"':
        return _STRING.match(rest) is None  # a string that never closes
    if _CUT_LITERAL.fullmatch(rest):
        return True
    return bool(_CUT_NUMBER.fullmatch(rest)) and text[position - 1 : position] in "0123456789"


def _char(char: str) -> str:
    if " " < char < "\x7f":
        return repr(char)
    return f"U+{ord(char):04X}"


def _surrogate_problem(text: str, at: int) -> Problem:
    return Problem(
        "invalid_json",
        "$",
        f"unpaired UTF-16 surrogate {text[at : at + 6]} at byte {_offset(text, at)}: "
        "JSON strings must be valid Unicode",
    )


def _unpaired_surrogate(text: str) -> int | None:
    """Position of the first ``\\uD800``-``\\uDFFF`` escape that is not half of a pair."""
    for token in _STRING.finditer(text):
        raw = token.group()
        if "\\u" not in raw:
            continue
        high: tuple[int, int] | None = None  # (start, end) of a high surrogate awaiting its pair
        for escape in _ESCAPE.finditer(raw):
            code = int(escape.group(1), 16) if escape.group(1) else -1
            if high is not None:
                if 0xDC00 <= code <= 0xDFFF and escape.start() == high[1]:
                    high = None
                    continue
                return token.start() + high[0]
            if 0xD800 <= code <= 0xDBFF:
                high = (escape.start(), escape.end())
            elif 0xDC00 <= code <= 0xDFFF:
                return token.start() + escape.start()
        if high is not None:
            return token.start() + high[0]
    return None


def _describe(value: Any) -> str:
    """A value's JSON type in words, with the value itself where it is short."""
    if value is None:
        return "null"
    if type(value) is bool:
        return f"a boolean ({'true' if value else 'false'})"
    if _is_int(value):
        return f"an integer ({_show_int(value)})"
    if type(value) is float:
        return f"a number ({_show(value)})"
    if type(value) is str:
        return f"a string ({_show(value)})"
    if type(value) is list:
        return "an array"
    return "an object"


def _show_int(value: int) -> str:
    digits = value.digits if isinstance(value, _HugeInt) else len(str(abs(value)))
    if digits > 40:
        return f"an integer of {digits} digits"
    return str(value)


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=True, allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
