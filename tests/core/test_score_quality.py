"""Score metrics (ROC AUC, log loss, Brier, calibration error) against scikit-learn's, and the
scores' way from a prediction through the label join."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from detectors.config import JoinConfig
from detectors.join import LabelJoiner
from detectors.monitor import Monitor
from detectors.score_quality import ScoreQuality
from schemas import Label, Prediction
from tests.scenarios import T0


def calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """The expected calibration error, written out plainly."""
    total = 0.0
    for b in range(bins):
        inside = (p >= b / bins) & ((p < (b + 1) / bins) if b < bins - 1 else (p <= 1))
        if inside.any():
            total += inside.sum() / len(p) * abs(y[inside].mean() - p[inside].mean())
    return total


def scored_stream(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A miscalibrated classifier's scores (with ties) and its labels."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < rng.uniform(0.05, 0.6)
    logit = rng.normal(0, 1, n) + y * rng.uniform(0.2, 3)
    p = 1 / (1 + np.exp(-rng.uniform(0.5, 2) * logit))
    if seed % 2:
        p = np.round(p, 2)  # ties, as a model that outputs two decimals makes
    return p, y


def test_the_window_agrees_with_scikit_learn_on_the_same_outcomes():
    for seed in range(50):
        p, y = scored_stream(seed, 3000)
        quality = ScoreQuality(window=1000)
        for score, positive in zip(p, y, strict=True):
            quality.update(float(score), bool(positive))
        last_p, last_y = p[-1000:], y[-1000:]
        got = quality.values()
        assert got["roc_auc"] == pytest.approx(roc_auc_score(last_y, last_p), abs=1e-12)
        assert got["log_loss"] == pytest.approx(log_loss(last_y, last_p), rel=1e-9)
        assert got["brier"] == pytest.approx(brier_score_loss(last_y, last_p), rel=1e-12)
        assert got["calibration_error"] == pytest.approx(
            calibration_error(last_p, last_y), abs=1e-12
        )


def test_roc_auc_waits_for_both_classes_and_values_are_cached_until_an_outcome():
    quality = ScoreQuality(window=10)
    assert quality.values() == {}
    quality.update(0.7, True)
    assert "roc_auc" not in quality.values()
    quality.update(0.2, False)
    first = quality.values()
    assert first["roc_auc"] == 1.0
    assert quality.values() is first
    quality.update(0.9, False)
    assert quality.values()["roc_auc"] == 0.5


def test_a_window_survives_a_restart():
    p, y = scored_stream(3, 1500)
    whole, first = ScoreQuality(window=500), ScoreQuality(window=500)
    for score, positive in zip(p, y, strict=True):
        whole.update(float(score), bool(positive))
    for score, positive in zip(p[:1234], y[:1234], strict=True):
        first.update(float(score), bool(positive))
    restored = ScoreQuality(window=500)
    restored.load_state(orjson.loads(orjson.dumps(first.to_state())))
    for score, positive in zip(p[1234:], y[1234:], strict=True):
        restored.update(float(score), bool(positive))
    assert restored.values() == whole.values()
    assert restored.to_state() == whole.to_state()


@pytest.mark.parametrize("label_first", [False, True])
def test_a_score_reaches_its_outcome_whichever_topic_comes_first(label_first):
    joiner = LabelJoiner(JoinConfig())
    if label_first:
        assert joiner.add_label("p", True, 5) is None
        outcome = joiner.add_prediction("p", 1, "1", True, 0.123456789)
    else:
        assert joiner.add_prediction("p", 1, "1", True, 0.123456789) is None
        outcome = joiner.add_label("p", True, 5)
    assert outcome is not None
    assert outcome.score == pytest.approx(0.123456789, abs=1e-5)
    # the same value either way: a replay decides what the live service decided
    assert outcome.score == int(0.123456789 * 65536 + 0.5) / 65536


def test_waiting_scores_survive_a_restart_and_non_probabilities_are_not_kept():
    joiner = LabelJoiner(JoinConfig())
    joiner.add_prediction("a", 1, "1", True, 0.25)
    joiner.add_prediction("b", 2, "1", 3.5, 0.75)  # a float prediction: the tuple form
    joiner.add_prediction("c", 3, "1", False, 7.0)  # not a probability
    joiner.add_prediction("d", 4, "1", False)
    restored = LabelJoiner(JoinConfig())
    restored.load_state(orjson.loads(orjson.dumps(joiner.to_state())))
    scores = {pid: restored.add_label(pid, True, 9).score for pid in "abcd"}
    assert scores == {"a": 0.25, "b": 0.75, "c": None, "d": None}


def test_a_binary_models_score_metrics_are_those_of_its_joined_outcomes():
    p, y = scored_stream(8, 1500)
    monitor = Monitor()
    events = []
    for i, (score, positive) in enumerate(zip(p, y, strict=True)):
        pid = f"p{i}"
        events.append(
            Prediction(
                model_id="m",
                model_version="1",
                prediction_id=pid,
                timestamp=T0 + i,
                prediction=bool(score > 0.5),
                score=float(score),
            )
        )
        events.append(
            Label(model_id="m", prediction_id=pid, timestamp=T0 + i, label=bool(positive))
        )
    monitor.process(events)
    quality = monitor.models["m"].versions["1"].score_quality
    assert quality is not None
    kept = np.floor(p[-1000:] * 65536 + 0.5) / 65536  # as the join keeps them
    got = quality.values()
    assert got["roc_auc"] == pytest.approx(roc_auc_score(y[-1000:], kept), abs=1e-12)
    assert got["log_loss"] == pytest.approx(log_loss(y[-1000:], kept), rel=1e-9)
    assert got["roc_auc"] == pytest.approx(roc_auc_score(y[-1000:], p[-1000:]), abs=1e-3)
