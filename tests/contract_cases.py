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
    detail: str = ""  # a substring the error message must contain
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


BAD: list[Bad] = [
    # missing required fields
    *[
        Bad(f"missing {f}", _P, "missing_field", f"$.{f}", f"{f!r} is missing", {f: _DELETE})
        for f in ("model_id", "model_version", "prediction_id", "timestamp", "prediction")
    ],
    Bad(
        "input without features",
        "input",
        "missing_field",
        "$.features",
        change={"features": _DELETE},
    ),
    Bad("label without label", "label", "missing_field", "$.label", change={"label": _DELETE}),
    # wrong types
    Bad("model_id a number", _P, "wrong_type", "$.model_id", "`str`, got `int`", {"model_id": 7}),
    Bad("version null", _P, "wrong_type", "$.model_version", "got `null`", {"model_version": None}),
    Bad(
        "prediction an array", _P, "wrong_type", "$.prediction", "got `array`", {"prediction": [1]}
    ),
    Bad(
        "prediction an object", _P, "wrong_type", "$.prediction", "got `object`", {"prediction": {}}
    ),
    Bad("features an array", _P, "wrong_type", "$.features", "got `array`", {"features": [1]}),
    Bad(
        "feature nested", _P, "wrong_type", "$.features.a", "got `object`", {"features": {"a": {}}}
    ),
    Bad(
        "timestamp a float", _P, "wrong_type", "$.timestamp", "got `float`", {"timestamp": TS + 0.5}
    ),
    Bad("timestamp a bool", _P, "wrong_type", "$.timestamp", "got `bool`", {"timestamp": True}),
    Bad("score a string", _P, "wrong_type", "$.score", "got `str`", {"score": "high"}),
    Bad("latency a string", _P, "wrong_type", "$.latency_ms", "got `str`", {"latency_ms": "3"}),
    # not an event
    Bad("an array of numbers", _P, "not_an_object", "$[0]", "got `int`", raw=b"[1, 2]"),
    Bad("a string", _P, "not_an_object", "$", "got `str`", raw=b'"hello"'),
    Bad("null", _P, "not_an_object", "$", "got `null`", raw=b"null"),
    Bad("an empty array", _P, "not_an_object", "$", "empty array", raw=b"[]", in_json_schema=False),
    # not JSON
    Bad("empty", _P, "invalid_json", "$", "truncated", raw=b""),
    Bad("truncated", _P, "invalid_json", "$", "truncated", raw=orjson.dumps(VALID[_P][0])[:-5]),
    Bad("not UTF-8", _P, "invalid_json", "$", "malformed", raw=b'{"model_id": "\xff\xfe"}'),
    Bad("garbage", _P, "invalid_json", "$", "malformed", raw=b"\x00\x01binary"),
    Bad(
        "NaN literal",
        _P,
        "invalid_json",
        "$",
        "NaN and Infinity",
        raw=_raw_prediction('"score": NaN'),
    ),
    Bad(
        "Infinity literal",
        _P,
        "invalid_json",
        "$",
        "finite",
        raw=_raw_prediction('"latency_ms": Infinity'),
    ),
    Bad(
        "-Infinity literal",
        _P,
        "invalid_json",
        "$",
        "finite",
        raw=_raw_prediction('"latency_ms": -Infinity'),
    ),
    # non-finite numbers that are valid JSON text
    Bad(
        "1e999 prediction",
        _P,
        "invalid_value",
        "$.prediction",
        "finite",
        raw=_raw_prediction('"prediction": 1e999'),
    ),
    Bad(
        "1e999 feature",
        _P,
        "invalid_value",
        "$.features.x",
        "finite",
        raw=_raw_prediction('"features": {"ok": 1, "x": -1e999}'),
    ),
    Bad(
        "integer class beyond 64 bits",
        _P,
        "invalid_value",
        "$.prediction",
        "<= 9223372036854775807",
        raw=_raw_prediction('"prediction": 99999999999999999999999'),
    ),
    Bad(
        "feature of 400 digits",
        _P,
        "invalid_value",
        "$.features.x",
        "finite",
        raw=_raw_prediction('"features": {"x": ' + "9" * 400 + "}"),
    ),
    Bad(
        "feature of 5000 digits",
        _P,
        "invalid_value",
        "$.features.x",
        "finite",
        raw=_raw_prediction('"features": {"x": ' + "9" * 5000 + "}"),
    ),
    # values out of range
    Bad(
        "timestamp in seconds",
        _P,
        "invalid_value",
        "$.timestamp",
        "looks like epoch seconds",
        {"timestamp": TS // 1000},
    ),
    Bad(
        "timestamp negative",
        _P,
        "invalid_value",
        "$.timestamp",
        "epoch milliseconds",
        {"timestamp": -1},
    ),
    Bad(
        "timestamp far future",
        _P,
        "invalid_value",
        "$.timestamp",
        "outside the accepted range",
        {"timestamp": 10**14},
    ),
    Bad(
        "RFC 3339 without offset",
        _P,
        "invalid_value",
        "$.timestamp",
        "with an offset",
        {"timestamp": "2026-11-21T10:00:00"},
    ),
    Bad(
        "timestamp not a date",
        _P,
        "invalid_value",
        "$.timestamp",
        "RFC 3339",
        {"timestamp": "yesterday"},
    ),
    Bad(
        "RFC 3339 out of range",
        _P,
        "invalid_value",
        "$.timestamp",
        "outside the accepted range",
        {"timestamp": "2300-01-01T00:00:00Z"},
        in_json_schema=False,
    ),
    Bad("score above 1", _P, "invalid_value", "$.score", "<= 1.0", {"score": 1.5}),
    Bad(
        "class probability below 0",
        _P,
        "invalid_value",
        "$.score.b",
        ">= 0.0",
        {"score": {"a": 0.5, "b": -0.1}},
    ),
    Bad("negative latency", _P, "invalid_value", "$.latency_ms", ">= 0.0", {"latency_ms": -1}),
    # id charset
    Bad(
        "model_id with a space",
        _P,
        "invalid_value",
        "$.model_id",
        "not a valid id",
        {"model_id": "m 1"},
    ),
    Bad(
        "model_id with a newline",
        _P,
        "invalid_value",
        "$.model_id",
        "not a valid id",
        {"model_id": "m1\n"},
    ),
    Bad(
        "model_id starting with a dot",
        _P,
        "invalid_value",
        "$.model_id",
        "not a valid id",
        {"model_id": ".m"},
    ),
    Bad(
        "model_id with a slash",
        _P,
        "invalid_value",
        "$.model_id",
        "not a valid id",
        {"model_id": "a/b"},
    ),
    Bad(
        "model_id non-ASCII",
        _P,
        "invalid_value",
        "$.model_id",
        "not a valid id",
        {"model_id": "modèle"},
    ),
    Bad("model_id empty", _P, "invalid_value", "$.model_id", "must not be empty", {"model_id": ""}),
    Bad(
        "version with a quote",
        _P,
        "invalid_value",
        "$.model_version",
        "not a valid id",
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
        "control characters",
        {"features": {"ok": 1, "a\x07": 1}},
    ),
    Bad(
        "class name with a newline",
        _P,
        "invalid_value",
        '$.score["a\\n"]',
        "control characters",
        {"score": {"a\n": 1.0}},
    ),
    # lengths and counts (default limits)
    Bad("model_id too long", _P, "too_long", "$.model_id", "at most 128", {"model_id": "m" * 129}),
    Bad(
        "prediction_id too long",
        _P,
        "too_long",
        "$.prediction_id",
        "at most 256",
        {"prediction_id": "p" * 257},
    ),
    Bad(
        "string prediction too long",
        _P,
        "too_long",
        "$.prediction",
        "at most 1024",
        {"prediction": "x" * 1025},
    ),
    Bad(
        "string feature too long",
        _P,
        "too_long",
        "$.features.f",
        "at most 1024",
        {"features": {"f": "x" * 1025}},
    ),
    Bad(
        "feature name too long",
        _P,
        "too_long",
        "$.features." + "n" * 257,
        "at most 256",
        {"features": {"n" * 257: 1}},
    ),
    Bad(
        "too many features",
        _P,
        "too_many",
        "$.features",
        "1001 entries; at most 1000",
        {"features": {f"f{i}": i for i in range(1001)}},
    ),
    Bad(
        "too many classes",
        _P,
        "too_many",
        "$.score",
        "at most 1000",
        {"score": {f"c{i}": 0.0 for i in range(1001)}},
    ),
    # limits the JSON Schema cannot state
    Bad(
        "nested 40 deep in an unknown field",
        _P,
        "too_deep",
        "$",
        "more than 32 levels",
        {"extra": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]},
        in_json_schema=False,
    ),
    Bad(
        "nested 5000 deep",
        _P,
        "too_deep",
        "$",
        "levels",
        raw=b"[" * 5000 + b"]" * 5000,
        in_json_schema=False,
    ),
    Bad(
        "bigger than 1 MiB",
        _P,
        "too_large",
        "$",
        "at most 1048576",
        {"features": {"f": "x" * 1000}, "pad": "y" * (1 << 20)},
        in_json_schema=False,
    ),
]
