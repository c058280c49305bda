"""Score metrics of multiclass models (class -> probability scores) against scikit-learn's,
the maps' way through the label join, and their saved states."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from detectors.base import StateError
from detectors.class_score_quality import ClassScoreQuality
from detectors.config import JoinConfig
from detectors.join import LabelJoiner, on_grid
from detectors.monitor import Monitor
from detectors.score_quality import ScoreQuality
from schemas import Label, Prediction
from tests.scenarios import T0

EPS = float(np.finfo(np.float64).eps)


def top_label_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Top-label expected calibration error, written out plainly (ties: 1 / m correct)."""
    confidence = p.max(axis=1)
    at_top = p == confidence[:, None]
    correct = at_top[np.arange(len(y)), y] / at_top.sum(axis=1)
    total = 0.0
    for b in range(bins):
        upper = (confidence < (b + 1) / bins) if b < bins - 1 else (confidence <= 1)
        inside = (confidence >= b / bins) & upper
        if inside.any():
            total += inside.sum() / len(y) * abs(correct[inside].mean() - confidence[inside].mean())
    return total


def scored_stream(seed: int, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """A miscalibrated ``k``-class classifier's probabilities (rows sum to 1) and labels."""
    rng = np.random.default_rng(seed)
    y = rng.choice(k, size=n, p=rng.dirichlet(np.ones(k) * 2))
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), y] += rng.uniform(0.3, 2.5)
    logits *= rng.uniform(0.5, 2)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    if seed % 3 == 0:
        p = np.round(p, 2)  # ties, as a model that outputs two decimals makes
        p /= p.sum(axis=1, keepdims=True)
    return p, y


def names(k: int) -> list[str]:
    return [f"class-{c}" for c in range(k)]


def fed(p: np.ndarray, y: np.ndarray, window: int, **kw) -> ClassScoreQuality:
    quality = ClassScoreQuality(window=window, **kw)
    classes = names(p.shape[1])
    for row, label in zip(p, y, strict=True):
        quality.update(dict(zip(classes, row.tolist(), strict=True)), classes[label])
    return quality


def test_the_window_agrees_with_scikit_learn_on_the_same_outcomes():
    for seed in range(40):
        k = 3 + seed % 6
        p, y = scored_stream(seed, 2500, k)
        got = fed(p, y, window=1000).values()
        last_p, last_y = p[-1000:], y[-1000:]
        labels = list(range(k))
        assert len(set(last_y)) == k  # every class has positives and negatives
        assert got["roc_auc"] == pytest.approx(
            roc_auc_score(last_y, last_p, multi_class="ovr", average="macro", labels=labels),
            abs=1e-12,
        )
        assert got["log_loss"] == pytest.approx(log_loss(last_y, last_p, labels=labels), rel=1e-9)
        brier = np.mean(np.sum((last_p - np.eye(k)[last_y]) ** 2, axis=1))
        assert got["brier"] == pytest.approx(brier, rel=1e-9)
        assert got["calibration_error"] == pytest.approx(
            top_label_calibration_error(last_p, last_y), abs=1e-12
        )


def test_roc_auc_is_the_mean_over_classes_with_positives_and_negatives():
    p, y = scored_stream(5, 600, 4)
    y[y == 2] = 1  # class 2 never the label: no positives, left out
    got = fed(p, y, window=600).values()
    per_class = [roc_auc_score(y == c, p[:, c]) for c in (0, 1, 3)]
    assert got["roc_auc"] == pytest.approx(np.mean(per_class), abs=1e-12)
    only = fed(p[y == 0], y[y == 0], window=600).values()
    assert "roc_auc" not in only  # one label throughout: no class has both
    assert only["log_loss"] == pytest.approx(-np.mean(np.log(p[y == 0, 0])), rel=1e-9)


def test_beyond_max_classes_the_auc_reads_the_first_ones_and_the_rest_count_elsewhere():
    p, y = scored_stream(11, 1500, 6)
    got = fed(p, y, window=1500, max_classes=3).values()
    assert got["roc_auc"] == pytest.approx(
        np.mean([roc_auc_score(y == c, p[:, c]) for c in range(3)]), abs=1e-12
    )
    assert got["log_loss"] == pytest.approx(log_loss(y, p, labels=list(range(6))), rel=1e-9)
    assert fed(p, y, window=1500, max_classes=3).classes == names(3)


def test_a_label_missing_from_its_map_and_ties_at_the_top():
    quality = ClassScoreQuality(window=10)
    quality.update({"a": 0.5, "b": 0.5}, "a")  # a tie: half correct
    quality.update({"a": 0.9, "b": 0.1}, "c")  # the label's class is not in the map
    got = quality.values()
    assert got["log_loss"] == pytest.approx(-(math.log(0.5) + math.log(EPS)) / 2)
    assert got["brier"] == pytest.approx(((0.25 + 0.25) + (0.81 + 0.01 + 1)) / 2)
    # bins 5 (confidence 0.5, half correct) and 9 (0.9, wrong)
    assert got["calibration_error"] == pytest.approx((0.0 + 0.9) / 2)
    assert quality.values() is got  # cached until the next outcome
    quality.update({"a": 0.2, "b": 0.8}, "b")
    assert quality.values() is not got


def test_a_window_survives_a_restart():
    p, y = scored_stream(3, 1500, 5)
    whole, first = fed(p, y, window=500), fed(p[:1234], y[:1234], window=500)
    restored = ClassScoreQuality(window=500)
    restored.load_state(orjson.loads(orjson.dumps(first.to_state())))
    classes = names(5)
    for row, label in zip(p[1234:], y[1234:], strict=True):
        restored.update(dict(zip(classes, row.tolist(), strict=True)), classes[label])
    assert restored.values() == whole.values()
    assert restored.to_state() == whole.to_state()


def good_state() -> dict:
    p, y = scored_stream(4, 300, 3)
    return orjson.loads(orjson.dumps(fed(p, y, window=200).to_state()))


@pytest.mark.parametrize(
    "spoil",
    [
        lambda s: s["true"].__setitem__(0, 1.5),
        lambda s: s["confidence"].__setitem__(3, -0.1),
        lambda s: s["correct"].__setitem__(3, float("nan")),
        lambda s: s["squares"].__setitem__(3, float("inf")),
        lambda s: s["columns"][1].__setitem__(3, 2.0),
        lambda s: s["labels"].__setitem__(0, 3),
        lambda s: s["labels"].__setitem__(0, "0"),
        lambda s: s["true"].pop(),
        lambda s: s["columns"].pop(),
        lambda s: s["classes"].__setitem__(1, s["classes"][0]),
        lambda s: s["classes"].__setitem__(1, 7),
        lambda s: s.update({k: s[k] * 2 for k in ("labels", "true", "squares")}),
        lambda s: s.update(classes=names(17), columns=[s["true"]] * 17),
    ],
)
def test_a_bad_saved_window_is_refused(spoil):
    state = good_state()
    ClassScoreQuality(window=200).load_state(orjson.loads(orjson.dumps(state)))  # loads
    spoil(state)
    with pytest.raises(StateError):
        ClassScoreQuality(window=200).load_state(state)


# -- through the join ----------------------------------------------------------------------------

SCORE = {"cat": 0.123456789, "dog": 0.5, "fox": 0.376543211}


@pytest.mark.parametrize("label_first", [False, True])
@pytest.mark.parametrize("restart", [False, True])
def test_a_map_reaches_its_outcome_the_same_whichever_topic_comes_first(label_first, restart):
    joiner = LabelJoiner(JoinConfig())
    if label_first:
        assert joiner.add_label("p", "dog", 5) is None
        outcome = joiner.add_prediction("p", 1, "1", "dog", SCORE)
    else:
        assert joiner.add_prediction("p", 1, "1", "dog", SCORE) is None
        if restart:
            restored = LabelJoiner(JoinConfig())
            restored.load_state(orjson.loads(orjson.dumps(joiner.to_state())))
            joiner = restored
        outcome = joiner.add_label("p", "dog", 5)
    assert outcome is not None
    # on the binary score's grid, to the last bit, whichever way it came
    assert outcome.score == {c: math.floor(v * 65536 + 0.5) / 65536 for c, v in SCORE.items()}
    assert outcome.score == on_grid(SCORE)
    assert outcome.score["cat"] == pytest.approx(SCORE["cat"], abs=1e-5)


def test_waiting_maps_are_shared_compact_and_saved_as_objects():
    joiner = LabelJoiner(JoinConfig())
    for i in range(100):
        joiner.add_prediction(f"p{i}", i, "1", "cat", {"cat": i / 100, "dog": 1 - i / 100})
    joiner.add_prediction("bad", 100, "1", "cat", {"cat": 1.5})  # not probabilities: no score
    waiting = list(joiner._predictions.values())
    assert len({id(w[3][0]) for w in waiting[:100]}) == 1  # one tuple of class names
    assert all(len(w[3][1]) == 8 for w in waiting[:100])  # two float32 probabilities
    saved = orjson.loads(orjson.dumps(joiner.to_state()))
    assert saved["format"] == 3
    assert saved["predictions"][7] == ["p7", [7, "1", "cat", on_grid({"cat": 0.07, "dog": 0.93})]]
    assert saved["predictions"][100] == ["bad", [100, "1", "cat"]]


@pytest.mark.parametrize(
    ("score", "fmt"),
    [
        ({"cat": 1.5}, 3),
        ({"cat": -0.1}, 3),
        ({"cat": True}, 3),
        ({"cat": "0.5"}, 3),
        ({}, 3),
        ({f"c{i}": 0.0 for i in range(10_001)}, 3),
        ({"cat": 0.5}, 2),  # a format-2 score is a number
        ("0.5", 3),
        (float("nan"), 3),
    ],
)
def test_a_bad_saved_waiting_score_is_refused(score, fmt):
    state = {
        "format": fmt,
        "predictions": [["p", [1, "1", "cat", score]]],
        "labels": [],
        "expired": [],
        "joined": [],
        "counts": {},
    }
    with pytest.raises(StateError):
        LabelJoiner(JoinConfig()).load_state(state)
    state["predictions"] = [["p", [1, "1", "cat", {"cat": 0.25, "dog": 1}]]]
    state["format"] = 3
    joiner = LabelJoiner(JoinConfig())
    joiner.load_state(state)
    assert joiner.add_label("p", "cat", 2).score == {"cat": 0.25, "dog": 1.0}


# -- through a model -----------------------------------------------------------------------------


def monitor_of(p: np.ndarray, y: np.ndarray, classes: list, label_first_every: int = 7) -> Monitor:
    monitor = Monitor()
    events = []
    for i, (row, label) in enumerate(zip(p, y, strict=True)):
        pid = f"p{i}"
        prediction = Prediction(
            model_id="m",
            model_version="1",
            prediction_id=pid,
            timestamp=T0 + i,
            prediction=classes[int(np.argmax(row))],
            score={str(c).lower(): float(v) for c, v in zip(classes, row, strict=True)},
        )
        answer = Label(model_id="m", prediction_id=pid, timestamp=T0 + i, label=classes[label])
        events += [answer, prediction] if i % label_first_every == 0 else [prediction, answer]
    monitor.process(events)
    return monitor


def test_a_multiclass_models_score_metrics_are_those_of_its_joined_outcomes():
    p, y = scored_stream(8, 1500, 4)
    monitor = monitor_of(p, y, ["cat", "dog", "fox", "owl"])
    quality = monitor.models["m"].versions["1"].score_quality
    assert isinstance(quality, ClassScoreQuality)
    kept = np.floor(p[-1000:] * 65536 + 0.5) / 65536  # as the join keeps them
    got = quality.values()
    last_y = y[-1000:]
    # (one-vs-rest by hand: kept rows no longer sum to 1 exactly, as scikit-learn wants)
    auc = np.mean([roc_auc_score(last_y == c, kept[:, c]) for c in range(4)])
    assert got["roc_auc"] == pytest.approx(auc, abs=1e-12)
    p_true = np.clip(kept[np.arange(1000), last_y], EPS, 1 - EPS)
    assert got["log_loss"] == pytest.approx(-np.mean(np.log(p_true)), rel=1e-9)
    assert got["calibration_error"] == pytest.approx(top_label_calibration_error(kept, last_y))
    # saved and restored with its model
    again = Monitor()
    again.load_model_state("m", monitor.model_state("m"))
    assert again.models["m"].versions["1"].score_quality.values() == got


def test_a_binary_model_with_a_map_is_scored_on_its_positive_class():
    rng = np.random.default_rng(2)
    positive = rng.random(1200) < 0.3
    p_true = np.clip(0.3 + 0.4 * positive + rng.normal(0, 0.2, 1200), 0, 1)
    p = np.stack([1 - p_true, p_true], axis=1)  # columns: false, true
    monitor = monitor_of(p, positive.astype(int), [False, True])
    quality = monitor.models["m"].versions["1"].score_quality
    assert isinstance(quality, ScoreQuality)
    kept = np.floor(p_true[-1000:] * 65536 + 0.5) / 65536
    assert quality.values()["roc_auc"] == pytest.approx(
        roc_auc_score(positive[-1000:], kept), abs=1e-12
    )
