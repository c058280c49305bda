"""Saved model states of earlier releases keep loading, and the models carry on from them.

``fixtures/states-8f8575c.json``: two models (a concept drift under way, a rollout) as the
release before the rare-events change saved them (made by running the scenarios below through
that revision's Monitor). What the older format lacks starts afresh: the performance test's
reference (``warming up``), and the retrain policy's error levels.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import orjson
import scenarios

from detectors.error_rate import ErrorRateDriftDetector
from detectors.monitor import Monitor
from schemas.decoder import EventDecoder

FIXTURES = Path(__file__).parent / "fixtures"
KIND = {"predictions": "prediction", "inputs": "input", "labels": "label"}


def test_states_of_the_release_before_rare_events_load_and_carry_on():
    saved = orjson.loads((FIXTURES / "states-8f8575c.json").read_bytes())
    monitor = Monitor()
    for model_id, state in saved.items():
        monitor.load_model_state(model_id, state)
    concept = monitor.models["m-concept"].versions["1"]
    old = saved["m-concept"]["model"]["versions"]["1"]
    assert concept.outcomes == old["outcomes"] > 2_000
    assert isinstance(concept.concept, ErrorRateDriftDetector)
    assert concept.concept.ready
    assert concept.concept.drift_detected == old["concept"]["state"]["in_drift"]
    assert not concept.performance.ready  # not in the old format: its reference starts afresh
    assert set(monitor.models["m-rollout"].versions) == {"1", "2"}
    # More traffic (new prediction ids, later event times): no model is reset by an error.
    decoder = EventDecoder()
    later = scenarios.T0 + 3_600_000
    records = scenarios.concept_drift(n=3000, drift_at=0, t0=later, seed=5)
    events = [
        msgspec.structs.replace(event, prediction_id=f"later-{event.prediction_id}")
        for event in (decoder.decode(KIND[topic], payload) for topic, payload in records)
    ]
    for start in range(0, len(events), 500):
        monitor.process(events[start : start + 500])
    assert monitor.counters.resets == {}
    assert concept.outcomes > old["outcomes"] + 2_500
    assert concept.performance.ready  # its reference, from the traffic after the restart
    # Saved again in today's format, and read back.
    again = Monitor()
    again.load_model_state("m-concept", monitor.model_state("m-concept"))
    assert again.models["m-concept"].versions["1"].outcomes == concept.outcomes
