"""Property-based fuzzing of the event decoder and of ``stream.deadletter.decode_record``.

Whatever bytes arrive, the decoder answers with events or precise :class:`DecodeError`\\ s, never
a crash; valid events (generated from the published JSON Schema files) survive an encode/decode
round trip; limits hold however the input is shaped; a key repeated in an object cannot smuggle
a value past validation.

The examples are deterministic (the ``ci`` hypothesis profile, see ``tests/conftest.py``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import re
from collections.abc import Callable, Iterator
from importlib import resources
from typing import Any

import jsonschema
import msgspec
import orjson
import pytest
from hypothesis import assume, example, given, note, settings
from hypothesis import strategies as st

import schemas.decoder as decoder_module
from schemas import (
    REASONS,
    DecodeError,
    Event,
    EventDecoder,
    EventValidator,
    Input,
    Label,
    Limits,
    Prediction,
)
from schemas.decoder import UNEXPLAINED, JSONParser
from schemas.explain import rfc3339_ms
from schemas.limits import ID_PATTERN
from stream.deadletter import decode_record
from tests import contract_cases

KINDS = ("prediction", "input", "label")
KIND_TYPES = {"prediction": Prediction, "input": Input, "label": Label}
DEFAULT = Limits()
DECODER = EventDecoder()


def _load_schema(kind: str) -> dict[str, Any]:
    return json.loads(resources.files("schemas").joinpath(f"{kind}.schema.json").read_text())


SCHEMAS = {kind: _load_schema(kind) for kind in KINDS}
VALIDATORS = {
    kind: jsonschema.validators.validator_for(schema)(schema) for kind, schema in SCHEMAS.items()
}


def scaled(fraction: float) -> int:
    """A share of the profile's ``max_examples``, for the slower properties."""
    return max(10, int(settings().max_examples * fraction))


# -- checking what the decoder answers ------------------------------------------------------


def check_error(error: DecodeError, prefix: str = "$") -> None:
    assert isinstance(error, DecodeError)
    assert error.reason in REASONS, error.reason
    assert error.reason not in ("model_limit", "internal_error"), "core reasons, not the decoder's"
    assert isinstance(error.path, str)
    assert error.path.startswith(prefix), (error.path, prefix)
    assert isinstance(error.detail, str)
    assert error.detail.strip(), "an error must say what is wrong"
    assert str(error) == f"{error.path}: {error.detail}"
    # driftline's own check names every fault the parser finds: the catch-all never shows.
    assert (error.reason, error.path, error.detail) != UNEXPLAINED, error.cause
    for name, value in error.as_headers():  # dead letters carry it as Kafka headers
        assert isinstance(name, str)
        assert isinstance(value, bytes)
        value.decode()  # headers are valid UTF-8 (error text can quote any input)


def decode_or_error(kind: str, payload: bytes, decoder: EventDecoder = DECODER) -> Any:
    """The event, or the DecodeError: anything else raised fails the test."""
    try:
        event = decoder.decode(kind, payload)  # type: ignore[arg-type]
    except DecodeError as error:
        check_error(error)
        check_own_words(decoder, kind, payload, error)
        return error
    assert isinstance(event, KIND_TYPES[kind])
    check_event(event)
    check_own_words(decoder, kind, payload, None)
    return event


def check_own_words(
    decoder: EventDecoder, kind: str, payload: bytes, error: DecodeError | None
) -> None:
    """driftline's own validator finds a fault exactly when the decoder refuses; where the
    parser (msgspec) refused, the dead letter's words are the validator's.

    Every property in this module decodes through here, so all their inputs check that the
    validator wording the dead letters agrees with the fast path on accept and reject.
    """
    if len(payload) > decoder.limits.max_message_bytes:
        return  # refused before anything reads it
    problem = decoder.validator.problem(kind, payload)  # type: ignore[arg-type]
    verdicts = (problem, error, getattr(error, "cause", None))
    assert (problem is None) == (error is None), verdicts
    if error is not None and error.cause is not None:
        assert (error.reason, error.path, error.detail) == problem, verdicts


def check_event(event: Event) -> None:
    """What every accepted event guarantees to the core."""
    limits = DEFAULT
    assert isinstance(event.timestamp, int)
    assert limits.min_timestamp_ms <= event.timestamp <= limits.max_timestamp_ms
    assert isinstance(event.model_id, str)
    # Every string in an event can be written back as UTF-8 (no lone surrogates).
    msgspec.json.encode(event).decode()
    orjson.dumps(msgspec.to_builtins(event))
    for name in ("features", "score"):
        mapping = getattr(event, name, None)
        if isinstance(mapping, dict):
            for key, value in mapping.items():
                assert isinstance(key, str)
                assert key
                if isinstance(value, float):
                    assert math.isfinite(value)
    for name in ("prediction", "label", "score", "latency_ms"):
        value = getattr(event, name, None)
        if isinstance(value, float):
            assert math.isfinite(value)


def check_batch(kind: str, payload: bytes, decoder: EventDecoder = DECODER) -> Any:
    """decode_batch never raises, accounts for every element and agrees with decode."""
    batch = decoder.decode_batch(kind, payload)  # type: ignore[arg-type]
    for event in batch.events:
        assert isinstance(event, KIND_TYPES[kind])
        check_event(event)
    is_array = payload.lstrip()[:1] == b"["
    whole = [r for r in batch.rejected if r.index is None]
    if whole:  # the message as such was refused: nothing else comes out of it
        assert len(batch.rejected) == 1
        assert batch.events == []
        assert whole[0].raw == payload
        check_error(whole[0].error)
    elif not is_array:
        assert len(batch.events) == 1
        assert batch.rejected == []
    else:
        elements = msgspec.json.decode(payload, type=list[msgspec.Raw])
        indices = [r.index for r in batch.rejected]
        assert indices == sorted(set(indices)), "one rejection per element, in order"
        assert len(batch.events) + len(batch.rejected) == len(elements)
        for rejected in batch.rejected:
            assert rejected.index is not None
            assert 0 <= rejected.index < len(elements)
            assert rejected.raw == bytes(elements[rejected.index])
            check_error(rejected.error, prefix=f"$[{rejected.index}]")
    if not is_array:  # one object: the same answer as decode
        alone = decode_or_error(kind, payload, decoder)
        if isinstance(alone, DecodeError):
            assert [(r.error.reason, r.error.path) for r in batch.rejected] == [
                (alone.reason, alone.path)
            ]
        else:
            assert batch.events == [alone]
    return batch


def check_record(kind: str, payload: bytes | None) -> None:
    """stream.deadletter.decode_record: never raises; one dead letter per rejection."""
    events, dead = decode_record(
        DECODER, kind, topic="model.x", partition=3, offset=42, key=b"k", value=payload
    )  # type: ignore[arg-type]
    if payload is None:
        assert events == []
        assert [d.reason for d in dead] == ["invalid_json"]
        return
    batch = DECODER.decode_batch(kind, payload)  # type: ignore[arg-type]
    assert len(events) == len(batch.events)
    assert len(dead) == len(batch.rejected)
    for letter, rejected in zip(dead, batch.rejected, strict=True):
        assert letter.reason == rejected.error.reason
        assert letter.value == rejected.raw
        headers = dict(letter.headers)
        assert headers["driftline-source-offset"] == b"42"
        assert headers["driftline-error-reason"] == letter.reason.encode()
        cause = rejected.error.cause
        assert headers.get("driftline-error-cause") == (None if cause is None else cause.encode())
        assert ("driftline-source-index" in headers) == (rejected.index is not None)


# -- valid events, built from the published JSON Schema files --------------------------------


def rfc3339(ms: int, offset_minutes: int, separator: str, zulu: str, digits: int) -> str:
    """``ms`` written as RFC 3339 with ``offset_minutes`` (0: ``zulu``) and 0-6 fraction digits
    (any more digits would round, not truncate, to microseconds)."""
    utc = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ms)
    local = utc.astimezone(dt.timezone(dt.timedelta(minutes=offset_minutes)))
    fraction = f"{utc.microsecond:06d}"[:digits]
    text = local.strftime(f"%Y-%m-%d{separator}%H:%M:%S")
    if digits:
        text += "." + fraction
    if offset_minutes == 0 and zulu:
        return text + zulu
    sign = "+" if offset_minutes >= 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return f"{text}{sign}{hours:02d}:{minutes:02d}"


@st.composite
def timestamp_strings(draw: st.DrawFn, low: int, high: int) -> tuple[str, int]:
    """An RFC 3339 string and the epoch milliseconds it decodes to."""
    digits = draw(st.integers(0, 6))
    ms = draw(st.integers(low, high))
    if digits < 3:  # fewer digits than milliseconds: the time is a whole number of them
        ms -= ms % 10 ** (3 - digits)
        assume(ms >= low)
    offset = draw(
        st.sampled_from([0, 0, 60, -60, 330, -270, 1439, -1439]) | st.integers(-1439, 1439)
    )
    separator = draw(st.sampled_from("Tt "))
    zulu = draw(st.sampled_from(["Z", "z", ""]))
    return rfc3339(ms, offset, separator, zulu, digits), ms


ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
# Surrogates are not text (Hypothesis never draws them here); everything else is fair game.
ANY_TEXT = st.characters(codec="utf-8")
EDGY_TEXT = st.sampled_from(
    ["\u200b", "\u200f", "\u202e", "\ufeff", "\u0301", "日", "🙂", "\U0010ffff", "\x85", "\u2028"]
)


def _text(min_size: int, max_size: int, alphabet: st.SearchStrategy[str]) -> Any:
    small = st.text(alphabet | EDGY_TEXT, min_size=min_size, max_size=min(max_size, 24))
    exact = st.text(alphabet, min_size=max_size, max_size=max_size)  # right at the limit
    return st.one_of(small, small, small, exact)


def _id(node: dict[str, Any]) -> Any:
    assert node["pattern"] == "^[A-Za-z0-9]", "the id rule changed: update this strategy"
    rest = st.text(st.sampled_from(ID_CHARS + "._:@+-"), max_size=node["maxLength"] - 1)
    return st.builds(str.__add__, st.sampled_from(ID_CHARS), rest)


def _name(node: dict[str, Any]) -> Any:
    assert node["not"] == {"pattern": "[\\u0000-\\u001f\\u007f]"}, "the name rule changed"
    no_control = st.characters(codec="utf-8", exclude_categories=["Cs"]).filter(
        lambda c: not (c < " " or c == "\x7f")
    )
    return _text(node["minLength"], node["maxLength"], no_control)


# JSON Schema keywords with no general translation here: the few $defs that use them.
DEF_OVERRIDES: dict[str, Callable[[dict[str, Any]], Any]] = {"id": _id, "name": _name}


def from_schema(node: dict[str, Any], defs: dict[str, Any]) -> Any:
    """A strategy for the JSON documents ``node`` accepts (the subset of JSON Schema that the
    event schemas use; anything else fails loudly)."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        if name in DEF_OVERRIDES:
            return DEF_OVERRIDES[name](defs[name])
        return from_schema(defs[name], defs)
    if "anyOf" in node:
        return st.one_of([from_schema(option, defs) for option in node["anyOf"]])
    kind = node.get("type")
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        bounded = st.integers(node["minimum"], node["maximum"])
        edges = st.sampled_from([node["minimum"], node["maximum"]])
        return st.one_of(bounded, edges)
    if kind == "number":
        low, high = node["minimum"], node["maximum"]
        floats = st.floats(low, high, allow_nan=False, allow_infinity=False)
        if node.get("not") == {"type": "integer"}:
            # A float token with a fraction (the decoder keeps its float type).
            return floats.filter(lambda x: not x.is_integer())
        edges = [low, high, 0.0, -0.0, 5e-324, 2.2250738585072014e-308, -1e-300]
        ints = st.integers(max(math.ceil(low), -(2**53)), min(math.floor(high), 2**53))
        return st.one_of(floats, ints, st.sampled_from([x for x in edges if low <= x <= high]))
    if kind == "string":
        if node.get("format") == "date-time":
            limits = DEFAULT
            return timestamp_strings(limits.min_timestamp_ms, limits.max_timestamp_ms).map(
                lambda pair: pair[0]
            )
        assert set(node) <= {"type", "minLength", "maxLength", "description"}, node
        return _text(node.get("minLength", 0), node["maxLength"], ANY_TEXT)
    if kind == "object":
        names = from_schema(node["propertyNames"], defs)
        values = from_schema(node["additionalProperties"], defs)
        # Small mappings here; the count limit has its own properties below.
        return st.dictionaries(names, values, max_size=min(node["maxProperties"], 6))
    raise NotImplementedError(f"no strategy for schema {node}")


UNKNOWN_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def valid_documents(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """A document the kind's JSON Schema accepts: every required property, any optional ones
    (sometimes null), and now and then a field driftline does not know."""
    schema = SCHEMAS[kind]
    defs = schema["$defs"]
    doc: dict[str, Any] = {}
    for name, node in schema["properties"].items():
        if name in schema["required"] or draw(st.booleans()):
            doc[name] = draw(from_schema(node, defs))
    for extra in draw(st.lists(st.sampled_from(["brand_new", "x-trace", "debug"]), max_size=2)):
        doc[extra] = draw(UNKNOWN_VALUES)
    return doc


ANY_KIND = st.sampled_from(KINDS)


def encode_doc(doc: Any) -> bytes:
    """JSON text of a document (stdlib: it writes integers of any size)."""
    return json.dumps(doc, ensure_ascii=False, allow_nan=False).encode()


def expected_value(name: str, value: Any) -> Any:
    """What the decoder makes of a schema-valid field value."""
    if name == "timestamp" and isinstance(value, str):
        return None  # compared separately
    if name in ("features", "score") and isinstance(value, dict):
        return {k: float(v) if type(v) is int else v for k, v in value.items()}
    if name in ("score", "latency_ms") and type(value) is int:
        return float(value)
    return value


@given(data=st.data(), kind=ANY_KIND)
@settings(max_examples=scaled(1.0))
def test_schema_valid_events_decode_to_their_field_values(data: st.DataObject, kind: str) -> None:
    doc = data.draw(valid_documents(kind), label="document")
    payload = encode_doc(doc)
    assert VALIDATORS[kind].is_valid(doc), "the strategy drew a document the schema refuses"
    event = DECODER.decode(kind, payload)  # type: ignore[arg-type]
    check_event(event)
    for name in KIND_TYPES[kind].__struct_fields__:
        if name not in doc:
            assert getattr(event, name) is None
            continue
        value = getattr(event, name)
        expected = expected_value(name, doc[name])
        if expected is not None:
            assert value == expected, name
            assert type(value) is type(expected), name
    # ... and back: the typed event encodes to JSON that decodes to the same event.
    again = DECODER.decode(kind, msgspec.json.encode(event))  # type: ignore[arg-type]
    assert again == event
    assert DECODER.decode_batch(kind, orjson.dumps([orjson.Fragment(payload)])).events == [event]  # type: ignore[arg-type]


@given(pair=timestamp_strings(DEFAULT.min_timestamp_ms, DEFAULT.max_timestamp_ms))
@example(pair=("2000-01-01T00:00:00Z", DEFAULT.min_timestamp_ms))
@example(pair=("2200-01-01T00:00:00.000Z", DEFAULT.max_timestamp_ms))
@example(pair=("1999-12-31T23:59:59-00:01", DEFAULT.min_timestamp_ms + 59_000))
def test_rfc3339_timestamps_decode_to_their_epoch_ms(pair: tuple[str, int]) -> None:
    text, ms = pair
    doc = {"model_id": "m", "prediction_id": "p", "timestamp": text, "label": 1}
    assert DECODER.decode("label", encode_doc(doc)).timestamp == ms
    doc["timestamp"] = ms
    assert DECODER.decode("label", encode_doc(doc)).timestamp == ms


@given(
    ms=st.one_of(
        st.integers(max_value=DEFAULT.min_timestamp_ms - 1),
        st.integers(min_value=DEFAULT.max_timestamp_ms + 1),
    ),
    as_text=st.booleans(),
)
def test_timestamps_out_of_range_are_rejected_in_both_forms(ms: int, as_text: bool) -> None:
    if as_text:
        assume(0 <= ms < 253402300800000)  # years 1970 .. 9999: writable as RFC 3339
        value: Any = rfc3339(ms, 0, "T", "Z", 3)
    else:
        value = ms
    doc = {"model_id": "m", "prediction_id": "p", "timestamp": value, "label": 1}
    error = decode_or_error("label", encode_doc(doc))
    assert isinstance(error, DecodeError)
    assert (error.reason, error.path) == ("invalid_value", "$.timestamp")


# -- malformed input: never anything but DecodeError -----------------------------------------


def valid_payloads() -> Any:
    return ANY_KIND.flatmap(lambda kind: valid_documents(kind).map(encode_doc))


@st.composite
def mutated(draw: st.DrawFn, payloads: st.SearchStrategy[bytes]) -> bytes:
    """A valid payload with a few bytes replaced, deleted or inserted."""
    data = bytearray(draw(payloads))
    splices = [
        b"[",
        b"]",
        b"{",
        b"}",
        b'"',
        b"\\",
        b",",
        b":",
        b"NaN",
        b"Infinity",
        b"-Infinity",
        b"1e999",
        b"\\u0000",
        b"\\ud800",
        b"\\udfff",
        b"\xff",
        b"\xed\xa0\x80",
        b"\xc0\x80",
        b"\x00",
        b"\n",
        b"\\",
        b"null",
        b"true",
        b"-0",
        b"1" * 30,
        b'"model_id":"m",',
    ]
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(["replace", "delete", "insert"]))
        if operation == "insert" or position == len(data):
            data[position:position] = draw(st.sampled_from(splices) | st.binary(max_size=3))
        elif operation == "delete":
            del data[position : position + draw(st.integers(1, 4))]
        else:
            data[position] = draw(st.integers(0, 255))
    return bytes(data)


def garbage() -> Any:
    return st.one_of(
        st.binary(max_size=300),
        st.text(max_size=100).map(str.encode),
        mutated(valid_payloads()),
        mutated(valid_payloads().map(lambda p: b"[" + p + b"," + p + b"]")),
    )


@given(kind=ANY_KIND, payload=garbage())
@settings(max_examples=scaled(2.0))
@example(kind="prediction", payload=b"")
@example(kind="label", payload=b"\xef\xbb\xbf{}")  # a UTF-8 byte order mark
@example(kind="label", payload=b"[]")
@example(kind="label", payload=b"[[]]")
@example(kind="input", payload=b" \t\n[ ")
@example(kind="input", payload=b'{"model_id": "\\ud800"}')
@example(kind="input", payload=b'"\\udc00\\ud800"')
@example(kind="label", payload=b"\x00\x00\x00{\x00\x00\x00}")  # UTF-32, as stdlib json sees it
@example(kind="label", payload=b"-" + b"9" * 5000)
@example(kind="label", payload=b'{"timestamp": ' + b"9" * 5000 + b"}")
def test_any_bytes_give_events_or_decode_errors(kind: str, payload: bytes) -> None:
    decode_or_error(kind, payload)
    check_batch(kind, payload)
    check_record(kind, payload)


def test_a_record_without_value_is_a_dead_letter() -> None:
    check_record("label", None)
    events, dead = decode_record(
        DECODER, "label", topic="t", partition=0, offset=0, key=None, value=None
    )
    assert (events, [d.value for d in dead]) == ([], [b""])


REQUIRED_BY_KIND = {kind: SCHEMAS[kind]["required"] for kind in KINDS}


def _json_values() -> Any:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(-(2**70), 2**70),
        st.floats(),  # NaN and infinities included: json.dumps writes them as literals
        st.sampled_from([1e308, -1e308, 5e-324, -0.0, 2**63, -(2**63) - 1, 2**64]),
        st.text(max_size=12),
        st.text(max_size=12).map(lambda s: s + "\x00"),
        st.sampled_from(["", " ", "m 1", "a\x7f", "2026-11-21T10:00:00Z", "1795255200000"]),
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=5,
    )


@st.composite
def broken_documents(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """A valid document with fields replaced by values of any JSON type, or removed."""
    doc = draw(valid_documents(kind))
    names = list(SCHEMAS[kind]["properties"])
    for name in draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True)):
        if draw(st.integers(0, 5)) == 0:
            doc.pop(name, None)
        elif (
            name in ("features", "score")
            and isinstance(doc.get(name), dict)
            and draw(st.booleans())
        ):
            doc[name] = {**doc[name], draw(st.text(max_size=4)): draw(_json_values())}
        else:
            doc[name] = draw(_json_values())
    return doc


def _schema_verdict(kind: str, payload: bytes) -> bool:
    def refuse(name: str) -> float:
        raise ValueError(name)

    try:
        document = json.loads(payload, parse_constant=refuse)
    except ValueError:
        return False
    return VALIDATORS[kind].is_valid(document)


def _beyond_the_schema(doc: dict[str, Any]) -> bool:
    """Rules the JSON Schema cannot express, where decoder and schema may disagree."""
    # JSON Schema counts 1e300 as an integer (beyond 64 bits: refused); the decoder keeps the
    # float token's type (a regression value).
    for name in ("prediction", "label"):
        value = doc.get(name)
        if isinstance(value, float) and value.is_integer() and abs(value) >= 2**63:
            return True
    # The schema's date-time is a pattern: neither calendar nor range checks.
    return isinstance(doc.get("timestamp"), str)


@given(data=st.data(), kind=ANY_KIND)
@settings(max_examples=scaled(1.2))
def test_wrong_typed_fields_are_rejected_exactly_when_the_schema_rejects_them(
    data: st.DataObject, kind: str
) -> None:
    doc = data.draw(broken_documents(kind), label="document")
    payload = json.dumps(doc, ensure_ascii=data.draw(st.booleans())).encode()
    outcome = decode_or_error(kind, payload)
    check_batch(kind, payload)
    if isinstance(outcome, DecodeError):
        note(f"decoder: {outcome.reason} {outcome}")
        if outcome.reason == "invalid_json":
            assert b"NaN" in payload or b"Infinity" in payload
        else:
            # The path names a field of the document (or the document itself).
            top = outcome.path[2:].split(".")[0].split("[")[0]
            assert outcome.path == "$" or top in doc or outcome.reason == "missing_field"
    if not _beyond_the_schema(doc):
        assert isinstance(outcome, DecodeError) != _schema_verdict(kind, payload), (
            f"decoder {'rejects' if isinstance(outcome, DecodeError) else 'accepts'} "
            f"what the schema {'accepts' if _schema_verdict(kind, payload) else 'rejects'}"
        )


NON_FINITE = [b"NaN", b"-NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999", b"1E400"]
NON_FINITE += [b"9" * 400, b"-" + b"9" * 310 + b".5", b"0." + b"0" * 400 + b"1e800"]
NUMBER_FIELDS = {
    "prediction": ["prediction", "score", "latency_ms", "features.x", "score.a"],
    "input": ["features.x", "features.y"],
    "label": ["label"],
}


@given(
    data=st.data(),
    kind=ANY_KIND,
    literal=st.sampled_from(NON_FINITE),
    in_array=st.booleans(),
)
@settings(max_examples=scaled(1.0))
def test_non_finite_numbers_are_rejected_at_their_field(
    data: st.DataObject, kind: str, literal: bytes, in_array: bool
) -> None:
    doc = data.draw(valid_documents(kind), label="document")
    first = encode_doc(doc)  # a good element before the bad one, in array messages
    field = data.draw(st.sampled_from(NUMBER_FIELDS[kind]), label="field")
    top, _, sub = field.partition(".")
    marker = "@@NUMBER@@"
    if sub:
        inner = doc.get(top) if isinstance(doc.get(top), dict) else {}
        doc[top] = {**inner, sub: marker}
    else:
        doc[top] = marker
    payload = encode_doc(doc).replace(b'"' + marker.encode() + b'"', literal)
    if in_array:
        payload = b"[" + first + b"," + payload + b"]"
    batch = check_batch(kind, payload)
    check_record(kind, payload)
    if literal.lstrip(b"-").startswith((b"NaN", b"Inf")):
        # Not JSON: the whole message is refused.
        assert [(r.index, r.error.reason) for r in batch.rejected] == [(None, "invalid_json")]
        said, _, why = batch.rejected[0].error.detail.partition(": ")
        assert (said.split(" at byte ")[0], why) == (literal.decode(), NO_NAN)
        return
    assert len(batch.events) == (1 if in_array else 0)
    (rejected,) = batch.rejected
    assert rejected.error.reason == "invalid_value", rejected.error
    prefix = "$[1]" if in_array else "$"
    assert rejected.error.path == f"{prefix}.{top}" + (f".{sub}" if sub else "")
    integer = literal.lstrip(b"-").isdigit()
    if not (integer and top in ("prediction", "label", "score")):
        # (A too large integer class or probability is out of range, not infinite.)
        assert rejected.error.detail == NOT_FINITE, rejected.error


NO_NAN = "NaN and Infinity are not JSON; send finite numbers only"
NOT_FINITE = "must be a finite number, got a number beyond the float range (±1.8e308)"


VALID_LABEL = {
    "model_id": "m",
    "prediction_id": "p",
    "timestamp": DEFAULT.max_timestamp_ms,
    "label": 0,
}


# -- unicode edges ------------------------------------------------------------------------------

STRING_FIELDS = {
    "prediction": ["model_id", "model_version", "prediction_id", "prediction", "event_id"],
    "input": ["model_id", "model_version", "prediction_id", "event_id"],
    "label": ["model_id", "prediction_id", "label", "event_id"],
}


@given(
    data=st.data(),
    kind=ANY_KIND,
    fragment=st.sampled_from(
        [
            b"\\ud800",
            b"\\udfff",
            b"\\ud800\\u0041",
            b"\\udc00\\ud800",
            b"\\ud83d",
            b"\xed\xa0\x80",
            b"\xed\xbf\xbf",
            b"\xc0\xaf",
            b"\xf5\x80\x80\x80",
            b"\xff",
            b"\x80",
            b"\xf0\x9f\x99",
            b"\x00",
            b"\x1f",
            b"\n",
            b"\\u0000",
            b"\\u001f",
            b"\\u007f",
            b"\\u200b",
            b"\\u202e",
            b"\\ufeff",
            b"\\ud83d\\ude42",
            b"\xe2\x80\x8f",
            b'\\"',
        ]
    ),
    spot=st.integers(0, 100),
)
@settings(max_examples=scaled(1.0))
def test_unicode_edges_never_reach_the_core_as_broken_text(
    data: st.DataObject, kind: str, fragment: bytes, spot: int
) -> None:
    doc = data.draw(valid_documents(kind), label="document")
    spots = [("value", name) for name in STRING_FIELDS[kind]]
    if kind != "label":
        spots += [("feature name", "features"), ("feature value", "features")]
    if kind == "prediction":
        spots.append(("score name", "score"))
    where, field = spots[spot % len(spots)]
    marker = "@@TEXT@@"
    if where == "value":
        doc[field] = "a" + marker
    elif where == "feature value":
        doc[field] = {"f": "a" + marker}
    else:
        doc[field] = {"a" + marker: 0.5}
    payload = encode_doc(doc).replace(marker.encode(), fragment)
    outcome = decode_or_error(kind, payload)  # (check_event: accepted text is valid UTF-8)
    check_batch(kind, payload)
    check_record(kind, payload)
    if fragment in LONE_SURROGATES or fragment in RAW_CONTROL or fragment[:1] in NOT_UTF8:
        assert isinstance(outcome, DecodeError)
        assert (outcome.reason, outcome.path) == ("invalid_json", "$"), outcome
        return
    text = json.loads(b'"a' + fragment + b'"')
    if where.endswith("name") and re.search(r"[\x00-\x1f\x7f]", text):
        assert isinstance(outcome, DecodeError)
        assert (outcome.reason, outcome.path[: len(field) + 2]) == ("invalid_value", f"$.{field}")
        assert outcome.path != f"$.{field}", "the path names the offending key"
    elif field in ("model_id", "model_version"):
        assert isinstance(outcome, DecodeError)
        assert (outcome.reason, outcome.path) == ("invalid_value", f"$.{field}")
    else:
        assert not isinstance(outcome, DecodeError), outcome
        value = getattr(outcome, field)
        if where == "value":
            assert value == text
        elif where == "feature value":
            assert value == {"f": text}
        else:
            assert value == {text: 0.5}


LONE_SURROGATES = (b"\\ud800", b"\\udfff", b"\\udc00\\ud800", b"\\ud83d", b"\\ud800\\u0041")
RAW_CONTROL = (b"\x00", b"\x1f", b"\n")
NOT_UTF8 = (b"\xed", b"\xc0", b"\xf5", b"\xff", b"\x80", b"\xf0")


@given(
    kind=ANY_KIND,
    field=st.sampled_from(["model_id", "model_version"]),
    value=st.text(max_size=12),
)
@example(kind="prediction", field="model_id", value="m\n")
@example(kind="prediction", field="model_id", value="ｍ")  # fullwidth letter
@example(kind="prediction", field="model_id", value="m\u200b")
@example(kind="prediction", field="model_id", value="٣")  # an Arabic-Indic digit
def test_ids_are_accepted_exactly_when_they_match_the_id_pattern(
    kind: str, field: str, value: str
) -> None:
    doc = {**MINIMAL[kind], field: value}
    outcome = decode_or_error(kind, encode_doc(doc))
    matches = bool(re.fullmatch(ID_PATTERN, value, flags=re.ASCII)) and len(value) <= 128
    if field == "model_version" and kind == "label":
        assert not isinstance(outcome, DecodeError)  # an unknown field for labels
    else:
        assert isinstance(outcome, DecodeError) != matches, outcome


MINIMAL: dict[str, dict[str, Any]] = {
    "prediction": {
        "model_id": "m",
        "model_version": "1",
        "prediction_id": "p",
        "timestamp": DEFAULT.min_timestamp_ms,
        "prediction": 1,
    },
    "input": {"model_id": "m", "timestamp": DEFAULT.min_timestamp_ms, "features": {}},
    "label": VALID_LABEL,
}


# -- size, length, count and depth limits ----------------------------------------------------


class _Unreachable:
    """Stands in for the parsers: a message refused for its size must never be parsed."""

    def decode(self, payload: bytes) -> Any:
        raise AssertionError(f"a message of {len(payload)} bytes was parsed")


@contextlib.contextmanager
def looking_into_messages() -> Iterator[list[str]]:
    """Records every call of the decoder's depth measure and of the validator's checks (the
    error path, which reads a message again)."""
    calls: list[str] = []
    spied = [
        (decoder_module, "nesting_depth"),
        (EventValidator, "problem"),
        (EventValidator, "json_problem"),
        (EventValidator, "document_problem"),
    ]

    def spy(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return original(*args, **kwargs)

        return wrapper

    with pytest.MonkeyPatch.context() as patch:
        for owner, name in spied:
            patch.setattr(owner, name, spy(name, getattr(owner, name)))
        yield calls


class _UnparsingParser(JSONParser):
    """A parser that fails the test if it is ever called."""

    def __init__(self, limits: Limits) -> None:
        super().__init__(limits)
        self.events = dict.fromkeys(KINDS, _Unreachable())
        self.elements = _Unreachable()

    def last_values(self, kind: Any, payload: bytes) -> Any:
        return _Unreachable().decode(payload)


def unparsing_decoder(limits: Limits) -> EventDecoder:
    """A decoder whose parsers fail the test if they are ever called."""
    return EventDecoder(limits, parser=_UnparsingParser(limits))


@given(
    kind=ANY_KIND,
    limit=st.integers(16, 4096),
    excess=st.integers(1, 5000),
    filler=st.sampled_from([b"[", b"{", b" ", b"9", b'"', b"\xff", b"{}"]),
    array=st.booleans(),
)
def test_messages_above_the_size_limit_are_rejected_unparsed(
    kind: str, limit: int, excess: int, filler: bytes, array: bool
) -> None:
    decoder = unparsing_decoder(Limits(max_message_bytes=limit))
    payload = ((b"[" if array else b"") + filler * (limit + excess))[: limit + excess]
    with looking_into_messages() as calls:
        with pytest.raises(DecodeError) as info:
            decoder.decode(kind, payload)  # type: ignore[arg-type]
        batch = decoder.decode_batch(kind, payload)  # type: ignore[arg-type]
    assert (info.value.reason, info.value.path) == ("too_large", "$")
    assert [(r.index, r.error.reason, r.raw) for r in batch.rejected] == [
        (None, "too_large", payload)
    ]
    assert calls == [], "nothing may look into a message that is too large"


def test_a_default_sized_message_just_too_large_is_refused_unparsed() -> None:
    payload = b"[" * (DEFAULT.max_message_bytes + 1)
    decoder = unparsing_decoder(DEFAULT)
    with looking_into_messages() as calls:
        for kind in KINDS:
            batch = decoder.decode_batch(kind, payload)  # type: ignore[arg-type]
            assert [r.error.reason for r in batch.rejected] == ["too_large"]
    assert calls == []
    # ... while one byte less is looked into (and refused for what it is).
    assert DECODER.decode_batch("label", payload[:-1]).rejected[0].error.reason == "too_deep"


def nested(depth: int, shape: str, leaf: Any = 1) -> Any:
    """``depth`` levels of arrays and objects around ``leaf``, following ``shape`` (cycled)."""
    value = leaf
    for level in range(depth):
        value = [value] if shape[level % len(shape)] == "[" else {"k": value}
    return value


@given(
    kind=ANY_KIND,
    max_depth=st.integers(3, 40),
    depth=st.integers(0, 90),
    shape=st.text(st.sampled_from("[{"), min_size=1, max_size=4),
    in_array=st.booleans(),
    in_string=st.booleans(),
)
@example(kind="label", max_depth=32, depth=40, shape="[{", in_array=False, in_string=False)
@example(kind="label", max_depth=32, depth=31, shape="{[", in_array=False, in_string=False)
@example(kind="label", max_depth=32, depth=32, shape="[{", in_array=False, in_string=False)
def test_nesting_deeper_than_max_depth_is_rejected_as_too_deep(
    kind: str, max_depth: int, depth: int, shape: str, in_array: bool, in_string: bool
) -> None:
    decoder = EventDecoder(Limits(max_depth=max_depth))
    doc = dict(MINIMAL[kind], extra=nested(depth, shape))
    if in_string:  # brackets inside strings are not nesting
        doc["event_id"] = "[{" * 50
    payload = encode_doc([doc] if in_array else doc)
    levels = 1 + depth + (1 if in_array else 0)  # the event object, the extra, the array
    batch = check_batch(kind, payload, decoder)
    if levels <= max_depth:
        assert len(batch.events) == 1, batch.rejected
    else:
        assert [r.error.reason for r in batch.rejected] == ["too_deep"], (levels, batch.rejected)
        assert batch.rejected[0].error.path == ("$[0]" if in_array else "$")
    if not in_array:
        expect = pytest.raises(DecodeError) if levels > max_depth else contextlib.nullcontext()
        with expect:
            decoder.decode(kind, payload)  # type: ignore[arg-type]


@given(
    depth=st.integers(33, 200_000),
    opener=st.sampled_from([b"[", b"{", b'{"a":', b"[{", b'[{"a":']),
    closed=st.booleans(),
)
@settings(max_examples=scaled(0.5))
@example(depth=100_000, opener=b"[", closed=False)
@example(depth=100_000, opener=b"[", closed=True)
@example(depth=1000, opener=b'{"a":', closed=False)
def test_pathologically_deep_messages_are_refused_quickly(
    depth: int, opener: bytes, closed: bool
) -> None:
    closers = {b"[": b"]", b"{": b"}", b'{"a":': b"}", b"[{": b"}]", b'[{"a":': b"}]"}
    body = opener * depth
    if closed:
        body += b"1" + closers[opener] * depth
    whole = len(body) <= DEFAULT.max_message_bytes
    body = body[: DEFAULT.max_message_bytes]
    for kind in KINDS:
        batch = check_batch(kind, body)
        assert batch.events == []
        assert batch.rejected[0].error.reason in ("too_deep", "invalid_json", "not_an_object")
        if closed and whole and opener in (b"[", b'{"a":', b'[{"a":'):  # (valid JSON)
            assert batch.rejected[0].error.reason == "too_deep"


LENGTH_LIMITS = {
    # field -> (limits attribute, where the string goes)
    "model_id": "max_id_length",
    "model_version": "max_id_length",
    "prediction_id": "max_opaque_id_length",
    "event_id": "max_opaque_id_length",
    "prediction": "max_string_length",
    "features.name": "max_name_length",
    "features.value": "max_string_length",
    "score.name": "max_name_length",
    "tags.name": "max_name_length",
    "tags.value": "max_string_length",
}


@given(
    field=st.sampled_from(sorted(LENGTH_LIMITS)),
    over=st.integers(-2, 3),
    limit=st.integers(1, 40) | st.just(None),
    char=st.sampled_from(["a", "é", "日", "🙂", "\u200b"]),
)
def test_strings_are_rejected_as_too_long_exactly_past_their_limit(
    field: str, over: int, limit: int | None, char: str
) -> None:
    setting = LENGTH_LIMITS[field]
    limits = Limits(**{setting: limit}) if limit is not None else DEFAULT
    length = getattr(limits, setting) + over
    assume(length >= 1)
    if setting == "max_id_length":
        char = "a"  # ids are ASCII
    text = char * length
    doc = dict(MINIMAL["prediction"])
    top, _, part = field.partition(".")
    if part == "name":
        doc[top] = {text: "x" if top == "tags" else 0.5}
    elif part == "value":
        doc[top] = {"f": text}
    else:
        doc[top] = text
    decoder = EventDecoder(limits)
    outcome = decode_or_error("prediction", encode_doc(doc), decoder)
    if over <= 0:
        assert not isinstance(outcome, DecodeError), outcome
    else:
        assert isinstance(outcome, DecodeError)
        assert outcome.reason == "too_long", outcome
        assert outcome.path.startswith(f"$.{top}"), outcome.path
        assert (outcome.path == f"$.{top}") == (not part), "a name or value names its key"


@given(
    what=st.sampled_from(["features", "score", "tags", "batch"]),
    over=st.integers(-1, 2),
    limit=st.integers(1, 30),
    duplicates=st.integers(0, 3),
)
def test_counts_are_rejected_as_too_many_exactly_past_their_limit(
    what: str, over: int, limit: int, duplicates: int
) -> None:
    setting = {
        "features": "max_features",
        "score": "max_classes",
        "tags": "max_tags",
        "batch": "max_batch_events",
    }
    decoder = EventDecoder(Limits(**{setting[what]: limit}))
    count = limit + over
    assume(count >= 1)
    if what == "batch":
        payload = encode_doc([MINIMAL["prediction"]] * count)
    else:
        # Entries repeating a name count once (the last value wins).
        value, last = ('"x"', '"y"') if what == "tags" else ("0.5", "0.25")
        entries = [f'"c{i}": {value}' for i in range(count)] + [f'"c0": {last}'] * duplicates
        doc = encode_doc(dict(MINIMAL["prediction"], **{what: "@@"}))
        payload = doc.replace(b'"@@"', ("{" + ", ".join(entries) + "}").encode())
    batch = check_batch("prediction", payload, decoder)
    if over <= 0:
        assert len(batch.events) == (count if what == "batch" else 1)
        if what != "batch":
            mapping = getattr(batch.events[0], what)
            assert len(mapping) == count
            last_value, first_value = ("y", "x") if what == "tags" else (0.25, 0.5)
            assert mapping["c0"] == (last_value if duplicates else first_value)
    else:
        assert [r.error.reason for r in batch.rejected] == ["too_many"]
        assert batch.rejected[0].error.path == ("$" if what == "batch" else f"$.{what}")


# -- arrays mixing good and bad elements -------------------------------------------------------


@given(data=st.data(), kind=ANY_KIND)
@settings(max_examples=scaled(0.6))
def test_array_elements_are_judged_one_by_one_and_all_accounted_for(
    data: st.DataObject, kind: str
) -> None:
    element = st.one_of(
        valid_documents(kind).map(encode_doc),
        broken_documents(kind).map(lambda d: json.dumps(d).encode()),
        _json_values().map(lambda v: json.dumps(v).encode()),
    )
    try_elements = data.draw(st.lists(element, min_size=1, max_size=8), label="elements")
    # Elements that are not JSON on their own would break the array: keep them whole.
    elements = [e for e in try_elements if _parses(e)]
    assume(elements)
    separator = data.draw(st.sampled_from([b",", b" , ", b",\n\t"]))
    payload = b"[" + separator.join(elements) + b"]"
    batch = check_batch(kind, payload)
    check_record(kind, payload)
    decoded = iter(batch.events)
    rejected = {r.index: r for r in batch.rejected}
    for index, raw in enumerate(elements):
        alone = decode_or_error(kind, raw)
        if isinstance(alone, DecodeError):
            assert index in rejected, f"element {index} rejected alone, accepted in the array"
            error = rejected[index].error
            assert (error.reason, error.path) == (alone.reason, f"$[{index}]" + alone.path[1:])
            assert rejected[index].raw == raw
        else:
            assert index not in rejected, rejected.get(index)
            assert next(decoded) == alone
    assert next(decoded, None) is None


def _parses(raw: bytes) -> bool:
    try:
        msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return False
    return True


# -- duplicate keys: the last value wins, and is the one validated ----------------------------

GOOD_AND_BAD: dict[str, tuple[list[bytes], list[bytes]]] = {
    "timestamp": (
        [b"1795255200000", b'"2026-11-21T10:00:00Z"', b"946684800000"],
        [b"12", b'"1999-12-31T23:59:59Z"', b'"yesterday"', b"1795255200000.5", b"true", b"null"],
    ),
    "model_id": ([b'"m"', b'"fraud.v2"'], [b'"m 1"', b'"-m"', b'""', b"7", b'"m\\u0000"']),
    "prediction_id": ([b'"p"', b'"\\u0000"'], [b'""', b"1", b"null", b"[]"]),
    "label": (
        [b"1", b"0.5", b'"cat"', b"true"],
        [b"1e999", b"null", b"{}", b"18446744073709551616"],
    ),
    "event_id": ([b'"e"', b"null"], [b'""', b"3", b"{}"]),
    "features": (
        [b'{"a": 1}', b"{}", b'{"a": 1, "a": "x"}'],
        [b"[]", b'{"a": {}}', b'{"a": 1e999}', b'{"\\u0001": 1}', b'{"": 1}'],
    ),
    "score": ([b"0.5", b'{"a": 1}', b"null"], [b"1.5", b'{"a": -0.1}', b'"high"', b'{"a": 1e999}']),
    "tags": ([b'{"a": "x"}', b"{}", b"null"], [b'{"a": 1}', b'"PT"', b'{"\\u0001": "x"}', b"[]"]),
}
DUPLICATE_KINDS = {
    "timestamp": "label",
    "model_id": "label",
    "prediction_id": "label",
    "label": "label",
    "event_id": "label",
    "features": "input",
    "score": "prediction",
    "tags": "prediction",
}


@given(data=st.data(), field=st.sampled_from(sorted(GOOD_AND_BAD)), in_array=st.booleans())
@settings(max_examples=scaled(1.0))
@example(data=None, field="timestamp", in_array=False).via("the brief's two cases")
def test_a_repeated_key_is_decided_by_its_last_value(
    data: st.DataObject | None, field: str, in_array: bool
) -> None:
    good, bad = GOOD_AND_BAD[field]
    kind = DUPLICATE_KINDS[field]
    if data is None:
        cases = [[good[0], bad[0]], [bad[0], good[0]], [bad[1], good[1]], [good[1], bad[1]]]
    else:
        values = st.sampled_from(good + bad)
        cases = [data.draw(st.lists(values, min_size=2, max_size=4), label="values")]
    for values in cases:
        base = {k: v for k, v in MINIMAL[kind].items() if k != field}
        if kind == "prediction" and field == "score":
            base = MINIMAL["prediction"]
        head = encode_doc(base)[:-1]
        repeated = b"".join(b', "' + field.encode() + b'": ' + v for v in values)
        payload = head + repeated + b"}"
        if in_array:
            payload = b"[" + encode_doc(MINIMAL[kind]) + b", " + payload + b"]"
        batch = check_batch(kind, payload)
        last_is_good = values[-1] in good
        note(f"{payload!r}: {[(r.error.reason, str(r.error)) for r in batch.rejected]}")
        if last_is_good:
            assert batch.rejected == [], (values, batch.rejected[0].error)
            event = batch.events[-1]
            alone = DECODER.decode(
                kind, head + b', "' + field.encode() + b'": ' + values[-1] + b"}"
            )  # type: ignore[arg-type]
            assert getattr(event, field) == getattr(alone, field), "the last value is the one kept"
        else:
            assert len(batch.rejected) == 1, values
            error = batch.rejected[0].error
            prefix = "$[1]" if in_array else "$"
            assert error.path.startswith(f"{prefix}.{field}"), error
            # The error speaks of the value that was refused: the last one.
            alone = decode_or_error(
                kind, head + b', "' + field.encode() + b'": ' + values[-1] + b"}"
            )
            assert isinstance(alone, DecodeError)
            assert (error.reason, error.path) == (alone.reason, prefix + alone.path[1:])


# -- driftline's own words: the validator agrees with the parser ------------------------------

# Tight limits, so that generated documents often break them.
TIGHT = Limits(
    max_features=2,
    max_classes=2,
    max_depth=4,
    max_id_length=3,
    max_opaque_id_length=3,
    max_name_length=3,
    max_string_length=4,
    min_timestamp_ms=DEFAULT.min_timestamp_ms + 10**11,
    max_timestamp_ms=DEFAULT.max_timestamp_ms - 10**11,
)
JUDGES = {DEFAULT: DECODER, TIGHT: EventDecoder(TIGHT)}


@st.composite
def repeated_keys(draw: st.DrawFn) -> tuple[str, bytes]:
    """An event repeating one key with good and bad values (see GOOD_AND_BAD)."""
    field = draw(st.sampled_from(sorted(GOOD_AND_BAD)))
    kind = DUPLICATE_KINDS[field]
    good, bad = GOOD_AND_BAD[field]
    values = draw(st.lists(st.sampled_from(good + bad), min_size=2, max_size=3))
    head = encode_doc({k: v for k, v in MINIMAL[kind].items() if k != field})[:-1]
    return kind, head + b"".join(b', "' + field.encode() + b'": ' + v for v in values) + b"}"


def documents_and_bytes(kind: str) -> Any:
    return st.one_of(
        valid_documents(kind).map(encode_doc),
        broken_documents(kind).map(lambda d: json.dumps(d).encode()),
        broken_documents(kind).map(lambda d: json.dumps(d, ensure_ascii=False).encode()),
        mutated(valid_documents(kind).map(encode_doc)),
        garbage(),
    )


PAYLOADS = st.one_of(
    ANY_KIND.flatmap(lambda kind: st.tuples(st.just(kind), documents_and_bytes(kind))),
    repeated_keys(),
)


def label_with(fragment: bytes) -> tuple[str, bytes]:
    """A valid label with ``fragment`` (``"key": value``) added as raw JSON text."""
    return "label", encode_doc(VALID_LABEL)[:-1] + b", " + fragment + b"}"


@given(case=PAYLOADS, limits=st.sampled_from([DEFAULT, TIGHT]))
@settings(max_examples=scaled(3.0))
# Bytes that are not UTF-8, NaN-free oddities and lone surrogates: refused where the contract
# reads the text, ignored in fields it does not know (as the parser skips them).
@example(case=label_with(b'"x": "\xff", "\xfe": 1'), limits=DEFAULT)
@example(case=label_with(b'"event_id": "a\xffb"'), limits=DEFAULT)
@example(case=label_with(b'"event_id": "\xed\xa0\x80"'), limits=DEFAULT)
@example(case=label_with(b'"x": "\xed\xa0\x80", "y": "\xc0\x80"'), limits=DEFAULT)
@example(
    case=("input", b'{"model_id": "m", "timestamp": 1795255200000, "features": {"\xff": 1}}'),
    limits=DEFAULT,
)
@example(case=label_with(b'"x": 1e999, "y": ' + b"9" * 5000), limits=DEFAULT)
@example(case=label_with(b'"x": "\\udc80"'), limits=DEFAULT)
@example(case=label_with(b'"x": "\\\\udc80"'), limits=DEFAULT)
@example(case=label_with(b'"x": "\\ud83d\\ude42\\ud83d"'), limits=DEFAULT)
@example(case=label_with(b'"x": "\x7f"'), limits=DEFAULT)
# Timestamps: rounding to the microsecond moves them across the range's edges.
@example(case=label_with(b'"timestamp": "1999-12-31T23:59:59.9999995Z"'), limits=DEFAULT)
@example(case=label_with(b'"timestamp": "1999-12-31T23:59:59.9999994Z"'), limits=DEFAULT)
@example(case=label_with(b'"timestamp": "2200-01-01T00:00:00.0009995Z"'), limits=DEFAULT)
@example(case=label_with(b'"timestamp": "2026-11-21T10:00:00.1234567+23:59"'), limits=DEFAULT)
@example(case=label_with(b'"timestamp": "9999-12-31T23:59:59.9999995Z"'), limits=DEFAULT)
@example(case=("label", b"[1, 2"), limits=DEFAULT)
def test_driftline_finds_a_fault_exactly_when_the_parser_refuses(
    case: tuple[str, bytes], limits: Limits
) -> None:
    """Documents of every shape, under the default and under tight limits (check_own_words)."""
    kind, payload = case
    decode_or_error(kind, payload, JUDGES[limits])


@given(
    pair=timestamp_strings(DEFAULT.min_timestamp_ms, DEFAULT.max_timestamp_ms),
    cut=st.integers(0, 40),
    junk=st.sampled_from(["", "0", "Z", ":", "+", " ", "\x00", "٣", "9"]),
)
def test_driftline_reads_rfc3339_as_the_parser_does(
    pair: tuple[str, int], cut: int, junk: str
) -> None:
    """Timestamps, cut short or spliced with stray characters: the same verdict, the same
    milliseconds."""
    text, _ = pair
    text = text[:cut] + junk + text[cut:] if cut < len(text) else text + junk
    payload = encode_doc({**VALID_LABEL, "timestamp": text})
    outcome = decode_or_error("label", payload)  # (check_own_words: the same verdict)
    if not isinstance(outcome, DecodeError):
        assert rfc3339_ms(text) == outcome.timestamp


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-21T10:00:59Z",
        "2026-11-21T10:00:60Z",
        "2026-11-21T23:59:59Z",
        "2026-11-21T24:00:00Z",
        "2026-11-21T10:60:00Z",
        "2026-11-21T10:00:00+23:59",
        "2026-11-21T10:00:00+24:00",
        "2026-11-21T10:00:00-23:60",
        "2026-11-21T10:00:00+2359",
        "2026-11-21T10:00:00+23",
        "2026-11-21T10:00:00+23:5",
        "2026-13-01T10:00:00Z",
        "2026-11-00T10:00:00Z",
        "0000-01-01T00:00:00Z",
        "2026-02-29T10:00:00Z",
        "2028-02-29T10:00:00Z",
        "2100-02-29T10:00:00Z",
        "2026-11-21T10:00:00.Z",
        "2026-11-21T10:00:00,5Z",
        "2026-11-21_10:00:00Z",
        "2026-11-21T10:00Z",
        "2026-11-21T10:00:00.123456789123Z",
        "1999-12-31T23:59:59.9999995Z",
        "1999-12-31T23:59:59.9999994Z",
        "2000-01-01T00:59:59.9999995+01:00",
        "2200-01-01T00:00:00.0009995Z",
        "2200-01-01T00:00:00.001Z",
    ],
)
def test_timestamp_edges_get_the_same_verdict_from_both(text: str) -> None:
    outcome = decode_or_error("label", encode_doc({**VALID_LABEL, "timestamp": text}))
    if not isinstance(outcome, DecodeError):
        assert rfc3339_ms(text) == outcome.timestamp


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("latency_ms", 0),
        ("latency_ms", -0.0),
        ("latency_ms", -0.5),
        ("latency_ms", -(10**400)),
        ("score", -0.0),
        ("score", 1),
        ("score", 2),
        ("score", 1.0000000000000002),
        ("score", {"a": 1, "b": True}),
        ("prediction", 2**63 - 1),
        ("prediction", 2**63),
        ("prediction", -(2**63)),
        ("prediction", -(2**63) - 1),
        ("prediction", 1.7976931348623157e308),
        ("features", {"a": 10**308}),
        ("features", {"a": 2 * 10**308}),
        ("features", {"a": -(10**308), "b": 5e-324}),
    ],
)
def test_number_edges_get_the_same_verdict_from_both(field: str, value: Any) -> None:
    decode_or_error("prediction", encode_doc({**MINIMAL["prediction"], field: value}))


@pytest.mark.parametrize("case", contract_cases.BAD, ids=lambda case: case.name)
def test_the_contract_cases_get_the_same_verdict_from_both(case: contract_cases.Bad) -> None:
    assert isinstance(decode_or_error(case.kind, case.payload()), DecodeError)


# -- a fetch at once: decode_many agrees with decode on every payload ---------------------------


def _one_at_a_time(kind: str, payloads: list[bytes]) -> list[Any]:
    decoder = EventDecoder()
    return [decode_or_error(kind, payload, decoder) for payload in payloads]


@given(
    kind=ANY_KIND,
    payloads=st.lists(st.one_of(valid_payloads(), garbage(), st.none()), min_size=1, max_size=6),
)
@settings(max_examples=scaled(2.0))
@example(kind="label", payloads=[encode_doc(VALID_LABEL), None])
@example(kind="label", payloads=[encode_doc(VALID_LABEL), b" " + encode_doc(VALID_LABEL)])
def test_decode_many_agrees_with_decode_or_declines(
    kind: str, payloads: list[bytes | None]
) -> None:
    """The fast path returns exactly the events decode gives one at a time, or declines
    (None) when any payload is not a valid lone event: never a different verdict."""
    fast = EventDecoder().decode_many(kind, payloads)  # type: ignore[arg-type]
    if fast is None:
        if all(p is not None for p in payloads):
            verdicts = _one_at_a_time(kind, payloads)  # type: ignore[arg-type]
            lone = all(p.lstrip()[:1] == b"{" for p in payloads)  # type: ignore[union-attr]
            # Declined while every payload was a valid lone object: only for one that opens
            # many brackets, starts with whitespace, or repeats a key (read one at a time).
            if lone and not any(isinstance(v, DecodeError) for v in verdicts):
                assert any(
                    p.count(b"{") + p.count(b"[") > DEFAULT.max_depth  # type: ignore[union-attr]
                    or p[:1] != b"{"  # type: ignore[index]
                    or decoder_module._repeats_a_key(p)  # type: ignore[arg-type]
                    for p in payloads
                )
        return
    assert all(p is not None for p in payloads)
    verdicts = _one_at_a_time(kind, payloads)  # type: ignore[arg-type]
    assert not any(isinstance(v, DecodeError) for v in verdicts)
    assert fast == verdicts


@given(
    kind=ANY_KIND,
    docs=st.data(),
    size=st.integers(1, 8),
)
@settings(max_examples=scaled(0.5))
def test_decode_many_takes_a_fetch_of_valid_events(
    kind: str, docs: st.DataObject, size: int
) -> None:
    """Valid lone events, as producers send them, are read on the fast path."""
    payloads = [encode_doc(docs.draw(valid_documents(kind))) for _ in range(size)]
    assume(all(p.count(b"{") + p.count(b"[") <= DEFAULT.max_depth for p in payloads))
    fast = EventDecoder().decode_many(kind, payloads)
    assert fast is not None
    assert fast == _one_at_a_time(kind, payloads)


def test_decode_many_declines_two_bad_halves_that_join_into_two_events() -> None:
    """Each payload is parsed on its own: two malformed messages whose bytes would make two
    events if joined into one JSON text are declined (and dead-lettered one at a time)."""
    first = encode_doc(VALID_LABEL)[:-1] + b',"k":"}'
    second = b'{","x":1}'
    assert decode_many_or_none("label", [first, second]) is None
    assert all(isinstance(v, DecodeError) for v in _one_at_a_time("label", [first, second]))


def decode_many_or_none(kind: str, payloads: list[bytes]) -> Any:
    return EventDecoder().decode_many(kind, payloads)  # type: ignore[arg-type]
