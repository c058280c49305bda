"""Saved model states of earlier releases keep loading, and the models carry on from them.

``fixtures/states-format-3.json.gz``: the same models and a segmented one as today's layouts
save them (the join's is 3: a waiting prediction's score may be a class -> probability object,
and its segment code may follow; a multiclass version keeps its score metrics,
``class_score_quality``; a segmented model its segments; a regression version its estimated
MAE, ``loss_estimator``).

``fixtures/states-format-2.json.gz``: the same models as the layouts before saved them (the
join's was 2: a waiting prediction may carry its probability score, a number).

``fixtures/states-format-1.json.gz``: models of six scenarios as this layout (every
component's record numbered 1, see :mod:`detectors.saved_state`) saves them.

``fixtures/states-8f8575c.json``: two models (a concept drift under way, a rollout) as the
release before the rare-events change saved them (made by running the scenarios below through
that revision's Monitor). What the older format lacks starts afresh: the performance test's
reference (``warming up``), and the retrain policy's error levels.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import msgspec
import orjson
import pytest
import scenarios

from detectors.base import StateError
from detectors.error_rate import ErrorRateDriftDetector
from detectors.monitor import Monitor
from schemas import Prediction
from schemas.decoder import EventDecoder
from tests.core.test_golden import first_difference

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


# -- today's format: every component's record numbered (detectors.saved_state) ----------------

FORMAT_1 = FIXTURES / "states-format-1.json.gz"
FORMAT_2 = FIXTURES / "states-format-2.json.gz"
#: Today's layouts: the join's is 3 (a waiting score may be a class -> probability object, and
#: its segment code may follow), and a model's segments are saved.
CURRENT = FIXTURES / "states-format-3.json.gz"
#: Components whose layout moved on since each older fixture: path in a model -> (number
#: then, number now).
MOVED_ON = {
    FORMAT_1: {("join",): (1, 3)},
    FORMAT_2: {("join",): (2, 3)},
}
FORMAT_1_SCENARIOS = (
    "concept_drift",
    "rollout",
    "regression",
    "multiclass",
    "quality_and_labels",
    "slow_rollout",
)
CURRENT_SCENARIOS = (
    *FORMAT_1_SCENARIOS,
    "failing_segment",
    "estimated_drop",
    "estimated_mae_rise",
)


def saved_now() -> dict:
    """The models of the scenarios above, saved by this revision."""
    from stream.replay import replay
    from tests.core.test_golden import CONFIG, SCENARIOS, lines

    monitor = Monitor(CONFIG)
    for name in CURRENT_SCENARIOS:
        records = SCENARIOS[name]()
        if name == "failing_segment":
            records = records[:-15]  # the last labels not in yet: predictions wait, segmented
        if name == "estimated_mae_rise":
            records = records[:-250]  # ... and held with their features by its estimator
        for _ in replay(lines(records), monitor=monitor):
            pass
    # The multiclass scenario's labels all came: a few predictions still waiting for theirs
    # put class -> probability scores in the join's state.
    last = monitor.models["m-multi"].watermark
    monitor.process(
        [
            Prediction(
                model_id="m-multi",
                model_version="1",
                prediction_id=f"waiting-{i}",
                timestamp=last + i,
                prediction="cat",
                score={"cat": 0.5 + i / 10, "dog": 0.3 - i / 20, "fox": 0.2 - i / 20},
            )
            for i in range(1, 4)
        ]
    )
    return {model_id: monitor.model_state(model_id) for model_id in sorted(monitor.models)}


@pytest.mark.parametrize("fixture", [FORMAT_1, FORMAT_2], ids=["format-1", "format-2"])
def test_states_of_older_formats_load_and_save_back_unchanged_but_for_newer_layouts(fixture):
    """Format 1 was written by the revision that numbered the layouts, format 2 by the one
    before class -> probability scores and segments. Loading and saving again gives the same
    record, bit for bit, except the layout number of the components that moved on since (whose
    older layout their loader still reads) and the order of the join's remembered ids: no
    component drops or renames what it was given."""
    saved = orjson.loads(gzip.decompress(fixture.read_bytes()))
    assert len(saved) == len(FORMAT_1_SCENARIOS)
    for model_id, state in saved.items():
        monitor = Monitor()
        monitor.load_model_state(model_id, state)
        again = orjson.loads(orjson.dumps(monitor.model_state(model_id)))
        for path, (then, now) in MOVED_ON[fixture].items():
            record = state["model"]
            for key in path:
                record = record[key]
            assert record["format"] == then
            record["format"] = now
        join = state["model"]["join"]
        for ids in ("joined", "expired"):
            join[ids] = in_saved_order(join[ids], monitor.models[model_id].config.join.remember)
        assert again == state, first_difference(state, again, model_id)


def in_saved_order(keys: list[int], remember: int) -> list[int]:
    """Remembered id hashes as today's join saves them: each generation (the previous one's
    ``remember // 2`` first) in ascending order; older revisions wrote them in the order of
    their table's slots, which depends on the order they came in."""
    generation = remember // 2
    if len(keys) <= generation:
        return sorted(keys)
    return sorted(keys[:generation]) + sorted(keys[generation:])


def test_states_of_todays_format_load_and_save_back_unchanged():
    """Today's layouts (``DRIFTLINE_REGOLD=1`` rewrites this fixture: only when no layout
    changed; a change of layout adds a fixture, and keeps this one)."""
    if os.environ.get("DRIFTLINE_REGOLD") == "1":
        CURRENT.write_bytes(gzip.compress(orjson.dumps(saved_now()), mtime=0))
    from tests.core.test_golden import CONFIG

    saved = orjson.loads(gzip.decompress(CURRENT.read_bytes()))
    assert len(saved) == len(CURRENT_SCENARIOS)
    assert saved["m-rollout"]["model"]["join"]["format"] == 3
    assert any(len(w) == 5 for _, w in saved["m-segment"]["model"]["join"]["predictions"])
    multiclass = saved["m-multi"]["model"]
    assert any(type(w[3]) is dict for _, w in multiclass["join"]["predictions"] if len(w) == 4)
    assert multiclass["versions"]["1"]["class_score_quality"]["labels"]
    for model_id, state in saved.items():
        monitor = Monitor(CONFIG)
        monitor.load_model_state(model_id, state)
        again = orjson.loads(orjson.dumps(monitor.model_state(model_id)))
        assert again == state, first_difference(state, again, model_id)


def test_every_component_record_is_numbered():
    saved = orjson.loads(gzip.decompress(CURRENT.read_bytes()))
    model = saved["m-quality"]["model"]
    version = model["versions"]["1"]
    feature = model["features"]["plan"]
    records = [model, model["join"], model["alerts"], model["retrain"], model["rollback"]]
    records += [version, version["metrics"], version["performance"], feature, feature["quality"]]
    records += [saved["m-reg"]["model"]["versions"]["1"]["metrics"]]
    records += [saved["m-slow"]["model"]["versions"]["2"]["latency"]]
    segments = saved["m-segment"]["model"]["segments"]
    records += [segments, segments["errors"], *segments["slots"]]
    records += [saved["m-multi"]["model"]["versions"]["1"]["class_score_quality"]]
    estimator = saved["m-estimate"]["model"]["versions"]["1"]["estimator"]
    records += [estimator, estimator["calibration"]]
    loss = saved["m-dle"]["model"]["versions"]["1"]["loss_estimator"]
    records += [loss, loss["model"]]
    assert all(record["format"] == (3 if record is model["join"] else 1) for record in records)
    # Detectors carry their own numbered layout (detectors.base.Detector.STATE_VERSION).
    assert version["concept"]["version"] == feature["detector"]["version"] == 1


@pytest.mark.parametrize(
    ("path", "component"),
    [
        (("join",), "LabelJoiner"),
        (("alerts",), "AlertBook"),
        (("retrain",), "RetrainPolicy"),
        (("rollback",), "RollbackPolicy"),
        (("versions", "1"), "VersionState"),
        (("versions", "1", "metrics"), "RollingClassification"),
        (("versions", "1", "performance"), "PerformanceTest"),
        (("features", "plan"), "FeatureMonitor"),
        (("features", "plan", "quality"), "QualityCounter"),
        ((), "ModelState"),
        (("versions", "2", "latency"), "LatencyWindow"),
        (("segments",), "Segments"),
        (("segments", "slots", 1), "SegmentSlots"),
        (("segments", "errors"), "SegmentErrors"),
        (("versions", "1", "class_score_quality"), "ClassScoreQuality"),
        (("versions", "1", "estimator"), "PerformanceEstimator"),
        (("versions", "1", "estimator", "calibration"), "IsotonicCalibration"),
        (("versions", "1", "loss_estimator"), "LossEstimator"),
        (("versions", "1", "loss_estimator", "model"), "AbsoluteErrorModel"),
    ],
)
def test_a_newer_format_is_refused_naming_its_component(path, component):
    """A state written by a newer driftline is refused with a reason, not misread."""
    from tests.core.test_golden import CONFIG

    model_id = {"LatencyWindow": "m-slow", "ClassScoreQuality": "m-multi"}.get(
        component, "m-quality"
    )
    if component.startswith("Segment"):
        model_id = "m-segment"
    if component in ("PerformanceEstimator", "IsotonicCalibration"):
        model_id = "m-estimate"
    if component in ("LossEstimator", "AbsoluteErrorModel"):
        model_id = "m-dle"
    saved = orjson.loads(gzip.decompress(CURRENT.read_bytes()))[model_id]
    record = saved["model"]
    for key in path:
        record = record[key]
    record["format"] = 9
    with pytest.raises(StateError, match=f"{component} state format 9 is newer"):
        Monitor(CONFIG).load_model_state(model_id, saved)
