"""Rolling metrics against a brute-force recomputation over the window, after every update.

The reference is plain Python over the last ``window`` pairs. Macro averages follow river's
convention (``river.metrics.MacroPrecision`` / ``MacroRecall`` / ``MacroF1``): the average is
over every class seen in the window as a true or a predicted value; a class never predicted
has precision 0, a class never true has recall 0, and F1 is 0 when precision + recall is 0.
"""

from __future__ import annotations

import math
import random

import orjson
import pytest

from detectors.base import StateError
from detectors.metrics import RollingClassification, RollingRegression


def ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def harmonic(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def reference_binary(pairs: list[tuple], positive) -> dict[str, float]:
    tp = sum(t == positive and p == positive for t, p in pairs)
    predicted = sum(p == positive for _, p in pairs)
    actual = sum(t == positive for t, _ in pairs)
    precision, recall = ratio(tp, predicted), ratio(tp, actual)
    return {
        "precision": precision,
        "recall": recall,
        "f1": harmonic(precision, recall),
        "accuracy": ratio(sum(t == p for t, p in pairs), len(pairs)),
    }


def reference_macro(pairs: list[tuple]) -> dict[str, float]:
    classes = {t for t, _ in pairs} | {p for _, p in pairs}
    precisions, recalls, f1s = [], [], []
    for c in classes:
        tp = sum(t == c and p == c for t, p in pairs)
        precision = ratio(tp, sum(p == c for _, p in pairs))
        recall = ratio(tp, sum(t == c for t, _ in pairs))
        precisions.append(precision)
        recalls.append(recall)
        f1s.append(harmonic(precision, recall))
    n = len(classes)
    return {
        "precision": ratio(sum(precisions), n) if n else 0.0,
        "recall": ratio(sum(recalls), n) if n else 0.0,
        "f1": ratio(sum(f1s), n) if n else 0.0,
        "accuracy": ratio(sum(t == p for t, p in pairs), len(pairs)),
    }


def classification_stream(seed: int, classes: list, n: int) -> list[tuple]:
    """Skewed classes (so some leave and re-enter a small window) and a ~30% error rate."""
    rng = random.Random(seed)
    weights = [2**i for i in range(len(classes), 0, -1)]
    pairs = []
    for _ in range(n):
        y_true = rng.choices(classes, weights=weights)[0]
        y_pred = y_true if rng.random() < 0.7 else rng.choice(classes)
        pairs.append((y_true, y_pred))
    return pairs


CASES = {
    # name: (classes, positive_label given, positive for the reference (None: macro))
    "bool": ([True, False], None, True),
    "int-0-1": ([0, 1], None, 1),
    "strings-with-positive": (["fraud", "ok"], "fraud", "fraud"),
    "multiclass-strings": (["cat", "dog", "bird", "fish", "ant"], None, None),
}


@pytest.mark.parametrize("window", [1, 7, 50, 10_000], ids=lambda w: f"window={w}")
@pytest.mark.parametrize("case", list(CASES))
def test_classification_matches_brute_force_after_every_update(case, window):
    classes, positive_label, positive = CASES[case]
    metrics = RollingClassification(window=window, positive_label=positive_label)
    pairs = classification_stream(seed=len(case) + window, classes=classes, n=600)
    for i, (y_true, y_pred) in enumerate(pairs):
        metrics.update(y_true, y_pred)
        last = pairs[max(0, i + 1 - window) : i + 1]
        if positive is None:
            expected = reference_macro(last)
            assert metrics.averaging == "macro"
        else:
            expected = reference_binary(last, positive)
            assert metrics.averaging == "binary"
        assert metrics.n == len(last)
        assert metrics.values() == pytest.approx(expected, rel=1e-12, abs=1e-12), f"after {i + 1}"


def test_binary_positive_is_inferred_from_booleans_and_0_1_only():
    flipped = [(True, False), (True, True), (False, True)]
    bools = RollingClassification(window=10)
    ints = RollingClassification(window=10)
    for y_true, y_pred in flipped:
        bools.update(y_true, y_pred)
        ints.update(int(y_true), int(y_pred))
    # One true positive, one false positive, one false negative for the positive class.
    assert bools.values()["precision"] == ints.values()["precision"] == 0.5
    assert bools.averaging == ints.averaging == "binary"
    strings = RollingClassification(window=10)
    for y_true, y_pred in flipped:
        strings.update(str(y_true), str(y_pred))
    assert strings.averaging == "macro"


def test_empty_windows_report_zeros():
    assert set(RollingClassification(window=5).values().values()) == {0.0}
    assert RollingRegression(window=5).values() == {"mae": 0.0, "rmse": 0.0}


def regression_stream(seed: int, n: int) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        y_true = rng.gauss(50, 20)
        scale = 1.0 if i < n // 2 else 5.0  # errors grow halfway
        pairs.append((y_true, y_true + rng.gauss(0.5, 3.0) * scale))
    return pairs


@pytest.mark.parametrize("window", [1, 13, 100, 10_000], ids=lambda w: f"window={w}")
def test_regression_matches_brute_force_after_every_update(window):
    metrics = RollingRegression(window=window)
    pairs = regression_stream(seed=window, n=3_000)  # > 10 windows: the re-summing runs too
    for i, (y_true, y_pred) in enumerate(pairs):
        metrics.update(y_true, y_pred)
        errors = [p - t for t, p in pairs[max(0, i + 1 - window) : i + 1]]
        expected = {
            "mae": sum(abs(e) for e in errors) / len(errors),
            "rmse": math.sqrt(sum(e * e for e in errors) / len(errors)),
        }
        assert metrics.n == len(errors)
        assert metrics.values() == pytest.approx(expected, rel=1e-9), f"after {i + 1}"


@pytest.mark.parametrize("case", list(CASES))
def test_classification_state_round_trip_through_json_gives_identical_values(case):
    classes, positive_label, _ = CASES[case]
    pairs = classification_stream(seed=11, classes=classes, n=300)
    original = RollingClassification(window=40, positive_label=positive_label)
    for pair in pairs[:150]:
        original.update(*pair)
    restored = RollingClassification(window=40, positive_label=positive_label)
    restored.load_state(orjson.loads(orjson.dumps(original.to_state())))
    assert restored.n == original.n
    assert restored.values() == original.values()
    for pair in pairs[150:]:
        original.update(*pair)
        restored.update(*pair)
        assert restored.values() == original.values()
        assert restored.averaging == original.averaging


def test_regression_state_round_trip_through_json_gives_identical_values():
    pairs = regression_stream(seed=12, n=400)
    original = RollingRegression(window=30)
    for pair in pairs[:200]:
        original.update(*pair)
    restored = RollingRegression(window=30)
    restored.load_state(orjson.loads(orjson.dumps(original.to_state())))
    assert restored.values() == pytest.approx(original.values(), rel=1e-12)
    for pair in pairs[200:]:
        original.update(*pair)
        restored.update(*pair)
        assert restored.values() == pytest.approx(original.values(), rel=1e-12)


def test_load_state_refuses_more_pairs_than_the_window():
    big = RollingClassification(window=10)
    for i in range(10):
        big.update(i % 2, 1)
    with pytest.raises(StateError):
        RollingClassification(window=9).load_state(big.to_state())
    big_regression = RollingRegression(window=10)
    for i in range(10):
        big_regression.update(float(i), 0.0)
    with pytest.raises(StateError):
        RollingRegression(window=9).load_state(big_regression.to_state())


def test_the_confusion_matrix_folds_rare_classes_into_other_and_keeps_every_outcome():
    import random
    from collections import Counter

    from detectors.metrics import RollingClassification

    rng = random.Random(3)
    metrics = RollingClassification(window=500)
    pairs = []
    for _ in range(2000):
        y_true = f"c{min(19, int(rng.expovariate(0.3)))}"
        y_pred = y_true if rng.random() < 0.7 else f"c{rng.randrange(20)}"
        metrics.update(y_true, y_pred)
        pairs.append((y_true, y_pred))
    window = pairs[-500:]
    seen = Counter(c for pair in window for c in pair)
    top = {c for c, _ in sorted(seen.items(), key=lambda kv: (-kv[1], kv[0]))[:5]}
    expected = Counter((t if t in top else "other", p if p in top else "other") for t, p in window)
    cells = metrics.confusion(top=5)
    assert {(t, p): n for t, p, n in cells} == dict(expected)
    assert sum(n for _, _, n in cells) == 500
    assert len(cells) <= 36  # (5 + 1) x (5 + 1) at most
