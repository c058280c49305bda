"""Scripted model traffic for scenario tests: each function returns Kafka-like records.

A record is ``(topic_kind, payload)`` with ``topic_kind`` one of ``predictions``, ``inputs``,
``labels`` and ``payload`` the message value (bytes). Replay tests write them to a JSON-lines file;
broker tests produce them to real topics (keyed by model_id). ``t0`` sets the event time of the
first record, so live tests can stamp events near the wall clock.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import orjson

T0 = 1_795_255_200_000  # 2026-11-21T10:00:00Z
Record = tuple[str, bytes]


def _prediction(
    model: str,
    version: str,
    pid: str,
    ts: int,
    prediction,
    features=None,
    score=None,
    latency=None,
    tags=None,
) -> bytes:
    event = {
        "model_id": model,
        "model_version": version,
        "prediction_id": pid,
        "timestamp": ts,
        "prediction": prediction,
    }
    if features is not None:
        event["features"] = features
    if score is not None:
        event["score"] = score
    if latency is not None:
        event["latency_ms"] = latency
    if tags is not None:
        event["tags"] = tags
    return orjson.dumps(event)


def _label(model: str, pid: str, ts: int, label) -> bytes:
    return orjson.dumps({"model_id": model, "prediction_id": pid, "timestamp": ts, "label": label})


@dataclass
class Labelled:
    """Predictions whose labels are released ``delay`` records later (labels arrive late)."""

    delay: int
    queue: list[tuple[int, Record]] = field(default_factory=list)

    def hold(self, at: int, record: Record) -> None:
        self.queue.append((at + self.delay, record))

    def due(self, at: int) -> Iterator[Record]:
        while self.queue and self.queue[0][0] <= at:
            yield self.queue.pop(0)[1]

    def rest(self) -> Iterator[Record]:
        for _, record in self.queue:
            yield record
        self.queue.clear()


def covariate_shift(
    model: str = "m-shift",
    n: int = 4000,
    shift_at: int = 2500,
    shift: float = 1.5,
    t0: int = T0,
    step_ms: int = 100,
    seed: int = 1,
) -> list[Record]:
    """One model, three features; ``f1`` shifts by ``shift`` standard deviations at
    ``shift_at``. ``f2`` (numeric) and ``country`` (categorical) stay stationary."""
    rng = random.Random(seed)
    out: list[Record] = []
    for i in range(n):
        features = {
            "f1": rng.gauss(10, 2) + (shift * 2 if i >= shift_at else 0),
            "f2": rng.expovariate(0.2),
            "country": rng.choices(["DE", "FR", "US"], weights=[5, 3, 2])[0],
        }
        out.append(
            (
                "predictions",
                _prediction(
                    model,
                    "1",
                    f"{model}-{i}",
                    t0 + i * step_ms,
                    rng.random() < 0.3,
                    features,
                    rng.random(),
                ),
            )
        )
    return out


def concept_drift(
    model: str = "m-concept",
    n: int = 4000,
    drift_at: int = 2000,
    before: float = 0.1,
    after: float = 0.4,
    label_delay: int = 50,
    t0: int = T0,
    step_ms: int = 100,
    seed: int = 2,
) -> list[Record]:
    """A classifier whose error rate jumps from ``before`` to ``after`` at ``drift_at``; labels
    arrive ``label_delay`` records after their prediction. Inputs do not change (concept, not
    covariate, drift)."""
    return _errors(
        model, n, lambda i: before if i < drift_at else after, label_delay, t0, step_ms, seed
    )


def escalating_drift(
    model: str = "m-escalate",
    n: int = 14_000,
    first_at: int = 6_000,
    second_at: int = 9_500,
    t0: int = T0,
    step_ms: int = 100,
    seed: int = 9,
) -> list[Record]:
    """The error rate rises 5 % -> 15 % at ``first_at`` and again to 45 % at ``second_at``:
    the second rise supersedes the first episode."""
    return _errors(
        model,
        n,
        lambda i: 0.05 if i < first_at else 0.15 if i < second_at else 0.45,
        20,
        t0,
        step_ms,
        seed,
    )


def _errors(
    model: str,
    n: int,
    error_at: Callable[[int], float],
    label_delay: int,
    t0: int,
    step_ms: int,
    seed: int,
) -> list[Record]:
    """A classifier (40 % positives, one stationary feature) wrong with probability
    ``error_at(i)`` at its ``i``-th prediction; labels ``label_delay`` records later."""
    rng = random.Random(seed)
    labels = Labelled(label_delay)
    out: list[Record] = []
    for i in range(n):
        ts = t0 + i * step_ms
        truth = rng.random() < 0.4
        wrong = rng.random() < error_at(i)
        prediction = (not truth) if wrong else truth
        pid = f"{model}-{i}"
        features = {"x": rng.gauss(0, 1)}
        out.append(("predictions", _prediction(model, "1", pid, ts, prediction, features)))
        labels.hold(i, ("labels", _label(model, pid, ts + label_delay * step_ms, truth)))
        out.extend(labels.due(i))
    out.extend(labels.rest())
    return out


def rollout(
    model: str = "m-rollout",
    old_error: float = 0.1,
    new_error: float = 0.3,
    n_old: int = 1500,
    n_new: int = 1500,
    label_delay: int = 20,
    t0: int = T0,
    step_ms: int = 100,
    seed: int = 3,
) -> list[Record]:
    """Version ``1`` serves ``n_old`` predictions, then version ``2`` takes over."""
    rng = random.Random(seed)
    labels = Labelled(label_delay)
    out: list[Record] = []
    for i in range(n_old + n_new):
        ts = t0 + i * step_ms
        version, error = ("1", old_error) if i < n_old else ("2", new_error)
        truth = rng.random() < 0.4
        prediction = (not truth) if rng.random() < error else truth
        pid = f"{model}-{i}"
        out.append(
            (
                "predictions",
                _prediction(model, version, pid, ts, prediction, {"x": rng.gauss(0, 1)}),
            )
        )
        labels.hold(i, ("labels", _label(model, pid, ts + label_delay * step_ms, truth)))
        out.extend(labels.due(i))
    out.extend(labels.rest())
    return out


def slow_rollout(
    model: str = "m-slow",
    n_old: int = 2500,
    n_new: int = 2500,
    slowdown: float = 1.6,
    t0: int = T0,
    step_ms: int = 100,
    seed: int = 13,
) -> list[Record]:
    """Version ``1`` serves ``n_old`` predictions at a lognormal latency (median 20 ms), then
    version ``2``, as accurate, ``slowdown`` times slower."""
    rng = random.Random(seed)
    labels = Labelled(10)
    out: list[Record] = []
    for i in range(n_old + n_new):
        ts = t0 + i * step_ms
        version, factor = ("1", 1.0) if i < n_old else ("2", slowdown)
        truth = rng.random() < 0.4
        prediction = (not truth) if rng.random() < 0.1 else truth
        pid = f"{model}-{i}"
        latency = round(factor * rng.lognormvariate(3.0, 0.4), 3)
        out.append(
            ("predictions", _prediction(model, version, pid, ts, prediction, latency=latency))
        )
        labels.hold(i, ("labels", _label(model, pid, ts + 10 * step_ms, truth)))
        out.extend(labels.due(i))
    out.extend(labels.rest())
    return out


#: The segmentation of :func:`failing_segment`'s model (a short window: a scenario is short).
SEGMENTED = {
    "segments": ["country", "device"],
    "segmentation": {"window": 2000, "check_every": 250, "min_outcomes": 100, "reference": 3000},
}


def failing_segment(
    model: str = "m-segment",
    n: int = 9000,
    fail_at: int = 4000,
    t0: int = T0,
    step_ms: int = 100,
    seed: int = 17,
) -> list[Record]:
    """A classifier that errs 8 % of the time, its traffic shared by five countries (``tags``)
    and three devices (a categorical feature); from prediction ``fail_at`` on it errs 35 % of
    the time for country ``PT``. Country ``ES`` first shows up at prediction 5,000 (a tenth of
    the traffic from then on), and ``FR`` is gone from prediction 6,500 on. Configure the model
    with :data:`SEGMENTED`."""
    rng = random.Random(seed)
    labels = Labelled(20)
    out: list[Record] = []
    for i in range(n):
        ts = t0 + i * step_ms
        countries = ["PT", "DE", "FR", "IT", "NL"]
        if i >= 6500:
            countries.remove("FR")
        country = "ES" if i >= 5000 and rng.random() < 0.1 else rng.choice(countries)
        device = rng.choice(["ios", "android", "web"])
        error_rate = 0.35 if country == "PT" and i >= fail_at else 0.08
        truth = rng.random() < 0.4
        prediction = (not truth) if rng.random() < error_rate else truth
        pid = f"{model}-{i}"
        features = {"x": round(rng.gauss(0, 1), 4), "device": device}
        out.append(
            (
                "predictions",
                _prediction(model, "1", pid, ts, prediction, features, tags={"country": country}),
            )
        )
        labels.hold(i, ("labels", _label(model, pid, ts + 20 * step_ms, truth)))
        out.extend(labels.due(i))
    out.extend(labels.rest())
    return out


#: The estimation settings of :func:`estimated_drop`'s and :func:`estimated_mae_rise`'s models
#: (sized for a short scenario).
ESTIMATED = {"estimation": {"reference_size": 400, "window": 300, "check_every": 50}}


def estimated_drop(
    model: str = "m-estimate",
    n: int = 6000,
    shift_at: int = 3500,
    label_delay: int = 1500,
    t0: int = T0,
    step_ms: int = 1000,
    seed: int = 19,
) -> list[Record]:
    """A calibrated binary classifier (``P(y | x) = sigmoid(3x - 1.5)``, its score that
    probability) whose labels come ``label_delay`` predictions late; from ``shift_at`` on its
    inputs crowd its decision boundary (``x ~ N(0.5, 0.25)``, F1 0.77 -> 0.64): the estimated
    F1 falls before the first label of the shifted inputs arrives. Configure the model with
    :data:`ESTIMATED`."""
    rng = random.Random(seed)
    labels = Labelled(label_delay)
    out: list[Record] = []
    for i in range(n):
        ts = t0 + i * step_ms
        x = rng.gauss(0.5, 0.25) if i >= shift_at else rng.gauss(0.0, 1.0)
        probability = 1.0 / (1.0 + math.exp(-(3.0 * x - 1.5)))
        truth = rng.random() < probability
        pid = f"{model}-{i}"
        score = round(probability, 4)
        out.append(("predictions", _prediction(model, "1", pid, ts, score > 0.5, score=score)))
        labels.hold(i, ("labels", _label(model, pid, ts + label_delay * step_ms, truth)))
        out.extend(labels.due(i))
    out.extend(labels.rest())
    return out


def estimated_mae_rise(
    model: str = "m-dle",
    n: int = 4000,
    shift_at: int = 2500,
    label_delay: int = 1000,
    t0: int = T0,
    step_ms: int = 1000,
    seed: int = 23,
) -> list[Record]:
    """A regression model (``yhat = x0 + x2``, three numeric features and a categorical one)
    whose noise grows with ``x0`` (``0.5 exp(0.5 x0)``), its labels ``label_delay``
    predictions late; from ``shift_at`` on ``x0 ~ N(1, 1)``: inputs move to where it is worse
    (MAE +65 %), and the estimated MAE rises before the first label of the shifted inputs
    arrives (DLE). Configure the model with :data:`ESTIMATED`."""
    rng = random.Random(seed)
    labels = Labelled(label_delay)
    out: list[Record] = []
    for i in range(n):
        ts = t0 + i * step_ms
        x = [rng.gauss(1.0 if i >= shift_at and k == 0 else 0.0, 1.0) for k in range(3)]
        predicted = round(x[0] + x[2], 4)
        truth = round(predicted + 0.5 * math.exp(0.5 * x[0]) * rng.gauss(0.0, 1.0), 4)
        features = {f"x{k}": round(v, 4) for k, v in enumerate(x)}
        features["channel"] = rng.choice(["web", "app"])
        pid = f"{model}-{i}"
        out.append(("predictions", _prediction(model, "1", pid, ts, predicted, features)))
        labels.hold(i, ("labels", _label(model, pid, ts + label_delay * step_ms, truth)))
        out.extend(labels.due(i))
    out.extend(labels.rest())
    return out


def stall(
    live: str = "m-live",
    silent: str = "m-silent",
    n: int = 3000,
    stop_at: int = 1000,
    resume_at: int = 2500,
    t0: int = T0,
    step_ms: int = 100,
    seed: int = 4,
) -> list[Record]:
    """Two models send a prediction every ``step_ms``; ``silent`` stops at ``stop_at`` and
    resumes at ``resume_at`` (150 s of silence with the defaults, past the 60 s floor)."""
    rng = random.Random(seed)
    out: list[Record] = []
    for i in range(n):
        ts = t0 + i * step_ms
        for model in (live, silent):
            if model == silent and stop_at <= i < resume_at:
                continue
            out.append(
                (
                    "predictions",
                    _prediction(
                        model, "1", f"{model}-{i}", ts, rng.random() < 0.5, {"x": rng.gauss(0, 1)}
                    ),
                )
            )
    return out


def regression(
    model: str = "m-reg",
    n: int = 4000,
    drift_at: int = 2500,
    label_delay: int = 30,
    t0: int = T0,
    step_ms: int = 100,
    seed: int = 5,
) -> list[Record]:
    """A regression model whose absolute errors triple at ``drift_at``; its inputs come on the
    inputs topic (joined by prediction id), not inside the predictions."""
    rng = random.Random(seed)
    labels = Labelled(label_delay)
    out: list[Record] = []
    for i in range(n):
        ts = t0 + i * step_ms
        pid = f"{model}-{i}"
        x = rng.gauss(0, 1)
        truth = 3 * x + rng.gauss(0, 1)
        noise = 1.0 if i < drift_at else 3.0
        predicted = 3 * x + rng.gauss(0, noise)
        out.append(("predictions", _prediction(model, "1", pid, ts, predicted)))
        features = {"x": x, "channel": rng.choice(["web", "app"])}
        out.append(
            (
                "inputs",
                orjson.dumps(
                    {
                        "model_id": model,
                        "model_version": "1",
                        "prediction_id": pid,
                        "timestamp": ts,
                        "features": features,
                    }
                ),
            )
        )
        labels.hold(i, ("labels", _label(model, pid, ts + label_delay * step_ms, truth)))
        out.extend(labels.due(i))
    out.extend(labels.rest())
    return out


def multiclass(
    model: str = "m-multi",
    n: int = 4000,
    drift_at: int = 2500,
    label_delay: int = 40,
    t0: int = T0,
    step_ms: int = 100,
    seed: int = 6,
) -> list[Record]:
    """Three classes with a class -> probability score; accuracy falls from 85 % to 50 % at
    ``drift_at``. Some labels come before their prediction."""
    rng = random.Random(seed)
    classes = ["cat", "dog", "fox"]
    labels = Labelled(label_delay)
    out: list[Record] = []
    for i in range(n):
        ts = t0 + i * step_ms
        pid = f"{model}-{i}"
        truth = rng.choice(classes)
        right = rng.random() < (0.85 if i < drift_at else 0.5)
        predicted = truth if right else rng.choice([c for c in classes if c != truth])
        top = round(rng.uniform(0.4, 0.9), 3)
        rest = round((1 - top) / 2, 3)
        score = {c: (top if c == predicted else rest) for c in classes}
        prediction = ("predictions", _prediction(model, "1", pid, ts, predicted, None, score))
        label = ("labels", _label(model, pid, ts + label_delay * step_ms, truth))
        if i % 50 == 0:  # the label first: it waits for its prediction
            out.extend([label, prediction])
        else:
            out.append(prediction)
            labels.hold(i, label)
        out.extend(labels.due(i))
    out.extend(labels.rest())
    return out


def recall_drop(
    model: str = "m-fraud",
    n: int = 24_000,
    change_at: int = 12_000,
    positive_rate: float = 0.05,
    label_delay: int = 200,
    t0: int = T0,
    step_ms: int = 1_000,
    seed: int = 7,
) -> list[Record]:
    """A fraud model (5 % positives) whose recall halves at ``change_at`` (half the fraud
    starts to look legitimate): performance degradation, concept drift, a retrain."""
    rng = random.Random(seed)
    labels = Labelled(label_delay)
    out: list[Record] = []
    for i in range(n):
        ts = t0 + i * step_ms
        pid = f"{model}-{i}"
        fraud = rng.random() < positive_rate
        recall = 0.8 if i < change_at else 0.4
        flagged = rng.random() < recall if fraud else rng.random() < 0.01
        score = round(rng.uniform(0.5, 1.0) if flagged else rng.uniform(0.0, 0.5), 4)
        features = {"amount": round(rng.lognormvariate(3, 1), 2), "card": rng.choice("ABCD")}
        out.append(("predictions", _prediction(model, "1", pid, ts, flagged, features, score)))
        labels.hold(i, ("labels", _label(model, pid, ts + label_delay * step_ms, fraud)))
        out.extend(labels.due(i))
    out.extend(labels.rest())
    return out


def quality_and_labels(
    model: str = "m-quality",
    n: int = 6000,
    broken_at: int = 3000,
    labels_stop_at: int = 1000,
    t0: int = T0,
    step_ms: int = 1_000,
    seed: int = 8,
) -> list[Record]:
    """From ``broken_at`` a third of ``x`` is null and ``plan`` takes a value never seen
    before; labels stop coming at ``labels_stop_at`` (over an hour of silence follows)."""
    rng = random.Random(seed)
    out: list[Record] = []
    for i in range(n):
        ts = t0 + i * step_ms
        pid = f"{model}-{i}"
        broken = i >= broken_at
        features = {
            "x": None if broken and rng.random() < 0.33 else rng.gauss(0, 1),
            "plan": "enterprise" if broken and rng.random() < 0.3 else rng.choice(["free", "pro"]),
        }
        truth = rng.random() < 0.5
        predicted = truth if rng.random() < 0.8 else not truth
        out.append(("predictions", _prediction(model, "1", pid, ts, predicted, features)))
        if i < labels_stop_at:
            out.append(("labels", _label(model, pid, ts + 500, truth)))
    return out


#: Malformed records and the dead-letter reason each must get.
MALFORMED: list[tuple[str, bytes, str]] = [
    ("predictions", b"not json", "invalid_json"),
    ("predictions", b'{"model_id": "m-bad"}', "missing_field"),
    ("predictions", _prediction("m-bad", "1", "p", 1_795_255_200, True), "invalid_value"),
    ("predictions", _prediction("bad id", "1", "p", T0, True), "invalid_value"),
    (
        "predictions",
        b'{"model_id": "m-bad", "model_version": "1", "prediction_id": "p", '
        b'"timestamp": 1795255200000, "prediction": NaN}',
        "invalid_json",
    ),
    ("labels", _label("m-bad", "p", T0, [1]), "wrong_type"),
    ("labels", b"[]", "not_an_object"),
    (
        "inputs",
        orjson.dumps(
            {"model_id": "m-bad", "timestamp": T0, "features": {f"f{i}": i for i in range(1001)}}
        ),
        "too_many",
    ),
    (
        "inputs",
        b'{"model_id": "m-bad", "timestamp": 1795255200000, "features": {"a": '
        + b"[" * 40
        + b"]" * 40
        + b"}}",
        "too_deep",
    ),
    ("predictions", b"\xff\xfe\x00", "invalid_json"),
]
