"""The benchmark workload: prediction events of ~400 bytes (10 numeric features and one
categorical), for many models, with labels for a share of them.

Used by bench/replay.py (a file for ``driftline replay``) and by the broker benchmark.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import orjson

T0 = 1_795_255_200_000
COUNTRIES = ["DE", "FR", "US", "BR", "IN", "JP", "GB", "ES"]


def events(
    n: int,
    models: int = 100,
    label_share: float = 0.3,
    seed: int = 42,
    step_ms: int = 1,
    features: int = 10,
    t0: int | None = None,
) -> Iterator[tuple[str, bytes, bytes]]:
    """Yield ``(topic_kind, key, value)``: ``n`` predictions (and their labels, a little later).

    Event times run from ``t0`` (default: so that the last one is now) ``step_ms`` apart.
    """
    rng = random.Random(seed)
    if t0 is None:
        t0 = int(time.time() * 1000) - n * step_ms
    pending: list[tuple[int, bytes, bytes]] = []
    for i in range(n):
        model = f"model-{i % models:03d}"
        ts = t0 + i * step_ms
        truth = rng.random() < 0.3
        prediction = truth if rng.random() < 0.85 else not truth
        values = {f"f{j}": round(rng.gauss(j, 1 + j / 5), 5) for j in range(features)}
        values["country"] = COUNTRIES[int(rng.random() ** 2 * len(COUNTRIES))]
        pid = f"{i:012d}-{rng.getrandbits(48):012x}"
        value = orjson.dumps(
            {
                "model_id": model,
                "model_version": "2026.11.1",
                "prediction_id": pid,
                "timestamp": ts,
                "prediction": prediction,
                "score": round(rng.random(), 6),
                "latency_ms": round(rng.uniform(1, 20), 3),
                "features": values,
            }
        )
        yield "predictions", model.encode(), value
        if rng.random() < label_share:
            label = orjson.dumps(
                {"model_id": model, "prediction_id": pid, "timestamp": ts + 500, "label": truth}
            )
            pending.append((i + 500, model.encode(), label))
        while pending and pending[0][0] <= i:
            _, key, label = pending.pop(0)
            yield "labels", key, label
    for _, key, label in pending:
        yield "labels", key, label


_MAX_LABEL_DELAY = 4 * 3_600_000


def delayed_labels(
    n: int,
    models: int = 20,
    seed: int = 7,
    span_ms: int = 6 * 3_600_000,
    t0: int | None = None,
    inputs_model: bool = True,
) -> Iterator[tuple[str, bytes, bytes, int]]:
    """Yield ``(topic_kind, key, value, timestamp_ms)`` as real traffic reaches Kafka: ``n``
    predictions spread over ``span_ms``, each labelled once, minutes to hours later.

    Label delays are log-normal (median 20 minutes, from 1 minute to 4 hours); records come in
    the order of their timestamps, which are the events' own. With ``inputs_model``, the model
    ``model-inputs`` sends its features on ``model.inputs`` (the same ``prediction_id``, 5 ms
    before its prediction) and predictions without them. Unless ``t0`` is given, the last
    label is stamped before now (brokers refuse records stamped far in the future).
    """
    import heapq
    import math

    rng = random.Random(seed)
    if t0 is None:
        t0 = int(time.time() * 1000) - span_ms - _MAX_LABEL_DELAY - 60_000
    step = span_ms / n
    names = [f"model-{m:03d}" for m in range(models)]
    if inputs_model:
        names[-1] = "model-inputs"
    keys = [name.encode() for name in names]
    labels: list[tuple[int, int, bytes, bytes]] = []  # (due, tie-break, key, value)
    for i in range(n):
        m = i % models
        ts = t0 + int(i * step)
        while labels and labels[0][0] <= ts:
            due, _, key, value = heapq.heappop(labels)
            yield "labels", key, value, due
        truth = rng.random() < 0.3
        prediction = truth if rng.random() < 0.85 else not truth
        r = rng.random()
        features = {"f0": r, "f1": 1 - r * r, "f2": i % 97, "country": COUNTRIES[i % 8]}
        pid = f"{i:09d}"
        event = {
            "model_id": names[m],
            "model_version": "1",
            "prediction_id": pid,
            "timestamp": ts,
            "prediction": prediction,
            "score": round(rng.random(), 4),
        }
        if names[m] == "model-inputs":
            yield (
                "inputs",
                keys[m],
                orjson.dumps(
                    {
                        "model_id": names[m],
                        "prediction_id": pid,
                        "timestamp": ts - 5,
                        "features": features,
                    }
                ),
                ts - 5,
            )
        else:
            event["features"] = features
        yield "predictions", keys[m], orjson.dumps(event), ts
        delay = min(_MAX_LABEL_DELAY, max(60_000, int(1_200_000 * math.exp(rng.gauss(0, 1)))))
        label = {"model_id": names[m], "prediction_id": pid, "timestamp": ts + delay}
        label["label"] = truth
        heapq.heappush(labels, (ts + delay, i, keys[m], orjson.dumps(label)))
    while labels:
        due, _, key, value = heapq.heappop(labels)
        yield "labels", key, value, due
