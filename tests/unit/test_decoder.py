"""The event contract's decoder: valid events in every form, and every kind of bad input."""

from __future__ import annotations

import random

import msgspec
import orjson
import pytest

from schemas import REASONS, DecodeError, EventDecoder, Input, Label, Limits, Prediction
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
    assert error.reason == case.reason, str(error)
    assert error.path == case.path, str(error)
    assert case.detail in error.detail, str(error)
    assert error.reason in REASONS
    assert str(error).startswith(error.path + ": ")


@pytest.mark.parametrize("case", [c for c in BAD if c.raw is None], ids=lambda c: c.name)
def test_decode_raises_the_same_error_as_decode_batch(decoder, case: Bad):
    with pytest.raises(DecodeError) as info:
        decoder.decode(case.kind, case.payload())
    assert (info.value.reason, info.value.path) == (case.reason, case.path)


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
    assert (info.value.reason, info.value.path) == ("invalid_value", "$.timestamp")
    assert info.value.detail.startswith("12 is outside the accepted range")
    with pytest.raises(DecodeError) as info:
        decoder.decode("label", _label_with(b'"timestamp": 12', b'"timestamp": 13'))
    assert info.value.detail.startswith("13 is outside")
    # Re-reading the message on the error path keeps JSON's rules: no NaN, no lone surrogate.
    for bad in (b'"x": NaN', b'"event_id": "\\ud800"'):
        with pytest.raises(DecodeError) as info:
            decoder.decode(
                "label", _label_with(b'"timestamp": 12', b'"timestamp": 1795255200000', bad)
            )
        assert info.value.reason in ("invalid_json", "invalid_value")
