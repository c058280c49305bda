"""``performance_degradation`` on a score metric (``metrics.signal``): false alarms on
stationary streams and delays on degraded ones, counted over seeded streams, and the signal's
way through the configuration, a model and its saved state.

Streams: a binary classifier with calibrated scores (positives 30 %, ROC AUC ~0.86);
degraded, its scores get noisier (AUC ~0.76, log loss +45 %, Brier +40 %, ECE ~0.11) or
overconfident (logits x 2.5: ECE ~0.11, AUC unchanged). The checks run every 10 outcomes as
:class:`~detectors.outcome_decisions.OutcomeDecisions` runs them.
"""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from detectors.base import StateError
from detectors.class_score_quality import ClassScoreQuality
from detectors.config import ConfigError, MonitorConfig
from detectors.monitor import Monitor
from detectors.performance import PerformanceTest
from detectors.score_quality import ScoreQuality
from detectors.score_test import SCORE_SIGNALS, ScoreTest
from schemas import Label, Prediction
from tests.scenarios import T0

SEEDS = 20
CHANGE_AT = 5_000


def binary_stream(
    seed: int, n: int, change_at: int | None = None, change: str = "noisier"
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    separation = 1.5
    y = rng.random(n) < 0.3
    x = rng.normal(separation * y, 1.0)
    if change_at is not None and change == "noisier":
        x[change_at:] += rng.normal(0, 1.157, n - change_at)  # AUC 0.86 -> 0.76
    logit = np.log(0.3 / 0.7) - separation**2 / 2 + separation * x  # calibrated before
    if change_at is not None and change == "overconfident":
        logit[change_at:] *= 2.5
    return 1 / (1 + np.exp(-logit)), y


def class_stream(
    seed: int, n: int, change_at: int | None = None
) -> tuple[list[dict[str, float]], list[str]]:
    """Four classes, calibrated probabilities; noisier after ``change_at``."""
    rng = np.random.default_rng(seed)
    names = ["a", "b", "c", "d"]
    y = rng.integers(0, 4, n)
    means = 1.2 * np.eye(4)[y]
    x = rng.normal(means, 1.0)
    if change_at is not None:
        x[change_at:] += rng.normal(0, 1.2, (n - change_at, 4))
    logits = 1.2 * x
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    maps = [dict(zip(names, row, strict=True)) for row in p.tolist()]
    return maps, [names[c] for c in y]


def firings(test: ScoreTest, quality, outcomes) -> list[int]:
    """Outcome counts at which the test started firing."""
    fired = []
    for i, (score, label) in enumerate(outcomes, start=1):
        quality.update(score, label)
        test.observe(quality)
        if i % 10 == 0:
            was = test.degraded
            verdict = test.check()
            if verdict is not None and verdict.degraded and not was:
                fired.append(i)
    return fired


def binary_firings(metric: str, seed: int, n: int, **change) -> list[int]:
    p, y = binary_stream(seed, n, **change)
    return firings(ScoreTest(metric), ScoreQuality(), zip(p.tolist(), y.tolist(), strict=True))


@pytest.mark.parametrize("metric", SCORE_SIGNALS)
def test_stationary_streams_raise_no_false_alarm(metric):
    """20 seeds x 20,000 outcomes (~1,600 checks each): no seed fires (bound: at most one)."""
    alarmed = [seed for seed in range(SEEDS) if binary_firings(metric, seed, 20_000)]
    assert len(alarmed) <= 1, alarmed


@pytest.mark.parametrize(
    ("metric", "change"),
    [
        ("roc_auc", "noisier"),
        ("log_loss", "noisier"),
        ("brier", "noisier"),
        ("calibration_error", "overconfident"),
    ],
)
def test_a_degraded_stream_is_flagged_within_a_bounded_delay(metric, change):
    """Measured: flagged in every seed, 330 to 2,100 outcomes after the change (a window is
    1,000); bound: 19 of 20 seeds within 2,500, none before the change."""
    delays = []
    for seed in range(100, 100 + SEEDS):
        fired = binary_firings(metric, seed, CHANGE_AT + 3_000, change_at=CHANGE_AT, change=change)
        assert all(at > CHANGE_AT for at in fired), (seed, fired)
        delays.append(fired[0] - CHANGE_AT if fired else None)
    in_time = [d for d in delays if d is not None and d <= 2_500]
    assert len(in_time) >= SEEDS - 1, delays


def test_overconfidence_alone_does_not_move_the_auc():
    """The AUC reads ranks: logits scaled up leave it where it was (a test that can tell the
    two changes apart, not one that fires on any change)."""
    alarmed = [
        seed
        for seed in range(100, 110)
        if binary_firings("roc_auc", seed, 10_000, change_at=CHANGE_AT, change="overconfident")
    ]
    assert alarmed == []


@pytest.mark.parametrize("metric", ["roc_auc", "log_loss", "brier", "calibration_error"])
def test_multiclass_stationary_quiet_and_degraded_flagged(metric):
    quiet, flagged = 0, 0
    for seed in range(10):
        maps, labels = class_stream(seed, 12_000)
        quiet += not firings(ScoreTest(metric), ClassScoreQuality(), zip(maps, labels, strict=True))
        maps, labels = class_stream(50 + seed, CHANGE_AT + 3_000, change_at=CHANGE_AT)
        fired = firings(ScoreTest(metric), ClassScoreQuality(), zip(maps, labels, strict=True))
        flagged += bool(fired) and CHANGE_AT < fired[0] <= CHANGE_AT + 2_500
    assert quiet >= 9, quiet
    assert flagged >= 9, flagged


def test_one_episode_resolves_when_the_scores_come_back():
    p1, y1 = binary_stream(7, 8_000, change_at=CHANGE_AT)
    p2, y2 = binary_stream(8, 6_000)  # as good as before
    p, y = np.concatenate([p1, p2]), np.concatenate([y1, y2])
    test, quality = ScoreTest("roc_auc"), ScoreQuality()
    states = []
    for i, (score, positive) in enumerate(zip(p.tolist(), y.tolist(), strict=True), start=1):
        quality.update(score, positive)
        test.observe(quality)
        if i % 10 == 0 and test.check() is not None:
            states.append((i, test.degraded))
    changes = [
        (i, on) for (i, on), (_, before) in zip(states[1:], states, strict=False) if on != before
    ]
    assert [on for _, on in changes] == [True, False]  # one firing, one resolve
    assert CHANGE_AT < changes[0][0] < 8_000 < changes[1][0] < 8_000 + 3_000
    assert test.recovery is not None
    assert test.recovery.value > test.recovery.line


def test_the_reference_waits_for_its_evidence_and_a_turn_to_multiclass_starts_afresh():
    test, quality = (
        ScoreTest("roc_auc", min_evidence=50, window=100, max_reference=400),
        (ScoreQuality(window=100)),
    )
    for i in range(400):  # 2 % positives: windows of ~2, short of 50 of them
        quality.update(0.5, i % 50 == 0)
        test.observe(quality)
    assert not test.ready
    assert test.starved
    assert test.check() is None
    assert test.evidence() == {"outcomes": 400, "windows": 0}
    classes = ClassScoreQuality(window=100)
    classes.update({"a": 0.7, "b": 0.3}, "a")
    test.observe(classes)
    assert not test.starved
    assert test.evidence() == {"outcomes": 1, "windows": 0}


def test_a_restored_test_carries_on_exactly():
    p, y = binary_stream(3, 9_000, change_at=CHANGE_AT)
    outcomes = list(zip(p.tolist(), y.tolist(), strict=True))
    whole = firings(ScoreTest("brier"), ScoreQuality(), outcomes)
    test, quality = ScoreTest("brier"), ScoreQuality()
    first = firings(test, quality, outcomes[:4_320])
    restored, again = ScoreTest("brier"), ScoreQuality()
    restored.load_state(orjson.loads(orjson.dumps(test.to_state())))
    again.load_state(orjson.loads(orjson.dumps(quality.to_state())))
    restored.attach(again)
    # (the checks every 10 outcomes: resume at the same phase)
    rest = [4_320 + at for at in firings(restored, again, outcomes[4_320:])]
    assert whole
    assert first + rest == whole
    assert restored.to_state()["seen"] == 9_000


@pytest.mark.parametrize(
    "spoil",
    [
        {"signal": "log_loss"},
        {"kind": "ternary"},
        {"frozen_at": 10**9},
        {"reference": [0.8, -1.0]},
        {"reference": [0.8]},
        {"collected": [[0.8, 0.1]] * 4},
        {"format": 2},
    ],
)
def test_a_bad_saved_test_is_refused(spoil):
    test, quality = ScoreTest("roc_auc", window=100), ScoreQuality(window=100)
    p, y = binary_stream(1, 500)
    firings(test, quality, zip(p.tolist(), y.tolist(), strict=True))
    state = orjson.loads(orjson.dumps(test.to_state()))
    ScoreTest("roc_auc", window=100).load_state(dict(state))  # loads
    with pytest.raises(StateError):
        ScoreTest("roc_auc", window=100).load_state({**state, **spoil})


# -- configuration and a model -------------------------------------------------------------------


def test_the_signal_is_checked_when_the_configuration_is_read():
    config = MonitorConfig.from_dict({"defaults": {"metrics": {"signal": "log_loss"}}})
    assert config.for_model("m").metrics.signal == "log_loss"
    assert MonitorConfig.from_dict({}).for_model("m").metrics.signal == "f1"
    with pytest.raises(ConfigError, match=r"defaults\.metrics\.signal: 'auc' is not one of f1"):
        MonitorConfig.from_dict({"defaults": {"metrics": {"signal": "auc"}}})
    with pytest.raises(ConfigError, match=r"models\.m\.metrics\.signal: .*regression"):
        MonitorConfig.from_dict(
            {"models": {"m": {"task": "regression", "metrics": {"signal": "brier"}}}}
        )
    for setting, value in [("auc_drop", 0.5), ("loss_relative_rise", 0), ("calibration_margin", 1)]:
        with pytest.raises(ConfigError, match=setting):
            MonitorConfig.from_dict({"defaults": {"metrics": {setting: value}}})


def scored_events(p: np.ndarray, y: np.ndarray, model: str = "m") -> list:
    events = []
    for i, (score, positive) in enumerate(zip(p.tolist(), y.tolist(), strict=True)):
        pid = f"p{i}"
        ts = T0 + i * 1_000
        events.append(
            Prediction(
                model_id=model,
                model_version="1",
                prediction_id=pid,
                timestamp=ts,
                prediction=score > 0.5,
                score=score,
            )
        )
        events.append(Label(model_id=model, prediction_id=pid, timestamp=ts, label=positive))
    return events


def run_model(signal: str, events: list) -> tuple[Monitor, list]:
    config = MonitorConfig.from_dict({"defaults": {"metrics": {"signal": signal}}})
    monitor = Monitor(config)
    out = []
    for start in range(0, len(events), 1_000):
        out += monitor.process(events[start : start + 1_000])
    return monitor, out


def test_a_model_alerts_on_its_configured_score_signal_in_the_usual_shape():
    p, y = binary_stream(21, 9_000, change_at=CHANGE_AT)
    monitor, out = run_model("roc_auc", scored_events(p, y))
    version = monitor.models["m"].versions["1"]
    assert isinstance(version.performance, ScoreTest)
    alerts = [e for e in out if e.type.endswith("performance_degradation")]
    assert alerts, "the AUC drop is flagged"
    data = alerts[0].data
    assert (data.signal, data.detector, data.status) == ("roc_auc", "roc_auc_test", "firing")
    reference = version.performance.last.reference
    assert data.statistic < data.threshold == pytest.approx(reference - 0.03)  # the line
    assert "roc_auc" in data.summary
    assert "below" in data.summary
    retrains = [e for e in out if e.type.endswith("retrain")]
    assert retrains
    assert retrains[0].data.evidence.signal == "roc_auc"
    assert retrains[0].data.evidence.details["reference"] == pytest.approx(reference)
    # the same stream on F1 (its default): the test is the counts' one
    monitor, _ = run_model("f1", scored_events(p[:2_000], y[:2_000]))
    assert isinstance(monitor.models["m"].versions["1"].performance, PerformanceTest)


def test_a_signal_changed_across_a_restart_starts_its_reference_afresh():
    p, y = binary_stream(22, 4_000)
    monitor, _ = run_model("log_loss", scored_events(p, y))
    saved = monitor.model_state("m")
    assert monitor.models["m"].versions["1"].performance.ready
    same = Monitor(MonitorConfig.from_dict({"defaults": {"metrics": {"signal": "log_loss"}}}))
    same.load_model_state("m", saved)
    assert same.models["m"].versions["1"].performance.ready
    assert same.models["m"].versions["1"].performance.to_state() == (
        monitor.models["m"].versions["1"].performance.to_state()
    )
    other = Monitor(MonitorConfig.from_dict({"defaults": {"metrics": {"signal": "brier"}}}))
    other.load_model_state("m", saved)
    assert not other.models["m"].versions["1"].performance.ready
    counts = Monitor()
    counts.load_model_state("m", saved)
    assert isinstance(counts.models["m"].versions["1"].performance, PerformanceTest)
