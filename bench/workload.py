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
