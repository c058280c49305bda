"""Where a worker's time per event goes, in-process: the profile behind issue 18's figures.

    python bench/hot_path.py [--events 600000] [--fetch 20000]

The benchmark workload (bench/workload.py: 100 models, 10 numeric features and 1 categorical,
labels for 30 %) is cut into fetches of ``--fetch`` records and run as the live pipeline runs a
fetch: each topic's records decoded at once (``EventDecoder.decode_many``), then one
``Monitor.process`` call with a wall clock. No broker: the Kafka client's share is what
``python bench/worker.py --profile`` adds on top.

Printed: microseconds per input event, in all and by part of the monitoring core (each part
timed around its batch-level call; the per-label outcome path around each label, which adds
about 0.1 us per label of timing itself); and, for comparison, the same events through the
script a user would write instead (river's ``ADWIN`` per numeric feature and ``PageHinkley``
on the score, per model; the decoding is orjson's, as in bench/worker.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workload import events as workload

import detectors.feature_set as feature_set
import detectors.model as model
import detectors.numeric as numeric
from detectors.monitor import Monitor
from schemas import EventDecoder
from stream.process_memory import tune_gc

_PARTS: dict[str, float] = {}


def timed(cls: type, name: str, part: str) -> None:
    """Wrap ``cls.name`` so that its time adds up under ``part``."""
    inner: Callable[..., Any] = getattr(cls, name)
    clock = time.perf_counter

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = clock()
        try:
            return inner(*args, **kwargs)
        finally:
            _PARTS[part] = _PARTS.get(part, 0.0) + clock() - start

    setattr(cls, name, wrapper)


def driftline(fetches: list[list[tuple[str, bytes, bytes]]]) -> tuple[float, float]:
    """Seconds decoding and seconds in the core, over every fetch."""
    decoder = EventDecoder()
    monitor = Monitor()
    decoding = core = 0.0
    for fetch in fetches:
        start = time.perf_counter()
        predictions = [value for kind, _, value in fetch if kind == "predictions"]
        labels = [value for kind, _, value in fetch if kind == "labels"]
        decoded = decoder.decode_many("prediction", predictions) or []
        decoded += decoder.decode_many("label", labels) or []
        middle = time.perf_counter()
        monitor.process(decoded, now=decoded[-1].timestamp + 1_000)
        core += time.perf_counter() - middle
        decoding += middle - start
    return decoding, core


def naive(fetches: list[list[tuple[str, bytes, bytes]]]) -> float:
    """Seconds of the script a user would write instead (bench/worker.py's naive consumer)."""
    from river import drift

    features: dict[tuple[str, str], drift.ADWIN] = {}
    scores: dict[str, drift.PageHinkley] = {}
    start = time.perf_counter()
    for fetch in fetches:
        for _, _, value in fetch:
            event = orjson.loads(value)
            if "prediction" not in event:
                continue
            model_id = event["model_id"]
            for name, number in (event.get("features") or {}).items():
                if type(number) is float or type(number) is int:
                    detector = features.get((model_id, name))
                    if detector is None:
                        detector = features[(model_id, name)] = drift.ADWIN()
                    detector.update(number)
            score = event.get("score")
            if type(score) is float:
                detector = scores.get(model_id)
                if detector is None:
                    detector = scores[model_id] = drift.PageHinkley()
                detector.update(score)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=600_000, help="predictions")
    parser.add_argument("--fetch", type=int, default=20_000, help="records per fetch")
    args = parser.parse_args()
    records = list(workload(args.events, t0=1_795_255_200_000))
    fetches = [records[i : i + args.fetch] for i in range(0, len(records), args.fetch)]
    n = len(records)
    print(f"{n:,} events ({args.events:,} predictions), fetches of {args.fetch:,} records")
    tune_gc()
    naive_seconds = naive(fetches)
    timed(feature_set.FeatureSet, "apply", "features")
    timed(numeric.NumericDriftDetector, "_step", "features: river detectors, per block")
    timed(model.ModelState, "_outcome", "outcomes (a label joined)")
    timed(model.ModelState, "_flush_predictions", "predictions, scores, latency")
    decoding, core = driftline(fetches)
    parts = dict(_PARTS)
    per = 1e6 / n
    print(f"  decode and validate                       {decoding * per:6.2f} us/event")
    print(f"  monitoring core                           {core * per:6.2f} us/event")
    for part, seconds in parts.items():
        print(f"    {part:<38}{seconds * per:6.2f}")
    rest = core - sum(v for k, v in parts.items() if not k.startswith("features:"))
    print(f"    {'the per-event loop, join, the rest':<38}{rest * per:6.2f}")
    print(f"  driftline in all                          {(decoding + core) * per:6.2f} us/event")
    print(f"  the naive script (orjson + river)         {naive_seconds * per:6.2f} us/event")


if __name__ == "__main__":
    main()
