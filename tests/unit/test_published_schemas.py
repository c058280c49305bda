"""The published JSON Schema files say what the decoder and the encoders do."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import msgspec
import orjson
import pytest

from schemas import (
    ALERT_TYPES,
    EventDecoder,
    Evidence,
    encode,
    make_alert,
    make_retrain,
    make_rollback,
)
from tests.contract_cases import BAD, TS, VALID

SCHEMA_FILES = ["prediction", "input", "label", "alert", "command"]


def load(name: str) -> dict:
    text = resources.files("schemas").joinpath(f"{name}.schema.json").read_text()
    return json.loads(text)


def validator(name: str) -> jsonschema.protocols.Validator:
    schema = load(name)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_schema_files_are_valid_draft_2020_12(name):
    schema = load(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")  # Python's json accepts NaN/Infinity; JSON does not


def _schema_accepts(kind: str, payload: bytes) -> bool:
    """The schema's verdict on a message: one object, or an array of them."""
    try:
        document = json.loads(payload, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return False  # not JSON at all: no schema accepts it
    check = validator(kind)
    items = document if isinstance(document, list) else [document]
    return bool(items) and all(check.is_valid(item) for item in items)


@pytest.mark.parametrize(
    ("kind", "doc"), [(k, d) for k, docs in VALID.items() for d in docs], ids=repr
)
def test_valid_examples_pass_schema_and_decoder(kind, doc):
    payload = orjson.dumps(doc)
    assert _schema_accepts(kind, payload)
    assert EventDecoder().decode(kind, payload)


@pytest.mark.parametrize("case", [c for c in BAD if c.in_json_schema], ids=lambda c: c.name)
def test_schema_rejects_what_the_decoder_rejects(case):
    payload = case.payload()
    assert EventDecoder().decode_batch(case.kind, payload).rejected
    assert not _schema_accepts(case.kind, payload), f"the schema accepts {case.name}"


def test_decoder_and_schemas_agree_on_required_fields():
    for kind, cls in (("prediction", "Prediction"), ("input", "Input"), ("label", "Label")):
        import schemas

        struct = getattr(schemas, cls)
        required = [
            f
            for f, d in zip(
                struct.__struct_fields__,
                (msgspec.NODEFAULT,)
                * (len(struct.__struct_fields__) - len(struct.__struct_defaults__))
                + struct.__struct_defaults__,
                strict=True,
            )
            if d is msgspec.NODEFAULT
        ]
        assert sorted(load(kind)["required"]) == sorted(required)
        assert set(load(kind)["properties"]) == set(struct.__struct_fields__)


def _evidence() -> Evidence:
    return Evidence(
        detector="adwin",
        statistic=0.31,
        threshold=0.05,
        signal="error",
        details={"samples": 400, "error_rate_before": 0.1},
    )


@pytest.mark.parametrize("kind", sorted(ALERT_TYPES))
@pytest.mark.parametrize("status", ["firing", "resolved"])
def test_every_alert_validates_against_the_alert_schema(kind, status):
    alert = make_alert(
        kind,
        model_id="m",
        model_version=None if "stall" in kind else "1",
        status=status,
        signal="inputs",
        detector="stall",
        statistic=12.0,
        threshold=10.0,
        event_time_ms=TS + 5,
        started_at_ms=TS,
        summary="x",
        feature=None,
    )
    validator("alert").validate(orjson.loads(encode(alert)))


def test_commands_validate_against_the_command_schema():
    retrain = make_retrain(
        model_id="m",
        model_version="2",
        reason="concept_drift",
        evidence=_evidence(),
        window_start_ms=TS,
        decided_at_ms=TS + 60_000,
        episode_ms=TS,
    )
    rollback = make_rollback(
        model_id="m",
        from_version="3",
        to_version="2",
        reason="worse_than_previous_version",
        evidence=_evidence(),
        decided_at_ms=TS,
    )
    check = validator("command")
    check.validate(orjson.loads(encode(retrain)))
    check.validate(orjson.loads(encode(rollback)))
    # The schema picks the data model by type: a rollback's data under the retrain type fails.
    wrong = orjson.loads(encode(rollback))
    wrong["type"] = "io.driftline.command.retrain"
    assert not check.is_valid(wrong)
