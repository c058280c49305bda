"""Valid and invalid events shared by the decoder tests and the JSON Schema agreement tests."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import orjson

TS = 1_795_255_200_000  # 2026-11-21T10:00:00Z

VALID: dict[str, list[dict[str, Any]]] = {
    "prediction": [
        {
            "model_id": "fraud",
            "model_version": "3",
            "prediction_id": "p-1",
            "timestamp": TS,
            "prediction": True,
        },
        {
            "model_id": "fraud.eu-west_1:v2@team+a",
            "model_version": "2026.11.21-rc1",
            "prediction_id": "9f1c2a7e-4b1d-4e0a-9a5c-0a1b2c3d4e5f",
            "timestamp": "2026-11-21T11:00:00.250+01:00",
            "prediction": "approve",
            "features": {
                "amount": 120.5,
                "count": 3,
                "country": "DE",
                "is_new": False,
                "missing": None,
                "weird name / with spaces": -1e300,
                "ünïcode": "日本",
            },
            "score": {"approve": 0.7, "reject": 0.3},
            "latency_ms": 12.25,
            "event_id": "e-1",
            "tags": {"country": "PT", "tier": "gold", "<img src=x onerror=alert(1)>": ""},
            "future_field_unknown_to_driftline": {"nested": [1, 2, {"x": None}]},
        },
        {
            "model_id": "price",
            "model_version": "1",
            "prediction_id": "x",
            "timestamp": TS,
            "prediction": 1234.5,
            "score": 0.0,
            "latency_ms": 0,
            "features": {},
        },
    ],
    "input": [
        {"model_id": "fraud", "timestamp": TS, "features": {"amount": 1}},
        {
            "model_id": "fraud",
            "timestamp": "2026-11-21T10:00:00Z",
            "features": {"a": None, "b": "x"},
            "model_version": "3",
            "prediction_id": "p-1",
            "event_id": "e",
        },
    ],
    "label": [
        {"model_id": "fraud", "prediction_id": "p-1", "timestamp": TS, "label": False},
        {
            "model_id": "price",
            "prediction_id": "p",
            "timestamp": TS,
            "label": 99.5,
            "event_id": "e",
        },
    ],
}


@dataclass(frozen=True)
class Bad:
    """An invalid event: how to make it from a valid one, and the error it must give."""

    name: str
    kind: str
    reason: str
    path: str
    detail: str  # the error's detail in full: driftline's own words, whatever the parser says
    change: dict[str, Any] | None = None  # top-level fields to set (None value: delete)
    raw: bytes | None = None  # the whole message, when it is not a JSON object
    in_json_schema: bool = True  # whether the published JSON Schema can express the rule

    def document(self) -> dict[str, Any]:
        doc = copy.deepcopy(VALID[self.kind][0])
        for key, value in (self.change or {}).items():
            if value is _DELETE:
                doc.pop(key, None)
            else:
                doc[key] = value
        return doc

    def payload(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return orjson.dumps(self.document(), option=orjson.OPT_SERIALIZE_NUMPY)


_DELETE = object()
_P = "prediction"


def _raw_prediction(fragment: str) -> bytes:
    """A prediction with one field spliced in as raw JSON text (for NaN, 1e999, ...)."""
    base = orjson.dumps(VALID[_P][0])[:-1]
    return base + b"," + fragment.encode() + b"}"


def _spliced_at(name: str) -> int:
    """Byte offset of the value of ``"name": value`` spliced in by :func:`_raw_prediction`."""
    return len(orjson.dumps(VALID[_P][0])) + len(f'"{name}": ')


# The words every dead letter uses, written out: they are driftline's contract with users.
_RANGE = "2000-01-01T00:00:00.000Z .. 2200-01-01T00:00:00.000Z"
_NOT_AN_ID = (
    "is not a valid id: letters, digits and . _ : @ + - only, starting with a letter or digit "
    "(^[A-Za-z0-9][A-Za-z0-9._:@+\\-]*$)"
)
_NO_NAN = "NaN and Infinity are not JSON; send finite numbers only"
_NOT_FINITE = "must be a finite number, got a number beyond the float range (±1.8e308)"
_NOT_RFC3339 = (
    "is not an RFC 3339 timestamp with an offset (e.g. 2026-11-21T10:00:00Z) nor epoch milliseconds"
)
_TIMESTAMP = "epoch milliseconds (an integer) or an RFC 3339 string"
_BIG = {"features": {"f": "x" * 1000}, "pad": "y" * (1 << 20)}
_BIG_SIZE = len(orjson.dumps({**VALID[_P][0], **_BIG}))

BAD: list[Bad] = [
    # missing required fields
    *[
        Bad(
            f"missing {f}",
            _P,
            "missing_field",
            f"$.{f}",
            f"required field {f!r} is missing",
            {f: _DELETE},
        )
        for f in ("model_id", "model_version", "prediction_id", "timestamp", "prediction")
    ],
    Bad(
        "input without features",
        "input",
        "missing_field",
        "$.features",
        "required field 'features' is missing",
        {"features": _DELETE},
    ),
    Bad(
        "label without label",
        "label",
        "missing_field",
        "$.label",
        "required field 'label' is missing",
        {"label": _DELETE},
    ),
    # wrong types
    Bad(
        "model_id a number",
        _P,
        "wrong_type",
        "$.model_id",
        "expected a string, got an integer (7)",
        {"model_id": 7},
    ),
    Bad(
        "version null",
        _P,
        "wrong_type",
        "$.model_version",
        "expected a string, got null",
        {"model_version": None},
    ),
    Bad(
        "prediction an array",
        _P,
        "wrong_type",
        "$.prediction",
        "expected a boolean, a number or a string, got an array",
        {"prediction": [1]},
    ),
    Bad(
        "prediction an object",
        _P,
        "wrong_type",
        "$.prediction",
        "expected a boolean, a number or a string, got an object",
        {"prediction": {}},
    ),
    Bad(
        "features an array",
        _P,
        "wrong_type",
        "$.features",
        "expected an object (feature name -> value) or null, got an array",
        {"features": [1]},
    ),
    Bad(
        "feature nested",
        _P,
        "wrong_type",
        "$.features.a",
        "expected null, a boolean, a number or a string, got an object",
        {"features": {"a": {}}},
    ),
    Bad(
        "timestamp a float",
        _P,
        "wrong_type",
        "$.timestamp",
        f"expected {_TIMESTAMP}, got a number (1795255200000.5)",
        {"timestamp": TS + 0.5},
    ),
    Bad(
        "timestamp a bool",
        _P,
        "wrong_type",
        "$.timestamp",
        f"expected {_TIMESTAMP}, got a boolean (true)",
        {"timestamp": True},
    ),
    Bad(
        "score a string",
        _P,
        "wrong_type",
        "$.score",
        "expected a probability (a number from 0 to 1) or an object (class -> probability) "
        'or null, got a string ("high")',
        {"score": "high"},
    ),
    Bad(
        "latency a string",
        _P,
        "wrong_type",
        "$.latency_ms",
        'expected a number or null, got a string ("3")',
        {"latency_ms": "3"},
    ),
    # not an event
    Bad(
        "an array of numbers",
        _P,
        "not_an_object",
        "$[0]",
        "expected an event object, got an integer (1)",
        raw=b"[1, 2]",
    ),
    Bad(
        "a string",
        _P,
        "not_an_object",
        "$",
        'expected an event object, got a string ("hello")',
        raw=b'"hello"',
    ),
    Bad("null", _P, "not_an_object", "$", "expected an event object, got null", raw=b"null"),
    Bad(
        "an empty array",
        _P,
        "not_an_object",
        "$",
        "empty array: expected at least one event",
        raw=b"[]",
        in_json_schema=False,
    ),
    # not JSON
    Bad("empty", _P, "invalid_json", "$", "the message is empty: no JSON in it", raw=b""),
    Bad(
        "truncated",
        _P,
        "invalid_json",
        "$",
        "truncated: the JSON text ends before it is complete",
        raw=orjson.dumps(VALID[_P][0])[:-5],
    ),
    Bad(
        "not UTF-8",
        _P,
        "invalid_json",
        "$",
        "not valid UTF-8 at byte 14 (0xff), in $.model_id",
        raw=b'{"model_id": "\xff\xfe"}',
    ),
    Bad(
        "garbage",
        _P,
        "invalid_json",
        "$",
        "not valid JSON at byte 0: unexpected U+0000",
        raw=b"\x00\x01binary",
    ),
    Bad(
        "NaN literal",
        _P,
        "invalid_json",
        "$",
        f"NaN at byte {_spliced_at('score')}: {_NO_NAN}",
        raw=_raw_prediction('"score": NaN'),
    ),
    Bad(
        "Infinity literal",
        _P,
        "invalid_json",
        "$",
        f"Infinity at byte {_spliced_at('latency_ms')}: {_NO_NAN}",
        raw=_raw_prediction('"latency_ms": Infinity'),
    ),
    Bad(
        "-Infinity literal",
        _P,
        "invalid_json",
        "$",
        f"-Infinity at byte {_spliced_at('latency_ms')}: {_NO_NAN}",
        raw=_raw_prediction('"latency_ms": -Infinity'),
    ),
    # non-finite numbers that are valid JSON text
    Bad(
        "1e999 prediction",
        _P,
        "invalid_value",
        "$.prediction",
        _NOT_FINITE,
        raw=_raw_prediction('"prediction": 1e999'),
    ),
    Bad(
        "1e999 feature",
        _P,
        "invalid_value",
        "$.features.x",
        _NOT_FINITE,
        raw=_raw_prediction('"features": {"ok": 1, "x": -1e999}'),
    ),
    Bad(
        "integer class beyond 64 bits",
        _P,
        "invalid_value",
        "$.prediction",
        "99999999999999999999999 is outside the 64-bit integer range "
        "-9223372036854775808 .. 9223372036854775807",
        raw=_raw_prediction('"prediction": 99999999999999999999999'),
    ),
    Bad(
        "feature of 400 digits",
        _P,
        "invalid_value",
        "$.features.x",
        _NOT_FINITE,
        raw=_raw_prediction('"features": {"x": ' + "9" * 400 + "}"),
    ),
    Bad(
        "feature of 5000 digits",
        _P,
        "invalid_value",
        "$.features.x",
        _NOT_FINITE,
        raw=_raw_prediction('"features": {"x": ' + "9" * 5000 + "}"),
    ),
    Bad(
        "class of 5000 digits",
        "label",
        "invalid_value",
        "$.label",
        "an integer of 5000 digits is outside the 64-bit integer range "
        "-9223372036854775808 .. 9223372036854775807",
        raw=b'{"model_id": "m", "prediction_id": "p", "timestamp": 1795255200000, "label": '
        + b"9" * 5000
        + b"}",
    ),
    # values out of range
    Bad(
        "timestamp in seconds",
        _P,
        "invalid_value",
        "$.timestamp",
        f"1795255200 is outside the accepted range {_RANGE}: epoch milliseconds expected "
        "(this looks like epoch seconds)",
        {"timestamp": TS // 1000},
    ),
    Bad(
        "timestamp negative",
        _P,
        "invalid_value",
        "$.timestamp",
        f"-1 is outside the accepted range {_RANGE}: epoch milliseconds expected",
        {"timestamp": -1},
    ),
    Bad(
        "timestamp far future",
        _P,
        "invalid_value",
        "$.timestamp",
        f"100000000000000 is outside the accepted range {_RANGE}: epoch milliseconds expected",
        {"timestamp": 10**14},
    ),
    Bad(
        "RFC 3339 without offset",
        _P,
        "invalid_value",
        "$.timestamp",
        '"2026-11-21T10:00:00" has no offset: add Z for UTC or ±hh:mm (e.g. 2026-11-21T10:00:00Z)',
        {"timestamp": "2026-11-21T10:00:00"},
    ),
    Bad(
        "timestamp not a date",
        _P,
        "invalid_value",
        "$.timestamp",
        f'"yesterday" {_NOT_RFC3339}',
        {"timestamp": "yesterday"},
    ),
    Bad(
        "RFC 3339 not a day",
        _P,
        "invalid_value",
        "$.timestamp",
        '"2026-02-29T10:00:00Z" is not a valid date and time of day',
        {"timestamp": "2026-02-29T10:00:00Z"},
        in_json_schema=False,  # the schema's date-time is a pattern: no calendar
    ),
    Bad(
        "RFC 3339 offset beyond a day",
        _P,
        "invalid_value",
        "$.timestamp",
        '"2026-11-21T10:00:00+24:00" has an offset that is not ±hh:mm '
        "(hours up to 23, minutes up to 59)",
        {"timestamp": "2026-11-21T10:00:00+24:00"},
        in_json_schema=False,
    ),
    Bad(
        "RFC 3339 out of range",
        _P,
        "invalid_value",
        "$.timestamp",
        f'"2300-01-01T00:00:00Z" is outside the accepted range {_RANGE}',
        {"timestamp": "2300-01-01T00:00:00Z"},
        in_json_schema=False,
    ),
    Bad(
        "score above 1",
        _P,
        "invalid_value",
        "$.score",
        "must be between 0 and 1, got 1.5",
        {"score": 1.5},
    ),
    Bad(
        "class probability below 0",
        _P,
        "invalid_value",
        "$.score.b",
        "must be between 0 and 1, got -0.1",
        {"score": {"a": 0.5, "b": -0.1}},
    ),
    Bad(
        "class probability null",
        _P,
        "wrong_type",
        "$.score.a",
        "expected a probability (a number from 0 to 1), got null",
        {"score": {"a": None}},
    ),
    Bad(
        "tag value a number",
        _P,
        "wrong_type",
        "$.tags.tier",
        "expected a string, got an integer (3)",
        {"tags": {"country": "PT", "tier": 3}},
    ),
    Bad(
        "tags a string",
        _P,
        "wrong_type",
        "$.tags",
        'expected an object (tag name -> string) or null, got a string ("PT")',
        {"tags": "PT"},
    ),
    Bad(
        "negative latency",
        _P,
        "invalid_value",
        "$.latency_ms",
        "must be 0 or more, got -1",
        {"latency_ms": -1},
    ),
    # id charset
    Bad(
        "model_id with a space",
        _P,
        "invalid_value",
        "$.model_id",
        f'"m 1" {_NOT_AN_ID}',
        {"model_id": "m 1"},
    ),
    Bad(
        "model_id with a newline",
        _P,
        "invalid_value",
        "$.model_id",
        f'"m1\\n" {_NOT_AN_ID}',
        {"model_id": "m1\n"},
    ),
    Bad(
        "model_id starting with a dot",
        _P,
        "invalid_value",
        "$.model_id",
        f'".m" {_NOT_AN_ID}',
        {"model_id": ".m"},
    ),
    Bad(
        "model_id with a slash",
        _P,
        "invalid_value",
        "$.model_id",
        f'"a/b" {_NOT_AN_ID}',
        {"model_id": "a/b"},
    ),
    Bad(
        "model_id non-ASCII",
        _P,
        "invalid_value",
        "$.model_id",
        f'"mod\\u00e8le" {_NOT_AN_ID}',
        {"model_id": "modèle"},
    ),
    Bad("model_id empty", _P, "invalid_value", "$.model_id", "must not be empty", {"model_id": ""}),
    Bad(
        "version with a quote",
        _P,
        "invalid_value",
        "$.model_version",
        f'"v\\"1" {_NOT_AN_ID}',
        {"model_version": 'v"1'},
    ),
    Bad(
        "prediction_id empty",
        _P,
        "invalid_value",
        "$.prediction_id",
        "must not be empty",
        {"prediction_id": ""},
    ),
    Bad(
        "feature name empty",
        _P,
        "invalid_value",
        '$.features[""]',
        "must not be empty",
        {"features": {"": 1}},
    ),
    Bad(
        "feature name with a control char",
        _P,
        "invalid_value",
        '$.features["a\\u0007"]',
        'name "a\\u0007" contains control characters',
        {"features": {"ok": 1, "a\x07": 1}},
    ),
    Bad(
        "class name with a newline",
        _P,
        "invalid_value",
        '$.score["a\\n"]',
        'name "a\\n" contains control characters',
        {"score": {"a\n": 1.0}},
    ),
    # lengths and counts (default limits)
    Bad(
        "model_id too long",
        _P,
        "too_long",
        "$.model_id",
        "string of 129 characters; at most 128 (max_id_length)",
        {"model_id": "m" * 129},
    ),
    Bad(
        "prediction_id too long",
        _P,
        "too_long",
        "$.prediction_id",
        "string of 257 characters; at most 256 (max_opaque_id_length)",
        {"prediction_id": "p" * 257},
    ),
    Bad(
        "string prediction too long",
        _P,
        "too_long",
        "$.prediction",
        "string of 1025 characters; at most 1024 (max_string_length)",
        {"prediction": "x" * 1025},
    ),
    Bad(
        "string feature too long",
        _P,
        "too_long",
        "$.features.f",
        "string of 1025 characters; at most 1024 (max_string_length)",
        {"features": {"f": "x" * 1025}},
    ),
    Bad(
        "feature name too long",
        _P,
        "too_long",
        "$.features." + "n" * 257,
        "string of 257 characters; at most 256 (max_name_length)",
        {"features": {"n" * 257: 1}},
    ),
    Bad(
        "too many features",
        _P,
        "too_many",
        "$.features",
        "1001 features; at most 1000 accepted (max_features)",
        {"features": {f"f{i}": i for i in range(1001)}},
    ),
    Bad(
        "tag value too long",
        _P,
        "too_long",
        "$.tags.t",
        "string of 1025 characters; at most 1024 (max_string_length)",
        {"tags": {"t": "x" * 1025}},
    ),
    Bad(
        "too many tags",
        _P,
        "too_many",
        "$.tags",
        "101 tags; at most 100 accepted (max_tags)",
        {"tags": {f"t{i}": "x" for i in range(101)}},
    ),
    Bad(
        "too many classes",
        _P,
        "too_many",
        "$.score",
        "1001 classes; at most 1000 accepted (max_classes)",
        {"score": {f"c{i}": 0.0 for i in range(1001)}},
    ),
    # limits the JSON Schema cannot state
    Bad(
        "nested 40 deep in an unknown field",
        _P,
        "too_deep",
        "$",
        "JSON nests more than 32 levels deep (max_depth)",
        {"extra": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]},
        in_json_schema=False,
    ),
    Bad(
        "nested 5000 deep",
        _P,
        "too_deep",
        "$",
        "JSON nests more than 32 levels deep (max_depth)",
        raw=b"[" * 5000 + b"]" * 5000,
        in_json_schema=False,
    ),
    Bad(
        "bigger than 1 MiB",
        _P,
        "too_large",
        "$",
        f"message is {_BIG_SIZE} bytes; at most 1048576 accepted (max_message_bytes)",
        _BIG,
        in_json_schema=False,
    ),
]
