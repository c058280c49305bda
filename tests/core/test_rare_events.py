"""Performance and concept alarms on rare events, over many seeded streams, with bounds.

A binary classifier with few positives (fraud, churn, defaults) is where a ratio against one
lucky window fails: these streams are the ones ``bench/detection.py`` runs (200 seeds a case
there, fewer here). The performance test is driven directly where only it decides; whole models
go through :class:`~detectors.monitor.Monitor` where the alert and retrain policies do.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pytest

from detectors.error_rate import ErrorRateDriftDetector
from detectors.monitor import Monitor
from detectors.performance import PerformanceTest
from schemas import Label, Prediction

pytestmark = pytest.mark.slow

T0 = 1_795_255_200_000
SPACING_MS = 2_000
DAY_MS = 86_400_000


def classifier(
    seed: int,
    n: int,
    positive_rate: float,
    recall: float = 0.8,
    false_positive_rate: float | None = None,
    change: int | None = None,
    recall_after: float = 0.4,
) -> tuple[list[bool], list[bool]]:
    """Labels and predictions; from ``change`` on, half the positives look like negatives."""
    rng = np.random.default_rng([7, seed, int(positive_rate * 1000)])
    if false_positive_rate is None:
        false_positive_rate = positive_rate * 0.25  # precision ~0.76
    labels = rng.random(n) < positive_rate
    caught = np.full(n, recall)
    if change is not None:
        caught[change:] = recall_after
    predicted = np.where(labels, rng.random(n) < caught, rng.random(n) < false_positive_rate)
    return labels.tolist(), predicted.tolist()


def episodes_and_first(
    labels: list[bool], predicted: list[bool], start: int = 0
) -> tuple[int, float]:
    """Degradation episodes of a performance test, and the first one's delay after ``start``."""
    test = PerformanceTest("classification")
    count, first, was = 0, math.inf, False
    for i, (label, prediction) in enumerate(zip(labels, predicted, strict=True)):
        test.update(label, prediction)
        if i % 10 == 9:
            test.check()
            if test.degraded and not was:
                count += 1
                if i >= start and first == math.inf:
                    first = i - start
            was = test.degraded
    return count, first


# -- the performance test on its own ------------------------------------------------------------


@pytest.mark.parametrize("positive_rate", [0.005, 0.01, 0.05, 0.3])
def test_performance_false_alarms_on_stationary_imbalanced_streams(positive_rate):
    """Measured: none over 100 streams of 100k outcomes at each rate. The ratio against the
    first window (driftline before) raised ~8 a day at 1 %."""
    total = sum(
        episodes_and_first(*classifier(seed, 100_000, positive_rate))[0] for seed in range(10)
    )
    assert total <= 1, f"{total} false episodes in 1M stationary outcomes"


@pytest.mark.parametrize(
    ("positive_rate", "change", "n", "median_bound"),
    [
        (0.005, 50_000, 120_000, 45_000),
        (0.01, 25_000, 60_000, 24_000),
        (0.05, 6_000, 20_000, 5_000),
        (0.3, 3_000, 10_000, 1_200),
    ],
)
def test_performance_catches_recall_halving(positive_rate, change, n, median_bound):
    """Measured median delays: ~33k, 17k, 3.4k and 0.8k outcomes at 0.5, 1, 5 and 30 %."""
    delays, early = [], 0
    for seed in range(20):
        labels, predicted = classifier(100 + seed, n, positive_rate, change=change)
        count, first = episodes_and_first(labels, predicted, change)
        early += count - (first < math.inf)
        delays.append(first)
    assert early == 0, f"{early} false episodes before the change"
    assert sum(d < math.inf for d in delays) >= 19, delays
    assert np.median(delays) <= median_bound, delays


@pytest.mark.parametrize(
    ("positive_rate", "recall", "false_positive_rate"),
    [(0.3, 0.12, 0.01), (0.05, 0.95, 0.0026), (0.01, 0.3, 0.002)],
    ids=["weak F1 0.21", "strong F1 0.95", "rare and weak"],
)
def test_no_false_degradation_of_weak_or_strong_stable_models(
    positive_rate, recall, false_positive_rate
):
    total = sum(
        episodes_and_first(
            *classifier(200 + seed, 60_000, positive_rate, recall, false_positive_rate)
        )[0]
        for seed in range(10)
    )
    assert total == 0, total


def test_a_version_without_enough_evidence_stays_warming_up_and_says_so():
    test = PerformanceTest("classification", max_reference=20_000)
    labels, predicted = classifier(5, 30_000, 0.001)  # ~20 positives in the bound
    for label, prediction in zip(labels, predicted, strict=True):
        test.update(label, prediction)
        assert test.check() is None
    assert not test.ready
    assert test.starved
    assert test.evidence()["outcomes"] == 20_000
    assert test.evidence()["positives"] < 4 * test.min_evidence


def test_a_degradation_resolves_once_and_only_when_clearly_back():
    """One incident is one firing and one resolve, not a flapping sequence."""
    for seed in range(10):
        labels, predicted = classifier(300 + seed, 90_000, 0.05, change=20_000)
        back_labels, back_predicted = classifier(400 + seed, 60_000, 0.05)
        test = PerformanceTest("classification")
        flips, was = [], False
        for i, (label, prediction) in enumerate(
            zip(labels + back_labels, predicted + back_predicted, strict=True)
        ):
            test.update(label, prediction)
            if i % 10 == 9:
                test.check()
                if test.degraded != was:
                    flips.append(i)
                    was = test.degraded
        assert len(flips) == 2, flips  # degraded once, back once
        assert flips[0] > 20_000, flips
        assert flips[1] > 90_000, flips


def regression_episodes(seed: int, n: int, change: int | None, scale_after: float) -> list[int]:
    rng = np.random.default_rng([8, seed])
    errors = rng.standard_t(5, n)  # heavy-ish tails
    if change is not None:
        errors[change:] *= scale_after
    test = PerformanceTest("regression")
    starts, was = [], False
    for i, error in enumerate(errors.tolist()):
        test.update_error(error)
        if i % 10 == 9:
            test.check()
            if test.degraded and not was:
                starts.append(i)
            was = test.degraded
    return starts


def test_regression_rmse_test_is_quiet_when_stationary_and_catches_a_doubling():
    false = sum(len(regression_episodes(seed, 50_000, None, 1.0)) for seed in range(6))
    assert false <= 1, false
    delays = []
    for seed in range(10, 30):
        starts = regression_episodes(seed, 12_000, 6_000, 2.0)
        assert all(s >= 6_000 for s in starts), starts
        delays.append(starts[0] - 6_000 if starts else math.inf)
    assert sum(d < math.inf for d in delays) >= 19, delays
    assert np.median(delays) <= 1_000, delays


def test_multiclass_accuracy_test_catches_a_drop():
    detected = 0
    for seed in range(10):
        rng = np.random.default_rng([9, seed])
        correct = np.concatenate([rng.random(10_000) < 0.9, rng.random(10_000) < 0.6])
        test, first = PerformanceTest("classification"), None
        for i, ok in enumerate(correct.tolist()):
            test.update_correct(ok)
            if i % 10 == 9:
                test.check()
                if test.degraded and first is None:
                    first = i
        assert test.watched == ("accuracy",)
        detected += first is not None and first >= 10_000
    assert detected == 10


# -- the concept detector on rare errors ---------------------------------------------------------


@pytest.mark.parametrize("error_rate", [0.001, 0.003, 0.0075])
def test_concept_quiet_on_rare_errors(error_rate):
    """The issue's fraud model: 0.75 % errors. A reference of a handful of errors made an
    ordinary cluster look like drift; the reference now grows to 100 errors (or 50,000
    outcomes), the confirmation counts the reference's own uncertainty, and a short cluster,
    the most extreme of the many a history holds, must clear a stricter level."""
    total = 0
    for seed in range(8):
        errors = np.random.default_rng([11, seed]).random(150_000) < error_rate
        detector = ErrorRateDriftDetector(reference_size=1000)
        total += len(detector.update_many(errors.astype(float).tolist())[::2])
    assert total <= 1, total


@pytest.mark.parametrize("error_rate", [0.02, 0.1, 0.3])
def test_concept_quiet_at_common_error_rates(error_rate):
    """Page-Hinkley proposes often with a small delta; only the count decides, so proposals
    of ordinary noise must not confirm (the target is at most 1 per 100k outcomes: 9 here)."""
    total = 0
    for seed in range(6):
        errors = np.random.default_rng([17, seed]).random(150_000) < error_rate
        detector = ErrorRateDriftDetector(reference_size=1000)
        total += len(detector.update_many(errors.astype(float).tolist())[::2])
    assert total <= 2, total


def test_a_rise_while_the_reference_grows_does_not_become_the_reference():
    """A near-perfect model needs tens of thousands of outcomes for 100 reference errors; the
    drift that comes meanwhile (river's Agrawal stream: 0 errors, then 50 %) cuts the reference
    short and is confirmed within a few dozen outcomes, against the rate before it."""
    delays, references = [], []
    for seed in range(20):
        rng = np.random.default_rng([14, seed])
        errors = np.concatenate([rng.random(8_000) < 0.001, rng.random(2_000) < 0.4])
        detector = ErrorRateDriftDetector(reference_size=1000)
        flips = detector.update_many(errors.astype(float).tolist())
        delays.append(flips[0] - 8_000 if flips and flips[0] >= 8_000 else math.inf)
        references.append(detector.reference_rate)
    assert sorted(delays)[18] <= 60, delays  # 19 of 20 within 60 outcomes
    assert max(references) < 0.005, references  # the drifted outcomes are not the reference


def test_a_sudden_jump_is_confirmed_within_dozens_of_outcomes():
    """No fixed floor of errors: a jump from 5 % to 40 % errors is confirmed about as fast as
    its errors make it significant, even when a proposal of ordinary noise was pending."""
    delays = []
    for seed in range(20):
        rng = np.random.default_rng([15, seed])
        errors = np.concatenate([rng.random(10_000) < 0.05, rng.random(2_000) < 0.4])
        flips = ErrorRateDriftDetector(reference_size=1000).update_many(
            errors.astype(float).tolist()
        )
        delays.append(flips[0] - 10_000 if flips and flips[0] >= 10_000 else math.inf)
    assert np.median(delays) <= 45, delays
    assert max(delays) <= 100, delays


def test_a_twenty_percent_rise_of_a_weak_model_is_confirmed():
    """At a 30 % error rate a reference of 1,000 outcomes is known only within ~5 %; the
    reference now holds 5,000, so a rise from 30 % to 36 % is confirmed in every stream."""
    delays = []
    for seed in range(20):
        rng = np.random.default_rng([16, seed])
        errors = np.concatenate([rng.random(8_000) < 0.3, rng.random(12_000) < 0.36])
        flips = ErrorRateDriftDetector(reference_size=1000).update_many(
            errors.astype(float).tolist()
        )
        delays.append(flips[0] - 8_000 if flips and flips[0] >= 8_000 else math.inf)
    assert max(delays) <= 6_000, delays
    assert np.median(delays) <= 2_500, delays


def test_a_larger_rise_during_an_open_episode_is_an_escalation():
    found = 0
    for seed in range(10):
        rng = np.random.default_rng([12, seed])
        errors = np.concatenate(
            [rng.random(10_000) < 0.05, rng.random(6_000) < 0.1, rng.random(6_000) < 0.3]
        )
        detector = ErrorRateDriftDetector(reference_size=1000)
        flips, escalations = [], []
        for start in range(0, len(errors), 500):  # escalations are per update_many call
            chunk = errors[start : start + 500].astype(float).tolist()
            flips += [start + i for i in detector.update_many(chunk)]
            escalations += [start + i for i in detector.escalations]
        if flips and flips[0] >= 10_000 and any(e >= 16_000 for e in escalations):
            found += 1
            assert detector.level > 0.2  # the episode now reports the larger rise
    assert found >= 8, found


def test_a_concept_drift_back_at_the_reference_resolves():
    resolved = 0
    for seed in range(10):
        rng = np.random.default_rng([13, seed])
        errors = np.concatenate(
            [rng.random(10_000) < 0.05, rng.random(5_000) < 0.15, rng.random(20_000) < 0.05]
        )
        flips = ErrorRateDriftDetector(reference_size=1000).update_many(
            errors.astype(float).tolist()
        )
        resolved += len(flips) == 2 and 10_000 <= flips[0] < 15_000 < flips[1]
    assert resolved >= 9, resolved


# -- whole models through the Monitor: alerts, retrains, their data ----------------------------


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def run_model(labels: list[bool], predicted: list[bool], delay_ms: int, seed: int) -> list:
    """Predictions every 2 s, each label ``delay_ms`` (+-50 %) later, in event-time order."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    events = []
    for i in range(n):
        at = T0 + i * SPACING_MS
        events.append((at, 0, i))
        events.append((at + int(delay_ms * rng.uniform(0.5, 1.5)), 1, i))
    events.sort()
    monitor, out, batch = Monitor(), [], []
    for at, kind, i in events:
        if kind == 0:
            batch.append(
                Prediction(
                    model_id="m",
                    model_version="1",
                    prediction_id=str(i),
                    timestamp=at,
                    prediction=predicted[i],
                )
            )
        else:
            batch.append(Label(model_id="m", prediction_id=str(i), timestamp=at, label=labels[i]))
        if len(batch) == 4_000:
            out += monitor.process(batch)
            batch = []
    return out + monitor.process(batch)


def kinds(out: list, *wanted: str) -> list:
    return [e for e in out if e.type.rsplit(".", 1)[1] in wanted]


def assert_pairs_tell_the_truth(alerts: list) -> None:
    """statistic and threshold are the deciding pair, in the direction the summary states."""
    for alert in alerts:
        data = alert.data
        worse_is_higher = data.signal in ("error", "rmse")
        if data.detector in ("reset", "superseded"):
            assert data.statistic == data.threshold == 0.0
            continue
        # Firing: on the worse side of the line (an error rate may sit on it: the fewest errors
        # that confirm); resolved: strictly back on the better side.
        if data.status == "firing" and worse_is_higher:
            assert data.statistic >= data.threshold, data
        elif data.status == "firing" or worse_is_higher:
            assert data.statistic < data.threshold, data
        else:
            assert data.statistic > data.threshold, data
        assert (
            f"{data.statistic:.4f}"[:5] in data.summary or f"{data.statistic:.4g}" in data.summary
        )


@pytest.mark.parametrize("seed", range(3))
def test_the_fraud_model_of_the_issue(seed):
    """1 % positives, labels two days late: three days unchanged, then half the fraud looks
    legitimate. Quiet for the unchanged days; then one incident, one retrain, whose window
    starts where the change did (not in the unchanged days)."""
    change = 130_000
    labels, predicted = classifier(500 + seed, 190_000, 0.01, change=change)
    out = run_model(labels, predicted, 2 * DAY_MS, seed)
    change_ms = T0 + change * SPACING_MS
    first_changed_label = change_ms + DAY_MS  # the earliest a changed outcome is labelled
    watched = kinds(out, "performance_degradation", "concept_drift")
    assert [a for a in watched if ms(a.data.event_time) < first_changed_label] == []
    assert [c for c in kinds(out, "retrain") if ms(c.time) < first_changed_label] == []
    firing = [a for a in watched if a.data.status == "firing"]
    assert firing, "the halving was not detected"
    assert len([a for a in firing if a.type.endswith("performance_degradation")]) <= 1
    retrains = kinds(out, "retrain")
    assert len(retrains) == 1, [(r.data.reason, r.time) for r in retrains]
    start = ms(retrains[0].data.window.start)
    # Labels 1 to 3 days late: in label order the change is a ramp two days long, and the
    # estimated change point lies in it, not in the days of unchanged traffic before.
    assert change_ms - DAY_MS <= start <= change_ms + DAY_MS
    assert_pairs_tell_the_truth(watched)


def test_a_weak_stable_model_raises_nothing():
    """The issue's weak model (F1 ~0.21, few predicted positives): it fell to 0.156 against a
    threshold of 0.157 once and raised a degradation and a retrain."""
    for seed in range(2):
        labels, predicted = classifier(600 + seed, 60_000, 0.3, 0.12, 0.01)
        out = run_model(labels, predicted, 3_600_000, seed)
        assert kinds(out, "performance_degradation", "concept_drift", "retrain") == []


def test_a_larger_change_after_a_false_or_small_one_still_fires_and_retrains():
    """A small rise fires and retrains; a much larger one while it is open is a new incident:
    the first resolves (superseded), the new one fires and asks for its own retrain although
    the retrain cooldown (6 h) has not passed."""
    rng = np.random.default_rng(14)
    errors = np.concatenate(
        [rng.random(10_000) < 0.05, rng.random(5_000) < 0.1, rng.random(4_000) < 0.3]
    )
    labels = [True] * len(errors)
    predicted = [not e for e in errors.tolist()]  # an error is a missed positive
    out = run_model(labels, predicted, 60_000, 14)
    concept = kinds(out, "concept_drift")
    statuses = [(a.data.status, a.data.detector) for a in concept]
    assert [s for s, _ in statuses][:3] == ["firing", "resolved", "firing"], statuses
    assert statuses[1][1] == "superseded"
    retrains = [r for r in kinds(out, "retrain") if r.data.reason == "concept_drift"]
    assert len(retrains) == 2, [r.time for r in retrains]
    assert ms(retrains[1].time) - ms(retrains[0].time) < 6 * 3_600_000
    assert retrains[1].data.evidence.details["error_rate_episode"] > 0.2
    assert_pairs_tell_the_truth(concept)
