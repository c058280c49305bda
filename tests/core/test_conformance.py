"""One conformance suite run over every detector (in the spirit of river's ``checks``)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import random

import orjson
import pytest

import detectors
from detectors.base import Detector, DriftDetector, StateError
from detectors.categorical import CategoricalDriftDetector
from detectors.error_rate import ErrorRateDriftDetector
from detectors.numeric import NumericDriftDetector
from detectors.stall import StallDetector


def detector_classes(base: type) -> list[type]:
    """Every concrete subclass of ``base`` in the ``detectors`` package, found by import:
    a new detector is checked here without anyone adding it to a list."""
    for module in pkgutil.iter_modules(detectors.__path__):
        importlib.import_module(f"detectors.{module.name}")
    found, todo = [], [base]
    while todo:
        for cls in todo.pop().__subclasses__():
            todo.append(cls)
            if not inspect.isabstract(cls) and cls.__module__.startswith("detectors."):
                found.append(cls)
    return sorted(set(found), key=lambda cls: cls.__name__)


# Every drift detector at its defaults, and the settings the core also uses.
DETECTORS = [cls() for cls in detector_classes(DriftDetector)] + [
    NumericDriftDetector(
        reference_size=100,
        block=4,
        span=64,
        confirm=128,
        direction="up",
        spread=False,
        track_change_point=True,
    ),
    CategoricalDriftDetector(reference_size=200, window=200, min_samples=100),
    ErrorRateDriftDetector(reference_size=200, reference_outcomes=200),
]
N, SHIFT_AT = 12_000, 6_000  # past every default reference


def test_the_drift_detectors_are_found():
    assert {type(d) for d in DETECTORS} == {
        NumericDriftDetector,
        CategoricalDriftDetector,
        ErrorRateDriftDetector,
    }
    assert detector_classes(Detector) == sorted(
        [*detector_classes(DriftDetector), StallDetector], key=lambda cls: cls.__name__
    )


@pytest.mark.parametrize("detector", DETECTORS, ids=repr)
def test_declares_the_protocol_the_core_uses(detector):
    fresh = detector.clone()
    assert fresh.takes in ("numbers", "categories", "errors")
    assert (fresh.ready, fresh.n, fresh.drift_detected) == (False, 0, False)
    assert isinstance(fresh.trigger, str)
    feed(fresh, stream_for(fresh, seed=6))
    assert fresh.ready
    assert 0 < fresh.n <= N
    assert isinstance(fresh.statistic, float)
    assert isinstance(fresh.threshold, float)


def stream_for(detector: DriftDetector, seed: int, n: int = N, shift_at: int = SHIFT_AT) -> list:
    rng = random.Random(seed)
    if detector.takes == "categories":
        return [
            rng.choices("abc", weights=[5, 3, 2] if i < shift_at else [1, 1, 8])[0]
            for i in range(n)
        ]
    if detector.takes == "errors":
        return [float(rng.random() < (0.1 if i < shift_at else 0.5)) for i in range(n)]
    return [rng.gauss(0, 1) + (2 if i >= shift_at else 0) for i in range(n)]


def feed(detector: DriftDetector, values: list) -> list[int]:
    return detector.update_many(values)


@pytest.mark.parametrize("detector", DETECTORS, ids=repr)
def test_detects_the_shift_it_is_built_for(detector):
    fresh = detector.clone()
    flips = feed(fresh, stream_for(fresh, seed=1))
    assert flips, "no drift found in a stream with an obvious shift"
    assert flips[0] >= SHIFT_AT, f"drift reported before the shift at {flips[0]}"
    assert fresh.drift_detected


@pytest.mark.parametrize("detector", DETECTORS, ids=repr)
def test_quiet_on_a_constant_stream(detector):
    fresh = detector.clone()
    value = {"categories": "a", "errors": 0.0, "numbers": 3.0}[fresh.takes]
    assert feed(fresh, [value] * 20_000) == []
    assert not fresh.drift_detected


@pytest.mark.parametrize("detector", DETECTORS, ids=repr)
def test_reset_forgets_everything(detector):
    used = detector.clone()
    feed(used, stream_for(used, seed=2))
    used.reset()
    fresh = detector.clone()
    values = stream_for(fresh, seed=3)
    assert feed(used, values) == feed(fresh, values)
    assert used.statistic == fresh.statistic


@pytest.mark.parametrize("detector", DETECTORS, ids=repr)
def test_clone_keeps_parameters_not_state(detector):
    used = detector.clone()
    feed(used, stream_for(used, seed=4))
    twin = used.clone()
    assert twin.params() == used.params()
    assert not twin.drift_detected
    assert twin.statistic == 0.0


@pytest.mark.parametrize("detector", DETECTORS, ids=repr)
@pytest.mark.parametrize("cut", [50, 6100, 9000])
def test_state_round_trip_through_json_continues_exactly(detector, cut):
    """Saved mid-stream (reference filling, drift starting, in drift) and restored from JSON
    bytes, a detector carries on exactly as if it had never stopped."""
    values = stream_for(detector, seed=5)
    original = detector.clone()
    feed(original, values[:cut])
    restored = type(detector).from_state(orjson.loads(orjson.dumps(original.to_state())))
    assert feed(restored, values[cut:]) == feed(original, values[cut:])
    assert restored.statistic == original.statistic
    assert restored.drift_detected == original.drift_detected


@pytest.mark.parametrize("detector", DETECTORS, ids=repr)
def test_state_of_another_kind_or_version_is_refused(detector):
    state = detector.clone().to_state()
    with pytest.raises(StateError):
        StallDetector.from_state(state)
    with pytest.raises(StateError):
        type(detector).from_state({**state, "version": 99})
    with pytest.raises(StateError):
        type(detector).from_state({**state, "state": {"garbage": True}})


def test_tampered_adwin_bytes_are_refused_not_executed():
    detector = NumericDriftDetector(reference_size=50)
    detector.update_many([float(i % 7) for i in range(500)])
    state = detector.to_state()
    state["state"]["adwin"]["core"] = "AAAA"  # valid base64, not an ADWIN
    with pytest.raises(StateError, match="ADWIN"):
        NumericDriftDetector.from_state(state)


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: NumericDriftDetector(reference_size=1), "reference_size"),
        (lambda: NumericDriftDetector(direction="down"), "direction"),
        (lambda: NumericDriftDetector(min_shift=0), "min_shift"),
        (lambda: NumericDriftDetector(block=0), "block"),
        (lambda: NumericDriftDetector(span=8, block=16), "span"),
        (lambda: CategoricalDriftDetector(min_samples=2000, window=1000), "min_samples"),
        (lambda: CategoricalDriftDetector(max_categories=1), "max_categories"),
        (lambda: StallDetector(timeout_ms=0), "timeout_ms"),
        (lambda: ErrorRateDriftDetector(alpha=2), "alpha"),
        (lambda: ErrorRateDriftDetector(min_window=10, max_window=5), "min_window"),
        (lambda: StallDetector(min_timeout_ms=10, max_timeout_ms=5), "min_timeout_ms"),
    ],
)
def test_bad_parameters_fail_at_construction_saying_what_is_valid(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


def test_stall_detector_round_trip_and_learned_timeout():
    detector = StallDetector(min_timeout_ms=1_000, multiplier=5, min_events=10)
    for t in range(0, 100_000, 1_000):  # every second
        detector.observe(t)
    assert detector.timeout == 5_000
    restored = StallDetector.from_state(orjson.loads(orjson.dumps(detector.to_state())))
    assert restored.check(104_000) is False
    assert restored.check(105_000) is True
    assert restored.stalled_since == 99_000 + 5_000
    assert restored.observe(106_000) is True
    assert not restored.drift_detected


def test_stall_needs_enough_events_before_learning():
    detector = StallDetector(min_events=20)
    for t in range(5):
        detector.observe(t * 1000)
    assert detector.check(10**9) is False  # not armed: 5 events say nothing about the rate
