"""Alerts and commands: CloudEvents with ids fixed by the decision."""

from __future__ import annotations

import msgspec
import orjson
import pytest

from schemas import (
    COMMAND_TYPES,
    Evidence,
    decode_alert,
    decode_command,
    encode,
    make_alert,
    make_retrain,
    make_rollback,
)
from tests.contract_cases import TS

EVIDENCE = Evidence(detector="two_proportion_z", statistic=4.1, threshold=2.33)


def alert(**overrides):
    args = dict(
        model_id="fraud",
        model_version="3",
        status="firing",
        signal="feature",
        detector="adwin+page_hinkley",
        statistic=4.2,
        threshold=3.0,
        feature="amount",
        event_time_ms=TS + 10,
        started_at_ms=TS,
        summary="amount drifted",
    )
    args.update(overrides)
    return make_alert("data_drift", **args)


def test_alert_is_a_structured_cloudevent():
    doc = orjson.loads(encode(alert()))
    assert doc["specversion"] == "1.0"
    assert doc["type"] == "io.driftline.alert.data_drift"
    assert doc["subject"] == "fraud"
    assert doc["source"] == "/driftline"
    assert doc["time"] == "2026-11-21T10:00:00.010Z"
    assert doc["datacontenttype"] == "application/json"
    assert doc["data"]["started_at"] == "2026-11-21T10:00:00.000Z"
    assert doc["data"]["status"] == "firing"


def test_same_decision_same_id_and_different_decisions_differ():
    assert alert().id == alert(statistic=9.9, event_time_ms=TS + 99, summary="other").id
    ids = {
        alert().id,
        alert(status="resolved").id,
        alert(feature="age").id,
        alert(started_at_ms=TS + 1).id,
        alert(model_id="other").id,
        alert(signal="score").id,
    }
    assert len(ids) == 6


def test_two_versions_firing_the_same_alert_at_once_get_two_ids():
    """A rollout runs two versions side by side: the same alert on both, in the same
    millisecond, is two decisions (de-duplicating on the id would lose one of them)."""
    assert alert(model_version="3").id != alert(model_version="4").id
    assert alert(model_version="3").id == alert(model_version="3").id
    assert alert(model_version=None).id != alert(model_version="3").id  # a model-level alert


def test_rollback_id_depends_only_on_the_version_pair():
    a = make_rollback(
        model_id="m",
        from_version="4",
        to_version="3",
        reason="worse",
        evidence=EVIDENCE,
        decided_at_ms=TS,
    )
    b = make_rollback(
        model_id="m",
        from_version="4",
        to_version="3",
        reason="worse",
        evidence=Evidence(detector="x", statistic=1, threshold=2),
        decided_at_ms=TS + 5000,
    )
    c = make_rollback(
        model_id="m",
        from_version="5",
        to_version="3",
        reason="worse",
        evidence=EVIDENCE,
        decided_at_ms=TS,
    )
    assert a.id == b.id != c.id


def test_retrain_carries_its_window_and_evidence():
    command = make_retrain(
        model_id="m",
        model_version="2",
        reason="concept_drift",
        evidence=EVIDENCE,
        window_start_ms=TS,
        decided_at_ms=TS + 3_600_000,
        episode_ms=TS,
    )
    doc = orjson.loads(encode(command))
    assert doc["type"] == COMMAND_TYPES["retrain"]
    assert doc["data"]["window"] == {
        "start": "2026-11-21T10:00:00.000Z",
        "end": "2026-11-21T11:00:00.000Z",
    }
    assert doc["data"]["evidence"]["detector"] == "two_proportion_z"


def test_round_trip_through_bytes():
    assert decode_alert(encode(alert())) == alert()
    command = make_rollback(
        model_id="m",
        from_version="4",
        to_version="3",
        reason="worse",
        evidence=EVIDENCE,
        decided_at_ms=TS,
    )
    assert decode_command(encode(command)) == command
    retrain = make_retrain(
        model_id="m",
        model_version="2",
        reason="concept_drift",
        evidence=EVIDENCE,
        window_start_ms=TS,
        decided_at_ms=TS,
        episode_ms=TS,
    )
    assert decode_command(encode(retrain)) == retrain


def test_unknown_types_are_refused_by_the_consumer_helpers():
    doc = orjson.loads(encode(alert()))
    doc["type"] = "io.driftline.alert.nope"
    with pytest.raises(msgspec.ValidationError):
        decode_alert(orjson.dumps(doc))
    doc["type"] = "io.driftline.command.nope"
    with pytest.raises(msgspec.ValidationError):
        decode_command(orjson.dumps(doc))
