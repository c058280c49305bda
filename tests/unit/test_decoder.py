"""The event contract's decoder: valid events in every form, and every kind of bad input."""

from __future__ import annotations

import random
from typing import Any

import msgspec
import orjson
import pytest

from detectors.monitor import Monitor
from schemas import REASONS, DecodeError, EventDecoder, Input, Label, Limits, Prediction
from schemas.decoder import UNEXPLAINED, JSONParser
from schemas.explain import EventValidator
from stream.replay import replay
from tests.contract_cases import BAD, TS, VALID, Bad

KIND_TYPES = {"prediction": Prediction, "input": Input, "label": Label}


@pytest.fixture(scope="module")
def decoder() -> EventDecoder:
    return EventDecoder()


@pytest.mark.parametrize(
    ("kind", "doc"), [(k, d) for k, docs in VALID.items() for d in docs], ids=repr
)
def test_valid_events_decode_to_their_typed_model(decoder, kind, doc):
    event = decoder.decode(kind, orjson.dumps(doc))
    assert isinstance(event, KIND_TYPES[kind])
    assert event.kind == kind
    assert event.model_id == doc["model_id"]
    assert isinstance(event.timestamp, int)
    for name in ("prediction", "label", "features", "score", "event_id"):
        if name in doc:
            assert getattr(event, name) == doc[name]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (TS, TS),
        ("2026-11-21T10:00:00Z", TS),
        ("2026-11-21T10:00:00.000z", TS),
        ("2026-11-21T11:00:00+01:00", TS),
        ("2026-11-21T05:30:00-04:30", TS),
        ("2026-11-21T10:00:00.123456Z", TS + 123),
        ("2026-11-21 10:00:00Z", TS),
    ],
)
def test_timestamps_in_both_forms_normalise_to_epoch_ms(decoder, text, expected):
    doc = dict(VALID["label"][0], timestamp=text)
    assert decoder.decode("label", orjson.dumps(doc)).timestamp == expected


@pytest.mark.parametrize(("value", "kind"), [(True, bool), (3, int), (3.0, float), ("cat", str)])
def test_outcome_keeps_its_json_type(decoder, value, kind):
    """int and float stay distinct: that is how classification and regression are told apart."""
    event = decoder.decode("label", orjson.dumps(dict(VALID["label"][0], label=value)))
    assert type(event.label) is kind
    assert event.label == value


@pytest.mark.parametrize("case", BAD, ids=lambda c: c.name)
def test_bad_input_gives_a_precise_error(decoder, case: Bad):
    batch = decoder.decode_batch(case.kind, case.payload())
    assert batch.events == []
    assert batch.rejected, "a bad record must be rejected, not dropped"
    error = batch.rejected[0].error
    assert isinstance(error, DecodeError)
    assert (error.reason, error.path, error.detail) == (case.reason, case.path, case.detail)
    assert error.reason in REASONS
    assert str(error) == f"{error.path}: {error.detail}"


@pytest.mark.parametrize("case", [c for c in BAD if c.raw is None], ids=lambda c: c.name)
def test_decode_raises_the_same_error_as_decode_batch(decoder, case: Bad):
    with pytest.raises(DecodeError) as info:
        decoder.decode(case.kind, case.payload())
    assert (info.value.reason, info.value.path, info.value.detail) == (
        case.reason,
        case.path,
        case.detail,
    )


# -- driftline's words do not depend on the parser's ------------------------------------------

NONSENSE = "Expected `walrus`, got `teapot` - at `$.nowhere[...]`"


class Garbled:
    """Stands in for one of msgspec's decoders: the same verdicts, in nonsense words (as a new
    msgspec version might word them)."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def decode(self, payload: bytes) -> Any:
        return garble(self.real.decode, payload)


def garble(parse: Any, *args: Any) -> Any:
    """``parse(*args)``, raising what it raises with NONSENSE as the message."""
    try:
        return parse(*args)
    except Exception as exc:  # noqa: BLE001 - every error the parser raises, reworded
        raise type(exc)(NONSENSE) from None


class GarbledParser(JSONParser):
    """msgspec's verdicts, every message of it nonsense."""

    def __init__(self) -> None:
        super().__init__()
        self.events = {kind: Garbled(d) for kind, d in self.events.items()}
        self.elements = Garbled(self.elements)

    def last_values(self, kind: Any, payload: bytes) -> Any:
        return garble(super().last_values, kind, payload)


@pytest.fixture
def garbled() -> EventDecoder:
    """A decoder whose every msgspec message is nonsense."""
    return EventDecoder(parser=GarbledParser())


REPEATED_KEY = (
    "label",
    b'{"model_id": "m", "prediction_id": "p", "label": 1, "timestamp": 1795255200000, '
    b'"timestamp": 12}',
)


def test_the_parser_messages_change_nothing_but_the_cause(decoder, garbled):
    """Reason, path and detail of every bad case are driftline's: with msgspec's messages
    replaced by nonsense they are the same; only the cause (msgspec's words) differs."""
    cases = [(c.name, c.kind, c.payload()) for c in BAD]
    cases += [("repeated key", *REPEATED_KEY), ("array", "label", b'[{"label": 1}, 7]')]
    causes = 0
    for name, kind, payload in cases:
        expected = [r.error for r in decoder.decode_batch(kind, payload).rejected]
        got = [r.error for r in garbled.decode_batch(kind, payload).rejected]
        assert [(e.reason, e.path, e.detail) for e in got] == [
            (e.reason, e.path, e.detail) for e in expected
        ], name
        assert [e.cause for e in got] == [
            None if e.cause is None else NONSENSE for e in expected
        ], name
        causes += sum(e.cause is not None for e in got)
    assert causes > 40, "most bad cases are refused by the parser, with its message as cause"
    for kind, docs in VALID.items():
        for doc in docs:
            assert garbled.decode(kind, orjson.dumps(doc)) == decoder.decode(
                kind, orjson.dumps(doc)
            )


class Refusing:
    """A parser that refuses everything, even valid events."""

    def decode(self, payload: bytes) -> Any:
        raise msgspec.ValidationError("no, and no reason given")


class RefusingParser(JSONParser):
    def __init__(self) -> None:
        super().__init__()
        self.events = dict.fromkeys(self.events, Refusing())


def test_a_refusal_driftline_cannot_explain_still_gets_driftline_words():
    decoder = EventDecoder(parser=RefusingParser())
    payload = orjson.dumps(VALID["label"][0])
    with pytest.raises(DecodeError) as info:
        decoder.decode("label", payload)
    error = info.value
    assert (error.reason, error.path, error.detail) == UNEXPLAINED
    assert error.detail == "rejected by the parser (its message is in driftline-error-cause)"
    assert error.cause == "no, and no reason given"


class BrokenValidator(EventValidator):
    def problem(self, *args: Any) -> None:
        raise RuntimeError("a bug in the validator")


def test_a_validator_that_fails_cannot_turn_a_bad_record_into_a_crash():
    decoder = EventDecoder(validator=BrokenValidator())
    batch = decoder.decode_batch("label", b'{"label": 1}')
    [rejected] = batch.rejected
    assert (rejected.error.reason, rejected.error.path, rejected.error.detail) == UNEXPLAINED
    assert rejected.error.cause is not None


def test_the_parser_message_is_a_header_of_its_own(decoder):
    [rejected] = decoder.decode_batch("label", b'{"model_id": 7}').rejected
    headers = dict(rejected.error.as_headers())
    assert headers["driftline-error"] == b"$.model_id: expected a string, got an integer (7)"
    assert headers["driftline-error-reason"] == b"wrong_type"
    assert headers["driftline-error-path"] == b"$.model_id"
    assert headers["driftline-error-cause"] == rejected.error.cause.encode()
    assert rejected.error.cause, "msgspec's message, whatever it says"
    # An error the parser had no part in carries no cause.
    with pytest.raises(DecodeError) as info:
        decoder.decode("label", orjson.dumps(VALID["label"][0] | {"model_id": "a b"}))
    assert info.value.cause is None
    assert "driftline-error-cause" not in dict(info.value.as_headers())


def test_long_causes_are_cut_to_valid_utf8():
    error = DecodeError("invalid_value", "$", "x", cause="é" * 2000)
    cause = dict(error.as_headers())["driftline-error-cause"]
    assert len(cause) <= 1024
    assert cause.decode() == "é" * 512


def test_replay_dead_letter_lines_carry_the_cause_apart():
    lines = [
        b'{"topic": "model.labels", "value": {"model_id": 7}}',
        b'{"topic": "model.labels", "value": {"model_id": "a b", "prediction_id": "p", '
        b'"timestamp": 1795255200000, "label": 1}}',
        b"not a record",
    ]
    letters = [letter for letter, _ in replay(lines, monitor=Monitor()) if letter is not None]
    assert [(x["reason"], x["path"], x["error"]) for x in letters] == [
        ("wrong_type", "$.model_id", "$.model_id: expected a string, got an integer (7)"),
        (
            "invalid_value",
            "$.model_id",
            '$.model_id: "a b" is not a valid id: letters, digits and . _ : @ + - only, '
            "starting with a letter or digit (^[A-Za-z0-9][A-Za-z0-9._:@+\\-]*$)",
        ),
        (
            "invalid_json",
            "$",
            '$: not a replay record: expected a JSON object {"topic": ..., "value" or "raw": ...}',
        ),
    ]
    # The parser's words ride along where the parser refused: not for the id charset.
    assert [type(x["cause"]) for x in letters] == [str, type(None), str]


def test_array_message_keeps_good_events_and_rejects_bad_ones_by_index(decoder):
    good = [dict(VALID["label"][0], prediction_id=f"p{i}") for i in range(5)]
    docs = [*good[:2], dict(good[2], timestamp=12), *good[3:], "oops"]
    batch = decoder.decode_batch("label", orjson.dumps(docs))
    assert [e.prediction_id for e in batch.events] == ["p0", "p1", "p3", "p4"]
    assert [(r.index, r.error.path, r.error.reason) for r in batch.rejected] == [
        (2, "$[2].timestamp", "invalid_value"),
        (5, "$[5]", "not_an_object"),
    ]
    assert orjson.loads(batch.rejected[0].raw) == docs[2], "the rejected element's own bytes"


def test_array_of_valid_events_decodes_all_in_order(decoder):
    docs = [dict(VALID["prediction"][0], prediction_id=str(i)) for i in range(1000)]
    batch = decoder.decode_batch("prediction", orjson.dumps(docs))
    assert [e.prediction_id for e in batch.events] == [str(i) for i in range(1000)]
    assert batch.rejected == []


def test_unknown_fields_are_ignored_and_duplicate_keys_keep_the_last(decoder):
    payload = (
        b'{"model_id": "first", "model_id": "last", "prediction_id": "p", "label": 1,'
        b' "timestamp": 1795255200000, "brand_new": {"a": [1, 2, 3]}}'
    )
    event = decoder.decode("label", payload)
    assert event.model_id == "last"
    assert not hasattr(event, "brand_new")


@pytest.mark.parametrize(
    ("limits", "change", "reason", "path"),
    [
        (Limits(max_features=2), {"features": {"a": 1, "b": 2, "c": 3}}, "too_many", "$.features"),
        (Limits(max_classes=1), {"score": {"a": 0.5, "b": 0.5}}, "too_many", "$.score"),
        (Limits(max_id_length=3), {"model_id": "abcd"}, "too_long", "$.model_id"),
        (Limits(max_opaque_id_length=2), {"prediction_id": "abc"}, "too_long", "$.prediction_id"),
        (Limits(max_name_length=2), {"features": {"abc": 1}}, "too_long", "$.features.abc"),
        (Limits(max_string_length=2), {"prediction": "abc"}, "too_long", "$.prediction"),
        (Limits(max_depth=3), {"x": [[[1]]]}, "too_deep", "$"),
        (Limits(min_timestamp_ms=TS + 1), {}, "invalid_value", "$.timestamp"),
        (
            Limits(max_timestamp_ms=TS - 1),
            {"timestamp": "2026-11-21T10:00:00Z"},
            "invalid_value",
            "$.timestamp",
        ),
        (Limits(max_message_bytes=50), {}, "too_large", "$"),
    ],
)
def test_every_limit_is_a_setting(limits, change, reason, path):
    payload = orjson.dumps(dict(VALID["prediction"][0], **change))
    decoder = EventDecoder(limits)
    with pytest.raises(DecodeError) as info:
        decoder.decode("prediction", payload)
    assert (info.value.reason, info.value.path) == (reason, path), str(info.value)
    # ... and the same payload passes with default limits, unless it is the default's limit
    if limits.max_message_bytes > 50:
        assert EventDecoder().decode("prediction", payload)


def test_custom_limits_still_produce_the_contract_types():
    event = EventDecoder(Limits(max_features=5)).decode(
        "prediction", orjson.dumps(VALID["prediction"][0])
    )
    assert isinstance(event, Prediction)


def test_batch_limits():
    decoder = EventDecoder(Limits(max_batch_events=3))
    docs = [VALID["label"][0]] * 4
    batch = decoder.decode_batch("label", orjson.dumps(docs))
    assert batch.events == []
    assert batch.rejected[0].error.reason == "too_many"
    assert len(decoder.decode_batch("label", orjson.dumps(docs[:3])).events) == 3


def test_array_element_depth_counts_the_array_itself():
    decoder = EventDecoder(Limits(max_depth=4))
    ok = dict(VALID["prediction"][0], extra=[[1]])  # object 1 + 2 = 3, in an array: 4
    too_deep = dict(VALID["prediction"][0], extra=[[[1]]])
    batch = decoder.decode_batch("prediction", orjson.dumps([ok, too_deep]))
    assert len(batch.events) == 1
    assert [(r.index, r.error.reason) for r in batch.rejected] == [(1, "too_deep")]


def test_brackets_inside_strings_do_not_count_as_nesting(decoder):
    doc = dict(VALID["prediction"][0], prediction="[" * 100 + "{" * 100)
    assert decoder.decode("prediction", orjson.dumps(doc)).prediction.startswith("[[[")


def test_errors_are_safe_as_kafka_headers(decoder):
    batch = decoder.decode_batch("prediction", b'{"model_id": "\\u0000' + b"x" * 5000 + b'"}')
    headers = dict(batch.rejected[0].error.as_headers())
    assert headers["driftline-error-reason"] in {r.encode() for r in REASONS}
    assert len(headers["driftline-error"]) <= 2048
    assert len(headers["driftline-error-cause"]) <= 1024


def test_random_bytes_never_raise_anything_but_decode_error(decoder):
    """Whatever arrives, the decoder answers with events or DecodeErrors, never a crash."""
    rng = random.Random(20261121)
    seeds = [orjson.dumps(d) for docs in VALID.values() for d in docs]
    for _ in range(3000):
        base = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 8)):
            pos = rng.randrange(len(base))
            op = rng.random()
            if op < 0.4:
                base[pos] = rng.randrange(256)
            elif op < 0.7:
                del base[pos]
            else:
                base[pos:pos] = rng.choice([b"[", b"{", b'"', b"1e999", b"NaN", b"\\u0000", b","])
        for kind in ("prediction", "input", "label"):
            batch = decoder.decode_batch(kind, bytes(base))
            for rejected in batch.rejected:
                assert rejected.error.reason in REASONS


def test_events_can_be_built_and_encoded_by_producers():
    event = Prediction(
        model_id="m", model_version="1", prediction_id="p", timestamp=TS, prediction=0.5
    )
    assert EventDecoder().decode("prediction", msgspec.json.encode(event)) == event


# -- regressions found by fuzzing (tests/unit/test_fuzz_decoder.py) ----------------------------


def _alternating(levels: int) -> dict:
    """An event whose extra field nests arrays and objects in turn, ``levels`` deep in all."""
    value: object = 1
    for level in range(levels - 1):
        value = [value] if level % 2 == 0 else {"k": value}
    return dict(VALID["label"][0], extra=value)


@pytest.mark.parametrize(
    ("levels", "accepted"), [(32, True), (33, False), (41, False), (61, False)]
)
def test_alternating_arrays_and_objects_count_every_level_of_nesting(decoder, levels, accepted):
    """The depth screen peeled ``{}`` then ``[]`` in one pass, so ``[{}]`` counted as one level
    and alternating nesting passed at up to twice max_depth (61 levels with the default 32)."""
    payload = orjson.dumps(_alternating(levels))
    batch = decoder.decode_batch("label", payload)
    if accepted:
        assert batch.rejected == []
    else:
        assert [(r.error.reason, r.error.path) for r in batch.rejected] == [("too_deep", "$")]


OUTSIDE_IN_SECONDS = (
    "is outside the accepted range 2000-01-01T00:00:00.000Z .. 2200-01-01T00:00:00.000Z: "
    "epoch milliseconds expected (this looks like epoch seconds)"
)


def _label_with(*fragments: bytes) -> bytes:
    return b'{"model_id": "m", "prediction_id": "p", "label": 1, ' + b", ".join(fragments) + b"}"


def test_a_repeated_key_is_judged_on_its_last_value_as_documented(decoder):
    """'The last value wins': an invalid earlier value of a repeated key rejected the event
    (quoting the valid last value as the offence), unlike an RFC 3339 or charset one."""
    event = decoder.decode("label", _label_with(b'"timestamp": 12', b'"timestamp": 1795255200000'))
    assert event.timestamp == TS
    features = decoder.decode(
        "input",
        b'{"model_id": "m", "timestamp": 1795255200000, '
        b'"features": {"a": 1e999}, "features": {"a": 1}}',
    )
    assert features.features == {"a": 1.0}
    # ... and the last value is the one validated: a valid first value smuggles nothing.
    with pytest.raises(DecodeError) as info:
        decoder.decode("label", _label_with(b'"timestamp": 1795255200000', b'"timestamp": 12'))
    assert (info.value.reason, info.value.path, info.value.detail) == (
        "invalid_value",
        "$.timestamp",
        f"12 {OUTSIDE_IN_SECONDS}",
    )
    with pytest.raises(DecodeError) as info:
        decoder.decode("label", _label_with(b'"timestamp": 12', b'"timestamp": 13'))
    assert info.value.detail == f"13 {OUTSIDE_IN_SECONDS}"
    # Re-reading the message on the error path keeps JSON's rules: no NaN, no lone surrogate.
    for bad in (b'"x": NaN', b'"event_id": "\\ud800"'):
        with pytest.raises(DecodeError) as info:
            decoder.decode(
                "label", _label_with(b'"timestamp": 12', b'"timestamp": 1795255200000', bad)
            )
        assert info.value.reason in ("invalid_json", "invalid_value")
