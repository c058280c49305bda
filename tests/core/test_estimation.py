"""Performance estimated before labels (CBPE): the estimate's formulas, the calibration, and
seeded streams through the Monitor with labels a day late."""

from __future__ import annotations

import msgspec
import numpy as np
import orjson
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import f1_score, roc_auc_score

from detectors.base import StateError
from detectors.calibration import IsotonicCalibration
from detectors.config import ConfigError, MonitorConfig
from detectors.config_sections import EstimationConfig
from detectors.estimation import estimate_binary
from detectors.estimator import PerformanceEstimator
from detectors.monitor import Monitor
from schemas import Label, Prediction
from tests.scenarios import T0

DAY = 86_400_000
STEP = 10_000  # a prediction every 10 s of event time: 8,640 a day
SHIFT_DAY = 2


# -- the formulas ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_the_estimate_is_the_mean_of_what_windows_realise_and_its_band_their_spread(seed):
    """Labels drawn from the calibrated probabilities, 2,000 times over one window: the mean
    realised metric equals the estimate, and its spread the standard error (within 10 %; ROC
    AUC's Hanley-McNeil error, an approximation, within 20 %)."""
    rng = np.random.default_rng(seed)
    scores = rng.beta(rng.uniform(1, 3), rng.uniform(1, 3), 1000)
    predicted = scores > rng.uniform(0.3, 0.6)
    estimate = estimate_binary(scores, predicted, scores=scores)
    realised: dict[str, list[float]] = {"f1": [], "accuracy": [], "roc_auc": []}
    ranks = np.argsort(np.argsort(scores)) + 1.0  # (no ties in continuous scores)
    for _ in range(2000):
        y = rng.random(1000) < scores
        tp = np.count_nonzero(y & predicted)
        realised["f1"].append(2 * tp / (np.count_nonzero(y) + np.count_nonzero(predicted)))
        realised["accuracy"].append(float(np.mean(y == predicted)))
        n1 = np.count_nonzero(y)
        realised["roc_auc"].append((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * (len(y) - n1)))
    assert realised["roc_auc"][-1] == pytest.approx(roc_auc_score(y, scores))  # the same AUC
    for metric, values in realised.items():
        assert estimate.values[metric] == pytest.approx(np.mean(values), abs=0.003)
        tolerance = 0.2 if metric == "roc_auc" else 0.1
        assert estimate.stderr[metric] == pytest.approx(np.std(values), rel=tolerance), metric


@pytest.mark.parametrize("seed", range(10))
def test_the_calibration_is_scikit_learns_isotonic_regression(seed):
    rng = np.random.default_rng(seed)
    scores = np.round(rng.random(3000), 3)  # ties
    positive = rng.random(3000) < scores ** rng.uniform(0.3, 3)
    ours = IsotonicCalibration.fit(scores, positive, min_block=1)
    theirs = IsotonicRegression(out_of_bounds="clip").fit(scores, positive)
    probe = rng.uniform(-0.1, 1.1, 500)
    assert np.abs(ours(probe) - theirs.predict(probe)).max() < 1e-9
    again = IsotonicCalibration.from_state(orjson.loads(orjson.dumps(ours.to_state())))
    assert np.array_equal(again(probe), ours(probe))


def test_a_decreasing_calibration_map_is_refused():
    state = IsotonicCalibration(np.array([0.1, 0.5]), np.array([0.6, 0.2])).to_state()
    with pytest.raises(StateError):
        IsotonicCalibration.from_state(state)


# -- when estimation is off ------------------------------------------------------------------


def outcomes(rng, n, relation):
    scores = rng.random(n)
    return scores, rng.random(n) < relation(scores)


@pytest.mark.parametrize(
    ("relation", "threshold", "status"),
    [
        (lambda s: s, 0.5, "on"),
        (lambda s: np.full_like(s, 0.3), 0.5, "uninformative_scores"),
        (lambda s: np.zeros_like(s), 0.5, "collecting"),  # no positive yet
        # Positives only for scores in (0.5, 0.7): no monotone map holds that, and above the
        # model's threshold (0.6) its estimate would count twice the true positives there are.
        (lambda s: ((s > 0.5) & (s < 0.7)).astype(float), 0.6, "poor_calibration"),
    ],
    ids=["calibrated", "uninformative", "one-class", "not-monotone"],
)
def test_estimation_says_why_it_is_off(relation, threshold, status):
    rng = np.random.default_rng(4)
    estimator = PerformanceEstimator(EstimationConfig())
    scores, positive = outcomes(rng, 5000, relation)
    for score, label in zip(scores.tolist(), positive.tolist(), strict=True):
        estimator.add_outcome(score, score > threshold, label)
    assert estimator.status == status
    if status == "collecting":
        for score in rng.random(20_000).tolist():
            estimator.add_outcome(score, score > threshold, False)
        assert estimator.status == "too_few_labels"


def test_the_estimator_saves_and_loads():
    rng = np.random.default_rng(5)
    config = EstimationConfig(window=300, check_every=50)
    estimator = PerformanceEstimator(config)
    for score in rng.random(2500).tolist():
        estimator.add_outcome(score, score > 0.5, bool(rng.random() < score))
    estimator.add_predictions(list(range(450)), rng.random(450).tolist(), None)
    again = PerformanceEstimator(config)
    again.load_state(orjson.loads(orjson.dumps(estimator.to_state())))
    assert again.to_state() == estimator.to_state()
    assert again.estimate() == estimator.estimate()
    times, scores = list(range(450, 600)), rng.random(150).tolist()
    assert again.add_predictions(times, scores, None) == estimator.add_predictions(
        times, scores, None
    )
    broken = estimator.to_state()
    broken["window"][0][0] = 1.5
    with pytest.raises(StateError):
        PerformanceEstimator(config).load_state(broken)


def test_impossible_estimation_settings_are_refused():
    with pytest.raises(ConfigError, match=r"estimation\.metric"):
        MonitorConfig.from_dict({"defaults": {"estimation": {"metric": "auc"}}})
    with pytest.raises(ConfigError, match="reference_size"):
        MonitorConfig.from_dict({"defaults": {"estimation": {"reference_size": 10}}})


# -- seeded streams through the Monitor ----------------------------------------------------


def stream(
    seed: int, days: float = 3.5, shift: str | None = None, calibrated: bool = True
) -> tuple[list, np.ndarray, np.ndarray]:
    """(events in event-time order, labels, predictions) of a binary classifier: a hidden
    input ``x ~ N(0, 1)``, ``P(y | x) = sigmoid(3x - 1.5)``; its score is that probability
    (``calibrated``) or a monotone distortion of it, its prediction the score above one half.
    Labels come a day after their prediction. From day 2 on, ``shift``:

    ``hurts``     ``x ~ N(b, 0.25)``, ``b`` the model's decision boundary: predictions crowd it
                  (F1 0.77 -> 0.64);
    ``harmless``  ``x ~ N(1, 1)``: more confident positives (F1 up to 0.89);
    ``concept``   inputs unchanged, labels now follow ``sigmoid(3x - 3)`` (F1 0.77 -> 0.67;
                  the scores do not move).
    """
    rng = np.random.default_rng(seed)
    n = int(days * DAY / STEP)
    shifted = np.arange(n) * STEP >= SHIFT_DAY * DAY
    boundary = 0.5 if calibrated else 0.5 - 0.4 / 3.6  # where the score crosses one half
    crowd = np.where(shifted & (shift == "hurts"), boundary, 0.0)
    mu = np.where(shifted & (shift == "harmless"), 1.0, crowd)
    sd = np.where(shifted & (shift == "hurts"), 0.25, 1.0)
    x = rng.normal(mu, sd)
    truth = 1 / (1 + np.exp(-(3 * x - np.where(shifted & (shift == "concept"), 3.0, 1.5))))
    labels = rng.random(n) < truth
    model = 1 / (1 + np.exp(-(3 * x - 1.5)))
    scores = model if calibrated else 1 / (1 + np.exp(-(1.2 * (3 * x - 1.5) + 0.4)))
    scores = np.round(scores, 6)
    predicted = scores > 0.5
    timed = []
    for i in range(n):
        ts = T0 + i * STEP
        pid = f"p{i}"
        timed.append(
            (
                ts,
                0,
                Prediction(
                    model_id="m",
                    model_version="1",
                    prediction_id=pid,
                    timestamp=ts,
                    prediction=bool(predicted[i]),
                    score=float(scores[i]),
                ),
            )
        )
        timed.append(
            (
                ts + DAY,
                1,
                Label(model_id="m", prediction_id=pid, timestamp=ts + DAY, label=bool(labels[i])),
            )
        )
    timed.sort(key=lambda item: (item[0], item[1]))
    return [event for _, _, event in timed], labels, predicted


def run(events: list, batch: int = 500) -> tuple[Monitor, list[tuple[int, float, int]], list]:
    """The stream through a Monitor: (predictions seen, estimated F1, ...) after each batch, and
    every estimated_performance_degradation alert."""
    monitor = Monitor()
    estimates = []
    alerts = []
    seen = 0
    for start in range(0, len(events), batch):
        chunk = events[start : start + batch]
        seen += sum(type(e) is Prediction for e in chunk)
        out = monitor.process(chunk)
        alerts += [e for e in out if e.type.endswith("estimated_performance_degradation")]
        version = monitor.models["m"].versions["1"]
        estimate = version.estimator.estimate() if version.estimator is not None else None
        if estimate is not None:
            estimates.append((seen, estimate.values["f1"], chunk[-1].timestamp))
    return monitor, estimates, alerts


def realised_f1(labels: np.ndarray, predicted: np.ndarray, end: int, window: int = 1000) -> float:
    return float(f1_score(labels[end - window : end], predicted[end - window : end]))


@pytest.mark.parametrize("calibrated", [True, False], ids=["calibrated", "distorted"])
def test_estimated_f1_tracks_the_realised_and_alerts_before_the_shifted_labels(calibrated):
    """Covariate shift that lowers F1 by 0.1 on day 2; labels a day late. Over 10 seeds a
    model: mean absolute error of the estimated F1 against the F1 the same window of
    predictions realised <= 0.03; the alert fires before the first shifted label (day 3)."""
    first_shifted_label = T0 + SHIFT_DAY * DAY + DAY
    errors, delays = [], []
    for seed in range(10):
        events, labels, predicted = stream(seed, shift="hurts", calibrated=calibrated)
        at_shift = SHIFT_DAY * DAY // STEP
        drop = realised_f1(labels, predicted, at_shift, 5000)
        drop -= realised_f1(labels, predicted, len(predicted), 5000)
        assert drop >= 0.1, f"seed {seed}: the shift lowers F1 by {drop:.3f} only"
        _, estimates, alerts = run(events)
        errors += [abs(f1 - realised_f1(labels, predicted, seen)) for seen, f1, _ in estimates]
        firing = [a for a in alerts if a.data.status == "firing"]
        assert firing, f"seed {seed}: no alert"
        fired = firing[0]
        at = int(np.datetime64(fired.data.event_time[:-1], "ms").astype(np.int64))
        assert T0 + SHIFT_DAY * DAY < at < first_shifted_label, (seed, fired.data.event_time)
        delays.append((at - T0 - SHIFT_DAY * DAY) / 3_600_000)
        assert fired.data.model_version == "1"
        assert fired.data.signal == "f1"
    assert np.mean(errors) <= 0.03
    mae, median, worst = np.mean(errors), np.median(delays), max(delays)
    print(f"MAE {mae:.4f}; alert after the shift: {median:.1f} h median, max {worst:.1f} h")


def test_a_harmless_shift_raises_no_estimated_alert_and_concept_drift_does_not_move_it():
    for seed in range(6):
        _, estimates, alerts = run(stream(100 + seed, shift="harmless")[0])
        assert alerts == [], f"seed {seed}"
        events, labels, predicted = stream(200 + seed, shift="concept")
        _, estimates, alerts = run(events)
        assert alerts == []
        before = [f1 for _, f1, ts in estimates if T0 + 1.5 * DAY < ts < T0 + SHIFT_DAY * DAY]
        after = [f1 for _, f1, ts in estimates if ts > T0 + (SHIFT_DAY + 0.5) * DAY]
        assert abs(np.mean(after) - np.mean(before)) < 0.02  # while the realised F1 falls:
        end = len(predicted)
        assert realised_f1(labels, predicted, end, 5000) < np.mean(after) - 0.05


def test_stationary_streams_raise_no_estimated_alert():
    """False alarms: none in 8 streams x 30k predictions."""
    for seed in range(8):
        _, _, alerts = run(stream(300 + seed)[0])
        assert alerts == []


def test_replay_and_restore_give_the_same_estimates():
    """Other batch sizes and a restart halfway: the same estimate and the same alerts."""
    events, _, _ = stream(7, days=2.5, shift="hurts")
    whole, _, alerts = run(events)
    half = len(events) // 2
    first = Monitor()
    out = []
    for start in range(0, half, 700):
        out += first.process(events[start : min(start + 700, half)])
    second = Monitor()
    second.load_model_state("m", orjson.loads(orjson.dumps(first.model_state("m"))))
    for start in range(half, len(events), 300):
        out += second.process(events[start : start + 300])
    version = second.models["m"].versions["1"]
    # (The estimate /metrics shows is kept as running sums: equal to rounding, whatever the
    # batches; ROC AUC and the checks that decide alerts read the window itself at fixed
    # counts of predictions: equal to the bit.)
    shown = version.estimator.estimate()
    expected = whole.models["m"].versions["1"].estimator.estimate()
    assert shown.values == pytest.approx(expected.values, rel=1e-9)
    assert shown.stderr == pytest.approx(expected.stderr, rel=1e-6)
    estimated = [a for a in out if a.type.endswith("estimated_performance_degradation")]
    assert estimated
    assert estimated == alerts


@pytest.mark.parametrize("seed", range(3))
def test_a_multiclass_estimate_is_the_mean_of_what_windows_realise(seed):
    """Labels drawn from calibrated class probabilities, 1,000 times over a window of 1,000
    predictions of 4 classes: the estimated accuracy and macro F1 equal the realised means,
    their bands the spread (accuracy within 10 %; the macro F1's, combined as if the classes
    were independent, within 25 %)."""
    from detectors.estimation import estimate_multiclass

    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(4, 0.6), 1000)
    predicted = p.argmax(axis=1)
    estimate = estimate_multiclass(p, predicted)
    cumulative = p.cumsum(axis=1)
    accuracy, f1 = [], []
    for _ in range(1000):
        y = (rng.random((1000, 1)) > cumulative).sum(axis=1)
        accuracy.append(float(np.mean(y == predicted)))
        f1.append(f1_score(y, predicted, average="macro", labels=range(4)))
    assert estimate.values["accuracy"] == pytest.approx(np.mean(accuracy), abs=0.003)
    assert estimate.values["f1"] == pytest.approx(np.mean(f1), abs=0.005)
    assert estimate.stderr["accuracy"] == pytest.approx(np.std(accuracy), rel=0.1)
    assert estimate.stderr["f1"] == pytest.approx(np.std(f1), rel=0.25)


def test_a_binary_model_sending_class_maps_is_estimated_from_its_positive_class():
    """The same stream with each score sent as ``{"true": s, "false": 1 - s}``: the same
    estimate and the same alerts as with the number."""
    events, _, _ = stream(8, days=2.5, shift="hurts")
    as_maps = [
        msgspec.structs.replace(e, score={"false": 1.0 - e.score, "true": e.score})
        if type(e) is Prediction
        else e
        for e in events
    ]
    numbers, _, alerts = run(events)
    maps, _, map_alerts = run(as_maps)
    assert alerts
    assert [a.data for a in map_alerts] == [a.data for a in alerts]
    estimate = maps.models["m"].versions["1"].estimator.estimate()
    assert estimate.values == numbers.models["m"].versions["1"].estimator.estimate().values
