"""A regression model's MAE estimated before labels (DLE) through the Monitor: the estimator
alone (features, when it is off, its state), then seeded streams with labels a day late."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest

from detectors.base import StateError
from detectors.config import ConfigError, MonitorConfig
from detectors.config_sections import EstimationConfig
from detectors.loss_estimator import LossEstimator
from detectors.monitor import Monitor
from schemas import Input, Label, Prediction
from tests.scenarios import T0

DAY = 86_400_000
STEP = 10_000  # a prediction every 10 s of event time: 8,640 a day
SHIFT_DAY = 2
NAMES = ("x0", "x1", "x2", "x3", "x4")


# -- seeded streams ---------------------------------------------------------------------------


def draw(seed: int, days: float = 3.5, shift: str | None = None):
    """(features, predictions, labels) of a linear model ``yhat = x0 + 1.5 x2 + 0.8 x3`` of five
    ``N(0, 1)`` inputs that misses a bias in x3, its noise growing with x0 (even seeds:
    smoothly; odd: in steps, also with x1), as ``bench/dle.py``'s: x2 and x4 move the
    prediction, not the error. From day 2 on, ``shift``:

    ``hurts``     x0, x1 ~ N(1, 1): inputs move to where the model is worse (MAE +30-55 %);
    ``harmless``  x2, x4 ~ N(2, 1): the predictions move by +3, the error does not;
    ``concept``   inputs unchanged, labels + 0.5: the realised MAE rises.
    """
    rng = np.random.default_rng(seed)
    n = int(days * DAY / STEP)
    shifted = np.arange(n) * STEP >= SHIFT_DAY * DAY
    c, g, h = rng.uniform(0.15, 0.3), rng.uniform(0.35, 0.55), rng.uniform(0.4, 0.6)
    x = rng.normal(0.0, 1.0, (n, 5))
    if shift == "hurts":
        x[shifted, :2] += 1.0
    elif shift == "harmless":
        x[np.ix_(shifted, [2, 4])] += 2.0
    yhat = x[:, 0] + 1.5 * x[:, 2] + 0.8 * x[:, 3]
    if seed % 2 == 0:
        scale, bias = 0.5 * np.exp(g * x[:, 0]), c * (x[:, 3] ** 2 - 1)
    else:
        scale, bias = 0.25 + 0.25 * np.abs(x[:, 0]) + h * (x[:, 1] > 0.5), 3 * c * (x[:, 3] > 1)
    y = (
        yhat
        + bias
        + scale * rng.standard_normal(n)
        + np.where(shifted & (shift == "concept"), 0.5, 0)
    )
    return np.round(x, 6), np.round(yhat, 6), np.round(y, 6)


def stream(seed: int, days: float = 3.5, shift: str | None = None):
    """(events in event-time order, absolute errors) of :func:`draw`'s model, labels a day
    after their prediction."""
    x, yhat, y = draw(seed, days, shift)
    rows, predictions, labels = x.tolist(), yhat.tolist(), y.tolist()
    timed = []
    for i, (row, prediction, label) in enumerate(zip(rows, predictions, labels, strict=True)):
        ts = T0 + i * STEP
        pid = f"p{i}"
        features = dict(zip(NAMES, row, strict=True))
        timed.append((ts, 0, Prediction("m", "1", pid, ts, prediction, features=features)))
        timed.append((ts + DAY, 1, Label("m", pid, ts + DAY, label)))
    timed.sort(key=lambda item: (item[0], item[1]))
    return [event for _, _, event in timed], np.abs(np.array(labels) - np.array(predictions))


def run(events: list, batch: int = 500, monitor: Monitor | None = None):
    """The stream through a Monitor: (predictions seen, estimated MAE, event time) after each
    batch with an estimate, and every estimated_performance_degradation alert."""
    monitor = monitor if monitor is not None else Monitor()
    estimates, alerts, seen = [], [], 0
    for start in range(0, len(events), batch):
        chunk = events[start : start + batch]
        seen += sum(type(e) is Prediction for e in chunk)
        out = monitor.process(chunk)
        alerts += [e for e in out if e.type.endswith("estimated_performance_degradation")]
        estimate = monitor.models["m"].versions["1"].estimator.estimate()
        if estimate is not None:
            estimates.append((seen, estimate.values["mae"], chunk[-1].timestamp))
    return monitor, estimates, alerts


def fired_at(alert) -> int:
    return int(np.datetime64(alert.data.event_time[:-1], "ms").astype(np.int64))


def test_estimated_mae_tracks_the_realised_and_alerts_before_the_shifted_labels():
    """Covariate shift that raises the MAE by 30 % or more on day 2; labels a day late. Over 6
    seeds: the estimated MAE's mean absolute error against the MAE the same window of
    predictions realised <= 10 % of the reference MAE (bench/dle.md: ~4 %), and the alert
    (dle, signal mae) fires after the shift, before the first shifted label."""
    first_shifted_label = T0 + SHIFT_DAY * DAY + DAY
    at_shift = SHIFT_DAY * DAY // STEP
    gaps, delays = [], []
    for seed in range(6):
        events, errors = stream(seed, shift="hurts")
        rise = errors[at_shift:].mean() / errors[:at_shift].mean() - 1
        assert rise >= 0.3, f"seed {seed}: the shift raises the MAE by {rise:.0%} only"
        monitor, estimates, alerts = run(events)
        estimator = monitor.models["m"].versions["1"].estimator
        assert estimator.status == "on"
        assert estimator.columns == list(NAMES)
        reference = estimator.reference.values["mae"]
        gaps += [
            abs(mae - errors[seen - 1000 : seen].mean()) / reference for seen, mae, _ in estimates
        ]
        firing = [a for a in alerts if a.data.status == "firing"]
        assert firing, f"seed {seed}: no alert"
        fired = firing[0]
        assert T0 + SHIFT_DAY * DAY < fired_at(fired) < first_shifted_label, seed
        assert (fired.data.signal, fired.data.detector) == ("mae", "dle")
        assert 0 <= fired.data.details["outside"] < 0.1  # (the shift stays in the range)
        delays.append((fired_at(fired) - T0 - SHIFT_DAY * DAY) / 3_600_000)
        assert estimator.estimation_error()["mae"] < 0.1 * reference
    assert np.mean(gaps) <= 0.1
    print(
        f"tracking: mean |estimated - realised| {np.mean(gaps):.1%} of the reference MAE; "
        f"alert {np.median(delays):.1f} h after the shift (median), max {max(delays):.1f} h"
    )


def test_a_harmless_shift_raises_no_alert_and_concept_drift_does_not_move_the_estimate():
    """The predictions move, the error does not: no alert (3 seeds). Labels move, inputs do
    not: the estimate stays (within 5 % of the reference MAE) while the realised MAE rises,
    no alert."""
    for seed in range(3):
        _, _, alerts = run(stream(100 + seed, shift="harmless")[0])
        assert alerts == [], f"seed {seed}"
        events, errors = stream(200 + seed, shift="concept")
        monitor, estimates, alerts = run(events)
        assert alerts == []
        reference = monitor.models["m"].versions["1"].estimator.reference.values["mae"]
        before = [mae for _, mae, ts in estimates if T0 + 1.5 * DAY < ts < T0 + SHIFT_DAY * DAY]
        after = [mae for _, mae, ts in estimates if ts > T0 + (SHIFT_DAY + 0.5) * DAY]
        assert abs(np.mean(after) - np.mean(before)) < 0.05 * reference
        assert errors[-5000:].mean() > 1.15 * np.mean(after)  # while the realised MAE rises


def test_stationary_streams_raise_no_alert():
    """False alarms: none in 4 streams x 4.5 days (~110k predictions checked)."""
    checked = 0
    for seed in range(4):
        monitor, _, alerts = run(stream(300 + seed, days=4.5)[0])
        assert alerts == [], f"seed {seed}"
        checked += monitor.models["m"].versions["1"].estimator.predictions
    assert checked > 100_000
    print(f"0 false alarms in {checked} predictions checked")


def test_replay_and_restore_give_the_same_estimate_and_alerts():
    """Other batch sizes and a restart halfway: the same estimate and the same alerts."""
    events, _ = stream(7, days=2.5, shift="hurts")
    whole, _, alerts = run(events)
    half = len(events) // 2
    first = Monitor()
    out = []
    for start in range(0, half, 700):
        out += first.process(events[start : min(start + 700, half)])
    assert first.models["m"].versions["1"].estimator.on
    second = Monitor()
    second.load_model_state("m", orjson.loads(orjson.dumps(first.model_state("m"))))
    for start in range(half, len(events), 300):
        out += second.process(events[start : start + 300])
    shown = second.models["m"].versions["1"].estimator
    expected = whole.models["m"].versions["1"].estimator
    assert shown.estimate().values == pytest.approx(expected.estimate().values, rel=1e-9)
    assert shown.check(0) == expected.check(0)  # (from the window itself: to the bit)
    estimated = [a for a in out if a.type.endswith("estimated_performance_degradation")]
    assert estimated
    assert estimated == alerts


# -- when it is off, and its state ------------------------------------------------------------


def small_stream(features, n: int = 600, inputs: bool = False) -> list:
    """A regression model's predictions with ``features(i)``, labelled at once (or its
    features sent on the inputs topic)."""
    rng = np.random.default_rng(0)
    events = []
    for i in range(n):
        ts, pid = T0 + i * STEP, f"p{i}"
        row = features(i)
        prediction = float(rng.normal())
        sent = None if inputs else row
        events.append(Prediction("m", "1", pid, ts, prediction, features=sent))
        if inputs:
            events.append(Input("m", ts, row, model_version="1", prediction_id=pid))
        events.append(Label("m", pid, ts, prediction + float(rng.normal())))
    return events


SMALL = MonitorConfig.from_dict({"defaults": {"estimation": {"reference_size": 200}}})


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("numeric", "on"),
        ("none", "no_features"),
        ("categorical", "no_features"),
        ("inputs", "no_features"),
        ("disabled", None),
    ],
)
def test_estimation_is_on_for_numeric_features_and_says_why_not(case, status):
    """On with numeric features; off (no_features) without any at prediction time: none, only
    categorical ones, or the features on the inputs topic; none at all when disabled."""

    def features(i):
        if case == "none":
            return None
        if case == "categorical":
            return {"channel": "web"}
        return {"a": float(i % 7), "b": float(i % 3), "channel": "web"}

    config = SMALL
    if case == "disabled":
        config = MonitorConfig.from_dict(
            {"defaults": {"estimation": {"reference_size": 200, "enabled": False}}}
        )
    monitor = Monitor(config)
    monitor.process(small_stream(features, inputs=case == "inputs"))
    estimator = monitor.models["m"].versions["1"].estimator
    if status is None:
        assert estimator is None
        return
    assert estimator.status == status
    if status == "on":
        assert estimator.columns == ["a", "b"]  # (numbers only, sorted)
    else:
        assert estimator.to_state()["held"] == []  # nothing kept


def test_features_moved_to_the_inputs_topic_turn_estimation_off():
    monitor = Monitor(SMALL)
    monitor.process(small_stream(lambda i: {"a": float(i % 7)}, n=300))
    estimator = monitor.models["m"].versions["1"].estimator
    assert estimator.status == "on"
    later = [
        Input("m", T0 + 10 * DAY, {"a": 1.0}, model_version="1", prediction_id="later"),
    ]
    monitor.process(later)
    assert estimator.status == "no_features"
    assert estimator.estimate() is None


def test_predictions_wait_for_their_labels_in_bounded_memory():
    """At most 2 x reference_size predictions held; when full, the oldest goes once the join
    could no longer join it (ttl), else the new one is not held."""
    estimator = LossEstimator(EstimationConfig(reference_size=100), ttl=1000)
    for i in range(250):
        estimator.see(f"p{i}", i, 1.0, {"a": 1.0})
    held = estimator.to_state()["held"]
    assert [pid for pid, _, _ in held] == [f"p{i}" for i in range(200)]
    estimator.see("late", 1100, 1.0, {"a": 2.0})  # p0 (at 0) can no longer be joined
    held = estimator.to_state()["held"]
    assert len(held) == 200
    assert held[0][0] == "p1"
    assert held[-1] == ["late", 1100, [2.0, 1.0]]


def test_a_missing_or_odd_feature_reads_as_the_reference_mean():
    config = EstimationConfig(reference_size=200, window=100, check_every=50)
    rng = np.random.default_rng(3)
    estimator = LossEstimator(config)
    for i in range(200):
        a = float(rng.normal())
        estimator.see(f"p{i}", i, a, {"a": a, "b": float(rng.normal())})
        estimator.add_outcome(f"p{i}", abs(float(rng.normal(0, math.exp(a)))), i)
    assert estimator.on
    mean = estimator.model.center[0]
    odd = [(None, 0.5, 0.0), ("web", 0.5, 0.0), (10**400, 0.5, 0.0), (math.inf, 0.5, 0.0)]
    filled = [(mean, 0.5, 0.0)] * 4
    estimator.add_predictions(list(range(300, 304)), odd)
    again = LossEstimator(config)
    again.load_state(orjson.loads(orjson.dumps(estimator.to_state())))
    assert np.array_equal(again._rows[:4], np.array(filled))
    assert np.array_equal(estimator._rows[:4], np.array(filled))


def test_the_estimator_saves_and_loads_and_refuses_a_state_out_of_bounds():
    config = EstimationConfig(reference_size=200, window=100, check_every=50)
    x, yhat, y = (v.tolist() for v in draw(5, days=0.1))
    estimator = LossEstimator(config)
    rows = [(*r, p) for r, p in zip(x, yhat, strict=True)]
    seen = []
    for i in range(450):
        seen.append(estimator.see(f"p{i}", i, yhat[i], dict(zip(NAMES, x[i], strict=True))))
        if i < 250 or 400 <= i < 420:  # (the others wait for their labels)
            estimator.add_outcome(f"p{i - 100 * (i >= 400)}", abs(y[i] - yhat[i]), i)
        if i == 349:  # predictions 200-349 estimated: those held keep their predicted error
            estimator.add_predictions(
                list(range(200, 350)), seen[200:], [f"p{k}" for k in range(200, 350)]
            )
    assert estimator.on
    held = estimator.to_state()["held"]
    assert type(held[0][2]) is float  # (estimated)
    assert type(held[-1][2]) is list  # (not yet)
    block = estimator.to_state()["block"][0]
    assert {type(entry) for entry in block} == {list, float}
    state = orjson.loads(orjson.dumps(estimator.to_state()))
    again = LossEstimator(config)
    again.load_state(state)
    assert again.to_state() == estimator.to_state()
    assert again.estimate() == estimator.estimate()
    times = list(range(450, 600))
    assert again.add_predictions(times, rows[450:600]) == estimator.add_predictions(
        times, rows[450:600]
    )
    for path, value in [
        (("status",), "sleeping"),
        (("window",), [[1.0] * 6] * 101),  # more than a window
        (("window",), [[math.nan] * 6]),  # (JSON null)
        (("held",), [["p", 0, [1.0]]]),  # a row of another width
        (("columns",), ["a", "a", "b", "c", "d"]),
        (("collected",), [[[1.0] * 6], [-1.0]]),  # a negative absolute error
        (("sums",), [0.0]),
        (("model",), None),  # on without a model
    ]:
        broken = orjson.loads(orjson.dumps(estimator.to_state()))
        broken[path[0]] = value
        with pytest.raises(StateError):
            LossEstimator(config).load_state(orjson.loads(orjson.dumps(broken)))


def test_min_rise_is_read_and_a_negative_one_refused():
    config = MonitorConfig.from_dict({"defaults": {"estimation": {"min_rise": 0.25}}})
    assert config.for_model("m").estimation.min_rise == 0.25
    with pytest.raises(ConfigError, match="min_rise"):
        MonitorConfig.from_dict({"defaults": {"estimation": {"min_rise": -0.1}}})
