"""Decode speed of the event contract, against orjson.loads alone on the same bytes.

    python bench/decode.py [--n 200000]

Prints microseconds per event for: orjson.loads (no checks), EventDecoder.decode (validated),
EventDecoder.decode_batch on one event, and on arrays of 100 events (per event).
"""

from __future__ import annotations

import argparse
import random
import time

import orjson

from schemas import EventDecoder


def sample_event(i: int) -> dict:
    rng = random.Random(i)
    features = {f"f{j}": round(rng.gauss(0, 1), 6) for j in range(10)}
    features["country"] = rng.choice(["DE", "FR", "US", "BR", "IN"])
    return {
        "model_id": f"model-{i % 100:03d}",
        "model_version": "2026.11.1",
        "prediction_id": f"{i:016x}-{rng.getrandbits(64):016x}",
        "timestamp": 1_795_255_200_000 + i,
        "prediction": rng.random() < 0.3,
        "score": round(rng.random(), 6),
        "latency_ms": round(rng.uniform(1, 20), 3),
        "features": features,
    }


def per_event_us(fn, payloads, events_per_payload=1) -> float:
    start = time.perf_counter()
    for p in payloads:
        fn(p)
    return (time.perf_counter() - start) / (len(payloads) * events_per_payload) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200_000)
    args = parser.parse_args()
    payloads = [orjson.dumps(sample_event(i)) for i in range(args.n)]
    arrays = [b"[" + b",".join(payloads[i : i + 100]) + b"]" for i in range(0, args.n, 100)]
    decoder = EventDecoder()
    size = sum(map(len, payloads)) / len(payloads)
    print(f"{args.n} prediction events, {size:.0f} bytes each on average")
    for name, fn, data, k in [
        ("orjson.loads (no validation)", orjson.loads, payloads, 1),
        ("EventDecoder.decode", lambda p: decoder.decode("prediction", p), payloads, 1),
        (
            "EventDecoder.decode_batch, 1 event",
            lambda p: decoder.decode_batch("prediction", p),
            payloads,
            1,
        ),
        (
            "EventDecoder.decode_batch, arrays of 100",
            lambda p: decoder.decode_batch("prediction", p),
            arrays,
            100,
        ),
    ]:
        best = min(per_event_us(fn, data, k) for _ in range(3))
        print(f"  {name:42s} {best:6.2f} us/event  ({1e6 / best:,.0f} events/s)")


if __name__ == "__main__":
    main()
